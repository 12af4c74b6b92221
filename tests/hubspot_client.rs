//! The HubSpot client against the simulated portal: paths of both API
//! families, upserts, 207 mapping, conflicts, paging, search,
//! associations, merges, provisioning and error mapping. Each test would
//! fail without the behaviour it names.

mod hubspot_client_support;

use std::collections::BTreeMap;

use hubspot_client_support::portal;
use ivoris_hubspot_sync::hubspot::client::{ListPage, MAX_BATCH};
use ivoris_hubspot_sync::hubspot::provision::{
    AppointmentsStatus, ProvisionError, default_spec, provision,
};
use ivoris_hubspot_sync::hubspot::wire::{Filter, FilterGroup, SearchRequest, Sort};
use ivoris_hubspot_sync::hubspot::{
    ClientError, HubSpotClient, ObjectKind, Tier, UpsertInput, provision::text_property,
};
use ivoris_hubspot_sync::secrets::Secret;
use ivoris_hubspot_sync::settings::{ApiVersion, AppointmentsMode};

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn input(key: &str, pairs: &[(&str, &str)]) -> UpsertInput {
    UpsertInput {
        key: key.into(),
        properties: props(pairs),
    }
}

async fn provisioned(client: &HubSpotClient) {
    provision(client, &default_spec("", AppointmentsMode::Auto))
        .await
        .unwrap();
}

#[tokio::test]
async fn both_path_families_reach_the_sandbox_with_their_templates() {
    let hs = portal(|o| o.rate_limits = false).await;
    for (version, objects, associations) in [
        (
            ApiVersion::default(),
            "/crm/objects/2026-03",
            "/crm/associations/2026-03",
        ),
        (ApiVersion::V3, "/crm/v3/objects", "/crm/v4/associations"),
    ] {
        hs.sim.reset_counters();
        let client = HubSpotClient::new(hs.config(version.clone(), Tier::Professional)).unwrap();
        provisioned(&client).await;
        let contact = client
            .batch_upsert(
                ObjectKind::Contacts,
                "ivoris_patient_key",
                &[input("mag:1", &[("firstname", "Jürgen")])],
            )
            .await
            .unwrap();
        let deal = client
            .batch_upsert(
                ObjectKind::Deals,
                "ivoris_case_key",
                &[input("mag:900", &[("dealname", "Fall")])],
            )
            .await
            .unwrap();
        let appointment = client
            .batch_upsert(
                ObjectKind::Appointments,
                "ivoris_appointment_key",
                &[input(
                    "mag:77",
                    &[
                        ("hs_appointment_name", "Kontrolle"),
                        ("hs_appointment_start", "2026-03-02T08:00:00Z"),
                    ],
                )],
            )
            .await
            .unwrap();
        assert!(appointment.errors.is_empty(), "{appointment:?}");
        let pair = (deal.results[0].id.clone(), contact.results[0].id.clone());
        client
            .associate_default_batch(ObjectKind::Deals, ObjectKind::Contacts, &[pair])
            .await
            .unwrap();
        client
            .list_all(ObjectKind::Contacts, &["firstname".into()])
            .await
            .unwrap();
        let prefix = match version {
            ApiVersion::V3 => "/crm/v3",
            ApiVersion::Dated { .. } => "",
        };
        let (properties, pipelines) = if prefix.is_empty() {
            (
                "/crm/properties/2026-03".to_string(),
                "/crm/pipelines/2026-03".to_string(),
            )
        } else {
            (
                format!("{prefix}/properties"),
                format!("{prefix}/pipelines"),
            )
        };
        client
            .gdpr_delete_contact(&contact.results[0].id)
            .await
            .unwrap();
        // Only a numbered path is published for the GDPR delete.
        assert_eq!(
            hs.sim
                .requests_to("POST /crm/v3/objects/contacts/gdpr-delete"),
            1
        );
        for template in [
            format!("POST {objects}/contacts/batch/upsert"),
            format!("POST {objects}/deals/batch/upsert"),
            format!("POST {objects}/appointments/batch/upsert"),
            format!("GET {objects}/contacts"),
            format!("POST {associations}/deals/contacts/batch/associate/default"),
            format!("GET {properties}/contacts"),
            format!("GET {pipelines}/deals"),
        ] {
            assert_eq!(hs.sim.requests_to(&template), 1, "{template}");
        }
    }
}

