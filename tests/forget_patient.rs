//! GDPR erasure (Art. 17): `forget-patient` after a sandbox sync leaves no
//! personal value of the patient in the ledger file, the log files or the
//! HubSpot simulation (contact deleted, deals and appointment records
//! archived without the name); the next sync re-creates nothing and writes
//! nothing; lifting the tombstone makes the next sync create the patient
//! again. A contact shared with a patient at another location is refused
//! without `all_locations`; a held writer lock refuses (exit code 4).
//!
//! The personal values are taken from the sandbox's generated Ivoris data,
//! not from the product.

mod engine_support;

use std::collections::BTreeSet;
use std::path::Path;

use engine_support::{Bed, bed, bin_command, options, run};
use ivoris_hubspot_sync::engine::forget::{self, ForgetError, ForgetRequest};
use ivoris_hubspot_sync::ivoris::wire::Patient;
use ivoris_hubspot_sync::ledger::lock::WriterLock;
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::logging::{self, LogOptions};
use ivoris_hubspot_sync::sandbox::hubspot::HubSpotSim;
use tracing_subscriber::filter::LevelFilter;

/// A patient of the sandbox whose personal values appear nowhere else in
/// the generated data, so finding one of them can only mean this patient.
fn distinctive_patient(bed: &Bed) -> (String, Patient, Vec<String>) {
    bed.sandbox.ivoris.with_world(|world| {
        let mut others = String::new();
        for location in &world.locations {
            for patient in &location.patients {
                others.push_str(&serde_json::to_string(patient).expect("json"));
            }
            for appointment in &location.appointments {
                others.push_str(&serde_json::to_string(appointment).expect("json"));
            }
        }
        for location in &world.locations {
            for patient in &location.patients {
                let values = personal_values(patient);
                let complete = patient.email.is_some()
                    && (patient.phone.is_some() || patient.mobile.is_some())
                    && patient
                        .birthday
                        .is_some_and(|b| chrono::Datelike::year(&b.date()) < 2010)
                    && values.len() >= 6;
                let own = serde_json::to_string(patient).expect("json");
                // Each value occurs in the world exactly as often as in the
                // patient's own record.
                if complete
                    && values.iter().all(|v| {
                        others.matches(v.as_str()).count() == own.matches(v.as_str()).count()
                    })
                {
                    return (location.key.clone(), patient.clone(), values);
                }
            }
        }
        panic!("no patient with distinctive values in the sandbox");
    })
}

