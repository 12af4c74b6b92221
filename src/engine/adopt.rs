//! Switching over from the previous integration (DESIGN.md §6): the first
//! plan of a location adopts what the portal already holds instead of
//! creating it again.
//!
//! [`read_legacy`] reads the portal once per run through the list
//! endpoints (100 records a page, only the properties adoption needs, never
//! search) — contacts without our patient key, deals without our case key;
//! the pipelines, read by provisioning, tell open stages from closed ones. The planner
//! then decides, inside the transaction that forms the location's cases
//! and queues its records:
//! - [`adopt_contacts`]: a patient without a HubSpot contact adopts the
//!   unkeyed contact whose `ivoris_patient_id` is the patient's Ivoris id
//!   (of several — the same person entered twice — the one whose name
//!   matches, with an e-mail address, lowest id). An unkeyed contact with
//!   the patient's e-mail address but no Ivoris id is adopted by the load
//!   when HubSpot reports the address taken (`load/contacts.rs`) — the
//!   same outcome without reading every contact of the portal;
//! - [`adopt_deals`]: a case without a HubSpot deal adopts the legacy deal
//!   of its opening appointment (`ivoris_appointment_id`; of several the
//!   open one, then one not lost „Duplikat“, lowest id); every other open
//!   legacy deal of an appointment the plan decided (the other members of
//!   the case, second deals of one appointment, appointments outside any
//!   case) is closed lost „Duplikat“ in its own pipeline's lost stage
//!   (closed, probability 0) — moving it into the location's pipeline
//!   would distort the previous integration's pipeline reports —, or in the
//!   location's lost stage when its pipeline has none (the audit entry
//!   says so).
//!
//! An adoption is a `hubspot_records` row without confirmed hash
//! (`ledger::adoption`): the load writes the record's first payload by
//! id, our key included, and from then on upserts land on it. A closure is
//! an outbox row of its own (key `<location>:altdeal:<HubSpot id>`), sent
//! by id the same way. Nothing is deleted; every adoption and closure is in
//! the audit log with keys and HubSpot ids only. In a dry run the same
//! decisions are rehearsed and rolled back: the report says what would be
//! adopted, closed and created.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::{Transaction, params};
use serde_json::json;

use crate::duplicates::normalise_name;
use crate::hubspot::provision::ProvisionReport;
use crate::hubspot::{ClientError, HubSpotClient, ObjectKind};
use crate::ledger::adoption::{
    CLOSURE_MARK, adopt, adopted, hubspot_id, hubspot_id_taken, mark_adopted, queued_without_record,
};
use crate::ledger::audit::os_user;
use crate::ledger::outbox::enqueue;
use crate::ledger::portal::queue_deal_merge;
use crate::ledger::{LedgerError, NewAuditEntry, OutboxKind};
use crate::plan::properties::patient_key;
use crate::plan::{PatientFacts, PatientRange, StageIds};

/// Legacy contact property: the bare Ivoris patient id.
pub const LEGACY_PATIENT_ID: &str = "ivoris_patient_id";
/// Legacy deal property: the bare Ivoris appointment id.
pub const LEGACY_APPOINTMENT_ID: &str = "ivoris_appointment_id";
/// The loss reason of closed duplicates.
const DUPLICATE: &str = "Duplikat";

/// An unkeyed contact of the portal.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LegacyContact {
    /// HubSpot id.
    id: String,
    /// `ivoris_patient_id`, if the old integration set one.
    patient_id: Option<String>,
    /// E-mail address, lower case.
    email: Option<String>,
    /// Normalised first and last name.
    name: (String, String),
}

/// An unkeyed deal of the portal that names an appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LegacyDeal {
    /// HubSpot id.
    id: String,
    /// Its `pipeline`, if set.
    pipeline: Option<String>,
    /// Whether its stage is open.
    open: bool,
    /// Whether it was closed lost „Duplikat“ already.
    duplicate: bool,
}

