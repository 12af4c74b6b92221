//! Lenient parsing of Ivoris answers, one record at a time.
//!
//! Ivoris answers are bare JSON arrays whose records real installations
//! fill freely. Each element is read from a `serde_json::Value` on its own:
//! unknown fields are ignored, missing or `null` optional fields become
//! `None`, and a record that cannot be read faithfully (no `Id`, a field of
//! the wrong type, an unparseable or absurd date, a non-finite amount)
//! becomes a [`Reject`] with the field and a German and English reason, to
//! be quarantined (DESIGN.md §3.9). One bad record never spoils its page and
//! is never stored with a silently wrong value. Reasons name fields, never
//! values, so they carry no personal data.

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Map, Value};

use super::minimise::{Minimised, strip_raw};
use super::wire::{
    Address, Appointment, AppointmentTemplate, DentistChair, DocumentEntry, Insurance, Patient,
    Practitioner, Profile,
};

/// Earliest date accepted anywhere; older ones are typing errors.
const EARLIEST_YEAR: i32 = 1900;
/// Latest date accepted anywhere; later ones are typing errors.
const LATEST_YEAR: i32 = 2100;
/// Longest plausible appointment, in minutes (one day).
const MAX_DURATION_MINUTES: u64 = 24 * 60;
/// Largest plausible billing line, in euros.
const MAX_AMOUNT_EUROS: f64 = 1.0e7;
/// Largest plausible quantity or factor of a billing line.
const MAX_QUANTITY: f64 = 1.0e6;

/// A record that could not be parsed, kept for the quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The record's `Id` when it had a usable one.
    pub record_id: Option<String>,
    /// The field to blame; `None` when the record as a whole is wrong.
    pub field: Option<String>,
    /// Why, for German-speaking staff.
    pub reason_de: String,
    /// Why, in English.
    pub reason_en: String,
    /// The record as received (compact JSON) without the fields the mirror
    /// drops (`ivoris::minimise`); stays on this PC.
    pub raw: String,
}

/// The records of one answer that could be read, and those that could not.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    /// Records read faithfully, in answer order.
    pub records: Vec<T>,
    /// Records to quarantine, in answer order.
    pub rejects: Vec<Reject>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed {
            records: Vec::new(),
            rejects: Vec::new(),
        }
    }
}

impl<T> Parsed<T> {
    /// Number of elements the answer had.
    pub fn len(&self) -> usize {
        self.records.len() + self.rejects.len()
    }

    /// Whether the answer was an empty array (the end of a paged listing).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a whole answer is not what the route promises (not a JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnArray {
    /// What was found instead, without content.
    pub found: &'static str,
}

/// A problem with one field, before the record's id and raw text are known.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldError {
    field: String,
    reason_de: String,
    reason_en: String,
}

impl FieldError {
    fn new(field: &str, de: &str, en: &str) -> FieldError {
        FieldError {
            field: field.to_owned(),
            reason_de: format!("Feld „{field}“: {de}"),
            reason_en: format!("field \"{field}\": {en}"),
        }
    }

    fn wrong_type(field: &str, expected_de: &str, expected_en: &str) -> FieldError {
        FieldError::new(
            field,
            &format!("falscher Typ, erwartet {expected_de}"),
            &format!("wrong type, expected {expected_en}"),
        )
    }
}

/// A record kind that can be read leniently from one JSON element.
pub trait Lenient: Sized {
    /// Reads one element.
    fn from_value(value: &Value) -> Result<Self, Reject>;
}

