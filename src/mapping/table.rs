//! The mapping tables as CSV: one file per table with German headers, as
//! the shipped defaults in `assets/mapping/` and as the practice exports
//! and edits them in Excel.
//!
//! Files are read with [`crate::csvio`] in any variant German practices
//! produce (encoding, delimiter and header aliases detected) and written
//! for German Excel. Reading never fails as a whole: a bad row is left out
//! and reported with its line and column, the rest of the table is used,
//! and the model checks of [`super::validate`] are added.

use crate::csvio::{self, ColumnSpec, Columns, CsvDocument, CsvRow, SourceEncoding};

pub use crate::csvio::CsvWriteError;

use super::validate::{Problem, RowLines, TableName};
use super::{
    AppointmentKind, AppointmentState, AppointmentTypeRule, CataloguePattern, Category,
    CategoryRule, CodePattern, Counting, EntryTypeRule, FieldRule, LocationRule, Mapping,
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
    /// `locations.csv`: Standort; Name; Marke; HubSpot-Pipeline; Deal-Owner (HubSpot-Id).
    pub locations: String,
}

/// A mapping read from CSV with everything wrong in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMapping {
    /// The rows that could be read.
    pub mapping: Mapping,
    /// Rows left out and model problems, in table order.
    pub problems: Vec<Problem>,
}

const fn col(name: &'static str, aliases: &'static [&'static str], required: bool) -> ColumnSpec {
    ColumnSpec {
        name,
        aliases,
        required,
    }
}

/// The columns of a table, in export order; the first name is written, the
/// aliases are accepted on import.
pub fn columns(table: TableName) -> &'static [ColumnSpec] {
    const TYPES: [ColumnSpec; 4] = [
        col(
            "Terminart",
            &["Termintyp", "Terminbezeichnung", "Appointment type", "Type"],
            true,
        ),
        col("Art", &["Kind", "Terminkategorie"], true),
        col(
            "Eröffnet Fall",
            &["Öffnet Fall", "Eroeffnet Fall", "Opens case", "Neuer Fall"],
            true,
        ),
        col(
            "Vorlagen-Id",
            &["Vorlage", "Template Id", "TemplateId", "Vorlagen-Nr"],
            false,
        ),
    ];
    const STATES: [ColumnSpec; 2] = [
        col(
            "Ivoris-Wert",
            &[
                "Ivoris Status",
                "Ivoris-Status",
                "Ivoris value",
                "Wert",
                "State",
            ],
            true,
        ),
        col(
            "Status",
            &["Normalisiert", "Normalised state", "Zustand"],
            true,
        ),
    ];
    const STAGES: [ColumnSpec; 3] = [
        col("Phase", &["Stage", "Logische Phase"], true),
        col(
            "Bezeichnung in HubSpot",
            &["HubSpot-Phase", "HubSpot Stage", "Label", "Bezeichnung"],
            true,
        ),
        col(
            "Tage ohne Aktivität",
            &[
                "Tage",
                "Days",
                "Days without activity",
                "Tage bis abgeschlossen",
            ],
            false,
        ),
    ];
    const CATEGORIES: [ColumnSpec; 3] = [
        col(
            "Katalog",
            &["Gebührenordnung", "Catalogue", "Catalog"],
            true,
        ),
        col(
            "Muster",
            &["Code", "Codes", "Gebührennummer", "Pattern"],
            true,
        ),
        col(
            "Kategorie",
            &["Behandlungskategorie", "Category", "Leistungsbereich"],
            true,
        ),
    ];
    const ENTRIES: [ColumnSpec; 3] = [
        col(
            "Eintragsart",
            &["Art", "Entry type", "Typ", "EntryType"],
            true,
        ),
        col(
            "Zählung",
            &["Zaehlung", "Counting", "Zählt als", "Umsatz"],
            true,
        ),
        col("Kategorie", &["Feste Kategorie", "Category"], false),
    ];
    const FIELDS: [ColumnSpec; 4] = [
        col("Patientenfeld", &["Feld", "Patient field", "Field"], true),
        col(
            "HubSpot-Eigenschaft",
            &[
                "HubSpot Eigenschaft",
                "Eigenschaft",
                "Property",
                "HubSpot property",
            ],
            true,
        ),
        col(
            "Personenbezogen",
            &["Personenbezogene Daten", "Personal", "Personal data"],
            true,
        ),
        col("Aktiv", &["Senden", "Enabled", "Active"], true),
    ];
    const LOCATIONS: [ColumnSpec; 5] = [
        col(
            "Standort",
            &["Standortschlüssel", "Location", "Key", "Praxis"],
            true,
        ),
        col(
            "Name",
            &["Standortname", "Praxisname", "Location name"],
            false,
        ),
        col("Marke", &["Brand", "Praxismarke"], false),
        col(
            "HubSpot-Pipeline",
            &["Pipeline", "Deal-Pipeline", "HubSpot pipeline"],
            false,
        ),
        col(
            "Deal-Owner (HubSpot-Id)",
            &[
                "Deal-Owner",
                "Owner",
                "Besitzer",
                "Deal owner",
                "hubspot_owner_id",
            ],
            false,
        ),
    ];
    match table {
        TableName::Locations => &LOCATIONS,
        TableName::AppointmentTypes => &TYPES,
        TableName::AppointmentStates => &STATES,
        TableName::Stages => &STAGES,
        TableName::TreatmentCategories => &CATEGORIES,
        TableName::EntryTypes => &ENTRIES,
        TableName::ContactFields => &FIELDS,
    }
}

