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

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::ledger::reconciliation::ReconciliationRow;
use crate::ledger::{
    ConfirmedCounts, Counts, Ledger, LedgerError, OutboxCounts, OutboxFilter, OutboxItem,
    QuarantineEntry, RunRecord,
};
use crate::sandbox::{FaultProfile, Sandbox, SandboxOptions, Size};
use crate::secrets::{MemorySecretStore, Secrets};
use crate::settings::Settings;

use super::extract::CancelFlag;
use super::run::{Credentials, Progress, SyncEnvironment, SyncRequest, SyncSummary, sync};

/// Wakes the GUI when an event is waiting.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Runs shown in the overview.
const OVERVIEW_RUNS: usize = 5;

/// Runs shown in the history.
const HISTORY_RUNS: usize = 500;

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
    /// Make these dead letters pending again.
    RetryDead(Vec<i64>),
    /// Remove one dead letter for good.
    DiscardDead(i64),
    /// A request of the mapping editor.
    Mapping(super::mapping_ops::MappingCommand),
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
    /// Display name.
    pub name: String,
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
    /// Answer to [`Command::Runs`].
    Runs(Vec<RunRecord>),
    /// Dead letters made pending again (how many).
    Retried(usize),
    /// A dead letter was removed (`false`: it was gone already).
    Discarded(bool),
    /// A query or action failed; German / English.
    QueryFailed(String),
    /// The answer to a [`Command::Mapping`].
    Mapping(Box<super::mapping_ops::MappingEvent>),
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
                    let (env, sandbox) = match prepare(setup).await {
                        Ok(prepared) => prepared,
                        Err(message) => {
                            emit(Event::SetupFailed(message));
                            return;
                        }
                    };
                    // Create and migrate the ledger once, before queries
                    // open it side by side.
                    let ledger_path = env.ledger_path.clone();
                    let opened =
                        tokio::task::spawn_blocking(move || Ledger::open(&ledger_path).map(drop))
                            .await;
                    match opened {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => {
                            emit(Event::SetupFailed(error.to_string()));
                            return;
                        }
                        Err(error) => {
                            emit(Event::SetupFailed(error.to_string()));
                            return;
                        }
                    }
                    emit(Event::Ready(Box::new(EngineInfo {
                        settings: env.settings.clone(),
                        ledger_path: env.ledger_path.clone(),
                        demo: sandbox.is_some(),
                    })));
                    let env = Arc::new(env);
                    let running: Arc<Mutex<Option<CancelFlag>>> = Arc::new(Mutex::new(None));
                    while let Some(command) = inbox.recv().await {
                        match command {
                            Command::Sync(request) => {
                                let mut slot =
                                    running.lock().unwrap_or_else(PoisonError::into_inner);
                                if slot.is_some() {
                                    emit(Event::Busy);
                                    continue;
                                }
                                let cancel = CancelFlag::new();
                                *slot = Some(cancel.clone());
                                drop(slot);
                                let (env, emit, running) =
                                    (env.clone(), emit.clone(), running.clone());
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
                            Command::Mapping(command) => {
                                let (env, emit) = (env.clone(), emit.clone());
                                tokio::spawn(async move {
                                    let event = super::mapping_ops::handle(&env, command).await;
                                    emit(Event::Mapping(Box::new(event)));
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
                            query => {
                                let (env, emit) = (env.clone(), emit.clone());
                                // SQLite blocks: off the runtime's workers.
                                tokio::task::spawn_blocking(move || {
                                    emit(answer(&env, query));
                                });
                            }
                        }
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
    let mut settings = Settings::for_sandbox(
        &sandbox.hubspot_url,
        &sandbox.locations,
        Some(ledger_path.clone()),
    );
    settings.sync.ivoris_pause_ms = 0;
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

/// Answers a query or action by reading (or changing) the ledger.
fn answer(env: &SyncEnvironment, query: Command) -> Event {
    let result = (|| -> Result<Event, LedgerError> {
        let mut ledger = Ledger::open(&env.ledger_path)?;
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
            Command::RetryDead(ids) => Event::Retried(ledger.retry_dead(&ids)?),
            Command::DiscardDead(id) => Event::Discarded(ledger.discard_dead(id)?),
            Command::Sync(_) | Command::Cancel | Command::Shutdown | Command::Mapping(_) => {
                Event::QueryFailed("Kein Lesebefehl / Not a query".into())
            }
        })
    })();
    result.unwrap_or_else(|e| Event::QueryFailed(e.to_string()))
}

/// Reads the overview: the settings' locations first, then any other the
/// ledger knows.
fn overview(ledger: &Ledger, settings: &Settings) -> Result<Overview, LedgerError> {
    let mut known: Vec<(String, String)> = settings
        .locations
        .iter()
        .map(|l| (l.key.clone(), l.name.clone()))
        .collect();
    for row in ledger.locations()? {
        if !known.iter().any(|(key, _)| *key == row.key) {
            known.push((row.key, row.name));
        }
    }
    let confirmed = ledger.confirmed_counts()?;
    let mut locations = Vec::new();
    for (key, name) in known {
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
            key,
            name,
        });
    }
    Ok(Overview {
        locations,
        queue: ledger.outbox_counts()?,
        runs: ledger.recent_runs(OVERVIEW_RUNS)?,
        differences: ledger.latest_reconciliation(true)?,
    })
}
