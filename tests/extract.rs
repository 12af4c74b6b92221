//! Extraction of a location into the ledger against the simulated Ivoris on
//! 127.0.0.1. Expected content always comes from the simulation's world,
//! never from the code under test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use ivoris_hubspot_sync::engine::extract::{
    CancelFlag, ExtractPlan, ExtractProgress, ExtractReport, Phase, extract_location,
};
use ivoris_hubspot_sync::ivoris::client::{
    BreakerPolicy, IvorisClient, IvorisClientConfig, IvorisError, RetryPolicy, route,
};
use ivoris_hubspot_sync::ivoris::minimise::Minimised;
use ivoris_hubspot_sync::ivoris::pacing::Pacing;
use ivoris_hubspot_sync::ledger::Ledger;
use ivoris_hubspot_sync::ledger::cursors::stream;
use ivoris_hubspot_sync::sandbox::data::World;
use ivoris_hubspot_sync::sandbox::ivoris::{self, FaultUpdate, IvorisSim, RecordKind};
use ivoris_hubspot_sync::sandbox::{FaultProfile, SandboxLocation, Size, credentials};
use ivoris_hubspot_sync::secrets::Secret;
use ivoris_hubspot_sync::settings::LocationSettings;
use serde_json::json;

/// Server page size in the tests, so the small practices span several pages.
const PAGE_SIZE: usize = 7;

struct Env {
    sim: Arc<IvorisSim>,
    locations: Vec<SandboxLocation>,
    /// Holds the ledger files; removed when the test ends.
    dir: tempfile::TempDir,
}

async fn start(faults: FaultProfile) -> Env {
    let sim = Arc::new(IvorisSim::new(World::generate(5, Size::Small), faults, 5));
    sim.set_page_size(PAGE_SIZE);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    let app = ivoris::router(sim.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let locations = sim.locations(&root);
    Env {
        sim,
        locations,
        dir: tempfile::tempdir().unwrap(),
    }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 6,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(8),
    }
}

impl Env {
    fn settings(&self, index: usize) -> LocationSettings {
        let location = &self.locations[index];
        LocationSettings {
            key: location.key.clone(),
            name: location.name.clone(),
            brand: Some(location.brand.clone()),
            ivoris_url: location.ivoris_url.clone(),
            ivoris_user: credentials::IVORIS_USER.to_owned(),
            ivoris_app: credentials::IVORIS_APP.to_owned(),
            ivoris_app_version: credentials::IVORIS_APP_VERSION.to_owned(),
            allow_insecure_http: false,
            profile_id: Some(location.profile_id.clone()),
        }
    }

    fn key(&self, index: usize) -> String {
        self.locations[index].key.clone()
    }

    fn config(&self, index: usize) -> IvorisClientConfig {
        let location = &self.locations[index];
        IvorisClientConfig {
            location_key: location.key.clone(),
            base_url: location.ivoris_url.clone(),
            user: credentials::IVORIS_USER.to_owned(),
            password: Secret::new(credentials::IVORIS_PASSWORD),
            app: credentials::IVORIS_APP.to_owned(),
            app_version: credentials::IVORIS_APP_VERSION.to_owned(),
            api_key: Secret::new(credentials::IVORIS_API_KEY),
            timeout: Duration::from_secs(5),
            retry: quick_retries(),
            breaker: BreakerPolicy {
                threshold: 5,
                cool_down: Duration::from_secs(60),
            },
            pacing: Pacing::FixedPause(Duration::ZERO),
        }
    }

    fn client(&self, index: usize) -> Arc<IvorisClient> {
        Arc::new(IvorisClient::new(self.config(index)).unwrap())
    }

    /// The ledger file of this test, opened anew as after a restart.
    fn ledger(&self) -> Ledger {
        Ledger::open(&self.ledger_path()).unwrap()
    }

    fn ledger_path(&self) -> PathBuf {
        self.dir.path().join("ledger.sqlite")
    }

