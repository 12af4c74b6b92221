//! The engine on its own thread, for the desktop app: the GUI sends
//! commands and drains events; it never waits on the engine (DESIGN.md §11).
//!
//! The thread owns a tokio runtime. A sync runs as a task on it; while one
//! runs, a second "sync" is refused (the ledger lock would refuse it too,
//! but the GUI deserves an immediate answer). Every event wakes the GUI
//! through the waker closure it handed in (`ctx.request_repaint()`), so the
//! engine knows nothing about egui.

//! Queries for the GUI's views (overview, queue pages, run history) are
//! commands too: the engine thread reads the ledger and answers with plain
//! data, so the GUI thread never touches SQLite. In demo mode the thread
//! first starts the embedded sandbox on its runtime and syncs against it.
//!
//! The settings panel's actions run here as well: saving writes the
//! settings file and the credential store and then reconfigures the engine
//! (leaving demo mode once locations and secrets are complete), „Verbindung
//! testen“ asks one Ivoris installation, „Einrichtung prüfen“ provisions
//! HubSpot.
//!
//! Decisions that change the ledger (duplicate review, retry / discard of
//! dead letters) go through `decisions.rs`: applied in order under the
//! writer lock, after the running sync if one holds it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::duplicates::drift::DriftCounts;
use crate::hubspot::provision::{self, ProvisionReport};
use crate::ivoris::client::{IvorisClient, IvorisClientConfig, IvorisError, RetryPolicy};
use crate::ivoris::pacing::Pacing;
use crate::ledger::reconciliation::ReconciliationRow;
use crate::ledger::{
    ConfirmedCounts, Counts, Health, Ledger, LedgerError, OutboxCounts, OutboxFilter, OutboxItem,
    QuarantineEntry, RunRecord, Side,
};
use crate::mapping::store::load_applied;
use crate::sandbox::{FaultProfile, Sandbox, SandboxOptions, Size};
use crate::secrets::{IvorisSecrets, MemorySecretStore, Secret, SecretKey, SecretStore, Secrets};
use crate::settings::{DataDirs, LocationSettings, Settings};

use super::decisions::{Applied, Decision, DecisionQueue};
use super::extract::CancelFlag;
use super::run::{
    Credentials, Progress, SyncEnvironment, SyncRequest, SyncSummary, clock_for, hubspot_client,
    provision_spec, sync,
};

/// Wakes the GUI when an event is waiting.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Runs shown in the overview.
const OVERVIEW_RUNS: usize = 5;

/// Runs shown in the history.
const HISTORY_RUNS: usize = 500;

/// How long closing the app waits for decisions still waiting on the
/// writer lock (a cancelled sync lets go of it at its next safe point).
const DECISIONS_ON_CLOSE: std::time::Duration = std::time::Duration::from_secs(10);

/// What the engine syncs against.
#[derive(Clone)]
pub enum EngineSetup {
    /// A real (or test) installation, ready to run.
    Configured(Box<SyncEnvironment>),
    /// No locations configured: start the embedded sandbox and sync it into
    /// this ledger file („Demo-Modus“).
    Demo {
        /// The demo's own ledger, never the real one.
        ledger_path: PathBuf,
    },
    /// The settings are there but the engine cannot run (a secret is
    /// missing); the GUI shows why, German / English.
    Unavailable(String),
}

/// Where the settings file is and where secrets go, so the app can save
/// them; tests hand in a temp path and a memory store.
#[derive(Clone)]
pub struct SettingsHome {
    /// The settings file written by „Speichern“.
    pub path: PathBuf,
    /// Default places of the ledger (a setting without `ledger`).
    pub dirs: DataDirs,
    /// The credential store secrets are written to and read from.
    pub store: Arc<dyn SecretStore>,
    /// Environment variables that win over the store (headless habits);
    /// a snapshot taken at start.
    pub env: HashMap<String, String>,
}

/// Settings to save: the validated file content and the secrets to change.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsChange {
    /// What the settings file will hold.
    pub settings: Settings,
    /// Secrets to store (`Some`) or delete (`None`); absent keys stay.
    pub secrets: Vec<(SecretKey, Option<Secret>)>,
}

/// „Verbindung testen“ of one location as typed in the form.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionTest {
    /// The location's connection settings (validated).
    pub location: LocationSettings,
    /// A newly typed password; `None` uses the stored one.
    pub password: Option<Secret>,
    /// A newly typed API key; `None` uses the stored one.
    pub api_key: Option<Secret>,
}

/// One step of a connection test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionCheck {
    /// The credentials are there.
    Credentials,
    /// `About/v1/Ping`.
    Ping,
    /// `About/v1/IvorisVersion`.
    Version,
    /// The first page of patients.
    SamplePage,
}

/// What one step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionStep {
    /// Which step.
    pub check: ConnectionCheck,
    /// What worked (German / English), or what failed and what to do.
    pub result: Result<String, String>,
}

/// The answer to [`Command::TestConnection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionReport {
    /// The location key tested.
    pub location: String,
    /// Steps in order; the first failure ends the test.
    pub steps: Vec<ConnectionStep>,
}

impl ConnectionReport {
    /// Whether every step worked.
    pub fn ok(&self) -> bool {
        self.steps.iter().all(|step| step.result.is_ok())
    }
}

/// Where a secret was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretState {
    /// In the credential store.
    Stored,
    /// In an environment variable (wins over the store).
    Environment,
    /// Nowhere.
    Missing,
}

/// The outcome of [`Command::SaveSettings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSettings {
    /// Whether the engine now runs with the saved settings (a `Ready`
    /// follows).
    pub applied: bool,
    /// Why not, German / English.
    pub note: Option<String>,
}

