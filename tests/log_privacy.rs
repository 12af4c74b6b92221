//! Invariant 7: a sandbox run's log never contains a patient's name, e-mail,
//! phone number or birthday — at any level, from any module.
//!
//! Two runs. The first reads every patient, appointment and billing line
//! through the Ivoris simulation, writes every patient as a contact into the
//! HubSpot simulation, searches by e-mail, provokes conflicts and advances
//! the simulated clock, all with a TRACE subscriber capturing every event.
//! The second is the product itself: the real binary, its logging set up as
//! the app sets it up (daily file in the data directory, stderr), at TRACE
//! in both, runs the engine with its own clients against an in-process
//! sandbox — a sync with a conflicting e-mail address, `status`, a last
//! name changed by hand in HubSpot found by `duplicates scan`, listed and
//! sent again, a `forget-patient`, a sync after the simulated clock moved
//! on — and its
//! log files and stderr are searched. The personal values checked are taken
//! from the generated data itself.

mod engine_support;

use engine_support::{bed, bin_command, options};
use ivoris_hubspot_sync::ivoris::wire::Patient;
use ivoris_hubspot_sync::logging::CapturedLog;
use ivoris_hubspot_sync::sandbox::{Sandbox, SandboxOptions, credentials};
use serde_json::{Value, json};

