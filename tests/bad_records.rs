//! Bad input never corrupts (DESIGN.md §3.9): malformed Ivoris records —
//! wrong types, missing ids, unknown state values, broken dates, absurd
//! amounts — are quarantined with reasons in German and English, everything
//! else syncs exactly as an undisturbed run of clean data does, and the run
//! ends with warnings (exit code 3 from the CLI).

mod engine_support;

use std::collections::BTreeSet;

use chrono::Duration;
use engine_support::{bed, keyed_state, options, run, run_binary, sync_command};
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::mapping::store::{load_current, save_version};
use ivoris_hubspot_sync::mapping::{AppointmentState, StateRule};
use ivoris_hubspot_sync::sandbox::Sandbox;
use ivoris_hubspot_sync::sandbox::ivoris::RecordKind;
use serde_json::{Value, json};

const SEED: u64 = 41;

/// The malformed records, each with the field the quarantine must blame.
fn malformed(sandbox: &Sandbox) -> (String, Vec<(RecordKind, Value, &'static str)>) {
    let location = sandbox.ivoris.with_world(|w| w.locations[0].clone());
    let now = sandbox.ivoris.now();
    // A patient with an appointment that has begun: their billing lines are asked for.
    let patient = location
        .appointments
        .iter()
        .find(|a| a.start.is_some_and(|s| s < now))
        .and_then(|a| a.patient_id.clone())
        .expect("an active patient");
    let last_month = (now - Duration::days(30))
        .format("%Y-%m-%dT10:00:00")
        .to_string();
    let day = (now - Duration::days(30)).format("%Y-%m-%d").to_string();
    let records = vec![
        (
            RecordKind::Patient,
            json!({"Id": 4711, "Firstname": ["kaputt"], "Lastname": "Falsch"}),
            "Id",
        ),
        (
            RecordKind::Patient,
            json!({"Firstname": "Ohne", "Lastname": "Nummer"}),
            "Id",
        ),
        (
            RecordKind::Patient,
            json!({"Id": "p-bad-birthday", "Firstname": "Erika", "Lastname": "Muster", "Birthday": "1980-02-31T00:00:00",
                   "CurrentInsurance": {"InsuranceStatus": "M", "InsuranceNumber": "A123456789"}}),
            "Birthday",
        ),
        (
            RecordKind::Appointment,
            json!({"Id": "a-bad-start", "PatientId": patient, "Start": "2026-02-30T25:00:00", "State": "Booked"}),
            "Start",
        ),
        (
            RecordKind::Appointment,
            json!({"PatientId": patient, "Start": last_month, "State": "Completed"}),
            "Id",
        ),
        (
            RecordKind::Appointment,
            json!({"Id": "a-unknown-state", "PatientId": patient, "Start": last_month,
                   "DurationMinutes": 30, "State": "Verschoben", "LastModified": last_month}),
            "State",
        ),
        (
            RecordKind::Entry,
            json!({"Id": "e-absurd", "PatientId": patient, "Date": day, "Type": "lst",
                   "Catalogue": "BEMA", "Code": "01", "Amount": 1.0e12, "Tooth": "36",
                   "Text": "Schmerzen links unten"}),
            "Amount",
        ),
        (
            RecordKind::Entry,
            json!({"Id": "e-wrong-types", "PatientId": patient, "Date": "gestern", "Amount": "zwölf Euro",
                   "Tooth": 47, "Text": "Kiefer schmerzt"}),
            "Date",
        ),
    ];
    (location.key, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_quarantined_and_the_rest_syncs_as_without_them() {
    let reference = bed(options(SEED)).await;
    let summary = run(&reference.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    let expected = keyed_state(&reference.sandbox.hubspot, &reference.sandbox.hubspot_url).await;

    let bed = bed(options(SEED)).await;
    let (key, records) = malformed(&bed.sandbox);
    for (kind, value, _) in &records {
        bed.sandbox
            .ivoris
            .inject_raw(&key, *kind, value.clone())
            .expect("injected");
    }

    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Warnings,
        "{:?}",
        summary.message
    );
    let message = summary.message.clone().unwrap_or_default();
    assert!(
        message.contains("Quarantäne") && message.contains("quarantine"),
        "{message}"
    );

    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let quarantined = ledger.quarantined(None).expect("quarantine");
    let blamed: BTreeSet<(Option<String>, Option<String>)> = quarantined
        .iter()
        .map(|q| (q.item.record_id.clone(), q.item.field.clone()))
        .collect();
    for (_, value, field) in &records {
        let id = value["Id"].as_str().map(str::to_owned);
        assert!(
            blamed.contains(&(id.clone(), Some((*field).to_owned()))),
            "{id:?} blamed for {field}: {blamed:?}"
        );
    }
    for q in &quarantined {
        assert_eq!(q.item.location_key, key);
        assert!(
            q.item.reason_de.len() > 5 && q.item.reason_en.len() > 5,
            "{:?}",
            q.item
        );
        assert_ne!(q.item.reason_de, q.item.reason_en, "two languages");
    }
    // The payload is kept for diagnosis, minus what the mirror drops too:
    // tooth, free text, insurance number.
    let raws: Vec<&str> = quarantined.iter().map(|q| q.item.raw.as_str()).collect();
    let all = raws.join("\n");
    for dropped in [
        "A123456789",
        "InsuranceNumber",
        "Tooth",
        "Schmerzen links unten",
        "Kiefer schmerzt",
    ] {
        assert!(
            !all.contains(dropped),
            "{dropped} in the quarantine:\n{all}"
        );
    }
    for kept in ["zwölf Euro", "1980-02-31T00:00:00", "InsuranceStatus"] {
        assert!(
            all.contains(kept),
            "{kept} missing in the quarantine:\n{all}"
        );
    }
    drop(ledger);

    let actual = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    engine_support::assert_same_state(&actual, &expected);

    // The CLI says the same with its exit code; the bad records stay put.
    let output = run_binary(sync_command(&bed)).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let actual = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    engine_support::assert_same_state(&actual, &expected);
}

/// The unknown state is a gap in the mapping, not in the data: the
/// appointment waits in the mirror and is sent as soon as the mapping in
/// force knows its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appointment_held_back_for_its_state_is_sent_once_the_mapping_knows_it() {
    let bed = bed(options(SEED)).await;
    let (key, records) = malformed(&bed.sandbox);
    let (kind, unknown, _) = records
        .into_iter()
        .find(|(_, value, _)| value["Id"] == "a-unknown-state")
        .expect("the unknown state");
    bed.sandbox
        .ivoris
        .inject_raw(&key, kind, unknown)
        .expect("injected");
    let record_key = format!("{key}:a-unknown-state");

    let summary = run(&bed.env).await;
    assert_eq!(summary.outcome, RunOutcome::Warnings);
    let plan = summary.locations[0].plan.as_ref().expect("planned");
    assert!(plan.unmapped_states.contains("Verschoben"), "{plan:?}");
    let state = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    assert!(!state.appointments.contains_key(&record_key));

    let mut ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let mut mapping = load_current(&ledger).expect("mapping");
    mapping.appointment_states.push(StateRule {
        ivoris_value: "Verschoben".into(),
        state: AppointmentState::Cancelled,
    });
    let version =
        save_version(&mut ledger, &mapping, "test", "Verschoben = abgesagt").expect("saved");
    drop(ledger);
    // A saved mapping is in force once its re-apply preview is confirmed.
    ivoris_hubspot_sync::engine::reapply::confirm(&bed.env, version, "test")
        .await
        .expect("applied");

    let after = run(&bed.env).await;
    assert_eq!(after.outcome, RunOutcome::Success, "{:?}", after.message);
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert!(
        ledger.quarantined(None).expect("quarantine").is_empty(),
        "the entry is resolved once the mapping knows the state"
    );
    let state = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    assert!(
        state.appointments.contains_key(&record_key),
        "sent after the mapping learnt the state"
    );
    assert!(
        state
            .associations
            .iter()
            .any(|(from, to)| from == &format!("appointment:{record_key}")
                && to.starts_with("contact:")),
        "tied to its contact"
    );
}

/// A record quarantined because it arrived broken is released when Ivoris
/// serves it corrected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrected_record_leaves_the_quarantine() {
    let bed = bed(options(SEED)).await;
    let location = bed.sandbox.locations[0].key.clone();
    let patient = bed
        .sandbox
        .ivoris
        .with_world(|w| w.locations[0].patients[0].clone());
    let mut broken = serde_json::to_value(&patient).expect("json");
    broken["Birthday"] = serde_json::json!("31.02.1985");
    bed.sandbox
        .ivoris
        .replace_raw(&location, RecordKind::Patient, &patient.id, broken)
        .expect("served broken");
    let first = run(&bed.env).await;
    assert_eq!(first.outcome, RunOutcome::Warnings);
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let open = ledger.quarantined(Some(&location)).expect("quarantine");
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].item.record_id.as_deref(), Some(patient.id.as_str()));
    drop(ledger);

    bed.sandbox
        .ivoris
        .clear_raw(&location)
        .expect("served corrected");
    let second = run(&bed.env).await;
    assert_eq!(second.outcome, RunOutcome::Success, "{:?}", second.message);
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert!(ledger.quarantined(None).expect("quarantine").is_empty());
}
