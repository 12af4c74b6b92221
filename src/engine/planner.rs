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
use rusqlite::{Connection, Transaction};
use serde_json::{Value, json};

use crate::ivoris::parse::parse_date_time;
use crate::ivoris::wire::Patient;
use crate::ledger::cases::{CaseRow, MemberRow, decide, open_case};
use crate::ledger::outbox::enqueue;
use crate::ledger::{Enqueued, Ledger, LedgerError, NewQuarantine, OutboxKind};
use crate::mapping::Mapping;
use crate::plan::properties::{appointment_key, patient_key};
use crate::plan::{
    AppointmentFacts, Case, DealContext, Decision, EntryFacts, PatientCases, PatientFacts,
    StageIds, appointment_properties, contact_properties, deal_properties, derive_stages,
};

/// What planning needs besides the ledger.
pub struct PlanContext<'a> {
    /// The mapping in force.
    pub mapping: &'a Mapping,
    /// Pipeline and stage ids resolved from HubSpot.
    pub stage_ids: &'a StageIds,
    /// Whether HubSpot appointment objects are written.
    pub appointments_enabled: bool,
    /// Local Berlin time the stages are derived at.
    pub now: NaiveDateTime,
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

/// Every deal's computed properties by case key, as planning saw them.
pub type DealProperties = BTreeMap<String, BTreeMap<String, String>>;

/// Plans one location and queues what changed. With `rehearse`, nothing is
/// kept: the report says what a real run would queue (dry run).
pub fn plan_location(
    ledger: &mut Ledger,
    location: &str,
    context: &PlanContext<'_>,
    rehearse: bool,
) -> Result<PlanReport, LedgerError> {
    plan_location_capturing(ledger, location, context, rehearse, None)
}

/// [`plan_location`] that also hands every deal's computed properties to
/// `deals` (changed or not), for the re-apply preview of a mapping.
pub fn plan_location_capturing(
    ledger: &mut Ledger,
    location: &str,
    context: &PlanContext<'_>,
    rehearse: bool,
    deals: Option<&RefCell<DealProperties>>,
) -> Result<PlanReport, LedgerError> {
    let mut facts = Facts::load(ledger.connection(), location)?;
    let mut report = PlanReport {
        location: location.to_owned(),
        ..PlanReport::default()
    };
    let mut patients = facts.patient_cases(ledger, location)?;
    hold_back_unmapped_states(&mut facts, &patients, context.mapping, &mut report);
    if !rehearse {
        let still: Vec<&str> = facts
            .rejects
            .iter()
            .filter_map(|r| r.record_id.as_deref())
            .collect();
        ledger.resolve_planned_again(location, &still)?;
        for reject in &facts.rejects {
            if ledger.quarantine(reject)?.is_some() {
                report.quarantined += 1;
            }
        }
    }
    let known = Known::load(ledger)?;
    let body = |tx: &Transaction<'_>| -> Result<(), LedgerError> {
        let out = Out {
            tx,
            known: &known,
            deals,
        };
        for patient in &facts.patients {
            let cases = patients
                .entry(patient.id.clone())
                .or_insert_with(|| PatientCases::new(location, &patient.id));
            plan_patient(&out, patient, cases, &facts, context, &mut report)?;
        }
        Ok(())
    };
    if rehearse {
        ledger.rehearse(body)?;
    } else {
        ledger.transaction(body)?;
    }
    Ok(report)
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

