//! Data minimisation at the edge (DESIGN.md §3.7): the fields of an Ivoris
//! record the app never needs — free text and tooth of a billing line, the
//! insurance number of a patient — named in one place, and dropped both
//! from the typed record the mirror stores ([`Minimised::minimised`]) and
//! from the payload of a malformed record the quarantine keeps
//! ([`strip_raw`], by the same fields' wire names, [`Minimised::DROPPED`]).
//! A test holds the two forms of the rule together.

use serde_json::Value;

use super::wire;

/// A record kind and the fields of it the app never keeps.
pub trait Minimised: Clone {
    /// Wire paths (PascalCase names, outer object first) of the dropped
    /// fields; empty for kinds that carry none.
    const DROPPED: &'static [&'static [&'static str]] = &[];

    /// The record without the dropped fields; what the mirror stores.
    fn minimised(&self) -> Self {
        self.clone()
    }
}

impl Minimised for wire::Patient {
    const DROPPED: &'static [&'static [&'static str]] = &[&["CurrentInsurance", "InsuranceNumber"]];

    fn minimised(&self) -> Self {
        let mut patient = self.clone();
        if let Some(insurance) = &mut patient.current_insurance {
            insurance.insurance_number = None;
        }
        patient
    }
}

impl Minimised for wire::DocumentEntry {
    const DROPPED: &'static [&'static [&'static str]] = &[&["Tooth"], &["Text"]];

    /// Tooth and free text are health data the app never evaluates.
    fn minimised(&self) -> Self {
        wire::DocumentEntry {
            tooth: None,
            text: None,
            ..self.clone()
        }
    }
}

impl Minimised for wire::Appointment {}
impl Minimised for wire::DentistChair {}
impl Minimised for wire::Practitioner {}
impl Minimised for wire::AppointmentTemplate {}
impl Minimised for wire::Profile {}

/// Removes `T`'s dropped fields from a raw record as received, whatever
/// else is wrong with it (a quarantined record may be malformed anywhere).
/// A field is matched by its wire name regardless of case, because a
/// malformed record may spell it differently; nothing else is touched.
pub fn strip_raw<T: Minimised>(value: &mut Value) {
    for path in T::DROPPED {
        remove_path(value, path);
    }
}

/// Removes the dropped fields of every kind that has any from a raw record
/// whose kind is not known (quarantine rows stored by earlier versions).
pub fn strip_raw_any(value: &mut Value) {
    strip_raw::<wire::Patient>(value);
    strip_raw::<wire::DocumentEntry>(value);
}

fn remove_path(value: &mut Value, path: &[&str]) {
    let (Some((first, rest)), Value::Object(map)) = (path.split_first(), value) else {
        return;
    };
    let keys: Vec<String> = map
        .keys()
        .filter(|key| key.eq_ignore_ascii_case(first))
        .cloned()
        .collect();
    for key in keys {
        if rest.is_empty() {
            map.remove(&key);
        } else if let Some(inner) = map.get_mut(&key) {
            remove_path(inner, rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde_json::json;

    use super::*;
    use crate::ivoris::parse::Lenient;

    /// The typed rule and the raw rule drop the same fields: stripping the
    /// wire form of a full record gives the wire form of its minimised
    /// record, once `null`s (absent optional fields) are left out.
    fn check_agree<T: Minimised + Lenient + Serialize>(full: Value) {
        let record = T::from_value(&full).expect("a well-formed record");
        let mut stripped = serde_json::to_value(&record).expect("wire form");
        strip_raw::<T>(&mut stripped);
        let minimised = serde_json::to_value(record.minimised()).expect("wire form");
        assert_eq!(without_nulls(stripped), without_nulls(minimised));
    }

    fn without_nulls(value: Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, without_nulls(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    #[test]
    fn typed_and_raw_minimisation_drop_the_same_fields() {
        check_agree::<wire::Patient>(json!({
            "Id": "p1", "Firstname": "Jürgen", "Lastname": "Weiß",
            "HealthInsurance": "AOK",
            "CurrentInsurance": {"InsuranceStatus": "M", "InsuranceNumber": "A123456789"}
        }));
        check_agree::<wire::DocumentEntry>(json!({
            "Id": "e1", "PatientId": "p1", "Date": "2026-03-01", "Type": "lst",
            "Catalogue": "BEMA", "Code": "13a", "Amount": 38.25,
            "Tooth": "36", "Text": "Karies distal, Patient klagt über Schmerzen"
        }));
        check_agree::<wire::Appointment>(json!({"Id": "a1", "State": "Booked"}));
    }

    #[test]
    fn stripping_a_malformed_record_keeps_everything_else() {
        let mut raw = json!({
            "Id": "e1", "Amount": "zwölf", "TOOTH": 36, "text": "frei",
            "Catalogue": "GOZ", "Nested": {"Text": "stays: not a field of the kind"}
        });
        strip_raw::<wire::DocumentEntry>(&mut raw);
        assert_eq!(
            raw,
            json!({"Id": "e1", "Amount": "zwölf", "Catalogue": "GOZ",
                   "Nested": {"Text": "stays: not a field of the kind"}})
        );
        let mut raw = json!({"Id": "p1", "Birthday": "kein Datum",
                             "CurrentInsurance": {"InsuranceNumber": 123, "InsuranceStatus": "M"}});
        strip_raw::<wire::Patient>(&mut raw);
        assert_eq!(
            raw,
            json!({"Id": "p1", "Birthday": "kein Datum",
                   "CurrentInsurance": {"InsuranceStatus": "M"}})
        );
        // Not an object: nothing to strip, nothing breaks.
        let mut raw = json!(["Tooth"]);
        strip_raw::<wire::DocumentEntry>(&mut raw);
        assert_eq!(raw, json!(["Tooth"]));
    }
}
