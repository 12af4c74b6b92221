//! The HubSpot property sets of contacts, deals and appointment records,
//! and their content hash (DESIGN.md §3.5, §3.7, §4).
//!
//! Every value is a string as HubSpot's API takes it: dates `YYYY-MM-DD`,
//! date-times ISO-8601 in UTC (`2026-03-12T08:30:00Z`) converted from the
//! Berlin local time Ivoris sends, money `171.50`. A property that has no
//! value is written as the empty string, which clears it in HubSpot, so a
//! correction back to "nothing" reaches the CRM. Only what is listed here
//! leaves the PC: allow-listed contact fields, keys, appointment type and
//! times, revenue aggregated by category — never tooth, free text, billing
//! code or insurance.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Europe::Berlin;

use super::case::Case;
use super::facts::{AppointmentFacts, EntryFacts, PatientFacts};
use super::revenue::{format_cents, revenue};
use super::stage::StageOutcome;
use crate::mapping::{AppointmentState, Category, Mapping, PatientField, Stage};

/// What an appointment record deleted in Ivoris says in its name.
pub const DELETED_IN_IVORIS: &str = "in Ivoris gelöscht";

/// The properties of one HubSpot record, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PropertySet {
    /// Property name → value.
    properties: BTreeMap<String, String>,
}

impl PropertySet {
    fn set(&mut self, name: &str, value: impl Into<String>) {
        self.properties.insert(name.to_owned(), value.into());
    }

    /// A property's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }

    /// All properties, sorted by name.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// Hash of the content, compared with the last confirmed one so only
    /// changed records are sent. The serialisation is length-prefixed
    /// (little-endian u64) name and value bytes in name order: independent
    /// of platform, run and insertion order, and no two different sets
    /// serialise alike.
    pub fn content_hash(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        for (name, value) in &self.properties {
            for part in [name, value] {
                hasher.update(&(part.len() as u64).to_le_bytes());
                hasher.update(part.as_bytes());
            }
        }
        hasher.finalize().to_hex().to_string()
    }
}

impl FromIterator<(String, String)> for PropertySet {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        PropertySet {
            properties: iter.into_iter().collect(),
        }
    }
}

/// HubSpot ids of the pipeline and its stages, resolved by the engine from
/// the stage labels of the mapping; planning knows no HubSpot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageIds {
    /// Pipeline id (`pipeline`).
    pub pipeline: String,
    /// Stage id of „Termin gebucht“.
    pub booked: String,
    /// Stage id of „Erstberatung“.
    pub consulted: String,
    /// Stage id of „In Behandlung“.
    pub in_treatment: String,
    /// Stage id of „Behandlung abgeschlossen“.
    pub won: String,
    /// Stage id of „Verloren“.
    pub lost: String,
}

impl StageIds {
    /// The id of a logical stage.
    pub fn id(&self, stage: Stage) -> &str {
        match stage {
            Stage::Booked => &self.booked,
            Stage::Consulted => &self.consulted,
            Stage::InTreatment => &self.in_treatment,
            Stage::Won => &self.won,
            Stage::Lost => &self.lost,
        }
    }
}

/// Stage ids per location: the settings' pipeline, and another pipeline for
/// locations whose row in the location table names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationStages {
    /// Ids in the settings' pipeline.
    pub default: StageIds,
    /// Location key → ids in the location's own pipeline.
    pub by_location: std::collections::BTreeMap<String, StageIds>,
}

impl LocationStages {
    /// Every location in the same pipeline.
    pub fn uniform(ids: StageIds) -> LocationStages {
        LocationStages {
            default: ids,
            by_location: std::collections::BTreeMap::new(),
        }
    }

    /// The ids a location's deals use.
    pub fn of(&self, location: &str) -> &StageIds {
        self.by_location.get(location).unwrap_or(&self.default)
    }
}

/// `<location>:<patient Id>`, the contact's unique key.
pub fn patient_key(location: &str, patient_id: &str) -> String {
    format!("{location}:{patient_id}")
}

/// `<location>:<appointment Id>`, the appointment record's unique key.
pub fn appointment_key(location: &str, appointment_id: &str) -> String {
    format!("{location}:{appointment_id}")
}

/// A HubSpot date value.
pub fn hubspot_date(date: NaiveDate) -> String {
    // Written out instead of `format("%Y-%m-%d")`: the pattern is parsed on
    // every call, and planning formats several dates per record.
    let year = date.year();
    if (0..=9999).contains(&year) {
        format!("{year:04}-{:02}-{:02}", date.month(), date.day())
    } else {
        date.format("%Y-%m-%d").to_string()
    }
}

