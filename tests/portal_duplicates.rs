//! Duplicates found in HubSpot (the review's second part, DESIGN.md §6)
//! against the portal the previous integration left (`PortalSeed::Legacy`).
//!
//! Expectations come from the seed's own description
//! (`sandbox::hubspot::seed::records`), the synthetic practices and the
//! sandbox's raw store — never from what the product reports:
//! - before the first sync (no ledger facts) the only groups are the
//!   seed's open second deals of one appointment (`RunDuplicate`);
//! - after the first sync (adoption) the unkeyed typo twins are grouped
//!   with their patient's contact, contacts of one person (same name and
//!   birthday in Ivoris) with each other, no case has two live deals, and
//!   the „Verloren-Liste“ holds exactly the lost deals whose patient has a
//!   booking after now;
//! - a merge whose answer is lost is carried out once (counted in the
//!   sandbox), and the next sync writes both patients onto the survivor
//!   without creating a contact;
//! - a portal of 5,000 clean contacts and 10,000 deals, listed with their
//!   associations, yields no group.

mod engine_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use engine_support::{bed, options, prop, run};
use ivoris_hubspot_sync::duplicates::drift::ValueProperties;
use ivoris_hubspot_sync::duplicates::portal::{
    KnownPatient, LedgerFacts, Members, PortalKind, find,
};
use ivoris_hubspot_sync::engine::decisions::Decision;
use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::portal_review::{MergesSent, review, send_merges};
use ivoris_hubspot_sync::engine::run::hubspot_client;
use ivoris_hubspot_sync::engine::scan::{list_portal, scan};
use ivoris_hubspot_sync::ledger::Ledger;
use ivoris_hubspot_sync::ledger::portal::{DealMark, MergeRequest};
use ivoris_hubspot_sync::sandbox::data::World;
use ivoris_hubspot_sync::sandbox::hubspot::seed::{self, ContactOrigin, DealOrigin};
use ivoris_hubspot_sync::sandbox::hubspot::{FaultSettings, HubSpotSim, RecordSnapshot};
use ivoris_hubspot_sync::sandbox::{PortalSeed, SandboxOptions, Size};

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

fn legacy_options() -> SandboxOptions {
    SandboxOptions {
        portal: PortalSeed::Legacy,
        size: Size::Small,
        ..options(83)
    }
}

/// Groups found, as (kind, member ids in order).
type Found = BTreeSet<(PortalKind, Vec<String>)>;

fn found(ledger_path: &std::path::Path, kind: PortalKind) -> Found {
    let ledger = Ledger::open(ledger_path).expect("ledger");
    review(&ledger)
        .expect("review")
        .groups
        .into_iter()
        .filter(|g| g.kind == kind)
        .map(|g| (g.kind, g.members.ids()))
        .collect()
}

async fn scanned(env: &ivoris_hubspot_sync::engine::run::SyncEnvironment) {
    scan(env, &|_| {}, &CancelFlag::new())
        .await
        .expect("scan runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_finds_exactly_the_seeded_groups() {
    let options = legacy_options();
    let world = World::generate(options.seed, options.size);
    let bed = bed(options).await;
    let sim = &bed.sandbox.hubspot;
    let description = seed::records(PortalSeed::Legacy, &world);
    let contact_ids: Vec<String> = live(sim, "contacts").iter().map(|c| c.id.clone()).collect();
    let deal_ids: Vec<String> = live(sim, "deals").iter().map(|d| d.id.clone()).collect();
    assert_eq!(deal_ids.len(), description.deals.len());

    // Before the first sync: the ledger knows nothing; only the open
    // second deals of one appointment stand out.
    scanned(&bed.env).await;
    let expected: Found = description
        .deals
        .iter()
        .enumerate()
        .filter(|(_, d)| d.origin == DealOrigin::RunDuplicate)
        .map(|(at, _)| {
            (
                PortalKind::CaseDeals,
                vec![deal_ids[at - 1].clone(), deal_ids[at].clone()],
            )
        })
        .collect();
    assert!(!expected.is_empty(), "the seed has run duplicates");
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let all: Found = review(&ledger)
        .expect("review")
        .groups
        .into_iter()
        .map(|g| (g.kind, g.members.ids()))
        .collect();
    assert_eq!(all, expected);

    // After the first sync (adoption).
    run(&bed.env).await;
    scanned(&bed.env).await;
    let twins: Found = description
        .contact_origins
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            matches!(
                o,
                ContactOrigin::Patient {
                    typo_duplicate: true,
                    ..
                }
            )
        })
        .map(|(at, _)| {
            (
                PortalKind::Legacy,
                vec![contact_ids[at - 1].clone(), contact_ids[at].clone()],
            )
        })
        .collect();
    assert!(!twins.is_empty());
    assert_eq!(found(&bed.env.ledger_path, PortalKind::Legacy), twins);
    assert_eq!(
        found(&bed.env.ledger_path, PortalKind::CaseDeals),
        Found::new()
    );
    assert_eq!(
        found(&bed.env.ledger_path, PortalKind::PersonContacts),
        expected_people(sim, &world)
    );
    let lost_and_booked = expected_rebooked(sim, &world, bed.sandbox.ivoris.now());
    assert!(
        !lost_and_booked.is_empty(),
        "the seed has lost patients who booked again"
    );
    assert_eq!(rebooked(&bed.env.ledger_path), lost_and_booked);
}