#[tokio::test]
async fn upserting_twice_keeps_the_ids_and_reports_not_new() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    provisioned(&client).await;
    let inputs: Vec<UpsertInput> = (0..5)
        .map(|i| input(&format!("mag:{i}"), &[("lastname", "Weiß")]))
        .collect();
    let first = client
        .batch_upsert(ObjectKind::Contacts, "ivoris_patient_key", &inputs)
        .await
        .unwrap();
    let second = client
        .batch_upsert(ObjectKind::Contacts, "ivoris_patient_key", &inputs)
        .await
        .unwrap();
    assert!(first.errors.is_empty() && second.errors.is_empty());
    assert!(first.results.iter().all(|r| r.new));
    assert!(second.results.iter().all(|r| !r.new));
    let ids = |outcome: &ivoris_hubspot_sync::hubspot::BatchOutcome| {
        outcome
            .results
            .iter()
            .map(|r| (r.index, r.id.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ids(&second));
    assert_eq!(hs.sim.records("contacts").unwrap().len(), 5);
    for result in &second.results {
        assert_eq!(
            result.properties["ivoris_patient_key"],
            format!("mag:{}", result.index)
        );
    }
}

#[tokio::test]
async fn per_input_errors_of_a_207_map_to_their_input_index() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    provisioned(&client).await;
    let outcome = client
        .batch_upsert(
            ObjectKind::Contacts,
            "ivoris_patient_key",
            &[
                input("mag:1", &[("lastname", "A")]),
                input("mag:2", &[("no_such_property", "x")]),
                input("mag:3", &[("lastname", "C")]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcome.errors.len(), 1);
    assert_eq!(outcome.errors[0].index, Some(1));
    assert_eq!(outcome.errors[0].category, "VALIDATION_ERROR");
    let indexes: Vec<usize> = outcome.results.iter().map(|r| r.index).collect();
    assert_eq!(indexes, vec![0, 2]);
}

#[tokio::test]
async fn an_email_conflict_names_the_existing_contact_without_the_email() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    provisioned(&client).await;
    let legacy = hs
        .sim
        .seed_legacy("contacts", &[("email", "anna.mueller@example.de")])
        .unwrap();
    let outcome = client
        .batch_upsert(
            ObjectKind::Contacts,
            "ivoris_patient_key",
            &[
                input("mag:7", &[("lastname", "B")]),
                input("mag:8", &[("email", "Anna.Mueller@example.de")]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcome.errors.len(), 1);
    let error = &outcome.errors[0];
    assert_eq!(error.index, Some(1));
    assert_eq!(error.status, 409);
    assert_eq!(error.existing_id.as_deref(), Some(legacy.as_str()));
    let text = format!("{error:?}").to_lowercase();
    assert!(!text.contains("anna.mueller@example.de"), "{text}");
}

#[tokio::test]
async fn list_all_visits_every_record_once_across_pages() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    for i in 0..250 {
        let name = format!("Name{i}");
        hs.sim
            .seed_legacy("contacts", &[("lastname", name.as_str())])
            .unwrap();
    }
    let records = client
        .list_all(ObjectKind::Contacts, &["lastname".into()])
        .await
        .unwrap();
    let mut ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 250);
    assert_eq!(
        hs.sim.requests_to("GET /crm/objects/2026-03/contacts"),
        3,
        "three pages of at most 100"
    );
    let ListPage { next_after, .. } = client
        .list_page(ObjectKind::Contacts, &[], None)
        .await
        .unwrap();
    assert!(next_after.is_some());
}

#[tokio::test]
async fn search_bodies_follow_the_schema() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    for name in ["Müller", "Weiß", "Müller"] {
        hs.sim
            .seed_legacy("contacts", &[("lastname", name)])
            .unwrap();
    }
    let request = SearchRequest {
        filter_groups: vec![FilterGroup {
            filters: vec![Filter::eq("lastname", "Müller")],
        }],
        sorts: vec![Sort {
            property_name: "createdate".into(),
            direction: "ASCENDING".into(),
        }],
        properties: vec!["lastname".into()],
        limit: 1,
        after: None,
    };
    let first = client.search(ObjectKind::Contacts, &request).await.unwrap();
    assert_eq!(first.total, 2);
    assert_eq!(first.records.len(), 1);
    let second = client
        .search(
            ObjectKind::Contacts,
            &SearchRequest {
                after: first.next_after.clone(),
                ..request
            },
        )
        .await
        .unwrap();
    assert_eq!(second.records.len(), 1);
    assert_ne!(first.records[0].id, second.records[0].id);
}

