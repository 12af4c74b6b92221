//! The first sync over the portal the previous integration left
//! (`PortalSeed::Legacy`, DESIGN.md §6 "Switching over"): contacts keyed by
//! `ivoris_patient_id`, one deal per appointment keyed by
//! `ivoris_appointment_id`, duplicates, records made by hand.
//!
//! What the portal held is taken from the seed's own description
//! (`sandbox::hubspot::seed::records`): which contact and deal stands for
//! which patient and appointment. The checks compare HubSpot's state after
//! the sync with that description — never with what the product reports.
//! The cases are the ledger's (how cases form is tested elsewhere).

mod engine_support;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use engine_support::{bed, dry_run, options, prop, run, run_binary, sync_command};
use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::run::{SyncRequest, sync};
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::sandbox::data::World;
use ivoris_hubspot_sync::sandbox::hubspot::seed::{
    self, ContactOrigin, DealOrigin, OLD_PIPELINE, SeedRecords,
};
use ivoris_hubspot_sync::sandbox::hubspot::{FaultSettings, HubSpotSim, RecordSnapshot};
use ivoris_hubspot_sync::sandbox::{BatchFailures, PortalSeed, SandboxOptions, Size};

fn live(sim: &HubSpotSim, object: &str) -> Vec<RecordSnapshot> {
    let mut records: Vec<RecordSnapshot> = sim
        .records(object)
        .expect("records")
        .into_iter()
        .filter(|r| !r.archived)
        .collect();
    records.sort_by_key(|r| r.id.parse::<u64>().unwrap_or(u64::MAX));
    records
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

/// HubSpot ids of the seeded records: they were created in the seed's
/// order, so the n-th contact (deal) by id is the seed's n-th. Checked
/// against the seeded properties.
struct Seeded {
    description: SeedRecords,
    contact_ids: Vec<String>,
    deal_ids: Vec<String>,
}

fn seeded(sim: &HubSpotSim, world: &World) -> Seeded {
    let description = seed::records(PortalSeed::Legacy, world);
    let contacts = live(sim, "contacts");
    let deals = live(sim, "deals");
    assert_eq!(
        contacts.len(),
        description.contacts.len(),
        "seeded contacts"
    );
    assert_eq!(deals.len(), description.deals.len(), "seeded deals");
    for (record, properties) in contacts.iter().zip(&description.contacts) {
        for (name, value) in properties {
            assert_eq!(prop(record, name), value, "contact {} {name}", record.id);
        }
    }
    let closed = sim.closed_stages();
    for (record, deal) in deals.iter().zip(&description.deals) {
        for (name, value) in &deal.properties {
            assert_eq!(prop(record, name), value, "deal {} {name}", record.id);
        }
        assert_eq!(!closed.contains(prop(record, "dealstage")), deal.open);
    }
    Seeded {
        contact_ids: contacts.iter().map(|c| c.id.clone()).collect(),
        deal_ids: deals.iter().map(|d| d.id.clone()).collect(),
        description,
    }
}

fn legacy_options() -> SandboxOptions {
    SandboxOptions {
        portal: PortalSeed::Legacy,
        size: Size::Small,
        ..options(71)
    }
}

#[test]
fn the_legacy_seed_describes_the_portal_it_makes() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let options = legacy_options();
        let world = World::generate(options.seed, options.size);
        let bed = bed(options).await;
        let sim = &bed.sandbox.hubspot;
        let seeded = seeded(sim, &world);
        // Every deal is associated with the contact the seed names.
        for (record, deal) in live(sim, "deals").iter().zip(&seeded.description.deals) {
            let contact = deal.contact.and_then(|c| seeded.contact_ids.get(c));
            assert_eq!(
                record
                    .associations
                    .get("contacts")
                    .cloned()
                    .unwrap_or_default(),
                contact.cloned().into_iter().collect::<Vec<_>>(),
                "deal {}",
                record.id
            );
            assert_ne!(prop(record, "pipeline"), "", "in the old pipeline");
        }
        assert!(
            !live(sim, "deals")
                .iter()
                .any(|d| !prop(d, "ivoris_case_key").is_empty()),
            "nothing keyed by us"
        );
        bed.sandbox.shutdown().await;
    });
}

