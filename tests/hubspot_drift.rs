//! Reconciliation against HubSpot itself: a contact deleted by hand in
//! HubSpot and a deal whose key was removed by hand are found by the scan
//! (and nothing else is), „Erneut senden“ (`resend_drift`) makes them due,
//! and the next sync restores both — the contact created again by key with
//! its associations, the deal given its key back by id — after which a
//! scan finds nothing and a sync writes nothing.

mod engine_support;

use engine_support::{bed, options, run};
use ivoris_hubspot_sync::duplicates::drift::DriftKind;
use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::scan::scan;
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::sandbox::credentials;
use ivoris_hubspot_sync::sandbox::hubspot::{HubSpotSim, RecordSnapshot};

fn live(sim: &HubSpotSim, object: &str) -> Vec<RecordSnapshot> {
    sim.records(object)
        .expect("records")
        .into_iter()
        .filter(|r| !r.archived)
        .collect()
}

fn prop<'a>(record: &'a RecordSnapshot, name: &str) -> &'a str {
    record.properties.get(name).map_or("", String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_changed_by_hand_in_hubspot_are_found_and_restored() {
    let bed = bed(options(97)).await;
    let first = run(&bed.env).await;
    assert_eq!(first.outcome, RunOutcome::Success, "{:?}", first.message);
    let sim = &bed.sandbox.hubspot;

    // A contact with deals, deleted by hand; another contact's deal loses
    // its key by hand.
    let deals = live(sim, "deals");
    let gone = deals
        .iter()
        .find_map(|d| {
            d.associations
                .get("contacts")
                .and_then(|c| c.first())
                .cloned()
        })
        .expect("a contact with a deal");
    let gone_key = live(sim, "contacts")
        .iter()
        .find(|c| c.id == gone)
        .map(|c| prop(c, "ivoris_patient_key").to_owned())
        .expect("the contact");
    let rekeyed = deals
        .iter()
        .find(|d| {
            d.associations
                .get("contacts")
                .is_none_or(|c| !c.contains(&gone))
        })
        .expect("another deal");
    let rekeyed_key = prop(rekeyed, "ivoris_case_key").to_owned();
    let http = reqwest::Client::new();
    let base = &bed.sandbox.hubspot_url;
    let token = credentials::HUBSPOT_TOKEN;
    let deleted = http
        .delete(format!("{base}/crm/v3/objects/contacts/{gone}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("delete");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let patched = http
        .patch(format!("{base}/crm/v3/objects/deals/{}", rekeyed.id))
        .bearer_auth(token)
        .json(&serde_json::json!({"properties": {"ivoris_case_key": ""}}))
        .send()
        .await
        .expect("patch");
    assert!(patched.status().is_success(), "{}", patched.status());

    scan(&bed.env, &|_| {}, &CancelFlag::new())
        .await
        .expect("scan");
    let mut ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let drift = ledger
        .portal_scan()
        .expect("scan read")
        .expect("scanned")
        .findings
        .drift;
    let found: Vec<(&str, &str, &DriftKind)> = drift
        .iter()
        .map(|d| (d.kind.as_str(), d.record_key.as_str(), &d.problem))
        .collect();
    assert_eq!(
        found,
        vec![
            ("contact", gone_key.as_str(), &DriftKind::Missing),
            (
                "deal",
                rekeyed_key.as_str(),
                &DriftKind::KeyChanged { found: None }
            ),
        ]
    );
    assert_eq!(ledger.resend_drift(&drift, "test").expect("resend"), 2);
    drop(ledger);

    let second = run(&bed.env).await;
    assert_eq!(second.outcome, RunOutcome::Success, "{:?}", second.message);
    let contacts = live(sim, "contacts");
    let again: Vec<&RecordSnapshot> = contacts
        .iter()
        .filter(|c| prop(c, "ivoris_patient_key") == gone_key)
        .collect();
    assert_eq!(again.len(), 1, "the contact is there again, once");
    assert_ne!(again[0].id, gone);
    let deals = live(sim, "deals");
    let restored = deals.iter().find(|d| d.id == rekeyed.id).expect("kept");
    assert_eq!(
        prop(restored, "ivoris_case_key"),
        rekeyed_key,
        "key back, same deal"
    );
    let case_keys: Vec<&str> = deals.iter().map(|d| prop(d, "ivoris_case_key")).collect();
    assert_eq!(
        case_keys.iter().filter(|k| **k == rekeyed_key).count(),
        1,
        "no second deal for the case"
    );
    let associated = deals
        .iter()
        .filter(|d| {
            d.associations
                .get("contacts")
                .is_some_and(|c| c.contains(&again[0].id))
        })
        .count();
    assert!(associated > 0, "the new contact has its deals again");

    scan(&bed.env, &|_| {}, &CancelFlag::new())
        .await
        .expect("scan");
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let drift = ledger
        .portal_scan()
        .expect("read")
        .expect("scanned")
        .findings
        .drift;
    assert!(drift.is_empty(), "{drift:?}");
    drop(ledger);
    let writes = sim.write_calls();
    let third = run(&bed.env).await;
    assert_eq!(third.outcome, RunOutcome::Success);
    assert_eq!(sim.write_calls(), writes, "nothing left to write");
    bed.sandbox.shutdown().await;
}
