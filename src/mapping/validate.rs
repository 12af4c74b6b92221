//! Validation of the mapping tables: problems carry the table, the row (the
//! CSV line number, the header being line 1) and a German and English reason,
//! so staff can fix the spreadsheet they edit.

use std::collections::{HashMap, HashSet};

use super::pattern::shadows;
use super::{CataloguePattern, CategoryRule, CodePattern, Mapping, Stage};

/// The table a problem is in; also names the CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableName {
    AppointmentTypes,
    AppointmentStates,
    Stages,
    TreatmentCategories,
    EntryTypes,
    ContactFields,
    Locations,
}

impl TableName {
    /// Every table, in editor and export order.
    pub const ALL: [TableName; 7] = [
        TableName::Locations,
        TableName::AppointmentTypes,
        TableName::AppointmentStates,
        TableName::Stages,
        TableName::TreatmentCategories,
        TableName::EntryTypes,
        TableName::ContactFields,
    ];

    /// File name without `.csv` on export (and the shipped defaults).
    pub fn file_stem(self) -> &'static str {
        match self {
            TableName::AppointmentTypes => "appointment_types",
            TableName::AppointmentStates => "appointment_states",
            TableName::Stages => "stages",
            TableName::TreatmentCategories => "treatment_categories",
            TableName::EntryTypes => "entry_types",
            TableName::ContactFields => "contact_fields",
            TableName::Locations => "locations",
        }
    }

    /// English table name.
    pub fn label_en(self) -> &'static str {
        match self {
            TableName::AppointmentTypes => "Appointment types",
            TableName::AppointmentStates => "Appointment states",
            TableName::Stages => "Stages",
            TableName::TreatmentCategories => "Treatment categories",
            TableName::EntryTypes => "Entry types",
            TableName::ContactFields => "Contact fields",
            TableName::Locations => "Locations",
        }
    }

    /// The table with this file stem or German / English name.
    pub fn from_name(name: &str) -> Option<TableName> {
        let name = crate::csvio::header_key(name);
        TableName::ALL.into_iter().find(|t| {
            [t.file_stem(), t.label(), t.label_en()]
                .iter()
                .any(|n| crate::csvio::header_key(n) == name)
        })
    }

    /// German table name shown to staff.
    pub fn label(self) -> &'static str {
        match self {
            TableName::AppointmentTypes => "Terminarten",
            TableName::AppointmentStates => "Terminstatus",
            TableName::Stages => "Phasen",
            TableName::TreatmentCategories => "Behandlungskategorien",
            TableName::EntryTypes => "Eintragsarten",
            TableName::ContactFields => "Kontaktfelder",
            TableName::Locations => "Standorte",
        }
    }
}

/// How much a problem weighs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The mapping cannot be used like this: saving and importing refuse it.
    #[default]
    Error,
    /// Worth a look but often intended (a row partly overlapped by an
    /// earlier one): shown, never blocks.
    Warning,
}

/// One problem in a mapping table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Which table.
    pub table: TableName,
    /// Whether it blocks saving and importing.
    pub severity: Severity,
    /// CSV line number (header = 1, first row = 2); 0 for the table as a whole.
    pub row: usize,
    /// The column (standard header name), when the problem is in one cell.
    pub column: Option<String>,
    /// Reason in German.
    pub reason_de: String,
    /// Reason in English.
    pub reason_en: String,
}

impl Problem {
    /// An error at a row.
    pub fn new(
        table: TableName,
        row: usize,
        reason_de: impl Into<String>,
        reason_en: impl Into<String>,
    ) -> Problem {
        Problem {
            table,
            severity: Severity::Error,
            row,
            column: None,
            reason_de: reason_de.into(),
            reason_en: reason_en.into(),
        }
    }

