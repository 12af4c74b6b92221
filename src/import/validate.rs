//! One row of an export → one Ivoris record, or the reason it is not one.
//!
//! Pure functions over the row's cells and the column assignment: every
//! cell is text until converted here, deliberately — dates in every
//! notation (`dd.mm.yyyy`, `dd.mm.yy`, ISO, with or without time), German
//! amounts (`12,50`, `1.234,50`, `12,50-`), and what Excel does to cells:
//! a leading `'` is dropped, `1,04E+03` is turned back into `1040`, a GOZ
//! code or a postcode that lost its leading zeros gets them back. Each
//! such repair is a warning with line and column, so staff can look.
//! Problems name the column and never quote a value (no personal data).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};

use super::columns::{ColumnAssignment, Field, ImportKind};
use crate::csvio::{CsvRow, RowError, parse_cents, parse_date};
use crate::ivoris::wire::{Address, Appointment, DocumentEntry, Patient};

/// Earliest plausible year of any date in an export.
const EARLIEST_YEAR: i32 = 1900;
/// Latest plausible year.
const LATEST_YEAR: i32 = 2100;
/// Largest plausible billing line, in cents (as the API parser allows).
const MAX_AMOUNT_CENTS: i64 = 1_000_000_000;
/// Longest plausible appointment, in minutes.
const MAX_DURATION_MINUTES: i64 = 24 * 60;

/// How an appointment or billing line names its patient.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatientRef {
    /// The patient's Ivoris UUID, when the export has it.
    pub uuid: Option<String>,
    /// The practice's patient number.
    pub number: Option<String>,
}

/// The record a row holds, ids not yet decided (`import::identity`).
#[derive(Debug, Clone, PartialEq)]
pub enum RowRecord {
    /// A patient; `human_readable_id` is its number.
    Patient(Patient),
    /// An appointment and its patient.
    Appointment(Appointment, PatientRef),
    /// A billing line and its patient.
    Entry(DocumentEntry, PatientRef),
}

/// A row that reads as a record.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRow {
    /// Line in the file.
    pub line: usize,
    /// The record's own UUID, when the export has it.
    pub uuid: Option<String>,
    /// The record.
    pub record: RowRecord,
    /// Cells repaired from what Excel did to them (not errors).
    pub warnings: Vec<RowError>,
}

/// Reads one row as a record of the assignment's kind.
pub fn validate(assignment: &ColumnAssignment, row: &CsvRow) -> Result<ValidRow, RowError> {
    let mut cells = Cells {
        assignment,
        row,
        warnings: Vec::new(),
    };
    let uuid = cells.text(Field::Uuid);
    let record = match assignment.kind {
        ImportKind::Patients => RowRecord::Patient(patient(&mut cells)?),
        ImportKind::Appointments => {
            let patient = cells.patient_ref()?;
            RowRecord::Appointment(appointment(&mut cells)?, patient)
        }
        ImportKind::Entries => {
            let patient = cells.patient_ref()?;
            RowRecord::Entry(entry(&mut cells)?, patient)
        }
    };
    Ok(ValidRow {
        line: row.line,
        uuid,
        record,
        warnings: cells.warnings,
    })
}

/// The cells of one row by field.
struct Cells<'a> {
    assignment: &'a ColumnAssignment,
    row: &'a CsvRow,
    warnings: Vec<RowError>,
}

