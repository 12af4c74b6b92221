//! Reading the mapping tables from CSV: one `;`-separated UTF-8 file per
//! table with German headers, as the shipped defaults in `assets/mapping/`
//! and as the practice exports and edits them in Excel.
//!
//! Reading never fails as a whole: a bad row is left out and reported with
//! its line number, the rest of the table is used, and [`CsvTables::parse`]
//! adds the model checks of [`super::validate`].

use super::validate::{Problem, RowLines, TableName};
use super::{
    AppointmentKind, AppointmentState, AppointmentTypeRule, CataloguePattern, Category,
    CategoryRule, CodePattern, Counting, DEFAULT_WON_AFTER_DAYS, EntryTypeRule, FieldRule, Mapping,
    PatientField, Stage, StageRule, StateRule,
};

/// The text of every table, one CSV document each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvTables {
    /// `appointment_types.csv`: Terminart; Art; Eröffnet Fall; Vorlagen-Id (optional).
    pub appointment_types: String,
    /// `appointment_states.csv`: Ivoris-Wert; Status.
    pub appointment_states: String,
    /// `stages.csv`: Phase; Bezeichnung in HubSpot; Tage ohne Aktivität.
    pub stages: String,
    /// `treatment_categories.csv`: Katalog; Muster; Kategorie.
    pub treatment_categories: String,
    /// `entry_types.csv`: Eintragsart; Zählung; Kategorie.
    pub entry_types: String,
    /// `contact_fields.csv`: Patientenfeld; HubSpot-Eigenschaft; Personenbezogen; Aktiv.
    pub contact_fields: String,
}

/// A mapping read from CSV with everything wrong in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMapping {
    /// The rows that could be read.
    pub mapping: Mapping,
    /// Rows left out and model problems, in table order.
    pub problems: Vec<Problem>,
}

/// One data row: its CSV line and its trimmed cells.
struct Row {
    /// Line number in the file (header = 1).
    line: usize,
    /// Cells, trimmed; missing trailing cells are empty.
    cells: Vec<String>,
}

impl Row {
    fn cell(&self, index: usize) -> &str {
        self.cells.get(index).map_or("", String::as_str)
    }
}

/// Collects rows and problems of one table.
struct Reader<'a> {
    /// Which table is read.
    table: TableName,
    /// Header names, for "empty cell" messages.
    columns: &'a [&'a str],
    /// Problems found so far.
    problems: &'a mut Vec<Problem>,
}

impl Reader<'_> {
    fn rows(&mut self, text: &str) -> Vec<Row> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b';')
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut rows = Vec::new();
        for record in reader.records() {
            match record {
                Ok(record) => {
                    let line = record
                        .position()
                        .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
                    let cells: Vec<String> = record.iter().map(str::to_owned).collect();
                    if cells.iter().all(String::is_empty) {
                        continue;
                    }
                    rows.push(Row { line, cells });
                }
                Err(error) => {
                    let line = error
                        .position()
                        .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
                    self.problem(
                        line,
                        "Zeile ist kein gültiges CSV".to_owned(),
                        format!("row is not valid CSV: {error}"),
                    );
                }
            }
        }
        rows
    }

    fn problem(&mut self, line: usize, de: String, en: String) {
        self.problems.push(Problem::new(self.table, line, de, en));
    }

    /// The non-empty cell at `index`, or a problem.
    fn required<'r>(&mut self, row: &'r Row, index: usize) -> Option<&'r str> {
        let cell = row.cell(index);
        if cell.is_empty() {
            let column = self.columns.get(index).copied().unwrap_or("?");
            self.problem(
                row.line,
                format!("Spalte „{column}“ ist leer"),
                format!("column \"{column}\" is empty"),
            );
            return None;
        }
        Some(cell)
    }

    /// A cell that must be one of the listed words.
    fn choice<T>(
        &mut self,
        row: &Row,
        index: usize,
        parse: impl Fn(&str) -> Option<T>,
        allowed: &str,
    ) -> Option<T> {
        let cell = self.required(row, index)?;
        let value = parse(cell);
        if value.is_none() {
            self.problem(
                row.line,
                format!("„{cell}“ ist unbekannt, erlaubt: {allowed}"),
                format!("\"{cell}\" is unknown, allowed: {allowed}"),
            );
        }
        value
    }

    fn yes_no(&mut self, row: &Row, index: usize) -> Option<bool> {
        self.choice(row, index, parse_yes_no, "ja, nein")
    }

    fn category(&mut self, row: &Row, index: usize) -> Option<Category> {
        let allowed = Category::ALL.map(Category::label).join(", ");
        self.choice(row, index, Category::parse, &allowed)
    }
}