/// Name, e-mail, phone and birthday in the forms they appear in the seed
/// and could appear in a file.
fn personal_values(patient: &Patient) -> Vec<String> {
    let mut values: Vec<String> = [
        &patient.lastname,
        &patient.email,
        &patient.phone,
        &patient.mobile,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    if let (Some(first), Some(last)) = (&patient.firstname, &patient.lastname) {
        values.push(format!("{first} {last}"));
    }
    if let Some(birthday) = patient.birthday {
        values.push(birthday.format("%Y-%m-%d").to_string());
        values.push(birthday.format("%d.%m.%Y").to_string());
    }
    values.retain(|value| value.chars().count() >= 5);
    values
}

/// The ledger file and its WAL after a checkpoint, as bytes.
fn ledger_bytes(path: &Path) -> Vec<u8> {
    Ledger::open(path)
        .expect("ledger")
        .checkpoint()
        .expect("checkpoint");
    let mut bytes = std::fs::read(path).expect("ledger file");
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    bytes.extend(std::fs::read(wal).unwrap_or_default());
    bytes
}

fn found_in(bytes: &[u8], values: &[String]) -> Vec<String> {
    values
        .iter()
        .filter(|v| bytes.windows(v.len()).any(|w| w == v.as_bytes()))
        .cloned()
        .collect()
}

/// Every stored record of the HubSpot simulation, archived ones included,
/// as text.
fn hubspot_text(sim: &HubSpotSim) -> String {
    ["contacts", "deals", "appointments"]
        .iter()
        .flat_map(|t| sim.records(t).expect("records"))
        .map(|r| format!("{:?}", r.properties))
        .collect()
}

/// Live (not archived) records of a type whose unique key is in `keys`.
fn live_with_keys(
    sim: &HubSpotSim,
    object: &str,
    property: &str,
    keys: &BTreeSet<String>,
) -> usize {
    sim.records(object)
        .expect("records")
        .iter()
        .filter(|r| !r.archived && r.properties.get(property).is_some_and(|k| keys.contains(k)))
        .count()
}

fn keys_of(ledger: &Ledger, location: &str, patient: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let conn = ledger.connection();
    let collect = |sql: &str| -> BTreeSet<String> {
        let mut statement = conn.prepare(sql).expect("query");
        statement
            .query_map([location, patient], |row| row.get::<_, String>(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("keys")
    };
    (
        collect("SELECT case_key FROM cases WHERE location_key = ?1 AND patient_id = ?2"),
        collect(
            "SELECT location_key || ':' || ivoris_id FROM appointments WHERE location_key = ?1 AND patient_id = ?2",
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_patient_leaves_no_trace_and_comes_back_only_when_lifted() {
    let bed = bed(options(1301)).await;
    let logs = bed.dir.path().join("logs");
    let guard = logging::init(&LogOptions {
        dir: Some(logs.clone()),
        stderr_level: LevelFilter::WARN,
        file_filter: "ivoris_hubspot_sync=debug,info".into(),
        live: None,
    })
    .expect("the only logging of this test binary");
    let first = run(&bed.env).await;
    assert_eq!(first.outcome, RunOutcome::Success, "{:?}", first.message);

    let (location, patient, values) = distinctive_patient(&bed);
    let number = patient.human_readable_id.clone().expect("patient number");
    let contact_key = BTreeSet::from([format!("{location}:{}", patient.id)]);
    let (deals, appointments) = {
        let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
        keys_of(&ledger, &location, &patient.id)
    };
    assert!(
        !deals.is_empty() && !appointments.is_empty(),
        "the patient has a journey"
    );
    let sim = &bed.sandbox.hubspot;
    assert_eq!(
        live_with_keys(sim, "contacts", "ivoris_patient_key", &contact_key),
        1
    );
    assert!(
        !found_in(&ledger_bytes(&bed.env.ledger_path), &values).is_empty(),
        "before: the ledger holds the patient's values (the search works)"
    );
    assert!(!found_in(hubspot_text(sim).as_bytes(), &values).is_empty());

    let report = forget::forget_patient(
        &bed.env,
        &ForgetRequest {
            location: location.clone(),
            patient: number.clone(),
            all_locations: false,
        },
    )
    .await
    .expect("forgotten");
    assert_eq!(report.pending, 0, "{:?}", report.hubspot_error);
    assert_eq!(report.erased as usize, 1 + deals.len() + appointments.len());

    let left = found_in(&ledger_bytes(&bed.env.ledger_path), &values);
    assert!(
        left.is_empty(),
        "ledger still holds {} personal values",
        left.len()
    );
    assert!(
        found_in(hubspot_text(sim).as_bytes(), &values).is_empty(),
        "HubSpot still holds a personal value"
    );
    assert_eq!(
        live_with_keys(sim, "contacts", "ivoris_patient_key", &contact_key),
        0
    );
    let contacts = sim.records("contacts").expect("contacts");
    assert!(
        !contacts.iter().any(|r| r
            .properties
            .get("ivoris_patient_key")
            .is_some_and(|k| contact_key.contains(k))),
        "the contact is deleted, not archived"
    );
    assert_eq!(live_with_keys(sim, "deals", "ivoris_case_key", &deals), 0);
    assert_eq!(
        live_with_keys(sim, "appointments", "ivoris_appointment_key", &appointments),
        0
    );
    let archived_deals = sim
        .records("deals")
        .expect("deals")
        .into_iter()
        .filter(|r| {
            r.archived
                && r.properties
                    .get("ivoris_case_key")
                    .is_some_and(|k| deals.contains(k))
        })
        .count();
    assert_eq!(archived_deals, deals.len(), "deals archived");

    let again = run(&bed.env).await;
    assert_eq!(again.outcome, RunOutcome::Success, "{:?}", again.message);
    assert_eq!(
        again.counts.written, 0,
        "the next sync writes nothing: {:?}",
        again.load
    );
    assert_eq!(
        live_with_keys(sim, "contacts", "ivoris_patient_key", &contact_key),
        0
    );
    let left = found_in(&ledger_bytes(&bed.env.ledger_path), &values);
    assert!(
        left.is_empty(),
        "the next sync stored {} personal values",
        left.len()
    );
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let tombstones = ledger.tombstones().expect("tombstones");
    assert_eq!(tombstones.len(), 1);
    assert_eq!(tombstones[0].patient.patient_id, patient.id);
    assert!(
        ledger
            .audit_log(Some(&format!("{location}:{}", patient.id)), 10)
            .expect("audit")
            .iter()
            .any(|e| e.entry.action == "patient.forget")
    );
    drop(ledger);

    // By number the mirror no longer knows it: lifting takes the Ivoris id.
    assert!(matches!(
        forget::lift(&bed.env.ledger_path, &location, &number),
        Err(ForgetError::UnknownPatient { .. })
    ));
    assert!(forget::lift(&bed.env.ledger_path, &location, &patient.id).expect("lifted"));
    let lifted = run(&bed.env).await;
    assert_eq!(lifted.outcome, RunOutcome::Success, "{:?}", lifted.message);
    assert_eq!(
        live_with_keys(sim, "contacts", "ivoris_patient_key", &contact_key),
        1
    );
    assert_eq!(
        live_with_keys(sim, "deals", "ivoris_case_key", &deals),
        deals.len()
    );
    assert_eq!(
        live_with_keys(sim, "appointments", "ivoris_appointment_key", &appointments),
        appointments.len()
    );
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert!(ledger.tombstones().expect("tombstones").is_empty());
    drop(ledger);

    drop(guard);
    let mut log_text = String::new();
    for file in std::fs::read_dir(&logs).expect("logs") {
        log_text.push_str(&std::fs::read_to_string(file.expect("entry").path()).expect("log"));
    }
    assert!(
        log_text.contains("patient forgotten"),
        "the file log was written"
    );
    assert!(
        found_in(log_text.as_bytes(), &values).is_empty(),
        "a personal value in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_shared_across_locations_is_forgotten_only_for_all_and_never_under_a_sync() {
    let bed = bed(options(1302)).await;
    let first = run(&bed.env).await;
    assert_eq!(first.outcome, RunOutcome::Success, "{:?}", first.message);
    let (one, other) = bed.sandbox.ivoris.with_world(|world| {
        let a = &world.locations[0];
        let b = &world.locations[1];
        (
            (a.key.clone(), a.patients[0].id.clone()),
            (b.key.clone(), b.patients[0].id.clone()),
        )
    });
    // The same person at two locations shares one contact (the load links
    // them over their e-mail address); here the link is made directly.
    let shared = {
        let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
        let conn = ledger.connection();
        let id: String = conn
            .query_row(
                "SELECT hubspot_id FROM hubspot_records WHERE kind = 'contact' AND record_key = ?1",
                [format!("{}:{}", one.0, one.1)],
                |row| row.get(0),
            )
            .expect("contact id");
        conn.execute(
            "UPDATE hubspot_records SET hubspot_id = ?1 WHERE kind = 'contact' AND record_key = ?2",
            [&id, &format!("{}:{}", other.0, other.1)],
        )
        .expect("linked");
        id
    };

    let request = ForgetRequest {
        location: one.0.clone(),
        patient: one.1.clone(),
        all_locations: false,
    };
    {
        let _sync = WriterLock::acquire(&bed.env.ledger_path, "sync (test)").expect("lock");
        let refused = forget::forget_patient(&bed.env, &request).await;
        assert!(
            matches!(refused, Err(ForgetError::Locked(_))),
            "{refused:?}"
        );
        let cli = bin_command(&bed, "forget-patient")
            .args(["--yes", "--location", &one.0, "--patient", &one.1])
            .output()
            .expect("forget-patient runs");
        assert_eq!(cli.status.code(), Some(4), "{cli:?}");
        assert!(String::from_utf8_lossy(&cli.stderr).contains("Eine andere Synchronisation"));
    }

    let refused = forget::forget_patient(&bed.env, &request).await;
    match refused {
        Err(error @ ForgetError::LinkedElsewhere(_)) => {
            let text = error.to_string();
            assert!(
                text.contains(&format!("{}:{}", other.0, other.1))
                    && text.contains("--all-locations"),
                "{text}"
            );
        }
        other => panic!("not refused: {other:?}"),
    }
    let cli = bin_command(&bed, "forget-patient")
        .args(["--yes", "--location", &one.0, "--patient", &one.1])
        .output()
        .expect("forget-patient runs");
    assert_eq!(cli.status.code(), Some(1), "{cli:?}");
    assert!(String::from_utf8_lossy(&cli.stderr).contains("--all-locations"));
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert!(
        ledger.tombstones().expect("tombstones").is_empty(),
        "nothing forgotten"
    );
    drop(ledger);

    let cli = bin_command(&bed, "forget-patient")
        .args([
            "--yes",
            "--all-locations",
            "--location",
            &one.0,
            "--patient",
            &one.1,
        ])
        .output()
        .expect("forget-patient runs");
    assert_eq!(cli.status.code(), Some(0), "{cli:?}");
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let forgotten: Vec<(String, String)> = ledger
        .tombstones()
        .expect("tombstones")
        .into_iter()
        .map(|t| (t.patient.location, t.patient.patient_id))
        .collect();
    let mut expected = vec![one.clone(), other.clone()];
    expected.sort();
    assert_eq!(forgotten, expected);
    assert!(
        !bed.sandbox
            .hubspot
            .records("contacts")
            .expect("contacts")
            .iter()
            .any(|r| r.id == shared),
        "the shared contact is deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_a_backup_from_before_the_erasure_does_not_bring_the_patient_back() {
    let bed = bed(options(1303)).await;
    let first = run(&bed.env).await;
    assert_eq!(first.outcome, RunOutcome::Success, "{:?}", first.message);
    let (location, patient, values) = distinctive_patient(&bed);
    let key = BTreeSet::from([format!("{location}:{}", patient.id)]);
    let saved = bed.dir.path().join("vorher.sqlite");
    ivoris_hubspot_sync::ledger::backup::backup(&bed.env.ledger_path, &saved).expect("backup");

    let report = forget::forget_patient(
        &bed.env,
        &ForgetRequest {
            location: location.clone(),
            patient: patient.id.clone(),
            all_locations: false,
        },
    )
    .await
    .expect("forgotten");
    assert_eq!(report.pending, 0, "{:?}", report.hubspot_error);
    ivoris_hubspot_sync::ledger::backup::restore(&bed.env.ledger_path, &saved).expect("restored");

    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert_eq!(
        ledger.tombstones().expect("tombstones").len(),
        1,
        "still forgotten"
    );
    assert_eq!(
        ledger.find_patient(&location, &patient.id).expect("query"),
        None
    );
    drop(ledger);
    assert!(found_in(&ledger_bytes(&bed.env.ledger_path), &values).is_empty());
    let after = run(&bed.env).await;
    assert_eq!(after.outcome, RunOutcome::Success, "{:?}", after.message);
    let sim = &bed.sandbox.hubspot;
    assert_eq!(
        live_with_keys(sim, "contacts", "ivoris_patient_key", &key),
        0,
        "not re-created"
    );
}
