//! The simulated HubSpot API over real HTTP on 127.0.0.1: paths, bodies,
//! unique values, batch semantics, search, associations, limits, faults.
//! Each test would fail without the behaviour it names.

use std::sync::Arc;
use std::time::Duration;

use ivoris_hubspot_sync::sandbox::hubspot::{FaultSettings, HubSpotSim, HubSpotSimConfig, router};
use ivoris_hubspot_sync::sandbox::{BatchFailures, SandboxOptions, credentials};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// A running simulation and a client for it.
struct Hs {
    base: String,
    sim: Arc<HubSpotSim>,
    http: reqwest::Client,
    token: String,
}

/// One answer: status, headers, JSON body (`Null` when empty).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<u64> {
        self.headers.get(name)?.to_str().ok()?.parse().ok()
    }
}

async fn start() -> Hs {
    start_with(|options| options.rate_limits = false).await
}

async fn start_with(configure: impl FnOnce(&mut SandboxOptions)) -> Hs {
    let mut options = SandboxOptions::default();
    configure(&mut options);
    let sim = Arc::new(HubSpotSim::new(HubSpotSimConfig::from_options(&options)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(sim.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Hs {
        base,
        sim,
        http: reqwest::Client::new(),
        token: credentials::HUBSPOT_TOKEN.to_string(),
    }
}

impl Hs {
    async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Result<Answer> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        self.try_call(method, path, body).await.unwrap()
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(&body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(&body)).await
    }

    async fn raw_post(&self, path: &str, body: &'static [u8]) -> Answer {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Creates a unique-valued string property (the sync's key properties).
    async fn unique_property(&self, object_type: &str, name: &str) {
        let group = match object_type {
            "contacts" => "contactinformation",
            "deals" => "dealinformation",
            _ => "appointment_information",
        };
        let answer = self
            .post(
                &format!("/crm/v3/properties/{object_type}"),
                json!({"name": name, "label": name, "type": "string", "fieldType": "text",
                       "groupName": group, "hasUniqueValue": true}),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
    }

    async fn create(&self, object_type: &str, properties: Value) -> String {
        let answer = self
            .post(
                &format!("/crm/v3/objects/{object_type}"),
                json!({"properties": properties}),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body["id"].as_str().unwrap().to_string()
    }

    async fn search(&self, object_type: &str, body: Value) -> Answer {
        self.post(&format!("/crm/v3/objects/{object_type}/search"), body)
            .await
    }
}

fn upsert_body(rows: &[(&str, &str)]) -> Value {
    let inputs: Vec<Value> = rows
        .iter()
        .map(|(key, name)| {
            json!({"idProperty": "ivoris_patient_key", "id": key, "properties": {"firstname": name}})
        })
        .collect();
    json!({ "inputs": inputs })
}

fn ids(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn both_path_families_and_type_aliases_reach_the_same_records() {
    let hs = start().await;
    let contact = hs
        .create("contacts", json!({"email": "anna@example.org"}))
        .await;
    let answer = hs
        .get(&format!("/crm/objects/2026-03/contacts/{contact}"))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["properties"]["email"], "anna@example.org");
    assert_eq!(
        hs.get(&format!("/crm/objects/2027-09/0-1/{contact}"))
            .await
            .status,
        200
    );

    let deal = hs.create("0-3", json!({"dealname": "Implantat"})).await;
    let answer = hs
        .get(&format!(
            "/crm/objects/2026-03/deals/{deal}?properties=dealname"
        ))
        .await;
    assert_eq!(answer.body["properties"]["dealname"], "Implantat");
    assert_eq!(answer.body["properties"]["hs_object_id"], deal.as_str());
    assert!(answer.body["properties"]["hs_lastmodifieddate"].is_string());
    assert!(answer.body["createdAt"].is_string() && answer.body["archived"] == false);
    let contact_read = hs
        .get(&format!(
            "/crm/v3/objects/contacts/{contact}?properties=hs_lastmodifieddate"
        ))
        .await;
    assert!(contact_read.body["properties"]["hs_lastmodifieddate"].is_string());
    assert!(contact_read.body["properties"]["lastmodifieddate"].is_string());

    let associated = hs
        .post(
            "/crm/associations/2026-03/0-3/contacts/batch/associate/default",
            json!({"inputs": [{"from": {"id": deal}, "to": {"id": contact}}]}),
        )
        .await;
    assert_eq!(associated.status, 200, "{}", associated.body);
    let read = hs
        .post(
            "/crm/v4/associations/contacts/deals/batch/read",
            json!({"inputs": [{"id": contact}]}),
        )
        .await;
    assert_eq!(
        read.body["results"][0]["to"][0]["toObjectId"].to_string(),
        deal
    );

    let counters = hs.sim.counters();
    assert_eq!(counters.requests["POST /crm/v3/objects/deals"], 1);
    assert_eq!(counters.requests["GET /crm/objects/2026-03/deals/{id}"], 1);
    assert_eq!(hs.get("/crm/v3/objects/companies").await.status, 400);
    let missing = hs.get("/crm/v9/nothing").await;
    assert_eq!(
        (missing.status, missing.body["status"].as_str()),
        (404, Some("error"))
    );
}

#[tokio::test]
async fn upsert_twice_keeps_ids_and_reports_new_false() {
    let hs = start().await;
    hs.unique_property("contacts", "ivoris_patient_key").await;
    let rows = [("mag:1", "Jörg"), ("mag:2", "Ümit")];
    let first = hs
        .post("/crm/v3/objects/contacts/batch/upsert", upsert_body(&rows))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        first.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["new"] == true)
    );
    for field in ["status", "startedAt", "completedAt"] {
        assert!(first.body[field].is_string(), "{field} missing");
    }
    let second = hs
        .post(
            "/crm/objects/2026-03/contacts/batch/upsert",
            upsert_body(&[("mag:1", "Jörg B."), ("mag:2", "Ümit")]),
        )
        .await;
    assert!(
        second.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["new"] == false)
    );
    let mut a = ids(&first.body);
    let mut b = ids(&second.body);
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(hs.sim.snapshot().objects["contacts"].len(), 2);

    let read = hs
        .post(
            "/crm/v3/objects/contacts/batch/read",
            json!({"idProperty": "ivoris_patient_key", "inputs": [{"id": "mag:1"}],
                   "properties": ["firstname"], "propertiesWithHistory": []}),
        )
        .await;
    assert_eq!(
        read.body["results"][0]["properties"]["firstname"],
        "Jörg B."
    );

    let not_unique = hs
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": [{"idProperty": "firstname", "id": "x", "properties": {}}]}),
        )
        .await;
    assert_eq!(not_unique.status, 400);
    let by_email = hs
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": [{"idProperty": "email", "id": "neu@example.org", "properties": {"lastname": "Neu"}}]}),
        )
        .await;
    assert_eq!(by_email.status, 200, "{}", by_email.body);
    let duplicate_ids = hs
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            upsert_body(&[("k", "a"), ("k", "b")]),
        )
        .await;
    assert_eq!(duplicate_ids.status, 400);
}