/// The whole switch-over: dry run, first sync, re-sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_sync_adopts_the_previous_integrations_records() {
    switch_over(legacy_options()).await;
}

/// 2,000 patients a location: their cases are planned in parts while the
/// billing lines are swept, and adopt, close and count exactly as the one
/// plan of the dry run said. Also the call budget: at most 1.1 ×
/// (the minimum of an empty portal + one list call per 100 legacy
/// records). The minimum is one call per 100 records of each kind and
/// association kind the sync owns; the legacy records are the seed's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_over_planned_in_parts_keeps_every_rule_and_the_call_budget() {
    let options = SandboxOptions {
        size: Size::Medium,
        ..legacy_options()
    };
    let world = World::generate(options.seed, options.size);
    let seed = seed::records(PortalSeed::Legacy, &world);
    let legacy = (seed.contacts.len() + seed.deals.len()) as u64;
    let (sim, calls) = switch_over(options).await;

    let hundreds = |n: usize| n.div_ceil(100) as u64;
    let deals: Vec<RecordSnapshot> = live(&sim, "deals")
        .into_iter()
        .filter(|d| !prop(d, "ivoris_case_key").is_empty())
        .collect();
    let appointments = live(&sim, "appointments");
    let patients: usize = world.locations.iter().map(|l| l.patients.len()).sum();
    let with_deal = appointments
        .iter()
        .filter(|a| a.associations.get("deals").is_some_and(|d| !d.is_empty()))
        .count();
    let minimum = hundreds(patients)
        + hundreds(deals.len())
        + hundreds(appointments.len())
        + hundreds(deals.len())
        + hundreds(appointments.len())
        + hundreds(with_deal);
    let budget = (minimum + legacy.div_ceil(100)) * 11 / 10;
    eprintln!(
        "legacy portal: {legacy} legacy records, {} deals, {} appointments, {calls} calls, minimum {minimum} + {} list calls, budget {budget}",
        deals.len(),
        appointments.len(),
        legacy.div_ceil(100)
    );
    assert!(calls <= budget, "{calls} calls, budget {budget}");
}

