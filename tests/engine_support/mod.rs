//! Shared set-up of the engine tests: a sandbox in-process and a sync
//! environment pointing at it with short timeouts and backoff.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::run::{
    Credentials, SyncEnvironment, SyncRequest, SyncSummary, sync,
};
use ivoris_hubspot_sync::hubspot::Clock;
use ivoris_hubspot_sync::ivoris::pacing::Pacing;
use ivoris_hubspot_sync::sandbox::hubspot::HubSpotSim;
use ivoris_hubspot_sync::sandbox::{FaultProfile, Sandbox, SandboxOptions, Size, credentials};
use ivoris_hubspot_sync::secrets::{IvorisSecrets, Secret};
use ivoris_hubspot_sync::settings::Settings;

pub struct Bed {
    pub sandbox: Sandbox,
    pub env: SyncEnvironment,
    pub dir: tempfile::TempDir,
}

pub fn options(seed: u64) -> SandboxOptions {
    SandboxOptions {
        seed,
        size: Size::Small,
        faults: FaultProfile::None,
        rate_limits: false,
        ..SandboxOptions::default()
    }
}

pub async fn bed(options: SandboxOptions) -> Bed {
    let sandbox = Sandbox::start(options).await.expect("sandbox");
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger_path: PathBuf = dir.path().join("ledger.sqlite");
    let settings = Settings::for_sandbox(
        &sandbox.hubspot_url,
        &sandbox.locations,
        Some(ledger_path.clone()),
    );
    let ivoris: BTreeMap<String, IvorisSecrets> = sandbox
        .locations
        .iter()
        .map(|l| {
            (
                l.key.clone(),
                IvorisSecrets {
                    password: Secret::new(credentials::IVORIS_PASSWORD),
                    api_key: Secret::new(credentials::IVORIS_API_KEY),
                },
            )
        })
        .collect();
    let sim = sandbox.ivoris.clone();
    let env = SyncEnvironment {
        settings,
        ledger_path,
        credentials: Credentials {
            hubspot_token: Secret::new(credentials::HUBSPOT_TOKEN),
            ivoris,
        },
        clock: Arc::new(move || sim.now()),
        tune_ivoris: Some(Arc::new(|config| {
            config.timeout = Duration::from_secs(2);
            config.retry.base_delay = Duration::from_millis(5);
            config.retry.max_delay = Duration::from_millis(50);
            config.pacing = Pacing::FixedPause(Duration::ZERO);
        })),
        tune_hubspot: Some(Arc::new(|config| {
            config.timeout = Duration::from_secs(5);
            config.retry.base = Duration::from_millis(5);
            config.retry.cap = Duration::from_millis(50);
        })),
    };
    Bed { sandbox, env, dir }
}

pub async fn run(env: &SyncEnvironment) -> SyncSummary {
    let request = SyncRequest {
        trigger: "test".into(),
        ..SyncRequest::default()
    };
    sync(env, &request, &|_| {}, &CancelFlag::new())
        .await
        .expect("sync runs")
}

/// A dry run: planned and rolled back, nothing sent.
pub async fn dry_run(env: &SyncEnvironment) -> SyncSummary {
    let request = SyncRequest {
        dry_run: true,
        trigger: "test".into(),
        ..SyncRequest::default()
    };
    sync(env, &request, &|_| {}, &CancelFlag::new())
        .await
        .expect("dry run")
}

/// One sync that must succeed (its message shown if not).
pub async fn run_ok(env: &SyncEnvironment) -> SyncSummary {
    let summary = run(env).await;
    assert_eq!(
        summary.outcome,
        ivoris_hubspot_sync::ledger::RunOutcome::Success,
        "{:?}",
        summary.message
    );
    summary
}

/// One sync that must succeed and leave no dead letter.
pub async fn run_clean(env: &SyncEnvironment) -> SyncSummary {
    let summary = run_ok(env).await;
    assert_eq!(summary.dead_letters, 0, "no dead letter");
    summary
}

/// System properties HubSpot stamps itself; they differ between two portals
/// (ids, times) and say nothing about what the sync wrote.
const SYSTEM_PROPERTIES: [&str; 5] = [
    "hs_object_id",
    "createdate",
    "hs_createdate",
    "lastmodifieddate",
    "hs_lastmodifieddate",
];