/// A Berlin local time as an instant. An ambiguous time (the repeated hour
/// in October) is taken as the first, summer-time one; a time in the
/// skipped hour in March as winter time (+01:00), i.e. the instant a clock
/// not yet moved forward would show.
pub fn berlin_instant(local: NaiveDateTime) -> DateTime<Utc> {
    let utc = match Berlin.from_local_datetime(&local) {
        LocalResult::Single(time) | LocalResult::Ambiguous(time, _) => time.naive_utc(),
        LocalResult::None => local - Duration::hours(1),
    };
    Utc.from_utc_datetime(&utc)
}

/// An instant as HubSpot's UTC date-time value.
pub fn hubspot_datetime(instant: DateTime<Utc>) -> String {
    let year = instant.year();
    if (0..=9999).contains(&year) {
        format!(
            "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            instant.month(),
            instant.day(),
            instant.hour(),
            instant.minute(),
            instant.second()
        )
    } else {
        instant.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}

fn patient_field(patient: &PatientFacts, field: PatientField) -> String {
    let text = |value: &Option<String>| value.as_deref().unwrap_or("").trim().to_owned();
    match field {
        PatientField::Firstname => text(&patient.firstname),
        PatientField::Lastname => text(&patient.lastname),
        PatientField::Email => text(&patient.email),
        PatientField::Phone => text(&patient.phone),
        PatientField::Mobile => text(&patient.mobile),
        PatientField::Street => text(&patient.street),
        PatientField::Zip => text(&patient.zip),
        PatientField::City => text(&patient.city),
        PatientField::Birthday => patient.birthday.map(hubspot_date).unwrap_or_default(),
    }
}

/// The contact of a patient: enabled allow-list rows, the key, the patient
/// number and the location — nothing else. The properties in `cleared`
/// (switched off after an earlier mapping filled them,
/// [`Mapping::cleared_contact_properties`]) are sent empty, which clears
/// them in HubSpot: a field the practice no longer wants there is removed
/// at the next sync, not left behind with its last value.
pub fn contact_properties(
    patient: &PatientFacts,
    mapping: &Mapping,
    cleared: &BTreeSet<String>,
) -> PropertySet {
    let mut set = PropertySet::default();
    for property in cleared {
        set.set(property, "");
    }
    for rule in mapping.contact_fields.iter().filter(|rule| rule.enabled) {
        set.set(&rule.property, patient_field(patient, rule.field));
    }
    set.set(
        "ivoris_patient_key",
        patient_key(&patient.location, &patient.id),
    );
    set.set(
        "ivoris_patientennummer",
        patient.human_readable_id.clone().unwrap_or_default(),
    );
    set.set("praxis_standort", patient.location.clone());
    set
}

/// The name shown for a patient on a deal: first and last name as far as
/// the allow-list sends them to HubSpot anyway, else the patient number.
fn display_name(patient: &PatientFacts, mapping: &Mapping) -> String {
    let allowed = |field| {
        mapping
            .contact_fields
            .iter()
            .any(|rule| rule.enabled && rule.field == field)
    };
    let name = [PatientField::Firstname, PatientField::Lastname]
        .into_iter()
        .filter(|field| allowed(*field))
        .map(|field| patient_field(patient, field))
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        let number = patient.human_readable_id.as_deref().unwrap_or(&patient.id);
        format!("Patient {number}")
    } else {
        name
    }
}

/// What a deal's properties are computed from besides the case.
#[derive(Debug, Clone, Copy)]
pub struct DealContext<'a> {
    /// The mapping in force.
    pub mapping: &'a Mapping,
    /// Resolved pipeline and stage ids.
    pub stage_ids: &'a StageIds,
    /// The current local time; decides past and future appointments.
    pub now: NaiveDateTime,
}