fn parse_yes_no(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "ja" | "j" | "yes" | "y" | "1" | "x" => Some(true),
        "nein" | "n" | "no" | "0" => Some(false),
        _ => None,
    }
}

impl CsvTables {
    /// The shipped defaults.
    pub fn defaults() -> CsvTables {
        CsvTables {
            appointment_types: include_str!("../../assets/mapping/appointment_types.csv")
                .to_owned(),
            appointment_states: include_str!("../../assets/mapping/appointment_states.csv")
                .to_owned(),
            stages: include_str!("../../assets/mapping/stages.csv").to_owned(),
            treatment_categories: include_str!("../../assets/mapping/treatment_categories.csv")
                .to_owned(),
            entry_types: include_str!("../../assets/mapping/entry_types.csv").to_owned(),
            contact_fields: include_str!("../../assets/mapping/contact_fields.csv").to_owned(),
        }
    }

    /// Reads every table and validates the result.
    pub fn parse(&self) -> ParsedMapping {
        let mut problems = Vec::new();
        let mut kept: [Vec<usize>; 6] = Default::default();
        let [
            type_lines,
            state_lines,
            stage_lines,
            category_lines,
            entry_lines,
            field_lines,
        ] = &mut kept;
        let appointment_types =
            appointment_types(&self.appointment_types, &mut problems, type_lines);
        let appointment_states =
            appointment_states(&self.appointment_states, &mut problems, state_lines);
        let (stages, won_after_days) = stages(&self.stages, &mut problems, stage_lines);
        let categories = categories(&self.treatment_categories, &mut problems, category_lines);
        let entry_types = entry_types(&self.entry_types, &mut problems, entry_lines);
        let contact_fields = contact_fields(&self.contact_fields, &mut problems, field_lines);
        let tables = [
            TableName::AppointmentTypes,
            TableName::AppointmentStates,
            TableName::Stages,
            TableName::TreatmentCategories,
            TableName::EntryTypes,
            TableName::ContactFields,
        ];
        let lines = RowLines {
            lines: tables.into_iter().zip(kept).collect(),
        };
        let mapping = Mapping {
            appointment_types,
            appointment_states,
            stages,
            won_after_days,
            categories,
            entry_types,
            contact_fields,
        };
        problems.extend(super::validate::validate(&mapping, &lines));
        ParsedMapping { mapping, problems }
    }
}

fn appointment_types(
    text: &str,
    problems: &mut Vec<Problem>,
    kept: &mut Vec<usize>,
) -> Vec<AppointmentTypeRule> {
    let mut reader = Reader {
        table: TableName::AppointmentTypes,
        columns: &["Terminart", "Art", "Eröffnet Fall", "Vorlagen-Id"],
        problems,
    };
    let allowed = AppointmentKind::ALL.map(AppointmentKind::label).join(", ");
    let mut rules = Vec::new();
    for row in reader.rows(text) {
        let label = reader.required(&row, 0);
        let kind = reader.choice(&row, 1, AppointmentKind::from_label, &allowed);
        let opens_case = reader.yes_no(&row, 2);
        let template_id = Some(row.cell(3)).filter(|id| !id.is_empty());
        if let (Some(label), Some(kind), Some(opens_case)) = (label, kind, opens_case) {
            kept.push(row.line);
            rules.push(AppointmentTypeRule {
                label: label.to_owned(),
                template_id: template_id.map(str::to_owned),
                kind,
                opens_case,
            });
        }
    }
    rules
}

