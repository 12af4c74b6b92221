//! From the ledger to the outbox: builds the plan's facts from the mirror,
//! admits new appointments into cases (sticky), derives every case's stage
//! and revenue, computes the HubSpot property sets and queues exactly the
//! records whose content differs from what HubSpot confirmed (DESIGN.md §2,
//! §3.4, §3.5).
//!
//! Case decisions and outbox rows of a location are written in one
//! transaction, so a killed run leaves either the whole plan or none of it.
//! The facts are read through the ledger's read-only connection; the rules
//! themselves are the pure functions of `crate::plan`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{NaiveDate, NaiveDateTime};
use rusqlite::{Connection, Transaction, params};
use serde_json::{Value, json};

use super::adopt::{AdoptionReport, LegacyPortal, adopt_contacts, adopt_deals, deals_waiting};
use crate::ivoris::parse::parse_date_time;
use crate::ivoris::wire::Patient;
use crate::kpi::PatientView;
use crate::ledger::cases::{CaseRow, MemberRow, decide, open_case};
use crate::ledger::outbox::enqueue;
use crate::ledger::{Enqueued, Ledger, LedgerError, NewQuarantine, OutboxKind};
use crate::mapping::Mapping;
use crate::plan::properties::{appointment_key, patient_key};
use crate::plan::{
    AppointmentFacts, Case, DealContext, Decision, EntryFacts, LocationStages, PatientCases,
    PatientFacts, PatientRange, appointment_properties, contact_properties, deal_properties,
    derive_stages_by_span,
};

/// What planning needs besides the ledger.
#[derive(Clone, Copy)]
pub struct PlanContext<'a> {
    /// The mapping in force.
    pub mapping: &'a Mapping,
    /// Contact properties sent empty (switched off after an earlier
    /// mapping filled them): `mapping::store::contact_properties_to_clear`.
    pub cleared_contact_properties: &'a BTreeSet<String>,
    /// Pipeline and stage ids resolved from HubSpot, per location.
    pub stage_ids: &'a LocationStages,
    /// Whether HubSpot appointment objects are written.
    pub appointments_enabled: bool,
    /// Local Berlin time the stages are derived at.
    pub now: NaiveDateTime,
    /// What the portal held at the start of the run, when this location
    /// still has to adopt the previous integration's records (its first
    /// plan, `engine::adopt`).
    pub legacy: Option<&'a LegacyPortal>,
}

/// Counts of one outbox kind after planning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queued {
    /// New outbox rows.
    pub added: u64,
    /// Pending rows that got a newer payload.
    pub replaced: u64,
    /// Records whose content HubSpot already has, or that already wait.
    pub unchanged: u64,
}

impl Queued {
    fn count(&mut self, outcome: Enqueued) {
        match outcome {
            Enqueued::Added => self.added += 1,
            Enqueued::Replaced => self.replaced += 1,
            Enqueued::Unchanged | Enqueued::AlreadyConfirmed => self.unchanged += 1,
        }
    }

    /// Records that will be written.
    pub fn to_write(&self) -> u64 {
        self.added + self.replaced
    }
}

/// The outcome of planning one location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanReport {
    /// Location key.
    pub location: String,
    /// Per outbox kind.
    pub queued: BTreeMap<OutboxKind, Queued>,
    /// Cases opened by this run's new appointments.
    pub cases_opened: u64,
    /// Records of the mirror the plan could not use (quarantined).
    pub quarantined: u64,
    /// Ivoris appointment states the mapping does not know.
    pub unmapped_states: BTreeSet<String>,
    /// Appointment type labels the mapping does not know.
    pub unmapped_types: BTreeSet<String>,
    /// What the adoption of the previous integration's records did (or,
    /// in a dry run, would do).
    pub adoption: AdoptionReport,
}

impl PlanReport {
    /// Records that will be written, all kinds.
    pub fn to_write(&self) -> u64 {
        self.queued.values().map(Queued::to_write).sum()
    }

    /// Records whose content HubSpot already has.
    pub fn unchanged(&self) -> u64 {
        self.queued.values().map(|q| q.unchanged).sum()
    }
}

impl PlanReport {
    /// Adds the counts of another plan of the same location (the two
    /// scopes of a pipelined run).
    pub fn absorb(&mut self, other: PlanReport) {
        for (kind, queued) in other.queued {
            let mine = self.queued.entry(kind).or_default();
            mine.added += queued.added;
            mine.replaced += queued.replaced;
            mine.unchanged += queued.unchanged;
        }
        self.cases_opened += other.cases_opened;
        self.quarantined += other.quarantined;
        self.unmapped_states.extend(other.unmapped_states);
        self.unmapped_types.extend(other.unmapped_types);
        self.adoption.absorb(other.adoption);
    }
}

/// Which records one plan covers. A run that reads billing lines for a
/// while (a full sweep) plans [`PlanScope::Records`] as soon as patients and
/// appointments are in, so they are sent while the lines are read, and
/// [`PlanScope::Cases`] once the extraction is complete; together they are
/// [`PlanScope::All`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanScope {
    /// Everything.
    All,
    /// What depends neither on billing lines nor on cases: contacts,
    /// appointment records and their contact associations.
    Records,
    /// The rest: case decisions, deals, their contact associations, the
    /// appointment → deal associations, and the quarantine of mirror
    /// records the rules cannot use.
    Cases,
}

impl PlanScope {
    fn records(self) -> bool {
        matches!(self, PlanScope::All | PlanScope::Records)
    }