/// Dry run, first sync and re-sync over the legacy portal of `options`,
/// each checked against the seed. Returns the portal and the number of
/// calls the first sync made besides setting the portal up.
async fn switch_over(options: SandboxOptions) -> (std::sync::Arc<HubSpotSim>, u64) {
    let world = World::generate(options.seed, options.size);
    let bed = bed(options).await;
    let sim = &bed.sandbox.hubspot;
    let seeded = seeded(sim, &world);
    let seed = &seeded.description;
    let before_contacts = live(sim, "contacts");
    let before_deals = live(sim, "deals");

    // Dry run: nothing written to HubSpot or to the ledger's sync state.
    let dry = dry_run(&bed.env).await;
    assert_eq!(sim.counters().write_calls, 0, "the dry run wrote nothing");
    assert_eq!(live(sim, "contacts"), before_contacts);
    assert_eq!(live(sim, "deals"), before_deals);
    {
        let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
        for location in &world.locations {
            assert_eq!(
                ledger
                    .adoption_pending(&location.key)
                    .expect("pending")
                    .len(),
                2
            );
        }
        assert_eq!(ledger.outbox_counts().expect("counts").pending(), 0);
    }
    for location in &world.locations {
        let adoption = dry
            .locations
            .iter()
            .find(|l| l.key == location.key)
            .and_then(|l| l.plan.as_ref())
            .map(|p| p.adoption)
            .expect("planned");
        let with_contact = seed
            .contact_origins
            .iter()
            .filter(|o| o.is_patient_contact(Some(&location.key)))
            .count() as u64;
        assert_eq!(adoption.contacts_adopted, with_contact, "{}", location.key);
        assert!(adoption.deals_adopted > 0 && adoption.deals_closed > 0);
        assert!(
            adoption.contacts_created > 0,
            "patients after the switch-over"
        );
    }

    let calls_before = sim.counters().requests.values().sum::<u64>() - setup_calls(sim);
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    let calls = sim.counters().requests.values().sum::<u64>() - setup_calls(sim) - calls_before;
    for (dry, real) in dry.locations.iter().zip(&summary.locations) {
        let adoption = |l: &ivoris_hubspot_sync::engine::run::LocationSummary| {
            l.plan.as_ref().map(|p| p.adoption)
        };
        assert_eq!(
            adoption(dry),
            adoption(real),
            "the dry run said what happened"
        );
    }
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    // Every case's deal was either adopted or created.
    for location in &summary.locations {
        let adoption = location.plan.as_ref().map(|p| p.adoption).expect("planned");
        let cases = ledger.cases(&location.key).expect("cases").len() as u64;
        assert_eq!(
            adoption.deals_adopted + adoption.deals_created,
            cases,
            "{}: adopted and created deals",
            location.key
        );
    }
    // The overview's "Deals (HubSpot)" are the cases' deals; the closed
    // legacy deals are not counted among them.
    let confirmed = ledger.confirmed_counts().expect("counts");
    for location in &world.locations {
        let deals = confirmed
            .iter()
            .find(|c| c.location_key == location.key)
            .map_or(0, |c| c.deals);
        let cases = ledger.cases(&location.key).expect("cases").len() as u64;
        assert_eq!(deals, cases, "{}: one deal per case", location.key);
    }
    check_contacts(sim, &world, &seeded, &before_contacts);
    check_deals(sim, &world, &seeded, &ledger, &before_deals);
    check_audit(&ledger, &world, seed);

    // A re-sync writes nothing.
    let writes = sim.counters().write_calls;
    let again = run(&bed.env).await;
    assert_eq!(again.outcome, RunOutcome::Success, "{:?}", again.message);
    assert_eq!(again.counts.written, 0);
    assert_eq!(sim.counters().write_calls, writes, "no write call");
    let portal = bed.sandbox.hubspot.clone();
    bed.sandbox.shutdown().await;
    (portal, calls)
}

/// Every patient key on exactly one contact; a patient the old
/// integration knew is on the contact the seed made for it (not the typo
/// twin); nothing deleted.
fn check_contacts(sim: &HubSpotSim, world: &World, seeded: &Seeded, before: &[RecordSnapshot]) {
    let after = live(sim, "contacts");
    let mut holders: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for contact in &after {
        for key in keys_of(contact) {
            holders.entry(key).or_default().push(&contact.id);
        }
    }
    for old in before {
        assert!(
            after.iter().any(|c| c.id == old.id),
            "contact {} kept",
            old.id
        );
    }
    let mut expected: HashMap<String, &str> = HashMap::new();
    for (origin, id) in seeded
        .description
        .contact_origins
        .iter()
        .zip(&seeded.contact_ids)
    {
        if let ContactOrigin::Patient {
            location,
            patient_id,
            typo_duplicate: false,
        } = origin
        {
            expected.insert(format!("{location}:{patient_id}"), id);
        }
    }
    for location in &world.locations {
        for patient in &location.patients {
            let key = format!("{}:{}", location.key, patient.id);
            let holder = holders.get(&key).cloned().unwrap_or_default();
            assert_eq!(holder.len(), 1, "{key} on exactly one contact");
            if let Some(id) = expected.get(&key) {
                assert_eq!(holder[0], *id, "{key} adopted its old contact");
            }
        }
    }
    // The hand-made contacts and the typo twins carry no key of ours.
    for (origin, id) in seeded
        .description
        .contact_origins
        .iter()
        .zip(&seeded.contact_ids)
    {
        let untouched = matches!(
            origin,
            ContactOrigin::ByHand { .. }
                | ContactOrigin::Patient {
                    typo_duplicate: true,
                    ..
                }
        );
        if untouched {
            let contact = after.iter().find(|c| c.id == *id).expect("kept");
            assert!(keys_of(contact).is_empty(), "contact {id} not adopted");
        }
    }
}

