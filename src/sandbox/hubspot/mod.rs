//! Simulated HubSpot CRM API: contacts, deals and appointments (0-421) with
//! properties, unique values, batch calls with 207 partial results (or, as
//! a real portal may, whole-call refusals of batch upserts and updates),
//! a portal seeded as a previous integration left it, search
//! with its index lag and caps, v4 associations, deal pipelines, merges,
//! HubSpot's rate limits and error shapes, and faults on demand.
//!
//! It serves both path families (`/crm/v3/…`, `/crm/v4/…` and the
//! date-versioned `/crm/objects/2026-03/…`) with the same handlers, and
//! exposes its state, counters and switches to tests through methods on
//! [`HubSpotSim`] and through `/_sandbox/` endpoints (see `routes`).
//!
//! Map: `model` (types, seeded properties and pipelines), `store` (records,
//! unique indexes, write rules), `seed` (records a previous integration
//! left, [`PortalSeed`](crate::sandbox::PortalSeed)), `search`, `limits` (clock and rate
//! limits), `faults`, `error` (HubSpot's error body), `handlers` (one
//! function per endpoint), `routes` (path parsing, auth, limits, faults).

mod error;
mod faults;
mod handlers;
mod limits;
mod model;
mod routes;
mod search;
pub mod seed;
mod store;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;

pub use error::SimError;
pub use faults::FaultSettings;
pub use model::ObjectType;
pub use store::{RecordSnapshot, StateSnapshot, ValueNotation};

use super::data::World;
use super::{BatchFailures, PortalSeed, SandboxOptions, credentials};
use crate::hubspot::Tier;
use faults::FaultDice;
use limits::{Clock, RateLimiter};
use store::{Now, Props, Store};

/// Locks a mutex; a panic elsewhere while holding it must not take the
/// simulation down, so a poisoned lock is simply taken over.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Longest request address the sandbox answers unless told otherwise:
/// HubSpot documents the 414 answer but no length, and 8 KiB is the
/// common limit of web servers' request lines.
pub const DEFAULT_MAX_URI: usize = 8_192;

/// Validated settings of the simulation.
#[derive(Debug, Clone)]
pub struct HubSpotSimConfig {
    /// Seed of the fault dice and correlation ids.
    pub seed: u64,
    /// Tier whose limits apply.
    pub tier: Tier,
    /// Whether rate limits are enforced.
    pub rate_limits: bool,
    /// Initial delay before writes become visible to search.
    pub search_index_lag: Duration,
    /// Whether the appointments object is activated.
    pub appointments_enabled: bool,
    /// How batch upserts and updates answer failed inputs.
    pub batch_failures: BatchFailures,
    /// Initial fault switches (from the profile).
    pub faults: FaultSettings,
    /// How long every API answer takes (batch calls take hundreds of
    /// milliseconds at HubSpot; zero answers at once).
    pub latency: Duration,
}

impl HubSpotSimConfig {
    pub fn from_options(options: &SandboxOptions) -> HubSpotSimConfig {
        HubSpotSimConfig {
            seed: options.seed,
            tier: options.tier,
            rate_limits: options.rate_limits,
            search_index_lag: options.search_index_lag,
            appointments_enabled: options.appointments_enabled,
            batch_failures: options.batch_failures,
            faults: FaultSettings::for_profile(options.faults),
            latency: options.hubspot_latency,
        }
    }
}

/// Request counters, as `GET /_sandbox/counters` shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Requests per endpoint template (`POST /crm/v3/objects/contacts/batch/upsert`,
    /// ids as `{id}`), counted when the route is recognised, refused or not.
    pub requests: BTreeMap<String, u64>,
    /// Requests per path as sent (method and path, no query), recognised
    /// or not: shows which path family a client really used, and paths the
    /// sandbox answered 404.
    pub paths: BTreeMap<String, u64>,
    /// Authenticated batch reads per type and the property they look
    /// records up by (`contacts by email`; `… by hs_object_id` for ids):
    /// shows whether a client read records by e-mail address.
    pub batch_reads_by: BTreeMap<String, u64>,
    /// Write requests (creates, updates, upserts, archives, merges,
    /// associations) that passed authentication.
    pub write_calls: u64,
    /// 429 answers per policy: `TEN_SECONDLY_ROLLING`, `DAILY`, `SEARCH_SECONDLY`
    /// (injected 429s count under the policy whose body they carry).
    pub rate_limited: BTreeMap<String, u64>,
    /// 429 answers the limits themselves decided, per policy (injected
    /// 429s excluded): a client that waits correctly never sees one of the
    /// ten-second window.
    pub limit_refusals: BTreeMap<String, u64>,
    /// Admitted requests that used the last slot of the ten-second window:
    /// shows that a run really reached the limit.
    pub windows_filled: u64,
    /// Injected faults per kind (`serverError`, `dropConnection`,
    /// `committedButLost`, `slow`, `rateLimit`, `failWrite`).
    pub faults_injected: BTreeMap<String, u64>,
    /// Most API requests the portal was answering at the same time.
    pub most_in_flight: u64,
    /// Longest request address (path and query) seen, in bytes.
    pub longest_uri: u64,
    /// Requests refused with 414 because their address was longer than
    /// [`HubSpotSim::set_max_uri_length`] allows.
    pub uri_too_long: u64,
}