impl Cells<'_> {
    fn header(&self, field: Field) -> String {
        self.assignment
            .position(field)
            .and_then(|p| self.assignment.columns.get(p))
            .map_or_else(|| field.name(), |c| c.header.clone())
    }

    fn error(&self, field: Field, de: &str, en: &str) -> RowError {
        RowError::new(self.row.line, de, en).in_column(self.header(field))
    }

    fn warn(&mut self, field: Field, de: &str, en: &str) {
        let warning = self.error(field, de, en);
        self.warnings.push(warning);
    }

    /// The cell as text: trimmed, Excel's text marker `'` dropped, `None`
    /// when empty or the column is absent.
    fn text(&self, field: Field) -> Option<String> {
        let position = self.assignment.position(field)?;
        let cell = self.row.cells.get(position)?.trim();
        let cell = cell.strip_prefix('\'').unwrap_or(cell).trim();
        (!cell.is_empty()).then(|| cell.to_owned())
    }

    /// Text that Excel may have turned into a number in scientific
    /// notation (codes, patient numbers, postcodes).
    fn code_text(&mut self, field: Field) -> Result<Option<String>, RowError> {
        let Some(text) = self.text(field) else {
            return Ok(None);
        };
        match excel_scientific(&text) {
            None => Ok(Some(text)),
            Some(Some(digits)) => {
                self.warn(
                    field,
                    "Excel-Zahlformat (z. B. 1,04E+03) zurückgewandelt – bitte prüfen",
                    "Excel number format (e.g. 1,04E+03) turned back – please check",
                );
                Ok(Some(digits))
            }
            Some(None) => Err(self.error(
                field,
                "Excel hat den Wert gekürzt (wissenschaftliche Schreibweise) – Spalte als Text exportieren",
                "Excel shortened the value (scientific notation) – export the column as text",
            )),
        }
    }

    fn required(&self, field: Field, value: Option<String>) -> Result<String, RowError> {
        value.ok_or_else(|| self.error(field, "Pflichtfeld ist leer", "required field is empty"))
    }

    fn date(&self, field: Field) -> Result<Option<NaiveDate>, RowError> {
        let Some(text) = self.text(field) else {
            return Ok(None);
        };
        let date = parse_date(&text).ok_or_else(|| {
            self.error(
                field,
                "kein gültiges Datum (erwartet TT.MM.JJJJ, TT.MM.JJ oder JJJJ-MM-TT)",
                "not a valid date (expected dd.mm.yyyy, dd.mm.yy or yyyy-mm-dd)",
            )
        })?;
        self.plausible(field, date)?;
        Ok(Some(date))
    }

    fn plausible(&self, field: Field, date: NaiveDate) -> Result<(), RowError> {
        if (EARLIEST_YEAR..=LATEST_YEAR).contains(&date.year()) {
            Ok(())
        } else {
            Err(self.error(
                field,
                &format!("unplausibles Jahr (erlaubt {EARLIEST_YEAR}–{LATEST_YEAR})"),
                &format!("implausible year (allowed {EARLIEST_YEAR}–{LATEST_YEAR})"),
            ))
        }
    }

    fn cents(&mut self, field: Field) -> Result<Option<i64>, RowError> {
        let Some(text) = self.text(field) else {
            return Ok(None);
        };
        let cents = match parse_cents(&text) {
            Some(cents) => Some(cents),
            None => match excel_scientific(&text) {
                Some(Some(digits)) => {
                    self.warn(
                        field,
                        "Excel-Zahlformat zurückgewandelt – bitte prüfen",
                        "Excel number format turned back – please check",
                    );
                    digits.parse::<i64>().ok().and_then(|v| v.checked_mul(100))
                }
                _ => None,
            },
        };
        let cents = cents.ok_or_else(|| {
            self.error(
                field,
                "keine gültige Zahl (erwartet z. B. 12,50 oder 1.234,50)",
                "not a valid number (expected e.g. 12,50 or 1.234,50)",
            )
        })?;
        if cents.abs() > MAX_AMOUNT_CENTS {
            return Err(self.error(field, "unplausibel groß", "implausibly large"));
        }
        Ok(Some(cents))
    }

    fn number(&mut self, field: Field) -> Result<Option<f64>, RowError> {
        Ok(self.cents(field)?.map(|cents| cents as f64 / 100.0))
    }

    fn patient_ref(&mut self) -> Result<PatientRef, RowError> {
        let reference = PatientRef {
            uuid: self.text(Field::PatientUuid),
            number: self.code_text(Field::PatientNumber)?,
        };
        if reference.uuid.is_none() && reference.number.is_none() {
            let field = if self.assignment.position(Field::PatientNumber).is_some() {
                Field::PatientNumber
            } else {
                Field::PatientUuid
            };
            return Err(self.error(
                field,
                "Patient fehlt (Patientennummer leer)",
                "patient missing (patient number empty)",
            ));
        }
        Ok(reference)
    }
}