/// What the GUI asks of the engine.
#[derive(Debug, Clone)]
pub enum Command {
    /// Start a sync („Jetzt synchronisieren“).
    Sync(SyncRequest),
    /// Stop the running sync at its next safe point („Abbrechen“).
    Cancel,
    /// Read the overview snapshot.
    Refresh,
    /// Read one page of the queue.
    QueuePage {
        /// Which rows.
        filter: OutboxFilter,
        /// First row of the page.
        offset: usize,
        /// Rows in the page.
        limit: usize,
    },
    /// Read the open quarantine entries.
    Quarantine,
    /// Read the run history.
    Runs,
    /// Read the duplicate review.
    Duplicates,
    /// Remember that a group (by its key) is not a duplicate.
    DismissDuplicate(String),
    /// Mark (or unmark) every case of a patient record as a confirmed
    /// duplicate: its deals become lost „Duplikat“ with the next sync.
    MarkDuplicate {
        /// Location key.
        location: String,
        /// Ivoris patient Id.
        patient_id: String,
        /// Mark (`true`) or undo (`false`).
        duplicate: bool,
    },
    /// „HubSpot prüfen“: list the portal and look for duplicates there.
    ScanPortal,
    /// Stop the running scan.
    CancelScan,
    /// Read the last scan's findings (the review's second part).
    PortalReview,
    /// Read the „Protokoll der Entscheidungen“.
    DecisionLog,
    /// Merge one HubSpot contact into another (outbox, then sent at once).
    MergeContacts(crate::ledger::portal::MergeRequest),
    /// Set a HubSpot deal without our key lost „Duplikat“, or back.
    MarkPortalDeal {
        /// What to write.
        mark: crate::ledger::portal::DealMark,
        /// The group.
        group: String,
    },
    /// Mark (or unmark) one case as a confirmed duplicate.
    /// Make the records the last scan found out of step with HubSpot due again.
    ResendDrift,
    MarkCase {
        /// Case key.
        case_key: String,
        /// Mark or undo.
        duplicate: bool,
        /// The group.
        group: String,
    },
    /// Compute the dashboard's figures.
    Kpi(super::dashboard::KpiRequest),
    /// Write the figures shown as CSV files into a folder.
    KpiExport {
        /// The figures, as the dashboard shows them.
        report: Box<crate::kpi::KpiReport>,
        /// The folder.
        dir: PathBuf,
        /// Column titles in German (else English).
        german: bool,
    },
    /// Make these dead letters pending again.
    RetryDead(Vec<i64>),
    /// Remove one dead letter for good.
    DiscardDead(i64),
    /// Write the settings file and the secrets, then run with them.
    SaveSettings(Box<SettingsChange>),
    /// Which of these secrets are stored.
    SecretStatus(Vec<SecretKey>),
    /// Ask one Ivoris installation: ping, version, a sample page.
    TestConnection(Box<ConnectionTest>),
    /// Run HubSpot provisioning now („Einrichtung prüfen“).
    Provision,
    /// A request of the mapping editor.
    Mapping(super::mapping_ops::MappingCommand),
    /// Backup, restore, forgetting a patient (Einstellungen).
    Privacy(super::privacy_ops::PrivacyCommand),
    /// A request of the Import view.
    Import(super::import_ops::ImportCommand),
    /// Stop the running import after its current batch.
    CancelImport,
    /// End the engine thread (window closed).
    Shutdown,
}

/// What the engine is connected to, once it is ready.
#[derive(Debug, Clone)]
pub struct EngineInfo {
    /// The settings the engine runs with (in demo mode: pointing at the sandbox).
    pub settings: Settings,
    /// The ledger file the engine reads and writes.
    pub ledger_path: PathBuf,
    /// Whether this is the embedded sandbox.
    pub demo: bool,
}

/// One location in the overview.
#[derive(Debug, Clone, Default)]
pub struct LocationOverview {
    /// Location key.
    pub key: String,
    /// Display name: the location table's, else the settings'.
    pub name: String,
    /// Brand, when the location table or the settings name one.
    pub brand: Option<String>,
    /// Records mirrored in the ledger.
    pub counts: Counts,
    /// Records HubSpot confirmed.
    pub confirmed: ConfirmedCounts,
    /// Treatment cases formed.
    pub cases: u64,
    /// Cases confirmed as duplicates in the review.
    pub duplicate_cases: u64,
    /// Writes waiting to be sent.
    pub pending: u64,
    /// Writes waiting for a person.
    pub dead: u64,
    /// How its Ivoris answered the last time it was asked.
    pub ivoris: Option<Health>,
    /// Its contacts and deals out of step with HubSpot at the last scan.
    pub drift: DriftCounts,
}

/// What the last scan of the portal found against the ledger.
#[derive(Debug, Clone, Default)]
pub struct PortalCheck {
    /// When the scan finished (UTC, RFC 3339).
    pub finished_at: String,
    /// Contacts and deals it listed.
    pub listed: u64,
    /// Out of step, all locations.
    pub drift: DriftCounts,
}

/// Everything the overview shows, read in one go.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// Per location, in ledger order.
    pub locations: Vec<LocationOverview>,
    /// The queue by kind and state.
    pub queue: OutboxCounts,
    /// The latest runs, newest first.
    pub runs: Vec<RunRecord>,
    /// Days of the latest reconciliation report where the sides disagree.
    pub differences: Vec<ReconciliationRow>,
    /// How HubSpot answered the last run.
    pub hubspot: Option<Health>,
    /// The last scan against the ledger; `None` before the first.
    pub portal: Option<PortalCheck>,
}

/// One page of the queue.
#[derive(Debug, Clone, Default)]
pub struct QueuePage {
    /// The filter the page was read with.
    pub filter: OutboxFilter,
    /// First row of the page.
    pub offset: usize,
    /// The rows.
    pub rows: Vec<OutboxItem>,
    /// Rows the filter selects in all.
    pub total: u64,
}