/// Keyed contacts whose patients have the same first name, last name and
/// birthday in the synthetic practices (copies of a person are identical
/// there), primary first: the keyed contacts are all "ours", so the
/// fullest (e-mail, first, last name), then the oldest.
fn expected_people(sim: &HubSpotSim, world: &World) -> Found {
    let mut person: HashMap<String, (String, String, String)> = HashMap::new();
    for location in &world.locations {
        for patient in &location.patients {
            if let (Some(first), Some(last), Some(born)) =
                (&patient.firstname, &patient.lastname, patient.birthday)
            {
                person.insert(
                    format!("{}:{}", location.key, patient.id),
                    (first.clone(), last.clone(), born.to_string()),
                );
            }
        }
    }
    let mut groups: BTreeMap<(String, String, String), Vec<&RecordSnapshot>> = BTreeMap::new();
    let contacts = live(sim, "contacts");
    for contact in &contacts {
        if let Some(who) = person.get(prop(contact, "ivoris_patient_key")) {
            groups.entry(who.clone()).or_default().push(contact);
        }
    }
    groups
        .into_values()
        .filter(|members| members.len() > 1)
        .map(|mut members| {
            let filled = |c: &RecordSnapshot| {
                ["email", "firstname", "lastname"]
                    .iter()
                    .filter(|n| !prop(c, n).trim().is_empty())
                    .count()
            };
            members.sort_by_key(|c| (usize::MAX - filled(c), c.id.parse::<u64>().unwrap_or(0)));
            (
                PortalKind::PersonContacts,
                members.iter().map(|c| c.id.clone()).collect(),
            )
        })
        .collect()
}

fn rebooked(ledger_path: &std::path::Path) -> BTreeSet<String> {
    let ledger = Ledger::open(ledger_path).expect("ledger");
    review(&ledger)
        .expect("review")
        .rebooked
        .into_iter()
        .map(|r| r.lost.id)
        .collect()
}

/// Live deals in a closed stage with a loss reason other than „Duplikat“
/// whose patient (by the old appointment id or the case's opening
/// appointment) has a booked or confirmed appointment after now.
fn expected_rebooked(
    sim: &HubSpotSim,
    world: &World,
    now: chrono::NaiveDateTime,
) -> BTreeSet<String> {
    let mut patient_of: HashMap<&str, String> = HashMap::new();
    let mut booked: BTreeSet<String> = BTreeSet::new();
    for location in &world.locations {
        for appointment in &location.appointments {
            let Some(patient) = &appointment.patient_id else {
                continue;
            };
            let key = format!("{}:{patient}", location.key);
            patient_of.insert(&appointment.id, key.clone());
            let open = matches!(appointment.state.as_deref(), Some("Booked" | "Confirmed"));
            if open && appointment.start.is_some_and(|s| s > now) {
                booked.insert(key);
            }
        }
    }
    let closed = sim.closed_stages();
    live(sim, "deals")
        .into_iter()
        .filter(|d| closed.contains(prop(d, "dealstage")))
        .filter(|d| !prop(d, "verlustgrund").is_empty() && prop(d, "verlustgrund") != "Duplikat")
        .filter(|d| {
            let appointment = match prop(d, "ivoris_appointment_id") {
                "" => prop(d, "ivoris_case_key")
                    .split_once(':')
                    .map_or("", |(_, a)| a),
                legacy => legacy,
            };
            patient_of
                .get(appointment)
                .is_some_and(|patient| booked.contains(patient))
        })
        .map(|d| d.id)
        .collect()
}