/// `1,04E+03` → `Some(Some("1040"))`; `1,04E-01` or a fraction left →
/// `Some(None)` (cannot be repaired); anything else `None`.
fn excel_scientific(text: &str) -> Option<Option<String>> {
    if !text.contains(['E', 'e']) {
        return None;
    }
    let upper = text.trim().to_ascii_uppercase();
    let (mantissa, exponent) = upper.split_once('E')?;
    let (negative, exponent) = match exponent.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, exponent.strip_prefix('+').unwrap_or(exponent)),
    };
    let (whole, fraction) = match mantissa.split_once([',', '.']) {
        Some((whole, fraction)) => (whole, fraction),
        None => (mantissa, ""),
    };
    let digits_only = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !digits_only(whole) || !(fraction.is_empty() || digits_only(fraction)) {
        return None;
    }
    // `13e` is a BEMA code, not a number.
    if !digits_only(exponent) {
        return None;
    }
    let Ok(exponent) = exponent.parse::<usize>() else {
        return Some(None);
    };
    if negative {
        return Some(None);
    }
    if exponent < fraction.len() || exponent > 18 {
        return Some(None);
    }
    let mut digits = format!("{whole}{fraction}");
    digits.extend(std::iter::repeat_n('0', exponent - fraction.len()));
    let trimmed = digits.trim_start_matches('0');
    Some(Some(
        if trimmed.is_empty() { "0" } else { trimmed }.to_owned(),
    ))
}