#[tokio::test]
async fn unique_values_are_refused_on_every_write_path() {
    let hs = start().await;
    hs.unique_property("deals", "ivoris_case_key").await;
    let first = hs
        .create("deals", json!({"ivoris_case_key": "mag:10"}))
        .await;
    let other = hs
        .create("deals", json!({"ivoris_case_key": "mag:11"}))
        .await;

    let created = hs
        .post(
            "/crm/v3/objects/deals",
            json!({"properties": {"ivoris_case_key": "mag:10"}}),
        )
        .await;
    assert_eq!(created.status, 409);
    assert_eq!(created.body["category"], "CONFLICT");
    assert!(
        created.body["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("Existing ID: {first}"))
    );

    let updated = hs
        .patch(
            &format!("/crm/v3/objects/deals/{other}"),
            json!({"properties": {"ivoris_case_key": "mag:10"}}),
        )
        .await;
    assert_eq!(updated.status, 409);
    let batch_updated = hs
        .post(
            "/crm/v3/objects/deals/batch/update",
            json!({"inputs": [{"id": other, "properties": {"ivoris_case_key": "mag:10"}}]}),
        )
        .await;
    assert_eq!(batch_updated.status, 409);
    let upserted = hs
        .post(
            "/crm/v3/objects/deals/batch/upsert",
            json!({"inputs": [{"idProperty": "ivoris_case_key", "id": "mag:11",
                               "properties": {"ivoris_case_key": "mag:10"}}]}),
        )
        .await;
    assert_eq!(upserted.status, 409);

    // Without trace ids one bad input fails the whole call and nothing is written.
    let whole = hs
        .post(
            "/crm/v3/objects/deals/batch/create",
            json!({"inputs": [{"properties": {"ivoris_case_key": "mag:12"}},
                              {"properties": {"ivoris_case_key": "mag:10"}}]}),
        )
        .await;
    assert_eq!(whole.status, 409);
    assert_eq!(hs.sim.snapshot().objects["deals"].len(), 2);

    // With distinct trace ids the good input is written and the bad one reported.
    let partial = hs
        .post(
            "/crm/v3/objects/deals/batch/create",
            json!({"inputs": [{"properties": {"ivoris_case_key": "mag:12"}, "objectWriteTraceId": "a"},
                              {"properties": {"ivoris_case_key": "mag:10"}, "objectWriteTraceId": "b"}]}),
        )
        .await;
    assert_eq!(partial.status, 207, "{}", partial.body);
    assert_eq!(partial.body["numErrors"], 1);
    let error = &partial.body["errors"][0];
    assert_eq!(
        (error["status"].as_str(), error["category"].as_str()),
        (Some("error"), Some("CONFLICT"))
    );
    assert_eq!(error["context"]["objectWriteTraceId"][0], "b");
    assert!(error["links"].is_object() && error["errors"].is_array());
    assert_eq!(partial.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(hs.sim.snapshot().objects["deals"].len(), 3);

    // The old value is free again once a record lets go of it.
    let freed = hs
        .patch(
            &format!("/crm/v3/objects/deals/{first}"),
            json!({"properties": {"ivoris_case_key": ""}}),
        )
        .await;
    assert_eq!(freed.status, 200);
    assert_eq!(
        hs.patch(
            &format!("/crm/v3/objects/deals/{other}"),
            json!({"properties": {"ivoris_case_key": "mag:10"}})
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn a_second_contact_with_the_same_email_is_a_conflict_naming_the_first() {
    let hs = start().await;
    let first = hs
        .create("contacts", json!({"email": "Lea.Mueller@example.org"}))
        .await;
    let second = hs
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "lea.mueller@EXAMPLE.org"}}),
        )
        .await;
    assert_eq!(second.status, 409);
    assert_eq!(
        second.body["message"],
        format!("Contact already exists. Existing ID: {first}")
    );
    assert!(second.body["correlationId"].is_string());
    assert_eq!(
        second.headers["x-hubspot-correlation-id"],
        second.body["correlationId"].as_str().unwrap()
    );
}

#[tokio::test]
async fn batch_sizes_are_capped() {
    let hs = start().await;
    let inputs: Vec<Value> = (0..101)
        .map(|i| json!({"properties": {"firstname": format!("n{i}")}}))
        .collect();
    let answer = hs
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": inputs}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["category"], "VALIDATION_ERROR");
    let inputs: Vec<Value> = (0..51).map(|i| json!({"id": i.to_string()})).collect();
    let history = hs
        .post(
            "/crm/v3/objects/contacts/batch/read",
            json!({"inputs": inputs, "properties": [], "propertiesWithHistory": ["firstname"]}),
        )
        .await;
    assert_eq!(history.status, 400);
    let inputs: Vec<Value> = (0..100)
        .map(|i| json!({"properties": {"firstname": format!("n{i}")}}))
        .collect();
    let ok = hs
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": inputs}),
        )
        .await;
    assert_eq!(ok.status, 201);
}

#[tokio::test]
async fn property_values_are_validated_like_hubspot() {
    let hs = start().await;
    let unknown = hs
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"shoe_size": "44"}}),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Property values were not valid: [")
    );
    let read_only = hs
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"hs_object_id": "5"}}),
        )
        .await;
    assert_eq!(read_only.status, 400);
    let nested = hs
        .post(
            "/crm/v3/objects/deals",
            json!({"properties": {"amount": {"v": 1}}}),
        )
        .await;
    assert_eq!(nested.status, 400);
    let not_a_number = hs
        .post(
            "/crm/v3/objects/deals",
            json!({"properties": {"amount": "viel"}}),
        )
        .await;
    assert_eq!(not_a_number.status, 400);

    // Numbers are taken as their text, as HubSpot's JSON mapper does.
    let deal = hs
        .post(
            "/crm/v3/objects/deals",
            json!({"properties": {"amount": 171.5, "dealname": "A"}}),
        )
        .await;
    assert_eq!(deal.status, 201);
    assert_eq!(deal.body["properties"]["amount"], "171.5");
    let id = deal.body["id"].as_str().unwrap();
    let cleared = hs
        .patch(
            &format!("/crm/v3/objects/deals/{id}"),
            json!({"properties": {"dealname": ""}}),
        )
        .await;
    assert_eq!(cleared.status, 200);
    assert!(cleared.body["properties"].get("dealname").is_none());
}