/// The deal of a case. `entries` are the case's billing lines, `outcome`
/// its derived stage. `erster_termin` is the first member's day,
/// `letzter_termin` the latest member's day up to `now` whatever its state,
/// `naechster_termin` the first booked or confirmed member after `now`,
/// `termin_status` the state of the latest member by start; the dealname
/// uses only name fields the allow-list sends anyway.
pub fn deal_properties(
    patient: &PatientFacts,
    case: &Case,
    entries: &[EntryFacts],
    outcome: &StageOutcome,
    context: &DealContext<'_>,
) -> PropertySet {
    let mapping = context.mapping;
    let now = context.now;
    let mut members: Vec<&AppointmentFacts> = case.members.iter().collect();
    members.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    let opening = members
        .iter()
        .find(|m| m.id == case.opening_appointment_id)
        .or(members.first());
    let type_label = opening
        .and_then(|m| m.type_label.as_deref())
        .map(str::trim)
        .filter(|label| !label.is_empty())
        .unwrap_or("Termin");
    let first_day = members.first().map_or(case.opened_at, |m| m.start).date();
    let last_past = members
        .iter()
        .rev()
        .find(|m| m.start <= now)
        .map(|m| hubspot_date(m.start.date()));
    let next = members
        .iter()
        .find(|m| m.start > now && m.state_in(mapping).is_some_and(|state| state.is_pending()))
        .map(|m| hubspot_date(m.start.date()));
    let latest_state = members
        .last()
        .and_then(|m| m.state_in(mapping))
        .map(|state| state.label());
    let sums = revenue(entries, mapping);

    let mut set = PropertySet::default();
    set.set(
        "dealname",
        format!(
            "{} – {} {}",
            display_name(patient, mapping),
            type_label,
            format_args!(
                "{:02}.{:02}.{:04}",
                first_day.day(),
                first_day.month(),
                first_day.year()
            )
        ),
    );
    set.set("pipeline", context.stage_ids.pipeline.clone());
    set.set("dealstage", context.stage_ids.id(outcome.stage));
    set.set("amount", format_cents(sums.total_cents));
    for category in Category::ALL {
        set.set(
            &format!("umsatz_{}", category.slug()),
            format_cents(sums.category_cents(category)),
        );
    }
    set.set("umsatz_separat", format_cents(sums.separate_cents));
    set.set(
        "behandlungskategorie",
        sums.dominant_category().map_or("", Category::label),
    );
    set.set(
        "behandlungsstart",
        outcome
            .behandlungsstart
            .map(hubspot_date)
            .unwrap_or_default(),
    );
    set.set("erster_termin", hubspot_date(first_day));
    set.set("letzter_termin", last_past.unwrap_or_default());
    set.set("naechster_termin", next.unwrap_or_default());
    set.set("termin_status", latest_state.unwrap_or(""));
    set.set("praxis_standort", case.location.clone());
    set.set(
        "closedate",
        outcome.closed_on.map(hubspot_date).unwrap_or_default(),
    );
    set.set(
        "verlustgrund",
        outcome.loss_reason.map_or("", |reason| reason.label()),
    );
    set.set("ivoris_case_key", case.key.clone());
    // Only when the location table names an owner: otherwise the deal's
    // content (and hash) stays as it was, and HubSpot keeps its owner.
    if let Some(owner) = mapping.deal_owner(&case.location) {
        set.set("hubspot_owner_id", owner.to_owned());
    }
    set
}

/// HubSpot's option for a normalised state of `hs_appointment_status`
/// (options `SCHEDULED`, `COMPLETED`, `CANCELED`, `NO_SHOW`): a clarified
/// consultation took place, so it counts as completed.
pub fn hubspot_appointment_status(state: AppointmentState) -> &'static str {
    match state {
        AppointmentState::Booked | AppointmentState::Confirmed => "SCHEDULED",
        AppointmentState::Arrived | AppointmentState::Completed | AppointmentState::Clarified => {
            "COMPLETED"
        }
        AppointmentState::Cancelled => "CANCELED",
        AppointmentState::NoShow => "NO_SHOW",
    }
}

/// The HubSpot appointment record of an appointment: type label (never the
/// patient's name), UTC start and end, normalised state, key.
pub fn appointment_properties(
    location: &str,
    appointment: &AppointmentFacts,
    mapping: &Mapping,
) -> PropertySet {
    // The end is start plus duration in real time, so an appointment over
    // the clock change keeps its length.
    let start = berlin_instant(appointment.start);
    let end = start + Duration::minutes(i64::from(appointment.duration_minutes.unwrap_or(0)));
    let mut set = PropertySet::default();
    let label = appointment
        .type_label
        .as_deref()
        .map(str::trim)
        .filter(|label| !label.is_empty())
        .unwrap_or("Termin");
    // Deleted in Ivoris: kept in HubSpot, cancelled, and saying why.
    if appointment.deleted {
        set.set(
            "hs_appointment_name",
            format!("{label} ({DELETED_IN_IVORIS})"),
        );
    } else {
        set.set("hs_appointment_name", label);
    }
    set.set("hs_appointment_start", hubspot_datetime(start));
    set.set("hs_appointment_end", hubspot_datetime(end));
    set.set(
        "hs_appointment_status",
        appointment
            .state_in(mapping)
            .map_or("", hubspot_appointment_status),
    );
    set.set(
        "ivoris_appointment_key",
        appointment_key(location, &appointment.id),
    );
    set
}
