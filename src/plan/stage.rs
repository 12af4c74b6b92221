//! The deal stage of a case (DESIGN.md §4) as a pure function of its member
//! appointments, its billing lines, the mapping and `now`. Nothing is
//! remembered: when a fact is reverted (a completion undone, a line
//! removed) the stage goes back by itself.
//!
//! The rules, precisely:
//! - Members whose state is not in the mapping, or whose type is
//!   „ignorieren“, are left out (never guessed); lines dated after `now`
//!   are left out.
//! - **in treatment**: a completed member of kind treatment or routine has
//!   a revenue-counting line on its day. A consultation's own lines (`01`,
//!   `Ä1`) do not count, or a billed first consultation would skip
//!   „Erstberatung“. `behandlungsstart` = the first such member's day.
//! - **consulted**: otherwise, a consultation member is completed.
//! - **booked**: otherwise (the case has appointments, nothing decisive
//!   happened yet).
//! - **won**: in treatment, no pending (booked/confirmed) member after
//!   `now`, and the last activity is more than `won_after_days` days before
//!   `now`'s day (exactly N days is not yet won). Last activity = the latest
//!   day of a member up to `now` that was not cancelled or missed, or of a
//!   billing line. `closed_on` = that day (when the treatment ended).
//! - **lost**, in this order:
//!   1. confirmed duplicate → „Duplikat“, whatever else holds;
//!   2. only while booked or consulted: a consultation member is
//!      „geklärt“ → „Erstberatung geklärt“ (a clarified side consultation
//!      does not end a treatment that started);
//!   3. only while booked or consulted: the latest member (by start) was
//!      cancelled or missed and no pending member lies after `now` →
//!      „Termin abgesagt“.
//!
//!   `closed_on` = the day of the deciding appointment (the latest member
//!   for a duplicate).
//!
//! [`derive_stages`] derives every case of a patient and enforces invariant
//! 3: only the latest case may be open. An earlier case is closed as of the
//! next case's opening by construction; if facts changed since so that it
//! would be open again, it is reported won when in treatment and otherwise
//! lost „Folgefall eröffnet“.

use chrono::{NaiveDate, NaiveDateTime};

use super::case::{Case, CaseEntries, PatientCases};
use super::facts::{AppointmentFacts, EntryFacts};
use crate::mapping::{AppointmentKind, AppointmentState, Counting, Mapping, Stage};

/// Why a case was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LossReason {
    /// The latest appointment was cancelled or missed, nothing rebooked.
    Cancelled,
    /// The consultation ended „geklärt“: the patient decided against it.
    ConsultationClarified,
    /// Confirmed duplicate from the review.
    Duplicate,
    /// A later case was opened while this one would still be open.
    Superseded,
}

impl LossReason {
    /// The German reason written to `verlustgrund`.
    pub fn label(self) -> &'static str {
        match self {
            LossReason::Cancelled => "Termin abgesagt",
            LossReason::ConsultationClarified => "Erstberatung geklärt",
            LossReason::Duplicate => "Duplikat",
            LossReason::Superseded => "Folgefall eröffnet",
        }
    }
}

/// The derived state of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageOutcome {
    /// The logical stage.
    pub stage: Stage,
    /// Set exactly when the stage is lost.
    pub loss_reason: Option<LossReason>,
    /// Day of the first completed treatment with revenue.
    pub behandlungsstart: Option<NaiveDate>,
    /// Set exactly when the stage is won or lost.
    pub closed_on: Option<NaiveDate>,
}

/// A member as the rules see it.
struct Member<'a> {
    /// The facts.
    facts: &'a AppointmentFacts,
    /// Normalised state.
    state: AppointmentState,
    /// Mapped kind.
    kind: AppointmentKind,
}