/// Parses an answer body that must be a JSON array, element by element.
pub fn parse_array<T: Lenient>(body: &Value) -> Result<Parsed<T>, NotAnArray> {
    let Value::Array(items) = body else {
        return Err(NotAnArray {
            found: json_type(body),
        });
    };
    let mut parsed = Parsed::default();
    for item in items {
        match T::from_value(item) {
            Ok(record) => parsed.records.push(record),
            Err(reject) => parsed.rejects.push(reject),
        }
    }
    Ok(parsed)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The fields of one record, read with typed accessors that fail with the
/// field's name.
struct Fields<'a> {
    /// The record's object; empty when the element was not an object.
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn id(&self) -> Result<String, FieldError> {
        match self.get("Id") {
            None => Err(FieldError::new("Id", "fehlt", "missing")),
            Some(Value::String(id)) if id.trim().is_empty() => {
                Err(FieldError::new("Id", "ist leer", "is empty"))
            }
            Some(Value::String(id)) => Ok(id.trim().to_owned()),
            Some(_) => Err(FieldError::wrong_type("Id", "Text", "a string")),
        }
    }

    fn text(&self, field: &str) -> Result<Option<String>, FieldError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(FieldError::wrong_type(field, "Text", "a string")),
        }
    }

    /// Text that installations also send as a number (patient number, zip).
    fn text_or_integer(&self, field: &str) -> Result<Option<String>, FieldError> {
        match self.get(field) {
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
            _ => self.text(field),
        }
    }

    fn date_time(&self, field: &str) -> Result<Option<NaiveDateTime>, FieldError> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let bad = || {
            FieldError::new(
                field,
                "kein gültiger Zeitpunkt (erwartet JJJJ-MM-TTThh:mm:ss)",
                "not a valid date-time (expected YYYY-MM-DDThh:mm:ss)",
            )
        };
        let Value::String(text) = value else {
            return Err(bad());
        };
        let parsed = parse_date_time(text).ok_or_else(bad)?;
        plausible(field, parsed.date())?;
        Ok(Some(parsed))
    }

    fn date(&self, field: &str) -> Result<Option<NaiveDate>, FieldError> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let bad = || {
            FieldError::new(
                field,
                "kein gültiges Datum (erwartet JJJJ-MM-TT)",
                "not a valid date (expected YYYY-MM-DD)",
            )
        };
        let Value::String(text) = value else {
            return Err(bad());
        };
        let parsed = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .ok()
            .or_else(|| parse_date_time(text).map(|t| t.date()))
            .ok_or_else(bad)?;
        plausible(field, parsed)?;
        Ok(Some(parsed))
    }

    fn minutes(&self, field: &str) -> Result<Option<u32>, FieldError> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let minutes = value
            .as_u64()
            .ok_or_else(|| FieldError::wrong_type(field, "ganze Zahl ≥ 0", "an integer ≥ 0"))?;
        if minutes > MAX_DURATION_MINUTES {
            return Err(FieldError::new(
                field,
                "unplausibel lang (mehr als ein Tag)",
                "implausibly long (more than a day)",
            ));
        }
        u32::try_from(minutes)
            .map(Some)
            .map_err(|_| FieldError::wrong_type(field, "ganze Zahl ≥ 0", "an integer ≥ 0"))
    }

    fn number(&self, field: &str, limit: f64) -> Result<Option<f64>, FieldError> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let number = value
            .as_f64()
            .ok_or_else(|| FieldError::wrong_type(field, "Zahl", "a number"))?;
        if !number.is_finite() || number.abs() > limit {
            return Err(FieldError::new(
                field,
                "keine endliche, plausible Zahl",
                "not a finite, plausible number",
            ));
        }
        Ok(Some(number))
    }

    fn object(&self, field: &str) -> Result<Option<Fields<'a>>, FieldError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields { map })),
            Some(_) => Err(FieldError::wrong_type(field, "Objekt", "an object")),
        }
    }
}

/// Whether a date lies in the range any practice record can have.
fn plausible(field: &str, date: NaiveDate) -> Result<(), FieldError> {
    use chrono::Datelike;
    if (EARLIEST_YEAR..=LATEST_YEAR).contains(&date.year()) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            &format!("unplausibles Jahr (erlaubt {EARLIEST_YEAR}–{LATEST_YEAR})"),
            &format!("implausible year (allowed {EARLIEST_YEAR}–{LATEST_YEAR})"),
        ))
    }
}

/// The date-time forms seen in practice: `1985-03-15T00:00:00`, with
/// fractional seconds, with a space instead of `T`, and a bare date
/// (midnight). Values are local Berlin time; an offset is not expected and
/// not accepted, because dropping it would shift the time silently.
pub fn parse_date_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
}

