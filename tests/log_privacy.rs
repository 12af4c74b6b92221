//! Invariant 7: a sandbox run's log never contains a patient's name, e-mail,
//! phone number or birthday — at any level, from any module.
//!
//! The run reads every patient, appointment and billing line through the
//! Ivoris simulation, writes every patient as a contact into the HubSpot
//! simulation, searches by e-mail, provokes conflicts and advances the
//! simulated clock, all with a TRACE subscriber capturing every event. The
//! personal values checked are taken from the generated data itself.

use ivoris_hubspot_sync::ivoris::wire::Patient;
use ivoris_hubspot_sync::logging::CapturedLog;
use ivoris_hubspot_sync::sandbox::{Sandbox, SandboxOptions, credentials};
use serde_json::{Value, json};

/// Every personal value of a patient, in the forms a log line could show.
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