#[tokio::test]
async fn associations_are_made_per_pair_and_read_back() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    let contact = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "A")])
        .unwrap();
    let deal = hs.sim.seed_legacy("deals", &[("dealname", "D")]).unwrap();
    let outcomes = client
        .associate_default_batch(
            ObjectKind::Deals,
            ObjectKind::Contacts,
            &[
                (deal.clone(), contact.clone()),
                (deal.clone(), "999999".into()),
            ],
        )
        .await
        .unwrap();
    assert!(outcomes[0].is_ok());
    let failed = outcomes[1].as_ref().unwrap_err();
    assert_eq!(failed.status, 404);
    let read = client
        .read_associations(
            ObjectKind::Contacts,
            ObjectKind::Deals,
            &[contact.clone(), "424242".into()],
        )
        .await
        .unwrap();
    assert_eq!(read[&contact], vec![deal]);
    assert!(read["424242"].is_empty());
}

#[tokio::test]
async fn merge_returns_the_surviving_record() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    let primary = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "A")])
        .unwrap();
    let other = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "A"), ("phone", "0391 1234")])
        .unwrap();
    let merged = client
        .merge(ObjectKind::Contacts, &primary, &other)
        .await
        .unwrap();
    assert_eq!(merged.id, primary);
    assert_eq!(hs.sim.records("contacts").unwrap().len(), 1);
}

#[tokio::test]
async fn record_calls_read_update_create_archive_and_delete() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    provisioned(&client).await;
    let upserted = client
        .batch_upsert(
            ObjectKind::Deals,
            "ivoris_case_key",
            &[input("mag:1", &[("dealname", "Eins")])],
        )
        .await
        .unwrap();
    let id = upserted.results[0].id.clone();
    let read = client
        .batch_read_by_property(
            ObjectKind::Deals,
            "ivoris_case_key",
            &["mag:404".into(), "mag:1".into()],
            &["dealname".into()],
        )
        .await
        .unwrap();
    assert_eq!(read.results.len(), 1);
    assert_eq!(read.results[0].index, 1);
    assert_eq!(read.results[0].id, id);
    assert_eq!(read.errors[0].index, Some(0));
    let updated = client
        .batch_update_by_id(
            ObjectKind::Deals,
            &[(id.clone(), props(&[("amount", "171.50")]))],
        )
        .await
        .unwrap();
    assert_eq!(updated.results[0].properties["amount"], "171.50");
    let by_id = client
        .batch_read_by_id(
            ObjectKind::Deals,
            std::slice::from_ref(&id),
            &["amount".into()],
        )
        .await
        .unwrap();
    assert_eq!(by_id.results[0].index, 0);
    let created = client
        .create(ObjectKind::Contacts, &props(&[("lastname", "Neu")]))
        .await
        .unwrap();
    let got = client
        .get(ObjectKind::Contacts, &created.id, &["lastname".into()])
        .await
        .unwrap();
    assert_eq!(got.properties["lastname"], "Neu");
    client
        .batch_archive(ObjectKind::Deals, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert!(matches!(
        client.get(ObjectKind::Deals, &id, &[]).await,
        Err(ClientError::NotFound { .. })
    ));
    client.gdpr_delete_contact(&created.id).await.unwrap();
    client.gdpr_delete_contact(&created.id).await.unwrap();
    assert!(hs.sim.records("contacts").unwrap().is_empty());
}