    /// The plan at the simulated now, reaching back past the whole history.
    fn plan(&self) -> ExtractPlan {
        let now = self.sim.now();
        ExtractPlan {
            history_start: now - chrono::Duration::days(800),
            full_sweep_due: false,
            ..ExtractPlan::new(now)
        }
    }

    async fn extract(
        &self,
        client: &Arc<IvorisClient>,
        ledger: &mut Ledger,
        index: usize,
        plan: &ExtractPlan,
    ) -> ExtractReport {
        extract_location(
            client,
            ledger,
            &self.settings(index),
            plan,
            &|_| {},
            &CancelFlag::new(),
        )
        .await
        .unwrap()
    }

    fn calls(&self, route: &str) -> u64 {
        self.sim
            .counters()
            .get(&format!("GET {route}"))
            .map_or(0, |by_status| by_status.values().sum())
    }
}

/// What the world says a location's ledger must hold.
#[derive(Debug, PartialEq)]
struct Content {
    patients: BTreeSet<String>,
    appointments: BTreeSet<String>,
    /// Entry Id → amount in cents.
    entries: BTreeMap<String, Option<i64>>,
}

fn world_content(sim: &IvorisSim, index: usize) -> Content {
    sim.with_world(|w| {
        let location = &w.locations[index];
        Content {
            patients: location.patients.iter().map(|p| p.id.clone()).collect(),
            appointments: location.appointments.iter().map(|a| a.id.clone()).collect(),
            entries: location
                .entries
                .iter()
                .map(|e| (e.id.clone(), e.amount_cents()))
                .collect(),
        }
    })
}