/// Every case exactly one deal — the seed's deal of its opening
/// appointment where there is one; per patient and location at most one
/// open deal; no legacy deal of a decided appointment left open, the
/// closed ones in the old pipeline's lost stage; the hand-made deals
/// untouched; nothing deleted.
fn check_deals(
    sim: &HubSpotSim,
    world: &World,
    seeded: &Seeded,
    ledger: &Ledger,
    before: &[RecordSnapshot],
) {
    let after = live(sim, "deals");
    let closed = sim.closed_stages();
    let open = |deal: &RecordSnapshot| !closed.contains(prop(deal, "dealstage"));
    let by_id: HashMap<&str, &RecordSnapshot> = after.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut by_case: HashMap<&str, Vec<&RecordSnapshot>> = HashMap::new();
    for deal in &after {
        by_case
            .entry(prop(deal, "ivoris_case_key"))
            .or_default()
            .push(deal);
    }
    for old in before {
        assert!(by_id.contains_key(old.id.as_str()), "deal {} kept", old.id);
    }
    // The seed's deals by appointment, with their HubSpot ids.
    let mut of_appointment: HashMap<&str, Vec<(&str, DealOrigin)>> = HashMap::new();
    for (deal, id) in seeded.description.deals.iter().zip(&seeded.deal_ids) {
        if let Some(appointment) = &deal.appointment_id {
            of_appointment
                .entry(appointment)
                .or_default()
                .push((id, deal.origin));
        }
    }
    let mut case_deals: HashMap<String, &str> = HashMap::new();
    for location in &world.locations {
        let mut open_per_patient: HashMap<String, u64> = HashMap::new();
        for case in ledger.cases(&location.key).expect("cases") {
            let deals = by_case
                .get(case.case_key.as_str())
                .map_or(&[][..], Vec::as_slice);
            assert_eq!(deals.len(), 1, "{} has exactly one deal", case.case_key);
            let deal = deals[0];
            if let Some(old) = of_appointment.get(case.opening_appointment_id.as_str()) {
                let original = old
                    .iter()
                    .find(|(_, origin)| *origin == DealOrigin::Appointment)
                    .map(|(id, _)| *id);
                assert_eq!(
                    Some(deal.id.as_str()),
                    original,
                    "{} adopted",
                    case.case_key
                );
            }
            assert_ne!(prop(deal, "pipeline"), "", "pipeline set");
            case_deals.insert(case.case_key.clone(), &deal.id);
            if open(deal) {
                *open_per_patient.entry(case.patient_id.clone()).or_default() += 1;
            }
        }
        // Legacy deals of decided appointments: adopted or closed.
        let adopted: HashSet<&str> = case_deals.values().copied().collect();
        for member in ledger.case_members(&location.key).expect("members") {
            for (id, _) in of_appointment
                .get(member.appointment_id.as_str())
                .into_iter()
                .flatten()
            {
                if adopted.contains(id) {
                    continue;
                }
                let deal = by_id.get(id).expect("kept");
                assert!(!open(deal), "legacy deal {id} not left open");
                assert!(prop(deal, "ivoris_case_key").is_empty());
                if member.case_key.is_some() {
                    assert!(
                        matches!(prop(deal, "verlustgrund"), "Duplikat" | "Termin abgesagt"),
                        "deal {id}: {}",
                        prop(deal, "verlustgrund")
                    );
                }
            }
        }
        // Open legacy deals of the location's patients that no decision
        // covered would be a second open deal too.
        for (deal, id) in seeded.description.deals.iter().zip(&seeded.deal_ids) {
            let Some(patient) = deal
                .patient_id
                .as_ref()
                .filter(|_| deal.location == location.key)
            else {
                continue;
            };
            let record = by_id.get(id.as_str()).expect("kept");
            if !adopted.contains(id.as_str()) && open(record) {
                *open_per_patient.entry(patient.clone()).or_default() += 1;
            }
        }
        for (patient, count) in open_per_patient {
            assert!(
                count <= 1,
                "{}:{patient} has {count} open deals",
                location.key
            );
        }
    }
    // Hand-made deals are as they were.
    let before_by_id: HashMap<&str, &RecordSnapshot> =
        before.iter().map(|d| (d.id.as_str(), d)).collect();
    for (deal, id) in seeded.description.deals.iter().zip(&seeded.deal_ids) {
        if deal.origin == DealOrigin::ByHand {
            let old = before_by_id.get(id.as_str()).expect("seeded");
            let now = by_id.get(id.as_str()).expect("kept");
            assert_eq!(
                old.properties, now.properties,
                "hand-made deal {id} untouched"
            );
        }
    }
    // The old pipeline is left only by adopted deals: a legacy deal the
    // switch-over closed stays in its own pipeline, in that pipeline's lost
    // stage (as the seed made it: its last stage, „Verloren“).
    assert!(
        seeded.description.old_pipeline,
        "{OLD_PIPELINE} seeded for the deals above"
    );
    let (old_pipeline, old_lost) = old_lost_stage(seeded, before);
    let adopted: HashSet<&str> = case_deals.values().copied().collect();
    let mut closed_here = 0;
    for old in before {
        let now = by_id.get(old.id.as_str()).expect("kept");
        if adopted.contains(old.id.as_str()) || !open(old) || open(now) {
            continue;
        }
        closed_here += 1;
        assert_eq!(
            (prop(now, "pipeline"), prop(now, "dealstage")),
            (old_pipeline, old_lost),
            "legacy deal {} closed in its own pipeline",
            old.id
        );
        assert_eq!(prop(now, "verlustgrund"), "Duplikat", "deal {}", old.id);
    }
    assert!(closed_here > 0, "the switch-over closed legacy deals");
}

