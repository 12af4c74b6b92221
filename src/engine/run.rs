//! One sync run: lock, extract every chosen location, plan, load, record
//! (DESIGN.md §2). The GUI and the CLI both call [`sync`]; it reports
//! progress through a callback and stops at the next safe point when the
//! cancel flag is set.
//!
//! Loading runs beside extraction and planning: rows go to HubSpot as soon
//! as they are queued, so the rate limit is used while Ivoris is still read.
//!
//! A location whose extraction did not reach its end gets no cases planned
//! in this run: cases are formed from complete histories only, so an
//! interrupted initial sync forms the same cases as an undisturbed one.
//! What depends on neither cases nor billing lines (contacts, appointment
//! records) is planned once patients and appointments are complete.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDateTime;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use crate::hubspot::provision::{
    self, AppointmentsStatus, ProvisionError, ProvisionReport, ProvisionSpec, default_spec,
};
use crate::hubspot::{ClientError, HubSpotClient, HubSpotClientConfig};
use crate::ivoris::client::{IvorisClient, IvorisClientConfig};
use crate::ivoris::pacing::{Pacing, PacingPolicy};
use crate::ledger::lock::{LockError, WriterLock};
use crate::ledger::{Ledger, LedgerError, OutboxKind, RunCounts, RunOutcome, Side};
use crate::mapping::store::{MappingStoreError, contact_properties_to_clear, load_applied};
use crate::mapping::{Mapping, Stage};
use crate::plan::{LocationStages, StageIds};
use crate::secrets::{IvorisSecrets, Secret, SecretError, SecretKey, Secrets};
use crate::settings::{LegacyDuplicates, Settings};

use super::adopt::{LegacyPortal, read_legacy};
use super::extract::{
    CancelFlag, ExtractPlan, ExtractProgress, ExtractReport, SweepStep, extract_location_with,
};
use super::kept_provisioning;
use super::kept_window::KeptWindow;
use super::load::{LoadError, LoadFeed, LoadReport, load_following};
use super::planner::{PartPlanner, PlanContext, PlanReport, PlanScope, plan_location};
use super::reconcile::reconcile;

/// What the portal held at the start of the run, read once beside the
/// extraction and awaited by every location that still adopts (its first
/// plan).
type LegacyRead<'a> = Shared<BoxFuture<'a, Result<Arc<LegacyPortal>, ClientError>>>;

/// Sweep commits (of `extract::SWEEP_BATCH` patients each) between two
/// planned parts of a location's cases: about 250 patients, a few seconds
/// of reading, so HubSpot gets deals while Ivoris is still read, and few
/// enough plans that re-reading the outbox's hashes for each costs little.
const SWEEP_STEPS_PER_PART: usize = 10;

/// Local Berlin time as the engine sees it; injected so the sandbox's
/// simulated clock and tests can set it.
pub type Clock = Arc<dyn Fn() -> NaiveDateTime + Send + Sync>;

/// The machine's clock in Berlin local time, or the settings' fixed
/// `simulated_now`.
pub fn clock_for(settings: &Settings) -> Clock {
    match settings.sync.simulated_now {
        Some(now) => Arc::new(move || now),
        None => Arc::new(|| {
            chrono::Utc::now()
                .with_timezone(&chrono_tz::Europe::Berlin)
                .naive_local()
        }),
    }
}

/// Secrets the run needs, resolved before it starts.
#[derive(Clone)]
pub struct Credentials {
    /// HubSpot access token.
    pub hubspot_token: Secret,
    /// Ivoris credentials per location key.
    pub ivoris: BTreeMap<String, IvorisSecrets>,
}

impl Credentials {
    /// Looks up every secret the settings need; lists all missing ones.
    pub fn resolve(settings: &Settings, secrets: &Secrets<'_>) -> Result<Credentials, SecretError> {
        secrets.check(settings.locations.iter().map(|l| l.key.as_str()))?;
        let hubspot_token = secrets.require(&SecretKey::HubSpotToken)?;
        let mut ivoris = BTreeMap::new();
        for location in &settings.locations {
            ivoris.insert(location.key.clone(), secrets.ivoris(&location.key)?);
        }
        Ok(Credentials {
            hubspot_token,
            ivoris,
        })
    }
}

/// Adjusts a client configuration (tests shorten timeouts and backoff).
pub type Tune<T> = Arc<dyn Fn(&mut T) + Send + Sync>;

