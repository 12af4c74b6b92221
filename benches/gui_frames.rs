//! The desktop app over a big ledger: 100,000 patients, 400,000
//! appointments, 1,000,000 billing lines and 50,000 queued writes across
//! four locations, inserted in bulk. Measures, with a CPU-only kittest
//! harness (no display, no GPU), the time to the first frame and the median
//! time of a frame of the Übersicht and the Warteschlange (200 frames each,
//! data loaded, the queue with a selected row).
//!
//! Run with `cargo bench --bench gui_frames`. It prints each number with its
//! target and PASS/FAIL; building the ledger takes a while, the frames not.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use egui_kittest::Harness;
use ivoris_hubspot_sync::engine::run::{Credentials, SyncEnvironment, clock_for};
use ivoris_hubspot_sync::gui::{Panel, SyncApp};
use ivoris_hubspot_sync::ledger::{Ledger, LocationRow, RunCounts, RunOutcome};
use ivoris_hubspot_sync::mapping::store::save_version;
use ivoris_hubspot_sync::mapping::{
    CataloguePattern, Category, CategoryRule, CodePattern, Mapping,
};
use ivoris_hubspot_sync::secrets::{IvorisSecrets, Secret};
use ivoris_hubspot_sync::settings::{LocationSettings, Settings};
use support::{app_harness, median_frame_ms, wait};

const LOCATIONS: usize = 4;
const PATIENTS: usize = 100_000;
const APPOINTMENTS: usize = 400_000;
const ENTRIES: usize = 1_000_000;
const OUTBOX: usize = 50_000;
const CATEGORY_ROWS: usize = 1_000;
/// Frames measured per panel.
const FRAMES: usize = 200;
/// Targets of the issue.
const MAX_FRAME_MS: f64 = 8.0;
const MAX_STARTUP_MS: f64 = 1_000.0;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger_path = dir.path().join("ledger.sqlite");
    let built = Instant::now();
    let keys = build_ledger(&ledger_path);
    println!(
        "ledger built in {:.1} s ({PATIENTS} patients, {APPOINTMENTS} appointments, {ENTRIES} billing lines, {OUTBOX} queued writes)",
        built.elapsed().as_secs_f64()
    );
    let env = environment(&ledger_path, &keys);

    // Startup: window state, engine thread, first frame — the ledger is
    // opened on the engine thread, so its size must not delay the frame.
    let started = Instant::now();
    let mut on_overview = app_harness(env.clone(), Panel::Overview);
    on_overview.step();
    let startup_ms = started.elapsed().as_secs_f64() * 1000.0;
    let data = wait(&mut on_overview, |app| app.model.overview.is_some());
    let overview_data_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert!(data, "the overview arrived");
    let overview_ms = median_frame_ms(&mut on_overview, FRAMES);
    drop(on_overview);

    let mut on_queue = harness_on_queue(env.clone());
    let queue_ms = median_frame_ms(&mut on_queue, FRAMES);
    drop(on_queue);

    // The Zuordnung on a category table of 1,000 rows (single codes as
    // „Nicht zugeordnet“ adds them, before the shipped rows), loaded with
    // the unmapped values of the million billing lines.
    save_large_category_table(&ledger_path);
    let mut on_mapping = app_harness(env, Panel::Mapping);
    assert!(
        wait(&mut on_mapping, |app| app.model.mapping.state.is_some()),
        "the mapping arrived"
    );
    let mapping_ms = median_frame_ms(&mut on_mapping, FRAMES);

    println!();
    println!("{:<44} {:>10} {:>10}  result", "measure", "value", "target");
    let line = |name: &str, value: f64, target: f64| {
        let verdict = if value <= target { "PASS" } else { "FAIL" };
        println!("{name:<44} {value:>8.2} ms {target:>7.0} ms  {verdict}");
    };
    line("startup to first frame", startup_ms, MAX_STARTUP_MS);
    println!(
        "{:<44} {:>8.0} ms {:>10}  (engine thread, informational)",
        "startup until the overview's numbers arrive", overview_data_ms, "–"
    );
    line("Übersicht: median frame (200)", overview_ms, MAX_FRAME_MS);
    line("Warteschlange: median frame (200)", queue_ms, MAX_FRAME_MS);
    line(
        "Zuordnung, 1,000 category rows: median frame",
        mapping_ms,
        MAX_FRAME_MS,
    );
}

/// Saves a mapping version whose category table has 1,000 rows.
fn save_large_category_table(ledger_path: &std::path::Path) {
    let mut mapping = Mapping::defaults();
    let shipped = std::mem::take(&mut mapping.categories);
    let codes = CATEGORY_ROWS - shipped.len();
    mapping.categories = (0..codes)
        .map(|i| CategoryRule {
            catalogue: CataloguePattern::Named(["GOZ", "BEMA"][i % 2].into()),
            pattern: CodePattern::Exact(format!("{:04}", 10 + i)),
            category: Category::ALL[i % Category::ALL.len()],
        })
        .chain(shipped)
        .collect();
    let mut ledger = Ledger::open(ledger_path).expect("ledger");
    save_version(&mut ledger, &mapping, "bench", "1.000 Zeilen").expect("saved");
}

/// The app on the Warteschlange with its first page and a row selected.
fn harness_on_queue(env: SyncEnvironment) -> Harness<'static, SyncApp> {
    let mut harness = app_harness(env, Panel::Queue);
    assert!(
        wait(&mut harness, |app| {
            app.model.queue.total.is_some()
                && app.model.quarantine.is_some()
                && app.model.overview.is_some()
        }),
        "the queue arrived"
    );
    let first = harness
        .state()
        .model
        .queue
        .row(0)
        .map(|row| row.record_key.clone())
        .expect("a first row");
    use egui_kittest::kittest::Queryable;
    harness.get_by_label(&first).click();
    harness.run_steps(3);
    harness
}