    /// A warning at a row: shown, never blocking.
    pub fn warning(
        table: TableName,
        row: usize,
        reason_de: impl Into<String>,
        reason_en: impl Into<String>,
    ) -> Problem {
        Problem {
            severity: Severity::Warning,
            ..Problem::new(table, row, reason_de, reason_en)
        }
    }

    /// The same problem, located in a column.
    pub fn in_column(mut self, column: impl Into<String>) -> Problem {
        self.column = Some(column.into());
        self
    }

    /// Whether it blocks saving and importing.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (label_de, label_en) = match self.severity {
            Severity::Error => ("", ""),
            Severity::Warning => ("Hinweis: ", "warning: "),
        };
        match &self.column {
            Some(column) => write!(
                f,
                "{}, Zeile {}, Spalte „{column}“: {label_de}{} / row {}, column \"{column}\": {label_en}{}",
                self.table.label(),
                self.row,
                self.reason_de,
                self.row,
                self.reason_en
            ),
            None => write!(
                f,
                "{}, Zeile {}: {label_de}{} / row {}: {label_en}{}",
                self.table.label(),
                self.row,
                self.reason_de,
                self.row,
                self.reason_en
            ),
        }
    }
}

/// CSV line numbers of the rows of each table as read, so problems found
/// in the model point at the right line even when rows before were left
/// out. A table without recorded lines counts from line 2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowLines {
    /// Lines per table, by row index.
    pub lines: std::collections::BTreeMap<TableName, Vec<usize>>,
}

impl RowLines {
    /// The CSV line of the row at `index` of `table`.
    pub fn line(&self, table: TableName, index: usize) -> usize {
        self.lines
            .get(&table)
            .and_then(|lines| lines.get(index))
            .copied()
            .unwrap_or(index + 2)
    }
}

/// Reports rows whose key repeats an earlier row's key.
fn duplicates(
    table: TableName,
    keys: impl Iterator<Item = String>,
    lines: &RowLines,
    problems: &mut Vec<Problem>,
) {
    let mut seen = HashSet::new();
    for (index, key) in keys.enumerate() {
        if !seen.insert(key.clone()) {
            problems.push(Problem::new(
                table,
                lines.line(table, index),
                format!("„{key}“ steht schon in einer früheren Zeile"),
                format!("\"{key}\" already appears in an earlier row"),
            ));
        }
    }
}

fn empty(
    table: TableName,
    index: usize,
    column: &str,
    lines: &RowLines,
    problems: &mut Vec<Problem>,
) {
    problems.push(Problem::new(
        table,
        lines.line(table, index),
        format!("Spalte „{column}“ ist leer"),
        format!("column \"{column}\" is empty"),
    ));
}