#[tokio::test]
async fn property_definitions_are_validated_and_unique_ones_capped_at_ten() {
    let hs = start().await;
    let base = json!({"name": "ivoris_patient_key", "label": "Key", "type": "string",
                      "fieldType": "text", "groupName": "contactinformation", "hasUniqueValue": true});
    let cases: Vec<(Value, u16)> = vec![
        (json!({"name": "x", "label": "X"}), 400),
        (
            json!({"name": "x", "label": "X", "type": "text", "fieldType": "text", "groupName": "contactinformation"}),
            400,
        ),
        (
            json!({"name": "x", "label": "X", "type": "number", "fieldType": "select", "groupName": "contactinformation"}),
            400,
        ),
        (
            json!({"name": "x", "label": "X", "type": "string", "fieldType": "text", "groupName": "nope"}),
            400,
        ),
        (base.clone(), 201),
        (base.clone(), 409),
        (
            json!({"name": "email", "label": "E", "type": "string", "fieldType": "text", "groupName": "contactinformation"}),
            409,
        ),
    ];
    for (body, expected) in cases {
        let answer = hs.post("/crm/v3/properties/contacts", body.clone()).await;
        assert_eq!(answer.status, expected, "{body} → {}", answer.body);
    }
    let read = hs
        .get("/crm/v3/properties/contacts/ivoris_patient_key")
        .await;
    assert_eq!(read.body["hasUniqueValue"], true);
    for field in [
        "description",
        "options",
        "modificationMetadata",
        "createdAt",
        "displayOrder",
    ] {
        assert!(!read.body[field].is_null(), "{field}");
    }
    let changed = hs
        .patch(
            "/crm/v3/properties/contacts/ivoris_patient_key",
            json!({"hasUniqueValue": false}),
        )
        .await;
    assert_eq!(changed.status, 400);
    for i in 1..10 {
        hs.unique_property("contacts", &format!("key_{i}")).await;
    }
    let eleventh = hs
        .post(
            "/crm/v3/properties/contacts",
            json!({"name": "key_10", "label": "K", "type": "string", "fieldType": "text",
                   "groupName": "contactinformation", "hasUniqueValue": true}),
        )
        .await;
    assert_eq!(eleventh.status, 400);
    assert_eq!(hs.get("/crm/v3/properties/contacts/nope").await.status, 404);
    let group = hs
        .post(
            "/crm/v3/properties/contacts/groups",
            json!({"name": "ivoris", "label": "Ivoris"}),
        )
        .await;
    assert_eq!(group.status, 201);
    let groups = hs.get("/crm/v3/properties/contacts/groups").await;
    assert!(
        groups.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "ivoris")
    );
    let list = hs.get("/crm/properties/2026-03/contacts").await;
    assert!(
        list.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "date_of_birth")
    );
}

#[tokio::test]
async fn pipelines_are_seeded_and_deal_stages_validated() {
    let hs = start().await;
    let answer = hs.get("/crm/v3/pipelines/deals").await;
    let pipelines = answer.body["results"].as_array().unwrap();
    let default = pipelines.iter().find(|p| p["id"] == "default").unwrap();
    let stage_ids: Vec<&str> = default["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        stage_ids,
        [
            "appointmentscheduled",
            "qualifiedtobuy",
            "presentationscheduled",
            "decisionmakerboughtin",
            "contractsent",
            "closedwon",
            "closedlost"
        ]
    );
    let journey = pipelines
        .iter()
        .find(|p| p["label"] == "Patientenreise")
        .unwrap();
    let stages = journey["stages"].as_array().unwrap();
    let labels: Vec<&str> = stages
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "Termin gebucht",
            "Erstberatung",
            "In Behandlung",
            "Behandlung abgeschlossen",
            "Verloren"
        ]
    );
    assert_eq!(
        stages[3]["metadata"],
        json!({"probability": "1.0", "isClosed": "true"})
    );
    assert_eq!(
        stages[4]["metadata"],
        json!({"probability": "0.0", "isClosed": "true"})
    );
    assert!(
        stages
            .iter()
            .all(|s| s["id"].as_str().unwrap().parse::<u64>().is_ok())
    );

    let pipeline_id = journey["id"].as_str().unwrap();
    let one = hs
        .get(&format!("/crm/pipelines/2026-03/deals/{pipeline_id}"))
        .await;
    assert_eq!(one.body["label"], "Patientenreise");
    assert_eq!(hs.get("/crm/v3/pipelines/deals/4711").await.status, 404);

    let stage = stages[0]["id"].as_str().unwrap();
    let good = hs
        .post(
            "/crm/v3/objects/deals",
            json!({"properties": {"pipeline": pipeline_id, "dealstage": stage}}),
        )
        .await;
    assert_eq!(good.status, 201);
    let wrong_pipeline = hs
        .post(
            "/crm/v3/objects/deals",
            json!({"properties": {"pipeline": "default", "dealstage": stage}}),
        )
        .await;
    assert_eq!(wrong_pipeline.status, 400);
    let unknown = hs
        .post(
            "/crm/v3/objects/deals",
            json!({"properties": {"dealstage": "gibtsnicht"}}),
        )
        .await;
    assert_eq!(unknown.status, 400);
}

#[tokio::test]
async fn associations_are_idempotent_readable_and_follow_merges() {
    let hs = start().await;
    let contact = hs.create("contacts", json!({"firstname": "Ida"})).await;
    let deal_a = hs.create("deals", json!({"dealname": "A"})).await;
    let deal_b = hs
        .create("deals", json!({"dealname": "B", "amount": "100"}))
        .await;
    let body = json!({"inputs": [{"from": {"id": deal_a}, "to": {"id": contact}}]});
    for _ in 0..2 {
        let answer = hs
            .post(
                "/crm/v4/associations/deals/contacts/batch/associate/default",
                body.clone(),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.body["results"][0]["associationSpec"]["associationTypeId"].is_number());
    }
    let put = hs
        .call(
            Method::PUT,
            &format!("/crm/v4/objects/deals/{deal_b}/associations/default/contacts/{contact}"),
            None,
        )
        .await;
    assert_eq!(put.status, 200);
    let snapshot = hs.sim.snapshot();
    let record = snapshot.objects["contacts"]
        .iter()
        .find(|r| r.id == contact)
        .unwrap();
    assert_eq!(record.associations["deals"].len(), 2);

    let read = hs
        .post(
            "/crm/v4/associations/deals/contacts/batch/read",
            json!({"inputs": [{"id": deal_a}]}),
        )
        .await;
    let to = &read.body["results"][0]["to"][0];
    assert_eq!(to["toObjectId"].to_string(), contact);
    assert_eq!(to["associationTypes"][0]["typeId"], 3);
    assert_eq!(to["associationTypes"][0]["category"], "HUBSPOT_DEFINED");
    let labels = hs.get("/crm/v4/associations/contacts/deals/labels").await;
    assert_eq!(labels.body["results"][0]["typeId"], 4);

    let unknown = hs
        .post(
            "/crm/v4/associations/deals/contacts/batch/associate/default",
            json!({"inputs": [{"from": {"id": deal_a}, "to": {"id": "999999"}}]}),
        )
        .await;
    assert_eq!(unknown.status, 207);
    assert_eq!(unknown.body["errors"][0]["context"]["ids"][0], "999999");

    // Merge B into A: A keeps its id, takes B's amount, the links collapse into one.
    let other = hs.create("contacts", json!({"firstname": "Otto"})).await;
    hs.post(
        "/crm/v4/associations/deals/contacts/batch/associate/default",
        json!({"inputs": [{"from": {"id": deal_b}, "to": {"id": other}}]}),
    )
    .await;
    let merged = hs
        .post(
            "/crm/v3/objects/deals/merge",
            json!({"primaryObjectId": deal_a, "objectIdToMerge": deal_b}),
        )
        .await;
    assert_eq!(merged.status, 200, "{}", merged.body);
    assert_eq!(merged.body["id"], deal_a.as_str());
    assert_eq!(merged.body["properties"]["amount"], "100");
    let snapshot = hs.sim.snapshot();
    assert!(snapshot.objects["deals"].iter().all(|r| r.id != deal_b));
    let primary = snapshot.objects["deals"]
        .iter()
        .find(|r| r.id == deal_a)
        .unwrap();
    let mut linked = primary.associations["contacts"].clone();
    linked.sort();
    let mut expected = vec![contact.clone(), other.clone()];
    expected.sort();
    assert_eq!(linked, expected);
    let other_record = snapshot.objects["contacts"]
        .iter()
        .find(|r| r.id == other)
        .unwrap();
    assert_eq!(other_record.associations["deals"], vec![deal_a.clone()]);
    // The merged-away id answers as the primary.
    let old = hs.get(&format!("/crm/v3/objects/deals/{deal_b}")).await;
    assert_eq!(
        (old.status, old.body["id"].as_str()),
        (200, Some(deal_a.as_str()))
    );

    let archived = hs
        .post(
            "/crm/v4/associations/deals/contacts/batch/archive",
            json!({"inputs": [{"from": {"id": deal_a}, "to": [{"id": other}]}]}),
        )
        .await;
    assert_eq!(archived.status, 204);
    let none = hs
        .post(
            "/crm/v4/associations/contacts/deals/batch/read",
            json!({"inputs": [{"id": other}]}),
        )
        .await;
    assert_eq!(none.status, 207);
}