fn ids(ledger: &Ledger, table: &str, key: &str) -> BTreeSet<String> {
    let sql = format!("SELECT ivoris_id FROM {table} WHERE location_key = ?1");
    let mut statement = ledger.connection().prepare(&sql).unwrap();
    statement
        .query_map([key], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn ledger_content(ledger: &Ledger, key: &str) -> Content {
    let mut statement = ledger
        .connection()
        .prepare("SELECT ivoris_id, amount_cents FROM document_entries WHERE location_key = ?1")
        .unwrap();
    let entries = statement
        .query_map([key], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    Content {
        patients: ids(ledger, "patients", key),
        appointments: ids(ledger, "appointments", key),
        entries,
    }
}

/// Every record as stored equals the world's record reduced for the ledger.
fn assert_records_match_world(ledger: &Ledger, sim: &IvorisSim, index: usize) {
    let location = sim.with_world(|w| w.locations[index].clone());
    for patient in &location.patients {
        assert_eq!(
            ledger.patient(&location.key, &patient.id).unwrap(),
            Some(patient.minimised())
        );
    }
    for appointment in &location.appointments {
        assert_eq!(
            ledger.appointment(&location.key, &appointment.id).unwrap(),
            Some(appointment.minimised())
        );
    }
    for entry in &location.entries {
        assert_eq!(
            ledger.document_entry(&location.key, &entry.id).unwrap(),
            Some(entry.minimised())
        );
    }
}

fn per_day(days: impl Iterator<Item = Option<NaiveDate>>) -> BTreeMap<NaiveDate, u64> {
    let mut counts = BTreeMap::new();
    for day in days.flatten() {
        *counts.entry(day).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_full_extract_mirrors_the_world_and_a_second_changes_nothing() {
    let env = start(FaultProfile::None).await;
    let plan = env.plan();
    let world = env.sim.snapshot();
    let location = &world.locations[0];
    assert!(
        location.appointments.iter().all(|a| a
            .start
            .is_some_and(|s| s >= plan.history_start && s <= plan.horizon)),
        "the plan covers every appointment of the world"
    );
    let client = env.client(0);
    let mut ledger = env.ledger();
    let phases = std::sync::Mutex::new(Vec::new());
    let progress = |p: ExtractProgress| phases.lock().unwrap().push(p.phase);
    let report = extract_location(
        &client,
        &mut ledger,
        &env.settings(0),
        &plan,
        &progress,
        &CancelFlag::new(),
    )
    .await
    .unwrap();
    assert!(report.complete(), "{:?}", report.stopped);

    let key = env.key(0);
    assert_eq!(ledger_content(&ledger, &key), world_content(&env.sim, 0));
    assert_records_match_world(&ledger, &env.sim, 0);
    let counts = ledger.counts(Some(&key)).unwrap();
    assert_eq!(counts.chairs as usize, location.chairs.len());
    assert_eq!(counts.practitioners as usize, location.practitioners.len());
    assert_eq!(
        counts.appointment_templates as usize,
        location.templates.len()
    );
    assert_eq!(counts.quarantined, 0);

    assert_eq!(report.patients.inserted as usize, location.patients.len());
    assert_eq!(
        report.appointments.inserted as usize,
        location.appointments.len()
    );
    assert_eq!(report.entries.inserted as usize, location.entries.len());
    assert_eq!(
        report.appointments_per_day,
        per_day(
            location
                .appointments
                .iter()
                .map(|a| a.start.map(|s| s.date()))
        )
    );
    assert_eq!(
        report.entries_per_day,
        per_day(location.entries.iter().map(|e| e.date))
    );
    let pages = location.patients.len().div_ceil(PAGE_SIZE) as u64 + 1;
    assert_eq!(report.calls[route::PATIENTS].requests, pages);
    assert_eq!(env.calls(route::PATIENTS), pages);
    assert_eq!(
        env.calls(route::DOCUMENT_ENTRIES),
        report.patients_asked_for_entries
    );
    let seen = phases.lock().unwrap().clone();
    for phase in [Phase::Stammdaten, Phase::Patienten, Phase::Termine] {
        assert!(seen.contains(&phase), "{phase}");
    }

    let again = env.extract(&client, &mut ledger, 0, &env.plan()).await;
    assert!(again.complete());
    for counts in [
        again.reference,
        again.patients,
        again.appointments,
        again.entries,
    ] {
        assert_eq!((counts.inserted, counts.updated), (0, 0), "{counts:?}");
    }
    assert!(again.appointments.unchanged > 0);
    assert_eq!(ledger_content(&ledger, &key), world_content(&env.sim, 0));
}

/// Runs extractions until one completes (a scheduler would retry later).
async fn until_complete(
    env: &Env,
    index: usize,
    config: IvorisClientConfig,
    sweep: bool,
) -> Vec<ExtractReport> {
    let mut reports = Vec::new();
    for _ in 0..30 {
        let client = Arc::new(IvorisClient::new(config.clone()).unwrap());
        let mut ledger = env.ledger();
        let mut plan = env.plan();
        plan.full_sweep_due =
            sweep && ExtractPlan::sweep_due(&ledger, &env.key(index), plan.now, 7).unwrap();
        let report = env.extract(&client, &mut ledger, index, &plan).await;
        let done = report.complete();
        reports.push(report);
        if done {
            return reports;
        }
    }
    panic!("no complete extraction in 30 runs");
}

#[tokio::test]
async fn hostile_faults_and_a_full_sweep_give_the_fault_free_content() {
    let env = start(FaultProfile::Hostile).await;
    // Hostile rates, with repeats and missing lines frequent enough that
    // every run meets them whatever order the slow answers arrive in.
    env.sim.update_faults(&FaultUpdate {
        slow_delay_ms: Some(400),
        duplicate_on_page_rate: Some(0.8),
        missing_entries_rate: Some(0.5),
        ..FaultUpdate::default()
    });
    let config = IvorisClientConfig {
        timeout: Duration::from_millis(250),
        breaker: BreakerPolicy {
            threshold: 10,
            cool_down: Duration::from_secs(60),
        },
        ..env.config(0)
    };
    let key = env.key(0);
    let expected = world_content(&env.sim, 0);

    let first = until_complete(&env, 0, config.clone(), false).await;
    let ledger = env.ledger();
    let before_sweep = ledger_content(&ledger, &key);
    assert_eq!(before_sweep.patients, expected.patients);
    assert_eq!(before_sweep.appointments, expected.appointments);
    assert!(
        before_sweep.entries.len() < expected.entries.len(),
        "some entries were left out on the first ask"
    );
    let duplicates: u64 = first.iter().map(|r| r.patients.duplicates).sum();
    assert!(duplicates > 0, "a patient repeated on the next page");
    let retries: u64 = first
        .iter()
        .flat_map(|r| r.calls.values())
        .map(|c| c.retries)
        .sum();
    assert!(retries > 0);
    drop(ledger);

    let swept = until_complete(&env, 0, config, true).await;
    assert!(swept.iter().any(|r| r.sweep_done));
    let ledger = env.ledger();
    assert_eq!(ledger_content(&ledger, &key), expected);
    assert_records_match_world(&ledger, &env.sim, 0);
    assert!(
        ledger
            .cursor(&key, stream::ENTRY_SWEEP_DONE)
            .unwrap()
            .is_some()
    );
    assert!(!ExtractPlan::sweep_due(&ledger, &key, env.sim.now(), 7).unwrap());
}

#[tokio::test]
async fn failing_windows_are_halved_and_the_extract_still_converges() {
    let env = start(FaultProfile::None).await;
    env.sim.update_faults(&FaultUpdate {
        server_error_rate: Some(0.35),
        ..FaultUpdate::default()
    });
    let config = IvorisClientConfig {
        retry: RetryPolicy {
            max_retries: 1,
            ..quick_retries()
        },
        breaker: BreakerPolicy {
            threshold: 50,
            cool_down: Duration::from_secs(60),
        },
        ..env.config(0)
    };
    let reports = until_complete(&env, 0, config, false).await;
    let halved: u64 = reports.iter().map(|r| r.windows_halved).sum();
    assert!(halved > 0, "some window was halved");
    assert!(reports.iter().any(|r| !r.errors.is_empty()));
    let ledger = env.ledger();
    assert_eq!(
        ledger_content(&ledger, &env.key(0)),
        world_content(&env.sim, 0)
    );
}

#[tokio::test]
async fn new_and_changed_records_arrive_after_simulated_days() {
    let env = start(FaultProfile::None).await;
    let client = env.client(0);
    let mut ledger = env.ledger();
    let key = env.key(0);
    let first_now = env.sim.now();
    assert!(
        env.extract(&client, &mut ledger, 0, &env.plan())
            .await
            .complete()
    );

    let summary = env.sim.advance_days(7);
    assert!(summary.new_appointments + summary.settled_appointments > 0);
    env.sim.reset_counters();
    let report = env.extract(&client, &mut ledger, 0, &env.plan()).await;
    assert!(report.complete());
    assert_eq!(ledger_content(&ledger, &key), world_content(&env.sim, 0));
    assert_records_match_world(&ledger, &env.sim, 0);
    assert!(report.appointments.inserted + report.appointments.updated > 0);

    // Billing lines were asked only for patients with activity: an
    // appointment from a window before the old now on, or a change since.
    let world = env.sim.snapshot();
    let location = &world.locations[0];
    let window_start = (first_now - chrono::Duration::days(14)).date();
    let active: BTreeSet<&String> = location
        .appointments
        .iter()
        .filter(|a| {
            a.start
                .is_some_and(|s| s.date() >= window_start && s <= world.now)
                || a.last_modified.is_some_and(|m| m >= first_now)
        })
        .filter_map(|a| a.patient_id.as_ref())
        .chain(
            location
                .patients
                .iter()
                .filter(|p| p.last_modified.is_some_and(|m| m >= first_now))
                .map(|p| &p.id),
        )
        .collect();
    let asked = env.calls(route::DOCUMENT_ENTRIES);
    assert_eq!(asked, report.patients_asked_for_entries);
    assert!(asked > 0);
    assert!(asked as usize <= active.len(), "{asked} > {}", active.len());
    assert!((asked as usize) < location.patients.len());
}

/// Checks that every record a cursor has passed is in the ledger.
fn assert_cursors_not_ahead(ledger: &Ledger, world: &World, key: &str) {
    let location = world.location(key).unwrap();
    let stored = ledger_content(ledger, key);
    if let Some(page) = ledger.cursor(key, stream::PATIENT_PAGE).unwrap() {
        let pages: usize = page.parse().unwrap();
        for patient in location.patients.iter().take(pages * PAGE_SIZE) {
            assert!(stored.patients.contains(&patient.id), "page cursor ahead");
        }
    }
    if let Some(day) = ledger.cursor(key, stream::APPOINTMENT_DAY).unwrap() {
        let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d").unwrap();
        for appointment in &location.appointments {
            if appointment.start.is_some_and(|s| s.date() < day) {
                assert!(
                    stored.appointments.contains(&appointment.id),
                    "window cursor ahead"
                );
            }
        }
    }
}

#[tokio::test]
async fn interrupted_extractions_resume_to_the_same_content() {
    let env = start(FaultProfile::None).await;
    let key = env.key(0);
    let world = env.sim.snapshot();
    let mut interruptions = 0;
    for stop_after in [2, 5, 9, 14, 30, 60] {
        let client = env.client(0);
        let mut ledger = env.ledger();
        let cancel = CancelFlag::new();
        let events = AtomicUsize::new(0);
        let progress = |_: ExtractProgress| {
            if events.fetch_add(1, Ordering::SeqCst) + 1 >= stop_after {
                cancel.cancel();
            }
        };
        let report = extract_location(
            &client,
            &mut ledger,
            &env.settings(0),
            &env.plan(),
            &progress,
            &cancel,
        )
        .await
        .unwrap();
        if report.cancelled {
            interruptions += 1;
        }
        assert_cursors_not_ahead(&ledger, &world, &key);
    }
    assert!(interruptions >= 4);

    // An injected failure in the middle of the windows stops the location.
    let client = env.client(0);
    let mut ledger = env.ledger();
    let windows = AtomicUsize::new(0);
    let sim = env.sim.clone();
    let progress = |p: ExtractProgress| {
        if p.phase == Phase::Termine && windows.fetch_add(1, Ordering::SeqCst) == 3 {
            sim.update_faults(&FaultUpdate {
                gateway_timeout_rate: Some(1.0),
                ..FaultUpdate::default()
            });
        }
    };
    let report = extract_location(
        &client,
        &mut ledger,
        &env.settings(0),
        &env.plan(),
        &progress,
        &CancelFlag::new(),
    )
    .await
    .unwrap();
    let stopped = report.stopped.expect("stopped");
    assert!(matches!(
        stopped.error,
        IvorisError::Server { status: 504, .. } | IvorisError::BreakerOpen { .. }
    ));
    assert_cursors_not_ahead(&ledger, &world, &key);
    drop(ledger);

    env.sim.set_fault_profile(FaultProfile::None);
    let reports = until_complete(&env, 0, env.config(0), false).await;
    assert_eq!(reports.len(), 1);
    let ledger = env.ledger();
    assert_eq!(ledger_content(&ledger, &key), world_content(&env.sim, 0));
    assert_records_match_world(&ledger, &env.sim, 0);
}

#[tokio::test]
async fn malformed_records_are_quarantined_and_the_rest_is_stored() {
    let env = start(FaultProfile::None).await;
    let key = env.key(0);
    let location = env.sim.with_world(|w| w.locations[0].clone());
    let now = env.sim.now();
    // A patient whose entries are asked for: one with a past appointment.
    let active = location
        .appointments
        .iter()
        .find(|a| a.start.is_some_and(|s| s < now))
        .and_then(|a| a.patient_id.clone())
        .unwrap();
    let replaced = location.patients[2].id.clone();
    for (kind, value) in [
        (
            RecordKind::Patient,
            json!({"Id": 4711, "Firstname": ["kaputt"], "Birthday": "31.02.1980"}),
        ),
        (
            RecordKind::Appointment,
            json!({"PatientId": active, "Start": "2026-02-30T25:00:00", "State": "Verschoben"}),
        ),
        (
            RecordKind::Entry,
            json!({"Id": "e-raw", "PatientId": active, "Amount": "zwölf Euro", "Date": "gestern"}),
        ),
    ] {
        env.sim.inject_raw(&key, kind, value).unwrap();
    }
    env.sim
        .replace_raw(
            &key,
            RecordKind::Patient,
            &replaced,
            json!({"Id": replaced, "Birthday": 19800101}),
        )
        .unwrap();

    let client = env.client(0);
    let mut ledger = env.ledger();
    let report = env.extract(&client, &mut ledger, 0, &env.plan()).await;
    assert!(report.complete());

    let mut expected = world_content(&env.sim, 0);
    expected.patients.remove(&replaced);
    assert_eq!(ledger_content(&ledger, &key), expected);

    let quarantined = ledger.quarantined(Some(&key)).unwrap();
    let found: BTreeSet<(String, Option<String>, Option<String>)> = quarantined
        .iter()
        .map(|q| {
            (
                q.item.source.clone(),
                q.item.record_id.clone(),
                q.item.field.clone(),
            )
        })
        .collect();
    let expected_rejects: BTreeSet<(String, Option<String>, Option<String>)> = [
        (route::PATIENTS, None, "Id"),
        (route::PATIENTS, Some(replaced.as_str()), "Birthday"),
        (route::APPOINTMENTS, None, "Id"),
        (route::DOCUMENT_ENTRIES, Some("e-raw"), "Date"),
    ]
    .into_iter()
    .map(|(source, id, field)| {
        (
            source.to_owned(),
            id.map(str::to_owned),
            Some(field.to_owned()),
        )
    })
    .collect();
    assert_eq!(found, expected_rejects);
    for q in &quarantined {
        assert!(!q.item.reason_de.is_empty() && !q.item.reason_en.is_empty());
        assert!(!q.item.raw.is_empty());
    }
    assert_eq!(report.patients.quarantined, 2);
    assert!(report.appointments.quarantined >= 1);
    assert_eq!(report.entries.quarantined, 1);

    // The next run also reads the bad appointment through the change route
    // (one more source); from then on a repeat adds no rows.
    let again = env.extract(&client, &mut ledger, 0, &env.plan()).await;
    assert!(again.complete());
    let rows = ledger.quarantined(Some(&key)).unwrap();
    assert_eq!(rows.len(), 5, "{rows:#?}");
    assert_eq!(rows[4].item.source, route::LATEST_APPOINTMENTS);
    let third = env.extract(&client, &mut ledger, 0, &env.plan()).await;
    assert!(third.complete());
    assert_eq!(ledger.quarantined(Some(&key)).unwrap().len(), 5);
}

#[tokio::test]
async fn a_failing_server_stops_its_location_while_others_go_on() {
    let env = start(FaultProfile::None).await;
    env.sim.update_faults(&FaultUpdate {
        unavailable_rate: Some(1.0),
        ..FaultUpdate::default()
    });
    let failing = Arc::new(
        IvorisClient::new(IvorisClientConfig {
            retry: RetryPolicy {
                max_retries: 1,
                ..quick_retries()
            },
            breaker: BreakerPolicy {
                threshold: 1,
                cool_down: Duration::from_secs(60),
            },
            ..env.config(0)
        })
        .unwrap(),
    );
    let mut ledger = env.ledger();
    let report = env.extract(&failing, &mut ledger, 0, &env.plan()).await;
    let stopped = report.stopped.expect("stopped");
    assert_eq!(stopped.phase, Phase::Stammdaten);
    assert!(matches!(
        stopped.error,
        IvorisError::Server { status: 503, .. }
    ));
    let again = env.extract(&failing, &mut ledger, 0, &env.plan()).await;
    let message = again.stopped.expect("stopped").error.to_string();
    assert!(message.contains(&env.key(0)) && message.contains("antwortet nicht"));

    env.sim.set_fault_profile(FaultProfile::None);
    let other = env.client(1);
    let report = env.extract(&other, &mut ledger, 1, &env.plan()).await;
    assert!(report.complete());
    assert_eq!(
        ledger_content(&ledger, &env.key(1)),
        world_content(&env.sim, 1)
    );
}

#[tokio::test]
async fn the_change_route_brings_changes_outside_the_windows() {
    let env = start(FaultProfile::None).await;
    let client = env.client(0);
    let mut ledger = env.ledger();
    let key = env.key(0);
    assert!(
        env.extract(&client, &mut ledger, 0, &env.plan())
            .await
            .complete()
    );
    let since = ledger.cursor(&key, stream::APPOINTMENT_CHANGES).unwrap();
    assert!(since.is_some(), "first run sets the change cursor");

    // An old appointment changes: no window of the next run covers it.
    let old = env.sim.with_world(|w| {
        let now = w.now;
        w.locations[0]
            .appointments
            .iter()
            .find(|a| {
                a.start
                    .is_some_and(|s| s < now - chrono::Duration::days(200))
            })
            .map(|a| a.id.clone())
            .unwrap()
    });
    env.sim.advance_days(1);
    env.sim
        .set_appointment_state(&key, &old, "Clarified")
        .unwrap();
    let report = env.extract(&client, &mut ledger, 0, &env.plan()).await;
    assert!(report.complete());
    assert_eq!(
        ledger
            .appointment(&key, &old)
            .unwrap()
            .unwrap()
            .state
            .as_deref(),
        Some("Clarified")
    );
    let newer: NaiveDateTime = ledger
        .cursor(&key, stream::APPOINTMENT_CHANGES)
        .unwrap()
        .and_then(|t| NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S").ok())
        .unwrap();
    assert!(Some(newer.format("%Y-%m-%dT%H:%M:%S").to_string()) > since);
}

#[tokio::test]
async fn an_extraction_can_run_on_the_engine_thread_pool() {
    fn assert_send<T: Send>(_: &T) {}
    let env = start(FaultProfile::None).await;
    let client = env.client(0);
    let mut ledger = env.ledger();
    let settings = env.settings(0);
    let plan = env.plan();
    let progress = |_: ExtractProgress| {};
    let cancel = CancelFlag::new();
    let future = extract_location(&client, &mut ledger, &settings, &plan, &progress, &cancel);
    assert_send(&future);
    assert!(future.await.unwrap().complete());
}

#[tokio::test]
async fn an_extraction_dropped_at_any_await_loses_nothing() {
    let env = start(FaultProfile::None).await;
    let key = env.key(0);
    let world = env.sim.snapshot();
    // A pause between requests stretches the run so the deadlines below
    // fall in different steps, mid-request or mid-pause.
    let config = IvorisClientConfig {
        pacing: Pacing::FixedPause(Duration::from_millis(3)),
        ..env.config(0)
    };
    let mut dropped = 0;
    for deadline_ms in [15, 40, 90, 160, 250, 400] {
        let client = Arc::new(IvorisClient::new(config.clone()).unwrap());
        let mut ledger = env.ledger();
        let plan = env.plan();
        let run = env.extract(&client, &mut ledger, 0, &plan);
        if tokio::time::timeout(Duration::from_millis(deadline_ms), run)
            .await
            .is_err()
        {
            dropped += 1;
        }
        drop(ledger);
        let ledger = env.ledger();
        assert_cursors_not_ahead(&ledger, &world, &key);
    }
    assert!(dropped >= 3, "only {dropped} runs were cut off");
    let reports = until_complete(&env, 0, env.config(0), false).await;
    assert_eq!(reports.len(), 1);
    let ledger = env.ledger();
    assert_eq!(ledger_content(&ledger, &key), world_content(&env.sim, 0));
    assert_records_match_world(&ledger, &env.sim, 0);
}