fn appointment_states(
    text: &str,
    problems: &mut Vec<Problem>,
    kept: &mut Vec<usize>,
) -> Vec<StateRule> {
    let mut reader = Reader {
        table: TableName::AppointmentStates,
        columns: &["Ivoris-Wert", "Status"],
        problems,
    };
    let allowed = AppointmentState::ALL
        .map(AppointmentState::label)
        .join(", ");
    let mut rules = Vec::new();
    for row in reader.rows(text) {
        let value = reader.required(&row, 0);
        let state = reader.choice(&row, 1, AppointmentState::from_label, &allowed);
        if let (Some(value), Some(state)) = (value, state) {
            kept.push(row.line);
            rules.push(StateRule {
                ivoris_value: value.to_owned(),
                state,
            });
        }
    }
    rules
}

fn stages(text: &str, problems: &mut Vec<Problem>, kept: &mut Vec<usize>) -> (Vec<StageRule>, u32) {
    let mut reader = Reader {
        table: TableName::Stages,
        columns: &["Phase", "Bezeichnung in HubSpot", "Tage ohne Aktivität"],
        problems,
    };
    let allowed = Stage::ALL.map(Stage::key).join(", ");
    let mut rules = Vec::new();
    let mut won_after_days = DEFAULT_WON_AFTER_DAYS;
    for row in reader.rows(text) {
        let stage = reader.choice(&row, 0, Stage::from_key, &allowed);
        let label = reader.required(&row, 1);
        if stage == Some(Stage::Won) && !row.cell(2).is_empty() {
            match row.cell(2).parse::<u32>() {
                Ok(days) => won_after_days = days,
                Err(_) => reader.problem(
                    row.line,
                    format!("„{}“ ist keine Anzahl Tage", row.cell(2)),
                    format!("\"{}\" is not a number of days", row.cell(2)),
                ),
            }
        }
        if let (Some(stage), Some(label)) = (stage, label) {
            kept.push(row.line);
            rules.push(StageRule {
                stage,
                label: label.to_owned(),
            });
        }
    }
    (rules, won_after_days)
}

fn categories(text: &str, problems: &mut Vec<Problem>, kept: &mut Vec<usize>) -> Vec<CategoryRule> {
    let mut reader = Reader {
        table: TableName::TreatmentCategories,
        columns: &["Katalog", "Muster", "Kategorie"],
        problems,
    };
    let mut rules = Vec::new();
    for row in reader.rows(text) {
        let catalogue = reader.required(&row, 0).and_then(CataloguePattern::parse);
        let pattern = match reader.required(&row, 1).map(CodePattern::parse) {
            Some(Ok(pattern)) => Some(pattern),
            Some(Err(error)) => {
                reader.problem(row.line, error.de, error.en);
                None
            }
            None => None,
        };
        let category = reader.category(&row, 2);
        if let (Some(catalogue), Some(pattern), Some(category)) = (catalogue, pattern, category) {
            kept.push(row.line);
            rules.push(CategoryRule {
                catalogue,
                pattern,
                category,
            });
        }
    }
    rules
}

fn entry_types(
    text: &str,
    problems: &mut Vec<Problem>,
    kept: &mut Vec<usize>,
) -> Vec<EntryTypeRule> {
    let mut reader = Reader {
        table: TableName::EntryTypes,
        columns: &["Eintragsart", "Zählung", "Kategorie"],
        problems,
    };
    let allowed = Counting::ALL.map(Counting::label).join(", ");
    let mut rules = Vec::new();
    for row in reader.rows(text) {
        let entry_type = reader.required(&row, 0);
        let counting = reader.choice(&row, 1, Counting::from_label, &allowed);
        let category = if row.cell(2).is_empty() {
            Some(None)
        } else {
            reader.category(&row, 2).map(Some)
        };
        if let (Some(entry_type), Some(counting), Some(category)) = (entry_type, counting, category)
        {
            kept.push(row.line);
            rules.push(EntryTypeRule {
                entry_type: entry_type.to_owned(),
                counting,
                category,
            });
        }
    }
    rules
}