/// An API request being answered (see [`HubSpotSim::answering`]).
pub(crate) struct Answering {
    sim: Arc<HubSpotSim>,
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.sim.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Scopes granted to a token; `None` grants everything.
type Scopes = Option<HashSet<String>>;

/// The simulated portal with its switches.
pub struct HubSpotSim {
    /// All records, properties, associations and pipelines.
    store: Mutex<Store>,
    /// Time as the simulation sees it (tests move it forward).
    clock: Clock,
    /// The three rate limits.
    limiter: RateLimiter,
    /// Whether the limiter is consulted.
    rate_limits: AtomicBool,
    /// Index lag in milliseconds (changeable at runtime).
    index_lag_ms: AtomicU64,
    /// Time every API answer takes, in milliseconds (changeable at runtime).
    latency_ms: AtomicU64,
    /// API requests being answered now.
    in_flight: AtomicU64,
    /// Longest request address (path and query) answered; longer ones get 414.
    max_uri: AtomicUsize,
    /// Whether 0-421 is activated.
    appointments_enabled: AtomicBool,
    /// Whether batch upserts and updates ignore trace ids and refuse the
    /// whole call over one bad input ([`BatchFailures::WholeCall`]).
    whole_call_batches: AtomicBool,
    /// Fault switches and dice.
    faults: FaultDice,
    /// Accepted bearer tokens and their scopes.
    tokens: Mutex<HashMap<String, Scopes>>,
    /// Request counters.
    counters: Mutex<Counters>,
    /// Source of correlation ids (deterministic per seed).
    correlation: AtomicU64,
    /// Seed mixed into correlation ids.
    seed: u64,
}

impl HubSpotSim {
    pub fn new(config: HubSpotSimConfig) -> HubSpotSim {
        let mut tokens = HashMap::new();
        tokens.insert(credentials::HUBSPOT_TOKEN.to_string(), None);
        HubSpotSim {
            store: Mutex::new(Store::new()),
            clock: Clock::new(),
            limiter: RateLimiter::new(config.tier.per_ten_seconds(), config.tier.per_day()),
            rate_limits: AtomicBool::new(config.rate_limits),
            index_lag_ms: AtomicU64::new(duration_ms(config.search_index_lag)),
            latency_ms: AtomicU64::new(duration_ms(config.latency)),
            in_flight: AtomicU64::new(0),
            max_uri: AtomicUsize::new(DEFAULT_MAX_URI),
            appointments_enabled: AtomicBool::new(config.appointments_enabled),
            whole_call_batches: AtomicBool::new(config.batch_failures == BatchFailures::WholeCall),
            faults: FaultDice::new(config.faults, config.seed),
            tokens: Mutex::new(tokens),
            counters: Mutex::new(Counters::default()),
            correlation: AtomicU64::new(0),
            seed: config.seed,
        }
    }

    /// Sets the longest request address (path and query, in bytes) the
    /// portal answers; a longer one gets 414 with a bare HTML body, as
    /// front servers answer it.
    pub fn set_max_uri_length(&self, bytes: usize) {
        self.max_uri.store(bytes, Ordering::Relaxed);
    }

    /// Notes a request's address; `false` when it is longer than allowed.
    pub(crate) fn admit_uri(&self, length: usize) -> bool {
        let admitted = length <= self.max_uri.load(Ordering::Relaxed);
        let mut counters = lock(&self.counters);
        counters.longest_uri = counters.longest_uri.max(length as u64);
        if !admitted {
            counters.uri_too_long += 1;
        }
        admitted
    }

    /// Sets how long every API answer takes.
    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms
            .store(duration_ms(latency), Ordering::Relaxed);
    }

