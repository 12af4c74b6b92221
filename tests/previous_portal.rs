//! The first sync into the portal the previous integration left: half of
//! the patients are already contacts there, keyed by nothing but their
//! e-mail address. Whether HubSpot answers a batch per input (207) or
//! refuses it whole over the first contact in the way, the sync must end
//! with one contact per patient — the old ones adopted, none duplicated —
//! and spend few calls on it. What was seeded is recomputed here from the
//! synthetic world by the rule `PortalSeed::PreviousContacts` documents.

mod engine_support;

use std::collections::{BTreeMap, BTreeSet};

use engine_support::{bed, options, prop, run};
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::sandbox::data::World;
use ivoris_hubspot_sync::sandbox::hubspot::{Counters, HubSpotSim, RecordSnapshot};
use ivoris_hubspot_sync::sandbox::{BatchFailures, PortalSeed, SandboxOptions, Size};

/// A contact the previous integration left, as the rule says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seeded {
    email: String,
    firstname: String,
    lastname: String,
}

/// Per location, in patient order, every second patient with an e-mail
/// address; an address taken by an earlier one is skipped.
fn expected_seed(world: &World) -> Vec<Seeded> {
    let mut taken = BTreeSet::new();
    let mut seeded = Vec::new();
    for location in &world.locations {
        let with_email: Vec<_> = location
            .patients
            .iter()
            .filter(|p| p.email.as_deref().is_some_and(|e| !e.trim().is_empty()))
            .collect();
        for patient in with_email.iter().step_by(2) {
            let email = patient.email.as_deref().unwrap_or_default().trim();
            if taken.insert(email.to_lowercase()) {
                let text = |v: &Option<String>| v.as_deref().unwrap_or_default().trim().to_owned();
                seeded.push(Seeded {
                    email: email.to_owned(),
                    firstname: text(&patient.firstname),
                    lastname: text(&patient.lastname),
                });
            }
        }
    }
    seeded
}

/// Every patient key of the world, with the patient's e-mail address (lower case).
fn patients(world: &World) -> BTreeMap<String, Option<String>> {
    world
        .locations
        .iter()
        .flat_map(|l| {
            l.patients.iter().map(|p| {
                let email = p
                    .email
                    .as_deref()
                    .map(|e| e.trim().to_lowercase())
                    .filter(|e| !e.is_empty());
                (format!("{}:{}", l.key, p.id), email)
            })
        })
        .collect()
}

fn live(sim: &HubSpotSim) -> Vec<RecordSnapshot> {
    sim.records("contacts")
        .expect("records")
        .into_iter()
        .filter(|r| !r.archived)
        .collect()
}

/// The patient keys a contact stands for: its own and the linked ones.
fn keys_of(contact: &RecordSnapshot) -> BTreeSet<String> {
    prop(contact, "ivoris_patient_keys")
        .split(';')
        .chain([prop(contact, "ivoris_patient_key")])
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect()
}

/// Calls to the contacts' batch endpoints (upsert, read, update), by template.
fn contact_calls(counters: &Counters) -> BTreeMap<String, u64> {
    counters
        .requests
        .iter()
        .filter(|(template, _)| {
            template.starts_with("POST /crm/objects/") && template.contains("/contacts/batch/")
        })
        .map(|(template, count)| (template.clone(), *count))
        .collect()
}

/// Calls that set the portal up (properties, pipelines, the daily usage,
/// the appointments' enablement): the same for any number of records.
fn setup_calls(counters: &Counters) -> u64 {
    counters
        .requests
        .iter()
        .filter(|(template, _)| {
            [
                "/crm/properties/",
                "/crm/pipelines/",
                "/account-info/",
                "/crm/object-library/",
            ]
            .iter()
            .any(|family| template.contains(family))
        })
        .map(|(_, count)| count)
        .sum()
}

