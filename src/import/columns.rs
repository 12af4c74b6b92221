//! Which column of an export is which field: header aliases per kind, the
//! column assignment (each column → a field or „ignorieren“), and the
//! header signature the ledger remembers an assignment under, so the next
//! file of the same export needs none.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::csvio::{RowError, header_key};
use crate::ledger::identity::RecordKind;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    /// Patienten.
    Patients,
    /// Termine.
    Appointments,
    /// Leistungen (billing lines, document entries).
    Entries,
}

impl ImportKind {
    /// Every kind, in the order they should be imported.
    pub const ALL: [ImportKind; 3] = [
        ImportKind::Patients,
        ImportKind::Appointments,
        ImportKind::Entries,
    ];

    /// Name on the command line and in the history.
    pub fn name(self) -> &'static str {
        match self {
            ImportKind::Patients => "patients",
            ImportKind::Appointments => "appointments",
            ImportKind::Entries => "entries",
        }
    }

    /// German label.
    pub fn label_de(self) -> &'static str {
        match self {
            ImportKind::Patients => "Patienten",
            ImportKind::Appointments => "Termine",
            ImportKind::Entries => "Leistungen",
        }
    }

    /// English label.
    pub fn label_en(self) -> &'static str {
        match self {
            ImportKind::Patients => "patients",
            ImportKind::Appointments => "appointments",
            ImportKind::Entries => "billing lines",
        }
    }

    /// The kind of a command-line name.
    pub fn from_name(name: &str) -> Option<ImportKind> {
        ImportKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The mirror's record kind.
    pub fn record_kind(self) -> RecordKind {
        match self {
            ImportKind::Patients => RecordKind::Patient,
            ImportKind::Appointments => RecordKind::Appointment,
            ImportKind::Entries => RecordKind::Entry,
        }
    }

    /// The fields a file of this kind may have, with their header aliases.
    pub fn fields(self) -> &'static [(Field, &'static [&'static str])] {
        match self {
            ImportKind::Patients => PATIENT_FIELDS,
            ImportKind::Appointments => APPOINTMENT_FIELDS,
            ImportKind::Entries => ENTRY_FIELDS,
        }
    }
}

/// A field of an Ivoris record a column can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The record's Ivoris UUID.
    Uuid,
    /// The patient's Ivoris UUID (appointments, billing lines).
    PatientUuid,
    /// The practice's patient number (`HumanReadableId`).
    PatientNumber,
    Firstname,
    Lastname,
    Birthday,
    Gender,
    Email,
    Phone,
    Mobile,
    Street,
    Zip,
    City,
    Country,
    HealthInsurance,
    /// Read and dropped: never stored (DESIGN.md §3.7).
    InsuranceNumber,
    /// Date and time of an appointment in one cell.
    Start,
    /// Date (of a billing line, or of an appointment with a time column).
    Date,
    /// Time of an appointment beside its date.
    Time,
    DurationMinutes,
    TypeLabel,
    State,
    ConfirmationState,
    PractitionerId,
    ChairId,
    EntryType,
    Catalogue,
    Code,
    Quantity,
    Factor,
    Amount,
    /// Read and dropped: never stored (DESIGN.md §3.7).
    Tooth,
    /// Read and dropped: never stored (DESIGN.md §3.7).
    Text,
}

impl Field {
    /// Name on the command line (`--columns "Pat.-Nr.=patient_number"`).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The field of a command-line name.
    pub fn from_name(name: &str) -> Option<Field> {
        serde_json::from_value(serde_json::Value::String(name.trim().to_owned())).ok()
    }

    /// Whether the field's values are health data the app never keeps.
    pub fn dropped(self) -> bool {
        matches!(self, Field::InsuranceNumber | Field::Tooth | Field::Text)
    }
}