/// Everything a run needs from outside.
#[derive(Clone)]
pub struct SyncEnvironment {
    /// Validated settings.
    pub settings: Settings,
    /// The ledger file.
    pub ledger_path: PathBuf,
    /// Resolved secrets.
    pub credentials: Credentials,
    /// "Now" for windows and stages.
    pub clock: Clock,
    /// Optional tuning of the Ivoris clients.
    pub tune_ivoris: Option<Tune<IvorisClientConfig>>,
    /// Optional tuning of the HubSpot client.
    pub tune_hubspot: Option<Tune<HubSpotClientConfig>>,
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// Location keys; empty means all configured locations.
    pub locations: Vec<String>,
    /// Plan only: nothing is sent to HubSpot and no plan is kept.
    pub dry_run: bool,
    /// Re-read every patient's billing lines now, not only when the weekly
    /// sweep is due (when staff suspect missing lines).
    pub full_sweep: bool,
    /// `cli`, `manual`, `schedule`: recorded with the run.
    pub trigger: String,
}

/// Progress of a run, for the progress bar and the log.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Checking HubSpot's properties and pipeline.
    Provisioning,
    /// Reading a location from Ivoris.
    Extract(ExtractProgress),
    /// Computing cases, stages and changes of a location.
    Planning { location: String },
    /// Writing to HubSpot: kind, rows done and queued, rows per second so
    /// far in this phase, and the seconds it will still take at that rate.
    Loading {
        kind: OutboxKind,
        done: u64,
        total: u64,
        per_second: f64,
        remaining_secs: Option<u64>,
    },
}

