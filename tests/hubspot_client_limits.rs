//! The HubSpot client's rate limits, retries and fault handling against
//! the simulated portal with its limits switched on. Waits move the
//! simulation's clock (see `hubspot_client_support`), so whole 10-second
//! windows pass in no real time.

mod hubspot_client_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hubspot_client_support::portal;
use ivoris_hubspot_sync::hubspot::provision::{default_spec, provision};
use ivoris_hubspot_sync::hubspot::wire::{Filter, FilterGroup, SearchRequest};
use ivoris_hubspot_sync::hubspot::{
    ClientError, HubSpotClient, ObjectKind, RetryPolicy, Tier, UpsertInput,
};
use ivoris_hubspot_sync::sandbox::hubspot::FaultSettings;
use ivoris_hubspot_sync::settings::{ApiVersion, AppointmentsMode};

fn contacts(count: usize, prefix: &str) -> Vec<UpsertInput> {
    (0..count)
        .map(|i| UpsertInput {
            key: format!("{prefix}:{i}"),
            properties: BTreeMap::from([("lastname".to_string(), format!("Name {i}"))]),
        })
        .collect()
}

#[tokio::test]
async fn five_hundred_reads_on_free_tier_meet_no_429() {
    let hs = portal(|o| o.tier = Tier::Free).await;
    let client =
        Arc::new(HubSpotClient::new(hs.config(ApiVersion::default(), Tier::Free)).unwrap());
    let id = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "A")])
        .unwrap();
    // One request at a time, as the engine sends them: with several in
    // flight, the simulated clock's jumps would hold a request "in the
    // network" for seconds, which no margin can cover.
    for _ in 0..500 {
        client.get(ObjectKind::Contacts, &id, &[]).await.unwrap();
    }
    assert_eq!(hs.sim.rate_limited("TEN_SECONDLY_ROLLING"), 0);
    assert_eq!(
        hs.sim.requests_to("GET /crm/objects/2026-03/contacts/{id}"),
        500
    );
    let stats = client.stats();
    assert_eq!(stats.sent["get"], 500);
    assert!(stats.rate_limited.is_empty());
    // 500 requests at 100 per window need at least four more windows.
    assert!(stats.waited >= Duration::from_secs(40), "{stats:?}");
}

#[tokio::test]
async fn twenty_searches_meet_no_search_429() {
    let hs = portal(|_| {}).await;
    let client = hs.client();
    hs.sim
        .seed_legacy("contacts", &[("lastname", "A")])
        .unwrap();
    let request = SearchRequest {
        filter_groups: vec![FilterGroup {
            filters: vec![Filter::eq("lastname", "A")],
        }],
        properties: vec!["lastname".into()],
        limit: 10,
        ..SearchRequest::default()
    };
    for _ in 0..20 {
        let page = client.search(ObjectKind::Contacts, &request).await.unwrap();
        assert_eq!(page.total, 1);
    }
    assert_eq!(hs.sim.rate_limited("SEARCH_SECONDLY"), 0);
    assert!(client.stats().waited >= Duration::from_secs(3));
}

#[tokio::test]
async fn injected_429s_are_waited_out_and_retried() {
    let hs = portal(|_| {}).await;
    let client = hs.client();
    let id = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "A")])
        .unwrap();
    hs.sim.set_faults(FaultSettings {
        rate_limit_rate: 0.3,
        ..FaultSettings::default()
    });
    for _ in 0..20 {
        client.get(ObjectKind::Contacts, &id, &[]).await.unwrap();
    }
    let injected = hs.sim.counters().faults_injected["rateLimit"];
    assert!(injected > 0);
    let stats = client.stats();
    assert_eq!(stats.rate_limited["TEN_SECONDLY_ROLLING"], injected);
    assert_eq!(stats.retries, 0, "429s use no retry attempts");
    assert!(stats.waited >= Duration::from_secs(injected));
}

#[tokio::test]
async fn an_exhausted_daily_budget_stops_cleanly_with_the_reset_time() {
    let hs = portal(|_| {}).await;
    let client = hs.client();
    let id = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "A")])
        .unwrap();
    hs.sim.set_daily_remaining(3);
    for _ in 0..3 {
        client.get(ObjectKind::Contacts, &id, &[]).await.unwrap();
    }
    // The headers said nothing is left: the client stops without asking.
    let error = client
        .get(ObjectKind::Contacts, &id, &[])
        .await
        .unwrap_err();
    let ClientError::DailyLimit { resets_at } = error else {
        panic!("expected the daily limit, got {error:?}");
    };
    assert!(resets_at > chrono::Utc::now());
    assert!(resets_at <= chrono::Utc::now() + chrono::Duration::hours(25));
    assert_eq!(hs.sim.counters().requests.values().sum::<u64>(), 3);
    assert_eq!(hs.sim.rate_limited("DAILY"), 0);
    assert!(error.explain_de().contains("tägliche"));
}