/// The standard header names of a table.
pub fn header(table: TableName) -> Vec<&'static str> {
    columns(table).iter().map(|c| c.name).collect()
}

/// Collects rows and problems of one table.
struct Reader<'a> {
    /// Which table is read.
    table: TableName,
    /// Where the table's columns are in the file.
    columns: Columns,
    /// Problems found so far.
    problems: &'a mut Vec<Problem>,
}

impl Reader<'_> {
    fn cell<'r>(&self, row: &'r CsvRow, index: usize) -> &'r str {
        self.columns.cell(row, index)
    }

    fn name(&self, index: usize) -> &'static str {
        columns(self.table).get(index).map_or("?", |c| c.name)
    }

    fn problem(&mut self, line: usize, index: usize, de: String, en: String) {
        let column = self.name(index);
        self.problems
            .push(Problem::new(self.table, line, de, en).in_column(column));
    }

    /// The non-empty cell at `index`, or a problem.
    fn required<'r>(&mut self, row: &'r CsvRow, index: usize) -> Option<&'r str> {
        let cell = self.cell(row, index);
        if cell.is_empty() {
            let column = self.name(index);
            self.problem(
                row.line,
                index,
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
        row: &CsvRow,
        index: usize,
        parse: impl Fn(&str) -> Option<T>,
        allowed: &str,
    ) -> Option<T> {
        let cell = self.required(row, index)?;
        let value = parse(cell);
        if value.is_none() {
            self.problem(
                row.line,
                index,
                format!("„{cell}“ ist unbekannt, erlaubt: {allowed}"),
                format!("\"{cell}\" is unknown, allowed: {allowed}"),
            );
        }
        value
    }

    fn yes_no(&mut self, row: &CsvRow, index: usize) -> Option<bool> {
        self.choice(row, index, parse_yes_no, "ja, nein")
    }

    fn category(&mut self, row: &CsvRow, index: usize) -> Option<Category> {
        let allowed = Category::ALL.map(Category::label).join(", ");
        self.choice(row, index, Category::parse, &allowed)
    }
}