/// The outcome of one location.
#[derive(Debug, Clone, Default)]
pub struct LocationSummary {
    /// Location key.
    pub key: String,
    /// What extraction did (absent when it could not start).
    pub extract: Option<ExtractReport>,
    /// What planning queued (absent when extraction was incomplete).
    pub plan: Option<PlanReport>,
    /// Why the location did not go through, German / English.
    pub problem: Option<String>,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct SyncSummary {
    /// Row id in the run history.
    pub run_id: i64,
    /// Whether it was a dry run: planned and rolled back, nothing sent.
    pub dry_run: bool,
    /// How it ended.
    pub outcome: RunOutcome,
    /// The recorded numbers.
    pub counts: RunCounts,
    /// Per location.
    pub locations: Vec<LocationSummary>,
    /// What was sent (empty for a dry run).
    pub load: LoadReport,
    /// HubSpot's portal setup as found or made.
    pub provision: Option<ProvisionReport>,
    /// Dead letters waiting for a person, after the run.
    pub dead_letters: u64,
    /// Open quarantine entries of the run's locations.
    pub quarantined: u64,
    /// Days of the reconciliation report where Ivoris, ledger and HubSpot
    /// disagree.
    pub differing_days: u64,
    /// The message recorded with the run.
    pub message: Option<String>,
    /// What every summary of such a run must repeat (German, English):
    /// today the locations whose Ivoris is reached over plain HTTP.
    pub warnings: Vec<(String, String)>,
}

/// Why a run could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Mapping(#[from] MappingStoreError),
    #[error("Standort „{0}“ ist nicht eingerichtet / Location \"{0}\" is not configured")]
    UnknownLocation(String),
    #[error("Keine Standorte eingerichtet / No locations configured")]
    NoLocations,
    #[error("{} / {}", .0.explain_de(), .0.explain_en())]
    HubSpot(ClientError),
    #[error("{} / {}", .0.explain_de(), .0.explain_en())]
    Provision(ProvisionError),
    #[error("Phase „{0}“ fehlt in der Zuordnung / Stage \"{0}\" is missing from the mapping")]
    StageUnmapped(&'static str),
}

/// Runs one sync.
pub async fn sync(
    env: &SyncEnvironment,
    request: &SyncRequest,
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &CancelFlag,
) -> Result<SyncSummary, SyncError> {
    let started = Instant::now();
    let locations = chosen_locations(&env.settings, &request.locations)?;
    let _lock = WriterLock::acquire(&env.ledger_path, &format!("sync ({})", request.trigger))?;
    let mut ledger = Ledger::open(&env.ledger_path)?;
    // With the writer lock held, a run without an outcome cannot still be
    // going: its process died (killed, crashed). Say so in the history
    // instead of showing it as running forever.
    let interrupted = ledger.close_interrupted_runs()?;
    if interrupted > 0 {
        tracing::warn!(interrupted, "earlier runs ended without finishing");
    }
    // Quarantine rows of earlier versions kept tooth, free text and
    // insurance numbers; they lose them as new ones do.
    let minimised = ledger.minimise_quarantine()?;
    if minimised > 0 {
        tracing::info!(minimised, "quarantined payloads minimised");
    }
    let keys: Vec<String> = locations.iter().map(|l| l.key.clone()).collect();
    let run_id = ledger.start_run(&request.trigger, &keys, request.dry_run)?;

    let result = run_steps(
        env,
        request,
        &mut ledger,
        run_id,
        &locations,
        progress,
        cancel,
    )
    .await;
    note_health(&ledger, &result);
    let (outcome, message, summary) = match result {
        Ok(mut summary) => {
            summary.run_id = run_id;
            let problems: Vec<String> = summary
                .locations
                .iter()
                .filter_map(|l| l.problem.clone())
                .collect();
            let outcome = if summary
                .locations
                .iter()
                .any(|l| l.extract.as_ref().is_some_and(|e| e.cancelled))
            {
                RunOutcome::Cancelled
            } else if !problems.is_empty() {
                RunOutcome::Failed
            } else if summary.dead_letters > 0
                || summary.quarantined > 0
                || summary.counts.failed > 0
            {
                RunOutcome::Warnings
            } else {
                RunOutcome::Success
            };
            let mut notes = problems;
            if summary.dead_letters > 0 {
                notes.push(format!(
                    "{} fehlgeschlagene Schreibvorgänge warten auf Prüfung / {} dead letters wait for review",
                    summary.dead_letters, summary.dead_letters
                ));
            }
            if summary.counts.failed > 0 {
                notes.push(format!(
                    "{} Schreibvorgänge sind fehlgeschlagen und werden später wiederholt / {} writes failed and will be retried later",
                    summary.counts.failed, summary.counts.failed
                ));
            }
            if summary.quarantined > 0 {
                notes.push(format!(
                    "{} Datensätze in Quarantäne / {} records in quarantine",
                    summary.quarantined, summary.quarantined
                ));
            }
            let message = (!notes.is_empty()).then(|| notes.join("; "));
            summary.outcome = outcome;
            summary.message = message.clone();
            (outcome, message, Ok(summary))
        }
        Err(RunStop::Cancelled(summary)) => {
            let message = "Abgebrochen / Cancelled".to_owned();
            let mut summary = *summary;
            summary.run_id = run_id;
            summary.outcome = RunOutcome::Cancelled;
            summary.message = Some(message.clone());
            (RunOutcome::Cancelled, Some(message), Ok(summary))
        }
        Err(RunStop::Error(error)) => (RunOutcome::Failed, Some(error.to_string()), Err(error)),
    };
    let counts = summary
        .as_ref()
        .map(|s| s.counts.clone())
        .unwrap_or_default();
    let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    ledger.finish_run(run_id, outcome, message.as_deref(), &counts, elapsed)?;
    tracing::info!(
        run_id,
        ?outcome,
        written = counts.written,
        read = counts.read,
        "sync finished"
    );
    summary
}

/// Remembers how both connections behaved in this run, for the overview.
/// Failing to note it is logged and never fails the run.
fn note_health(ledger: &Ledger, result: &Result<SyncSummary, RunStop>) {
    let note = |side: Side, location: Option<&str>, outcome: Result<(), &str>| {
        if let Err(error) = ledger.record_health(side, location, outcome) {
            tracing::warn!(%error, "connection health not recorded");
        }
    };
    let summary = match result {
        Ok(summary) => summary,
        Err(RunStop::Cancelled(summary)) => summary.as_ref(),
        Err(RunStop::Error(error @ (SyncError::HubSpot(_) | SyncError::Provision(_)))) => {
            note(Side::HubSpot, None, Err(&error.to_string()));
            return;
        }
        Err(RunStop::Error(_)) => return,
    };
    // Provisioning runs first and needs HubSpot's answers.
    if summary.provision.is_some() {
        note(Side::HubSpot, None, Ok(()));
    }
    for location in &summary.locations {
        let answered = location
            .extract
            .as_ref()
            .is_some_and(|report| report.stopped.is_none());
        match (&location.problem, answered) {
            (_, true) => note(Side::Ivoris, Some(&location.key), Ok(())),
            (Some(problem), false) => note(Side::Ivoris, Some(&location.key), Err(problem)),
            (None, false) => {}
        }
    }
}

enum RunStop {
    Cancelled(Box<SyncSummary>),
    Error(SyncError),
}

impl<E: Into<SyncError>> From<E> for RunStop {
    fn from(error: E) -> Self {
        RunStop::Error(error.into())
    }
}

pub(super) fn chosen_locations<'s>(
    settings: &'s Settings,
    wanted: &[String],
) -> Result<Vec<&'s crate::settings::LocationSettings>, SyncError> {
    if settings.locations.is_empty() {
        return Err(SyncError::NoLocations);
    }
    if wanted.is_empty() {
        return Ok(settings.locations.iter().collect());
    }
    wanted
        .iter()
        .map(|key| {
            settings
                .location(key)
                .ok_or_else(|| SyncError::UnknownLocation(key.clone()))
        })
        .collect()
}