/// The old pipeline's id and the id of its lost stage, read off a seeded
/// deal the seed put into that stage.
fn old_lost_stage<'a>(seeded: &Seeded, before: &'a [RecordSnapshot]) -> (&'a str, &'a str) {
    let lost_label = seed::OLD_STAGES[seed::OLD_STAGES.len() - 1];
    seeded
        .description
        .deals
        .iter()
        .zip(&seeded.deal_ids)
        .filter(|(deal, _)| deal.stage == lost_label)
        .find_map(|(_, id)| before.iter().find(|d| d.id == *id))
        .map(|deal| (prop(deal, "pipeline"), prop(deal, "dealstage")))
        .expect("a seeded deal in the old pipeline's lost stage")
}

/// Every adoption audited with keys and HubSpot ids only.
fn check_audit(ledger: &Ledger, world: &World, seed: &SeedRecords) {
    let entries = ledger.audit_log(None, 1_000_000).expect("audit");
    let adopted_contacts = entries
        .iter()
        .filter(|e| e.entry.action == "legacy_contact_adopted")
        .count();
    let expected = seed
        .contact_origins
        .iter()
        .filter(|o| o.is_patient_contact(None))
        .count();
    assert_eq!(adopted_contacts, expected, "one entry per adopted contact");
    assert!(
        entries
            .iter()
            .any(|e| e.entry.action == "legacy_deal_adopted")
    );
    assert!(
        entries
            .iter()
            .any(|e| e.entry.action == "legacy_deal_closed")
    );
    // Names of one word are looked up among the entry's words; the few of
    // several words are searched in the whole text.
    let one_word = |n: &&str| n.chars().all(|c| c.is_alphanumeric() || c == '-');
    let names: Vec<&str> = world
        .locations
        .iter()
        .flat_map(|l| &l.patients)
        .filter_map(|p| p.lastname.as_deref())
        .filter(|n| n.len() > 3)
        .collect();
    let words: HashSet<&str> = names.iter().copied().filter(one_word).collect();
    let phrases: Vec<&str> = names.iter().copied().filter(|n| !one_word(n)).collect();
    for entry in entries
        .iter()
        .filter(|e| e.entry.action.starts_with("legacy_"))
    {
        let text = format!("{} {}", entry.entry.subject, entry.entry.details);
        let named = text
            .split(|c: char| !(c.is_alphanumeric() || c == '-'))
            .any(|word| words.contains(word))
            || phrases.iter().any(|n| text.contains(n));
        assert!(!named, "no name in the audit entry {text}");
    }
}

