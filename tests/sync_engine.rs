//! The sync engine against the sandbox: a full sync, a re-sync without
//! changes, and scripted changes of single appointments. Expected values
//! are computed here from the sandbox's raw data and from the scenario,
//! never by the engine's code.

mod domain_support;
mod engine_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use engine_support::{SimClock, bed, options, run};
use ivoris_hubspot_sync::hubspot::Clock;
use ivoris_hubspot_sync::ivoris::wire::{DocumentEntry, Patient};
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::sandbox::data::World;
use ivoris_hubspot_sync::sandbox::hubspot::{HubSpotSim, RecordSnapshot};

/// HubSpot's records of one type, by their unique key property.
fn by_key(sim: &HubSpotSim, object: &str, key: &str) -> BTreeMap<String, RecordSnapshot> {
    sim.records(object)
        .expect("records")
        .into_iter()
        .filter(|r| !r.archived)
        .filter_map(|r| Some((r.properties.get(key)?.clone(), r)))
        .collect()
}

fn cents(entry: &DocumentEntry) -> i64 {
    (entry.amount.expect("amount") * 100.0).round() as i64
}

fn euros(text: &str) -> i64 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    let whole: i64 = whole.trim_start_matches('-').parse().expect("euros");
    let fraction: i64 = format!("{fraction:0<2}")[..2].parse().expect("cents");
    sign * (whole * 100 + fraction)
}

fn person(p: &Patient) -> (String, String, String) {
    let norm = |s: &Option<String>| s.clone().unwrap_or_default().trim().to_lowercase();
    (
        norm(&p.firstname),
        norm(&p.lastname),
        p.birthday.map(|b| b.to_string()).unwrap_or_default(),
    )
}

/// Contacts HubSpot should hold: one per person and e-mail address (the
/// same person at two locations, or entered twice, shares one), plus one
/// per patient without e-mail.
fn expected_contacts(world: &World) -> usize {
    let mut with_email: BTreeSet<(String, (String, String, String))> = BTreeSet::new();
    let mut without = 0;
    for location in &world.locations {
        for patient in &location.patients {
            match patient
                .email
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty())
            {
                Some(email) => {
                    with_email.insert((email.to_lowercase(), person(patient)));
                }
                None => without += 1,
            }
        }
    }
    with_email.len() + without
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_mirrors_the_practices_and_a_resync_writes_nothing() {
    let bed = bed(options(11)).await;
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let queue = ledger.outbox_counts().expect("counts");
    assert_eq!(
        (queue.pending(), queue.dead()),
        (0, 0),
        "everything confirmed"
    );

    let world = bed.sandbox.ivoris.snapshot();
    let hubspot = &bed.sandbox.hubspot;
    let contacts = hubspot.records("contacts").expect("contacts");
    assert_eq!(contacts.len(), expected_contacts(&world));

    // Every patient key is known to exactly one contact.
    let mut holder: HashMap<String, String> = HashMap::new();
    for contact in &contacts {
        let keys = contact
            .properties
            .get("ivoris_patient_keys")
            .cloned()
            .unwrap_or_default();
        let mut known: BTreeSet<String> = keys
            .split(';')
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect();
        known.extend(contact.properties.get("ivoris_patient_key").cloned());
        for key in known {
            assert!(
                holder.insert(key.clone(), contact.id.clone()).is_none(),
                "{key} on two contacts"
            );
        }
    }
    let deals = by_key(hubspot, "deals", "ivoris_case_key");
    let appointments = by_key(hubspot, "appointments", "ivoris_appointment_key");
    let mut deals_of: HashMap<String, Vec<&BTreeMap<String, String>>> = HashMap::new();
    for (case_key, deal) in &deals {
        let (location, opening) = case_key.split_once(':').expect("case key");
        let place = world.location(location).expect("location");
        let opener = place
            .appointments
            .iter()
            .find(|a| a.id == opening)
            .expect("a case opens with an appointment");
        let patient_key = format!(
            "{location}:{}",
            opener.patient_id.as_deref().expect("patient")
        );
        let contact = holder
            .get(&patient_key)
            .expect("the patient's contact exists");
        assert_eq!(
            deal.associations.get("contacts"),
            Some(&vec![contact.clone()]),
            "deal {} ↔ its contact",
            deal.id
        );
        deals_of
            .entry(patient_key)
            .or_default()
            .push(&deal.properties);
    }

    // Revenue per patient and category, to the cent, from the raw billing lines.
    for location in &world.locations {
        for patient in &location.patients {
            let key = format!("{}:{}", location.key, patient.id);
            let lines: Vec<&DocumentEntry> = location
                .entries
                .iter()
                .filter(|e| e.patient_id.as_deref() == Some(&patient.id))
                .collect();
            let mut expected: BTreeMap<&str, i64> = BTreeMap::new();
            let mut total = 0;
            let mut separate = 0;
            for line in &lines {
                let kind = line.entry_type.as_deref().unwrap_or("");
                match kind {
                    "lst" | "mat" | "lab" => {
                        let category = domain_support::domain_category(
                            kind,
                            line.catalogue.as_deref().unwrap_or(""),
                            line.code.as_deref().unwrap_or(""),
                        )
                        .unwrap_or("unklassifiziert");
                        *expected.entry(domain_support::slug(category)).or_default() += cents(line);
                        total += cents(line);
                    }
                    "pabg" => separate += cents(line),
                    _ => {}
                }
            }
            let deals = deals_of.get(&key).cloned().unwrap_or_default();
            let sum = |name: &str| {
                deals
                    .iter()
                    .map(|d| d.get(name).map_or(0, |v| euros(v)))
                    .sum::<i64>()
            };
            assert_eq!(sum("amount"), total, "amount of {key}");
            assert_eq!(sum("umsatz_separat"), separate, "separate revenue of {key}");
            for (slug, cents) in &expected {
                assert_eq!(
                    sum(&format!("umsatz_{slug}")),
                    *cents,
                    "umsatz_{slug} of {key}"
                );
            }
            // At most one open deal per patient and location (invariant 3).
            let open = deals
                .iter()
                .filter(|d| d.get("closedate").is_none_or(|c| c.is_empty()))
                .count();
            assert!(open <= 1, "{key} has {open} open deals");
        }
        // Every appointment is a HubSpot appointment tied to its contact.
        for appointment in &location.appointments {
            let key = format!("{}:{}", location.key, appointment.id);
            let associations = &appointments
                .get(&key)
                .expect("appointment record")
                .associations;
            let patient_key = format!(
                "{}:{}",
                location.key,
                appointment.patient_id.as_deref().expect("patient")
            );
            assert_eq!(
                associations.get("contacts"),
                Some(&vec![holder[&patient_key].clone()]),
                "{key}"
            );
        }
    }

    // The reconciliation report agrees with the raw data, day by day.
    let report = ledger.latest_reconciliation(false).expect("report");
    for location in &world.locations {
        let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
        for appointment in &location.appointments {
            let day = appointment
                .start
                .expect("start")
                .date()
                .format("%Y-%m-%d")
                .to_string();
            *per_day.entry(day).or_default() += 1;
        }
        let reported: BTreeMap<String, (u64, u64, Option<u64>)> = report
            .iter()
            .filter(|r| r.location_key == location.key && r.kind == "appointments")
            .map(|r| (r.day.clone(), (r.ivoris, r.ledger, r.hubspot)))
            .collect();
        let expected: BTreeMap<String, (u64, u64, Option<u64>)> = per_day
            .into_iter()
            .map(|(day, n)| (day, (n, n, Some(n))))
            .collect();
        assert_eq!(
            reported, expected,
            "appointments per day at {}",
            location.key
        );
    }
    assert!(
        report.iter().all(|r| !r.differs()),
        "no day differs after a clean sync"
    );
    assert_eq!(summary.differing_days, 0);

    let writes = hubspot.write_calls();
    let again = run(&bed.env).await;
    assert_eq!(again.outcome, RunOutcome::Success);
    assert_eq!(
        hubspot.write_calls(),
        writes,
        "a re-sync without changes makes no write call"
    );
    assert_eq!(again.counts.written, 0);
}

