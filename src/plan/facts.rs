//! The input facts of the planning rules: plain values the engine builds
//! from the ledger's mirror. They carry only what the rules need; tooth,
//! free text and insurance never get here.

use chrono::{NaiveDate, NaiveDateTime};

use crate::mapping::{AppointmentState, Mapping};

/// The patients one plan covers, by Ivoris id: those after `after` up to
/// and including `through`, unbounded where `None`. A location whose
/// billing lines are swept (patients in id order) is planned in such
/// parts, each once its patients' lines are in; the last part is open at
/// the end and also takes the records that name no patient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientRange {
    /// The last patient before the range.
    pub after: Option<String>,
    /// The last patient of the range.
    pub through: Option<String>,
}

impl PatientRange {
    /// Every patient of the location.
    pub const ALL: PatientRange = PatientRange {
        after: None,
        through: None,
    };

    /// Whether the range reaches the end of the location's patients.
    pub fn open_end(&self) -> bool {
        self.through.is_none()
    }

    /// Whether the range is every patient of the location.
    pub fn is_all(&self) -> bool {
        self.after.is_none() && self.through.is_none()
    }
}

/// A patient of one location.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatientFacts {
    /// Location key, the namespace of every key (`magdeburg`).
    pub location: String,
    /// Ivoris patient Id.
    pub id: String,
    /// The practice's patient number, shown to staff in HubSpot.
    pub human_readable_id: Option<String>,
    /// Contact field, sent only when allow-listed.
    pub firstname: Option<String>,
    /// Contact field, sent only when allow-listed.
    pub lastname: Option<String>,
    /// Contact field, sent only when allow-listed.
    pub email: Option<String>,
    /// Contact field, sent only when allow-listed.
    pub phone: Option<String>,
    /// Contact field, sent only when allow-listed.
    pub mobile: Option<String>,
    /// Contact field, sent only when allow-listed (off by default).
    pub birthday: Option<NaiveDate>,
    /// Contact field, sent only when allow-listed (off by default).
    pub street: Option<String>,
    /// Contact field, sent only when allow-listed.
    pub zip: Option<String>,
    /// Contact field, sent only when allow-listed.
    pub city: Option<String>,
}

/// An appointment of one patient at one location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentFacts {
    /// Ivoris appointment Id; a case opened by it is keyed by it.
    pub id: String,
    /// Ivoris patient Id.
    pub patient_id: String,
    /// Local Berlin time as Ivoris sends it; orders assignment.
    pub start: NaiveDateTime,
    /// Length, for the end time of the HubSpot appointment; none = zero.
    pub duration_minutes: Option<u32>,
    /// Raw Ivoris state, normalised through the mapping.
    pub state: String,
    /// Appointment type label, classified through the mapping.
    pub type_label: Option<String>,
    /// Appointment template Id; a mapping row with this Id wins over the label.
    pub template_id: Option<String>,
    /// Deleted in Ivoris (found missing at a full sweep): it counts as
    /// cancelled, whatever its last state was.
    pub deleted: bool,
}

impl AppointmentFacts {
    /// The state through the mapping (`None` when the mapping does not know
    /// it); an appointment deleted in Ivoris is cancelled.
    pub fn state_in(&self, mapping: &Mapping) -> Option<AppointmentState> {
        if self.deleted {
            return Some(AppointmentState::Cancelled);
        }
        mapping.appointment_state(&self.state)
    }
}

/// A billing line of one patient at one location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFacts {
    /// Ivoris document entry Id.
    pub id: String,
    /// Ivoris patient Id.
    pub patient_id: String,
    /// Billing date; decides the case by its span.
    pub date: NaiveDate,
    /// `lst`, `mat`, `lab`, `pabg`, `text`, `note`; decides how it counts.
    pub entry_type: String,
    /// Fee schedule (`BEMA`, `GOZ`, …), with the code decides the category.
    pub catalogue: Option<String>,
    /// Billing code as text; never leaves the PC.
    pub code: Option<String>,
    /// Amount in integer cents.
    pub amount_cents: i64,
}