    fn cases(self) -> bool {
        matches!(self, PlanScope::All | PlanScope::Cases)
    }
}

/// Every deal's computed properties by case key, as planning saw them.
pub type DealProperties = BTreeMap<String, BTreeMap<String, String>>;

/// Plans one location and queues what changed in `scope`. With
/// `rehearse`, nothing is kept: the report says what a real run would
/// queue (dry run).
pub fn plan_location(
    ledger: &mut Ledger,
    location: &str,
    context: &PlanContext<'_>,
    rehearse: bool,
    scope: PlanScope,
) -> Result<PlanReport, LedgerError> {
    plan_scope(ledger, location, context, rehearse, scope, None)
}

/// [`plan_location`] of everything that also hands every deal's computed
/// properties to `deals` (changed or not), for the re-apply preview of a
/// mapping.
pub fn plan_location_capturing(
    ledger: &mut Ledger,
    location: &str,
    context: &PlanContext<'_>,
    rehearse: bool,
    deals: Option<&RefCell<DealProperties>>,
) -> Result<PlanReport, LedgerError> {
    plan_scope(ledger, location, context, rehearse, PlanScope::All, deals)
}

fn plan_scope(
    ledger: &mut Ledger,
    location: &str,
    context: &PlanContext<'_>,
    rehearse: bool,
    scope: PlanScope,
    deals: Option<&RefCell<DealProperties>>,
) -> Result<PlanReport, LedgerError> {
    let mut still = Vec::new();
    let part = Part {
        scope,
        range: &PatientRange::ALL,
        rehearse,
    };
    let report = plan_part(ledger, location, context, &part, deals, &mut still)?;
    if !rehearse && scope.cases() {
        resolve_planned_again(ledger, location, &still)?;
    }
    Ok(report)
}

/// Which part of a location one plan covers.
struct Part<'r> {
    /// Which records.
    scope: PlanScope,
    /// Whose.
    range: &'r PatientRange,
    /// Whether nothing is kept (dry run).
    rehearse: bool,
}

/// Plans `part` of a location: quarantines the records of its patients
/// the rules cannot use (outside a rehearsal, for case scopes), adding
/// their ids to `still`, then writes the plan in one transaction.
fn plan_part(
    ledger: &mut Ledger,
    location: &str,
    context: &PlanContext<'_>,
    part: &Part<'_>,
    deals: Option<&RefCell<DealProperties>>,
    still: &mut Vec<String>,
) -> Result<PlanReport, LedgerError> {
    let mut report = PlanReport {
        location: location.to_owned(),
        ..PlanReport::default()
    };
    let mut prepared = Prepared::load(
        ledger.connection(),
        location,
        context,
        part.range,
        &mut report,
    )?;
    if !part.rehearse && part.scope.cases() {
        for reject in &prepared.facts.rejects {
            still.extend(reject.record_id.clone());
            if ledger.quarantine(reject)?.is_some() {
                report.quarantined += 1;
            }
        }
    }
    let body = |tx: &Transaction<'_>| {
        prepared.write(
            tx,
            location,
            context,
            (part, Sink::Outbox),
            deals,
            &mut report,
        )
    };
    if part.rehearse {
        ledger.rehearse(body)?;
    } else {
        ledger.transaction(body)?;
    }
    Ok(report)
}

/// Closes the planner's quarantine entries of `location` whose records
/// are no longer among the unusable (`still`).
fn resolve_planned_again(
    ledger: &mut Ledger,
    location: &str,
    still: &[String],
) -> Result<(), LedgerError> {
    let still: Vec<&str> = still.iter().map(String::as_str).collect();
    ledger.resolve_planned_again(location, &still)?;
    Ok(())
}

/// Plans the cases of one location in parts while its billing lines are
/// swept, patients in Ivoris id order: each part is the patients whose
/// lines are all in, so their deals are sent while the sweep reads on.
/// The parts together plan exactly what one [`PlanScope::Cases`] plan
/// after the sweep would; the last part, [`PartPlanner::finish`], takes the
/// patients after the last part, the records that name no patient, the
/// quarantine's bookkeeping and the end of the switch-over's adoption.
/// Never a rehearsal: a dry run plans once, after the extraction.
pub struct PartPlanner {
    /// The location.
    location: String,
    /// The last patient planned so far.
    through: Option<String>,
    /// Ids of the records the parts quarantined.
    still: Vec<String>,
    /// The parts' reports, summed.
    report: PlanReport,
}

impl PartPlanner {
    /// Nothing planned yet.
    pub fn new(location: &str) -> PartPlanner {
        PartPlanner {
            location: location.to_owned(),
            through: None,
            still: Vec::new(),
            report: PlanReport {
                location: location.to_owned(),
                ..PlanReport::default()
            },
        }
    }

    /// Plans the cases of the patients after the last part up to and
    /// including `through`.
    pub fn plan_through(
        &mut self,
        ledger: &mut Ledger,
        context: &PlanContext<'_>,
        through: &str,
    ) -> Result<(), LedgerError> {
        let range = PatientRange {
            after: self.through.clone(),
            through: Some(through.to_owned()),
        };
        self.plan(ledger, context, &range)?;
        self.through = range.through;
        Ok(())
    }

    /// What the parts planned so far did, when the sweep stopped before
    /// its end (the next run plans the rest).
    pub fn into_report(self) -> PlanReport {
        self.report
    }