/// What the portal held at the start of the run, for adoption.
#[derive(Debug, Clone, Default)]
pub struct LegacyPortal {
    /// Unkeyed contacts, by HubSpot id order.
    contacts: Vec<LegacyContact>,
    /// Indexes into `contacts` by `ivoris_patient_id`.
    by_patient_id: HashMap<String, Vec<usize>>,
    /// Unkeyed deals by `ivoris_appointment_id`, by HubSpot id order.
    deals: HashMap<String, Vec<LegacyDeal>>,
    /// Per pipeline id its lost stage (from provisioning's pipeline read):
    /// where a legacy deal is closed.
    lost_stages: BTreeMap<String, String>,
    /// Whether the other open legacy deals of a case with an adopted deal
    /// are merged into it instead of closed (`sync.legacy_duplicates`).
    pub merge_duplicates: bool,
    /// List calls the read took.
    pub calls: u64,
    /// Records read.
    pub records: u64,
}

/// What adoption did (or, in a dry run, would do) for one location.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdoptionReport {
    /// Patients whose contact is an existing one.
    pub contacts_adopted: u64,
    /// Contacts HubSpot will get new.
    pub contacts_created: u64,
    /// Cases whose deal is the legacy deal of their opening appointment.
    pub deals_adopted: u64,
    /// Legacy deals closed lost „Duplikat“.
    pub deals_closed: u64,
    /// Legacy deals merged into their case's adopted deal.
    pub deals_merged: u64,
    /// Deals HubSpot will get new.
    pub deals_created: u64,
}

impl AdoptionReport {
    /// Adds another report of the same location.
    pub fn absorb(&mut self, other: AdoptionReport) {
        self.contacts_adopted += other.contacts_adopted;
        self.contacts_created += other.contacts_created;
        self.deals_adopted += other.deals_adopted;
        self.deals_closed += other.deals_closed;
        self.deals_merged += other.deals_merged;
        self.deals_created += other.deals_created;
    }
}

/// List calls for `records` records (at least one page).
fn pages(records: usize) -> u64 {
    records.div_ceil(100).max(1) as u64
}

/// Orders HubSpot ids as numbers (they are decimal strings).
fn numeric(id: &str) -> (usize, &str) {
    (id.len(), id)
}

