//! Wire shapes of the Ivoris REST web service, as the sandbox serves them
//! and as the client accepts them (`reference/ivoris.md`).
//!
//! Field names are PascalCase on the wire; date-times are local Berlin time
//! without an offset (`1985-03-15T00:00:00`), dates are `YYYY-MM-DD`.
//! Everything except the `Id` is optional because real installations omit
//! fields freely. Amounts arrive as JSON numbers in euros and are turned into
//! integer cents by [`DocumentEntry::amount_cents`] before any arithmetic.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// A location (Mandant) of one Ivoris installation (`GET /Profile/v1/Profiles`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Profile {
    pub id: String,
    pub name: Option<String>,
}

/// A dentist chair (`GET /Appointment/v1/DentistChairs?profileId=`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DentistChair {
    pub id: String,
    pub name: Option<String>,
}

/// A practitioner (`GET /Practitioner/v1/AllPractitioners`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Practitioner {
    pub id: String,
    pub abbreviation: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
}

/// An appointment type (`GET /Appointment/v1/AppointmentTemplates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AppointmentTemplate {
    pub id: String,
    pub name: Option<String>,
    pub duration_minutes: Option<u32>,
}

/// Postal address of a patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    pub street: Option<String>,
    pub zip: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
}

/// Insurance details; never leave the PC (DESIGN.md §3.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Insurance {
    pub insurance_status: Option<String>,
    pub insurance_number: Option<String>,
}

/// A patient (`GET /Patient/v1/AllPatients?page=N`, `GET /Patient/v1/Patient?id=`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Patient {
    pub id: String,
    /// The practice's patient number, shown to staff.
    pub human_readable_id: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub birthday: Option<NaiveDateTime>,
    pub gender: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub mobile: Option<String>,
    pub address: Option<Address>,
    pub health_insurance: Option<String>,
    pub current_insurance: Option<Insurance>,
    pub last_modified: Option<NaiveDateTime>,
}

/// An appointment (`GET /Appointment/v1/AllAppointments?profileId=&begin=&end=`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Appointment {
    pub id: String,
    pub profile_id: Option<String>,
    pub patient_id: Option<String>,
    pub practitioner_id: Option<String>,
    pub dentist_chair_id: Option<String>,
    pub template_id: Option<String>,
    pub type_label: Option<String>,
    pub start: Option<NaiveDateTime>,
    pub duration_minutes: Option<u32>,
    /// Raw Ivoris state (`Booked`, `Completed`, `Cancelled`, …), normalised
    /// through the mapping, never interpreted here.
    pub state: Option<String>,
    pub confirmation_state: Option<String>,
    pub last_modified: Option<NaiveDateTime>,
}

/// A billing line (`GET /Documentation/v1/DocumentEntries?patientId=&profileId=&begin=&end=`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DocumentEntry {
    pub id: String,
    pub profile_id: Option<String>,
    pub patient_id: Option<String>,
    pub practitioner_id: Option<String>,
    pub date: Option<NaiveDate>,
    /// Entry type: `lst`, `mat`, `lab`, `pabg`, `text`, `note`.
    #[serde(rename = "Type")]
    pub entry_type: Option<String>,
    pub catalogue: Option<String>,
    pub code: Option<String>,
    pub quantity: Option<f64>,
    pub factor: Option<f64>,
    /// Euros as sent by Ivoris; use [`DocumentEntry::amount_cents`].
    pub amount: Option<f64>,
    /// Never leaves the PC.
    pub tooth: Option<String>,
    /// Free text; never leaves the PC.
    pub text: Option<String>,
    pub last_modified: Option<NaiveDateTime>,
}

impl DocumentEntry {
    /// The amount in integer cents, or `None` when absent or not a finite
    /// number that fits (such a record is quarantined by the caller).
    pub fn amount_cents(&self) -> Option<i64> {
        euros_to_cents(self.amount?)
    }
}

/// Converts a euro amount from the wire to integer cents, rounding half away
/// from zero; `None` for NaN, infinities and absurd magnitudes.
pub fn euros_to_cents(euros: f64) -> Option<i64> {
    if !euros.is_finite() || euros.abs() > 1.0e12 {
        return None;
    }
    Some((euros * 100.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_cents(euros: f64, expected: Option<i64>) {
        assert_eq!(euros_to_cents(euros), expected, "{euros}");
    }

    #[test]
    fn euro_amounts_become_exact_cents() {
        check_cents(101.36, Some(10136));
        check_cents(0.1 + 0.2, Some(30));
        check_cents(-12.5, Some(-1250));
        check_cents(1234.565, Some(123457));
        check_cents(f64::NAN, None);
        check_cents(f64::INFINITY, None);
        check_cents(1.0e15, None);
    }

    #[test]
    fn patient_parses_the_documented_example() {
        let json = r#"{"Id":"c1f0","HumanReadableId":"10234","Firstname":"Jürgen","Lastname":"Weiß",
            "Birthday":"1985-03-15T00:00:00","Gender":"Male","Email":"j.weiss@example.de",
            "Phone":"0391 123456","Mobile":"+49 170 1234567",
            "Address":{"Street":"Breiter Weg 5","Zip":"39104","City":"Magdeburg","Country":"DE"},
            "HealthInsurance":"Statutory","LastModified":"2026-02-20T16:42:11","Unknown":1}"#;
        let p: Patient = serde_json::from_str(json).expect("parses");
        assert_eq!(p.lastname.as_deref(), Some("Weiß"));
        assert_eq!(
            p.birthday,
            NaiveDate::from_ymd_opt(1985, 3, 15).and_then(|d| d.and_hms_opt(0, 0, 0))
        );
        assert_eq!(p.address.and_then(|a| a.zip).as_deref(), Some("39104"));
        assert_eq!(p.current_insurance, None);
    }
}