/// Checks every table of a mapping whose rows were read from these lines.
pub fn validate(mapping: &Mapping, lines: &RowLines) -> Vec<Problem> {
    let mut problems = Vec::new();

    let types = TableName::AppointmentTypes;
    for (index, rule) in mapping.appointment_types.iter().enumerate() {
        if rule.label.trim().is_empty() {
            empty(types, index, "Terminart", lines, &mut problems);
        }
    }
    duplicates(
        types,
        mapping
            .appointment_types
            .iter()
            .map(|r| r.label.trim().to_lowercase()),
        lines,
        &mut problems,
    );
    let mut template_ids = HashSet::new();
    for (index, rule) in mapping.appointment_types.iter().enumerate() {
        if let Some(id) = rule.template_id.as_deref().map(str::trim)
            && !template_ids.insert(id)
        {
            problems.push(Problem::new(
                types,
                lines.line(types, index),
                format!("Vorlagen-Id „{id}“ steht schon in einer früheren Zeile"),
                format!("template Id \"{id}\" already appears in an earlier row"),
            ));
        }
    }

    let states = TableName::AppointmentStates;
    for (index, rule) in mapping.appointment_states.iter().enumerate() {
        if rule.ivoris_value.trim().is_empty() {
            empty(states, index, "Ivoris-Wert", lines, &mut problems);
        }
    }
    duplicates(
        states,
        mapping
            .appointment_states
            .iter()
            .map(|r| r.ivoris_value.trim().to_lowercase()),
        lines,
        &mut problems,
    );

    let stages = TableName::Stages;
    for (index, rule) in mapping.stages.iter().enumerate() {
        if rule.label.trim().is_empty() {
            empty(
                stages,
                index,
                "Bezeichnung in HubSpot",
                lines,
                &mut problems,
            );
        }
    }
    duplicates(
        stages,
        mapping.stages.iter().map(|r| r.stage.key().to_owned()),
        lines,
        &mut problems,
    );
    for stage in Stage::ALL {
        if mapping.stage_label(stage).is_none() {
            problems.push(Problem::new(
                stages,
                0,
                format!("Phase „{}“ fehlt", stage.key()),
                format!("stage \"{}\" is missing", stage.key()),
            ));
        }
    }
    if mapping.won_after_days == 0 {
        problems.push(Problem::new(
            stages,
            0,
            "„Tage ohne Aktivität“ muss mindestens 1 sein",
            "\"days without activity\" must be at least 1",
        ));
    }

    category_order(mapping, lines, &mut problems);

    let entries = TableName::EntryTypes;
    for (index, rule) in mapping.entry_types.iter().enumerate() {
        if rule.entry_type.trim().is_empty() {
            empty(entries, index, "Eintragsart", lines, &mut problems);
        }
    }
    duplicates(
        entries,
        mapping
            .entry_types
            .iter()
            .map(|r| r.entry_type.trim().to_lowercase()),
        lines,
        &mut problems,
    );

    let fields = TableName::ContactFields;
    for (index, rule) in mapping.contact_fields.iter().enumerate() {
        if rule.property.trim().is_empty() {
            empty(fields, index, "HubSpot-Eigenschaft", lines, &mut problems);
        }
    }
    duplicates(
        fields,
        mapping
            .contact_fields
            .iter()
            .map(|r| r.field.key().to_owned()),
        lines,
        &mut problems,
    );
    duplicates(
        fields,
        mapping
            .contact_fields
            .iter()
            .map(|r| r.property.trim().to_lowercase()),
        lines,
        &mut problems,
    );

    let locations = TableName::Locations;
    for (index, rule) in mapping.locations.iter().enumerate() {
        let key = rule.key.trim();
        if key.is_empty() {
            empty(locations, index, "Standort", lines, &mut problems);
        } else if !key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            problems.push(
                Problem::new(
                    locations,
                    lines.line(locations, index),
                    format!("„{key}“ ist kein Standortschlüssel (a-z, 0-9, -)"),
                    format!("\"{key}\" is not a location key (a-z, 0-9, -)"),
                )
                .in_column("Standort"),
            );
        }
        if let Some(owner) = rule.owner_id.as_deref().map(str::trim)
            && !owner.chars().all(|c| c.is_ascii_digit())
        {
            problems.push(
                Problem::new(
                    locations,
                    lines.line(locations, index),
                    format!("„{owner}“ ist keine HubSpot-Owner-Id (nur Ziffern)"),
                    format!("\"{owner}\" is not a HubSpot owner id (digits only)"),
                )
                .in_column("Deal-Owner (HubSpot-Id)"),
            );
        }
    }
    duplicates(
        locations,
        mapping.locations.iter().map(|r| r.key.trim().to_owned()),
        lines,
        &mut problems,
    );
    problems
}