/// Reads what the portal holds: unkeyed contacts with an
/// `ivoris_patient_id` (if `contacts`) and unkeyed deals with an
/// `ivoris_appointment_id` (if `deals`), through the list endpoints with
/// only the properties adoption needs. A type whose legacy property the
/// portal does not have (provisioning read its properties) is not listed:
/// nothing of it can be adopted by id.
pub async fn read_legacy(
    client: &HubSpotClient,
    contacts: bool,
    deals: bool,
    provisioned: &ProvisionReport,
) -> Result<LegacyPortal, ClientError> {
    let has = |kind: ObjectKind, name: &str| {
        provisioned
            .portal_properties
            .get(&kind)
            .is_none_or(|names| names.contains(name))
    };
    let contacts = contacts && has(ObjectKind::Contacts, LEGACY_PATIENT_ID);
    let deals = deals && has(ObjectKind::Deals, LEGACY_APPOINTMENT_ID);
    let mut portal = LegacyPortal::default();
    if contacts {
        let wanted = [
            LEGACY_PATIENT_ID,
            "ivoris_patient_key",
            "email",
            "firstname",
            "lastname",
        ]
        .map(String::from);
        let mut records = client.list_all(ObjectKind::Contacts, &wanted).await?;
        portal.calls += pages(records.len());
        portal.records += records.len() as u64;
        records.sort_by(|a, b| numeric(&a.id).cmp(&numeric(&b.id)));
        for record in records {
            let text = |name: &str| {
                record
                    .properties
                    .get(name)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
            };
            if text("ivoris_patient_key").is_some() {
                continue;
            }
            let contact = LegacyContact {
                patient_id: text(LEGACY_PATIENT_ID),
                email: text("email").map(|e| e.to_lowercase()),
                name: (
                    normalise_name(&text("firstname").unwrap_or_default()),
                    normalise_name(&text("lastname").unwrap_or_default()),
                ),
                id: record.id,
            };
            let index = portal.contacts.len();
            if let Some(patient) = &contact.patient_id {
                portal
                    .by_patient_id
                    .entry(patient.clone())
                    .or_default()
                    .push(index);
            }
            portal.contacts.push(contact);
        }
    }
    if deals {
        let closed = &provisioned.closed_stages;
        portal.lost_stages = provisioned.lost_stages.clone();
        let wanted = [
            LEGACY_APPOINTMENT_ID,
            "ivoris_case_key",
            "pipeline",
            "dealstage",
            "verlustgrund",
        ]
        .map(String::from);
        let mut records = client.list_all(ObjectKind::Deals, &wanted).await?;
        portal.calls += pages(records.len());
        portal.records += records.len() as u64;
        records.sort_by(|a, b| numeric(&a.id).cmp(&numeric(&b.id)));
        for record in records {
            let get = |name: &str| record.properties.get(name).map(|v| v.trim());
            if get("ivoris_case_key").is_some_and(|k| !k.is_empty()) {
                continue;
            }
            let Some(appointment) = get(LEGACY_APPOINTMENT_ID).filter(|a| !a.is_empty()) else {
                continue;
            };
            let stage = get("dealstage").unwrap_or_default();
            let open = !closed.contains(stage);
            let duplicate = !open && get("verlustgrund") == Some(DUPLICATE);
            let pipeline = get("pipeline").filter(|p| !p.is_empty()).map(String::from);
            let appointment = appointment.to_owned();
            portal
                .deals
                .entry(appointment)
                .or_default()
                .push(LegacyDeal {
                    id: record.id,
                    pipeline,
                    open,
                    duplicate,
                });
        }
    }
    Ok(portal)
}

/// An audit entry of the adoption (keys and HubSpot ids only).
fn audit_entry(action: &str, subject: &str, details: serde_json::Value) -> NewAuditEntry {
    NewAuditEntry {
        actor: os_user(),
        action: action.into(),
        subject: subject.into(),
        details,
    }
}

/// Adopts existing contacts for the location's patients without one (see
/// the module documentation), once per location; counts what the load
/// will create. Inside the planning transaction, after its rows were queued.
pub fn adopt_contacts(
    tx: &Transaction<'_>,
    location: &str,
    patients: &[PatientFacts],
    portal: &LegacyPortal,
    report: &mut AdoptionReport,
) -> Result<(), LedgerError> {
    if adopted(tx, location, OutboxKind::Contact)? {
        return Ok(());
    }
    for patient in patients {
        let key = patient_key(location, &patient.id);
        if hubspot_id(tx, OutboxKind::Contact, &key)?.is_some() {
            continue;
        }
        let name = (
            normalise_name(patient.firstname.as_deref().unwrap_or_default()),
            normalise_name(patient.lastname.as_deref().unwrap_or_default()),
        );
        let Some((contact, by)) = choose_contact(tx, portal, patient, &name)? else {
            continue;
        };
        let entry = audit_entry(
            "legacy_contact_adopted",
            &key,
            json!({ "hubspot_id": contact.id, "matched_by": by }),
        );
        if adopt(tx, OutboxKind::Contact, &key, &contact.id, &entry)? {
            report.contacts_adopted += 1;
        }
    }
    mark_adopted(tx, location, OutboxKind::Contact)?;
    report.contacts_created += queued_without_record(tx, location, OutboxKind::Contact)?;
    Ok(())
}