/// What the engine tells the GUI.
#[derive(Debug, Clone)]
pub enum Event {
    /// The engine is ready to run (in demo mode: the sandbox is up).
    Ready(Box<EngineInfo>),
    /// The engine could not start; German / English.
    SetupFailed(String),
    /// A sync started.
    Started,
    /// Progress of the running sync.
    Progress(Progress),
    /// The sync ended; the error text is German / English.
    Finished(Box<Result<SyncSummary, String>>),
    /// A sync was asked for while one runs.
    Busy,
    /// Answer to [`Command::Refresh`].
    Overview(Box<Overview>),
    /// Answer to [`Command::QueuePage`].
    QueuePage(Box<QueuePage>),
    /// Answer to [`Command::Quarantine`].
    Quarantine(Vec<QuarantineEntry>),
    /// Answer to [`Command::Duplicates`]: the open groups, or why not.
    Duplicates(Box<Result<Vec<super::duplicates::ReviewGroup>, String>>),
    /// A review decision was recorded: what happened (German / English).
    DuplicateDecided(String),
    /// Progress of the running scan of HubSpot.
    ScanProgress(super::scan::ScanProgress),
    /// The scan ended; the error is German / English.
    ScanFinished(Box<Result<super::scan::ScanSummary, String>>),
    /// Answer to [`Command::PortalReview`].
    PortalReview(Box<Result<super::portal_review::PortalReview, String>>),
    /// Answer to [`Command::DecisionLog`].
    DecisionLog(Box<Result<Vec<crate::ledger::AuditEntry>, String>>),
    /// Queued merges were sent (or wait for the running sync).
    MergesSent(Result<super::portal_review::MergesSent, String>),
    /// A decision (review, dead letters) waits for the running sync and is
    /// saved after it; German / English.
    DecisionDeferred(String),
    /// Answer to [`Command::Kpi`]: the figures, or why not (German /
    /// English).
    Kpi(Box<Result<crate::kpi::KpiReport, String>>),
    /// Answer to [`Command::KpiExport`]: the files written, or why not.
    KpiExported(Result<Vec<PathBuf>, String>),
    /// Answer to [`Command::Runs`].
    Runs(Vec<RunRecord>),
    /// Dead letters made pending again (how many).
    Retried(usize),
    /// A dead letter was removed (`false`: it was gone already).
    Discarded(bool),
    /// A query or action failed; German / English.
    QueryFailed(String),
    /// Answer to [`Command::SaveSettings`]; the error is German / English.
    SettingsSaved(Result<SavedSettings, String>),
    /// Answer to [`Command::SecretStatus`].
    SecretStatus(Vec<(SecretKey, SecretState)>),
    /// Answer to [`Command::TestConnection`].
    ConnectionTested(Box<ConnectionReport>),
    /// Answer to [`Command::Provision`]; the error is German / English.
    Provisioned(Box<Result<ProvisionReport, String>>),
    /// The answer to a [`Command::Mapping`].
    Mapping(Box<super::mapping_ops::MappingEvent>),
    /// What a backup, restore or erasure did.
    Privacy(Box<super::privacy_ops::PrivacyEvent>),
    /// An answer to a [`Command::Import`] (or the running import's progress).
    Import(Box<super::import_ops::ImportEvent>),
}

/// Sends an event and wakes the GUI.
type Emit = Arc<dyn Fn(Event) + Send + Sync>;

/// The GUI's side of the engine.
pub struct EngineHandle {
    /// Commands to the engine thread.
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
    /// Events from the engine thread.
    events: mpsc::Receiver<Event>,
    /// The engine thread, joined on shutdown.
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// Starts the engine thread for a ready environment.
    pub fn start(env: SyncEnvironment, waker: Waker) -> std::io::Result<EngineHandle> {
        EngineHandle::start_with(EngineSetup::Configured(Box::new(env)), waker)
    }

    /// Starts the engine thread; in demo mode it starts the sandbox first.
    /// Commands sent meanwhile wait until it is ready.
    pub fn start_with(setup: EngineSetup, waker: Waker) -> std::io::Result<EngineHandle> {
        EngineHandle::start_at_home(setup, None, waker)
    }

