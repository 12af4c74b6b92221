//! The engine on its own thread, for the desktop app: the GUI sends
//! commands and drains events; it never waits on the engine (DESIGN.md §11).
//!
//! The thread owns a tokio runtime. A sync runs as a task on it; while one
//! runs, a second "sync" is refused (the ledger lock would refuse it too,
//! but the GUI deserves an immediate answer). Every event wakes the GUI
//! through the waker closure it handed in (`ctx.request_repaint()`), so the
//! engine knows nothing about egui.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::extract::CancelFlag;
use super::run::{Progress, SyncEnvironment, SyncRequest, SyncSummary, sync};

/// Wakes the GUI when an event is waiting.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// What the GUI asks of the engine.
#[derive(Debug, Clone)]
pub enum Command {
    /// Start a sync („Jetzt synchronisieren“).
    Sync(SyncRequest),
    /// Stop the running sync at its next safe point („Abbrechen“).
    Cancel,
    /// End the engine thread (window closed).
    Shutdown,
}

/// What the engine tells the GUI.
#[derive(Debug, Clone)]
pub enum Event {
    /// A sync started.
    Started,
    /// Progress of the running sync.
    Progress(Progress),
    /// The sync ended; the error text is German / English.
    Finished(Box<Result<SyncSummary, String>>),
    /// A sync was asked for while one runs.
    Busy,
}

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
    /// Starts the engine thread.
    pub fn start(env: SyncEnvironment, waker: Waker) -> std::io::Result<EngineHandle> {
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
                let emit: Arc<dyn Fn(Event) + Send + Sync> = {
                    let outbox = Mutex::new(outbox);
                    Arc::new(move |event| {
                        let _ = outbox
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .send(event);
                        waker();
                    })
                };
                let env = Arc::new(env);
                runtime.block_on(async move {
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