/// HubSpot's synced records by their unique keys, so two portals can be
/// compared whatever ids they handed out: properties without system
/// properties, pipeline and stage as labels, associations as key pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyedState {
    /// Contacts by `ivoris_patient_key`.
    pub contacts: BTreeMap<String, BTreeMap<String, String>>,
    /// Deals by `ivoris_case_key`.
    pub deals: BTreeMap<String, BTreeMap<String, String>>,
    /// Appointment records by `ivoris_appointment_key`.
    pub appointments: BTreeMap<String, BTreeMap<String, String>>,
    /// Associations as `("kind:key", "kind:key")`, both directions.
    pub associations: BTreeSet<(String, String)>,
    /// Live records per type (contacts, deals, appointments).
    pub live: BTreeMap<String, usize>,
    /// Unique keys found on more than one live record, and live records
    /// without a key.
    pub duplicates: Vec<String>,
}

/// Object type name in the sandbox, unique key property, short name in keys.
const KEYED_TYPES: [(&str, &str, &str); 3] = [
    ("contacts", "ivoris_patient_key", "contact"),
    ("deals", "ivoris_case_key", "deal"),
    ("appointments", "ivoris_appointment_key", "appointment"),
];

/// Pipeline and stage ids → labels, read through the public pipelines API.
async fn pipeline_labels(hubspot_url: &str) -> BTreeMap<String, String> {
    let answer: serde_json::Value = reqwest::Client::new()
        .get(format!("{hubspot_url}/crm/v3/pipelines/deals"))
        .bearer_auth(credentials::HUBSPOT_TOKEN)
        .send()
        .await
        .expect("pipelines answer")
        .json()
        .await
        .expect("pipelines JSON");
    let mut labels = BTreeMap::new();
    for pipeline in answer["results"].as_array().expect("results") {
        let label = pipeline["label"].as_str().expect("label").to_owned();
        labels.insert(
            pipeline["id"].as_str().expect("id").to_owned(),
            label.clone(),
        );
        for stage in pipeline["stages"].as_array().expect("stages") {
            labels.insert(
                stage["id"].as_str().expect("stage id").to_owned(),
                format!(
                    "{label} / {}",
                    stage["label"].as_str().expect("stage label")
                ),
            );
        }
    }
    labels
}

/// Reads the sandbox's HubSpot state by unique keys.
pub async fn keyed_state(sim: &HubSpotSim, hubspot_url: &str) -> KeyedState {
    // Pipeline and stage ids are the same in every portal today, but a
    // label cannot drift with the order of provisioning calls.
    let labels = pipeline_labels(hubspot_url).await;
    let mut state = KeyedState::default();
    let mut key_of: HashMap<(String, String), String> = HashMap::new();
    let mut records = Vec::new();
    for (object, key_property, short) in KEYED_TYPES {
        let live: Vec<_> = sim
            .records(object)
            .expect("records")
            .into_iter()
            .filter(|r| !r.archived)
            .collect();
        state.live.insert(object.to_owned(), live.len());
        for record in live {
            let Some(key) = record.properties.get(key_property).cloned() else {
                state
                    .duplicates
                    .push(format!("{object} {} has no key", record.id));
                continue;
            };
            key_of.insert(
                (object.to_owned(), record.id.clone()),
                format!("{short}:{key}"),
            );
            let mut properties = record.properties.clone();
            for name in SYSTEM_PROPERTIES {
                properties.remove(name);
            }
            for name in ["pipeline", "dealstage"] {
                if let Some(value) = properties.get_mut(name)
                    && let Some(label) = labels.get(value.as_str())
                {
                    *value = label.clone();
                }
            }
            let map = match short {
                "contact" => &mut state.contacts,
                "deal" => &mut state.deals,
                _ => &mut state.appointments,
            };
            if map.insert(key.clone(), properties).is_some() {
                state.duplicates.push(format!("{short}:{key} twice"));
            }
            records.push((object, record));
        }
    }
    for (object, record) in records {
        let from = key_of[&(object.to_owned(), record.id.clone())].clone();
        for (other, ids) in &record.associations {
            for id in ids {
                let to = key_of
                    .get(&(other.clone(), id.clone()))
                    .cloned()
                    .unwrap_or_else(|| format!("{other}:unkeyed {id}"));
                state.associations.insert((from.clone(), to));
            }
        }
    }
    state
}

/// Compares two keyed states part by part, so a failure names the first
/// differing record instead of printing two whole portals.
pub fn assert_same_state(actual: &KeyedState, expected: &KeyedState) {
    assert!(actual.duplicates.is_empty(), "{:?}", actual.duplicates);
    assert_eq!(actual.live, expected.live, "live records per type");
    for (name, a, e) in [
        ("contact", &actual.contacts, &expected.contacts),
        ("deal", &actual.deals, &expected.deals),
        ("appointment", &actual.appointments, &expected.appointments),
    ] {
        let keys_a: BTreeSet<&String> = a.keys().collect();
        let keys_e: BTreeSet<&String> = e.keys().collect();
        assert_eq!(keys_a, keys_e, "{name} keys");
        for (key, properties) in e {
            assert_eq!(a.get(key), Some(properties), "{name} {key}");
        }
    }
    let missing: Vec<_> = expected
        .associations
        .difference(&actual.associations)
        .take(5)
        .collect();
    let extra: Vec<_> = actual
        .associations
        .difference(&expected.associations)
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "associations missing {missing:?}, extra {extra:?}"
    );
}