/// Every personal value of a patient, in the forms the seed holds them and
/// a log line could show them.
fn personal_values(patient: &Patient) -> Vec<String> {
    let mut values: Vec<String> = [
        &patient.firstname,
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
    // Very short names ("Li") would match unrelated text; they are covered by
    // the full-name form.
    values.retain(|value| value.chars().count() >= 4);
    values
}

async fn ivoris_get(client: &reqwest::Client, url: String, query: &[(&str, &str)]) -> Value {
    client
        .get(url)
        .basic_auth(credentials::IVORIS_USER, Some(credentials::IVORIS_PASSWORD))
        .query(&[
            ("app", credentials::IVORIS_APP),
            ("app_version", credentials::IVORIS_APP_VERSION),
            ("api_key", credentials::IVORIS_API_KEY),
        ])
        .query(query)
        .send()
        .await
        .expect("Ivoris answers")
        .json()
        .await
        .expect("JSON")
}

async fn hubspot_post(client: &reqwest::Client, url: String, body: Value) -> reqwest::StatusCode {
    client
        .post(url)
        .bearer_auth(credentials::HUBSPOT_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("HubSpot answers")
        .status()
}

async fn exercise_sandbox() -> Vec<Patient> {
    let options = SandboxOptions {
        rate_limits: false,
        ..SandboxOptions::default()
    };
    let sandbox = Sandbox::start(options).await.expect("sandbox starts");
    let client = reqwest::Client::new();
    let hubspot = sandbox.hubspot_url.clone();

    let mut patients = Vec::new();
    for location in &sandbox.locations {
        let base = &location.ivoris_url;
        for page in 0.. {
            let page = page.to_string();
            let body = ivoris_get(
                &client,
                format!("{base}/Patient/v1/AllPatients"),
                &[("page", &page)],
            )
            .await;
            let listed: Vec<Patient> = serde_json::from_value(body).expect("patients");
            if listed.is_empty() {
                break;
            }
            patients.extend(listed);
        }
        ivoris_get(
            &client,
            format!("{base}/Appointment/v1/AllAppointments"),
            &[
                ("profileId", &location.profile_id),
                ("begin", "2024-01-01"),
                ("end", "2026-12-31"),
            ],
        )
        .await;
    }
    for patient in patients.iter().take(20) {
        let location = &sandbox.locations[0];
        ivoris_get(
            &client,
            format!("{}/Documentation/v1/DocumentEntries", location.ivoris_url),
            &[
                ("patientId", &patient.id),
                ("profileId", &location.profile_id),
            ],
        )
        .await;
    }

    let property = json!({"name": "ivoris_patient_key", "label": "Ivoris-Patient", "type": "string",
        "fieldType": "text", "groupName": "contactinformation", "hasUniqueValue": true});
    hubspot_post(
        &client,
        format!("{hubspot}/crm/v3/properties/contacts"),
        property,
    )
    .await;
    let inputs: Vec<Value> = patients
        .iter()
        .enumerate()
        .map(|(n, p)| {
            json!({"idProperty": "ivoris_patient_key", "id": format!("p:{n}"), "properties": {
                "firstname": p.firstname, "lastname": p.lastname, "phone": p.phone,
                "email": p.email.clone().map(|e| format!("{n}.{e}")),
                "date_of_birth": p.birthday.map(|b| b.format("%Y-%m-%d").to_string())}})
        })
        .collect();
    for chunk in inputs.chunks(100) {
        let status = hubspot_post(
            &client,
            format!("{hubspot}/crm/v3/objects/contacts/batch/upsert"),
            json!({"inputs": chunk}),
        )
        .await;
        assert!(status.is_success(), "upsert: {status}");
    }
    if let Some(email) = patients.iter().find_map(|p| p.email.clone()) {
        let search = json!({"filterGroups": [{"filters": [
            {"propertyName": "email", "operator": "EQ", "value": format!("0.{email}")}]}],
            "properties": ["email"], "limit": 10});
        hubspot_post(
            &client,
            format!("{hubspot}/crm/v3/objects/contacts/search"),
            search,
        )
        .await;
        // A second contact with an e-mail that exists: refused with a message.
        let duplicate =
            json!({"properties": {"email": format!("0.{email}"), "lastname": "Doppelt"}});
        let status = hubspot_post(
            &client,
            format!("{hubspot}/crm/v3/objects/contacts"),
            duplicate,
        )
        .await;
        assert_eq!(status, 409);
    }
    sandbox.ivoris.advance_days(3);
    sandbox.shutdown().await;
    patients
}

#[test]
fn a_sandbox_run_logs_no_personal_data() {
    let log = CapturedLog::new();
    tracing::subscriber::set_global_default(log.subscriber())
        .expect("first subscriber of this binary");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let patients = runtime.block_on(exercise_sandbox());

    let text = log.contents();
    assert!(patients.len() > 100, "{} patients read", patients.len());
    assert!(
        text.contains("sandbox started") && text.contains("ivoris sandbox request"),
        "capture is empty"
    );
    for patient in &patients {
        for value in personal_values(patient) {
            assert!(
                !text.contains(&value),
                "personal value of patient {} in the log",
                patient.id
            );
        }
    }
}

/// Every synthetic patient of the bed's sandbox, with its location.
fn sandbox_patients(bed: &engine_support::Bed) -> Vec<(String, Patient)> {
    bed.sandbox.ivoris.with_world(|world| {
        world
            .locations
            .iter()
            .flat_map(|l| l.patients.iter().map(|p| (l.key.clone(), p.clone())))
            .collect()
    })
}

/// Runs the binary; returns its stderr (its stdout is for the user and may
/// name what the user asked for).
fn product(bed: &engine_support::Bed, args: &[&str]) -> String {
    let output = bin_command(bed, args[0])
        .args(&args[1..])
        .arg("-vv")
        .env("RUST_LOG", "trace")
        .output()
        .expect("the binary runs");
    assert!(
        matches!(output.status.code(), Some(0 | 3)),
        "{args:?}: {output:?}"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_products_log_files_and_stderr_hold_no_personal_data_after_a_sync() {
    let bed = bed(options(1401)).await;
    let patients = sandbox_patients(&bed);
    assert!(patients.len() > 100, "{} patients", patients.len());
    // Two patients at different locations share an address: the load
    // resolves the conflict and logs about it.
    let (first, second) = (
        &patients[0],
        patients
            .iter()
            .find(|(l, _)| *l != patients[0].0)
            .expect("two locations"),
    );
    if let Some(email) = &first.1.email {
        bed.sandbox
            .ivoris
            .set_patient_email(&second.0, &second.1.id, Some(email))
            .expect("shared address");
    }

    let mut stderr = product(&bed, &["sync"]);
    stderr.push_str(&product(&bed, &["status"]));
    // A last name changed by hand in HubSpot: the scan finds it, the list
    // shows it masked, „resend“ makes the next sync write it back.
    let changed = patients[3..]
        .iter()
        .find_map(|(location, patient)| {
            let key = format!("{location}:{}", patient.id);
            let lastname = patient
                .lastname
                .clone()
                .filter(|n| n.chars().count() >= 4)?;
            let contact = bed
                .sandbox
                .hubspot
                .records("contacts")
                .expect("contacts")
                .into_iter()
                .find(|c| {
                    c.properties.get("ivoris_patient_key") == Some(&key)
                        && !c
                            .properties
                            .get("ivoris_patient_keys")
                            .is_some_and(|k| k.contains(';'))
                })?;
            Some((contact.id, lastname))
        })
        .expect("a contact of its own");
    let edited = format!("{}-Hand", changed.1);
    bed.sandbox
        .hubspot
        .edit_by_hand("contacts", &changed.0, &[("lastname", edited.as_str())])
        .expect("edited by hand");
    stderr.push_str(&product(&bed, &["duplicates", "scan"]));
    let listed = bin_command(&bed, "duplicates")
        .arg("list")
        .output()
        .expect("the binary runs");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("lastname: pii:"), "{listed}");
    assert!(!listed.contains(&changed.1), "the list masks the values");
    stderr.push_str(&product(&bed, &["duplicates", "resend"]));
    let (location, forgotten) = &patients[2];
    stderr.push_str(&product(
        &bed,
        &[
            "forget-patient",
            "--yes",
            "--location",
            location,
            "--patient",
            &forgotten.id,
        ],
    ));
    bed.sandbox.ivoris.advance_days(2);
    stderr.push_str(&product(&bed, &["sync"]));

    let logs = bed.dir.path().join("data").join("logs");
    let mut files = String::new();
    for entry in std::fs::read_dir(&logs).expect("the log directory") {
        files.push_str(&std::fs::read_to_string(entry.expect("entry").path()).expect("log file"));
    }
    assert!(
        files.contains("ivoris extraction finished") && files.contains("patient forgotten"),
        "the log files were written"
    );
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "stderr was captured at -vv"
    );
    // Patients as they are now too (the clock moved on: changed records).
    let mut checked = patients.clone();
    checked.extend(sandbox_patients(&bed));
    let mut found = Vec::new();
    for (_, patient) in &checked {
        for value in personal_values(patient) {
            for (name, text) in [("log file", &files), ("stderr", &stderr)] {
                if text.contains(&value) {
                    found.push(format!("{name}: a value of patient {}", patient.id));
                }
            }
        }
    }
    assert!(found.is_empty(), "personal data logged: {found:?}");
}