/// The fewest calls a first sync can make: one per 100 records of each
/// object kind and of each association kind, and two per 100 e-mail
/// conflicts (the update of the contacts in the way, the upsert of the
/// patients concerned).
fn minimum_calls(sim: &HubSpotSim, patients: usize, conflicts: u64) -> u64 {
    let hundreds = |n: usize| n.div_ceil(100) as u64;
    let records = |object: &str| -> Vec<RecordSnapshot> {
        sim.records(object)
            .expect("records")
            .into_iter()
            .filter(|r| !r.archived)
            .collect()
    };
    let linked = |records: &[RecordSnapshot], to: &str| -> usize {
        records
            .iter()
            .map(|r| r.associations.get(to).map_or(0, Vec::len))
            .sum()
    };
    let deals = records("deals");
    let appointments = records("appointments");
    hundreds(patients)
        + hundreds(deals.len())
        + hundreds(appointments.len())
        + hundreds(linked(&deals, "contacts"))
        + hundreds(linked(&appointments, "contacts"))
        + hundreds(linked(&appointments, "deals"))
        + 2 * hundreds(conflicts as usize)
}

/// What one first sync came to.
struct FirstSync {
    /// Patients of the world.
    patients: usize,
    /// Contacts the previous integration left.
    seeded: usize,
    /// Patients whose address another contact had (adopted, linked, withheld).
    conflicts: u64,
    /// Contact batch calls by template.
    contact_calls: BTreeMap<String, u64>,
    /// Batch reads of contacts by e-mail address.
    email_reads: u64,
    /// List pages and searches of contacts (the portal's survey).
    survey_calls: u64,
    /// Every call but the portal's setup.
    load_calls: u64,
    /// The calls the records and conflicts need at least.
    minimum: u64,
}

impl FirstSync {
    fn contact_calls(&self) -> u64 {
        self.contact_calls.values().sum()
    }
}

/// A first sync of the world of `size` into the portal the previous
/// integration left, checked for one contact per patient.
async fn first_sync(mode: BatchFailures, size: Size) -> FirstSync {
    let options = SandboxOptions {
        portal: PortalSeed::PreviousContacts,
        batch_failures: mode,
        size,
        ..options(61)
    };
    let world = World::generate(options.seed, options.size);
    let bed = bed(options).await;
    let hubspot = &bed.sandbox.hubspot;

    // The portal holds exactly what the rule says, in that order.
    let expected = expected_seed(&world);
    let before = live(hubspot);
    let found: Vec<Seeded> = before
        .iter()
        .map(|c| Seeded {
            email: prop(c, "email").to_owned(),
            firstname: prop(c, "firstname").to_owned(),
            lastname: prop(c, "lastname").to_owned(),
        })
        .collect();
    assert_eq!(found, expected, "the seeded contacts");
    assert!(
        before.iter().all(|c| keys_of(c).is_empty()),
        "seeded without keys"
    );
    let patients = patients(&world);
    assert!(
        expected.len() * 3 > patients.len(),
        "a good part of the patients is already in the portal"
    );

    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    assert_eq!(summary.dead_letters, 0, "no dead letter");
    let queue = Ledger::open(&bed.env.ledger_path)
        .expect("ledger")
        .outbox_counts()
        .expect("counts");
    assert_eq!(
        (queue.pending(), queue.dead()),
        (0, 0),
        "nothing left queued"
    );
    assert_one_contact_per_patient(&before, &live(hubspot), &patients);
    assert_eq!(
        summary.load.adopted,
        expected.len() as u64,
        "every old contact adopted once: {:?}",
        summary.load
    );

    let counters = hubspot.counters();
    let conflicts = summary.load.adopted + summary.load.linked + summary.load.email_withheld;
    let all: u64 = counters.requests.values().sum();
    FirstSync {
        patients: patients.len(),
        seeded: expected.len(),
        conflicts,
        contact_calls: contact_calls(&counters),
        email_reads: counters
            .batch_reads_by
            .get("contacts by email")
            .copied()
            .unwrap_or(0),
        survey_calls: counters
            .requests
            .iter()
            .filter(|(template, _)| {
                template.starts_with("GET /crm/objects/") && template.ends_with("/contacts")
                    || template.starts_with("POST /crm/objects/")
                        && template.ends_with("/contacts/search")
            })
            .map(|(_, count)| count)
            .sum(),
        load_calls: all - setup_calls(&counters),
        minimum: minimum_calls(hubspot, patients.len(), conflicts),
    }
}