    /// Like [`EngineHandle::start_with`], able to save settings to `home`.
    pub fn start_at_home(
        setup: EngineSetup,
        home: Option<SettingsHome>,
        waker: Waker,
    ) -> std::io::Result<EngineHandle> {
        let (commands, mut inbox) = tokio::sync::mpsc::unbounded_channel::<Command>();
        let (outbox, events) = mpsc::channel::<Event>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("engine")
            .build()?;
        let thread = std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                let emit: Emit = {
                    let outbox = Mutex::new(outbox);
                    Arc::new(move |event| {
                        let _ = outbox
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .send(event);
                        waker();
                    })
                };
                runtime.block_on(async move {
                    // The sandbox lives as long as this loop: dropping it
                    // stops its servers.
                    // Without an environment (a secret missing, the ledger
                    // unreadable) the loop still serves the settings panel,
                    // so the problem can be fixed from the app.
                    let (mut env, mut sandbox, unavailable) = match start_engine(setup).await {
                        Ok((env, sandbox)) => {
                            emit(Event::Ready(Box::new(EngineInfo {
                                settings: env.settings.clone(),
                                ledger_path: env.ledger_path.clone(),
                                demo: sandbox.is_some(),
                            })));
                            (Some(Arc::new(env)), sandbox, String::new())
                        }
                        Err(message) => {
                            emit(Event::SetupFailed(message.clone()));
                            (None, None, message)
                        }
                    };
                    let running: Arc<Mutex<Option<CancelFlag>>> = Arc::new(Mutex::new(None));
                    let scanning: Arc<Mutex<Option<CancelFlag>>> = Arc::new(Mutex::new(None));
                    let importing: Arc<Mutex<Option<CancelFlag>>> = Arc::new(Mutex::new(None));
                    // Queued merges are sent as soon as their decision is saved.
                    let (merge_queued, mut merges_due) =
                        tokio::sync::mpsc::unbounded_channel::<()>();
                    // Review decisions and dead-letter actions wait for the
                    // writer lock there, in the order they were made.
                    let (decisions, decision_worker) = start_decisions(&emit, merge_queued);
                    // Saved settings come back here to replace the environment.
                    let (reconfigure, mut reconfigured) =
                        tokio::sync::mpsc::unbounded_channel::<SyncEnvironment>();
                    loop {
                        let command = tokio::select! {
                            command = inbox.recv() => match command {
                                Some(command) => command,
                                None => break,
                            },
                            Some(next) = reconfigured.recv() => {
                                let next = Arc::new(next);
                                env = Some(next.clone());
                                let env = next;
                                // Leaves demo mode: the sandbox's servers stop.
                                drop(sandbox.take());
                                emit(Event::Ready(Box::new(EngineInfo {
                                    settings: env.settings.clone(),
                                    ledger_path: env.ledger_path.clone(),
                                    demo: false,
                                })));
                                continue;
                            }
                            Some(()) = merges_due.recv() => {
                                if let Some(env) = env.clone() {
                                    let emit = emit.clone();
                                    tokio::spawn(async move {
                                        let sent = super::portal_review::send_merges(&env).await;
                                        emit(Event::MergesSent(sent));
                                    });
                                }
                                continue;
                            }
                        };
                        // Everything but the settings panel needs an environment.
                        let needs_env = !matches!(
                            command,
                            Command::SaveSettings(_)
                                | Command::SecretStatus(_)
                                | Command::TestConnection(_)
                                | Command::Cancel
                                | Command::CancelScan
                                | Command::CancelImport
                                | Command::Shutdown
                        );
                        let current = match (&env, needs_env) {
                            (Some(env), _) => Some(env.clone()),
                            (None, false) => None,
                            (None, true) => {
                                emit(match command {
                                    Command::Sync(_) => {
                                        Event::Finished(Box::new(Err(unavailable.clone())))
                                    }
                                    _ => Event::QueryFailed(unavailable.clone()),
                                });
                                continue;
                            }
                        };
                        match command {
                            Command::Sync(request) => {
                                let Some(env) = current else { continue };
                                let mut slot =
                                    running.lock().unwrap_or_else(PoisonError::into_inner);
                                if slot.is_some() {
                                    emit(Event::Busy);
                                    continue;
                                }
                                let cancel = CancelFlag::new();
                                *slot = Some(cancel.clone());
                                drop(slot);
                                let (emit, running) = (emit.clone(), running.clone());
                                tokio::spawn(async move {
                                    emit(Event::Started);
                                    let progress = {
                                        let emit = emit.clone();
                                        move |p: Progress| emit(Event::Progress(p))
                                    };
                                    let result = sync(&env, &request, &progress, &cancel)
                                        .await
                                        .map_err(|e| e.to_string());
                                    *running.lock().unwrap_or_else(PoisonError::into_inner) = None;
                                    emit(Event::Finished(Box::new(result)));
                                });
                            }
                            Command::Cancel => {
                                if let Some(flag) = running
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .as_ref()
                                {
                                    flag.cancel();
                                }
                            }
                            Command::SaveSettings(change) => {
                                if running
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .is_some()
                                {
                                    emit(Event::SettingsSaved(Err(RUNNING_NO_SAVE.into())));
                                    continue;
                                }
                                let Some(home) = home.clone() else {
                                    emit(Event::SettingsSaved(Err(NO_HOME.into())));
                                    continue;
                                };
                                let (emit, reconfigure) = (emit.clone(), reconfigure.clone());
                                // File and credential store: blocking I/O.
                                tokio::task::spawn_blocking(move || {
                                    match save_settings(&home, *change, current.as_deref()) {
                                        Ok((saved, next)) => {
                                            emit(Event::SettingsSaved(Ok(saved)));
                                            if let Some(next) = next {
                                                let _ = reconfigure.send(next);
                                            }
                                        }
                                        Err(message) => emit(Event::SettingsSaved(Err(message))),
                                    }
                                });
                            }
                            Command::SecretStatus(keys) => {
                                let Some(home) = home.clone() else {
                                    emit(Event::SecretStatus(
                                        keys.into_iter()
                                            .map(|key| (key, SecretState::Missing))
                                            .collect(),
                                    ));
                                    continue;
                                };
                                let emit = emit.clone();
                                tokio::task::spawn_blocking(move || {
                                    let (states, problem) = secret_status(&home, keys);
                                    emit(Event::SecretStatus(states));
                                    if let Some(message) = problem {
                                        emit(Event::QueryFailed(message));
                                    }
                                });
                            }
                            Command::TestConnection(test) => {
                                let (emit, home) = (emit.clone(), home.clone());
                                tokio::spawn(async move {
                                    let report =
                                        test_connection(home, current.as_deref(), *test).await;
                                    emit(Event::ConnectionTested(Box::new(report)));
                                });
                            }
                            Command::Provision => {
                                let Some(current) = current else { continue };
                                let emit = emit.clone();
                                tokio::spawn(async move {
                                    let result = provision_now(current).await;
                                    emit(Event::Provisioned(Box::new(result)));
                                });
                            }
                            Command::Mapping(command) => {
                                let Some(env) = current else { continue };
                                let emit = emit.clone();
                                tokio::spawn(async move {
                                    let event = super::mapping_ops::handle(&env, command).await;
                                    emit(Event::Mapping(Box::new(event)));
                                });
                            }
                            Command::Privacy(command) => {
                                let Some(env) = current else { continue };
                                let emit = emit.clone();
                                tokio::spawn(async move {
                                    let event = super::privacy_ops::handle(&env, command).await;
                                    emit(Event::Privacy(Box::new(event)));
                                });
                            }
                            Command::Shutdown => {
                                if let Some(flag) = running
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .as_ref()
                                {
                                    flag.cancel();
                                }
                                break;
                            }
                            Command::ScanPortal => {
                                let Some(env) = current else { continue };
                                start_scan(env, &scanning, &emit);
                            }
                            Command::CancelScan => {
                                if let Some(flag) = scanning
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .as_ref()
                                {
                                    flag.cancel();
                                }
                            }
                            Command::Import(command) => {
                                let Some(env) = current else { continue };
                                start_import_step(env, command, &importing, &emit);
                            }
                            Command::CancelImport => {
                                if let Some(flag) = importing
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .as_ref()
                                {
                                    flag.cancel();
                                }
                            }
                            Command::MergeContacts(merge) => {
                                let Some(env) = current else { continue };
                                decisions.push(env.ledger_path.clone(), Decision::Merge(merge));
                            }
                            Command::MarkPortalDeal { mark, group } => {
                                let Some(env) = current else { continue };
                                let decision = Decision::MarkPortalDeal { mark, group };
                                decisions.push(env.ledger_path.clone(), decision);
                            }
                            Command::MarkCase {
                                case_key,
                                duplicate,
                                group,
                            } => {
                                let Some(env) = current else { continue };
                                let decision = Decision::MarkCase {
                                    case_key,
                                    duplicate,
                                    group,
                                };
                                decisions.push(env.ledger_path.clone(), decision);
                            }
                            Command::ResendDrift => {
                                let Some(env) = current else { continue };
                                decisions.push(env.ledger_path.clone(), Decision::ResendDrift);
                            }
                            Command::DismissDuplicate(key) => {
                                let Some(env) = current else { continue };
                                decisions.push(env.ledger_path.clone(), Decision::Dismiss(key));
                            }
                            Command::MarkDuplicate {
                                location,
                                patient_id,
                                duplicate,
                            } => {
                                let Some(env) = current else { continue };
                                let decision = Decision::Mark {
                                    location,
                                    patient_id,
                                    duplicate,
                                };
                                decisions.push(env.ledger_path.clone(), decision);
                            }
                            Command::RetryDead(ids) => {
                                let Some(env) = current else { continue };
                                decisions.push(env.ledger_path.clone(), Decision::RetryDead(ids));
                            }
                            Command::DiscardDead(id) => {
                                let Some(env) = current else { continue };
                                decisions.push(env.ledger_path.clone(), Decision::DiscardDead(id));
                            }
                            query => {
                                let Some(env) = current else { continue };
                                let emit = emit.clone();
                                // SQLite blocks: off the runtime's workers.
                                tokio::task::spawn_blocking(move || {
                                    emit(answer(&env, query));
                                });
                            }
                        }
                    }
                    // Decisions already made are saved once a cancelled
                    // sync has let go of the lock.
                    drop(decisions);
                    if tokio::time::timeout(DECISIONS_ON_CLOSE, decision_worker)
                        .await
                        .is_err()
                    {
                        tracing::warn!("decisions not saved: the ledger stayed locked on close");
                    }
                });
            })?;
        Ok(EngineHandle {
            commands,
            events,
            thread: Some(thread),
        })
    }

    /// Sends a command; never blocks.
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Every event that arrived since the last call; never blocks.
    pub fn drain(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Prepares the environment and creates (migrates) the ledger once,
/// before queries open it side by side.
async fn start_engine(setup: EngineSetup) -> Result<(SyncEnvironment, Option<Sandbox>), String> {
    let (env, sandbox) = prepare(setup).await?;
    let ledger_path = env.ledger_path.clone();
    tokio::task::spawn_blocking(move || Ledger::open(&ledger_path).map(drop))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok((env, sandbox))
}

/// The environment to run with, and the sandbox behind it in demo mode.
async fn prepare(setup: EngineSetup) -> Result<(SyncEnvironment, Option<Sandbox>), String> {
    let ledger_path = match setup {
        EngineSetup::Configured(env) => return Ok((*env, None)),
        EngineSetup::Demo { ledger_path } => ledger_path,
        EngineSetup::Unavailable(reason) => return Err(reason),
    };
    let sandbox = Sandbox::start(SandboxOptions {
        size: Size::Medium,
        faults: FaultProfile::None,
        rate_limits: true,
        ..SandboxOptions::default()
    })
    .await
    .map_err(|e| {
        format!(
            "Demo-Modus: die Simulation startet nicht / Demo mode: the simulation does not start: {e}"
        )
    })?;
    let settings = Settings::for_sandbox(
        &sandbox.hubspot_url,
        &sandbox.locations,
        Some(ledger_path.clone()),
    );
    let store = MemorySecretStore::for_sandbox(sandbox.locations.iter().map(|l| l.key.as_str()));
    let credentials =
        Credentials::resolve(&settings, &Secrets::with_env_map(HashMap::new(), &store))
            .map_err(|e| e.to_string())?;
    let sim = sandbox.ivoris.clone();
    let env = SyncEnvironment {
        settings,
        ledger_path,
        credentials,
        clock: Arc::new(move || sim.now()),
        tune_ivoris: None,
        tune_hubspot: None,
    };
    Ok((env, Some(sandbox)))
}

/// Starts a scan of HubSpot unless one runs; its progress and end are
/// events.
fn start_scan(env: Arc<SyncEnvironment>, scanning: &Arc<Mutex<Option<CancelFlag>>>, emit: &Emit) {
    let mut slot = scanning.lock().unwrap_or_else(PoisonError::into_inner);
    if slot.is_some() {
        return;
    }
    let cancel = CancelFlag::new();
    *slot = Some(cancel.clone());
    drop(slot);
    let (emit, scanning) = (emit.clone(), scanning.clone());
    tokio::spawn(async move {
        let progress = {
            let emit = emit.clone();
            move |p: super::scan::ScanProgress| emit(Event::ScanProgress(p))
        };
        let result = super::scan::scan(&env, &progress, &cancel)
            .await
            .map_err(|e| e.to_string());
        *scanning.lock().unwrap_or_else(PoisonError::into_inner) = None;
        emit(Event::ScanFinished(Box::new(result)));
    });
}

/// Runs one request of the Import view; an import registers its cancel
/// flag, and a second one while it runs is refused.
fn start_import_step(
    env: Arc<SyncEnvironment>,
    command: super::import_ops::ImportCommand,
    importing: &Arc<Mutex<Option<CancelFlag>>>,
    emit: &Emit,
) {
    use super::import_ops::{ImportEvent, handle};
    let cancel = CancelFlag::new();
    let run = command.is_run();
    if run {
        let mut slot = importing.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            emit(Event::Import(Box::new(ImportEvent::Busy)));
            return;
        }
        *slot = Some(cancel.clone());
    }
    let (emit, importing) = (emit.clone(), importing.clone());
    tokio::spawn(async move {
        let progress = {
            let emit = emit.clone();
            move |p| emit(Event::Import(Box::new(ImportEvent::Progress(p))))
        };
        let event = handle(&env, command, progress, cancel).await;
        if run {
            *importing.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
        emit(Event::Import(Box::new(event)));
    });
}

/// Starts the worker that applies decisions under the writer lock and
/// reports each as an event; a queued merge is announced on `merge_queued`.
fn start_decisions(
    emit: &Emit,
    merge_queued: tokio::sync::mpsc::UnboundedSender<()>,
) -> (DecisionQueue, tokio::task::JoinHandle<()>) {
    let deferred = {
        let emit = emit.clone();
        Arc::new(move |text: &str| emit(Event::DecisionDeferred(text.to_owned())))
    };
    let report = {
        let emit = emit.clone();
        Arc::new(move |outcome: Result<Applied, String>| {
            if matches!(outcome, Ok(Applied::MergeQueued(_))) {
                let _ = merge_queued.send(());
            }
            emit(match outcome {
                Ok(applied) => decided(applied),
                Err(message) => Event::QueryFailed(message),
            })
        })
    };
    DecisionQueue::start(crate::ledger::audit::os_user(), deferred, report)
}

/// The event that tells the GUI what a decision changed.
fn decided(applied: Applied) -> Event {
    match applied {
        Applied::Dismissed => Event::DuplicateDecided(
            "Als „kein Duplikat“ gespeichert / Saved as \"not a duplicate\"".into(),
        ),
        Applied::Marked {
            duplicate: true,
            cases,
        } => Event::DuplicateDecided(format!(
            "{cases} Fälle als Duplikat markiert – die nächste Synchronisation setzt die Deals auf „Verloren“ / {cases} cases marked duplicate – the next sync sets the deals to lost"
        )),
        Applied::Marked {
            duplicate: false,
            cases,
        } => Event::DuplicateDecided(format!(
            "Markierung von {cases} Fällen zurückgenommen – die nächste Synchronisation leitet die Phase wieder ab / {cases} cases unmarked – the next sync derives their stage again"
        )),
        Applied::MergeQueued(true) => Event::DuplicateDecided(
            "Zusammenführung vorgemerkt – sie wird jetzt an HubSpot gesendet / Merge queued – it is sent to HubSpot now".into(),
        ),
        Applied::MergeQueued(false) => Event::DuplicateDecided(
            "Diese Zusammenführung ist bereits vorgemerkt / This merge is already queued".into(),
        ),
        Applied::DealMarked(true) => Event::DuplicateDecided(
            "Deal als Duplikat markiert – die nächste Synchronisation setzt ihn auf „Verloren“ / Deal marked duplicate – the next sync sets it lost".into(),
        ),
        Applied::DealMarked(false) => Event::DuplicateDecided(
            "Markierung zurückgenommen – die nächste Synchronisation stellt den Deal wieder her / Mark undone – the next sync restores the deal".into(),
        ),
        Applied::Resent(count) => Event::DuplicateDecided(format!(
            "{count} Datensätze werden bei der nächsten Synchronisation erneut geschrieben / {count} records will be written again by the next sync"
        )),
        Applied::Retried(count) => Event::Retried(count),
        Applied::Discarded(removed) => Event::Discarded(removed),
    }
}

/// Answers a query by reading the ledger.
fn answer(env: &SyncEnvironment, query: Command) -> Event {
    let result = (|| -> Result<Event, LedgerError> {
        let ledger = Ledger::open(&env.ledger_path)?;
        Ok(match query {
            Command::Refresh => Event::Overview(Box::new(overview(&ledger, &env.settings)?)),
            Command::QueuePage {
                filter,
                offset,
                limit,
            } => {
                let (rows, total) = ledger.outbox_filtered(&filter, offset, limit)?;
                Event::QueuePage(Box::new(QueuePage {
                    filter,
                    offset,
                    rows,
                    total,
                }))
            }
            Command::Quarantine => Event::Quarantine(ledger.quarantined(None)?),
            Command::Runs => Event::Runs(ledger.recent_runs(HISTORY_RUNS)?),
            Command::Duplicates => Event::Duplicates(Box::new(
                super::duplicates::review(&ledger, &env.settings).map_err(|e| e.to_string()),
            )),
            Command::PortalReview => Event::PortalReview(Box::new(
                super::portal_review::review(&ledger).map_err(|e| e.to_string()),
            )),
            Command::DecisionLog => Event::DecisionLog(Box::new(
                super::portal_review::decision_log(&ledger).map_err(|e| e.to_string()),
            )),
            Command::Kpi(request) => Event::Kpi(Box::new(
                super::dashboard::kpi_report(&ledger, &env.settings, request, (env.clock)())
                    .map_err(|e| e.to_string()),
            )),
            Command::KpiExport {
                report,
                dir,
                german,
            } => Event::KpiExported(super::dashboard::export(&report, &dir, german)),
            Command::Sync(_)
            | Command::DismissDuplicate(_)
            | Command::MarkDuplicate { .. }
            | Command::ScanPortal
            | Command::CancelScan
            | Command::MergeContacts(_)
            | Command::MarkPortalDeal { .. }
            | Command::MarkCase { .. }
            | Command::ResendDrift
            | Command::RetryDead(_)
            | Command::DiscardDead(_)
            | Command::Cancel
            | Command::Shutdown
            | Command::SaveSettings(_)
            | Command::SecretStatus(_)
            | Command::TestConnection(_)
            | Command::Provision
            | Command::Mapping(_)
            | Command::Privacy(_)
            | Command::Import(_)
            | Command::CancelImport => Event::QueryFailed("Kein Lesebefehl / Not a query".into()),
        })
    })();
    result.unwrap_or_else(|e| Event::QueryFailed(e.to_string()))
}

/// Reads the overview: the settings' locations first, then any other the
/// ledger knows. Names and brands come from the latest saved location table
/// where it has them (they only label the screen; nothing in HubSpot
/// depends on them).
fn overview(ledger: &Ledger, settings: &Settings) -> Result<Overview, LedgerError> {
    let known = super::known_locations(ledger, settings)?;
    let confirmed = ledger.confirmed_counts()?;
    let mut health = ledger.health()?;
    let hubspot = health
        .iter()
        .position(|h| h.side == Side::HubSpot)
        .map(|at| health.swap_remove(at));
    let scan = ledger.portal_scan()?;
    let drift = scan
        .as_ref()
        .map_or(&[][..], |s| s.findings.drift.as_slice());
    let mut locations = Vec::new();
    for (key, name, brand) in known {
        let prefix = format!("{key}:");
        let mine: Vec<_> = drift
            .iter()
            .filter(|d| d.record_key.starts_with(&prefix))
            .cloned()
            .collect();
        let count_rows = |dead: bool| -> Result<u64, LedgerError> {
            let filter = OutboxFilter {
                dead: Some(dead),
                location: Some(key.clone()),
                ..OutboxFilter::default()
            };
            Ok(ledger.outbox_filtered(&filter, 0, 0)?.1)
        };
        let cases = ledger.cases(&key)?;
        locations.push(LocationOverview {
            counts: ledger.counts(Some(&key))?,
            confirmed: confirmed
                .iter()
                .find(|c| c.location_key == key)
                .cloned()
                .unwrap_or_default(),
            cases: cases.len() as u64,
            duplicate_cases: cases.iter().filter(|c| c.duplicate).count() as u64,
            pending: count_rows(false)?,
            dead: count_rows(true)?,
            ivoris: health
                .iter()
                .find(|h| h.side == Side::Ivoris && h.location_key == key)
                .cloned(),
            drift: DriftCounts::of(&mine),
            key,
            name,
            brand,
        });
    }
    Ok(Overview {
        locations,
        queue: ledger.outbox_counts()?,
        runs: ledger.recent_runs(OVERVIEW_RUNS)?,
        differences: ledger.latest_reconciliation(true)?,
        hubspot,
        portal: scan.map(|scan| PortalCheck {
            listed: scan.contacts + scan.deals,
            drift: DriftCounts::of(&scan.findings.drift),
            finished_at: scan.finished_at,
        }),
    })
}

/// Why settings are not saved while a sync runs.
const RUNNING_NO_SAVE: &str = "Während einer Synchronisation werden keine Einstellungen gespeichert; bitte warten oder abbrechen / Settings are not saved while a sync runs; please wait or cancel it";

/// Why this engine cannot save settings (started without a home).
const NO_HOME: &str =
    "Einstellungen können hier nicht gespeichert werden / Settings cannot be saved here";

/// Writes the settings file (atomically) and the secrets, then builds the
/// environment to run with — `None` when the settings are not complete
/// yet, with the reason in the note.
fn save_settings(
    home: &SettingsHome,
    change: SettingsChange,
    current: Option<&SyncEnvironment>,
) -> Result<(SavedSettings, Option<SyncEnvironment>), String> {
    let SettingsChange { settings, secrets } = change;
    settings.save(&home.path).map_err(|e| e.to_string())?;
    for (key, value) in &secrets {
        let result = match value {
            Some(secret) => home.store.set(key, secret),
            None => home.store.delete(key),
        };
        result.map_err(|e| {
            format!(
                "Einstellungen gespeichert, Zugangsdaten nicht: {e} / Settings saved, credentials not: {e}"
            )
        })?;
    }
    tracing::info!(locations = settings.locations.len(), "settings saved");
    let not_applied = |note: String| {
        Ok((
            SavedSettings {
                applied: false,
                note: Some(note),
            },
            None,
        ))
    };
    if settings.is_demo() {
        return not_applied(
            "Ohne Standorte läuft die App weiter im Demo-Modus / Without locations the app stays in demo mode"
                .into(),
        );
    }
    let credentials = match Credentials::resolve(
        &settings,
        &Secrets::with_env_map(home.env.clone(), home.store.as_ref()),
    ) {
        Ok(credentials) => credentials,
        Err(error) => return not_applied(error.to_string()),
    };
    let ledger_path = settings.ledger_path(&home.dirs);
    if let Err(error) = Ledger::open(&ledger_path) {
        return not_applied(error.to_string());
    }
    let env = SyncEnvironment {
        clock: clock_for(&settings),
        settings,
        ledger_path,
        credentials,
        tune_ivoris: current.and_then(|env| env.tune_ivoris.clone()),
        tune_hubspot: current.and_then(|env| env.tune_hubspot.clone()),
    };
    Ok((
        SavedSettings {
            applied: true,
            note: None,
        },
        Some(env),
    ))
}

/// Where each secret is found: environment first, then the store. A store
/// that cannot be read counts as empty, and the first error is returned
/// to be shown.
fn secret_status(
    home: &SettingsHome,
    keys: Vec<SecretKey>,
) -> (Vec<(SecretKey, SecretState)>, Option<String>) {
    let mut problem = None;
    let states = keys
        .into_iter()
        .map(|key| {
            let in_env = key
                .env_vars()
                .iter()
                .any(|name| home.env.get(name).is_some_and(|v| !v.trim().is_empty()));
            let state = if in_env {
                SecretState::Environment
            } else {
                match home.store.get(&key) {
                    Ok(Some(secret)) if !secret.expose().trim().is_empty() => SecretState::Stored,
                    Ok(_) => SecretState::Missing,
                    Err(error) => {
                        problem.get_or_insert_with(|| error.to_string());
                        SecretState::Missing
                    }
                }
            };
            (key, state)
        })
        .collect();
    (states, problem)
}

/// Asks one Ivoris installation: credentials, ping, version, one page of
/// patients. Stops at the first failure and says what to do.
async fn test_connection(
    home: Option<SettingsHome>,
    current: Option<&SyncEnvironment>,
    test: ConnectionTest,
) -> ConnectionReport {
    let key = test.location.key.clone();
    let mut report = ConnectionReport {
        location: key.clone(),
        steps: Vec::new(),
    };
    // Typed values first, then what the engine runs with, then the store.
    let known = current.and_then(|env| env.credentials.ivoris.get(&key).cloned());
    let lookup = {
        let (key, home) = (key.clone(), home.clone());
        tokio::task::spawn_blocking(move || {
            let Some(home) = home else {
                return (None, None);
            };
            let secrets = Secrets::with_env_map(home.env.clone(), home.store.as_ref());
            let find = |secret: SecretKey| secrets.find(&secret).ok().flatten();
            (
                find(SecretKey::IvorisPassword(key.clone())),
                find(SecretKey::IvorisApiKey(key)),
            )
        })
        .await
        .unwrap_or((None, None))
    };
    let password = test
        .password
        .or(lookup.0)
        .or_else(|| known.as_ref().map(|k| k.password.clone()));
    let api_key = test
        .api_key
        .or(lookup.1)
        .or_else(|| known.as_ref().map(|k| k.api_key.clone()));
    let (Some(password), Some(api_key)) = (password, api_key) else {
        report.steps.push(ConnectionStep {
            check: ConnectionCheck::Credentials,
            result: Err("Passwort und API-Schlüssel fehlen: bitte eintragen und erneut testen / Password and API key are missing: please enter them and test again".into()),
        });
        return report;
    };
    let mut config =
        IvorisClientConfig::for_location(&test.location, &IvorisSecrets { password, api_key });
    let timeout_secs = current.map_or(
        crate::settings::SyncSettings::default().ivoris_timeout_secs,
        |env| env.settings.sync.ivoris_timeout_secs,
    );
    config.timeout = std::time::Duration::from_secs(u64::from(timeout_secs));
    // A test answers quickly: one retry, no pacing.
    config.retry = RetryPolicy {
        max_retries: 1,
        ..RetryPolicy::default()
    };
    config.pacing = Pacing::FixedPause(std::time::Duration::ZERO);
    if let Some(tune) = current.and_then(|env| env.tune_ivoris.as_ref()) {
        tune(&mut config);
    }
    let client = match IvorisClient::new(config) {
        Ok(client) => client,
        Err(error) => {
            report.steps.push(ConnectionStep {
                check: ConnectionCheck::Ping,
                result: Err(with_advice(&error)),
            });
            return report;
        }
    };
    let ping = client
        .ping()
        .await
        .map(|()| "Der Ivoris-Server antwortet / The Ivoris server answers".to_owned());
    if !push_step(&mut report, ConnectionCheck::Ping, ping) {
        return report;
    }
    let version = client
        .version()
        .await
        .map(|version| format!("Ivoris-Version {version} / Ivoris version {version}"));
    if !push_step(&mut report, ConnectionCheck::Version, version) {
        return report;
    }
    let page = client.patients_page(0).await.map(|parsed| {
        let (read, rejected) = (parsed.records.len(), parsed.rejects.len());
        format!(
            "Erste Patientenseite gelesen: {read} Datensätze, {rejected} nicht lesbar / First patient page read: {read} records, {rejected} unreadable"
        )
    });
    push_step(&mut report, ConnectionCheck::SamplePage, page);
    report
}

/// Records a step; whether it worked.
fn push_step(
    report: &mut ConnectionReport,
    check: ConnectionCheck,
    result: Result<String, IvorisError>,
) -> bool {
    let ok = result.is_ok();
    report.steps.push(ConnectionStep {
        check,
        result: result.map_err(|error| with_advice(&error)),
    });
    ok
}

/// An Ivoris error with what to do about it, German / English.
fn with_advice(error: &IvorisError) -> String {
    let text = error.to_string();
    let (de, en) = text
        .split_once(" / ")
        .unwrap_or((text.as_str(), text.as_str()));
    let advice = match error {
        IvorisError::Timeout { .. }
        | IvorisError::Transport { .. }
        | IvorisError::BreakerOpen { .. } => Some((
            "Bitte die Ivoris-Adresse prüfen und ob der Ivoris-Webservice (bzw. das Relay) läuft und von diesem PC erreichbar ist.",
            "Please check the Ivoris URL and that the Ivoris web service (or relay) runs and can be reached from this PC.",
        )),
        IvorisError::Server { .. } => Some((
            "Bitte später erneut testen; bleibt der Fehler, den Ivoris-Support fragen.",
            "Please test again later; if the error stays, ask the Ivoris support.",
        )),
        IvorisError::Decode { .. } | IvorisError::BadRequest { .. } => Some((
            "Stimmt die Adresse (sie endet auf …/webservice/api)?",
            "Is the URL right (it ends in …/webservice/api)?",
        )),
        IvorisError::Unauthorized { .. } | IvorisError::NotFound { .. } => None,
    };
    match advice {
        Some((advice_de, advice_en)) => format!("{de} {advice_de} / {en} {advice_en}"),
        None => format!("{de} / {en}"),
    }
}

/// „Einrichtung prüfen“: provisioning with the mapping's stage labels.
async fn provision_now(env: Arc<SyncEnvironment>) -> Result<ProvisionReport, String> {
    let ledger_path = env.ledger_path.clone();
    let mapping = tokio::task::spawn_blocking(move || {
        let ledger = Ledger::open(&ledger_path).map_err(|e| e.to_string())?;
        load_applied(&ledger)
            .map(|(_, mapping)| mapping)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    let client = hubspot_client(&env)
        .map_err(|error| format!("{} / {}", error.explain_de(), error.explain_en()))?;
    let spec = provision_spec(&env.settings, &mapping);
    provision::provision(&client, &spec)
        .await
        .map_err(|error| format!("{} / {}", error.explain_de(), error.explain_en()))
}