fn plan_patient(
    out: &Out<'_, '_>,
    patient: &PatientFacts,
    cases: &mut PatientCases,
    facts: &Facts,
    context: &PlanContext<'_>,
    report: &mut PlanReport,
) -> Result<(), LedgerError> {
    let location = patient.location.as_str();
    let appointments = facts
        .appointments
        .get(&patient.id)
        .map_or(&[][..], Vec::as_slice);
    let entries = facts
        .entries
        .get(&patient.id)
        .map_or(&[][..], Vec::as_slice);

    for appointment in appointments {
        if context
            .mapping
            .appointment_state(&appointment.state)
            .is_none()
        {
            report.unmapped_states.insert(appointment.state.clone());
        }
    }
    for assignment in cases.admit(appointments, entries, context.mapping) {
        if assignment.unmapped_type
            && let Some(label) = appointments
                .iter()
                .find(|a| a.id == assignment.appointment_id)
                .and_then(|a| a.type_label.clone())
        {
            report.unmapped_types.insert(label);
        }
        if let Decision::Opened(key) = &assignment.decision
            && let Some(case) = cases.cases.iter().find(|c| &c.key == key)
        {
            open_case(out.tx, location, &case_row(case))?;
            report.cases_opened += 1;
        }
        decide(
            out.tx,
            location,
            &MemberRow {
                appointment_id: assignment.appointment_id.clone(),
                patient_id: patient.id.clone(),
                case_key: assignment.case_key().map(str::to_owned),
            },
        )?;
    }

    let contact_key = patient_key(location, &patient.id);
    let contact = contact_properties(patient, context.mapping);
    queue(
        out,
        report,
        OutboxKind::Contact,
        &contact_key,
        location,
        props_json(contact.as_map()),
        contact.content_hash(),
    )?;

    let outcomes = derive_stages(cases, entries, context.mapping, context.now);
    let spans = cases.entries_by_case(entries);
    let deal_context = DealContext {
        mapping: context.mapping,
        stage_ids: context.stage_ids,
        now: context.now,
    };
    let mut case_of: HashMap<&str, &str> = HashMap::new();
    for (case, outcome) in cases.cases.iter().zip(&outcomes) {
        let lines = spans.by_case.get(&case.key).map_or(&[][..], Vec::as_slice);
        let deal = deal_properties(patient, case, lines, outcome, &deal_context);
        if let Some(deals) = out.deals {
            deals
                .borrow_mut()
                .insert(case.key.clone(), deal.as_map().clone());
        }
        queue(
            out,
            report,
            OutboxKind::Deal,
            &case.key,
            location,
            props_json(deal.as_map()),
            deal.content_hash(),
        )?;
        associate(
            out,
            report,
            location,
            ("deal", &case.key),
            ("contact", &contact_key),
        )?;
        for member in &case.members {
            case_of.insert(member.id.as_str(), case.key.as_str());
        }
    }

    if context.appointments_enabled {
        for appointment in appointments {
            let key = appointment_key(location, &appointment.id);
            let record = appointment_properties(location, appointment, context.mapping);
            queue(
                out,
                report,
                OutboxKind::Appointment,
                &key,
                location,
                props_json(record.as_map()),
                record.content_hash(),
            )?;
            associate(
                out,
                report,
                location,
                ("appointment", &key),
                ("contact", &contact_key),
            )?;
            if let Some(case) = case_of.get(appointment.id.as_str()) {
                associate(out, report, location, ("appointment", &key), ("deal", case))?;
            }
        }
    }
    Ok(())
}

fn queue(
    out: &Out<'_, '_>,
    report: &mut PlanReport,
    kind: OutboxKind,
    key: &str,
    location: &str,
    payload: Value,
    hash: String,
) -> Result<(), LedgerError> {
    // The common case of a re-sync, decided without a query: HubSpot has
    // this content and nothing else waits for the record.
    let confirmed = out.known.confirmed.get(&(kind, key.to_owned()));
    let queued = out.known.queued.get(&(kind, key.to_owned()));
    let outcome = match (confirmed, queued) {
        (Some(c), None) if *c == hash => Enqueued::AlreadyConfirmed,
        (_, Some(q)) if *q == hash => Enqueued::Unchanged,
        _ => enqueue(out.tx, kind, key, Some(location), &payload, &hash)?,
    };
    report.queued.entry(kind).or_default().count(outcome);
    Ok(())
}