#[tokio::test]
async fn more_than_a_hundred_inputs_are_refused_before_sending() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    let inputs: Vec<UpsertInput> = (0..=MAX_BATCH)
        .map(|i| input(&format!("mag:{i}"), &[]))
        .collect();
    let error = client
        .batch_upsert(ObjectKind::Contacts, "ivoris_patient_key", &inputs)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ClientError::TooManyInputs {
            count: 101,
            max: 100
        }
    );
    assert!(hs.sim.counters().requests.is_empty());
}

/// Further pipelines named by locations are resolved by label with the
/// same stage labels; a missing one stops provisioning naming it.
#[tokio::test]
async fn provisioning_resolves_the_pipelines_of_locations() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    let mut spec = default_spec("Patientenreise", AppointmentsMode::Auto);
    let labels: Vec<&str> = spec.stage_labels.iter().map(String::as_str).collect();
    let id = hs.sim.seed_pipeline("KFO-Reise", &labels);
    spec.other_pipelines = vec!["KFO-Reise".into()];
    let report = provision(&client, &spec).await.unwrap();
    assert_eq!(report.pipeline_id, "75835201");
    let (kfo_id, kfo_stages) = report.pipeline(Some("KFO-Reise")).expect("resolved");
    assert_eq!(kfo_id, id);
    assert_eq!(kfo_stages.len(), labels.len());
    assert!(kfo_stages.values().all(|stage| stage.starts_with(&id)));
    assert_ne!(kfo_stages["Verloren"], report.stage_ids["Verloren"]);

    spec.other_pipelines.push("Implantate".into());
    let error = provision(&client, &spec).await.unwrap_err();
    assert_eq!(
        error,
        ProvisionError::PipelineMissing {
            label: "Implantate".into()
        }
    );
    assert!(error.explain_de().contains("Implantate"));
}

#[tokio::test]
async fn provisioning_twice_creates_nothing_the_second_time() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    let spec = default_spec("Patientenreise", AppointmentsMode::Auto);
    let first = provision(&client, &spec).await.unwrap();
    assert!(first.created_anything());
    assert_eq!(first.created_groups.len(), 3);
    let second = provision(&client, &spec).await.unwrap();
    assert!(!second.created_anything(), "{second:?}");
    assert_eq!(
        second.found_properties.len(),
        first.created_properties.len()
    );
    assert_eq!(second.pipeline_id, "75835201");
    assert_eq!(second.stage_ids["Termin gebucht"], "160391237");
    assert_eq!(second.stage_ids["Verloren"], "160391241");
    assert_eq!(second.appointments, AppointmentsStatus::Enabled);
    let definitions = hs.sim.snapshot();
    let text = serde_json::to_string(&definitions).unwrap();
    assert!(text.contains("ivoris_appointment_key"));
}

#[tokio::test]
async fn a_missing_stage_or_pipeline_is_named() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    let mut spec = default_spec("", AppointmentsMode::Auto);
    spec.stage_labels.push("Nachsorge".into());
    match provision(&client, &spec).await {
        Err(error @ ProvisionError::StageMissing { .. }) => {
            assert!(error.explain_de().contains("Nachsorge"));
            assert!(error.explain_en().contains("Nachsorge"));
        }
        other => panic!("expected a missing stage, got {other:?}"),
    }
    let spec = default_spec("Kieferreise", AppointmentsMode::Auto);
    assert_eq!(
        provision(&client, &spec).await.unwrap_err(),
        ProvisionError::PipelineMissing {
            label: "Kieferreise".into()
        }
    );
}