/// First match wins in the category table, so an earlier row can take
/// codes from a later one. All of them: the later row is dead, an error.
/// Some of them, with another category: a warning naming the row that
/// applies. A later row that takes in an earlier one entirely (`GOZ 2*`
/// Füllung before `GOZ *`) is the intended "specific first, general
/// later" and not reported.
fn category_order(mapping: &Mapping, lines: &RowLines, problems: &mut Vec<Problem>) {
    let table = TableName::TreatmentCategories;
    let rows = &mapping.categories;
    fn key(rule: &CategoryRule) -> (&CataloguePattern, &CodePattern) {
        (&rule.catalogue, &rule.pattern)
    }
    // Every row is compared with every earlier one after each edit in the
    // editor, so rows of other catalogues, or whose codes cannot start
    // alike, are passed over on numbers computed once per row
    // (benches/mapping_check.rs).
    let starts: Vec<u64> = rows.iter().map(|rule| rule.pattern.first_chars()).collect();
    let mut names: HashMap<String, usize> = HashMap::new();
    let catalogues: Vec<Option<usize>> = rows
        .iter()
        .map(|rule| match &rule.catalogue {
            CataloguePattern::Any => None,
            CataloguePattern::Named(name) => {
                let folded: String = name.chars().flat_map(char::to_lowercase).collect();
                let next = names.len();
                Some(*names.entry(folded).or_insert(next))
            }
        })
        .collect();
    // Single codes and lists (what „Nicht zugeordnet“ adds) meet exactly
    // when they share a code.
    let fold = |code: &String| -> String { code.chars().flat_map(char::to_lowercase).collect() };
    let codes: Vec<Option<Vec<String>>> = rows
        .iter()
        .map(|rule| match &rule.pattern {
            CodePattern::Exact(code) => Some(vec![fold(code)]),
            CodePattern::List(items) => Some(items.iter().map(fold).collect()),
            _ => None,
        })
        .collect();
    let may_meet = |a: usize, b: usize| {
        starts[a] & starts[b] != 0
            && match (catalogues[a], catalogues[b]) {
                (Some(x), Some(y)) => x == y,
                _ => true,
            }
            && match (&codes[a], &codes[b]) {
                (Some(x), Some(y)) => x.iter().any(|code| y.contains(code)),
                _ => true,
            }
    };
    // The first earlier row that takes every code of each row.
    let shadowed: Vec<Option<usize>> = (0..rows.len())
        .map(|index| {
            (0..index).find(|&e| may_meet(e, index) && shadows(key(&rows[e]), key(&rows[index])))
        })
        .collect();
    for (index, rule) in rows.iter().enumerate() {
        if let Some(earlier) = shadowed[index] {
            problems.push(Problem::new(
                table,
                lines.line(table, index),
                format!(
                    "„{} {}“ greift nie, Zeile {} erfasst schon alle diese Codes",
                    rule.catalogue,
                    rule.pattern,
                    lines.line(table, earlier)
                ),
                format!(
                    "\"{} {}\" can never match, row {} already takes all these codes",
                    rule.catalogue,
                    rule.pattern,
                    lines.line(table, earlier)
                ),
            ));
            continue;
        }
        // A dead earlier row takes nothing; one of the same category
        // changes nothing.
        let mut taking = (0..index).filter(|&e| {
            let earlier = &rows[e];
            earlier.category != rule.category
                && may_meet(e, index)
                && earlier.pattern.intersects(&rule.pattern)
                && !shadows(key(rule), key(earlier))
                && shadowed[e].is_none()
        });
        let Some(first) = taking.next() else {
            continue;
        };
        let earlier = &rows[first];
        let line = lines.line(table, first);
        let more: Vec<String> = taking.map(|e| lines.line(table, e).to_string()).collect();
        let (more_de, more_en) = if more.is_empty() {
            (String::new(), String::new())
        } else {
            (
                format!("; ebenso Zeile {}", more.join(", ")),
                format!("; likewise row {}", more.join(", ")),
            )
        };
        let (example_de, example_en) = match earlier.pattern.common_example(&rule.pattern) {
            Some(code) => (format!(" (z. B. {code})"), format!(" (e.g. {code})")),
            None => (String::new(), String::new()),
        };
        problems.push(Problem::warning(
            table,
            lines.line(table, index),
            format!(
                "„{} {}“ überschneidet sich mit Zeile {line} („{} {}“): für diese Codes{example_de} gilt Zeile {line} (Kategorie {}){more_de}",
                rule.catalogue,
                rule.pattern,
                earlier.catalogue,
                earlier.pattern,
                earlier.category.label(),
            ),
            format!(
                "\"{} {}\" overlaps row {line} (\"{} {}\"): for these codes{example_en} row {line} (category {}) applies{more_en}",
                rule.catalogue,
                rule.pattern,
                earlier.catalogue,
                earlier.pattern,
                earlier.category.label(),
            ),
        ));
    }
}