fn parse_yes_no(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "ja" | "j" | "yes" | "y" | "1" | "x" | "wahr" | "true" => Some(true),
        "nein" | "n" | "no" | "0" | "falsch" | "false" => Some(false),
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
            locations: include_str!("../../assets/mapping/locations.csv").to_owned(),
        }
    }

    /// The text of one table.
    pub fn text(&self, table: TableName) -> &str {
        match table {
            TableName::AppointmentTypes => &self.appointment_types,
            TableName::AppointmentStates => &self.appointment_states,
            TableName::Stages => &self.stages,
            TableName::TreatmentCategories => &self.treatment_categories,
            TableName::EntryTypes => &self.entry_types,
            TableName::ContactFields => &self.contact_fields,
            TableName::Locations => &self.locations,
        }
    }

    /// Reads every table and validates the result.
    pub fn parse(&self) -> ParsedMapping {
        let mut problems = Vec::new();
        let mut mapping = Mapping::empty();
        let mut lines = RowLines::default();
        for table in TableName::ALL {
            let document = csvio::read_text(self.text(table), SourceEncoding::Utf8);
            let kept = read_document(table, &document, &mut mapping, &mut problems);
            lines.lines.insert(table, kept);
        }
        problems.extend(super::validate::validate(&mapping, &lines));
        ParsedMapping { mapping, problems }
    }

    /// The tables of a mapping as CSV, for export and editing in Excel;
    /// [`CsvTables::parse`] reads them back to the same mapping.
    pub fn from_mapping(mapping: &Mapping) -> Result<CsvTables, CsvWriteError> {
        let text = |table: TableName| -> Result<String, CsvWriteError> {
            let bytes = export_table(mapping, table)?;
            // `write_excel` writes UTF-8 only; the BOM stays in the text.
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        Ok(CsvTables {
            appointment_types: text(TableName::AppointmentTypes)?,
            appointment_states: text(TableName::AppointmentStates)?,
            stages: text(TableName::Stages)?,
            treatment_categories: text(TableName::TreatmentCategories)?,
            entry_types: text(TableName::EntryTypes)?,
            contact_fields: text(TableName::ContactFields)?,
            locations: text(TableName::Locations)?,
        })
    }
}

/// Reads one table's document into `mapping` (replacing that table) and
/// returns the CSV lines of the rows kept.
fn read_document(
    table: TableName,
    document: &CsvDocument,
    mapping: &mut Mapping,
    problems: &mut Vec<Problem>,
) -> Vec<usize> {
    for error in &document.errors {
        let mut problem = Problem::new(table, error.line, &error.reason_de, &error.reason_en);
        problem.column = error.column.clone();
        problems.push(problem);
    }
    mapping.clear(table);
    let columns = match Columns::resolve(&document.header, columns(table)) {
        Ok(columns) => columns,
        Err(errors) => {
            for error in errors {
                let mut problem =
                    Problem::new(table, error.line, &error.reason_de, &error.reason_en);
                problem.column = error.column;
                problems.push(problem);
            }
            return Vec::new();
        }
    };
    let mut reader = Reader {
        table,
        columns,
        problems,
    };
    let mut kept = Vec::new();
    for row in &document.rows {
        if read_row(&mut reader, row, mapping) {
            kept.push(row.line);
        }
    }
    kept
}