#[tokio::test]
async fn listing_visits_every_record_exactly_once() {
    let hs = start().await;
    for chunk in 0..3 {
        let inputs: Vec<Value> = (0..90)
            .map(|i| json!({"properties": {"firstname": format!("p{chunk}-{i}")}}))
            .collect();
        assert_eq!(
            hs.post(
                "/crm/v3/objects/contacts/batch/create",
                json!({"inputs": inputs})
            )
            .await
            .status,
            201
        );
    }
    let archived_id = hs.create("contacts", json!({"firstname": "weg"})).await;
    hs.call(
        Method::DELETE,
        &format!("/crm/v3/objects/contacts/{archived_id}"),
        None,
    )
    .await;

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(after) => {
                format!("/crm/v3/objects/contacts?limit=100&properties=firstname&after={after}")
            }
            None => "/crm/v3/objects/contacts?limit=100&properties=firstname".to_string(),
        };
        let page = hs.get(&path).await;
        seen.extend(ids(&page.body));
        match page.body["paging"]["next"]["after"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(seen.len(), 270);
    assert_eq!(unique.len(), 270);
    assert!(!seen.contains(&archived_id));
    let archived = hs.get("/crm/v3/objects/contacts?archived=true").await;
    assert_eq!(ids(&archived.body), vec![archived_id]);
}