/// Calls that set the portal up (properties, pipelines, the daily usage,
/// the appointments' enablement): the same for any number of records.
fn setup_calls(sim: &HubSpotSim) -> u64 {
    sim.counters()
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

/// `sync --dry-run` prints per location what would be adopted, closed and
/// created, and writes nothing to HubSpot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_shows_what_the_switch_over_would_do() {
    let options = legacy_options();
    let world = World::generate(options.seed, options.size);
    let seed = seed::records(PortalSeed::Legacy, &world);
    let bed = bed(options).await;
    let mut command = sync_command(&bed);
    command.arg("--dry-run");
    let output = run_binary(command).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        bed.sandbox.hubspot.counters().write_calls,
        0,
        "nothing written"
    );
    for location in &world.locations {
        let adopted = seed
            .contact_origins
            .iter()
            .filter(|o| o.is_patient_contact(Some(&location.key)))
            .count();
        let section = stdout
            .split(&format!("\n{}:\n", location.key))
            .nth(1)
            .expect("a section per location");
        assert!(
            section.contains(&format!(
                "Kontakte / contacts: {adopted} übernommen / adopted"
            )),
            "{}: {section}",
            location.key
        );
        assert!(section.contains("als „Duplikat“ geschlossen / closed lost"));
    }
    bed.sandbox.shutdown().await;
}

/// HubSpot commits writes but the answers get lost, or fails them: the
/// adoption's updates by id are sent again and land on the same records,
/// so the switch-over ends exactly as an undisturbed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_during_the_switch_over_change_nothing_of_the_outcome() {
    let options = SandboxOptions {
        seed: 73,
        ..legacy_options()
    };
    let world = World::generate(options.seed, options.size);
    let bed = bed(options).await;
    let sim = &bed.sandbox.hubspot;
    let seeded = seeded(sim, &world);
    let before_contacts = live(sim, "contacts");
    let before_deals = live(sim, "deals");
    sim.set_faults(FaultSettings {
        committed_but_lost_rate: 0.2,
        server_error_rate: 0.1,
        writes_only: true,
        ..FaultSettings::default()
    });
    let summary = run(&bed.env).await;
    assert!(
        sim.counters()
            .faults_injected
            .get("committedButLost")
            .copied()
            .unwrap_or(0)
            > 0,
        "answers were lost: {:?}",
        sim.counters().faults_injected
    );
    sim.set_faults(FaultSettings::default());
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let queue = ledger.outbox_counts().expect("counts");
    assert_eq!(
        (queue.pending(), queue.dead()),
        (0, 0),
        "the client's retries sent everything: {:?}",
        summary.message
    );
    check_contacts(sim, &world, &seeded, &before_contacts);
    check_deals(sim, &world, &seeded, &ledger, &before_deals);
    let again = run(&bed.env).await;
    assert_eq!(again.counts.written, 0, "nothing left to write");
    bed.sandbox.shutdown().await;
}

/// A portal that refuses a whole batch over one bad input (409 for an
/// e-mail another contact has): the adoption still ends with one contact
/// per patient and one deal per case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_call_refusals_do_not_stop_the_switch_over() {
    let options = SandboxOptions {
        batch_failures: BatchFailures::WholeCall,
        ..legacy_options()
    };
    let world = World::generate(options.seed, options.size);
    let bed = bed(options).await;
    let sim = &bed.sandbox.hubspot;
    let seeded = seeded(sim, &world);
    let before_contacts = live(sim, "contacts");
    let before_deals = live(sim, "deals");
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    eprintln!("whole-call load: {:?}", summary.load);
    // The only unkeyed contacts with an address and no Ivoris id are the
    // hand-made ones, whose addresses no patient has: no contact is taken
    // over by e-mail, in particular none another patient adopted by id.
    assert_eq!(summary.load.adopted, 0, "{:?}", summary.load);
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    check_contacts(sim, &world, &seeded, &before_contacts);
    check_deals(sim, &world, &seeded, &ledger, &before_deals);
    bed.sandbox.shutdown().await;
}