/// Runs `read` over an element, turning a field error into a [`Reject`]
/// that carries the record's id (when usable) and raw text without the
/// fields [`Minimised::DROPPED`] names.
fn record<T: Minimised>(
    value: &Value,
    read: impl FnOnce(&Fields<'_>) -> Result<T, FieldError>,
) -> Result<T, Reject> {
    let empty = Map::new();
    let (map, is_object) = match value {
        Value::Object(map) => (map, true),
        _ => (&empty, false),
    };
    let fields = Fields { map };
    // The quarantine keeps the payload, minus what the mirror would drop.
    let raw = || {
        let mut kept = value.clone();
        strip_raw::<T>(&mut kept);
        serde_json::to_string(&kept).unwrap_or_default()
    };
    if !is_object {
        return Err(Reject {
            record_id: None,
            field: None,
            reason_de: format!("Datensatz ist kein Objekt, sondern {}", json_type(value)),
            reason_en: format!("record is not an object but {}", json_type(value)),
            raw: raw(),
        });
    }
    read(&fields).map_err(|error| Reject {
        record_id: fields.id().ok(),
        field: Some(error.field),
        reason_de: error.reason_de,
        reason_en: error.reason_en,
        raw: raw(),
    })
}

impl Lenient for Profile {
    fn from_value(value: &Value) -> Result<Self, Reject> {
        record(value, |f| {
            Ok(Profile {
                id: f.id()?,
                name: f.text("Name")?,
            })
        })
    }
}

impl Lenient for DentistChair {
    fn from_value(value: &Value) -> Result<Self, Reject> {
        record(value, |f| {
            Ok(DentistChair {
                id: f.id()?,
                name: f.text("Name")?,
            })
        })
    }
}

impl Lenient for Practitioner {
    fn from_value(value: &Value) -> Result<Self, Reject> {
        record(value, |f| {
            Ok(Practitioner {
                id: f.id()?,
                abbreviation: f.text("Abbreviation")?,
                firstname: f.text("Firstname")?,
                lastname: f.text("Lastname")?,
            })
        })
    }
}

impl Lenient for AppointmentTemplate {
    fn from_value(value: &Value) -> Result<Self, Reject> {
        record(value, |f| {
            Ok(AppointmentTemplate {
                id: f.id()?,
                name: f.text("Name")?,
                duration_minutes: f.minutes("DurationMinutes")?,
            })
        })
    }
}

impl Lenient for Patient {
    fn from_value(value: &Value) -> Result<Self, Reject> {
        record(value, |f| {
            let id = f.id()?;
            let address = f
                .object("Address")?
                .map(|a| -> Result<Address, FieldError> {
                    Ok(Address {
                        street: a.text("Street").map_err(nested("Address"))?,
                        zip: a.text_or_integer("Zip").map_err(nested("Address"))?,
                        city: a.text("City").map_err(nested("Address"))?,
                        country: a.text("Country").map_err(nested("Address"))?,
                    })
                })
                .transpose()?;
            let current_insurance = f
                .object("CurrentInsurance")?
                .map(|i| -> Result<Insurance, FieldError> {
                    Ok(Insurance {
                        insurance_status: i
                            .text("InsuranceStatus")
                            .map_err(nested("CurrentInsurance"))?,
                        insurance_number: i
                            .text_or_integer("InsuranceNumber")
                            .map_err(nested("CurrentInsurance"))?,
                    })
                })
                .transpose()?;
            Ok(Patient {
                id,
                human_readable_id: f.text_or_integer("HumanReadableId")?,
                firstname: f.text("Firstname")?,
                lastname: f.text("Lastname")?,
                birthday: f.date_time("Birthday")?,
                gender: f.text("Gender")?,
                email: f.text("Email")?,
                phone: f.text("Phone")?,
                mobile: f.text("Mobile")?,
                address,
                health_insurance: f.text("HealthInsurance")?,
                current_insurance,
                last_modified: f.date_time("LastModified")?,
            })
        })
    }
}

/// Prefixes a nested field's name with its parent (`Address.Zip`).
fn nested(parent: &'static str) -> impl Fn(FieldError) -> FieldError {
    move |error| {
        let field = format!("{parent}.{}", error.field);
        FieldError {
            reason_de: error.reason_de.replacen(&error.field, &field, 1),
            reason_en: error.reason_en.replacen(&error.field, &field, 1),
            field,
        }
    }
}

impl Lenient for Appointment {
    fn from_value(value: &Value) -> Result<Self, Reject> {
        record(value, |f| {
            Ok(Appointment {
                id: f.id()?,
                profile_id: f.text("ProfileId")?,
                patient_id: f.text("PatientId")?,
                practitioner_id: f.text("PractitionerId")?,
                dentist_chair_id: f.text("DentistChairId")?,
                template_id: f.text("TemplateId")?,
                type_label: f.text("TypeLabel")?,
                start: f.date_time("Start")?,
                duration_minutes: f.minutes("DurationMinutes")?,
                // Unknown states are kept: the mapping reports them.
                state: f.text("State")?,
                confirmation_state: f.text("ConfirmationState")?,
                last_modified: f.date_time("LastModified")?,
            })
        })
    }
}

impl Lenient for DocumentEntry {
    fn from_value(value: &Value) -> Result<Self, Reject> {
        record(value, |f| {
            Ok(DocumentEntry {
                id: f.id()?,
                profile_id: f.text("ProfileId")?,
                patient_id: f.text("PatientId")?,
                practitioner_id: f.text("PractitionerId")?,
                date: f.date("Date")?,
                entry_type: f.text("Type")?,
                catalogue: f.text("Catalogue")?,
                code: f.text_or_integer("Code")?,
                quantity: f.number("Quantity", MAX_QUANTITY)?,
                factor: f.number("Factor", MAX_QUANTITY)?,
                amount: f.number("Amount", MAX_AMOUNT_EUROS)?,
                tooth: f.text_or_integer("Tooth")?,
                text: f.text("Text")?,
                last_modified: f.date_time("LastModified")?,
            })
        })
    }
}