/// Reads one row into the mapping; `false` when it was left out.
fn read_row(reader: &mut Reader<'_>, row: &CsvRow, mapping: &mut Mapping) -> bool {
    match reader.table {
        TableName::Locations => {
            let Some(key) = reader.required(row, 0) else {
                return false;
            };
            let optional = |index: usize| {
                Some(reader.cell(row, index))
                    .filter(|cell| !cell.is_empty())
                    .map(str::to_owned)
            };
            let rule = LocationRule {
                key: key.to_owned(),
                name: optional(1),
                brand: optional(2),
                pipeline: optional(3),
                owner_id: optional(4),
            };
            mapping.locations.push(rule);
        }
        TableName::AppointmentTypes => {
            let allowed = AppointmentKind::ALL.map(AppointmentKind::label).join(", ");
            let label = reader.required(row, 0);
            let kind = reader.choice(row, 1, AppointmentKind::from_label, &allowed);
            let opens_case = reader.yes_no(row, 2);
            let template_id = Some(reader.cell(row, 3)).filter(|id| !id.is_empty());
            let (Some(label), Some(kind), Some(opens_case)) = (label, kind, opens_case) else {
                return false;
            };
            mapping.appointment_types.push(AppointmentTypeRule {
                label: label.to_owned(),
                template_id: template_id.map(str::to_owned),
                kind,
                opens_case,
            });
        }
        TableName::AppointmentStates => {
            let allowed = AppointmentState::ALL
                .map(AppointmentState::label)
                .join(", ");
            let value = reader.required(row, 0);
            let state = reader.choice(row, 1, AppointmentState::from_label, &allowed);
            let (Some(value), Some(state)) = (value, state) else {
                return false;
            };
            mapping.appointment_states.push(StateRule {
                ivoris_value: value.to_owned(),
                state,
            });
        }
        TableName::Stages => {
            let allowed = Stage::ALL.map(Stage::key).join(", ");
            let stage = reader.choice(row, 0, Stage::from_key, &allowed);
            let label = reader.required(row, 1);
            let days = reader.cell(row, 2);
            if stage == Some(Stage::Won) && !days.is_empty() {
                match days.parse::<u32>() {
                    Ok(days) => mapping.won_after_days = days,
                    Err(_) => reader.problem(
                        row.line,
                        2,
                        format!("„{days}“ ist keine Anzahl Tage"),
                        format!("\"{days}\" is not a number of days"),
                    ),
                }
            }
            let (Some(stage), Some(label)) = (stage, label) else {
                return false;
            };
            mapping.stages.push(StageRule {
                stage,
                label: label.to_owned(),
            });
        }
        TableName::TreatmentCategories => {
            let catalogue = reader.required(row, 0).and_then(CataloguePattern::parse);
            let pattern = match reader.required(row, 1).map(CodePattern::parse) {
                Some(Ok(pattern)) => Some(pattern),
                Some(Err(error)) => {
                    reader.problem(row.line, 1, error.de, error.en);
                    None
                }
                None => None,
            };
            let category = reader.category(row, 2);
            let (Some(catalogue), Some(pattern), Some(category)) = (catalogue, pattern, category)
            else {
                return false;
            };
            mapping.categories.push(CategoryRule {
                catalogue,
                pattern,
                category,
            });
        }
        TableName::EntryTypes => {
            let allowed = Counting::ALL.map(Counting::label).join(", ");
            let entry_type = reader.required(row, 0);
            let counting = reader.choice(row, 1, Counting::from_label, &allowed);
            let category = if reader.cell(row, 2).is_empty() {
                Some(None)
            } else {
                reader.category(row, 2).map(Some)
            };
            let (Some(entry_type), Some(counting), Some(category)) =
                (entry_type, counting, category)
            else {
                return false;
            };
            mapping.entry_types.push(EntryTypeRule {
                entry_type: entry_type.to_owned(),
                counting,
                category,
            });
        }
        TableName::ContactFields => {
            let allowed = PatientField::ALL.map(PatientField::key).join(", ");
            let field = reader.choice(row, 0, PatientField::from_key, &allowed);
            let property = reader.required(row, 1);
            let personal = reader.yes_no(row, 2);
            let enabled = reader.yes_no(row, 3);
            let (Some(field), Some(property), Some(personal), Some(enabled)) =
                (field, property, personal, enabled)
            else {
                return false;
            };
            mapping.contact_fields.push(FieldRule {
                field,
                property: property.to_owned(),
                personal,
                enabled,
            });
        }
    }
    true
}

fn yes_no(value: bool) -> String {
    if value { "ja" } else { "nein" }.to_owned()
}

/// The rows of one table as the CSV cells they are written as, in the
/// order of [`header`]. Export, the version diff and the editor all show
/// a table this way.
pub fn table_rows(mapping: &Mapping, table: TableName) -> Vec<Vec<String>> {
    match table {
        TableName::Locations => mapping
            .locations
            .iter()
            .map(|r| {
                vec![
                    r.key.clone(),
                    r.name.clone().unwrap_or_default(),
                    r.brand.clone().unwrap_or_default(),
                    r.pipeline.clone().unwrap_or_default(),
                    r.owner_id.clone().unwrap_or_default(),
                ]
            })
            .collect(),
        TableName::AppointmentTypes => mapping
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
        TableName::AppointmentStates => mapping
            .appointment_states
            .iter()
            .map(|r| vec![r.ivoris_value.clone(), r.state.label().to_owned()])
            .collect(),
        TableName::Stages => mapping
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
        TableName::TreatmentCategories => mapping
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
        TableName::EntryTypes => mapping
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
        TableName::ContactFields => mapping
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
    }
}