async fn run_steps(
    env: &SyncEnvironment,
    request: &SyncRequest,
    ledger: &mut Ledger,
    run_id: i64,
    locations: &[&crate::settings::LocationSettings],
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &CancelFlag,
) -> Result<SyncSummary, RunStop> {
    let now = (env.clock)();
    // The applied version, not the latest saved one: a saved mapping
    // reaches HubSpot only through a confirmed re-apply preview.
    let (_, mapping) = load_applied(ledger)?;
    let cleared = contact_properties_to_clear(ledger, &mapping)?;

    let hubspot = hubspot_client(env).map_err(SyncError::HubSpot)?;
    let _window = KeptWindow::recall(&hubspot, &env.ledger_path);
    progress(Progress::Provisioning);
    let spec = provision_spec(&env.settings, &mapping);
    let provisioned = provisioned(env, request, &hubspot, &spec).await?;
    let stage_ids = stage_ids(&env.settings, &mapping, &provisioned)?;
    let context = PlanContext {
        legacy: None,
        mapping: &mapping,
        cleared_contact_properties: &cleared,
        stage_ids: &stage_ids,
        appointments_enabled: provisioned.appointments == AppointmentsStatus::Enabled,
        now,
    };

    let mut summary = SyncSummary {
        run_id: 0,
        dry_run: request.dry_run,
        outcome: RunOutcome::Success,
        counts: RunCounts::default(),
        locations: Vec::new(),
        load: LoadReport::default(),
        provision: Some(provisioned.clone()),
        dead_letters: 0,
        quarantined: 0,
        differing_days: 0,
        message: None,
        warnings: locations
            .iter()
            .filter_map(|location| location.insecure_http_warning())
            .collect(),
    };
    for location in locations.iter().filter(|l| l.uses_insecure_http()) {
        tracing::warn!(location = %location.key, "ivoris is reached over plain http");
    }
    // Extraction and planning queue rows; beside them the load sends what is
    // queued, so HubSpot's rate limit is used while Ivoris is still read.
    // Both run in this one task and every SQLite transaction is synchronous,
    // so the two connections never interleave inside a transaction.
    let feed = LoadFeed::new();
    let merge_duplicates = env.settings.sync.legacy_duplicates == LegacyDuplicates::Merge;
    let legacy = legacy_read(ledger, &hubspot, &provisioned, locations, merge_duplicates)?;
    // Drives the read while Ivoris is read; locations await it before
    // they plan.
    let read = async {
        if let Some(read) = legacy.clone() {
            let _ = read.await;
        }
    };
    let produce = produce(
        env,
        request,
        locations,
        &context,
        legacy.as_ref(),
        &feed,
        progress,
        cancel,
    );
    let (produced, loaded) = if request.dry_run {
        let (produced, ()) = tokio::join!(produce, read);
        (produced, None)
    } else {
        let mut load_ledger = Ledger::open(&env.ledger_path)?;
        let phase_started = std::sync::Mutex::new((OutboxKind::Contact, Instant::now()));
        let load_progress = |kind, done, total| {
            progress(loading(&phase_started, kind, done, total));
        };
        let (produced, loaded, ()) = tokio::join!(
            produce,
            load_following(&mut load_ledger, &hubspot, &feed, &load_progress, cancel),
            read
        );
        (produced, Some(loaded))
    };
    let produced = produced?;
    summary.locations = produced.locations;
    summary.counts.read = produced.counts.read;
    summary.counts.quarantined = produced.counts.quarantined;
    summary.counts.unchanged = produced.counts.unchanged;
    summary.counts.ivoris_calls = produced.counts.ivoris_calls;
    if produced.cancelled {
        summary.counts.hubspot_calls = hubspot.stats().sent.values().sum();
        return Err(RunStop::Cancelled(Box::new(summary)));
    }
    match loaded {
        None => {}
        Some(Ok(report)) => {
            summary.counts.written = report.written.values().sum();
            summary.counts.failed = report.failed;
            summary.load = report;
        }
        Some(Err(LoadError::Cancelled)) => {
            summary.counts.hubspot_calls = hubspot.stats().sent.values().sum();
            return Err(RunStop::Cancelled(Box::new(summary)));
        }
        Some(Err(LoadError::Ledger(error))) => return Err(SyncError::Ledger(error).into()),
        Some(Err(LoadError::HubSpot(error))) => return Err(SyncError::HubSpot(error).into()),
    }
    summary.counts.hubspot_calls = hubspot.stats().sent.values().sum();
    if !request.dry_run {
        let extracted: Vec<&ExtractReport> = summary
            .locations
            .iter()
            .filter_map(|l| l.extract.as_ref())
            .collect();
        let rows = reconcile(ledger, run_id, &extracted, context.appointments_enabled)?;
        summary.differing_days = rows.iter().filter(|r| r.differs()).count() as u64;
    }
    summary.dead_letters = ledger.outbox_counts()?.dead();
    summary.quarantined = locations
        .iter()
        .map(|l| ledger.counts(Some(&l.key)).map(|c| c.quarantined))
        .sum::<Result<u64, _>>()?;
    if !request.dry_run && summary.counts.failed == 0 {
        kept_provisioning::keep(&env.ledger_path, &hubspot, &spec, &provisioned);
    }
    Ok(summary)
}

