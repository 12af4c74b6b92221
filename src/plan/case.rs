//! Treatment cases (DESIGN.md §4): which appointments form one deal, and
//! which billing lines belong to it.
//!
//! Assignment: new appointments of a patient at a location are taken in
//! order of start time (then Id, so ties are deterministic). Each one joins
//! the patient's latest case there if that case's stage, derived from its
//! members so far as of the new appointment's start, is open; otherwise it
//! opens a new case keyed `<location>:<appointment Id>`. "As of" means the
//! stage is derived with `now` = the new appointment's start and only the
//! case's billing lines dated before that day — a visit's own lines must
//! not keep the previous case alive. Exceptions:
//! - a type marked "opens no case" joins an open case if there is one and
//!   otherwise stays unassigned;
//! - a type of kind „ignorieren“ is never assigned.
//!
//! Membership is sticky: existing members and decided (unassigned)
//! appointments are input and are never moved; an appointment already
//! decided is skipped. Since every decision depends only on facts before
//! the appointment's start, assigning a history at once or in chunks in
//! start order gives the same cases. An appointment that turns up after
//! later ones were assigned (booked into the past) is still judged against
//! the latest case, the one opened last; cases are never re-formed.
//!
//! Billing lines: a case spans [its opening day, the next case's opening
//! day). Lines dated before the patient's first case belong to no case and
//! are returned separately so the caller reports them; attaching them to the
//! first case would book history from before the sync window as its revenue.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};

use super::facts::{AppointmentFacts, EntryFacts};
use super::stage::derive_stage;
use crate::mapping::{AppointmentKind, Mapping};

/// A treatment case: one deal in HubSpot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// `<location>:<opening appointment Id>`, the deal's unique key.
    pub key: String,
    /// Location of every member.
    pub location: String,
    /// Ivoris patient Id.
    pub patient_id: String,
    /// The appointment that opened the case.
    pub opening_appointment_id: String,
    /// Start of the opening appointment; begins the case's span.
    pub opened_at: NaiveDateTime,
    /// Member appointments, in order of start.
    pub members: Vec<AppointmentFacts>,
    /// Confirmed duplicate from the review: lost „Duplikat“.
    pub duplicate: bool,
}

impl Case {
    /// The case key of an opening appointment.
    pub fn key_for(location: &str, appointment_id: &str) -> String {
        format!("{location}:{appointment_id}")
    }

    /// Day the case's span begins.
    pub fn opened_on(&self) -> NaiveDate {
        self.opened_at.date()
    }
}

/// All cases of one patient at one location, plus appointments decided to
/// belong to none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatientCases {
    /// Location key.
    pub location: String,
    /// Ivoris patient Id.
    pub patient_id: String,
    /// Cases in the order they were opened.
    pub cases: Vec<Case>,
    /// Appointments decided to stay outside every case; sticky like members.
    pub unassigned: Vec<String>,
}

/// Why an appointment belongs to no case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnassignedReason {
    /// Its type is mapped to „ignorieren“.
    IgnoredType,
    /// Its type opens no case and no case was open.
    NoOpenCase,
}

/// What happened to one new appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Joined this existing case.
    Joined(String),
    /// Opened this new case.
    Opened(String),
    /// Stays outside every case.
    Unassigned(UnassignedReason),
}

/// The decision for one new appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Ivoris appointment Id.
    pub appointment_id: String,
    /// Where it went.
    pub decision: Decision,
    /// Its type label is missing from the mapping (the default kind was
    /// used); reported so staff add it.
    pub unmapped_type: bool,
}

impl Assignment {
    /// The case the appointment is in, if any.
    pub fn case_key(&self) -> Option<&str> {
        match &self.decision {
            Decision::Joined(key) | Decision::Opened(key) => Some(key),
            Decision::Unassigned(_) => None,
        }
    }
}

impl PatientCases {
    /// No cases yet.
    pub fn new(location: &str, patient_id: &str) -> PatientCases {
        PatientCases {
            location: location.to_owned(),
            patient_id: patient_id.to_owned(),
            cases: Vec::new(),
            unassigned: Vec::new(),
        }
    }

    /// Whether the appointment was already decided.
    fn knows(&self, appointment_id: &str) -> bool {
        self.unassigned.iter().any(|id| id == appointment_id)
            || self
                .cases
                .iter()
                .any(|case| case.members.iter().any(|m| m.id == appointment_id))
    }