#[tokio::test]
async fn a_daily_429_stops_the_run_and_nothing_more_is_sent() {
    let hs = portal(|_| {}).await;
    let client = hs.client();
    let id = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "A")])
        .unwrap();
    client.get(ObjectKind::Contacts, &id, &[]).await.unwrap();
    // Another integration used up the portal's budget meanwhile.
    hs.sim.set_daily_remaining(0);
    let first = client
        .get(ObjectKind::Contacts, &id, &[])
        .await
        .unwrap_err();
    assert!(matches!(first, ClientError::DailyLimit { .. }), "{first:?}");
    assert_eq!(hs.sim.rate_limited("DAILY"), 1);
    let sent = hs.sim.counters().requests.values().sum::<u64>();
    let second = client
        .batch_upsert(
            ObjectKind::Contacts,
            "ivoris_patient_key",
            &contacts(1, "x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(second, ClientError::DailyLimit { .. }));
    assert_eq!(hs.sim.counters().requests.values().sum::<u64>(), sent);
    assert_eq!(client.stats().rate_limited["DAILY"], 1);
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried_to_success() {
    let hs = portal(|_| {}).await;
    let mut config = hs.config(ApiVersion::default(), Tier::Professional);
    config.retry = RetryPolicy {
        max_attempts: 12,
        ..RetryPolicy::default()
    };
    let client = HubSpotClient::new(config).unwrap();
    let id = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "A")])
        .unwrap();
    hs.sim.set_faults(FaultSettings {
        server_error_rate: 0.3,
        drop_connection_rate: 0.2,
        ..FaultSettings::default()
    });
    for _ in 0..30 {
        let record = client.get(ObjectKind::Contacts, &id, &[]).await.unwrap();
        assert_eq!(record.id, id);
    }
    let injected = hs.sim.counters().faults_injected;
    assert!(injected.get("serverError").copied().unwrap_or(0) > 0);
    assert!(injected.get("dropConnection").copied().unwrap_or(0) > 0);
    let stats = client.stats();
    assert_eq!(
        stats.retries,
        injected.values().sum::<u64>(),
        "one retry per fault"
    );
}

#[tokio::test]
async fn a_committed_but_lost_upsert_is_retried_onto_the_same_records() {
    let hs = portal(|_| {}).await;
    let client = hs.client();
    provision(&client, &default_spec("", AppointmentsMode::Off))
        .await
        .unwrap();
    hs.sim.set_faults(FaultSettings {
        committed_but_lost_rate: 0.5,
        writes_only: true,
        ..FaultSettings::default()
    });
    for batch in 0..6 {
        let outcome = client
            .batch_upsert(
                ObjectKind::Contacts,
                "ivoris_patient_key",
                &contacts(20, &format!("b{batch}")),
            )
            .await
            .unwrap();
        assert!(outcome.errors.is_empty());
        assert_eq!(outcome.results.len(), 20);
    }
    assert!(hs.sim.counters().faults_injected["committedButLost"] > 0);
    assert_eq!(hs.sim.records("contacts").unwrap().len(), 120);
}

#[tokio::test]
async fn merge_and_create_are_not_repeated_after_an_ambiguous_failure() {
    let hs = portal(|_| {}).await;
    let client = hs.client();
    let a = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "A")])
        .unwrap();
    let b = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "B")])
        .unwrap();
    hs.sim.set_faults(FaultSettings {
        committed_but_lost_rate: 1.0,
        writes_only: true,
        ..FaultSettings::default()
    });
    let error = client
        .merge(ObjectKind::Contacts, &a, &b)
        .await
        .unwrap_err();
    assert_eq!(error, ClientError::Ambiguous { operation: "merge" });
    assert_eq!(
        hs.sim
            .requests_to("POST /crm/objects/2026-03/contacts/merge"),
        1
    );
    let error = client
        .create(ObjectKind::Contacts, &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ClientError::Ambiguous {
            operation: "create"
        }
    );
    assert_eq!(hs.sim.requests_to("POST /crm/objects/2026-03/contacts"), 1);
}