async fn names(hs: &Hs, filter_groups: Value) -> Vec<String> {
    let answer = hs
        .search(
            "deals",
            json!({"filterGroups": filter_groups, "properties": ["dealname"], "limit": 100,
                                "sorts": [{"propertyName": "dealname", "direction": "ASCENDING"}]}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["properties"]["dealname"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn search_operators_filter_as_hubspot_does() {
    let hs = start().await;
    for (name, amount, closed) in [
        ("Alpha Brücke", Some("9"), Some("2026-01-10T00:00:00Z")),
        ("beta krone", Some("100"), None),
        (
            "Gamma Implantat",
            Some("25.5"),
            Some("2026-03-01T00:00:00Z"),
        ),
        ("Delta", None, None),
    ] {
        let mut properties = json!({"dealname": name});
        if let Some(amount) = amount {
            properties["amount"] = json!(amount);
        }
        if let Some(closed) = closed {
            properties["closedate"] = json!(closed);
        }
        hs.create("deals", properties).await;
    }
    let check = |filter: Value, expected: &'static [&'static str]| {
        (json!([{"filters": [filter]}]), expected)
    };
    let cases = [
        check(
            json!({"propertyName": "dealname", "operator": "EQ", "value": "BETA KRONE"}),
            &["beta krone"],
        ),
        check(
            json!({"propertyName": "dealname", "operator": "NEQ", "value": "delta"}),
            &["Alpha Brücke", "beta krone", "Gamma Implantat"],
        ),
        // Numeric, not lexicographic: "9" < "25.5" < "100".
        check(
            json!({"propertyName": "amount", "operator": "LT", "value": "26"}),
            &["Alpha Brücke", "Gamma Implantat"],
        ),
        check(
            json!({"propertyName": "amount", "operator": "LTE", "value": "9"}),
            &["Alpha Brücke"],
        ),
        check(
            json!({"propertyName": "amount", "operator": "GT", "value": "25.5"}),
            &["beta krone"],
        ),
        check(
            json!({"propertyName": "amount", "operator": "GTE", "value": "25.5"}),
            &["beta krone", "Gamma Implantat"],
        ),
        check(
            json!({"propertyName": "amount", "operator": "BETWEEN", "value": "10", "highValue": "100"}),
            &["beta krone", "Gamma Implantat"],
        ),
        check(
            json!({"propertyName": "dealname", "operator": "IN", "values": ["delta", "alpha brücke"]}),
            &["Alpha Brücke", "Delta"],
        ),
        check(
            json!({"propertyName": "dealname", "operator": "NOT_IN", "values": ["delta"]}),
            &["Alpha Brücke", "beta krone", "Gamma Implantat"],
        ),
        check(
            json!({"propertyName": "amount", "operator": "HAS_PROPERTY"}),
            &["Alpha Brücke", "beta krone", "Gamma Implantat"],
        ),
        check(
            json!({"propertyName": "amount", "operator": "NOT_HAS_PROPERTY"}),
            &["Delta"],
        ),
        check(
            json!({"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": "implantat"}),
            &["Gamma Implantat"],
        ),
        check(
            json!({"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": "kro*"}),
            &["beta krone"],
        ),
        // Dates compare as instants, whether given as ISO or epoch milliseconds.
        check(
            json!({"propertyName": "closedate", "operator": "GT", "value": "1769000000000"}),
            &["Gamma Implantat"],
        ),
        check(
            json!({"propertyName": "closedate", "operator": "LT", "value": "2026-02-01T00:00:00Z"}),
            &["Alpha Brücke"],
        ),
    ];
    for (groups, expected) in cases {
        assert_eq!(names(&hs, groups.clone()).await, expected, "{groups}");
    }
    // Groups OR, filters AND.
    let or = json!([
        {"filters": [{"propertyName": "dealname", "operator": "EQ", "value": "delta"}]},
        {"filters": [{"propertyName": "amount", "operator": "GT", "value": "50"},
                     {"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": "krone"}]},
    ]);
    assert_eq!(names(&hs, or).await, ["beta krone", "Delta"]);
    let descending = hs
        .search("deals", json!({"sorts": [{"propertyName": "amount", "direction": "DESCENDING"}], "properties": ["dealname"], "limit": 1}))
        .await;
    assert_eq!(
        descending.body["results"][0]["properties"]["dealname"],
        "beta krone"
    );
    assert_eq!(descending.body["total"], 4);
    assert_eq!(descending.body["paging"]["next"]["after"], "1");
}

#[tokio::test]
async fn search_limits_are_enforced() {
    let hs = start().await;
    let filter = json!({"propertyName": "dealname", "operator": "HAS_PROPERTY"});
    let group = |n: usize| json!({"filters": vec![filter.clone(); n]});
    let cases = [
        (json!({"limit": 200}), 200),
        (json!({"limit": 201}), 400),
        (json!({"limit": 100, "after": "9900"}), 200),
        (json!({"limit": 100, "after": "9901"}), 400),
        (json!({"filterGroups": vec![group(1); 5]}), 200),
        (json!({"filterGroups": vec![group(1); 6]}), 400),
        (json!({"filterGroups": [group(10)]}), 200),
        (json!({"filterGroups": [group(11)]}), 400),
        (json!({"filterGroups": [group(9), group(8), group(8)]}), 200),
        (json!({"filterGroups": [group(9), group(9), group(8)]}), 400),
        (
            json!({"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]}),
            400,
        ),
        (
            json!({"filterGroups": [{"filters": [{"propertyName": "dealname", "operator": "LIKE", "value": "1"}]}]}),
            400,
        ),
    ];
    for (body, expected) in cases {
        let answer = hs.search("deals", body.clone()).await;
        assert_eq!(answer.status, expected, "{body} → {}", answer.body);
    }
}

#[tokio::test]
async fn writes_reach_search_only_after_the_index_lag() {
    let hs = start_with(|options| {
        options.rate_limits = false;
        options.search_index_lag = Duration::from_secs(5);
    })
    .await;
    let by_name = |name: &str| json!({"filterGroups": [{"filters": [{"propertyName": "firstname", "operator": "EQ", "value": name}]}]});
    let id = hs.create("contacts", json!({"firstname": "Käthe"})).await;
    assert_eq!(
        hs.search("contacts", by_name("Käthe")).await.body["total"],
        0
    );
    // A direct read sees it at once; only search lags.
    assert_eq!(
        hs.get(&format!("/crm/v3/objects/contacts/{id}"))
            .await
            .status,
        200
    );
    hs.sim.advance_time(Duration::from_millis(5_000));
    assert_eq!(
        hs.search("contacts", by_name("Käthe")).await.body["total"],
        1
    );

    hs.patch(
        &format!("/crm/v3/objects/contacts/{id}"),
        json!({"properties": {"firstname": "Kathrin"}}),
    )
    .await;
    assert_eq!(
        hs.search("contacts", by_name("Käthe")).await.body["total"],
        1
    );
    assert_eq!(
        hs.search("contacts", by_name("Kathrin")).await.body["total"],
        0
    );
    hs.sim.advance_time(Duration::from_secs(5));
    assert_eq!(
        hs.search("contacts", by_name("Käthe")).await.body["total"],
        0
    );
    assert_eq!(
        hs.search("contacts", by_name("Kathrin")).await.body["total"],
        1
    );

    hs.sim.set_index_lag(Duration::ZERO);
    hs.create("contacts", json!({"firstname": "Sofort"})).await;
    assert_eq!(
        hs.search("contacts", by_name("Sofort")).await.body["total"],
        1
    );
}

#[tokio::test]
async fn tokens_are_checked_and_scopes_enforced() {
    let mut hs = start().await;
    hs.token = "wrong".into();
    let answer = hs.get("/crm/v3/objects/contacts").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["category"], "INVALID_AUTHENTICATION");
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Authentication credentials not found")
    );

    hs.sim.set_token_scopes(
        "read-only",
        Some(&["crm.objects.deals.read", "crm.objects.contacts.read"]),
    );
    hs.token = "read-only".into();
    assert_eq!(hs.get("/crm/v3/objects/deals").await.status, 200);
    let refused = hs
        .post("/crm/v3/objects/deals", json!({"properties": {}}))
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["category"], "MISSING_SCOPES");
    assert_eq!(
        refused.body["context"]["missingScopes"],
        json!(["crm.objects.deals.write"])
    );
    assert_eq!(hs.sim.snapshot().objects["deals"].len(), 0);
}

#[tokio::test]
async fn the_ten_second_window_refuses_the_191st_request_on_professional() {
    let hs = start_with(|_| {}).await;
    let mut last_remaining = u64::MAX;
    for i in 0..190 {
        let answer = hs.get("/crm/v3/objects/contacts?limit=1").await;
        assert_eq!(answer.status, 200, "request {i}");
        assert_eq!(answer.header("x-hubspot-ratelimit-max"), Some(190));
        assert_eq!(
            answer.header("x-hubspot-ratelimit-interval-milliseconds"),
            Some(10_000)
        );
        let remaining = answer.header("x-hubspot-ratelimit-remaining").unwrap();
        assert!(remaining < last_remaining);
        last_remaining = remaining;
        assert!(
            answer
                .header("x-hubspot-ratelimit-daily-remaining")
                .is_some()
        );
    }
    let refused = hs.get("/crm/v3/objects/contacts?limit=1").await;
    assert_eq!(refused.status, 429);
    let body = refused.body.as_object().unwrap();
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "correlationId",
            "errorType",
            "message",
            "policyName",
            "status"
        ]
    );
    assert_eq!(refused.body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(refused.body["errorType"], "RATE_LIMIT");
    assert_eq!(
        refused.body["message"],
        "You have reached your ten_secondly_rolling limit."
    );
    assert_eq!(hs.sim.rate_limited("TEN_SECONDLY_ROLLING"), 1);
    assert_eq!(hs.sim.requests_to("GET /crm/v3/objects/contacts"), 191);

    hs.sim.advance_time(Duration::from_secs(10));
    assert_eq!(hs.get("/crm/v3/objects/contacts?limit=1").await.status, 200);
}

#[tokio::test]
async fn the_daily_budget_runs_out_with_a_daily_429() {
    let hs = start_with(|_| {}).await;
    hs.sim.set_daily_remaining(1);
    let last = hs.get("/crm/v3/objects/contacts").await;
    assert_eq!(last.status, 200);
    assert_eq!(last.header("x-hubspot-ratelimit-daily-remaining"), Some(0));
    let refused = hs.get("/crm/v3/objects/contacts").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body["policyName"], "DAILY");
    assert_eq!(refused.body["errorType"], "RATE_LIMIT");
    assert_eq!(hs.sim.counters().rate_limited["DAILY"], 1);
    // Advancing past the ten-second window does not refill the day.
    hs.sim.advance_time(Duration::from_secs(60));
    assert_eq!(hs.get("/crm/v3/objects/contacts").await.status, 429);
    hs.sim.reset_rate_limits();
    assert_eq!(hs.get("/crm/v3/objects/contacts").await.status, 200);
}

#[tokio::test]
async fn search_has_its_own_limiter_outside_the_ten_second_window() {
    let hs = start_with(|_| {}).await;
    let before = hs
        .get("/crm/v3/objects/contacts")
        .await
        .header("x-hubspot-ratelimit-remaining")
        .unwrap();
    for _ in 0..5 {
        let answer = hs.search("contacts", json!({})).await;
        assert_eq!(answer.status, 200);
        assert!(
            answer
                .headers
                .get("x-hubspot-ratelimit-remaining")
                .is_none()
        );
    }
    let refused = hs.search("contacts", json!({})).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body["category"], "RATE_LIMITS");
    assert_eq!(
        refused.body["message"],
        "You have reached your secondly limit."
    );
    assert!(refused.body.get("policyName").is_none());
    assert!(refused.headers.get("x-hubspot-ratelimit-max").is_none());
    let after = hs
        .get("/crm/v3/objects/contacts")
        .await
        .header("x-hubspot-ratelimit-remaining")
        .unwrap();
    assert_eq!(after, before - 1);
    hs.sim.advance_time(Duration::from_secs(1));
    assert_eq!(hs.search("contacts", json!({})).await.status, 200);
    assert_eq!(hs.sim.counters().rate_limited["SEARCH_SECONDLY"], 1);
}