/// Settings and (unused) credentials for the ledger's locations; nothing
/// syncs in this benchmark.
fn environment(ledger_path: &Path, keys: &[String]) -> SyncEnvironment {
    let mut settings = Settings {
        ledger: Some(ledger_path.to_owned()),
        ..Settings::default()
    };
    settings.hubspot.base_url = "http://127.0.0.1:9".into();
    settings.locations = keys
        .iter()
        .map(|key| LocationSettings {
            key: key.clone(),
            name: format!("Praxis {key}"),
            brand: None,
            ivoris_url: "http://127.0.0.1:9/webservice/api".into(),
            ivoris_user: "bench".into(),
            ivoris_app: "bench".into(),
            ivoris_app_version: "1".into(),
            allow_insecure_http: false,
            profile_id: None,
        })
        .collect();
    let ivoris: BTreeMap<String, IvorisSecrets> = keys
        .iter()
        .map(|key| {
            (
                key.clone(),
                IvorisSecrets {
                    password: Secret::new("bench"),
                    api_key: Secret::new("bench"),
                },
            )
        })
        .collect();
    SyncEnvironment {
        clock: clock_for(&settings),
        settings,
        ledger_path: ledger_path.to_owned(),
        credentials: Credentials {
            hubspot_token: Secret::new("bench"),
            ivoris,
        },
        tune_ivoris: None,
        tune_hubspot: None,
    }
}

/// Fills the ledger in one transaction per table with prepared statements.
fn build_ledger(path: &Path) -> Vec<String> {
    let mut ledger = Ledger::open(path).expect("ledger");
    let keys: Vec<String> = (0..LOCATIONS).map(|i| format!("standort-{i}")).collect();
    for key in &keys {
        ledger
            .upsert_location(&LocationRow {
                key: key.clone(),
                name: format!("Praxis {key}"),
                brand: None,
                ivoris_url: "http://127.0.0.1:9/webservice/api".into(),
                profile_id: None,
            })
            .expect("location");
    }
    let now = "2026-11-01T08:00:00Z";
    let conn = ledger.connection();
    conn.execute_batch("PRAGMA synchronous = OFF; BEGIN")
        .expect("begin");
    {
        let mut patient = conn
            .prepare(
                "INSERT INTO patients (location_key, ivoris_id, lastname, firstname, birthday, email, last_modified, record, content_hash, first_seen, updated_at)
                 VALUES (?1, ?2, 'Muster', 'Erika', '1970-01-01', NULL, ?3, '{}', ?2, ?3, ?3)",
            )
            .expect("patients");
        for i in 0..PATIENTS {
            patient
                .execute(rusqlite::params![keys[i % LOCATIONS], i.to_string(), now])
                .expect("patient");
        }
        let mut appointment = conn
            .prepare(
                "INSERT INTO appointments (location_key, ivoris_id, patient_id, start, state, last_modified, record, content_hash, first_seen, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'done', ?4, '{}', ?2, ?4, ?4)",
            )
            .expect("appointments");
        for i in 0..APPOINTMENTS {
            let patient = (i / 4) % PATIENTS;
            appointment
                .execute(rusqlite::params![
                    keys[patient % LOCATIONS],
                    i.to_string(),
                    patient.to_string(),
                    now
                ])
                .expect("appointment");
        }
        let mut entry = conn
            .prepare(
                "INSERT INTO document_entries (location_key, ivoris_id, patient_id, date, code, amount_cents, last_modified, record, content_hash, first_seen, updated_at)
                 VALUES (?1, ?2, ?3, '2026-10-01', '0010', 2500, ?4, '{}', ?2, ?4, ?4)",
            )
            .expect("entries");
        for i in 0..ENTRIES {
            let patient = (i / 10) % PATIENTS;
            entry
                .execute(rusqlite::params![
                    keys[patient % LOCATIONS],
                    i.to_string(),
                    patient.to_string(),
                    now
                ])
                .expect("entry");
        }
        let mut outbox = conn
            .prepare(
                "INSERT INTO outbox (kind, record_key, location_key, payload, payload_hash, state, attempts, last_error, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?2, ?5, ?6, ?7, ?8, ?8)",
            )
            .expect("outbox");
        for i in 0..OUTBOX {
            let key = &keys[i % LOCATIONS];
            let dead = i % 20 == 0;
            let kind = ["contact", "deal", "appointment", "association"][i % 4];
            let payload = format!(
                r#"{{"properties":{{"firstname":"Erika","lastname":"Muster","email":"e{i}@example.org","ivoris_patient_key":"{key}:{i}"}}}}"#
            );
            outbox
                .execute(rusqlite::params![
                    kind,
                    format!("{key}:{i}"),
                    key,
                    payload,
                    if dead { "dead" } else { "pending" },
                    if dead { 5 } else { 0 },
                    dead.then_some("HubSpot antwortet mit 503 / HubSpot answers 503"),
                    now
                ])
                .expect("outbox row");
        }
    }
    conn.execute_batch("COMMIT").expect("commit");
    for _ in 0..20 {
        let run = ledger
            .start_run("schedule", &keys, false)
            .expect("run started");
        let counts = RunCounts {
            read: 1_500_000,
            written: 40_000,
            ..RunCounts::default()
        };
        ledger
            .finish_run(run, RunOutcome::Warnings, None, &counts, 60_000)
            .expect("run finished");
    }
    keys
}