#[tokio::test]
async fn persistent_server_errors_end_after_the_configured_attempts() {
    let hs = portal(|_| {}).await;
    let client = hs.client();
    hs.sim.set_fail_every_write(true);
    let error = client
        .batch_upsert(
            ObjectKind::Contacts,
            "ivoris_patient_key",
            &contacts(1, "x"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Server { status: 500 | 503 }),
        "{error:?}"
    );
    assert_eq!(
        hs.sim
            .requests_to("POST /crm/objects/2026-03/contacts/batch/upsert"),
        u64::from(RetryPolicy::default().max_attempts)
    );
    assert_eq!(
        client.stats().retries,
        u64::from(RetryPolicy::default().max_attempts - 1)
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error_after_the_attempts() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let hs = portal(|_| {}).await;
    let mut config = hs.config(ApiVersion::default(), Tier::Professional);
    config.base_url = base;
    let client = HubSpotClient::new(config).unwrap();
    let error = client.properties(ObjectKind::Contacts).await.unwrap_err();
    assert!(matches!(error, ClientError::Transport { .. }), "{error:?}");
    assert_eq!(client.stats().sent["properties"], 6);
}

#[tokio::test]
async fn the_daily_usage_reports_the_portal_budget_and_the_client_keeps_to_it() {
    let hs = portal(|o| o.tier = Tier::Professional).await;
    let client = hs.client();
    let id = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "A")])
        .unwrap();
    // Other integrations of the portal used all but five requests today.
    hs.sim.set_daily_remaining(5);
    let usage = client.daily_usage().await.unwrap().expect("a daily budget");
    let per_day = u64::from(Tier::Professional.per_day());
    assert_eq!(usage.name, "api-calls-daily");
    assert_eq!(usage.usage_limit, per_day);
    // The usage request itself is counted.
    assert_eq!(usage.current_usage, per_day - 4);
    assert_eq!(usage.remaining(), 4);
    assert_eq!(usage.fetch_status.as_deref(), Some("SUCCESS"));
    let resets_at: chrono::DateTime<chrono::Utc> = usage
        .resets_at
        .as_deref()
        .expect("reset time")
        .parse()
        .unwrap();
    assert!(resets_at > chrono::Utc::now());
    assert_eq!(client.daily_remaining(), 4);
    assert_eq!(
        hs.sim
            .requests_to("GET /account-info/2026-03/api-usage/daily/private-apps"),
        1
    );

    for _ in 0..4 {
        client.get(ObjectKind::Contacts, &id, &[]).await.unwrap();
    }
    let error = client
        .get(ObjectKind::Contacts, &id, &[])
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::DailyLimit { .. }), "{error:?}");
    assert_eq!(
        hs.sim.rate_limited("DAILY"),
        0,
        "stopped before HubSpot refused"
    );
}

#[tokio::test]
async fn two_clients_of_one_portal_count_against_one_window() {
    let hs = portal(|o| o.tier = Tier::Free).await;
    let config = hs.config(ApiVersion::default(), Tier::Free);
    let mut again = hs.config(ApiVersion::default(), Tier::Free);
    again.clock = config.clock.clone();
    let id = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "A")])
        .unwrap();
    // A sync fills the window; a second client of the same portal (the
    // next run, or a scan beside it) must wait for it, not find out from
    // a 429.
    let first = HubSpotClient::new(config).unwrap();
    for _ in 0..100 {
        first.get(ObjectKind::Contacts, &id, &[]).await.unwrap();
    }
    let second = HubSpotClient::new(again).unwrap();
    for _ in 0..20 {
        second.get(ObjectKind::Contacts, &id, &[]).await.unwrap();
    }
    assert_eq!(hs.sim.rate_limited("TEN_SECONDLY_ROLLING"), 0);
    assert!(second.stats().rate_limited.is_empty());
    assert!(second.stats().waited > Duration::ZERO);
}

#[tokio::test]
async fn sends_kept_by_the_previous_process_make_the_next_one_wait() {
    let hs = portal(|o| o.tier = Tier::Free).await;
    let id = hs
        .sim
        .seed_legacy("contacts", &[("lastname", "A")])
        .unwrap();
    let first = HubSpotClient::new(hs.config(ApiVersion::default(), Tier::Free)).unwrap();
    for _ in 0..100 {
        first.get(ObjectKind::Contacts, &id, &[]).await.unwrap();
    }
    let kept = first.recent_sends();
    assert_eq!(kept.len(), 100, "every send is still in the window");
    // The next process: its own clock, so a limiter of its own.
    let next = HubSpotClient::new(hs.config(ApiVersion::default(), Tier::Free)).unwrap();
    assert_eq!(next.portal_fingerprint(), first.portal_fingerprint());
    next.recall_sends(&kept);
    for _ in 0..20 {
        next.get(ObjectKind::Contacts, &id, &[]).await.unwrap();
    }
    assert_eq!(hs.sim.rate_limited("TEN_SECONDLY_ROLLING"), 0);
    assert!(next.stats().waited > Duration::ZERO);
}
