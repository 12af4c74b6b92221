//! The Ivoris client against the simulated Ivoris on 127.0.0.1: credentials,
//! retries of every fault kind, the circuit breaker, one request in flight,
//! and lenient parsing record by record.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivoris_hubspot_sync::ivoris::breaker::BreakerState;
use ivoris_hubspot_sync::ivoris::client::{
    BreakerPolicy, IvorisClient, IvorisClientConfig, IvorisError, RetryPolicy, route,
};
use ivoris_hubspot_sync::ivoris::pacing::{Pacing, PacingPolicy};
use ivoris_hubspot_sync::ivoris::parse::{Lenient, parse_array};
use ivoris_hubspot_sync::ivoris::wire::{Appointment, DocumentEntry, Patient};
use ivoris_hubspot_sync::sandbox::data::World;
use ivoris_hubspot_sync::sandbox::ivoris::{self, FaultUpdate, IvorisSim};
use ivoris_hubspot_sync::sandbox::{FaultProfile, SandboxLocation, Size, credentials};
use ivoris_hubspot_sync::secrets::Secret;
use serde_json::{Value, json};

struct Harness {
    sim: Arc<IvorisSim>,
    locations: Vec<SandboxLocation>,
}

async fn start() -> Harness {
    let sim = Arc::new(IvorisSim::new(
        World::generate(3, Size::Small),
        FaultProfile::None,
        3,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    let app = ivoris::router(sim.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let locations = sim.locations(&root);
    Harness { sim, locations }
}

impl Harness {
    fn config(&self) -> IvorisClientConfig {
        let location = &self.locations[0];
        IvorisClientConfig {
            location_key: location.key.clone(),
            base_url: location.ivoris_url.clone(),
            user: credentials::IVORIS_USER.to_owned(),
            password: Secret::new(credentials::IVORIS_PASSWORD),
            app: credentials::IVORIS_APP.to_owned(),
            app_version: credentials::IVORIS_APP_VERSION.to_owned(),
            api_key: Secret::new(credentials::IVORIS_API_KEY),
            timeout: Duration::from_secs(5),
            retry: RetryPolicy {
                max_retries: 30,
                base_delay: Duration::from_millis(2),
                max_delay: Duration::from_millis(10),
            },
            breaker: BreakerPolicy {
                threshold: 3,
                cool_down: Duration::from_secs(60),
            },
            pacing: Pacing::FixedPause(Duration::ZERO),
        }
    }

    fn client(&self) -> IvorisClient {
        IvorisClient::new(self.config()).unwrap()
    }

    /// Answers the simulation counted for a route, by status.
    fn answered(&self, route: &str, status: u16) -> u64 {
        self.sim
            .counters()
            .get(&format!("GET {route}"))
            .and_then(|by_status| by_status.get(&status))
            .copied()
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn basic_auth_and_keys_are_sent_and_a_refusal_names_the_settings() {
    let h = start().await;
    h.client().ping().await.unwrap();
    assert_eq!(h.client().version().await.unwrap(), ivoris::IVORIS_VERSION);
    assert_eq!(h.answered(route::PING, 200), 1);

    for config in [
        IvorisClientConfig {
            api_key: Secret::new("wrong"),
            ..h.config()
        },
        IvorisClientConfig {
            password: Secret::new("wrong"),
            ..h.config()
        },
        IvorisClientConfig {
            app: String::new(),
            ..h.config()
        },
    ] {
        let error = IvorisClient::new(config).unwrap().ping().await.unwrap_err();
        assert!(matches!(error, IvorisError::Unauthorized { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains("API-Schlüssel") && message.contains("API key"));
        assert!(!message.contains("wrong"), "no secret in the message");
    }
    assert_eq!(h.answered(route::PING, 401), 3);
    let counts = h.client().counters();
    assert!(counts.is_empty(), "counters are per client");
}

#[tokio::test]
async fn every_fault_kind_is_retried_to_success() {
    let h = start().await;
    let expected = h.sim.with_world(|w| w.locations[0].chairs.len());
    let kinds: [(FaultUpdate, u16); 3] = [
        (
            FaultUpdate {
                gateway_timeout_rate: Some(0.6),
                ..FaultUpdate::default()
            },
            504,
        ),
        (
            FaultUpdate {
                unavailable_rate: Some(0.6),
                ..FaultUpdate::default()
            },
            503,
        ),
        (
            FaultUpdate {
                server_error_rate: Some(0.6),
                ..FaultUpdate::default()
            },
            500,
        ),
    ];
    for (update, status) in kinds {
        h.sim.set_fault_profile(FaultProfile::None);
        h.sim.update_faults(&update);
        h.sim.reset_counters();
        let client = h.client();
        for _ in 0..8 {
            let chairs = client.chairs(None).await.unwrap();
            assert_eq!(chairs.records.len(), expected);
        }
        assert!(h.answered(route::CHAIRS, status) > 0, "{status} injected");
        assert_eq!(h.answered(route::CHAIRS, 200), 8);
        let counts = client.counters()[route::CHAIRS];
        assert_eq!(counts.retries, h.answered(route::CHAIRS, status));
        assert_eq!(counts.requests, 8 + counts.retries);
        assert_eq!(counts.failures, 0);
    }
}

#[tokio::test]
async fn slow_answers_beyond_the_timeout_are_retried_to_success() {
    let h = start().await;
    h.sim.update_faults(&FaultUpdate {
        slow_rate: Some(0.5),
        slow_delay_ms: Some(600),
        ..FaultUpdate::default()
    });
    let client = IvorisClient::new(IvorisClientConfig {
        timeout: Duration::from_millis(200),
        ..h.config()
    })
    .unwrap();
    for _ in 0..4 {
        client.practitioners().await.unwrap();
    }
    let counts = client.counters()[route::PRACTITIONERS];
    assert!(counts.retries > 0, "some answers were too slow");
    assert_eq!(counts.failures, 0);
}

#[tokio::test]
async fn the_breaker_opens_after_consecutive_failures_and_says_so() {
    let h = start().await;
    h.sim.update_faults(&FaultUpdate {
        server_error_rate: Some(1.0),
        ..FaultUpdate::default()
    });
    let client = IvorisClient::new(IvorisClientConfig {
        retry: RetryPolicy {
            max_retries: 1,
            ..h.config().retry
        },
        ..h.config()
    })
    .unwrap();
    for _ in 0..3 {
        let error = client.profiles().await.unwrap_err();
        assert!(
            matches!(error, IvorisError::Server { status: 500, .. }),
            "{error}"
        );
    }
    assert_eq!(
        h.answered(route::PROFILES, 500),
        6,
        "each call retried once"
    );
    assert!(matches!(client.breaker_state(), BreakerState::Open { .. }));
    let error = client.profiles().await.unwrap_err();
    assert!(matches!(error, IvorisError::BreakerOpen { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&h.locations[0].key));
    assert!(message.contains("antwortet nicht") && message.contains("not answering"));
    assert_eq!(h.answered(route::PROFILES, 500), 6, "no request while open");
    assert_eq!(
        client.counters()[route::PROFILES].failures,
        3,
        "a refusal of the open breaker is no request"
    );
}

#[tokio::test]
async fn after_the_cool_down_one_successful_trial_closes_the_breaker() {
    let h = start().await;
    h.sim.update_faults(&FaultUpdate {
        unavailable_rate: Some(1.0),
        ..FaultUpdate::default()
    });
    let client = IvorisClient::new(IvorisClientConfig {
        retry: RetryPolicy {
            max_retries: 0,
            ..h.config().retry
        },
        breaker: BreakerPolicy {
            threshold: 2,
            cool_down: Duration::from_millis(150),
        },
        ..h.config()
    })
    .unwrap();
    for _ in 0..2 {
        assert!(client.ping().await.is_err());
    }
    assert!(matches!(
        client.ping().await,
        Err(IvorisError::BreakerOpen { .. })
    ));
    h.sim.set_fault_profile(FaultProfile::None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(client.breaker_state(), BreakerState::HalfOpen);
    client.ping().await.unwrap();
    assert_eq!(client.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn one_client_sends_one_request_at_a_time() {
    let h = start().await;
    h.sim.update_faults(&FaultUpdate {
        slow_rate: Some(1.0),
        slow_delay_ms: Some(150),
        ..FaultUpdate::default()
    });
    // Four clients in parallel overlap at the server…
    let clients: Vec<Arc<IvorisClient>> = (0..4).map(|_| Arc::new(h.client())).collect();
    let started = Instant::now();
    let calls: Vec<_> = clients
        .iter()
        .map(|c| {
            let c = c.clone();
            tokio::spawn(async move { c.ping().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let parallel = started.elapsed();
    assert!(parallel < Duration::from_millis(550), "{parallel:?}");

    // …while four calls of one client are served one after the other.
    let client = Arc::new(h.client());
    let started = Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.ping().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let serial = started.elapsed();
    assert!(serial >= Duration::from_millis(600), "{serial:?}");
}

// -------------------------------------------------------------------- pacing

/// An adaptive client without retries, so every 504 reaches the pacer once.
fn adaptive(h: &Harness, policy: PacingPolicy) -> IvorisClient {
    IvorisClient::new(IvorisClientConfig {
        pacing: Pacing::Adaptive(policy),
        retry: RetryPolicy {
            max_retries: 0,
            ..h.config().retry
        },
        breaker: BreakerPolicy {
            threshold: 100,
            ..h.config().breaker
        },
        ..h.config()
    })
    .unwrap()
}

fn rate(client: &IvorisClient) -> f64 {
    client.pace().requests_per_second.expect("adaptive")
}

#[tokio::test]
async fn the_client_backs_off_on_504s_and_then_recovers_additively() {
    let h = start().await;
    let client = adaptive(
        &h,
        PacingPolicy {
            initial_rate: 40.0,
            // Every 504 counts, not just the first of a burst.
            calm_down: Duration::ZERO,
            ..PacingPolicy::default()
        },
    );
    for _ in 0..10 {
        client.ping().await.unwrap();
    }
    let healthy = rate(&client);
    // Slow start: ×1.1 per answer the rate held back (all but the first).
    assert!(
        healthy > 40.0 && healthy <= 40.0 * 1.1f64.powi(9) + 1e-6,
        "{healthy}"
    );

    h.sim.update_faults(&FaultUpdate {
        gateway_timeout_rate: Some(1.0),
        ..FaultUpdate::default()
    });
    for _ in 0..3 {
        let error = client.ping().await.unwrap_err();
        assert!(
            matches!(error, IvorisError::Server { status: 504, .. }),
            "{error}"
        );
    }
    let backed_off = rate(&client);
    assert_eq!(backed_off, healthy / 8.0, "halved per 504");
    assert_eq!(client.pace().slowdowns, 3);

    h.sim.set_fault_profile(FaultProfile::None);
    for _ in 0..10 {
        client.ping().await.unwrap();
    }
    let recovered = rate(&client);
    let largest_step = PacingPolicy::default().increase_per_second / backed_off;
    assert!(recovered > backed_off, "{recovered} after {backed_off}");
    assert!(
        recovered <= backed_off + 10.0 * largest_step + 1e-9,
        "additive, not the slow start: {recovered} after {backed_off}"
    );
    assert_eq!(h.answered(route::PING, 200), 20);
    assert_eq!(h.answered(route::PING, 504), 3);
}

#[tokio::test]
async fn the_ceiling_holds_however_healthy_the_answers() {
    let h = start().await;
    let client = adaptive(&h, PacingPolicy::with_ceiling(Some(20)));
    let started = Instant::now();
    for _ in 0..21 {
        client.ping().await.unwrap();
    }
    // 21 starts at least 1/20 s apart span a second or more; a busy
    // machine can only make it longer.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(rate(&client), 20.0, "grew up to the ceiling, not past it");
    assert_eq!(h.answered(route::PING, 200), 21);
}

#[tokio::test]
async fn a_fixed_pause_reports_no_rate() {
    let h = start().await;
    let client = h.client();
    client.ping().await.unwrap();
    assert_eq!(client.pace().requests_per_second, None);
}

// ------------------------------------------------------------ lenient parsing

/// What parsing one element should give: the record, or a reject with the
/// record id (if usable) and the field to blame.
enum Expect<T> {
    Record(T),
    Reject(Option<&'static str>, Option<&'static str>),
}

fn check<T: Lenient + Debug + PartialEq>(json: Value, expected: Expect<T>) {
    let parsed = parse_array::<T>(&Value::Array(vec![json.clone()])).unwrap();
    match expected {
        Expect::Record(record) => {
            assert_eq!(parsed.rejects, vec![], "{json}");
            assert_eq!(parsed.records, vec![record], "{json}");
        }
        Expect::Reject(id, field) => {
            assert_eq!(parsed.records, vec![], "{json}");
            let reject = &parsed.rejects[0];
            assert_eq!(reject.record_id.as_deref(), id, "{json}");
            assert_eq!(reject.field.as_deref(), field, "{json}");
            assert!(!reject.reason_de.is_empty() && !reject.reason_en.is_empty());
            assert_eq!(
                serde_json::from_str::<Value>(&reject.raw).unwrap(),
                json,
                "raw kept verbatim"
            );
        }
    }
}

fn at(text: &str) -> chrono::NaiveDateTime {
    ivoris_hubspot_sync::ivoris::parse::parse_date_time(text).unwrap()
}

fn patient(id: &str) -> Patient {
    Patient {
        id: id.to_owned(),
        human_readable_id: None,
        firstname: None,
        lastname: None,
        birthday: None,
        gender: None,
        email: None,
        phone: None,
        mobile: None,
        address: None,
        health_insurance: None,
        current_insurance: None,
        last_modified: None,
    }
}

#[test]
fn patients_are_parsed_leniently() {
    use Expect::{Record, Reject};
    check(json!({"Id": "p1"}), Record(patient("p1")));
    check(
        json!({"Id": "p1", "Unknown": [1, 2], "Email": null, "HumanReadableId": 10234}),
        Record(Patient {
            human_readable_id: Some("10234".into()),
            ..patient("p1")
        }),
    );
    for birthday in [
        "1985-03-15T00:00:00",
        "1985-03-15T00:00:00.000",
        "1985-03-15",
        "1985-03-15 00:00:00",
    ] {
        check(
            json!({"Id": "p1", "Birthday": birthday}),
            Record(Patient {
                birthday: Some(at("1985-03-15T00:00:00")),
                ..patient("p1")
            }),
        );
    }
    check(
        json!({"Id": "p1", "Address": {"Zip": 39104, "City": "Magdeburg"}}),
        Record(Patient {
            address: Some(ivoris_hubspot_sync::ivoris::wire::Address {
                zip: Some("39104".into()),
                city: Some("Magdeburg".into()),
                ..Default::default()
            }),
            ..patient("p1")
        }),
    );
    check::<Patient>(json!({"Firstname": "Jürgen"}), Reject(None, Some("Id")));
    check::<Patient>(json!({"Id": "  "}), Reject(None, Some("Id")));
    check::<Patient>(json!({"Id": 4711}), Reject(None, Some("Id")));
    check::<Patient>(
        json!({"Id": "p1", "Firstname": ["kaputt"]}),
        Reject(Some("p1"), Some("Firstname")),
    );
    check::<Patient>(
        json!({"Id": "p1", "Birthday": "31.02.1980"}),
        Reject(Some("p1"), Some("Birthday")),
    );
    check::<Patient>(
        json!({"Id": "p1", "Birthday": 19800101}),
        Reject(Some("p1"), Some("Birthday")),
    );
    check::<Patient>(
        json!({"Id": "p1", "Birthday": "1066-10-14T00:00:00"}),
        Reject(Some("p1"), Some("Birthday")),
    );
    check::<Patient>(
        json!({"Id": "p1", "LastModified": "2026-02-20T16:42:11+01:00"}),
        Reject(Some("p1"), Some("LastModified")),
    );
    check::<Patient>(
        json!({"Id": "p1", "Address": "Breiter Weg 5"}),
        Reject(Some("p1"), Some("Address")),
    );
    check::<Patient>(
        json!({"Id": "p1", "Address": {"City": 5}}),
        Reject(Some("p1"), Some("Address.City")),
    );
    check::<Patient>(json!(42), Reject(None, None));
}

#[test]
fn appointments_keep_unknown_states_and_reject_absurd_values() {
    use Expect::{Record, Reject};
    let json = json!({"Id": "a1", "PatientId": "p1", "Start": "2026-03-12T09:30:00",
        "DurationMinutes": 30, "State": "Verschoben", "Extra": true});
    check(
        json,
        Record(Appointment {
            id: "a1".into(),
            profile_id: None,
            patient_id: Some("p1".into()),
            practitioner_id: None,
            dentist_chair_id: None,
            template_id: None,
            type_label: None,
            start: Some(at("2026-03-12T09:30:00")),
            duration_minutes: Some(30),
            state: Some("Verschoben".into()),
            confirmation_state: None,
            last_modified: None,
        }),
    );
    check::<Appointment>(
        json!({"PatientId": "p1", "Start": "2026-02-30T25:00:00", "State": "Verschoben"}),
        Reject(None, Some("Id")),
    );
    check::<Appointment>(
        json!({"Id": "a1", "Start": "2026-02-30T25:00:00"}),
        Reject(Some("a1"), Some("Start")),
    );
    check::<Appointment>(
        json!({"Id": "a1", "DurationMinutes": "30"}),
        Reject(Some("a1"), Some("DurationMinutes")),
    );
    check::<Appointment>(
        json!({"Id": "a1", "DurationMinutes": 100000}),
        Reject(Some("a1"), Some("DurationMinutes")),
    );
    check::<Appointment>(
        json!({"Id": "a1", "DurationMinutes": -5}),
        Reject(Some("a1"), Some("DurationMinutes")),
    );
    check::<Appointment>(
        json!({"Id": "a1", "State": 3}),
        Reject(Some("a1"), Some("State")),
    );
}

#[test]
fn entries_reject_amounts_that_are_not_finite_plausible_numbers() {
    use Expect::{Record, Reject};
    let entry = |amount: Option<f64>| DocumentEntry {
        id: "e1".into(),
        profile_id: None,
        patient_id: Some("p1".into()),
        practitioner_id: None,
        date: chrono::NaiveDate::from_ymd_opt(2026, 3, 12),
        entry_type: Some("lst".into()),
        catalogue: None,
        code: Some("1040".into()),
        quantity: None,
        factor: None,
        amount,
        tooth: None,
        text: None,
        last_modified: None,
    };
    check(
        json!({"Id": "e1", "PatientId": "p1", "Date": "2026-03-12", "Type": "lst",
               "Code": "1040", "Amount": 101.36}),
        Record(entry(Some(101.36))),
    );
    check(
        json!({"Id": "e1", "PatientId": "p1", "Date": "2026-03-12T00:00:00", "Type": "lst",
               "Code": 1040}),
        Record(entry(None)),
    );
    check::<DocumentEntry>(
        json!({"Id": "e-raw", "PatientId": "p1", "Amount": "zwölf Euro", "Date": "2026-03-12"}),
        Reject(Some("e-raw"), Some("Amount")),
    );
    check::<DocumentEntry>(
        json!({"Id": "e1", "Amount": 1.0e300}),
        Reject(Some("e1"), Some("Amount")),
    );
    check::<DocumentEntry>(
        json!({"Id": "e1", "Date": "gestern"}),
        Reject(Some("e1"), Some("Date")),
    );
    check::<DocumentEntry>(
        json!({"Id": "e1", "Quantity": "viel"}),
        Reject(Some("e1"), Some("Quantity")),
    );
}

#[test]
fn a_body_that_is_not_an_array_is_not_a_page() {
    assert!(parse_array::<Patient>(&json!({"message": "An error has occurred."})).is_err());
    let parsed = parse_array::<Patient>(&json!([{"Id": "p1"}, {"Id": 2}, {"Id": "p3"}])).unwrap();
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.rejects.len(), 1);
    assert_eq!(parsed.len(), 3);
}