/// Requests that read or set up the portal's schema (provisioning).
fn provisioning_requests(sim: &HubSpotSim) -> u64 {
    sim.counters()
        .requests
        .iter()
        .filter(|(endpoint, _)| {
            endpoint.contains("/crm/properties/") || endpoint.contains("/crm/pipelines/")
        })
        .map(|(_, count)| count)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_moments_after_a_clean_one_takes_its_provisioning_and_a_failed_run_leaves_none() {
    let mut bed = bed(options(12)).await;
    // The client's clock moves with the simulation's, so half a minute can pass.
    let clock = Arc::new(SimClock::new(bed.sandbox.hubspot.clone()));
    let tune_hubspot = bed.env.tune_hubspot.clone().expect("tuning");
    let client_clock = clock.clone();
    bed.env.tune_hubspot = Some(Arc::new(move |config| {
        tune_hubspot(config);
        config.clock = client_clock.clone();
    }));
    let hubspot = &bed.sandbox.hubspot;
    assert_eq!(run(&bed.env).await.outcome, RunOutcome::Success);
    assert!(
        provisioning_requests(hubspot) > 0,
        "the first run provisions"
    );

    // Right after a clean run: nothing of the schema is asked again.
    hubspot.reset_counters();
    let again = run(&bed.env).await;
    assert_eq!(again.outcome, RunOutcome::Success);
    assert_eq!(provisioning_requests(hubspot), 0);
    assert_eq!(hubspot.write_calls(), 0);
    assert!(
        again
            .provision
            .is_some_and(|p| p.created_properties.is_empty())
    );

    // Once half a minute has passed, the portal is asked again.
    clock.sleep(std::time::Duration::from_secs(31)).await;
    hubspot.reset_counters();
    assert_eq!(run(&bed.env).await.outcome, RunOutcome::Success);
    assert!(
        provisioning_requests(hubspot) > 0,
        "asked after half a minute"
    );

    // A run whose writes fail keeps nothing: the run after it asks again.
    let location = bed.sandbox.locations[0].key.clone();
    let patient = bed
        .sandbox
        .ivoris
        .with_world(|w| w.locations[0].patients[0].id.clone());
    bed.sandbox
        .ivoris
        .set_patient_email(&location, &patient, Some("neu@example.org"))
        .expect("email changed");
    hubspot.set_fail_every_write(true);
    let failed = run(&bed.env).await;
    assert!(failed.counts.failed > 0 || failed.outcome != RunOutcome::Success);
    hubspot.set_fail_every_write(false);
    hubspot.reset_counters();
    assert_eq!(run(&bed.env).await.outcome, RunOutcome::Success);
    assert!(
        provisioning_requests(hubspot) > 0,
        "asked after a failed run"
    );
}