const PATIENT_FIELDS: &[(Field, &[&str])] = &[
    (
        Field::Uuid,
        &["Id", "UUID", "GUID", "Ivoris-Id", "Patient-Id", "PatientId"],
    ),
    (
        Field::PatientNumber,
        &[
            "Patientennummer",
            "Pat.-Nr.",
            "PatNr",
            "Patienten-Nr.",
            "IVORIS-Nr",
            "HumanReadableId",
            "Nr.",
        ],
    ),
    (Field::Firstname, &["Vorname", "Firstname"]),
    (
        Field::Lastname,
        &["Nachname", "Name", "Lastname", "Familienname"],
    ),
    (
        Field::Birthday,
        &["Geburtsdatum", "Geb.-Datum", "Geburtstag", "Birthday"],
    ),
    (Field::Gender, &["Geschlecht", "Gender"]),
    (Field::Email, &["E-Mail", "Email", "Mail"]),
    (
        Field::Phone,
        &["Telefon", "Tel.", "Telefon privat", "Phone"],
    ),
    (Field::Mobile, &["Mobil", "Handy", "Mobiltelefon", "Mobile"]),
    (Field::Street, &["Straße", "Strasse", "Street"]),
    (Field::Zip, &["PLZ", "Postleitzahl", "Zip"]),
    (Field::City, &["Ort", "Wohnort", "Stadt", "City"]),
    (Field::Country, &["Land", "Country"]),
    (
        Field::HealthInsurance,
        &[
            "Versicherung",
            "Versicherungsart",
            "Kasse",
            "Krankenkasse",
            "HealthInsurance",
        ],
    ),
    (
        Field::InsuranceNumber,
        &["Versichertennummer", "Vers.-Nr.", "InsuranceNumber"],
    ),
    (Field::Text, &["Bemerkung", "Notiz"]),
];

const APPOINTMENT_FIELDS: &[(Field, &[&str])] = &[
    (
        Field::Uuid,
        &["Id", "UUID", "GUID", "Termin-Id", "Ivoris-Id"],
    ),
    (
        Field::PatientUuid,
        &["PatientId", "Patient-Id", "Patienten-UUID", "Patient-UUID"],
    ),
    (
        Field::PatientNumber,
        &[
            "Patientennummer",
            "Pat.-Nr.",
            "PatNr",
            "Patienten-Nr.",
            "IVORIS-Nr",
            "HumanReadableId",
        ],
    ),
    (
        Field::Start,
        &[
            "Beginn",
            "Terminbeginn",
            "Termin",
            "Start",
            "Datum/Uhrzeit",
            "Zeitpunkt",
        ],
    ),
    (Field::Date, &["Datum", "Termindatum", "Date"]),
    (Field::Time, &["Uhrzeit", "Zeit", "Time", "Von"]),
    (
        Field::DurationMinutes,
        &[
            "Dauer",
            "Dauer (Min.)",
            "Dauer Minuten",
            "Minuten",
            "DurationMinutes",
        ],
    ),
    (
        Field::TypeLabel,
        &["Terminart", "Art", "Termintyp", "TypeLabel", "Vorlage"],
    ),
    (Field::State, &["Status", "Terminstatus", "State"]),
    (
        Field::ConfirmationState,
        &["Bestätigung", "Bestaetigung", "ConfirmationState"],
    ),
    (
        Field::PractitionerId,
        &["Behandler", "Behandler-Id", "PractitionerId"],
    ),
    (
        Field::ChairId,
        &["Stuhl", "Behandlungsstuhl", "DentistChairId"],
    ),
    (Field::Text, &["Bemerkung", "Notiz", "Text"]),
];

const ENTRY_FIELDS: &[(Field, &[&str])] = &[
    (
        Field::Uuid,
        &["Id", "UUID", "GUID", "Eintrag-Id", "Ivoris-Id"],
    ),
    (
        Field::PatientUuid,
        &["PatientId", "Patient-Id", "Patienten-UUID", "Patient-UUID"],
    ),
    (
        Field::PatientNumber,
        &[
            "Patientennummer",
            "Pat.-Nr.",
            "PatNr",
            "Patienten-Nr.",
            "IVORIS-Nr",
            "HumanReadableId",
        ],
    ),
    (
        Field::Date,
        &["Datum", "Leistungsdatum", "Behandlungsdatum", "Date"],
    ),
    (
        Field::EntryType,
        &["Typ", "Art", "Eintragsart", "Leistungsart", "Type"],
    ),
    (
        Field::Catalogue,
        &[
            "Katalog",
            "Gebührenordnung",
            "Gebuehrenordnung",
            "GO",
            "Catalogue",
        ],
    ),
    (
        Field::Code,
        &[
            "Ziffer",
            "Leistungsziffer",
            "Gebührennummer",
            "GebNr",
            "Code",
        ],
    ),
    (Field::Quantity, &["Anzahl", "Menge", "Quantity"]),
    (Field::Factor, &["Faktor", "Steigerungsfaktor", "Factor"]),
    (
        Field::Amount,
        &[
            "Betrag",
            "Betrag (€)",
            "Betrag EUR",
            "Euro",
            "Honorar",
            "Amount",
        ],
    ),
    (
        Field::PractitionerId,
        &["Behandler", "Behandler-Id", "PractitionerId"],
    ),
    (Field::Tooth, &["Zahn", "Zähne", "Zaehne", "Tooth"]),
    (
        Field::Text,
        &["Text", "Leistungstext", "Bemerkung", "Beschreibung"],
    ),
];