    /// Plans the rest of the location and returns what all parts did.
    pub fn finish(
        mut self,
        ledger: &mut Ledger,
        context: &PlanContext<'_>,
    ) -> Result<PlanReport, LedgerError> {
        let range = PatientRange {
            after: self.through.take(),
            through: None,
        };
        self.plan(ledger, context, &range)?;
        resolve_planned_again(ledger, &self.location, &self.still)?;
        Ok(self.report)
    }

    fn plan(
        &mut self,
        ledger: &mut Ledger,
        context: &PlanContext<'_>,
        range: &PatientRange,
    ) -> Result<(), LedgerError> {
        let part = Part {
            scope: PlanScope::Cases,
            range,
            rehearse: false,
        };
        let planned = plan_part(
            ledger,
            &self.location,
            context,
            &part,
            None,
            &mut self.still,
        )?;
        self.report.absorb(planned);
        Ok(())
    }
}

/// The outbox rows a plan would leave for its location, kept in memory:
/// (kind, key) → payload hash, or `None` where the plan would remove a
/// waiting row because HubSpot already has that content.
pub type PlannedRows = HashMap<(OutboxKind, String), Option<String>>;

/// What [`plan_within`] keeps besides the rows it returns.
pub struct Rehearsal<'a> {
    /// Every deal's properties, by case key.
    pub deals: &'a RefCell<DealProperties>,
    /// Whether the case decisions are written to the transaction — a later
    /// plan in it reads them; the last plan needs not.
    pub keep_decisions: bool,
}

/// Where a plan's outbox rows go.
enum Sink<'a> {
    /// Into the outbox, with the case decisions.
    Outbox,
    /// Into memory, without payloads; the case decisions only when asked.
    Memory {
        planned: &'a mut PlannedRows,
        decisions: bool,
    },
}

/// Plans every scope of one location inside a transaction the caller holds
/// (and rolls back): the import's dry run writes the file's rows and plans
/// in one transaction, so the plan sees them. Case decisions are written
/// to the transaction when asked; the outbox rows are not — their hashes
/// are returned (the outbox as the plan found it, overlaid with them, is
/// what a real plan would leave), which spares building, writing and
/// rolling back every payload. The planner's quarantine is not touched, as
/// in any rehearsal.
pub fn plan_within(
    tx: &Transaction<'_>,
    location: &str,
    context: &PlanContext<'_>,
    rehearsal: Rehearsal<'_>,
) -> Result<(PlanReport, PlannedRows), LedgerError> {
    let mut report = PlanReport {
        location: location.to_owned(),
        ..PlanReport::default()
    };
    let mut prepared = Prepared::load(tx, location, context, &PatientRange::ALL, &mut report)?;
    let part = Part {
        scope: PlanScope::All,
        range: &PatientRange::ALL,
        rehearse: true,
    };
    let mut planned = PlannedRows::new();
    let sink = Sink::Memory {
        planned: &mut planned,
        decisions: rehearsal.keep_decisions,
    };
    prepared.write(
        tx,
        location,
        context,
        (&part, sink),
        Some(rehearsal.deals),
        &mut report,
    )?;
    Ok((report, planned))
}

/// What a plan reads before it writes: the facts, the recorded cases and
/// the hashes HubSpot confirmed or that wait.
struct Prepared {
    /// The mirror's facts of the location.
    facts: Facts,
    /// Recorded cases per patient.
    patients: HashMap<String, PatientCases>,
    /// Confirmed and queued hashes.
    known: Known,
}

impl Prepared {
    fn load(
        conn: &Connection,
        location: &str,
        context: &PlanContext<'_>,
        range: &PatientRange,
        report: &mut PlanReport,
    ) -> Result<Prepared, LedgerError> {
        let mut facts = Facts::load(conn, location, range)?;
        let patients = facts.patient_cases(conn, location)?;
        hold_back_unmapped_states(&mut facts, &patients, context.mapping, report);
        let known = Known::load(conn)?;
        Ok(Prepared {
            facts,
            patients,
            known,
        })
    }

    /// Plans every patient of `part` and writes what it found to `sink`.
    fn write(
        &mut self,
        tx: &Transaction<'_>,
        location: &str,
        context: &PlanContext<'_>,
        (part, mut sink): (&Part<'_>, Sink<'_>),
        deals: Option<&RefCell<DealProperties>>,
        report: &mut PlanReport,
    ) -> Result<(), LedgerError> {
        let scope = part.scope;
        let (facts, known) = (&self.facts, &self.known);
        let deals_waiting = match context.legacy {
            Some(_) if scope.cases() => deals_waiting(tx, location)?,
            _ => 0,
        };
        // Every patient is planned on its own: the rules run on several
        // threads over disjoint patients, then the decisions and changed
        // records are written in patient order, in the caller's transaction.
        let mut work: Vec<(&PatientFacts, PatientCases)> = facts
            .patients
            .iter()
            .map(|patient| {
                let cases = self
                    .patients
                    .remove(&patient.id)
                    .unwrap_or_else(|| PatientCases::new(location, &patient.id));
                (patient, cases)
            })
            .collect();
        // A bounded number of patients at a time, so the payloads waiting
        // to be written never hold a whole location in memory.
        for part in work.chunks_mut(PATIENTS_PER_STEP) {
            let keeping = Keeping {
                deals: deals.is_some(),
                payloads: matches!(sink, Sink::Outbox),
            };
            for mut plan in plan_patients(part, facts, known, context, scope, keeping) {
                if let Some(deals) = deals {
                    deals.borrow_mut().extend(plan.deals.drain(..));
                }
                match &mut sink {
                    Sink::Outbox => plan.apply(tx, location, report)?,
                    Sink::Memory { planned, decisions } => {
                        if *decisions {
                            plan.record_steps(tx, location)?;
                        }
                        plan.apply_in_memory(known, planned, report);
                    }
                }
            }
        }
        // The switch-over: adopt what the portal holds before the load
        // creates anything, in the transaction that queued the rows.
        if let Some(portal) = context.legacy {
            if scope.records() {
                adopt_contacts(tx, location, &facts.patients, portal, &mut report.adoption)?;
            }
            if scope.cases() {
                let stages = context.stage_ids.of(location);
                adopt_deals(
                    tx,
                    location,
                    (stages, portal),
                    part.range,
                    deals_waiting,
                    &mut report.adoption,
                )?;
            }
        }
        Ok(())
    }
}