    /// How long every API answer takes.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    /// An API request arrived; the guard counts it until it is answered.
    pub(crate) fn answering(self: &Arc<Self>) -> Answering {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let mut counters = lock(&self.counters);
        counters.most_in_flight = counters.most_in_flight.max(now);
        Answering { sim: self.clone() }
    }

    /// A copy of the counters.
    pub fn counters(&self) -> Counters {
        lock(&self.counters).clone()
    }

    /// Write requests since the last reset (the "zero writes on a re-sync" check).
    pub fn write_calls(&self) -> u64 {
        lock(&self.counters).write_calls
    }

    /// Requests to one endpoint template, e.g. `POST /crm/v3/objects/contacts/batch/upsert`.
    pub fn requests_to(&self, template: &str) -> u64 {
        lock(&self.counters)
            .requests
            .get(template)
            .copied()
            .unwrap_or(0)
    }

    /// 429s of one policy (`TEN_SECONDLY_ROLLING`, `DAILY`, `SEARCH_SECONDLY`).
    pub fn rate_limited(&self, policy: &str) -> u64 {
        lock(&self.counters)
            .rate_limited
            .get(policy)
            .copied()
            .unwrap_or(0)
    }

    /// 429s the limits decided (not injected ones), by policy.
    pub fn limit_refusals(&self, policy: &str) -> u64 {
        lock(&self.counters)
            .limit_refusals
            .get(policy)
            .copied()
            .unwrap_or(0)
    }

    pub fn reset_counters(&self) {
        *lock(&self.counters) = Counters::default();
    }

    pub fn faults(&self) -> FaultSettings {
        self.faults.settings()
    }

    /// Replaces every fault switch.
    pub fn set_faults(&self, settings: FaultSettings) {
        self.faults.set(settings);
    }

    /// Makes every write answer 500/503 without changing anything (or stops it).
    pub fn set_fail_every_write(&self, on: bool) {
        let mut settings = self.faults.settings();
        settings.fail_every_write = on;
        self.faults.set(settings);
    }

    /// Records, merges and property definitions as they are now.
    pub fn snapshot(&self) -> StateSnapshot {
        lock(&self.store).snapshot()
    }

    /// Every record of one type (`contacts`, `0-3`, …), archived ones included.
    pub fn records(&self, object_type: &str) -> Result<Vec<RecordSnapshot>, SimError> {
        let object_type = parse_type(object_type)?;
        Ok(lock(&self.store).records_snapshot(object_type))
    }

    /// Creates a record as an older integration would have (no unique keys
    /// needed; HubSpot's own rules such as e-mail uniqueness still apply),
    /// without auth, limits, faults or counters. Returns the new id.
    pub fn seed_legacy(
        &self,
        object_type: &str,
        properties: &[(&str, &str)],
    ) -> Result<String, SimError> {
        let object_type = parse_type(object_type)?;
        let props: Props = properties
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let now = self.now();
        let id = lock(&self.store).create(object_type, props, &now)?;
        Ok(id.to_string())
    }

    /// Changes a record as a person does in HubSpot's UI: HubSpot's rules
    /// apply (value formats, the stage within the pipeline, unique values;
    /// an empty value clears), but no API call is counted and no limit or
    /// fault applies. For tests of what the app notices.
    pub fn edit_by_hand(
        &self,
        object_type: &str,
        id: &str,
        properties: &[(&str, &str)],
    ) -> Result<(), SimError> {
        let object_type = parse_type(object_type)?;
        let props: Props = properties
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let now = self.now();
        lock(&self.store).update(object_type, id, props, &now)?;
        Ok(())
    }