/// After a sync and a scan of the legacy portal: the merge of a person's
/// two contacts the review offers, and the two patients' keys (primary's
/// first).
async fn person_with_two_contacts(bed: &engine_support::Bed) -> (MergeRequest, Vec<String>) {
    run(&bed.env).await;
    scanned(&bed.env).await;
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let group = review(&ledger)
        .expect("review")
        .groups
        .into_iter()
        .find(|g| g.kind == PortalKind::PersonContacts)
        .expect("a person with two contacts");
    let Members::Contacts(members) = &group.members else {
        panic!("contacts");
    };
    let (primary, secondary) = (&members[0], &members[1]);
    let keys: Vec<String> = [primary, secondary]
        .iter()
        .filter_map(|c| c.patient_key.clone())
        .collect();
    assert_eq!(keys.len(), 2, "both keyed");
    let merge = MergeRequest {
        primary: primary.id.clone(),
        secondary: secondary.id.clone(),
        group: group.key.clone(),
    };
    (merge, keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_survives_a_lost_answer_and_the_next_sync_writes_onto_the_survivor() {
    let bed = bed(legacy_options()).await;
    let sim = &bed.sandbox.hubspot;
    let (merge, keys) = person_with_two_contacts(&bed).await;
    let primary_id = merge.primary.clone();
    Decision::Merge(merge.clone())
        .apply(&bed.env.ledger_path, "tester")
        .expect("queued");
    // Asked twice, queued once.
    Decision::Merge(merge)
        .apply(&bed.env.ledger_path, "tester")
        .expect("queued");
    let contacts_before = live(sim, "contacts").len();

    // HubSpot merges, the answer is lost.
    sim.set_faults(FaultSettings {
        committed_but_lost_rate: 1.0,
        writes_only: true,
        ..FaultSettings::default()
    });
    let sent = send_merges(&bed.env).await.expect("sent");
    assert_eq!(
        sent,
        MergesSent::Done {
            merged: 0,
            failed: 1
        }
    );
    sim.set_faults(FaultSettings::default());
    assert_eq!(merges(sim), 1);
    assert_eq!(live(sim, "contacts").len(), contacts_before - 1, "merged");
    // Time passes: the row is due again; the read shows the merge done.
    Ledger::open(&bed.env.ledger_path)
        .expect("ledger")
        .connection()
        .execute(
            "UPDATE outbox SET next_attempt_at = NULL WHERE kind = 'merge'",
            [],
        )
        .expect("due");
    let sent = send_merges(&bed.env).await.expect("sent");
    assert_eq!(
        sent,
        MergesSent::Done {
            merged: 1,
            failed: 0
        }
    );
    assert_eq!(merges(sim), 1, "never sent twice");
    let log = Ledger::open(&bed.env.ledger_path)
        .expect("ledger")
        .decision_log(50)
        .expect("log");
    let actions: Vec<&str> = log.iter().map(|e| e.entry.action.as_str()).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "duplicate.merge_requested")
            .count(),
        1
    );
    assert!(actions.contains(&"duplicate.merged"));

    // The next sync writes both patients onto the survivor.
    let summary = run(&bed.env).await;
    let contacts = live(sim, "contacts");
    assert_eq!(contacts.len(), contacts_before - 1, "no contact created");
    let survivor = contacts
        .iter()
        .find(|c| c.id == primary_id)
        .expect("survivor");
    assert_eq!(prop(survivor, "ivoris_patient_key"), keys[0]);
    assert!(
        !contacts
            .iter()
            .any(|c| prop(c, "ivoris_patient_key") == keys[1]),
        "the merged patient has no contact of its own"
    );
    assert!(
        summary.load.written.values().sum::<u64>() >= 2,
        "{summary:?}"
    );
    // And a further sync writes nothing.
    let again = run(&bed.env).await;
    assert_eq!(again.load.written.values().sum::<u64>(), 0, "{again:?}");
}