/// The portal's provisioning: the report of a run that ended moments ago
/// against the same portal and spec, else asked (a dry run only resolves).
/// Asking also starts from HubSpot's count of today's budget.
async fn provisioned(
    env: &SyncEnvironment,
    request: &SyncRequest,
    hubspot: &HubSpotClient,
    spec: &ProvisionSpec,
) -> Result<ProvisionReport, SyncError> {
    if let Some(kept) = kept_provisioning::take(&env.ledger_path, hubspot, spec) {
        tracing::info!("hubspot provisioning of the run moments ago taken");
        return Ok(kept);
    }
    // The daily budget is shared by every integration of the portal: start
    // from what HubSpot counted today, so the run stops cleanly before the
    // budget runs out instead of assuming a full one. Without the answer the
    // rate headers still tell the client as the run goes.
    match hubspot.daily_usage().await {
        Ok(Some(usage)) => tracing::info!(
            remaining = usage.remaining(),
            limit = usage.usage_limit,
            "hubspot daily budget"
        ),
        Ok(None) => {}
        Err(error) => tracing::warn!(reason = %error.explain_en(), "hubspot daily usage unknown"),
    }
    if request.dry_run {
        provision::resolve(hubspot, spec).await
    } else {
        provision::provision(hubspot, spec).await
    }
    .map_err(SyncError::Provision)
}

/// The read of what the portal holds, when a chosen location has not
/// adopted the previous integration's records yet (its first sync): only
/// the kinds still to adopt are read.
fn legacy_read<'a>(
    ledger: &Ledger,
    hubspot: &'a HubSpotClient,
    provisioned: &'a ProvisionReport,
    locations: &[&crate::settings::LocationSettings],
    merge_duplicates: bool,
) -> Result<Option<LegacyRead<'a>>, LedgerError> {
    let mut kinds = Vec::new();
    for location in locations {
        kinds.extend(ledger.adoption_pending(&location.key)?);
    }
    if kinds.is_empty() {
        return Ok(None);
    }
    let contacts = kinds.contains(&OutboxKind::Contact);
    let deals = kinds.contains(&OutboxKind::Deal);
    let read = async move {
        let mut portal = read_legacy(hubspot, contacts, deals, provisioned).await?;
        portal.merge_duplicates = merge_duplicates;
        tracing::info!(
            calls = portal.calls,
            records = portal.records,
            "hubspot portal read for the switch-over"
        );
        Ok(Arc::new(portal))
    };
    Ok(Some(read.boxed().shared()))
}

/// What extraction and planning of all locations produced.
struct Produced {
    /// Per location.
    locations: Vec<LocationSummary>,
    /// Read, quarantined, unchanged and Ivoris calls.
    counts: RunCounts,
    /// Whether a location's extraction was cancelled.
    cancelled: bool,
}