/// The unkeyed contact with the patient's `ivoris_patient_id` that the
/// patient adopts, and what matched, if one is free.
fn choose_contact<'p>(
    tx: &Transaction<'_>,
    portal: &'p LegacyPortal,
    patient: &PatientFacts,
    name: &(String, String),
) -> Result<Option<(&'p LegacyContact, &'static str)>, LedgerError> {
    let mut by_id: Vec<&LegacyContact> = portal
        .by_patient_id
        .get(&patient.id)
        .into_iter()
        .flatten()
        .filter_map(|i| portal.contacts.get(*i))
        .collect();
    // The name as Ivoris has it first, then one with an address, then the oldest.
    let rank = |c: &LegacyContact| (c.name != *name, c.email.is_none());
    by_id.sort_by(|a, b| (rank(a), numeric(&a.id)).cmp(&(rank(b), numeric(&b.id))));
    for contact in by_id {
        if !hubspot_id_taken(tx, OutboxKind::Contact, &contact.id)? {
            return Ok(Some((contact, "ivoris_patient_id")));
        }
    }
    Ok(None)
}

/// Adopts the legacy deal of each new case's opening appointment and
/// closes every other open legacy deal of the decided appointments lost
/// „Duplikat“, in its own pipeline where it can (see the module
/// documentation), for the patients of `range`; counts what the load will
/// create: the deals queued without a HubSpot record beyond `waiting`,
/// the count [`deals_waiting`] gave before the part's rows were queued.
/// Inside the planning transaction, after the cases were formed and their
/// rows queued. A location planned in parts adopts part by part (a
/// patient's cases are all in one part); the open-ended last part marks
/// the location's adoption done, after which this does nothing.
pub fn adopt_deals(
    tx: &Transaction<'_>,
    location: &str,
    (stages, portal): (&StageIds, &LegacyPortal),
    range: &PatientRange,
    waiting: u64,
    report: &mut AdoptionReport,
) -> Result<(), LedgerError> {
    if adopted(tx, location, OutboxKind::Deal)? {
        return Ok(());
    }
    let bounds = params![location, range.after, range.through];
    let mut kept: HashSet<&str> = HashSet::new();
    // Case → the legacy deal it adopted (a merge's survivor).
    let mut primary: HashMap<&str, &str> = HashMap::new();
    let cases: Vec<(String, String)> = {
        let mut statement = tx.prepare_cached(
            "SELECT case_key, opening_appointment_id FROM cases
             WHERE location_key = ?1 AND (?2 IS NULL OR patient_id > ?2)
               AND (?3 IS NULL OR patient_id <= ?3)
             ORDER BY case_key",
        )?;
        let rows = statement.query_map(bounds, |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (case_key, opening) in &cases {
        if hubspot_id(tx, OutboxKind::Deal, case_key)?.is_some() {
            continue;
        }
        let mut candidates: Vec<&LegacyDeal> =
            portal.deals.get(opening).into_iter().flatten().collect();
        candidates.sort_by(|a, b| {
            (!a.open, a.duplicate, numeric(&a.id)).cmp(&(!b.open, b.duplicate, numeric(&b.id)))
        });
        for deal in candidates {
            if hubspot_id_taken(tx, OutboxKind::Deal, &deal.id)? {
                continue;
            }
            let entry = audit_entry(
                "legacy_deal_adopted",
                case_key,
                json!({ "hubspot_id": deal.id, "appointment_key": format!("{location}:{opening}") }),
            );
            if adopt(tx, OutboxKind::Deal, case_key, &deal.id, &entry)? {
                report.deals_adopted += 1;
                kept.insert(deal.id.as_str());
                primary.insert(case_key.as_str(), deal.id.as_str());
            }
            break;
        }
    }
    let members: Vec<(String, Option<String>)> = {
        let mut statement = tx.prepare_cached(
            "SELECT appointment_id, case_key FROM case_members
             WHERE location_key = ?1 AND (?2 IS NULL OR patient_id > ?2)
               AND (?3 IS NULL OR patient_id <= ?3)
             ORDER BY appointment_id",
        )?;
        let rows = statement.query_map(bounds, |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (appointment, case_key) in &members {
        for deal in portal.deals.get(appointment).into_iter().flatten() {
            if !deal.open || kept.contains(deal.id.as_str()) {
                continue;
            }
            let survivor = case_key
                .as_deref()
                .and_then(|case| primary.get(case).map(|id| (case, *id)));
            if portal.merge_duplicates
                && let Some((case, survivor)) = survivor
            {
                merge(tx, location, appointment, case, deal, survivor, report)?;
                continue;
            }
            close(
                tx,
                location,
                appointment,
                case_key.as_deref(),
                deal,
                &closing(deal, portal, stages),
                report,
            )?;
        }
    }
    if range.open_end() {
        mark_adopted(tx, location, OutboxKind::Deal)?;
    }
    report.deals_created +=
        queued_without_record(tx, location, OutboxKind::Deal)?.saturating_sub(waiting);
    Ok(())
}

/// Deals of `location` queued without a HubSpot record: taken before a
/// part's rows are queued, so [`adopt_deals`] counts only what that part
/// will create (rows of earlier parts may still wait for the load).
pub fn deals_waiting(tx: &Transaction<'_>, location: &str) -> Result<u64, LedgerError> {
    queued_without_record(tx, location, OutboxKind::Deal)
}

/// Reserves an open legacy deal for a closure or a merge: its HubSpot id
/// is recorded under the closure key (so nothing else adopts it) with the
/// audit entry `action` (`details` plus the deal's id and appointment).
/// Returns the key, or `None` when the deal was taken already.
fn reserve(
    tx: &Transaction<'_>,
    location: &str,
    appointment: &str,
    deal: &LegacyDeal,
    action: &str,
    mut details: serde_json::Value,
) -> Result<Option<String>, LedgerError> {
    if hubspot_id_taken(tx, OutboxKind::Deal, &deal.id)? {
        return Ok(None);
    }
    let key = closure_key(location, &deal.id);
    details["hubspot_id"] = json!(deal.id);
    details["appointment_key"] = json!(format!("{location}:{appointment}"));
    let entry = audit_entry(action, &key, details);
    Ok(adopt(tx, OutboxKind::Deal, &key, &deal.id, &entry)?.then_some(key))
}

/// Where a legacy deal is closed lost: the lost stage of its own pipeline
/// when that has one, else the location's pipeline and lost stage.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Closing {
    /// `pipeline` to write.
    pipeline: String,
    /// `dealstage` to write.
    stage: String,
    /// Whether the deal leaves its own pipeline (it has none, or its
    /// pipeline has no lost stage).
    moved: bool,
}

/// The closing stage of `deal` (see [`Closing`]).
fn closing(deal: &LegacyDeal, portal: &LegacyPortal, stages: &StageIds) -> Closing {
    let own = deal
        .pipeline
        .as_ref()
        .and_then(|pipeline| Some((pipeline, portal.lost_stages.get(pipeline)?)));
    match own {
        Some((pipeline, stage)) => Closing {
            pipeline: pipeline.clone(),
            stage: stage.clone(),
            moved: false,
        },
        None => Closing {
            pipeline: stages.pipeline.clone(),
            stage: stages.lost.clone(),
            moved: true,
        },
    }
}

/// Queues the closure of an open legacy deal: lost „Duplikat“ in its own
/// pipeline's lost stage, or the location's ([`closing`]), sent by id;
/// audited with where it was closed.
fn close(
    tx: &Transaction<'_>,
    location: &str,
    appointment: &str,
    case_key: Option<&str>,
    deal: &LegacyDeal,
    closing: &Closing,
    report: &mut AdoptionReport,
) -> Result<(), LedgerError> {
    let mut details = json!({
        "case_key": case_key,
        "reason_de": "Altdeal eines Termins, dessen Fall einen eigenen Deal hat: verloren „Duplikat“",
        "reason_en": "legacy deal of an appointment whose case has its own deal: lost \"Duplikat\"",
        "pipeline": closing.pipeline,
        "dealstage": closing.stage,
    });
    if closing.moved {
        details["moved_de"] = json!(
            "Die Pipeline des Altdeals hat keine Verloren-Phase: in die Verloren-Phase der Pipeline des Standorts verschoben"
        );
        details["moved_en"] = json!(
            "the legacy deal's pipeline has no lost stage: moved into the lost stage of the location's pipeline"
        );
    }
    let Some(key) = reserve(
        tx,
        location,
        appointment,
        deal,
        "legacy_deal_closed",
        details,
    )?
    else {
        return Ok(());
    };
    let payload = json!({
        "pipeline": closing.pipeline,
        "dealstage": closing.stage,
        "verlustgrund": DUPLICATE,
    });
    let hash = blake3::hash(payload.to_string().as_bytes()).to_hex();
    enqueue(
        tx,
        OutboxKind::Deal,
        &key,
        Some(location),
        &payload,
        hash.as_str(),
    )?;
    report.deals_closed += 1;
    Ok(())
}

/// Queues the merge of an open legacy deal into the legacy deal its case
/// adopted (`sync.legacy_duplicates = "merge"`): sent first by the load,
/// never twice (`load/merges.rs`); audited. The merged deal is reserved
/// like a closed one, so nothing else adopts it.
fn merge(
    tx: &Transaction<'_>,
    location: &str,
    appointment: &str,
    case_key: &str,
    deal: &LegacyDeal,
    survivor: &str,
    report: &mut AdoptionReport,
) -> Result<(), LedgerError> {
    let details = json!({
        "into": survivor,
        "case_key": case_key,
        "reason_de": "Altdeal eines Termins, dessen Fall einen übernommenen Deal hat: wird in ihn zusammengeführt",
        "reason_en": "legacy deal of an appointment whose case adopted a deal: merged into it",
    });
    if reserve(
        tx,
        location,
        appointment,
        deal,
        "legacy_deal_merge_queued",
        details,
    )?
    .is_none()
    {
        return Ok(());
    }
    queue_deal_merge(tx, survivor, &deal.id, case_key, location)?;
    report.deals_merged += 1;
    Ok(())
}

/// Outbox key of the closure of a legacy deal.
pub fn closure_key(location: &str, hubspot_id: &str) -> String {
    format!("{location}{CLOSURE_MARK}{hubspot_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages() -> StageIds {
        StageIds {
            pipeline: "ours".into(),
            booked: "b".into(),
            consulted: "c".into(),
            in_treatment: "t".into(),
            won: "w".into(),
            lost: "ours-lost".into(),
        }
    }

    fn deal(pipeline: Option<&str>) -> LegacyDeal {
        LegacyDeal {
            id: "7".into(),
            pipeline: pipeline.map(String::from),
            open: true,
            duplicate: false,
        }
    }

    #[test]
    fn a_legacy_deal_is_closed_in_its_own_pipeline_where_that_has_a_lost_stage() {
        let portal = LegacyPortal {
            lost_stages: [("old".to_owned(), "old-lost".to_owned())].into(),
            ..LegacyPortal::default()
        };
        let closing_of = |pipeline| closing(&deal(pipeline), &portal, &stages());
        assert_eq!(
            closing_of(Some("old")),
            Closing {
                pipeline: "old".into(),
                stage: "old-lost".into(),
                moved: false
            }
        );
        for elsewhere in [Some("without-lost-stage"), None] {
            assert_eq!(
                closing_of(elsewhere),
                Closing {
                    pipeline: "ours".into(),
                    stage: "ours-lost".into(),
                    moved: true
                }
            );
        }
    }
}