fn merges(sim: &HubSpotSim) -> u64 {
    sim.counters()
        .requests
        .iter()
        .filter(|(template, _)| template.ends_with("/merge"))
        .map(|(_, count)| count)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_group_among_five_thousand_clean_contacts_and_ten_thousand_deals() {
    let bed = bed(options(5)).await;
    let sim = &bed.sandbox.hubspot;
    sim.seed_clean_portal("magdeburg", 5_000, 2);
    let client = hubspot_client(&bed.env).expect("client");
    let listed = list_portal(
        &client,
        &ValueProperties::default(),
        &|_| {},
        &CancelFlag::new(),
    )
    .await
    .expect("listed");
    assert_eq!(listed.contacts.len(), 5_000);
    assert_eq!(listed.deals.len(), 10_000);
    assert!(
        listed.deals.iter().all(|d| d.contacts.len() == 1),
        "associations read"
    );
    // 50 contact pages, 100 deal pages.
    assert_eq!(listed.calls, 150);
    let facts = LedgerFacts {
        patients: (0..5_000)
            .map(|n| {
                let p = seed::clean_patient("magdeburg", n);
                KnownPatient {
                    key: p.key,
                    firstname: Some(p.firstname),
                    lastname: Some(p.lastname),
                    birthday: Some(p.birthday.to_string()),
                    email: Some(p.email),
                }
            })
            .collect(),
        ..LedgerFacts::default()
    };
    let findings = find(&listed.contacts, &listed.deals, &facts);
    assert!(findings.groups.is_empty(), "{:?}", findings.groups.first());
    assert!(findings.rebooked.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_lost_as_duplicate_comes_back_and_a_dismissed_group_stays_away() {
    let bed = bed(legacy_options()).await;
    let sim = &bed.sandbox.hubspot;
    run(&bed.env).await;
    scanned(&bed.env).await;
    // A deal without our key (made by hand), as the scan listed it.
    let client = hubspot_client(&bed.env).expect("client");
    let listed = list_portal(
        &client,
        &ValueProperties::default(),
        &|_| {},
        &CancelFlag::new(),
    )
    .await
    .expect("listed");
    let deal = listed
        .deals
        .iter()
        .find(|d| d.name.as_deref() == Some("Anfrage Website 1"))
        .expect("a deal made by hand")
        .clone();
    let stage_before = deal.stage.clone().expect("stage");
    let mark = |duplicate| Decision::MarkPortalDeal {
        mark: DealMark {
            deal: deal.id.clone(),
            lost_stage: deal
                .lost_stage
                .clone()
                .expect("its pipeline has a lost stage"),
            stage: stage_before.clone(),
            reason: String::new(),
            duplicate,
        },
        group: "hubspot:test".into(),
    };
    let in_hubspot = || {
        live(sim, "deals")
            .into_iter()
            .find(|d| d.id == deal.id)
            .expect("still there")
    };
    mark(true)
        .apply(&bed.env.ledger_path, "tester")
        .expect("marked");
    run(&bed.env).await;
    let marked = in_hubspot();
    assert_eq!(
        prop(&marked, "dealstage"),
        deal.lost_stage.clone().unwrap_or_default()
    );
    assert_eq!(prop(&marked, "verlustgrund"), "Duplikat");
    mark(false)
        .apply(&bed.env.ledger_path, "tester")
        .expect("undone");
    run(&bed.env).await;
    let restored = in_hubspot();
    assert_eq!(prop(&restored, "dealstage"), stage_before);
    assert_eq!(prop(&restored, "verlustgrund"), "");
    assert!(
        !live(sim, "deals")
            .iter()
            .any(|d| prop(d, "ivoris_case_key").starts_with("hubspot:")),
        "written by id, never created"
    );

    // „Kein Duplikat“ is remembered for exactly that group.
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let first = review(&ledger).expect("review").groups[0].key.clone();
    Decision::Dismiss(first.clone())
        .apply(&bed.env.ledger_path, "tester")
        .expect("dismissed");
    scanned(&bed.env).await;
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert!(
        !review(&ledger)
            .expect("review")
            .groups
            .iter()
            .any(|g| g.key == first)
    );
    let actions: Vec<String> = ledger
        .decision_log(50)
        .expect("log")
        .into_iter()
        .map(|e| e.entry.action)
        .collect();
    for action in [
        "duplicate.deal_lost",
        "duplicate.deal_unmark",
        "duplicate.not_duplicate",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_scans_and_lists_without_names() {
    use ivoris_hubspot_sync::sandbox::credentials;
    let options = legacy_options();
    let world = World::generate(options.seed, options.size);
    let bed = bed(options).await;
    run(&bed.env).await;
    let config = bed.dir.path().join("settings.toml");
    bed.env.settings.save(&config).expect("settings written");
    let data_dir = bed.dir.path().to_owned();
    let cli = move |args: &[&str]| {
        std::process::Command::new(engine_support::BIN)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(args)
            .env("HUBSPOT_TOKEN", credentials::HUBSPOT_TOKEN)
            .env("IVORIS_PASSWORD", credentials::IVORIS_PASSWORD)
            .env("IVORIS_API_KEY", credentials::IVORIS_API_KEY)
            .output()
            .expect("runs")
    };
    // The sandbox answers on this runtime: the binary runs beside it.
    let (before, out, list) = tokio::task::spawn_blocking(move || {
        (
            cli(&["duplicates", "list"]),
            cli(&["duplicates", "scan"]),
            cli(&["duplicates", "list"]),
        )
    })
    .await
    .expect("cli");
    assert!(before.status.success());
    assert!(String::from_utf8_lossy(&before.stdout).contains("noch nicht geprüft"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("Altdaten"), "{text}");
    assert!(String::from_utf8_lossy(&list.stdout).contains("Altdaten"));
    for location in &world.locations {
        for patient in location.patients.iter().take(50) {
            if let Some(last) = patient.lastname.as_deref().filter(|l| l.len() > 3) {
                assert!(!text.contains(last), "no names: {last}");
            }
            assert!(!text.contains(&patient.id), "no patient ids");
        }
    }
}

/// A patient whose contact was merged into another patient's in the
/// duplicate review shares the survivor: forgetting one alone is refused
/// naming the other, and forgetting both deletes the survivor and
/// tombstones both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_a_patient_whose_contact_was_merged_names_the_survivors_patient() {
    use ivoris_hubspot_sync::engine::forget::{ForgetError, ForgetRequest, forget_patient};

    let bed = bed(legacy_options()).await;
    let sim = &bed.sandbox.hubspot;
    let (merge, keys) = person_with_two_contacts(&bed).await;
    let primary_id = merge.primary.clone();
    Decision::Merge(merge)
        .apply(&bed.env.ledger_path, "tester")
        .expect("queued");
    let sent = send_merges(&bed.env).await.expect("sent");
    assert_eq!(
        sent,
        MergesSent::Done {
            merged: 1,
            failed: 0
        }
    );
    run(&bed.env).await;

    let (location, patient) = keys[1].split_once(':').expect("location:patient");
    let alone = ForgetRequest {
        location: location.to_owned(),
        patient: patient.to_owned(),
        all_locations: false,
    };
    match forget_patient(&bed.env, &alone).await {
        Err(error @ ForgetError::LinkedElsewhere(_)) => {
            let text = error.to_string();
            assert!(text.contains(&keys[0]), "{text}");
        }
        other => panic!("not refused: {other:?}"),
    }
    assert!(
        live(sim, "contacts").iter().any(|c| c.id == primary_id),
        "the survivor is kept while refused"
    );

    let both = ForgetRequest {
        all_locations: true,
        ..alone
    };
    forget_patient(&bed.env, &both).await.expect("forgotten");
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let mut forgotten: Vec<String> = ledger
        .tombstones()
        .expect("tombstones")
        .into_iter()
        .map(|t| format!("{}:{}", t.patient.location, t.patient.patient_id))
        .collect();
    forgotten.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(forgotten, expected);
    assert!(
        !live(sim, "contacts").iter().any(|c| c.id == primary_id),
        "the survivor is deleted"
    );
}