/// What extraction and planning of one location produced.
struct LocationProduced {
    /// The location's summary.
    entry: LocationSummary,
    /// Read, quarantined, unchanged and Ivoris calls of this location.
    counts: RunCounts,
    /// Whether its extraction was cancelled.
    cancelled: bool,
}

/// Extracts and plans every location, all at the same time: each location
/// is its own Ivoris installation, read with one request in flight by its
/// own client and committed through its own ledger connection. The
/// locations run as futures of this one task and every SQLite transaction
/// is synchronous, so no two transactions ever interleave. `feed` is told
/// whenever rows were queued, and finished however this ends.
#[allow(clippy::too_many_arguments)]
async fn produce(
    env: &SyncEnvironment,
    request: &SyncRequest,
    locations: &[&crate::settings::LocationSettings],
    context: &PlanContext<'_>,
    legacy: Option<&LegacyRead<'_>>,
    feed: &LoadFeed,
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &CancelFlag,
) -> Result<Produced, SyncError> {
    /// Finishes the feed when planning ends, also by an error.
    struct Finish<'f>(&'f LoadFeed, bool);
    impl Drop for Finish<'_> {
        fn drop(&mut self) {
            if self.1 {
                self.0.finish();
            } else {
                self.0.abort();
            }
        }
    }
    let mut finish = Finish(feed, false);
    let each = locations.iter().map(|location| {
        produce_location(
            env, request, location, context, legacy, feed, progress, cancel,
        )
    });
    let mut produced = Produced {
        locations: Vec::new(),
        counts: RunCounts::default(),
        cancelled: false,
    };
    for outcome in futures_util::future::join_all(each).await {
        let one = outcome?;
        produced.counts.read += one.counts.read;
        produced.counts.quarantined += one.counts.quarantined;
        produced.counts.unchanged += one.counts.unchanged;
        produced.counts.ivoris_calls += one.counts.ivoris_calls;
        produced.cancelled |= one.cancelled;
        produced.locations.push(one.entry);
    }
    finish.1 = true;
    Ok(produced)
}