/// One table as a file for German Excel (UTF-8 with BOM, `;`, CRLF).
pub fn export_table(mapping: &Mapping, table: TableName) -> Result<Vec<u8>, CsvWriteError> {
    csvio::write_excel(&header(table), &table_rows(mapping, table))
}

/// One table read from a file, laid over a base mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableImport {
    /// The table the file holds.
    pub table: TableName,
    /// How the file was decoded.
    pub encoding: SourceEncoding,
    /// Its delimiter.
    pub delimiter: u8,
    /// Data rows in the file (read or not).
    pub rows_in_file: usize,
    /// Rows that could be read.
    pub rows_kept: usize,
    /// The base mapping with this table replaced by the rows that could be
    /// read.
    pub mapping: Mapping,
    /// Every problem of this table: unreadable rows and model checks, with
    /// line and column.
    pub problems: Vec<Problem>,
}

impl TableImport {
    /// Whether every row was read and the table passes validation
    /// (warnings do not count: they never block).
    pub fn is_clean(&self) -> bool {
        !self.problems.iter().any(Problem::is_error)
    }
}

/// Reads one table file and lays it over `base`. Nothing is stored: the
/// caller decides whether to keep the result (never with errors unless
/// the person chose to drop the invalid rows; warnings do not block).
pub fn import_table(base: &Mapping, table: TableName, bytes: &[u8]) -> TableImport {
    let document = csvio::read(bytes);
    let mut mapping = base.clone();
    let mut problems = Vec::new();
    let kept = read_document(table, &document, &mut mapping, &mut problems);
    let rows_kept = kept.len();
    let mut lines = RowLines::default();
    lines.lines.insert(table, kept);
    problems.extend(
        super::validate::validate(&mapping, &lines)
            .into_iter()
            .filter(|p| p.table == table),
    );
    let unreadable = document
        .errors
        .iter()
        .filter(|e| !document.rows.iter().any(|r| r.line == e.line))
        .count();
    TableImport {
        table,
        encoding: document.encoding,
        delimiter: document.delimiter,
        rows_in_file: document.rows.len() + unreadable,
        rows_kept,
        mapping,
        problems,
    }
}

/// Which table a file holds: by its name (`treatment_categories.csv`,
/// `Behandlungskategorien.csv`), else by the header it has.
pub fn detect_table(file_name: &str, bytes: &[u8]) -> Option<TableName> {
    let stem = csvio::header_key(
        std::path::Path::new(file_name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(""),
    );
    let by_name = TableName::ALL
        .into_iter()
        .find(|t| csvio::header_key(t.file_stem()) == stem || csvio::header_key(t.label()) == stem);
    if by_name.is_some() {
        return by_name;
    }
    let document = csvio::read(bytes);
    // Tables sharing column names (Kategorie) are told apart by all their
    // required columns; the most specific fit wins.
    TableName::ALL
        .into_iter()
        .filter(|t| Columns::fits(&document.header, columns(*t)))
        .max_by_key(|t| columns(*t).iter().filter(|c| c.required).count())
}

/// A file of one table or a ZIP of several, read over a base mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileImport {
    /// Each table found, in the order read.
    pub tables: Vec<TableImport>,
    /// The base with every table found replaced.
    pub mapping: Mapping,
    /// Files that hold no known table (German / English reason each).
    pub unknown: Vec<String>,
}

impl FileImport {
    /// Every problem of every table, warnings included.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.tables.iter().flat_map(|t| t.problems.iter())
    }

    /// The problems that block taking the import.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems().filter(|p| p.is_error())
    }

    /// Whether the import can be saved as it is.
    pub fn is_clean(&self) -> bool {
        self.unknown.is_empty() && self.tables.iter().all(TableImport::is_clean)
    }
}