/// What one column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The column holds this field.
    Field(Field),
    /// The column is left out („ignorieren“).
    Ignore,
}

impl Target {
    /// Parses `ignore` or a field name.
    pub fn from_name(name: &str) -> Option<Target> {
        match name.trim() {
            "ignore" | "ignorieren" => Some(Target::Ignore),
            other => Field::from_name(other).map(Target::Field),
        }
    }

    /// Name as `--columns` takes it.
    pub fn name(self) -> String {
        match self {
            Target::Field(field) => field.name(),
            Target::Ignore => "ignore".to_owned(),
        }
    }
}

/// Choices for some columns by header name (from `--columns`, the GUI or
/// the remembered layout); compared by [`header_key`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnChoices(pub BTreeMap<String, Target>);

impl ColumnChoices {
    /// Parses `"Pat.-Nr.=patient_number,Bemerkung=ignore"`.
    pub fn parse(map: &str) -> Result<ColumnChoices, String> {
        let mut choices = BTreeMap::new();
        for pair in map.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((header, target)) = pair.rsplit_once('=') else {
                return Err(format!(
                    "„{pair}“: erwartet SPALTE=FELD / \"{pair}\": expected COLUMN=FIELD"
                ));
            };
            let target = Target::from_name(target).ok_or_else(|| {
                format!("unbekanntes Feld „{target}“ / unknown field \"{target}\"")
            })?;
            choices.insert(header.trim().to_owned(), target);
        }
        Ok(ColumnChoices(choices))
    }

    fn get(&self, header: &str) -> Option<Target> {
        let key = header_key(header);
        self.0
            .iter()
            .find(|(name, _)| header_key(name) == key)
            .map(|(_, target)| *target)
    }
}

/// The header signature of a layout: the same export of the same kind
/// gives the same signature whatever its rows.
pub fn signature(kind: ImportKind, header: &[String]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(kind.name().as_bytes());
    for name in header {
        hasher.update(b"\x1f");
        hasher.update(header_key(name).as_bytes());
    }
    hasher.finalize().to_hex()[..32].to_owned()
}

/// Where a column's meaning came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A header alias recognised it.
    Alias,
    /// The layout remembered from an earlier file.
    Remembered,
    /// Chosen now (`--columns`, the import dialog).
    Chosen,
    /// Not recognised: needs a choice.
    Unknown,
}

/// One column of the file and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Header as in the file.
    pub header: String,
    /// What it holds; `None` while unknown.
    pub target: Option<Target>,
    /// Where that came from.
    pub source: Source,
}

/// Every column of a file with its meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnAssignment {
    /// What the file holds.
    pub kind: ImportKind,
    /// In file order.
    pub columns: Vec<Column>,
}

impl ColumnAssignment {
    /// Recognises every column: a choice wins over the remembered layout,
    /// which wins over the aliases.
    pub fn resolve(
        kind: ImportKind,
        header: &[String],
        chosen: &ColumnChoices,
        remembered: &ColumnChoices,
    ) -> ColumnAssignment {
        let columns = header
            .iter()
            .map(|name| {
                let (target, source) = if let Some(target) = chosen.get(name) {
                    (Some(target), Source::Chosen)
                } else if let Some(target) = remembered.get(name) {
                    (Some(target), Source::Remembered)
                } else if let Some(field) = alias_field(kind, name) {
                    (Some(Target::Field(field)), Source::Alias)
                } else {
                    (None, Source::Unknown)
                };
                Column {
                    header: name.clone(),
                    target,
                    source,
                }
            })
            .collect();
        ColumnAssignment { kind, columns }
    }