/// Derives every patient's cases and stages at `now` as the next plan
/// would, without writing anything, and hands each patient to `visit` —
/// the dashboard counts exactly what a sync sends to HubSpot.
///
/// Patients are observed on `threads` threads (see [`planning_threads`]),
/// each part into its own accumulator made by `start`; the accumulators are
/// returned for the caller to merge. New appointments are admitted in memory only; like
/// planning, one whose state the mapping does not know is not admitted (it
/// is still shown to `visit` among the patient's appointments).
pub fn observe_location<T: Send>(
    ledger: &Ledger,
    location: &str,
    mapping: &Mapping,
    now: NaiveDateTime,
    threads: usize,
    start: impl Fn() -> T + Sync,
    visit: impl Fn(&mut T, PatientView<'_>) + Sync,
) -> Result<Vec<T>, LedgerError> {
    let facts = Facts::load(ledger.connection(), location, &PatientRange::ALL)?;
    let mut recorded = facts.patient_cases(ledger.connection(), location)?;
    let mut work: Vec<(&PatientFacts, PatientCases)> = facts
        .patients
        .iter()
        .map(|patient| {
            let cases = recorded
                .remove(&patient.id)
                .unwrap_or_else(|| PatientCases::new(location, &patient.id));
            (patient, cases)
        })
        .collect();
    let observe = |part: &mut [(&PatientFacts, PatientCases)]| -> T {
        let mut accumulator = start();
        for (patient, cases) in part {
            let (appointments, entries) = facts.records_of(&patient.id);
            let admissible: Vec<AppointmentFacts> = appointments
                .iter()
                .filter(|a| mapping.appointment_state(&a.state).is_some())
                .cloned()
                .collect();
            cases.admit(&admissible, entries, mapping);
            let spans = cases.entries_by_case(entries);
            let outcomes = derive_stages_by_span(cases, &spans, mapping, now);
            visit(
                &mut accumulator,
                PatientView {
                    appointments,
                    entries,
                    cases,
                    outcomes: &outcomes,
                    spans: &spans,
                },
            );
        }
        accumulator
    };
    Ok(in_parts(&mut work, threads, observe))
}

/// An appointment whose Ivoris state the mapping does not know cannot be
/// judged: whether it should open a case is exactly what the state says.
/// Admitting it anyway would be a guess that sticky membership makes
/// permanent, so a new one is held back — quarantined with the value to add
/// to the mapping, and neither admitted nor sent — until the mapping knows
/// the value (it stays in the mirror, so the next plan after the correction
/// admits it). An appointment that is already a member stays in its case;
/// the stage rules leave its unknown state out, as always.
fn hold_back_unmapped_states(
    facts: &mut Facts,
    patients: &HashMap<String, PatientCases>,
    mapping: &Mapping,
    report: &mut PlanReport,
) {
    for (patient_id, appointments) in &mut facts.appointments {
        let member = |id: &str| {
            patients.get(patient_id).is_some_and(|cases| {
                cases.unassigned.iter().any(|u| u == id)
                    || cases
                        .cases
                        .iter()
                        .any(|case| case.members.iter().any(|m| m.id == id))
            })
        };
        appointments.retain(|appointment| {
            if mapping.appointment_state(&appointment.state).is_some() || member(&appointment.id)
            {
                return true;
            }
            report.unmapped_states.insert(appointment.state.clone());
            facts.rejects.push(NewQuarantine {
                location_key: report.location.clone(),
                source: "ledger:appointments".to_owned(),
                record_id: Some(appointment.id.clone()),
                field: Some("State".to_owned()),
                reason_de: format!(
                    "Unbekannter Terminstatus „{}“: Termin zurückgehalten, bis die Zuordnung ihn kennt",
                    appointment.state
                ),
                reason_en: format!(
                    "unknown appointment state \"{}\": appointment held back until the mapping knows it",
                    appointment.state
                ),
                raw: appointment.id.clone(),
            });
            false
        });
    }
}

/// Plans every patient of `work`, on several threads when there are many.
fn plan_patients(
    work: &mut [(&PatientFacts, PatientCases)],
    facts: &Facts,
    known: &Known,
    context: &PlanContext<'_>,
    scope: PlanScope,
    keeping: Keeping,
) -> Vec<PatientPlan> {
    let plan_one = |(patient, cases): &mut (&PatientFacts, PatientCases)| {
        let mut out = Out::new(known, keeping);
        plan_patient(&mut out, patient, cases, facts, context, scope);
        out.plan
    };
    let threads = if work.len() < PATIENTS_PER_THREAD {
        1
    } else {
        planning_threads()
    };
    in_parts(work, threads, |part| {
        part.iter_mut().map(plan_one).collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Runs `f` over `work` split into `threads` contiguous parts, each on a
/// scoped thread of its own (on the calling thread for one part), and
/// returns the parts' results in order.
fn in_parts<W: Send, R: Send>(
    work: &mut [W],
    threads: usize,
    f: impl Fn(&mut [W]) -> R + Sync,
) -> Vec<R> {
    if threads < 2 || work.len() < 2 {
        return vec![f(work)];
    }
    let chunk = work.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .chunks_mut(chunk)
            .map(|part| scope.spawn(move || f(part)))
            .collect();
        handles
            .into_iter()
            .map(|handle| match handle.join() {
                Ok(result) => result,
                // The rules do not panic; if one did, the caller must not
                // go on with a part missing.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// Threads planning uses at most.
const MAX_PLAN_THREADS: usize = 4;

/// The threads the rules run on: the machine's cores, at most
/// [`MAX_PLAN_THREADS`].
pub fn planning_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_PLAN_THREADS)
}
/// Fewer patients than this are planned on the calling thread.
const PATIENTS_PER_THREAD: usize = 512;
/// Patients planned before their writes are applied.
const PATIENTS_PER_STEP: usize = 2_048;

fn plan_patient(
    out: &mut Out<'_>,
    patient: &PatientFacts,
    cases: &mut PatientCases,
    facts: &Facts,
    context: &PlanContext<'_>,
    scope: PlanScope,
) {
    let location = patient.location.as_str();
    let (appointments, entries) = facts.records_of(&patient.id);

    for appointment in appointments {
        if context
            .mapping
            .appointment_state(&appointment.state)
            .is_none()
        {
            out.plan
                .report
                .unmapped_states
                .insert(appointment.state.clone());
        }
    }
    let assignments = if scope.cases() {
        cases.admit(appointments, entries, context.mapping)
    } else {
        Vec::new()
    };
    for assignment in assignments {
        if assignment.unmapped_type
            && let Some(label) = appointments
                .iter()
                .find(|a| a.id == assignment.appointment_id)
                .and_then(|a| a.type_label.clone())
        {
            out.plan.report.unmapped_types.insert(label);
        }
        if let Decision::Opened(key) = &assignment.decision
            && let Some(case) = cases.cases.iter().find(|c| &c.key == key)
        {
            out.plan.steps.push(CaseStep::Open(case_row(case)));
            out.plan.report.cases_opened += 1;
        }
        out.plan.steps.push(CaseStep::Decide(MemberRow {
            appointment_id: assignment.appointment_id.clone(),
            patient_id: patient.id.clone(),
            case_key: assignment.case_key().map(str::to_owned),
        }));
    }

    let contact_key = patient_key(location, &patient.id);
    if scope.records() {
        let contact =
            contact_properties(patient, context.mapping, context.cleared_contact_properties);
        out.queue(
            OutboxKind::Contact,
            &contact_key,
            || props_json(contact.as_map()),
            &contact.content_hash(),
        );
    }

    if scope.cases() {
        plan_deals(out, patient, cases, entries, context, &contact_key);
    }
    if context.appointments_enabled {
        for appointment in appointments {
            let key = appointment_key(location, &appointment.id);
            if scope.records() {
                let record = appointment_properties(location, appointment, context.mapping);
                out.queue(
                    OutboxKind::Appointment,
                    &key,
                    || props_json(record.as_map()),
                    &record.content_hash(),
                );
                out.associate(("appointment", &key), ("contact", &contact_key));
            }
            if scope.cases()
                && let Some(case) = cases
                    .cases
                    .iter()
                    .find(|case| case.members.iter().any(|m| m.id == appointment.id))
            {
                out.associate(("appointment", &key), ("deal", &case.key));
            }
        }
    }
}

/// The deals of a patient's cases and their contact associations.
fn plan_deals(
    out: &mut Out<'_>,
    patient: &PatientFacts,
    cases: &PatientCases,
    entries: &[EntryFacts],
    context: &PlanContext<'_>,
    contact_key: &str,
) {
    let spans = cases.entries_by_case(entries);
    let outcomes = derive_stages_by_span(cases, &spans, context.mapping, context.now);
    let deal_context = DealContext {
        mapping: context.mapping,
        stage_ids: context.stage_ids.of(&patient.location),
        now: context.now,
    };
    for (case, outcome) in cases.cases.iter().zip(&outcomes) {
        let lines = spans.by_case.get(&case.key).map_or(&[][..], Vec::as_slice);
        let deal = deal_properties(patient, case, lines, outcome, &deal_context);
        if out.keeping.deals {
            out.plan
                .deals
                .push((case.key.clone(), deal.as_map().clone()));
        }
        out.queue(
            OutboxKind::Deal,
            &case.key,
            || props_json(deal.as_map()),
            &deal.content_hash(),
        );
        out.associate(("deal", &case.key), ("contact", contact_key));
    }
}

/// What planning one patient found to do, computed without the ledger and
/// applied in patient order.
#[derive(Default)]
struct PatientPlan {
    /// Opened cases and membership decisions, in the order they were made.
    steps: Vec<CaseStep>,
    /// Records whose content is neither confirmed by HubSpot nor waiting.
    writes: Vec<Write>,
    /// Counts and findings of this patient.
    report: PlanReport,
    /// Every deal's properties, when the re-apply preview asks for them.
    deals: Vec<(String, BTreeMap<String, String>)>,
}

/// A case decision to record.
enum CaseStep {
    /// A case was opened.
    Open(CaseRow),
    /// An appointment was assigned (or decided to stay outside).
    Decide(MemberRow),
}

/// A record to queue.
struct Write {
    kind: OutboxKind,
    key: String,
    payload: Value,
    hash: String,
}

impl PatientPlan {
    /// Records the decisions and queues the writes inside the planning
    /// transaction.
    fn apply(
        self,
        tx: &Transaction<'_>,
        location: &str,
        report: &mut PlanReport,
    ) -> Result<(), LedgerError> {
        self.record_steps(tx, location)?;
        let mut mine = self.report;
        for write in self.writes {
            let outcome = enqueue(
                tx,
                write.kind,
                &write.key,
                Some(location),
                &write.payload,
                &write.hash,
            )?;
            mine.queued.entry(write.kind).or_default().count(outcome);
        }
        report.absorb(mine);
        Ok(())
    }
}

impl PatientPlan {
    fn record_steps(&self, tx: &Transaction<'_>, location: &str) -> Result<(), LedgerError> {
        for step in &self.steps {
            match step {
                CaseStep::Open(row) => open_case(tx, location, row)?,
                CaseStep::Decide(row) => decide(tx, location, row)?,
            }
        }
        Ok(())
    }

    /// Keeps the outbox rows in `planned` instead of the outbox, each
    /// counted as `enqueue` would count it against the outbox and HubSpot's
    /// hashes the plan started from.
    fn apply_in_memory(self, known: &Known, planned: &mut PlannedRows, report: &mut PlanReport) {
        let mut mine = self.report;
        for write in self.writes {
            let (kind, hash) = (write.kind, write.hash);
            let outcome = if known.confirmed(kind, &write.key) == Some(hash.as_str()) {
                planned.insert((kind, write.key), None);
                Enqueued::AlreadyConfirmed
            } else {
                let outcome = match known.queued(kind, &write.key) {
                    Some(queued) if queued == hash => Enqueued::Unchanged,
                    Some(_) => Enqueued::Replaced,
                    None => Enqueued::Added,
                };
                planned.insert((kind, write.key), Some(hash));
                outcome
            };
            mine.queued.entry(kind).or_default().count(outcome);
        }
        report.absorb(mine);
    }
}

/// What planning a patient keeps besides the keys and hashes to write.
#[derive(Debug, Clone, Copy)]
struct Keeping {
    /// Every deal's properties, for the previews.
    deals: bool,
    /// The payloads — not when the rows stay in memory.
    payloads: bool,
}

/// Collects one patient's plan against what the ledger knew.
struct Out<'k> {
    /// Confirmed and queued hashes, read once instead of per record.
    known: &'k Known,
    /// What is kept besides keys and hashes.
    keeping: Keeping,
    /// What was found.
    plan: PatientPlan,
}

impl<'k> Out<'k> {
    fn new(known: &'k Known, keeping: Keeping) -> Out<'k> {
        Out {
            known,
            keeping,
            plan: PatientPlan::default(),
        }
    }

    /// Queues a record unless HubSpot has this content and nothing else
    /// waits for it — the common case of a re-sync, decided without a query
    /// and without building the payload.
    fn queue(&mut self, kind: OutboxKind, key: &str, payload: impl FnOnce() -> Value, hash: &str) {
        let confirmed = self.known.confirmed(kind, key);
        let queued = self.known.queued(kind, key);
        let settled = match (confirmed, queued) {
            (Some(c), None) if c == hash => Some(Enqueued::AlreadyConfirmed),
            (_, Some(q)) if q == hash => Some(Enqueued::Unchanged),
            _ => None,
        };
        match settled {
            Some(outcome) => self
                .plan
                .report
                .queued
                .entry(kind)
                .or_default()
                .count(outcome),
            None => self.plan.writes.push(Write {
                kind,
                key: key.to_owned(),
                payload: if self.keeping.payloads {
                    payload()
                } else {
                    Value::Null
                },
                hash: hash.to_owned(),
            }),
        }
    }

    /// Queues the default association between two records named by kind
    /// and unique key; the load step resolves their HubSpot ids.
    fn associate(&mut self, from: (&str, &str), to: (&str, &str)) {
        let key = association_key(from, to);
        let hash = blake3::hash(key.as_bytes()).to_hex();
        self.queue(
            OutboxKind::Association,
            &key,
            || json!({"from_kind": from.0, "from_key": from.1, "to_kind": to.0, "to_key": to.1}),
            hash.as_str(),
        );
    }
}

/// Content hashes HubSpot confirmed and hashes waiting in the outbox, per
/// kind by record key.
#[derive(Default)]
struct Known {
    /// From `hubspot_records`, indexed by [`kind_index`].
    confirmed: [HashMap<String, String>; 6],
    /// From the outbox (pending or dead), indexed by [`kind_index`].
    queued: [HashMap<String, String>; 6],
}

/// Index of a kind in [`Known`]'s tables (erasures are never planned).
fn kind_index(kind: OutboxKind) -> usize {
    match kind {
        OutboxKind::Contact => 0,
        OutboxKind::Deal => 1,
        OutboxKind::Appointment => 2,
        OutboxKind::Association => 3,
        OutboxKind::Merge => 4,
        OutboxKind::Erasure => 5,
    }
}

impl Known {
    fn load(conn: &Connection) -> Result<Known, LedgerError> {
        let mut known = Known::default();
        for (kind, key, hash) in crate::ledger::outbox::confirmed_hashes(conn)? {
            known.confirmed[kind_index(kind)].insert(key, hash);
        }
        for (kind, key, hash) in crate::ledger::outbox::queued_hashes(conn)? {
            known.queued[kind_index(kind)].insert(key, hash);
        }
        Ok(known)
    }

    fn confirmed(&self, kind: OutboxKind, key: &str) -> Option<&str> {
        self.confirmed[kind_index(kind)]
            .get(key)
            .map(String::as_str)
    }

    fn queued(&self, kind: OutboxKind, key: &str) -> Option<&str> {
        self.queued[kind_index(kind)].get(key).map(String::as_str)
    }
}

/// Outbox key of an association. The kind pair comes first so that the
/// outbox, read in key order, hands out long runs of one pair: one HubSpot
/// call per 100 associations.
pub fn association_key(from: (&str, &str), to: (&str, &str)) -> String {
    format!("{}>{}|{}>{}", from.0, to.0, from.1, to.1)
}

fn props_json(properties: &BTreeMap<String, String>) -> Value {
    Value::Object(
        properties
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn case_row(case: &Case) -> CaseRow {
    CaseRow {
        case_key: case.key.clone(),
        patient_id: case.patient_id.clone(),
        opening_appointment_id: case.opening_appointment_id.clone(),
        opened_at: case.opened_at.format("%Y-%m-%dT%H:%M:%S").to_string(),
        duplicate: case.duplicate,
    }
}

/// The plan's input for one location, read from the mirror.
struct Facts {
    /// Every patient, ordered by Ivoris id for a deterministic plan.
    patients: Vec<PatientFacts>,
    /// Appointments by patient id, each list by start, then id.
    appointments: HashMap<String, Vec<AppointmentFacts>>,
    /// Billing lines by patient id, each list by date, then id.
    entries: HashMap<String, Vec<EntryFacts>>,
    /// Mirrored records the rules cannot use.
    rejects: Vec<NewQuarantine>,
}

impl Facts {
    /// One patient's appointments and billing lines (empty when none).
    fn records_of(&self, patient_id: &str) -> (&[AppointmentFacts], &[EntryFacts]) {
        let appointments = self
            .appointments
            .get(patient_id)
            .map_or(&[][..], Vec::as_slice);
        let entries = self.entries.get(patient_id).map_or(&[][..], Vec::as_slice);
        (appointments, entries)
    }

    /// The facts of the patients in `range`; an open-ended range also
    /// takes the records that name no patient (rejects).
    fn load(conn: &Connection, location: &str, range: &PatientRange) -> Result<Facts, LedgerError> {
        let mut rejects = Vec::new();
        let mut reject = |table: &str, id: String, field: &str, de: &str, en: &str| {
            rejects.push(NewQuarantine {
                location_key: location.to_owned(),
                source: format!("ledger:{table}"),
                record_id: Some(id.clone()),
                field: Some(field.to_owned()),
                reason_de: de.to_owned(),
                reason_en: en.to_owned(),
                raw: id,
            });
        };

        let patients = load_patients_in(conn, location, range)?;
        let bounds = params![location, range.after, range.through];

        let mut appointments: HashMap<String, Vec<AppointmentFacts>> = HashMap::new();
        let mut statement = conn.prepare_cached(
            // Appointments deleted in Ivoris stay facts, cancelled
            // (`ledger::deletions`).
            &format!(
                "SELECT ivoris_id, patient_id, start, duration_minutes, state, type_label,
                        template_id, 0 AS deleted
                 FROM appointments WHERE location_key = ?1 AND {IN_RANGE}
                 UNION ALL
                 SELECT ivoris_id, patient_id, start, duration_minutes, state, type_label,
                        template_id, 1 AS deleted
                 FROM deleted_appointments WHERE location_key = ?1 AND {IN_RANGE}"
            ),
        )?;
        let rows = statement.query_map(bounds, |row| {
            Ok((
                (
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<i64>>(3)?,
                ),
                (
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, Option<String>>(5)?,
                    row.get::<_, Option<String>>(6)?,
                    row.get::<_, bool>(7)?,
                ),
            ))
        })?;
        for row in rows {
            let ((id, patient, start, duration), (state, type_label, template_id, deleted)) = row?;
            let Some(patient_id) = patient.filter(|p| !p.is_empty()) else {
                reject(
                    "appointments",
                    id,
                    "PatientId",
                    "Termin ohne Patient",
                    "appointment without a patient",
                );
                continue;
            };
            let Some(start) = start.as_deref().and_then(parse_date_time) else {
                reject(
                    "appointments",
                    id,
                    "Start",
                    "Termin ohne gültigen Beginn",
                    "appointment without a valid start",
                );
                continue;
            };
            appointments
                .entry(patient_id.clone())
                .or_default()
                .push(AppointmentFacts {
                    id,
                    patient_id,
                    start,
                    duration_minutes: duration.and_then(|d| u32::try_from(d).ok()),
                    state: state.unwrap_or_default(),
                    type_label,
                    template_id,
                    deleted,
                });
        }

        let mut entries: HashMap<String, Vec<EntryFacts>> = HashMap::new();
        let mut statement = conn.prepare_cached(&format!(
            "SELECT ivoris_id, patient_id, date, entry_type, catalogue, code, amount_cents
             FROM document_entries WHERE location_key = ?1 AND {IN_RANGE}"
        ))?;
        let rows = statement.query_map(bounds, |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, Option<i64>>(6)?,
            ))
        })?;
        for row in rows {
            let (id, patient, date, entry_type, catalogue, code, amount) = row?;
            let Some(patient_id) = patient.filter(|p| !p.is_empty()) else {
                reject(
                    "document_entries",
                    id,
                    "PatientId",
                    "Leistung ohne Patient",
                    "billing line without a patient",
                );
                continue;
            };
            let Some(date) = date.as_deref().and_then(parse_day) else {
                reject(
                    "document_entries",
                    id,
                    "Date",
                    "Leistung ohne gültiges Datum",
                    "billing line without a valid date",
                );
                continue;
            };
            let Some(amount_cents) = amount else {
                reject(
                    "document_entries",
                    id,
                    "Amount",
                    "Leistung ohne Betrag",
                    "billing line without an amount",
                );
                continue;
            };
            entries
                .entry(patient_id.clone())
                .or_default()
                .push(EntryFacts {
                    id,
                    patient_id,
                    date,
                    entry_type: entry_type.unwrap_or_default(),
                    catalogue,
                    code,
                    amount_cents,
                });
        }
        // Read in table order (a sequential scan) and ordered per patient
        // here, which is much cheaper than ordering a whole location in SQL.
        for list in appointments.values_mut() {
            list.sort_unstable_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        }
        for list in entries.values_mut() {
            list.sort_unstable_by(|a, b| (a.date, &a.id).cmp(&(b.date, &b.id)));
        }
        Ok(Facts {
            patients,
            appointments,
            entries,
            rejects,
        })
    }

    /// The recorded cases of every patient, with their members' current facts.
    fn patient_cases(
        &self,
        conn: &Connection,
        location: &str,
    ) -> Result<HashMap<String, PatientCases>, LedgerError> {
        let mut by_patient: HashMap<String, PatientCases> = HashMap::new();
        for row in crate::ledger::cases::cases(conn, location)? {
            let Some(opened_at) = parse_date_time(&row.opened_at) else {
                continue;
            };
            by_patient
                .entry(row.patient_id.clone())
                .or_insert_with(|| PatientCases::new(location, &row.patient_id))
                .cases
                .push(Case {
                    key: row.case_key,
                    location: location.to_owned(),
                    patient_id: row.patient_id,
                    opening_appointment_id: row.opening_appointment_id,
                    opened_at,
                    members: Vec::new(),
                    duplicate: row.duplicate,
                });
        }
        for member in crate::ledger::cases::case_members(conn, location)? {
            let cases = by_patient
                .entry(member.patient_id.clone())
                .or_insert_with(|| PatientCases::new(location, &member.patient_id));
            match member.case_key {
                None => cases.unassigned.push(member.appointment_id),
                Some(key) => {
                    let facts = self
                        .appointments
                        .get(&member.patient_id)
                        .and_then(|list| list.iter().find(|a| a.id == member.appointment_id));
                    if let (Some(case), Some(facts)) =
                        (cases.cases.iter_mut().find(|c| c.key == key), facts)
                    {
                        case.members.push(facts.clone());
                    }
                }
            }
        }
        // Cases stay in the order they were opened (as `Ledger::cases` reads
        // them), not sorted by start: "latest" means opened last, so a run
        // that reads the cases back sees the same latest case as the run
        // that opened them.
        for cases in by_patient.values_mut() {
            for case in &mut cases.cases {
                case.members
                    .sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
            }
        }
        Ok(by_patient)
    }
}

fn parse_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| parse_date_time(text).map(|t| t.date()))
}

/// The condition on `patient_id` (`?2` the range's `after`, `?3` its
/// `through`) that selects the records of a [`PatientRange`]: an
/// open-ended range also selects the records without a patient.
const IN_RANGE: &str = "((?2 IS NULL OR patient_id > ?2) AND (?3 IS NULL OR patient_id <= ?3)
     OR ?3 IS NULL AND (patient_id IS NULL OR patient_id = ''))";

/// Every mirrored patient of `location` as the rules see it, ordered by
/// Ivoris id.
pub fn load_patients(conn: &Connection, location: &str) -> Result<Vec<PatientFacts>, LedgerError> {
    load_patients_in(conn, location, &PatientRange::ALL)
}

/// The mirrored patients of `location` in `range`, ordered by Ivoris id.
fn load_patients_in(
    conn: &Connection,
    location: &str,
    range: &PatientRange,
) -> Result<Vec<PatientFacts>, LedgerError> {
    let mut patients = Vec::new();
    let mut statement = conn.prepare_cached(
        "SELECT record FROM patients WHERE location_key = ?1
           AND (?2 IS NULL OR ivoris_id > ?2) AND (?3 IS NULL OR ivoris_id <= ?3)
         ORDER BY ivoris_id",
    )?;
    let rows = statement.query_map(params![location, range.after, range.through], |row| {
        row.get::<_, String>(0)
    })?;
    for row in rows {
        let patient: Patient = serde_json::from_str(&row?)?;
        patients.push(patient_facts(location, patient));
    }
    Ok(patients)
}

fn patient_facts(location: &str, patient: Patient) -> PatientFacts {
    let address = patient.address.unwrap_or_default();
    PatientFacts {
        location: location.to_owned(),
        id: patient.id,
        human_readable_id: patient.human_readable_id,
        firstname: patient.firstname,
        lastname: patient.lastname,
        email: patient.email,
        phone: patient.phone,
        mobile: patient.mobile,
        birthday: patient.birthday.map(|b| b.date()),
        street: address.street,
        zip: address.zip,
        city: address.city,
    }
}