/// Reads a `.csv` of one table (which one is told by its name or header)
/// or a `.zip` of several, over `base`. Nothing is stored.
pub fn import_file(
    base: &Mapping,
    file_name: &str,
    bytes: &[u8],
) -> Result<FileImport, super::archive::ArchiveError> {
    let files = if file_name.to_lowercase().ends_with(".zip") || bytes.starts_with(b"PK\x03\x04") {
        super::archive::read_zip(bytes)?
    } else {
        vec![(file_name.to_owned(), bytes.to_vec())]
    };
    let mut import = FileImport {
        tables: Vec::new(),
        mapping: base.clone(),
        unknown: Vec::new(),
    };
    for (name, content) in files {
        match detect_table(&name, &content) {
            Some(table) => {
                let read = import_table(&import.mapping, table, &content);
                import.mapping = read.mapping.clone();
                import.tables.push(read);
            }
            None => import.unknown.push(format!(
                "„{name}“: keine bekannte Zuordnungstabelle (Kopfzeile prüfen) / \"{name}\": not a known mapping table (check the header)"
            )),
        }
    }
    Ok(import)
}

/// The rows of every table as the editor holds them (the CSV cells of
/// [`table_rows`], in [`header`] order).
pub type DraftTables = std::collections::BTreeMap<TableName, Vec<Vec<String>>>;

/// The editor's rows of a mapping.
pub fn draft_of(mapping: &Mapping) -> DraftTables {
    TableName::ALL
        .into_iter()
        .map(|table| (table, table_rows(mapping, table)))
        .collect()
}

/// Reads the editor's rows exactly as a CSV file with these rows would be
/// read: row `i` of a table is line `i + 2` in every problem.
pub fn mapping_from_draft(draft: &DraftTables) -> ParsedMapping {
    let mut problems = Vec::new();
    let mut mapping = Mapping::empty();
    let mut lines = RowLines::default();
    for table in TableName::ALL {
        let rows = draft.get(&table).map_or(&[][..], Vec::as_slice);
        let document = CsvDocument {
            encoding: SourceEncoding::Utf8,
            delimiter: b';',
            header: header(table).into_iter().map(str::to_owned).collect(),
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, cells)| CsvRow {
                    line: i + 2,
                    cells: cells.iter().map(|c| c.trim().to_owned()).collect(),
                })
                .collect(),
            errors: Vec::new(),
        };
        let kept = read_document(table, &document, &mut mapping, &mut problems);
        lines.lines.insert(table, kept);
    }
    problems.extend(super::validate::validate(&mapping, &lines));
    ParsedMapping { mapping, problems }
}

/// The words a cell may hold when it is a choice (shown as a list in the
/// editor); `None` for free text.
pub fn choices(table: TableName, column: usize) -> Option<Vec<&'static str>> {
    let yes_no = || Some(vec!["ja", "nein"]);
    let categories = || Some(Category::ALL.map(Category::label).to_vec());
    match (table, column) {
        (TableName::AppointmentTypes, 1) => {
            Some(AppointmentKind::ALL.map(AppointmentKind::label).to_vec())
        }
        (TableName::AppointmentTypes, 2) => yes_no(),
        (TableName::AppointmentStates, 1) => {
            Some(AppointmentState::ALL.map(AppointmentState::label).to_vec())
        }
        (TableName::Stages, 0) => Some(Stage::ALL.map(Stage::key).to_vec()),
        (TableName::TreatmentCategories, 2) => categories(),
        (TableName::EntryTypes, 1) => Some(Counting::ALL.map(Counting::label).to_vec()),
        (TableName::EntryTypes, 2) => {
            let mut list = vec![""];
            list.extend(Category::ALL.map(Category::label));
            Some(list)
        }
        (TableName::ContactFields, 0) => Some(PatientField::ALL.map(PatientField::key).to_vec()),
        (TableName::ContactFields, 2 | 3) => yes_no(),
        _ => None,
    }
}