    /// The column index of a field.
    pub fn position(&self, field: Field) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.target == Some(Target::Field(field)))
    }

    /// The assignment as choices, for the ledger to remember.
    pub fn choices(&self) -> ColumnChoices {
        ColumnChoices(
            self.columns
                .iter()
                .filter_map(|c| c.target.map(|t| (c.header.clone(), t)))
                .collect(),
        )
    }

    /// Problems that block the import: unknown columns, a field twice, a
    /// field of another kind, required fields missing. All on line 1.
    pub fn problems(&self) -> Vec<RowError> {
        let mut problems = Vec::new();
        let allowed: Vec<Field> = self.kind.fields().iter().map(|(f, _)| *f).collect();
        let mut seen: BTreeMap<Field, &str> = BTreeMap::new();
        for column in &self.columns {
            match column.target {
                None => problems.push(
                    RowError::new(
                        1,
                        format!(
                            "Spalte „{}“ ist keinem Feld zugeordnet – Feld wählen oder ignorieren (--columns \"{}=ignore\")",
                            column.header, column.header
                        ),
                        format!(
                            "column \"{}\" is not assigned – choose a field or ignore it (--columns \"{}=ignore\")",
                            column.header, column.header
                        ),
                    )
                    .in_column(&column.header),
                ),
                Some(Target::Field(field)) if !allowed.contains(&field) => problems.push(
                    RowError::new(
                        1,
                        format!("Feld „{}“ gibt es bei {} nicht", field.name(), self.kind.label_de()),
                        format!("{} have no field \"{}\"", self.kind.label_en(), field.name()),
                    )
                    .in_column(&column.header),
                ),
                Some(Target::Field(field)) => {
                    if let Some(first) = seen.insert(field, &column.header) {
                        problems.push(
                            RowError::new(
                                1,
                                format!("Feld „{}“ ist schon der Spalte „{first}“ zugeordnet", field.name()),
                                format!("field \"{}\" is already assigned to column \"{first}\"", field.name()),
                            )
                            .in_column(&column.header),
                        );
                    }
                }
                Some(Target::Ignore) => {}
            }
        }
        problems.extend(self.missing());
        problems
    }

    fn missing(&self) -> Vec<RowError> {
        let has = |f: Field| self.position(f).is_some();
        let mut missing: Vec<(&str, &str)> = Vec::new();
        match self.kind {
            ImportKind::Patients => {
                if !has(Field::PatientNumber) && !has(Field::Uuid) {
                    missing.push(("Patientennummer oder Id", "patient number or Id"));
                }
            }
            ImportKind::Appointments | ImportKind::Entries => {
                if !has(Field::PatientNumber) && !has(Field::PatientUuid) {
                    missing.push((
                        "Patientennummer oder Patienten-Id",
                        "patient number or patient Id",
                    ));
                }
                if self.kind == ImportKind::Appointments && !has(Field::Start) && !has(Field::Date)
                {
                    missing.push(("Beginn oder Datum", "start or date"));
                }
                if self.kind == ImportKind::Entries {
                    if !has(Field::Date) {
                        missing.push(("Datum", "date"));
                    }
                    if !has(Field::Amount) {
                        missing.push(("Betrag", "amount"));
                    }
                }
            }
        }
        missing
            .into_iter()
            .map(|(de, en)| {
                RowError::new(
                    1,
                    format!("Pflichtspalte fehlt: {de}"),
                    format!("required column missing: {en}"),
                )
            })
            .collect()
    }
}

fn alias_field(kind: ImportKind, header: &str) -> Option<Field> {
    let key = header_key(header);
    if key.is_empty() {
        return None;
    }
    kind.fields().iter().find_map(|(field, aliases)| {
        (header_key(&field.name()) == key || aliases.iter().any(|a| header_key(a) == key))
            .then_some(*field)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn aliases_choices_and_remembered_layouts() {
        let file = header(&["Pat.-Nr.", "Vorname", "Bemerkung", "Kennzeichen"]);
        let plain = ColumnAssignment::resolve(
            ImportKind::Patients,
            &file,
            &ColumnChoices::default(),
            &ColumnChoices::default(),
        );
        assert_eq!(plain.position(Field::PatientNumber), Some(0));
        // „Bemerkung“ is free text (read, dropped); „Kennzeichen“ is unknown.
        assert_eq!(plain.problems().len(), 1, "{:?}", plain.problems());
        let chosen =
            ColumnChoices::parse("Bemerkung=ignore, kennzeichen = ignore").expect("parses");
        let fixed = ColumnAssignment::resolve(
            ImportKind::Patients,
            &file,
            &chosen,
            &ColumnChoices::default(),
        );
        assert!(fixed.problems().is_empty(), "{:?}", fixed.problems());
        let again = ColumnAssignment::resolve(
            ImportKind::Patients,
            &file,
            &ColumnChoices::default(),
            &fixed.choices(),
        );
        assert!(again.problems().is_empty());
        assert_eq!(again.columns[3].source, Source::Remembered);
    }

    #[test]
    fn required_fields_and_doubles_are_problems() {
        let file = header(&["Datum", "Betrag", "Betrag EUR"]);
        let assignment = ColumnAssignment::resolve(
            ImportKind::Entries,
            &file,
            &ColumnChoices::default(),
            &ColumnChoices::default(),
        );
        let problems = assignment.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(ColumnChoices::parse("x=nonsense").is_err());
        assert_eq!(
            signature(ImportKind::Entries, &file),
            signature(
                ImportKind::Entries,
                &header(&["datum", "BETRAG", "Betrag-EUR"])
            )
        );
    }
}