/// The planning transaction and what the ledger knew when it began.
struct Out<'t, 'c> {
    /// Case decisions and outbox rows of the location.
    tx: &'t Transaction<'c>,
    /// Confirmed and queued hashes, read once instead of per record.
    known: &'t Known,
    /// Where the re-apply preview collects every deal's properties.
    deals: Option<&'t RefCell<DealProperties>>,
}

/// Content hashes HubSpot confirmed and hashes waiting in the outbox, by
/// kind and record key.
#[derive(Default)]
struct Known {
    /// From `hubspot_records`.
    confirmed: HashMap<(OutboxKind, String), String>,
    /// From the outbox (pending or dead).
    queued: HashMap<(OutboxKind, String), String>,
}

impl Known {
    fn load(ledger: &Ledger) -> Result<Known, LedgerError> {
        Ok(Known {
            confirmed: ledger
                .confirmed_hashes()?
                .into_iter()
                .map(|(k, key, h)| ((k, key), h))
                .collect(),
            queued: ledger
                .queued_hashes()?
                .into_iter()
                .map(|(k, key, h)| ((k, key), h))
                .collect(),
        })
    }
}

/// Queues the default association between two records named by kind and
/// unique key; the load step resolves their HubSpot ids.
fn associate(
    out: &Out<'_, '_>,
    report: &mut PlanReport,
    location: &str,
    from: (&str, &str),
    to: (&str, &str),
) -> Result<(), LedgerError> {
    let key = association_key(from, to);
    let payload = json!({"from_kind": from.0, "from_key": from.1, "to_kind": to.0, "to_key": to.1});
    let hash = blake3::hash(key.as_bytes()).to_hex().to_string();
    queue(
        out,
        report,
        OutboxKind::Association,
        &key,
        location,
        payload,
        hash,
    )
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
    /// Appointments by patient id.
    appointments: HashMap<String, Vec<AppointmentFacts>>,
    /// Billing lines by patient id.
    entries: HashMap<String, Vec<EntryFacts>>,
    /// Mirrored records the rules cannot use.
    rejects: Vec<NewQuarantine>,
}

impl Facts {
    fn load(conn: &Connection, location: &str) -> Result<Facts, LedgerError> {
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

        let mut patients = Vec::new();
        let mut statement = conn.prepare_cached(
            "SELECT record FROM patients WHERE location_key = ?1 ORDER BY ivoris_id",
        )?;
        let rows = statement.query_map([location], |row| row.get::<_, String>(0))?;
        for row in rows {
            let patient: Patient = serde_json::from_str(&row?)?;
            patients.push(patient_facts(location, patient));
        }

        let mut appointments: HashMap<String, Vec<AppointmentFacts>> = HashMap::new();
        let mut statement = conn.prepare_cached(
            "SELECT ivoris_id, patient_id, start, duration_minutes, state, type_label, template_id
             FROM appointments WHERE location_key = ?1 ORDER BY start, ivoris_id",
        )?;
        let rows = statement.query_map([location], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<i64>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, Option<String>>(6)?,
            ))
        })?;
        for row in rows {
            let (id, patient, start, duration, state, type_label, template_id) = row?;
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
                });
        }

        let mut entries: HashMap<String, Vec<EntryFacts>> = HashMap::new();
        let mut statement = conn.prepare_cached(
            "SELECT ivoris_id, patient_id, date, entry_type, catalogue, code, amount_cents
             FROM document_entries WHERE location_key = ?1 ORDER BY date, ivoris_id",
        )?;
        let rows = statement.query_map([location], |row| {
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
        ledger: &Ledger,
        location: &str,
    ) -> Result<HashMap<String, PatientCases>, LedgerError> {
        let mut by_patient: HashMap<String, PatientCases> = HashMap::new();
        for row in ledger.cases(location)? {
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
        for member in ledger.case_members(location)? {
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