/// A HubSpot client clock shared with the simulation: sleeping moves the
/// simulation's time (rate windows) and the client's by the same amount,
/// so waiting out a window costs no real time but is still checked by the
/// simulated limits.
pub struct SimClock {
    /// The simulation whose clock moves along.
    pub sim: Arc<HubSpotSim>,
    /// Milliseconds slept so far.
    offset_ms: AtomicU64,
}

impl SimClock {
    pub fn new(sim: Arc<HubSpotSim>) -> SimClock {
        SimClock {
            sim,
            offset_ms: AtomicU64::new(0),
        }
    }

    /// Simulated time the client has slept so far (waiting for a rate
    /// window or backing off).
    #[allow(dead_code)]
    pub fn slept(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}

impl Clock for SimClock {
    fn now(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }

    fn wall(&self) -> DateTime<Utc> {
        let offset = i64::try_from(self.offset_ms.load(Ordering::SeqCst)).unwrap_or(i64::MAX);
        Utc::now() + chrono::Duration::milliseconds(offset)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let millis = u64::try_from(duration.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
        // The simulation first: the client's clock must never run ahead of
        // the server's.
        self.sim.advance_time(Duration::from_millis(millis));
        self.offset_ms.fetch_add(millis, Ordering::SeqCst);
        Box::pin(tokio::task::yield_now())
    }
}

/// The real binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_ivoris-hubspot-sync");

/// A `sync` of the real binary on the bed's ledger: the bed's settings
/// written to a file (with the sandbox's clock; Ivoris paced adaptively, as
/// shipped), the sandbox secrets in the environment.
pub fn sync_command(bed: &Bed) -> std::process::Command {
    bin_command(bed, "sync")
}

/// Any subcommand of the real binary on the bed's ledger, set up as for
/// [`sync_command`].
pub fn bin_command(bed: &Bed, subcommand: &str) -> std::process::Command {
    let config = bed.dir.path().join("settings.toml");
    if !config.exists() {
        let mut settings = bed.env.settings.clone();
        settings.sync.simulated_now = Some(bed.sandbox.ivoris.now());
        settings.save(&config).expect("settings written");
    }
    let mut command = std::process::Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(bed.dir.path().join("data"))
        .arg(subcommand)
        .env_remove("RUST_LOG")
        .env("HUBSPOT_TOKEN", credentials::HUBSPOT_TOKEN)
        .env("IVORIS_PASSWORD", credentials::IVORIS_PASSWORD)
        .env("IVORIS_API_KEY", credentials::IVORIS_API_KEY);
    command
}

/// Runs `command` to its end on a blocking thread (so an in-process
/// sandbox keeps serving meanwhile), stdin closed, and returns its output.
pub async fn run_binary(mut command: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        command
            .stdin(std::process::Stdio::null())
            .output()
            .expect("binary runs")
    })
    .await
    .expect("joined")
}

/// Polls `condition` every 20 ms until it holds or `limit` has passed
/// (asynchronously, so an in-process sandbox keeps serving meanwhile).
pub async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// Drains the desktop engine's events into `seen` until one matches or two
/// minutes pass; whether one matched.
pub fn wait_for(
    handle: &ivoris_hubspot_sync::engine::handle::EngineHandle,
    seen: &mut Vec<ivoris_hubspot_sync::engine::handle::Event>,
    done: impl Fn(&ivoris_hubspot_sync::engine::handle::Event) -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        for event in handle.drain() {
            let hit = done(&event);
            seen.push(event);
            if hit {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// The records of `object` HubSpot holds, archived ones left out.
pub fn live(
    sim: &HubSpotSim,
    object: &str,
) -> Vec<ivoris_hubspot_sync::sandbox::hubspot::RecordSnapshot> {
    sim.records(object)
        .expect("records")
        .into_iter()
        .filter(|r| !r.archived)
        .collect()
}

/// A property of a record, empty where it has none.
pub fn prop<'a>(
    record: &'a ivoris_hubspot_sync::sandbox::hubspot::RecordSnapshot,
    name: &str,
) -> &'a str {
    record.properties.get(name).map_or("", String::as_str)
}