/// Every patient key on exactly one contact, every contact standing for
/// a patient, and the old contacts adopted — each still there, carrying
/// the key of a patient with its address — not duplicated.
fn assert_one_contact_per_patient(
    before: &[RecordSnapshot],
    after: &[RecordSnapshot],
    patients: &BTreeMap<String, Option<String>>,
) {
    let mut holders: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for contact in after {
        let keys = keys_of(contact);
        assert!(
            !keys.is_empty(),
            "contact {} has no patient key",
            contact.id
        );
        for key in keys {
            holders.entry(key).or_default().push(&contact.id);
        }
    }
    for key in patients.keys() {
        assert_eq!(
            holders.get(key).map(Vec::len),
            Some(1),
            "{key} is on exactly one contact"
        );
    }
    assert_eq!(holders.len(), patients.len(), "no key but the patients'");
    for old in before {
        let now = after
            .iter()
            .find(|c| c.id == old.id)
            .expect("the seeded contact is kept");
        let address = prop(old, "email").to_lowercase();
        assert_eq!(prop(now, "email").to_lowercase(), address);
        let key = prop(now, "ivoris_patient_key");
        assert_eq!(
            patients.get(key).cloned().flatten().as_deref(),
            Some(address.as_str()),
            "contact {} is adopted by a patient with its address",
            old.id
        );
    }
}

/// The portal refuses every batch with a contact in the way whole, naming
/// only the first. Without reading the batch's addresses, every batch of
/// the first sync would be split into single calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_call_refusals_cost_at_most_three_calls_per_hundred_contacts() {
    let sync = first_sync(BatchFailures::WholeCall, Size::Medium).await;
    eprintln!(
        "whole-call: {} patients, {} seeded, {} conflicts, contact calls {:?}, load calls {}, minimum {}",
        sync.patients,
        sync.seeded,
        sync.conflicts,
        sync.contact_calls,
        sync.load_calls,
        sync.minimum
    );
    let hundreds = sync.patients.div_ceil(100) as u64;
    assert!(sync.email_reads >= 1, "the addresses were read");
    // The portal holds fewer contacts than there are patients to check:
    // listing it once (one count, a page per 100) is cheaper than reading
    // every patient's address, and only the refused batch is read.
    let pages = sync.seeded.div_ceil(100) as u64;
    assert!(
        sync.survey_calls <= pages + 1 && sync.email_reads <= 2,
        "the portal listed once ({} calls for {} contacts), {} address reads",
        sync.survey_calls,
        sync.seeded,
        sync.email_reads
    );
    assert!(
        sync.contact_calls() <= 3 * hundreds,
        "{} contact calls for {} patients: {:?}",
        sync.contact_calls(),
        sync.patients,
        sync.contact_calls
    );
    assert!(
        sync.load_calls * 100 <= sync.minimum * 105,
        "{} calls, the minimum is {}",
        sync.load_calls,
        sync.minimum
    );
}

/// The portal answers per input (207): the contacts in the way are named
/// by HubSpot, no address is read, and nothing costs more than before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_input_answers_need_no_read_by_address() {
    let sync = first_sync(BatchFailures::MultiStatus, Size::Small).await;
    eprintln!(
        "multi-status: {} patients, {} seeded, {} conflicts, contact calls {:?}, load calls {}, minimum {}",
        sync.patients,
        sync.seeded,
        sync.conflicts,
        sync.contact_calls,
        sync.load_calls,
        sync.minimum
    );
    assert_eq!(sync.email_reads, 0, "no address read without a refusal");
    // One upsert per 100 patients, and per 100 conflicts one read of the
    // contacts HubSpot named, one update and one upsert — plus a second
    // round for conflicts with contacts the first one wrote.
    let hundreds = |n: u64| n.div_ceil(100);
    assert!(
        sync.contact_calls() <= hundreds(sync.patients as u64) + 3 * hundreds(sync.conflicts) + 3,
        "{} contact calls for {} patients: {:?}",
        sync.contact_calls(),
        sync.patients,
        sync.contact_calls
    );
}