/// Extracts and plans one location on its own ledger connection. A
/// location whose extraction sweeps billing lines is planned in two
/// scopes: contacts and appointments as soon as they are in, the rest once
/// the extraction is complete.
#[allow(clippy::too_many_arguments)]
async fn produce_location(
    env: &SyncEnvironment,
    request: &SyncRequest,
    location: &crate::settings::LocationSettings,
    context: &PlanContext<'_>,
    legacy: Option<&LegacyRead<'_>>,
    feed: &LoadFeed,
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &CancelFlag,
) -> Result<LocationProduced, SyncError> {
    let mut produced = LocationProduced {
        entry: LocationSummary {
            key: location.key.clone(),
            ..LocationSummary::default()
        },
        counts: RunCounts::default(),
        cancelled: false,
    };
    let client = match ivoris_client(env, location) {
        Ok(client) => Arc::new(client),
        Err(problem) => {
            produced.entry.problem = Some(problem);
            return Ok(produced);
        }
    };
    let mut ledger = Ledger::open(&env.ledger_path)?;
    let now = context.now;
    let mut plan = ExtractPlan::new(now);
    plan.beside_load = !request.dry_run;
    // The first extraction sweeps too (nothing recorded yet): it is the one
    // unwindowed billing-line ask per patient, and cases are formed from its
    // data with sticky membership.
    plan.full_sweep_due = request.full_sweep
        || ExtractPlan::sweep_due(
            &ledger,
            &location.key,
            now,
            env.settings.sync.entry_sweep_days,
        )?;
    // The first plan adopts what the previous integration left; it needs
    // the portal's records first.
    let adopting = !ledger.adoption_pending(&location.key)?.is_empty();
    let legacy = legacy.filter(|_| adopting);
    // While billing lines are swept, what is complete is planned and sent:
    // contacts and appointment records (they do not depend on billing
    // lines) when the sweep starts, and the cases of every next
    // `PATIENTS_PER_PART` patients once their lines are in — when adopting,
    // only once the portal has been read. A dry run plans after the sweep.
    let mut early: Option<PlanReport> = None;
    let mut parts = (!request.dry_run).then(|| PartPlanner::new(&location.key));
    let mut portal_read: Option<Arc<LegacyPortal>> = None;
    let mut steps = 0usize;
    let mut on_sweep = |ledger: &mut Ledger, step: SweepStep<'_>| -> Result<(), LedgerError> {
        if early.is_none() {
            portal_read = match legacy.map(|read| read.clone().now_or_never()) {
                None => None,
                Some(Some(Ok(portal))) => Some(portal),
                Some(_) => return Ok(()),
            };
            let context = PlanContext {
                legacy: portal_read.as_deref(),
                ..*context
            };
            let planned = plan_location(
                ledger,
                &location.key,
                &context,
                request.dry_run,
                PlanScope::Records,
            )?;
            feed.queued();
            early = Some(planned);
        }
        if let (SweepStep::Swept(through), Some(parts)) = (step, parts.as_mut()) {
            steps += 1;
            if steps.is_multiple_of(SWEEP_STEPS_PER_PART) {
                let context = PlanContext {
                    legacy: portal_read.as_deref(),
                    ..*context
                };
                parts.plan_through(ledger, &context, through)?;
                feed.queued();
            }
        }
        Ok(())
    };
    let report = extract_location_with(
        &client,
        &mut ledger,
        location,
        &plan,
        &|p| progress(Progress::Extract(p)),
        cancel,
        &mut on_sweep,
    )
    .await
    .map_err(|e| match e {
        super::extract::ExtractError::Ledger(error) => SyncError::Ledger(error),
    })?;
    let pace = client.pace();
    tracing::info!(
        location = %location.key,
        requests_per_second = pace.requests_per_second,
        slowdowns = pace.slowdowns,
        latency_ms = pace.latency_baseline.map(|l| l.as_millis() as u64),
        "ivoris pacing at the end of the extraction"
    );
    let counts = &mut produced.counts;
    counts.ivoris_calls += report.calls.values().map(|c| c.requests).sum::<u64>();
    counts.read += report.patients.read
        + report.appointments.read
        + report.entries.read
        + report.reference.read;
    counts.quarantined += report.patients.quarantined
        + report.appointments.quarantined
        + report.entries.quarantined
        + report.reference.quarantined;
    let entry = &mut produced.entry;
    if report.cancelled {
        entry.extract = Some(report);
        produced.cancelled = true;
        return Ok(produced);
    }
    // Only planned parts (and the early records) count when the location
    // stops before the sweep ends.
    let planned_so_far = |early: Option<PlanReport>, parts: Option<PartPlanner>| {
        early.map(|mut early| {
            if let Some(parts) = parts {
                early.absorb(parts.into_report());
            }
            early
        })
    };
    if let Some(stopped) = &report.stopped {
        entry.problem = Some(stopped.error.to_string());
        entry.plan = planned_so_far(early, parts);
    } else {
        let portal = match legacy_portal(legacy).await {
            Ok(portal) => portal,
            Err(problem) => {
                entry.problem = Some(problem);
                entry.plan = planned_so_far(early, parts);
                entry.extract = Some(report);
                return Ok(produced);
            }
        };
        progress(Progress::Planning {
            location: location.key.clone(),
        });
        let context = PlanContext {
            legacy: portal.as_deref(),
            ..*context
        };
        let mut planned = match (&early, parts) {
            (Some(_), Some(parts)) => parts.finish(&mut ledger, &context)?,
            (Some(_), None) => plan_location(
                &mut ledger,
                &location.key,
                &context,
                request.dry_run,
                PlanScope::Cases,
            )?,
            (None, _) => plan_location(
                &mut ledger,
                &location.key,
                &context,
                request.dry_run,
                PlanScope::All,
            )?,
        };
        feed.queued();
        if let Some(early) = early {
            planned.absorb(early);
        }
        entry.plan = Some(planned);
    }
    if let Some(planned) = &entry.plan {
        produced.counts.quarantined += planned.quarantined;
        produced.counts.unchanged += planned.unchanged();
    }
    entry.extract = Some(report);
    Ok(produced)
}

/// What the portal held, once read, for a location that adopts; why it
/// could not be read (German / English): the location then plans nothing.
async fn legacy_portal(
    legacy: Option<&LegacyRead<'_>>,
) -> Result<Option<Arc<LegacyPortal>>, String> {
    let Some(read) = legacy else {
        return Ok(None);
    };
    read.clone().await.map(Some).map_err(|error| {
        format!(
            "Die Daten der bisherigen Integration in HubSpot konnten nicht gelesen werden, daher wurde nichts geplant: {} / The previous integration's records in HubSpot could not be read, so nothing was planned: {}",
            error.explain_de(),
            error.explain_en()
        )
    })
}