#[tokio::test]
async fn a_key_property_without_unique_values_is_an_error() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    let mut plain = text_property("ivoris_patient_key", "Schlüssel");
    plain.group_name = "contactinformation".into();
    client
        .create_property(ObjectKind::Contacts, &plain)
        .await
        .unwrap();
    let error = provision(&client, &default_spec("", AppointmentsMode::Auto))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ProvisionError::KeyNotUnique {
            kind: ObjectKind::Contacts,
            property: "ivoris_patient_key".into()
        }
    );
    assert!(error.explain_de().contains("löschen"));
}

#[tokio::test]
async fn disabled_appointments_are_skipped_on_auto_and_refused_on_on() {
    let hs = portal(|o| {
        o.rate_limits = false;
        o.appointments_enabled = false;
    })
    .await;
    let client = hs.client();
    assert!(!client.appointments_enabled().await.unwrap());
    let report = provision(&client, &default_spec("", AppointmentsMode::Auto))
        .await
        .unwrap();
    assert_eq!(report.appointments, AppointmentsStatus::SkippedNotEnabled);
    assert!(
        report
            .created_properties
            .iter()
            .all(|(kind, _)| *kind != ObjectKind::Appointments)
    );
    let off = provision(&client, &default_spec("", AppointmentsMode::Off))
        .await
        .unwrap();
    assert_eq!(off.appointments, AppointmentsStatus::SkippedOff);
    assert_eq!(
        provision(&client, &default_spec("", AppointmentsMode::On))
            .await
            .unwrap_err(),
        ProvisionError::AppointmentsNotEnabled
    );
}

#[tokio::test]
async fn unauthorized_and_missing_scopes_are_mapped() {
    let hs = portal(|o| o.rate_limits = false).await;
    let mut config = hs.config(ApiVersion::default(), Tier::Professional);
    config.token = Secret::new("wrong-token");
    let client = HubSpotClient::new(config).unwrap();
    assert_eq!(
        client.properties(ObjectKind::Contacts).await.unwrap_err(),
        ClientError::Unauthorized
    );
    hs.sim
        .set_token_scopes("read-only", Some(&["crm.objects.contacts.read"]));
    let mut config = hs.config(ApiVersion::default(), Tier::Professional);
    config.token = Secret::new("read-only");
    let client = HubSpotClient::new(config).unwrap();
    let error = client
        .batch_upsert(
            ObjectKind::Contacts,
            "ivoris_patient_key",
            &[input("mag:1", &[])],
        )
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ClientError::Forbidden {
            missing_scopes: vec!["crm.objects.contacts.write".into()]
        }
    );
    assert!(error.explain_de().contains("crm.objects.contacts.write"));
}

#[tokio::test]
async fn error_texts_never_contain_an_email_from_the_request() {
    let hs = portal(|o| o.rate_limits = false).await;
    let client = hs.client();
    provisioned(&client).await;
    // HubSpot echoes invalid values in its messages ("… was not a valid number").
    let email = "jürgen.weiss@beispiel.de";
    let name = "Jürgen Weiß";
    let outcome = client
        .batch_upsert(
            ObjectKind::Deals,
            "ivoris_case_key",
            &[input(
                "mag:1",
                &[("amount", email), ("erster_termin", name)],
            )],
        )
        .await
        .unwrap();
    assert_eq!(outcome.errors.len(), 1);
    let error = &outcome.errors[0];
    assert!(error.message.contains("INVALID_FLOAT"), "{error:?}");
    for secret in [email, name, "beispiel.de"] {
        assert!(!format!("{error:?}").contains(secret), "{error:?}");
    }
    let whole = client
        .create(
            ObjectKind::Deals,
            &props(&[("amount", email), ("erster_termin", name)]),
        )
        .await
        .unwrap_err();
    assert!(matches!(whole, ClientError::Validation { .. }), "{whole:?}");
    for text in [
        whole.to_string(),
        whole.explain_de(),
        whole.explain_en(),
        format!("{whole:?}"),
    ] {
        for secret in [email, name, "beispiel.de"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