/// Checks the stage table against the stage labels of the HubSpot pipeline
/// (read by the engine): a label HubSpot does not have would stop every
/// sync, so it is reported at its row before the mapping is saved.
pub fn check_stage_labels(mapping: &Mapping, pipeline_labels: &[String]) -> Vec<Problem> {
    let lines = RowLines::default();
    mapping
        .stages
        .iter()
        .enumerate()
        .filter(|(_, rule)| {
            !rule.label.trim().is_empty() && !pipeline_labels.iter().any(|l| l == rule.label.trim())
        })
        .map(|(index, rule)| {
            Problem::new(
                TableName::Stages,
                lines.line(TableName::Stages, index),
                format!(
                    "„{}“ ist keine Phase der HubSpot-Pipeline (vorhanden: {})",
                    rule.label,
                    pipeline_labels.join(", ")
                ),
                format!(
                    "\"{}\" is not a stage of the HubSpot pipeline (present: {})",
                    rule.label,
                    pipeline_labels.join(", ")
                ),
            )
            .in_column("Bezeichnung in HubSpot")
        })
        .collect()
}

/// Checks the pipelines of the location table against the deal pipelines
/// HubSpot has (label → stage labels, read by the engine): a location whose
/// pipeline is missing, or lacks a stage the stage table names, would stop
/// every sync, so it is reported at its row before the mapping is saved.
pub fn check_location_pipelines(
    mapping: &Mapping,
    pipelines: &std::collections::BTreeMap<String, Vec<String>>,
) -> Vec<Problem> {
    let lines = RowLines::default();
    let table = TableName::Locations;
    let column = "HubSpot-Pipeline";
    let mut problems = Vec::new();
    for (index, rule) in mapping.locations.iter().enumerate() {
        let Some(pipeline) = rule.pipeline.as_deref().map(str::trim) else {
            continue;
        };
        if pipeline.is_empty() {
            continue;
        }
        let line = lines.line(table, index);
        let Some(stages) = pipelines.get(pipeline) else {
            let present: Vec<&str> = pipelines.keys().map(String::as_str).collect();
            problems.push(
                Problem::new(
                    table,
                    line,
                    format!(
                        "HubSpot hat keine Deal-Pipeline „{pipeline}“ (vorhanden: {})",
                        present.join(", ")
                    ),
                    format!(
                        "HubSpot has no deal pipeline \"{pipeline}\" (present: {})",
                        present.join(", ")
                    ),
                )
                .in_column(column),
            );
            continue;
        };
        let missing: Vec<&str> = Stage::ALL
            .iter()
            .filter_map(|stage| mapping.stage_label(*stage))
            .map(str::trim)
            .filter(|label| !label.is_empty() && !stages.iter().any(|s| s == label))
            .collect();
        if !missing.is_empty() {
            problems.push(
                Problem::new(
                    table,
                    line,
                    format!(
                        "Der Pipeline „{pipeline}“ fehlen Phasen der Phasen-Tabelle: {}",
                        missing.join(", ")
                    ),
                    format!(
                        "the pipeline \"{pipeline}\" lacks stages of the stage table: {}",
                        missing.join(", ")
                    ),
                )
                .in_column(column),
            );
        }
    }
    problems
}