/// `sync.legacy_duplicates = "merge"`: the other open legacy deals of a
/// case whose deal was adopted are merged into it instead of closed — as
/// many as close mode would close there, each merged once; every case
/// still has exactly one deal and no legacy deal of a decided appointment
/// is left open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_mode_merges_a_cases_other_legacy_deals_into_its_deal() {
    use ivoris_hubspot_sync::settings::LegacyDuplicates;
    let options = legacy_options();
    let world = World::generate(options.seed, options.size);
    let mut bed = bed(options).await;
    let sim = &bed.sandbox.hubspot;
    let seeded = seeded(sim, &world);
    let dry = |summary: &ivoris_hubspot_sync::engine::run::SyncSummary| {
        summary
            .locations
            .iter()
            .filter_map(|l| l.plan.as_ref())
            .fold((0, 0), |(closed, merged), p| {
                (
                    closed + p.adoption.deals_closed,
                    merged + p.adoption.deals_merged,
                )
            })
    };
    let request = SyncRequest {
        dry_run: true,
        trigger: "test".into(),
        ..SyncRequest::default()
    };
    let close_mode = sync(&bed.env, &request, &|_| {}, &CancelFlag::new())
        .await
        .expect("dry run");
    bed.env.settings.sync.legacy_duplicates = LegacyDuplicates::Merge;
    let merge_mode = sync(&bed.env, &request, &|_| {}, &CancelFlag::new())
        .await
        .expect("dry run");
    let (closed, none) = dry(&close_mode);
    let (rest, merged) = dry(&merge_mode);
    assert_eq!(none, 0, "close mode merges nothing");
    assert!(merged > 0, "the seed has cases with several legacy deals");
    assert_eq!(rest + merged, closed, "each extra deal is closed or merged");

    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    assert_eq!(
        dry(&summary),
        (rest, merged),
        "the dry run said what happened"
    );
    assert_eq!(
        sim.requests_to("POST /crm/objects/2026-03/deals/merge"),
        merged,
        "one merge call per merged deal"
    );
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let after = live(sim, "deals");
    let closed_stages = sim.closed_stages();
    let mut legacy_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for (deal, id) in seeded.description.deals.iter().zip(&seeded.deal_ids) {
        if let Some(appointment) = &deal.appointment_id {
            legacy_of.entry(appointment).or_default().push(id);
        }
    }
    for location in &world.locations {
        for case in ledger.cases(&location.key).expect("cases") {
            let deals = after
                .iter()
                .filter(|d| prop(d, "ivoris_case_key") == case.case_key)
                .count();
            assert_eq!(deals, 1, "{} has exactly one deal", case.case_key);
        }
        for member in ledger.case_members(&location.key).expect("members") {
            for id in legacy_of
                .get(member.appointment_id.as_str())
                .into_iter()
                .flatten()
            {
                if let Some(deal) = after.iter().find(|d| d.id == **id)
                    && prop(deal, "ivoris_case_key").is_empty()
                {
                    assert!(
                        closed_stages.contains(prop(deal, "dealstage")),
                        "legacy deal {id} not left open"
                    );
                }
            }
        }
    }
    let merged_audit = ledger
        .connection()
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'legacy_deal_merged'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .expect("audit");
    assert_eq!(merged_audit as u64, merged);
    let writes = sim.write_calls();
    let again = run(&bed.env).await;
    assert_eq!(again.outcome, RunOutcome::Success);
    assert_eq!(sim.write_calls(), writes, "nothing left to write");
    bed.sandbox.shutdown().await;
}
