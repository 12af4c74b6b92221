//! Throughput of the simulated HubSpot API: batch upserts of contacts over
//! HTTP on 127.0.0.1 with rate limits and faults off, as the sync engine's
//! benchmarks will drive it. Prints records per second for a first pass
//! (creates) and a second pass (updates of the same keys).

use std::sync::Arc;
use std::time::Instant;

use ivoris_hubspot_sync::sandbox::hubspot::{HubSpotSim, HubSpotSimConfig, router};
use ivoris_hubspot_sync::sandbox::{SandboxOptions, credentials};
use serde_json::{Value, json};

const RECORDS: usize = 100_000;
const BATCH: usize = 100;
const CLIENTS: usize = 4;

fn batch(start: usize, pass: usize) -> Value {
    let inputs: Vec<Value> = (start..start + BATCH)
        .map(|i| {
            json!({
                "idProperty": "ivoris_patient_key",
                "id": format!("mag:{i}"),
                "properties": {
                    "firstname": format!("Vorname {i}"),
                    "lastname": format!("Nachname {pass}"),
                    "email": format!("patient{i}@example.org"),
                    "city": "Magdeburg",
                    "zip": "39104",
                },
            })
        })
        .collect();
    json!({ "inputs": inputs })
}

async fn pass(base: &str, pass: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let base = base.to_string();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut start = client_index * BATCH;
            while start < RECORDS {
                let response = http
                    .post(format!("{base}/crm/v3/objects/contacts/batch/upsert"))
                    .bearer_auth(credentials::HUBSPOT_TOKEN)
                    .json(&batch(start, pass))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status().as_u16(), 200);
                response.bytes().await.expect("body");
                start += CLIENTS * BATCH;
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    RECORDS as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let options = SandboxOptions {
            rate_limits: false,
            ..SandboxOptions::default()
        };
        let sim = Arc::new(HubSpotSim::new(HubSpotSimConfig::from_options(&options)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = router(sim.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let created = reqwest::Client::new()
            .post(format!("{base}/crm/v3/properties/contacts"))
            .bearer_auth(credentials::HUBSPOT_TOKEN)
            .json(
                &json!({"name": "ivoris_patient_key", "label": "Ivoris-Patientenschlüssel",
                          "type": "string", "fieldType": "text", "groupName": "contactinformation",
                          "hasUniqueValue": true}),
            )
            .send()
            .await
            .expect("property");
        assert_eq!(created.status().as_u16(), 201);

        let first = pass(&base, 1).await;
        println!("batch upsert, {RECORDS} new contacts, {CLIENTS} clients: {first:.0} records/s");
        let second = pass(&base, 2).await;
        println!(
            "batch upsert, {RECORDS} updated contacts, {CLIENTS} clients: {second:.0} records/s"
        );
        assert_eq!(sim.snapshot().objects["contacts"].len(), RECORDS);
    });
}