    /// Assigns new appointments in start order and records the decisions.
    /// Appointments of other patients and ones already decided are skipped.
    pub fn admit(
        &mut self,
        new: &[AppointmentFacts],
        entries: &[EntryFacts],
        mapping: &Mapping,
    ) -> Vec<Assignment> {
        let mut ordered: Vec<&AppointmentFacts> = new
            .iter()
            .filter(|a| a.patient_id == self.patient_id)
            .collect();
        ordered.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        let mut assignments = Vec::new();
        for appointment in ordered {
            if self.knows(&appointment.id) {
                continue;
            }
            assignments.push(self.admit_one(appointment, entries, mapping));
        }
        assignments
    }

    fn admit_one(
        &mut self,
        appointment: &AppointmentFacts,
        entries: &[EntryFacts],
        mapping: &Mapping,
    ) -> Assignment {
        let resolved = mapping.appointment_type(
            appointment.type_label.as_deref(),
            appointment.template_id.as_deref(),
        );
        let decision = if resolved.kind == AppointmentKind::Ignore {
            self.unassigned.push(appointment.id.clone());
            Decision::Unassigned(UnassignedReason::IgnoredType)
        } else if let Some(index) = self.open_latest(appointment.start, entries, mapping) {
            let case = &mut self.cases[index];
            case.members.push(appointment.clone());
            case.members
                .sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
            Decision::Joined(case.key.clone())
        } else if resolved.opens_case {
            let key = Case::key_for(&self.location, &appointment.id);
            self.cases.push(Case {
                key: key.clone(),
                location: self.location.clone(),
                patient_id: self.patient_id.clone(),
                opening_appointment_id: appointment.id.clone(),
                opened_at: appointment.start,
                members: vec![appointment.clone()],
                duplicate: false,
            });
            Decision::Opened(key)
        } else {
            self.unassigned.push(appointment.id.clone());
            Decision::Unassigned(UnassignedReason::NoOpenCase)
        };
        Assignment {
            appointment_id: appointment.id.clone(),
            decision,
            unmapped_type: !resolved.mapped,
        }
    }

    /// Index of the latest case if it is open as of `at`.
    fn open_latest(
        &self,
        at: NaiveDateTime,
        entries: &[EntryFacts],
        mapping: &Mapping,
    ) -> Option<usize> {
        let index = self.cases.len().checked_sub(1)?;
        let case = &self.cases[index];
        // The lines of this case's span (as `entries_by_case` assigns them:
        // up to the next case in opening order) dated before `at`; computed
        // directly because this runs for every admitted appointment.
        let this = (case.opened_at, &case.key);
        let next = self
            .cases
            .iter()
            .map(|c| (c.opened_at, &c.key))
            .filter(|other| *other > this)
            .min()
            .map(|(opened, _)| opened.date());
        let before: Vec<EntryFacts> = entries
            .iter()
            .filter(|e| {
                e.patient_id == self.patient_id
                    && e.date >= case.opened_on()
                    && next.is_none_or(|next| e.date < next)
                    && e.date < at.date()
            })
            .cloned()
            .collect();
        let outcome = derive_stage(&self.cases[index], &before, mapping, at);
        (!outcome.stage.is_closed()).then_some(index)
    }

    /// The billing lines of this patient per case, by span.
    pub fn entries_by_case(&self, entries: &[EntryFacts]) -> CaseEntries {
        let mut order: Vec<&Case> = self.cases.iter().collect();
        order.sort_by(|a, b| (a.opened_at, &a.key).cmp(&(b.opened_at, &b.key)));
        let mut result = CaseEntries::default();
        for case in &order {
            result.by_case.insert(case.key.clone(), Vec::new());
        }
        for entry in entries.iter().filter(|e| e.patient_id == self.patient_id) {
            let owner = order
                .iter()
                .rev()
                .find(|case| case.opened_on() <= entry.date);
            match owner.and_then(|case| result.by_case.get_mut(&case.key)) {
                Some(lines) => lines.push(entry.clone()),
                None => result.before_first_case.push(entry.clone()),
            }
        }
        result
    }
}

/// Billing lines of one patient split by case span.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaseEntries {
    /// Lines per case key (every case present, possibly empty).
    pub by_case: BTreeMap<String, Vec<EntryFacts>>,
    /// Lines dated before the first case; reported, counted nowhere.
    pub before_first_case: Vec<EntryFacts>,
}

/// Assigns new appointments to the existing cases of one patient and
/// location (see the module documentation). `entries` are the patient's
/// billing lines, needed to tell whether a case is still in treatment.
pub fn assign(
    existing: &PatientCases,
    new: &[AppointmentFacts],
    entries: &[EntryFacts],
    mapping: &Mapping,
) -> Vec<Assignment> {
    existing.clone().admit(new, entries, mapping)
}