fn time_of(text: &str) -> Option<NaiveTime> {
    ["%H:%M", "%H:%M:%S", "%H.%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(text.trim(), f).ok())
}

/// A date-time in any notation: `dd.mm.yyyy hh:mm`, `dd.mm.yy hh:mm`, ISO
/// with `T` or a space, or a date alone (midnight).
fn date_time_of(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let date = parse_date(date)?;
    let time = match time {
        Some(time) => time_of(time)?,
        None => NaiveTime::MIN,
    };
    Some(date.and_time(time))
}

fn patient(cells: &mut Cells<'_>) -> Result<Patient, RowError> {
    let number = cells.code_text(Field::PatientNumber)?;
    if number.is_none() && cells.text(Field::Uuid).is_none() {
        let field = if cells.assignment.position(Field::PatientNumber).is_some() {
            Field::PatientNumber
        } else {
            Field::Uuid
        };
        cells.required(field, None)?;
    }
    let mut zip = cells.code_text(Field::Zip)?;
    if let Some(short) = zip
        .as_deref()
        .filter(|z| z.len() == 4 && z.chars().all(|c| c.is_ascii_digit()))
    {
        zip = Some(format!("0{short}"));
        cells.warn(
            Field::Zip,
            "Postleitzahl mit führender Null ergänzt (Excel) – bitte prüfen",
            "postcode completed with its leading zero (Excel) – please check",
        );
    }
    let address = Address {
        street: cells.text(Field::Street),
        zip,
        city: cells.text(Field::City),
        country: cells.text(Field::Country),
    };
    let has_address = address != Address::default();
    Ok(Patient {
        id: String::new(),
        human_readable_id: number,
        firstname: cells.text(Field::Firstname),
        lastname: cells.text(Field::Lastname),
        birthday: cells
            .date(Field::Birthday)?
            .map(|d| d.and_time(NaiveTime::MIN)),
        gender: cells.text(Field::Gender),
        email: cells.text(Field::Email),
        phone: cells.text(Field::Phone),
        mobile: cells.text(Field::Mobile),
        address: has_address.then_some(address),
        health_insurance: cells.text(Field::HealthInsurance),
        current_insurance: None,
        last_modified: None,
    })
}

fn appointment(cells: &mut Cells<'_>) -> Result<Appointment, RowError> {
    let start = match cells.text(Field::Start) {
        Some(text) => Some((Field::Start, date_time_of(&text))),
        None => cells.text(Field::Date).map(|date| {
            let time = cells.text(Field::Time);
            let joined = match time {
                Some(time) => format!("{date} {time}"),
                None => date,
            };
            (Field::Date, date_time_of(&joined))
        }),
    };
    let start = match start {
        None => {
            let field = if cells.assignment.position(Field::Start).is_some() {
                Field::Start
            } else {
                Field::Date
            };
            return Err(cells.error(field, "Pflichtfeld ist leer", "required field is empty"));
        }
        Some((field, None)) => {
            return Err(cells.error(
                field,
                "kein gültiger Zeitpunkt (erwartet TT.MM.JJJJ hh:mm oder JJJJ-MM-TTThh:mm)",
                "not a valid date-time (expected dd.mm.yyyy hh:mm or yyyy-mm-ddThh:mm)",
            ));
        }
        Some((field, Some(start))) => {
            cells.plausible(field, start.date())?;
            start
        }
    };
    let duration = match cells.cents(Field::DurationMinutes)? {
        None => None,
        Some(cents) if cents % 100 == 0 && (0..=MAX_DURATION_MINUTES * 100).contains(&cents) => {
            u32::try_from(cents / 100).ok()
        }
        Some(_) => {
            return Err(cells.error(
                Field::DurationMinutes,
                "Dauer muss ganze Minuten zwischen 0 und 1440 sein",
                "duration must be whole minutes between 0 and 1440",
            ));
        }
    };
    Ok(Appointment {
        id: String::new(),
        profile_id: None,
        patient_id: None,
        practitioner_id: cells.text(Field::PractitionerId),
        dentist_chair_id: cells.text(Field::ChairId),
        template_id: None,
        type_label: cells.text(Field::TypeLabel),
        start: Some(start),
        duration_minutes: duration,
        state: cells.text(Field::State),
        confirmation_state: cells.text(Field::ConfirmationState),
        last_modified: None,
    })
}

fn entry(cells: &mut Cells<'_>) -> Result<DocumentEntry, RowError> {
    let date = cells.date(Field::Date)?;
    let date = date.ok_or_else(|| {
        cells.error(
            Field::Date,
            "Pflichtfeld ist leer",
            "required field is empty",
        )
    })?;
    let cents = cells.cents(Field::Amount)?;
    let cents = cents.ok_or_else(|| {
        cells.error(
            Field::Amount,
            "Pflichtfeld ist leer",
            "required field is empty",
        )
    })?;
    let catalogue = cells.text(Field::Catalogue);
    let mut code = cells.code_text(Field::Code)?;
    // GOZ numbers have four digits (`0010`); Excel drops the zeros.
    if catalogue
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("GOZ"))
        && let Some(short) = code
            .as_deref()
            .filter(|c| c.len() < 4 && c.chars().all(|ch| ch.is_ascii_digit()))
    {
        code = Some(format!("{short:0>4}"));
        cells.warn(
            Field::Code,
            "GOZ-Ziffer mit führenden Nullen ergänzt (Excel) – bitte prüfen",
            "GOZ code completed with its leading zeros (Excel) – please check",
        );
    }
    Ok(DocumentEntry {
        id: String::new(),
        profile_id: None,
        patient_id: None,
        practitioner_id: cells.text(Field::PractitionerId),
        date: Some(date),
        entry_type: cells.text(Field::EntryType),
        catalogue,
        code,
        quantity: cells.number(Field::Quantity)?,
        factor: cells.number(Field::Factor)?,
        amount: Some(cents as f64 / 100.0),
        // Tooth and free text are never kept (DESIGN.md §3.7).
        tooth: None,
        text: None,
        last_modified: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::columns::ColumnChoices;

    fn row(kind: ImportKind, header: &[&str], cells: &[&str]) -> Result<ValidRow, RowError> {
        let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
        let assignment = ColumnAssignment::resolve(
            kind,
            &header,
            &ColumnChoices::default(),
            &ColumnChoices::default(),
        );
        assert!(
            assignment.problems().is_empty(),
            "{:?}",
            assignment.problems()
        );
        validate(
            &assignment,
            &CsvRow {
                line: 7,
                cells: cells.iter().map(|c| (*c).to_owned()).collect(),
            },
        )
    }

    const ENTRY: [&str; 5] = ["Pat.-Nr.", "Datum", "Katalog", "Ziffer", "Betrag"];

    fn check_amount(text: &str, expected: Option<i64>) {
        let result = row(
            ImportKind::Entries,
            &ENTRY,
            &["1", "01.02.2025", "BEMA", "13a", text],
        );
        match (result, expected) {
            (Ok(valid), Some(cents)) => match valid.record {
                RowRecord::Entry(entry, _) => {
                    assert_eq!(entry.amount_cents(), Some(cents), "{text}")
                }
                other => panic!("{other:?}"),
            },
            (Err(error), None) => {
                assert_eq!((error.line, error.column.as_deref()), (7, Some("Betrag")));
            }
            (other, _) => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn amounts_in_every_notation() {
        check_amount("12,50", Some(1250));
        check_amount("1.234,50", Some(123_450));
        check_amount("12,50-", Some(-1250));
        check_amount("1,5E+03", Some(150_000));
        check_amount("zwölf", None);
        check_amount("", None);
    }

    #[test]
    fn excel_damage_is_repaired_with_a_warning() {
        let valid = row(
            ImportKind::Entries,
            &ENTRY,
            &["'0815", "01.02.25", "GOZ", "1,04E+03", "101,36"],
        )
        .expect("valid");
        assert_eq!(valid.warnings.len(), 1);
        match valid.record {
            RowRecord::Entry(entry, patient) => {
                assert_eq!(entry.code.as_deref(), Some("1040"));
                assert_eq!(patient.number.as_deref(), Some("0815"));
                assert_eq!(entry.date, NaiveDate::from_ymd_opt(2025, 2, 1));
            }
            other => panic!("{other:?}"),
        }
        let valid = row(
            ImportKind::Entries,
            &ENTRY,
            &["1", "2025-02-01", "GOZ", "10", "1"],
        )
        .expect("valid");
        assert!(
            matches!(valid.record, RowRecord::Entry(e, _) if e.code.as_deref() == Some("0010"))
        );
        assert_eq!(excel_scientific("1,04E-01"), Some(None));
        assert_eq!(excel_scientific("13a"), None);
        assert_eq!(excel_scientific("13e"), None);
        assert_eq!(excel_scientific("1E+99"), Some(None));
    }

    #[test]
    fn appointments_take_date_and_time_in_any_notation() {
        let header = ["Pat.-Nr.", "Datum", "Uhrzeit", "Terminart"];
        for (date, time) in [
            ("03.04.2025", "09:30"),
            ("3.4.25", "9:30"),
            ("2025-04-03", "09:30:00"),
        ] {
            let valid =
                row(ImportKind::Appointments, &header, &["1", date, time, "PZR"]).expect("valid");
            let expected =
                NaiveDate::from_ymd_opt(2025, 4, 3).and_then(|d| d.and_hms_opt(9, 30, 0));
            assert!(
                matches!(valid.record, RowRecord::Appointment(a, _) if a.start == expected),
                "{date} {time}"
            );
        }
        let valid = row(
            ImportKind::Appointments,
            &["Pat.-Nr.", "Beginn"],
            &["1", "2025-04-03T09:30"],
        )
        .expect("valid");
        assert!(matches!(valid.record, RowRecord::Appointment(a, _) if a.start.is_some()));
        let error = row(
            ImportKind::Appointments,
            &header,
            &["1", "31.02.2025", "09:30", "PZR"],
        )
        .expect_err("bad date");
        assert_eq!(error.column.as_deref(), Some("Datum"));
        let error = row(
            ImportKind::Appointments,
            &header,
            &["", "01.02.2025", "09:30", "PZR"],
        )
        .expect_err("no patient");
        assert_eq!(error.column.as_deref(), Some("Pat.-Nr."));
    }

    #[test]
    fn patients_keep_their_zeros_and_lose_nothing_else() {
        let header = ["Pat.-Nr.", "Nachname", "Geburtsdatum", "PLZ"];
        let valid = row(
            ImportKind::Patients,
            &header,
            &["10234", "Weiß", "15.03.1985", "1067"],
        )
        .expect("valid");
        match valid.record {
            RowRecord::Patient(p) => {
                assert_eq!(p.address.and_then(|a| a.zip).as_deref(), Some("01067"));
                assert_eq!(
                    p.birthday.map(|b| b.date()),
                    NaiveDate::from_ymd_opt(1985, 3, 15)
                );
            }
            other => panic!("{other:?}"),
        }
        let error =
            row(ImportKind::Patients, &header, &["1", "x", "15.03.1785", ""]).expect_err("year");
        assert_eq!(error.column.as_deref(), Some("Geburtsdatum"));
    }
}