#[tokio::test]
async fn a_committed_write_whose_response_is_lost_is_still_applied() {
    let hs = start().await;
    hs.unique_property("contacts", "ivoris_patient_key").await;
    hs.sim.set_faults(FaultSettings {
        committed_but_lost_rate: 1.0,
        writes_only: true,
        ..FaultSettings::default()
    });
    for attempt in 0..6 {
        let key = format!("mag:{attempt}");
        let result = hs
            .try_call(
                Method::POST,
                "/crm/v3/objects/contacts/batch/upsert",
                Some(&upsert_body(&[(&key, "Lost")])),
            )
            .await;
        match result {
            Ok(answer) => assert_eq!(answer.status, 502),
            Err(error) => assert!(!error.is_status()),
        }
    }
    assert_eq!(hs.sim.records("contacts").unwrap().len(), 6);
    assert_eq!(hs.sim.write_calls(), 7);
    // Reads are untouched by write-only faults.
    assert_eq!(hs.get("/crm/v3/objects/contacts").await.status, 200);
    // A retry lands on the same record.
    hs.sim.set_faults(FaultSettings::default());
    let retry = hs
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            upsert_body(&[("mag:0", "Lost")]),
        )
        .await;
    assert_eq!(retry.body["results"][0]["new"], false);
    assert_eq!(hs.sim.counters().faults_injected["committedButLost"], 6);
}

#[tokio::test]
async fn dropped_connections_surface_as_transport_errors() {
    let hs = start().await;
    hs.sim.set_faults(FaultSettings {
        drop_connection_rate: 1.0,
        ..FaultSettings::default()
    });
    let result = hs
        .try_call(Method::GET, "/crm/v3/objects/contacts", None)
        .await;
    assert!(result.is_err());
    assert!(hs.sim.snapshot().objects["contacts"].is_empty());
    let result = hs
        .try_call(
            Method::POST,
            "/crm/v3/objects/contacts",
            Some(&json!({"properties": {"firstname": "X"}})),
        )
        .await;
    assert!(result.is_err());
    assert!(hs.sim.snapshot().objects["contacts"].is_empty());
}

#[tokio::test]
async fn fail_every_write_refuses_writes_and_changes_nothing() {
    let hs = start().await;
    hs.sim.set_fail_every_write(true);
    for _ in 0..4 {
        let answer = hs
            .post(
                "/crm/v3/objects/contacts",
                json!({"properties": {"firstname": "X"}}),
            )
            .await;
        assert!(matches!(answer.status, 500 | 503), "{}", answer.status);
    }
    assert_eq!(hs.get("/crm/v3/objects/contacts").await.status, 200);
    assert!(hs.sim.snapshot().objects["contacts"].is_empty());
    hs.sim.set_fail_every_write(false);
    hs.create("contacts", json!({"firstname": "X"})).await;
}