    /// Fills the portal as a clean sync would have left it, straight into
    /// the store (no HTTP, no counters, no validation — for scans and
    /// benchmarks of big portals): per patient [`seed::clean_patient`] of
    /// `location` a contact keyed by its patient key with name and e-mail,
    /// and `deals_per_contact` deals keyed by case in „Patientenreise“ —
    /// the last open („Termin gebucht“), the others won — each associated
    /// with its contact. No duplicates by construction.
    pub fn seed_clean_portal(&self, location: &str, contacts: usize, deals_per_contact: usize) {
        let now = self.now();
        let mut store = lock(&self.store);
        for n in 0..contacts {
            let patient = seed::clean_patient(location, n);
            let props: Props = [
                ("ivoris_patient_key", patient.key.clone()),
                ("firstname", patient.firstname),
                ("lastname", patient.lastname),
                ("email", patient.email),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            let contact = store.create_unchecked(ObjectType::Contacts, props, &now);
            for j in 0..deals_per_contact {
                let open = j + 1 == deals_per_contact;
                let props: Props = [
                    ("ivoris_case_key", format!("{location}:a{n}-{j}")),
                    ("dealname", format!("Fall {n}-{j}")),
                    ("pipeline", "75835201".to_owned()),
                    (
                        "dealstage",
                        if open { "160391237" } else { "160391240" }.to_owned(),
                    ),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
                let deal = store.create_unchecked(ObjectType::Deals, props, &now);
                store.link((ObjectType::Deals, deal), (ObjectType::Contacts, contact));
            }
        }
    }

    /// Adds a deal pipeline as a portal admin would in HubSpot's settings
    /// (the API of the app only reads pipelines): `stages` are labels,
    /// open ones first, the last two closed (won, lost). Returns the id.
    pub fn seed_pipeline(&self, label: &str, stages: &[&str]) -> String {
        let mut store = lock(&self.store);
        let id = store.next_pipeline_id();
        let count = stages.len();
        let stages = stages
            .iter()
            .enumerate()
            .map(|(at, stage_label)| model::Stage {
                id: format!("{id}{at:02}"),
                label: (*stage_label).to_string(),
                probability: if at + 1 == count { "0.0" } else { "0.5" },
                closed: at + 2 >= count,
            })
            .collect();
        store.pipelines.push(model::Pipeline {
            id: id.clone(),
            label: label.to_string(),
            stages,
        });
        id
    }

    /// Associates two existing records (both directions), bypassing HTTP.
    pub fn seed_association(
        &self,
        from_type: &str,
        from_id: &str,
        to_type: &str,
        to_id: &str,
    ) -> Result<(), SimError> {
        let from = parse_type(from_type)?;
        let to = parse_type(to_type)?;
        let mut store = lock(&self.store);
        let a = store
            .of(from)
            .live(from_id)
            .map(|r| r.id)
            .ok_or_else(|| SimError::object_not_found(from_id))?;
        let b = store
            .of(to)
            .live(to_id)
            .map(|r| r.id)
            .ok_or_else(|| SimError::object_not_found(to_id))?;
        store.link((from, a), (to, b));
        Ok(())
    }

    /// Registers a token: `None` grants every scope, `Some(list)` only those
    /// (other endpoints answer 403 with `context.missingScopes`).
    pub fn set_token_scopes(&self, token: &str, scopes: Option<&[&str]>) {
        let scopes = scopes.map(|list| list.iter().map(|s| (*s).to_string()).collect());
        lock(&self.tokens).insert(token.to_string(), scopes);
    }

    /// Moves the simulated clock forward (rate windows, index lag, timestamps).
    pub fn advance_time(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn set_index_lag(&self, lag: Duration) {
        self.index_lag_ms.store(duration_ms(lag), Ordering::Relaxed);
    }

    pub fn index_lag(&self) -> Duration {
        Duration::from_millis(self.index_lag_ms.load(Ordering::Relaxed))
    }

    /// Sets how many requests today's budget still allows.
    pub fn set_daily_remaining(&self, remaining: u32) {
        self.limiter.set_daily_remaining(remaining);
    }

    /// Empties the rate windows and refills the daily budget.
    pub fn reset_rate_limits(&self) {
        self.limiter.reset();
    }

    pub fn set_rate_limits(&self, on: bool) {
        self.rate_limits.store(on, Ordering::Relaxed);
    }

    pub fn set_appointments_enabled(&self, on: bool) {
        self.appointments_enabled.store(on, Ordering::Relaxed);
    }

    pub fn appointments_enabled(&self) -> bool {
        self.appointments_enabled.load(Ordering::Relaxed)
    }

    /// Switches how batch upserts and updates answer failed inputs.
    pub fn set_batch_failures(&self, mode: BatchFailures) {
        self.whole_call_batches
            .store(mode == BatchFailures::WholeCall, Ordering::Relaxed);
    }

    /// Switches how reads render the values records hold
    /// ([`ValueNotation`]: as written, or numbers and dates in another
    /// notation, as a real portal may give them back).
    pub fn set_value_notation(&self, notation: ValueNotation) {
        for types in &mut lock(&self.store).types {
            types.notation = notation;
        }
    }

    /// How reads render values now.
    pub fn value_notation(&self) -> ValueNotation {
        lock(&self.store).types[0].notation
    }

    pub fn batch_failures(&self) -> BatchFailures {
        if self.whole_call_batches.load(Ordering::Relaxed) {
            BatchFailures::WholeCall
        } else {
            BatchFailures::MultiStatus
        }
    }

    /// Puts what `seed` says into the portal (see [`PortalSeed`] and
    /// [`seed`]), as [`HubSpotSim::seed_legacy`] would: HubSpot's rules
    /// apply, no counters move. Returns the ids of the contacts created, in
    /// order (the deals' ids follow the contacts' in the order of
    /// [`seed::SeedRecords::deals`]).
    pub fn seed_portal(&self, seed: PortalSeed, world: &World) -> Result<Vec<String>, SimError> {
        let records = seed::records(seed, world);
        for (object_type, name, label) in &records.properties {
            self.seed_property(object_type, name, label)?;
        }
        let stage_ids: HashMap<&str, String> = if records.old_pipeline {
            let pipeline = self.seed_pipeline(seed::OLD_PIPELINE, &seed::OLD_STAGES);
            let store = lock(&self.store);
            store
                .pipelines
                .iter()
                .filter(|p| p.id == pipeline)
                .flat_map(|p| p.stages.iter())
                .filter_map(|stage| {
                    let label = seed::OLD_STAGES.iter().find(|l| **l == stage.label)?;
                    Some((*label, stage.id.clone()))
                })
                .chain(std::iter::once(("", pipeline.clone())))
                .collect()
        } else {
            HashMap::new()
        };
        let mut ids = Vec::with_capacity(records.contacts.len());
        for contact in &records.contacts {
            let properties: Vec<(&str, &str)> = contact
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            ids.push(self.seed_legacy("contacts", &properties)?);
        }
        let pipeline = stage_ids.get("").cloned().unwrap_or_default();
        for deal in &records.deals {
            let stage = stage_ids.get(deal.stage).cloned().unwrap_or_default();
            let mut properties: Vec<(&str, &str)> = deal
                .properties
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            properties.extend([
                ("pipeline", pipeline.as_str()),
                ("dealstage", stage.as_str()),
            ]);
            let id = self.seed_legacy("deals", &properties)?;
            if let Some(contact) = deal.contact.and_then(|c| ids.get(c)) {
                self.seed_association("deals", &id, "contacts", contact)?;
            }
        }
        Ok(ids)
    }

    /// The ids of every closed stage (won or lost) of every deal pipeline,
    /// for tests that tell open deals from closed ones.
    pub fn closed_stages(&self) -> HashSet<String> {
        lock(&self.store)
            .pipelines
            .iter()
            .flat_map(|p| &p.stages)
            .filter(|stage| stage.closed)
            .map(|stage| stage.id.clone())
            .collect()
    }

    /// Creates a single-line text property in HubSpot's default group of
    /// the type, as an older integration would have (no counters move).
    pub fn seed_property(
        &self,
        object_type: &str,
        name: &str,
        label: &str,
    ) -> Result<(), SimError> {
        let object_type = parse_type(object_type)?;
        let group = match object_type {
            ObjectType::Contacts => "contactinformation",
            ObjectType::Deals => "dealinformation",
            ObjectType::Appointments => "appointment_information",
        };
        let body = serde_json::json!({
            "name": name, "label": label, "type": "string",
            "fieldType": "text", "groupName": group,
        });
        let now = self.now();
        handlers::property_create(
            &mut lock(&self.store),
            object_type,
            body.to_string().as_bytes(),
            &now,
        )
        .map(|_| ())
    }

    fn now(&self) -> Now {
        Now {
            instant: self.clock.now(),
            wall: self.clock.wall(),
            lag: self.index_lag(),
        }
    }

    /// A fresh correlation id (UUID form, deterministic per seed).
    fn correlation_id(&self) -> String {
        let n = self.correlation.fetch_add(1, Ordering::Relaxed);
        let mut input = [0u8; 16];
        input[..8].copy_from_slice(&self.seed.to_le_bytes());
        input[8..].copy_from_slice(&n.to_le_bytes());
        let hash = blake3::hash(&input);
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hash.as_bytes()[..16]);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Object type from a path or a test, with HubSpot's error for unknown ones.
fn parse_type(raw: &str) -> Result<ObjectType, SimError> {
    ObjectType::parse(raw)
        .ok_or_else(|| SimError::validation(format!("Unable to infer object type from: {raw}")))
}

pub use routes::router;