fn contact_fields(
    text: &str,
    problems: &mut Vec<Problem>,
    kept: &mut Vec<usize>,
) -> Vec<FieldRule> {
    let mut reader = Reader {
        table: TableName::ContactFields,
        columns: &[
            "Patientenfeld",
            "HubSpot-Eigenschaft",
            "Personenbezogen",
            "Aktiv",
        ],
        problems,
    };
    let allowed = PatientField::ALL.map(PatientField::key).join(", ");
    let mut rules = Vec::new();
    for row in reader.rows(text) {
        let field = reader.choice(&row, 0, PatientField::from_key, &allowed);
        let property = reader.required(&row, 1);
        let personal = reader.yes_no(&row, 2);
        let enabled = reader.yes_no(&row, 3);
        if let (Some(field), Some(property), Some(personal), Some(enabled)) =
            (field, property, personal, enabled)
        {
            kept.push(row.line);
            rules.push(FieldRule {
                field,
                property: property.to_owned(),
                personal,
                enabled,
            });
        }
    }
    rules
}

/// Why a mapping could not be written as CSV.
#[derive(Debug, thiserror::Error)]
#[error("Zuordnung kann nicht als CSV geschrieben werden / Cannot write the mapping as CSV: {0}")]
pub struct CsvWriteError(String);

/// Writes one table: UTF-8 with BOM, `;`, CRLF, as German Excel opens it.
fn write_table(header: &[&str], rows: Vec<Vec<String>>) -> Result<String, CsvWriteError> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let error = |e: &dyn std::fmt::Display| CsvWriteError(e.to_string());
    writer.write_record(header).map_err(|e| error(&e))?;
    for row in rows {
        writer.write_record(&row).map_err(|e| error(&e))?;
    }
    let bytes = writer.into_inner().map_err(|e| error(&e))?;
    let text = String::from_utf8(bytes).map_err(|e| error(&e))?;
    Ok(format!("\u{feff}{text}"))
}

fn yes_no(value: bool) -> String {
    if value { "ja" } else { "nein" }.to_owned()
}

impl CsvTables {
    /// The tables of a mapping as CSV, for export and editing in Excel;
    /// [`CsvTables::parse`] reads them back to the same mapping.
    pub fn from_mapping(mapping: &Mapping) -> Result<CsvTables, CsvWriteError> {
        Ok(CsvTables {
            appointment_types: write_table(
                &["Terminart", "Art", "Eröffnet Fall", "Vorlagen-Id"],
                mapping
                    .appointment_types
                    .iter()
                    .map(|r| {
                        vec![
                            r.label.clone(),
                            r.kind.label().to_owned(),
                            yes_no(r.opens_case),
                            r.template_id.clone().unwrap_or_default(),
                        ]
                    })
                    .collect(),
            )?,
            appointment_states: write_table(
                &["Ivoris-Wert", "Status"],
                mapping
                    .appointment_states
                    .iter()
                    .map(|r| vec![r.ivoris_value.clone(), r.state.label().to_owned()])
                    .collect(),
            )?,
            stages: write_table(
                &["Phase", "Bezeichnung in HubSpot", "Tage ohne Aktivität"],
                mapping
                    .stages
                    .iter()
                    .map(|r| {
                        let days = if r.stage == Stage::Won {
                            mapping.won_after_days.to_string()
                        } else {
                            String::new()
                        };
                        vec![r.stage.key().to_owned(), r.label.clone(), days]
                    })
                    .collect(),
            )?,
            treatment_categories: write_table(
                &["Katalog", "Muster", "Kategorie"],
                mapping
                    .categories
                    .iter()
                    .map(|r| {
                        vec![
                            r.catalogue.to_string(),
                            r.pattern.to_string(),
                            r.category.label().to_owned(),
                        ]
                    })
                    .collect(),
            )?,
            entry_types: write_table(
                &["Eintragsart", "Zählung", "Kategorie"],
                mapping
                    .entry_types
                    .iter()
                    .map(|r| {
                        vec![
                            r.entry_type.clone(),
                            r.counting.label().to_owned(),
                            r.category.map_or("", Category::label).to_owned(),
                        ]
                    })
                    .collect(),
            )?,
            contact_fields: write_table(
                &[
                    "Patientenfeld",
                    "HubSpot-Eigenschaft",
                    "Personenbezogen",
                    "Aktiv",
                ],
                mapping
                    .contact_fields
                    .iter()
                    .map(|r| {
                        vec![
                            r.field.key().to_owned(),
                            r.property.clone(),
                            yes_no(r.personal),
                            yes_no(r.enabled),
                        ]
                    })
                    .collect(),
            )?,
        })
    }
}