/// The Ivoris client of a location, or why there is none (German / English).
fn ivoris_client(
    env: &SyncEnvironment,
    location: &crate::settings::LocationSettings,
) -> Result<IvorisClient, String> {
    let Some(secrets) = env.credentials.ivoris.get(&location.key) else {
        return Err(format!(
            "Zugangsdaten für Ivoris ({}) fehlen / Ivoris credentials ({}) are missing",
            location.key, location.key
        ));
    };
    let mut config = IvorisClientConfig::for_location(location, secrets);
    config.timeout =
        std::time::Duration::from_secs(u64::from(env.settings.sync.ivoris_timeout_secs));
    config.pacing = Pacing::Adaptive(PacingPolicy::with_ceiling(
        env.settings.sync.ivoris_max_requests_per_second,
    ));
    if let Some(tune) = &env.tune_ivoris {
        tune(&mut config);
    }
    IvorisClient::new(config).map_err(|error| error.to_string())
}

/// A loading event with rate and remaining time of the current phase.
fn loading(
    phase_started: &std::sync::Mutex<(OutboxKind, Instant)>,
    kind: OutboxKind,
    done: u64,
    total: u64,
) -> Progress {
    let mut phase = phase_started
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if phase.0 != kind || done == 0 {
        *phase = (kind, Instant::now());
    }
    let seconds = phase.1.elapsed().as_secs_f64();
    let per_second = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    let remaining_secs =
        (per_second > 0.0).then(|| (total.saturating_sub(done) as f64 / per_second).ceil() as u64);
    Progress::Loading {
        kind,
        done,
        total,
        per_second,
        remaining_secs,
    }
}

/// The HubSpot client of a run (and of the app's „Einrichtung prüfen“).
pub fn hubspot_client(env: &SyncEnvironment) -> Result<HubSpotClient, ClientError> {
    let mut config = HubSpotClientConfig::from_settings(
        &env.settings.hubspot,
        env.credentials.hubspot_token.clone(),
    );
    if let Some(tune) = &env.tune_hubspot {
        tune(&mut config);
    }
    HubSpotClient::new(config)
}

/// What provisioning sets up: the settings' pipeline and appointments, the
/// pipelines the location table names for configured locations, the stage
/// labels of the mapping.
pub fn provision_spec(settings: &Settings, mapping: &Mapping) -> ProvisionSpec {
    let mut spec = default_spec(&settings.hubspot.pipeline, settings.hubspot.appointments);
    spec.stage_labels = Stage::ALL
        .iter()
        .filter_map(|s| mapping.stage_label(*s).map(String::from))
        .collect();
    let mut others: Vec<String> = settings
        .locations
        .iter()
        .filter_map(|l| mapping.location_pipeline(&l.key))
        .filter(|label| *label != spec.pipeline_label)
        .map(str::to_owned)
        .collect();
    others.sort();
    others.dedup();
    spec.other_pipelines = others;
    spec
}

/// Stage ids of every configured location: its own pipeline when the
/// location table names one, else the settings' pipeline.
pub(super) fn stage_ids(
    settings: &Settings,
    mapping: &Mapping,
    provisioned: &ProvisionReport,
) -> Result<LocationStages, SyncError> {
    let ids_in = |label: Option<&str>| -> Result<StageIds, SyncError> {
        let (pipeline, stage_ids) = provisioned.pipeline(label).ok_or_else(|| {
            SyncError::Provision(ProvisionError::PipelineMissing {
                label: label.unwrap_or_default().to_owned(),
            })
        })?;
        let id = |stage: Stage| -> Result<String, SyncError> {
            mapping
                .stage_label(stage)
                .and_then(|label| stage_ids.get(label))
                .cloned()
                .ok_or(SyncError::StageUnmapped(stage.key()))
        };
        Ok(StageIds {
            pipeline: pipeline.to_owned(),
            booked: id(Stage::Booked)?,
            consulted: id(Stage::Consulted)?,
            in_treatment: id(Stage::InTreatment)?,
            won: id(Stage::Won)?,
            lost: id(Stage::Lost)?,
        })
    };
    let mut stages = LocationStages::uniform(ids_in(None)?);
    for location in &settings.locations {
        let Some(label) = mapping.location_pipeline(&location.key) else {
            continue;
        };
        let own = if provisioned.other_pipelines.contains_key(label) {
            Some(label)
        } else {
            // The settings' pipeline named again in the table.
            None
        };
        stages
            .by_location
            .insert(location.key.clone(), ids_in(own)?);
    }
    Ok(stages)
}