#[tokio::test]
async fn server_errors_and_slow_answers_come_from_the_fault_switches() {
    let hs = start().await;
    hs.sim.set_faults(FaultSettings {
        server_error_rate: 1.0,
        ..FaultSettings::default()
    });
    for _ in 0..5 {
        let answer = hs.get("/crm/v3/objects/contacts").await;
        assert!(matches!(answer.status, 500 | 502 | 503 | 504));
    }
    hs.sim.set_faults(FaultSettings {
        slow_rate: 1.0,
        slow_delay_ms: 300,
        ..FaultSettings::default()
    });
    let started = std::time::Instant::now();
    assert_eq!(hs.get("/crm/v3/objects/contacts").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn inspection_endpoints_show_and_switch_the_simulation() {
    let hs = start().await;
    hs.create("contacts", json!({"firstname": "Inge"})).await;
    let unauthenticated = reqwest::Client::new();
    let get = |path: &str| unauthenticated.get(format!("{}{path}", hs.base));
    let state: Value = get("/_sandbox/state")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["objects"]["contacts"][0]["properties"]["firstname"],
        "Inge"
    );
    assert!(
        state["properties"]["deals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "dealstage")
    );
    let counters: Value = get("/_sandbox/counters")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["requests"]["POST /crm/v3/objects/contacts"], 1);
    assert_eq!(counters["writeCalls"], 1);

    let post = |path: &str, body: Value| {
        unauthenticated
            .post(format!("{}{path}", hs.base))
            .json(&body)
            .send()
    };
    let faults: Value = post("/_sandbox/faults", json!({"failEveryWrite": true}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults["failEveryWrite"], true);
    assert!(hs.sim.faults().fail_every_write);
    assert_eq!(
        post("/_sandbox/reset-counters", json!({}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(hs.sim.counters().write_calls, 0);
    assert_eq!(
        post("/_sandbox/index-lag", json!({"milliseconds": 1500}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(hs.sim.index_lag(), Duration::from_millis(1500));
    assert_eq!(
        post("/_sandbox/daily-budget", json!({"remaining": 0}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        post("/_sandbox/appointments", json!({"enabled": false}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(!hs.sim.appointments_enabled());
    assert_eq!(
        post("/_sandbox/index-lag", json!({"ms": 1}))
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test]
async fn malformed_bodies_are_validation_errors_not_panics() {
    let hs = start().await;
    let bodies: [&'static [u8]; 6] = [
        b"{",
        b"",
        b"[1,2]",
        b"\xff\xfe",
        b"{\"inputs\": 5, \"properties\": 5, \"filterGroups\": 7}",
        b"{\"properties\": [], \"inputs\": [{\"properties\": 5}], \"filterGroups\": {}}",
    ];
    let paths = [
        "/crm/v3/objects/contacts",
        "/crm/v3/objects/contacts/batch/upsert",
        "/crm/v3/objects/contacts/batch/create",
        "/crm/v3/objects/contacts/search",
        "/crm/v3/objects/contacts/merge",
        "/crm/v3/properties/contacts",
        "/crm/v4/associations/deals/contacts/batch/associate/default",
    ];
    for path in paths {
        for body in bodies {
            let answer = hs.raw_post(path, body).await;
            assert_eq!(answer.status, 400, "{path} {body:?} → {}", answer.body);
            assert_eq!(answer.body["category"], "VALIDATION_ERROR");
        }
    }
    let answer = hs.raw_post("/crm/v3/objects/contacts", b"{").await;
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid input JSON")
    );
}

#[tokio::test]
async fn appointments_follow_the_enablement_switch() {
    let hs = start_with(|options| {
        options.rate_limits = false;
        options.appointments_enabled = false;
    })
    .await;
    let answer = hs.get("/crm/v3/object-library/enablement/0-421").await;
    assert_eq!(answer.body, json!({"enablement": false}));
    let refused = hs
        .post(
            "/crm/v3/objects/0-421",
            json!({"properties": {"hs_appointment_name": "PZR"}}),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(hs.get("/crm/v3/properties/appointments").await.status, 400);
    hs.sim.set_appointments_enabled(true);
    assert_eq!(
        hs.get("/crm/v3/object-library/enablement/0-421").await.body["enablement"],
        true
    );
    let created = hs
        .post(
            "/crm/objects/2026-03/appointments",
            json!({"properties": {"hs_appointment_name": "PZR", "hs_appointment_start": "2026-03-02T08:00:00Z",
                                  "hs_appointment_status": "SCHEDULED"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let contact = hs.create("contacts", json!({"firstname": "Jan"})).await;
    let appointment = created.body["id"].as_str().unwrap();
    let linked = hs
        .call(
            Method::PUT,
            &format!("/crm/v4/objects/0-421/{appointment}/associations/default/contacts/{contact}"),
            None,
        )
        .await;
    assert_eq!(linked.status, 200, "{}", linked.body);
}

#[tokio::test]
async fn gdpr_delete_removes_the_contact_for_good() {
    let hs = start().await;
    let id = hs
        .create("contacts", json!({"email": "weg@example.org"}))
        .await;
    let answer = hs
        .post(
            "/crm/v3/objects/contacts/gdpr-delete",
            json!({"objectId": "weg@example.org", "idProperty": "email"}),
        )
        .await;
    assert_eq!(answer.status, 204);
    assert!(hs.sim.snapshot().objects["contacts"].is_empty());
    assert_eq!(
        hs.get(&format!("/crm/v3/objects/contacts/{id}?archived=true"))
            .await
            .status,
        404
    );
    hs.create("contacts", json!({"email": "weg@example.org"}))
        .await;
    let missing = hs
        .post(
            "/crm/v3/objects/contacts/gdpr-delete",
            json!({"objectId": "12345"}),
        )
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn legacy_records_can_be_seeded_without_keys() {
    let hs = start().await;
    let deal = hs
        .sim
        .seed_legacy("deals", &[("dealname", "Altfall")])
        .unwrap();
    let contact = hs
        .sim
        .seed_legacy("0-1", &[("email", "alt@example.org")])
        .unwrap();
    hs.sim
        .seed_association("deals", &deal, "contacts", &contact)
        .unwrap();
    assert!(
        hs.sim
            .seed_legacy("contacts", &[("email", "ALT@example.org")])
            .is_err()
    );
    let read = hs
        .get(&format!(
            "/crm/v3/objects/deals/{deal}?associations=contacts"
        ))
        .await;
    assert_eq!(
        read.body["associations"]["contacts"]["results"][0]["id"],
        contact.as_str()
    );
    assert!(hs.sim.counters().requests.len() == 1);
}

#[tokio::test]
async fn reads_by_unique_property_and_with_history() {
    let hs = start().await;
    let id = hs
        .create(
            "contacts",
            json!({"email": "hist@example.org", "firstname": "Erst"}),
        )
        .await;
    hs.patch(
        &format!("/crm/v3/objects/contacts/{id}"),
        json!({"properties": {"firstname": "Zweit"}}),
    )
    .await;
    let answer = hs
        .get("/crm/v3/objects/contacts/HIST@example.org?idProperty=email&properties=firstname&propertiesWithHistory=firstname")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["id"], id.as_str());
    let history: Vec<&str> = answer.body["propertiesWithHistory"]["firstname"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["value"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["Zweit", "Erst"]);
    let by_other = hs
        .get("/crm/v3/objects/contacts/Erst?idProperty=firstname")
        .await;
    assert_eq!(by_other.status, 400);
    let missing = hs
        .get("/crm/v3/objects/contacts/nobody@example.org?idProperty=email")
        .await;
    assert_eq!(missing.status, 404);
    let batch = hs
        .post(
            "/crm/v3/objects/contacts/batch/read",
            json!({"inputs": [{"id": id}, {"id": "424242"}], "properties": ["email"], "propertiesWithHistory": []}),
        )
        .await;
    assert_eq!(batch.status, 207);
    assert_eq!(batch.body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(batch.body["errors"][0]["context"]["ids"], json!(["424242"]));
    assert_eq!(ids(&batch.body), vec![id]);
}

#[tokio::test]
async fn upsert_with_trace_ids_reports_failures_per_input() {
    let hs = start().await;
    hs.unique_property("contacts", "ivoris_patient_key").await;
    hs.create("contacts", json!({"email": "belegt@example.org"}))
        .await;
    let answer = hs
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": [
                {"idProperty": "ivoris_patient_key", "id": "mag:1", "properties": {"email": "frei@example.org"}, "objectWriteTraceId": "1"},
                {"idProperty": "ivoris_patient_key", "id": "mag:2", "properties": {"email": "belegt@example.org"}, "objectWriteTraceId": "2"},
            ]}),
        )
        .await;
    assert_eq!(answer.status, 207, "{}", answer.body);
    assert_eq!(answer.body["results"][0]["new"], true);
    assert!(
        answer.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Contact already exists. Existing ID: ")
    );
    assert_eq!(hs.sim.snapshot().objects["contacts"].len(), 2);
}

/// Status codes of a run of requests under hostile faults (0 = dropped).
async fn hostile_statuses(seed: u64) -> Vec<u16> {
    let hs = start_with(|options| {
        options.rate_limits = false;
        options.seed = seed;
    })
    .await;
    hs.sim.set_faults(FaultSettings {
        slow_delay_ms: 0,
        ..FaultSettings::for_profile(ivoris_hubspot_sync::sandbox::FaultProfile::Hostile)
    });
    let mut statuses = Vec::new();
    for _ in 0..60 {
        let result = hs
            .try_call(Method::GET, "/crm/v3/objects/contacts", None)
            .await;
        statuses.push(result.map(|answer| answer.status).unwrap_or(0));
    }
    statuses
}

#[tokio::test]
async fn fault_dice_are_deterministic_per_seed() {
    let first = hostile_statuses(7).await;
    assert_eq!(first, hostile_statuses(7).await);
    assert!(first.iter().any(|status| *status != 200), "{first:?}");
    assert!(
        first.iter().filter(|status| **status == 200).count() > 30,
        "{first:?}"
    );
}

#[tokio::test]
async fn injected_429s_carry_the_body_of_the_limiter_they_imitate() {
    let hs = start().await;
    hs.sim.set_faults(FaultSettings {
        rate_limit_rate: 1.0,
        ..FaultSettings::default()
    });
    let plain = hs.get("/crm/v3/objects/contacts").await;
    assert_eq!(
        (plain.status, plain.body["policyName"].as_str()),
        (429, Some("TEN_SECONDLY_ROLLING"))
    );
    let search = hs.search("contacts", json!({})).await;
    assert_eq!(
        (search.status, search.body["category"].as_str()),
        (429, Some("RATE_LIMITS"))
    );
    assert!(search.body.get("policyName").is_none());
    assert_eq!(hs.sim.counters().faults_injected["rateLimit"], 2);
}

/// Two contacts holding `taken@…` and `besetzt@…`, and an upsert of three
/// patients with trace ids: one free address, then the two taken ones.
async fn upsert_over_taken_addresses(hs: &Hs) -> (Vec<String>, Answer) {
    hs.unique_property("contacts", "ivoris_patient_key").await;
    let taken = vec![
        hs.create("contacts", json!({"email": "taken@example.org"}))
            .await,
        hs.create("contacts", json!({"email": "besetzt@example.org"}))
            .await,
    ];
    let answer = hs
        .post(
            "/crm/objects/2026-03/contacts/batch/upsert",
            json!({"inputs": [
                {"idProperty": "ivoris_patient_key", "id": "mag:1", "properties": {"email": "frei@example.org"}, "objectWriteTraceId": "0"},
                {"idProperty": "ivoris_patient_key", "id": "mag:2", "properties": {"email": "TAKEN@example.org"}, "objectWriteTraceId": "1"},
                {"idProperty": "ivoris_patient_key", "id": "mag:3", "properties": {"email": "besetzt@example.org"}, "objectWriteTraceId": "2"},
            ]}),
        )
        .await;
    (taken, answer)
}

#[tokio::test]
async fn whole_call_mode_refuses_a_batch_over_its_first_conflict_and_writes_nothing() {
    let hs = start_with(|options| {
        options.rate_limits = false;
        options.batch_failures = BatchFailures::WholeCall;
    })
    .await;
    let (taken, answer) = upsert_over_taken_addresses(&hs).await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(answer.body["category"], "CONFLICT");
    assert_eq!(
        answer.body["message"],
        format!("Contact already exists. Existing ID: {}", taken[0]),
        "only the first contact in the way is named"
    );
    assert!(answer.body.get("results").is_none());
    assert_eq!(
        hs.sim.snapshot().objects["contacts"].len(),
        2,
        "nothing written"
    );

    // Batch update by id: the same all-or-nothing answer.
    let update = hs
        .post(
            "/crm/v3/objects/contacts/batch/update",
            json!({"inputs": [
                {"id": taken[0], "properties": {"firstname": "Ute"}, "objectWriteTraceId": "0"},
                {"id": taken[1], "properties": {"email": "taken@example.org"}, "objectWriteTraceId": "1"},
            ]}),
        )
        .await;
    assert_eq!(update.status, 409, "{}", update.body);
    assert_eq!(
        update.body["message"],
        format!("Contact already exists. Existing ID: {}", taken[0])
    );
    let first = hs
        .get(&format!("/crm/v3/objects/contacts/{}", taken[0]))
        .await;
    assert_ne!(first.body["properties"]["firstname"], "Ute", "not applied");
}

#[tokio::test]
async fn multi_status_mode_answers_per_input_and_the_mode_switches_at_runtime() {
    let hs = start().await;
    let unauthenticated = reqwest::Client::new();
    let mode = |body: Value| {
        unauthenticated
            .post(format!("{}/_sandbox/batch-failures", hs.base))
            .json(&body)
            .send()
    };
    let current: Value = unauthenticated
        .get(format!("{}/_sandbox/batch-failures", hs.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["mode"], "multi-status");
    let (taken, answer) = upsert_over_taken_addresses(&hs).await;
    assert_eq!(answer.status, 207, "{}", answer.body);
    assert_eq!(answer.body["numErrors"], 2);
    assert_eq!(
        answer.body["results"][0]["properties"]["email"],
        "frei@example.org"
    );
    for (error, existing) in answer.body["errors"].as_array().unwrap().iter().zip(&taken) {
        assert_eq!(
            error["message"],
            format!("Contact already exists. Existing ID: {existing}")
        );
    }

    assert_eq!(
        mode(json!({"mode": "whole-call"})).await.unwrap().status(),
        204
    );
    assert_eq!(hs.sim.batch_failures(), BatchFailures::WholeCall);
    let again = hs
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": [
                {"idProperty": "ivoris_patient_key", "id": "mag:4", "properties": {"email": "taken@example.org"}, "objectWriteTraceId": "0"},
            ]}),
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(
        mode(json!({"mode": "sometimes"})).await.unwrap().status(),
        400
    );
}

#[tokio::test]
async fn one_records_associations_are_listed_in_pages_on_v4_and_dated_paths() {
    let hs = start().await;
    let contact = hs.create("contacts", json!({"firstname": "Ida"})).await;
    let mut deals = Vec::new();
    for name in ["A", "B", "C", "D", "E"] {
        deals.push(hs.create("deals", json!({"dealname": name})).await);
    }
    let inputs: Vec<Value> = deals
        .iter()
        .map(|deal| json!({"from": {"id": contact}, "to": {"id": deal}}))
        .collect();
    let linked = hs
        .post(
            "/crm/v4/associations/contacts/deals/batch/associate/default",
            json!({ "inputs": inputs }),
        )
        .await;
    assert_eq!(linked.status, 200, "{}", linked.body);

    for base in ["/crm/v4/objects", "/crm/objects/2026-03"] {
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = format!("{base}/contacts/{contact}/associations/deals?limit=2");
            if let Some(after) = &after {
                path.push_str(&format!("&after={after}"));
            }
            let page = hs.get(&path).await;
            assert_eq!(page.status, 200, "{path}: {}", page.body);
            pages += 1;
            for result in page.body["results"].as_array().unwrap() {
                assert!(result["toObjectId"].is_number(), "{result}");
                assert_eq!(
                    result["associationTypes"],
                    json!([{"category": "HUBSPOT_DEFINED", "typeId": 4, "label": null}])
                );
                found.push(result["toObjectId"].to_string());
            }
            match page.body["paging"]["next"]["after"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(found, deals, "{base}: every deal once, in order");
        assert_eq!(pages, 3, "{base}: pages of two");
    }
    let backwards = hs
        .get(&format!(
            "/crm/v4/objects/deals/{}/associations/contacts",
            deals[0]
        ))
        .await;
    assert_eq!(
        backwards.body["results"][0]["toObjectId"].to_string(),
        contact
    );
    assert_eq!(
        backwards.body["results"][0]["associationTypes"][0]["typeId"],
        3
    );
    assert!(backwards.body.get("paging").is_none());
    let missing = hs
        .get("/crm/v4/objects/contacts/424242/associations/deals")
        .await;
    assert_eq!(missing.status, 404);
    let counted = hs
        .sim
        .requests_to("GET /crm/objects/2026-03/contacts/{id}/associations/deals");
    assert_eq!(counted, 3);
}

#[tokio::test]
async fn portal_endpoints_answer_on_both_path_families() {
    let hs = start().await;
    for (numbered, dated) in [
        ("/crm/v3/owners", "/crm/owners/2026-03"),
        (
            "/account-info/v3/api-usage/daily/private-apps",
            "/account-info/2026-03/api-usage/daily/private-apps",
        ),
        (
            "/crm/v3/object-library/enablement/0-421",
            "/crm/object-library/2026-03/enablement/0-421",
        ),
    ] {
        let a = hs.get(numbered).await;
        let b = hs.get(dated).await;
        assert_eq!((a.status, b.status), (200, 200), "{numbered} / {dated}");
        let shape = |body: &Value| -> Value {
            match body.get("results") {
                Some(results) => json!(results.as_array().map(Vec::len)),
                None => body.clone(),
            }
        };
        assert_eq!(
            shape(&a.body),
            shape(&b.body),
            "{dated} answers as {numbered}"
        );
    }
    assert_eq!(hs.sim.requests_to("GET /crm/owners/2026-03"), 1);
    let unknown = hs.get("/crm/owners/v9").await;
    assert_eq!(unknown.status, 404);
    let paths = hs.sim.counters().paths;
    assert_eq!(
        paths.get("GET /crm/owners/v9"),
        Some(&1),
        "unknown paths are logged too"
    );
    assert_eq!(paths.get("GET /crm/owners/2026-03"), Some(&1));
}