/// Derives the stage of one case (see the module documentation).
pub fn derive_stage(
    case: &Case,
    entries: &[EntryFacts],
    mapping: &Mapping,
    now: NaiveDateTime,
) -> StageOutcome {
    let mut members: Vec<Member> = case
        .members
        .iter()
        .filter_map(|facts| {
            let state = facts.state_in(mapping)?;
            let kind = mapping
                .appointment_type(facts.type_label.as_deref(), facts.template_id.as_deref())
                .kind;
            (kind != AppointmentKind::Ignore).then_some(Member { facts, state, kind })
        })
        .collect();
    members.sort_by(|a, b| (a.facts.start, &a.facts.id).cmp(&(b.facts.start, &b.facts.id)));
    let entries: Vec<&EntryFacts> = entries.iter().filter(|e| e.date <= now.date()).collect();

    let revenue_days: Vec<NaiveDate> = entries
        .iter()
        .filter(|e| {
            mapping
                .entry_type(&e.entry_type)
                .is_some_and(|rule| rule.counting == Counting::Revenue)
        })
        .map(|e| e.date)
        .collect();
    let behandlungsstart = members
        .iter()
        .filter(|m| {
            m.state == AppointmentState::Completed
                && matches!(
                    m.kind,
                    AppointmentKind::Treatment | AppointmentKind::Routine
                )
                && revenue_days.contains(&m.facts.start.date())
        })
        .map(|m| m.facts.start.date())
        .min();
    let consulted = members
        .iter()
        .any(|m| m.kind == AppointmentKind::Consultation && m.state == AppointmentState::Completed);
    let pending_after_now = members
        .iter()
        .any(|m| m.facts.start > now && m.state.is_pending());

    let open = |stage| StageOutcome {
        stage,
        loss_reason: None,
        behandlungsstart,
        closed_on: None,
    };
    let lost = |reason, on| StageOutcome {
        stage: Stage::Lost,
        loss_reason: Some(reason),
        behandlungsstart,
        closed_on: Some(on),
    };

    if case.duplicate {
        let on = members
            .iter()
            .rev()
            .map(|m| m.facts.start)
            .find(|start| *start <= now)
            .unwrap_or(case.opened_at);
        return lost(LossReason::Duplicate, on.date());
    }

    if behandlungsstart.is_some() {
        let last_activity = members
            .iter()
            .filter(|m| m.facts.start <= now && !m.state.is_missed())
            .map(|m| m.facts.start.date())
            .chain(entries.iter().map(|e| e.date))
            .max();
        if let Some(last) = last_activity
            && !pending_after_now
            && (now.date() - last).num_days() > i64::from(mapping.won_after_days)
        {
            return StageOutcome {
                stage: Stage::Won,
                loss_reason: None,
                behandlungsstart,
                closed_on: Some(last),
            };
        }
        return open(Stage::InTreatment);
    }

    if let Some(clarified) = members
        .iter()
        .find(|m| m.kind == AppointmentKind::Consultation && m.state == AppointmentState::Clarified)
    {
        return lost(
            LossReason::ConsultationClarified,
            clarified.facts.start.date(),
        );
    }
    if let Some(latest) = members.last()
        && latest.state.is_missed()
        && !pending_after_now
    {
        return lost(LossReason::Cancelled, latest.facts.start.date());
    }
    open(if consulted {
        Stage::Consulted
    } else {
        Stage::Booked
    })
}

/// Derives every case of a patient with its own billing lines, in the order
/// of `cases.cases`, keeping at most one case open (the latest).
pub fn derive_stages(
    cases: &PatientCases,
    entries: &[EntryFacts],
    mapping: &Mapping,
    now: NaiveDateTime,
) -> Vec<StageOutcome> {
    derive_stages_by_span(cases, &cases.entries_by_case(entries), mapping, now)
}

/// [`derive_stages`] with the billing lines already split by case
/// ([`PatientCases::entries_by_case`]), for callers that need the split
/// themselves too.
pub fn derive_stages_by_span(
    cases: &PatientCases,
    spans: &CaseEntries,
    mapping: &Mapping,
    now: NaiveDateTime,
) -> Vec<StageOutcome> {
    // "Latest" is the case opened last, as assignment sees it.
    let latest = cases.cases.last().map(|case| case.key.as_str());
    cases
        .cases
        .iter()
        .map(|case| {
            let lines = spans.by_case.get(&case.key).map_or(&[][..], Vec::as_slice);
            let outcome = derive_stage(case, lines, mapping, now);
            if outcome.stage.is_closed() || Some(case.key.as_str()) == latest {
                return outcome;
            }
            supersede(case, lines, outcome, now)
        })
        .collect()
}

/// Closes an earlier case that facts changed back to open.
fn supersede(
    case: &Case,
    lines: &[EntryFacts],
    outcome: StageOutcome,
    now: NaiveDateTime,
) -> StageOutcome {
    let last_day = case
        .members
        .iter()
        .map(|m| m.start)
        .filter(|start| *start <= now)
        .max()
        .unwrap_or(case.opened_at)
        .date();
    let last_day = lines
        .iter()
        .map(|e| e.date)
        .filter(|d| *d <= now.date())
        .fold(last_day, NaiveDate::max);
    if outcome.stage == Stage::InTreatment {
        StageOutcome {
            stage: Stage::Won,
            closed_on: Some(last_day),
            ..outcome
        }
    } else {
        StageOutcome {
            stage: Stage::Lost,
            loss_reason: Some(LossReason::Superseded),
            closed_on: Some(last_day),
            ..outcome
        }
    }
}
