//! The app shell: the engine's events, and the one place where the panels'
//! intents (`state.rs`) change the state.
//!
//! The frame is split three ways: [`SyncApp::logic`] drains engine events
//! (it runs even while the window is hidden), [`SyncApp::ui`] only draws and
//! collects the intents the panels return, and [`SyncApp::apply`] turns
//! intents into state changes and engine commands. The GUI thread never
//! reads the ledger or a file: everything it shows arrives as an event.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::engine::handle::{
    Command, EngineHandle, EngineSetup, Event, QueuePage, SettingsHome, Waker,
};
use crate::engine::privacy_ops::{PrivacyCommand, PrivacyEvent};
use crate::engine::run::SyncRequest;
use crate::logging::LiveLine;
use crate::settings::Settings;

use super::file_dialog::{FileDialogs, Pick};
use super::i18n::Lang;
use super::run_progress::RunProgress;
use super::schedule::Schedule;
use super::state::{
    Intent, LastResult, Model, Notice, Panel, QUEUE_PAGE, QueueCache, Theme, UiState,
};
use super::{
    about, dashboard, dry_run, duplicates, import, log, mapping, nav, overview, portal_duplicates,
    privacy, queue, settings, top_bar,
};

/// Key of the persisted UI state in eframe's storage.
const STORAGE_KEY: &str = "ivoris-hubspot-sync.ui";

/// Frames drawn with complete data before the screenshot is taken, so
/// layouts (tables, wrapped text) have settled.
const SCREENSHOT_SETTLE_FRAMES: u32 = 8;

/// `--screenshot`: where to save, and how far the app is.
pub struct ScreenshotPlan {
    /// The PNG to write.
    pub path: PathBuf,
    /// Frames drawn since the data was complete.
    settled: u32,
    /// Whether the screenshot was asked for.
    requested: bool,
    /// Whether this run started a sync to have data to show.
    synced: bool,
    /// Set by the screenshot callback: the save's outcome.
    done: ScreenshotDone,
}

/// Where `--screenshot` reports whether the PNG was saved.
pub type ScreenshotDone = Arc<Mutex<Option<Result<(), String>>>>;

impl ScreenshotPlan {
    /// A plan to save the window to `path`, reporting into `done`.
    pub fn new(path: PathBuf, done: ScreenshotDone) -> ScreenshotPlan {
        ScreenshotPlan {
            path,
            settled: 0,
            requested: false,
            synced: false,
            done,
        }
    }
}

/// How the app is started.
pub struct AppOptions {
    /// What the engine syncs against.
    pub setup: EngineSetup,
    /// Where settings and secrets are saved; `None`: they cannot be.
    pub home: Option<SettingsHome>,
    /// The settings file as read before the window opened, or why it
    /// could not be read (German / English).
    pub settings_file: Result<Settings, String>,
    /// Panel to show first (overrides the remembered one).
    pub panel: Option<Panel>,
    /// Table the Zuordnung shows first.
    pub mapping_table: Option<crate::mapping::TableName>,
    /// Save a screenshot here, report into the second field, and close.
    pub screenshot: Option<(PathBuf, ScreenshotDone)>,
    /// The engine's log lines, for the Protokoll; `None` without a live
    /// log (tests).
    pub live_log: Option<Receiver<LiveLine>>,
}

/// Per-panel state that only the drawing needs (selection, open dialogs).
#[derive(Default)]
pub struct PanelState {
    /// The queue panel.
    pub queue: queue::QueueView,
    /// The log panel.
    pub log: log::LogView,
    /// The settings form.
    pub settings: settings::SettingsView,
    /// The mapping editor.
    pub mapping: mapping::MappingView,
    /// The dashboard.
    pub dashboard: dashboard::DashboardView,
    /// The duplicate review.
    pub duplicates: duplicates::DuplicatesView,
    /// The Import view.
    pub import: import::ImportView,
    /// The „Über“ dialog.
    pub about: about::AboutView,
}

impl PanelState {
    /// Esc: closes every open dialog.
    fn close_dialogs(&mut self) {
        self.queue.confirm_discard = None;
        self.about.open = false;
        self.duplicates.portal.confirm_merge = None;
        self.settings.privacy.confirm_restore = false;
    }
}

/// The desktop app.
pub struct SyncApp {
    /// What the panels show.
    pub model: Model,
    /// What only the drawing needs.
    panels: PanelState,
    /// The engine thread.
    engine: EngineHandle,
    /// `--screenshot` in progress.
    screenshot: Option<ScreenshotPlan>,
    /// The theme last applied to the context.
    applied_theme: Option<Theme>,
    /// Settings sent to be saved, kept until the engine confirms.
    pending_settings: Option<Box<Settings>>,
    /// Where the engine's log lines arrive.
    live_log: Option<Receiver<LiveLine>>,
    /// The open file dialog, if any.
    dialogs: FileDialogs,
    /// Asks for a frame (a closing file dialog wakes the app with it).
    repaint: Waker,
}

impl SyncApp {
    /// Creates the app and starts the engine; restores the remembered UI state.
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> std::io::Result<SyncApp> {
        let ctx = cc.egui_ctx.clone();
        let waker: Waker = Arc::new(move || ctx.request_repaint());
        let repaint = waker.clone();
        let mut ui: UiState = cc
            .storage
            .and_then(|storage| eframe::get_value(storage, STORAGE_KEY))
            .unwrap_or_default();
        if let Some(panel) = options.panel {
            ui.panel = panel;
        }
        let settings_path = options.home.as_ref().map(|home| home.path.clone());
        let logs_dir = options.home.as_ref().map(|home| home.dirs.logs_dir());
        let home = options.home.is_some();
        let engine = EngineHandle::start_at_home(options.setup, options.home, waker)?;
        let screenshot = options
            .screenshot
            .map(|(path, done)| ScreenshotPlan::new(path, done));
        let (settings_file, settings_file_error) = match options.settings_file {
            Ok(settings) => (settings, None),
            Err(error) => (Settings::default(), Some(error)),
        };
        let schedule = Schedule::new(settings_file.sync.schedule_minutes, Instant::now());
        let mut panels = PanelState::default();
        panels.mapping.table = options.mapping_table;
        Ok(SyncApp {
            model: Model {
                ui,
                settings_path,
                logs_dir,
                settings_file,
                settings_file_error,
                home,
                schedule,
                ..Model::default()
            },
            panels,
            engine,
            screenshot,
            applied_theme: None,
            pending_settings: None,
            live_log: options.live_log,
            dialogs: FileDialogs::default(),
            repaint,
        })
    }

    /// Handles one engine event.
    fn on_event(&mut self, event: Event) {
        let lang = self.model.lang();
        let queue_changed = mapping::changes_queue(&event);
        let engine = &self.engine;
        if portal_duplicates::on_event(&mut self.model.portal, &event, &mut |c| engine.send(c)) {
            return;
        }
        match event {
            Event::Ready(info) => {
                let keys: Vec<String> = info
                    .settings
                    .locations
                    .iter()
                    .map(|l| l.key.clone())
                    .collect();
                self.model.ui.locations.retain(|key| keys.contains(key));
                if self.model.info.is_some() {
                    // Reconfigured after saving: another ledger, maybe.
                    self.model.overview = None;
                    self.model.runs = None;
                    self.model.quarantine = None;
                    self.model.last = None;
                    self.model.queue = QueueCache::default();
                }
                self.model.info = Some(*info);
                self.model.setup_error = None;
                self.engine.send(Command::Refresh);
                self.request_panel_data(self.model.ui.panel);
            }
            Event::SetupFailed(message) => self.model.setup_error = Some(message),
            Event::Started => {
                self.model.running = true;
                self.model.cancelling = false;
                self.model.progress = None;
                self.model.run_progress = RunProgress::default();
                self.model.started = Some(Instant::now());
            }
            Event::Progress(progress) => {
                self.model.run_progress.apply(&progress);
                self.model.progress = Some(progress);
            }
            Event::Finished(result) => {
                self.model.running = false;
                self.model.cancelling = false;
                self.model.progress = None;
                self.model.run_progress = RunProgress::default();
                self.model.started = None;
                if let Ok(summary) = &*result
                    && let Some(provision) = &summary.provision
                {
                    self.model.appointments_detected = Some(provision.appointments);
                }
                self.model.dry_running = false;
                if let Ok(summary) = &*result
                    && summary.dry_run
                {
                    self.model.dry_run_result = Some(Box::new(summary.clone()));
                }
                self.model.last = Some(match *result {
                    Ok(summary) => LastResult::Summary(Box::new(summary)),
                    Err(message) => LastResult::Error(message),
                });
                self.reload_after_change();
            }
            Event::Busy => {
                self.model.notice = Some(Notice {
                    text: lang
                        .pick(
                            "Eine Synchronisation läuft bereits.",
                            "A sync is already running.",
                        )
                        .to_owned(),
                    error: true,
                });
            }
            Event::Overview(overview) => {
                if self.model.last.is_none()
                    && let Some(run) = overview.runs.first()
                    && run.outcome.is_some()
                {
                    self.model.last = Some(LastResult::Recorded(Box::new(run.clone())));
                }
                self.model.overview = Some(*overview);
            }
            Event::QueuePage(page) => self.on_queue_page(*page),
            Event::Quarantine(entries) => self.model.quarantine = Some(entries),
            Event::Runs(runs) => self.model.runs = Some(runs),
            Event::Kpi(result) => {
                // Answers may overtake each other: keep only the one for
                // what is chosen now.
                let wanted = self.model.ui.dashboard.request();
                let fits = match &*result {
                    Ok(report) => {
                        report.periods.granularity == wanted.granularity
                            && report.periods.starts.len() == wanted.periods.max(1) as usize
                    }
                    Err(_) => true,
                };
                if fits {
                    self.model.kpi.loading = false;
                    self.model.kpi.report = Some(*result);
                }
            }
            Event::KpiExported(result) => self.model.kpi.exported = Some(result),
            Event::Duplicates(result) => self.model.duplicates = Some(*result),
            // Taken by `portal_duplicates::on_event` above.
            Event::ScanProgress(_)
            | Event::ScanFinished(_)
            | Event::PortalReview(_)
            | Event::DecisionLog(_)
            | Event::MergesSent(_) => {}
            Event::DuplicateDecided(message) => {
                self.model.notice = Some(Notice {
                    text: lang.half(&message),
                    error: false,
                });
                self.engine.send(Command::Duplicates);
                if self.model.portal.review.is_some() {
                    self.engine.send(Command::PortalReview);
                }
                if self.model.portal.log.is_some() {
                    self.engine.send(Command::DecisionLog);
                }
            }
            Event::DecisionDeferred(message) => {
                self.model.notice = Some(Notice {
                    text: lang.half(&message),
                    error: false,
                });
            }
            Event::Retried(count) => {
                self.model.notice = Some(Notice {
                    text: format!(
                        "{} {}",
                        lang.number(count as u64),
                        lang.pick(
                            "Einträge werden bei der nächsten Synchronisation erneut gesendet.",
                            "entries will be sent again with the next sync.",
                        )
                    ),
                    error: false,
                });
                self.reload_after_change();
            }
            Event::Discarded(removed) => {
                self.model.notice = Some(Notice {
                    text: if removed {
                        lang.pick("Eintrag verworfen.", "Entry discarded.")
                    } else {
                        lang.pick(
                            "Der Eintrag war schon nicht mehr vorhanden.",
                            "The entry was already gone.",
                        )
                    }
                    .to_owned(),
                    error: false,
                });
                self.reload_after_change();
            }
            Event::QueryFailed(message) => {
                self.model.notice = Some(Notice {
                    text: lang.half(&message),
                    error: true,
                });
            }
            Event::SettingsSaved(result) => self.on_settings_saved(result),
            Event::SecretStatus(states) => self.model.secret_states.extend(states),
            Event::ConnectionTested(report) => {
                self.model
                    .testing
                    .insert(report.location.clone(), Some(*report));
            }
            Event::Provisioned(result) => {
                self.model.provisioning = false;
                if let Ok(report) = &*result {
                    self.model.appointments_detected = Some(report.appointments);
                }
                self.model.provision = Some(*result);
            }
            Event::Privacy(event) => {
                let changed = matches!(
                    *event,
                    PrivacyEvent::Restored(Ok(_))
                        | PrivacyEvent::Forgotten(Ok(_))
                        | PrivacyEvent::Lifted(Ok(_))
                );
                if matches!(*event, PrivacyEvent::Forgotten(Ok(_))) {
                    self.model.privacy.preview = None;
                }
                let notice = privacy::on_event(&mut self.model.privacy, *event, lang);
                if !notice.text.is_empty() {
                    self.model.notice = Some(notice);
                }
                if changed {
                    self.reload_after_change();
                }
            }
            Event::Mapping(event) => {
                let (notice, commands) = mapping::on_event(&mut self.model.mapping, *event, lang);
                if notice.is_some() {
                    self.model.notice = notice;
                }
                for command in commands {
                    self.engine.send(Command::Mapping(command));
                }
            }
            Event::Import(event) => {
                for command in import::on_event(&mut self.model.import, *event) {
                    self.engine.send(command);
                }
            }
        }
        if queue_changed {
            self.reload_after_change();
        }
    }

    /// The engine wrote the settings (or could not).
    fn on_settings_saved(&mut self, result: Result<crate::engine::handle::SavedSettings, String>) {
        let lang = self.model.lang();
        self.model.saving = false;
        let pending = self.pending_settings.take();
        match result {
            Ok(saved) => {
                if let Some(settings) = pending {
                    self.model.schedule =
                        Schedule::new(settings.sync.schedule_minutes, Instant::now());
                    self.model.settings_file = *settings;
                    self.model.settings_file_error = None;
                }
                self.panels.settings.reset();
                self.model.secret_states.clear();
                self.engine
                    .send(Command::SecretStatus(settings::secret_keys(
                        &self.model.settings_file,
                    )));
                let text = match &saved.note {
                    None => lang
                        .pick(
                            "Einstellungen gespeichert; die Synchronisation verwendet sie ab jetzt.",
                            "Settings saved; the sync uses them from now on.",
                        )
                        .to_owned(),
                    Some(note) => format!(
                        "{} {}",
                        lang.pick("Einstellungen gespeichert.", "Settings saved."),
                        lang.half(note)
                    ),
                };
                self.model.notice = Some(Notice { text, error: false });
            }
            Err(message) => {
                self.model.notice = Some(Notice {
                    text: format!(
                        "{} {}",
                        lang.pick("Nicht gespeichert:", "Not saved:"),
                        lang.half(&message)
                    ),
                    error: true,
                });
            }
        }
    }

    /// A path from a closed file dialog, or a file dropped on the Zuordnung:
    /// an import is read at once (its preview follows), an export folder
    /// goes into its field.
    fn take_chosen_files(&mut self, ctx: &egui::Context) {
        let mut import = None;
        match self.dialogs.poll() {
            Some((Pick::MappingImport, path)) => import = Some(path),
            Some((Pick::MappingExportDir, path)) => {
                self.panels.mapping.export_dir = path.display().to_string();
            }
            Some((Pick::KpiExportDir, path)) => {
                self.panels.dashboard.export_dir = path.display().to_string();
            }
            Some((Pick::BackupTarget, path)) => {
                self.panels.settings.privacy.backup_path = path.display().to_string();
                self.apply(Intent::Privacy(privacy::PrivacyIntent::Engine(
                    PrivacyCommand::Backup(path),
                )));
            }
            Some((Pick::BackupSource, path)) => {
                self.panels.settings.privacy.backup_path = path.display().to_string();
                self.panels.settings.privacy.confirm_restore = true;
            }
            Some((Pick::ImportFile, path)) => self.open_import_file(path),
            None => {}
        }
        let dropped: Option<PathBuf> =
            ctx.input(|input| input.raw.dropped_files.first().map(|f| f.path().to_owned()));
        match self.model.ui.panel {
            Panel::Mapping => import = import.or(dropped),
            Panel::Import => {
                if let Some(path) = dropped {
                    self.open_import_file(path);
                }
            }
            _ => {}
        }
        if let Some(path) = import {
            self.panels.mapping.import_path = path.display().to_string();
            self.apply(Intent::Mapping(mapping::MappingIntent::Import(path)));
        }
    }

    /// A file chosen or dropped for the Import view: shown in its field and
    /// opened at once (the preview follows).
    fn open_import_file(&mut self, path: PathBuf) {
        if self.model.import.busy() {
            return;
        }
        self.panels.import.path = path.display().to_string();
        self.apply(Intent::Import(import::ImportIntent::Open(path)));
    }

    /// Starts a sync of the chosen locations (`manual` or `schedule`), or
    /// a dry run of them.
    fn start_sync(&mut self, trigger: &str, dry_run: bool) {
        // Shown as running at once; the engine's `Started` follows.
        self.model.running = true;
        self.model.started = Some(Instant::now());
        self.model.progress = None;
        self.model.run_progress = RunProgress::default();
        self.model.notice = None;
        self.model.live_log.clear();
        self.model.dry_running = dry_run;
        self.engine.send(Command::Sync(SyncRequest {
            locations: self.model.ui.locations.clone(),
            dry_run,
            full_sweep: false,
            trigger: trigger.into(),
        }));
    }

    /// Starts the automatic sync when it is due; a running sync is not
    /// interrupted, the turn is skipped with a notice.
    fn drive_schedule(&mut self, ctx: &egui::Context) {
        let now = Instant::now();
        if self.model.info.is_some() && self.model.schedule.due(now) {
            if self.model.running {
                self.model.notice = Some(Notice {
                    text: self
                        .model
                        .lang()
                        .pick(
                            "Geplante Synchronisation übersprungen: es läuft bereits eine.",
                            "Scheduled sync skipped: one is already running.",
                        )
                        .to_owned(),
                    error: false,
                });
            } else {
                self.start_sync("schedule", false);
            }
        }
        if let Some(wait) = self.model.schedule.wait(now) {
            ctx.request_repaint_after(wait);
        }
    }

    /// Keeps a page if it belongs to the filter shown.
    fn on_queue_page(&mut self, page: QueuePage) {
        let cache = &mut self.model.queue;
        if page.filter != cache.filter {
            return;
        }
        cache.requested.remove(&page.offset);
        cache.total = Some(page.total);
        cache.pages.insert(page.offset, page.rows);
    }

    /// The ledger changed (a run, a retry): read what is shown again.
    fn reload_after_change(&mut self) {
        self.engine.send(Command::Refresh);
        let filter = self.model.queue.filter.clone();
        self.model.queue = QueueCache {
            filter,
            ..QueueCache::default()
        };
        self.load_queue_page(0);
        if self.model.runs.is_some() || self.model.ui.panel == Panel::Log {
            self.engine.send(Command::Runs);
        }
        if self.model.quarantine.is_some() {
            self.engine.send(Command::Quarantine);
        }
        if self.model.kpi.report.is_some() || self.model.ui.panel == Panel::Dashboard {
            self.request_kpi();
        }
        if self.model.duplicates.is_some() || self.model.ui.panel == Panel::Duplicates {
            self.engine.send(Command::Duplicates);
        }
        // „Nicht zugeordnet“ lists what the ledger has seen, which a sync
        // changes; unsaved edits survive the reload.
        if self.model.mapping.state.is_some() || self.model.ui.panel == Panel::Mapping {
            self.engine.send(Command::Mapping(
                crate::engine::mapping_ops::MappingCommand::Load,
            ));
        }
    }

    /// Asks for a queue page unless it is here or on its way.
    fn load_queue_page(&mut self, offset: usize) {
        let cache = &mut self.model.queue;
        if cache.pages.contains_key(&offset) || !cache.requested.insert(offset) {
            return;
        }
        self.engine.send(Command::QueuePage {
            filter: cache.filter.clone(),
            offset,
            limit: QUEUE_PAGE,
        });
    }

    /// Reads what a panel shows when it is opened.
    fn request_panel_data(&mut self, panel: Panel) {
        if self.model.info.is_none() {
            return;
        }
        match panel {
            Panel::Queue => {
                self.load_queue_page(0);
                self.engine.send(Command::Quarantine);
            }
            Panel::Log => self.engine.send(Command::Runs),
            Panel::Settings => {
                self.engine
                    .send(Command::SecretStatus(settings::secret_keys(
                        &self.model.settings_file,
                    )));
                self.engine.send(Command::Refresh);
            }
            Panel::Mapping => self.engine.send(Command::Mapping(
                crate::engine::mapping_ops::MappingCommand::Load,
            )),
            Panel::Dashboard => self.request_kpi(),
            Panel::Duplicates => self.engine.send(Command::Duplicates),
            Panel::Import => self.apply(Intent::Import(import::ImportIntent::LoadHistory)),
            _ => self.engine.send(Command::Refresh),
        }
    }

    /// Asks the engine for the dashboard's figures as chosen now.
    fn request_kpi(&mut self) {
        if self.model.info.is_none() {
            return;
        }
        self.model.kpi.loading = true;
        self.model.kpi.requested_at = Some(Instant::now());
        self.engine
            .send(Command::Kpi(self.model.ui.dashboard.request()));
    }

    /// Reads the figures again every minute while the dashboard is shown
    /// (stages move with the date, and other programs may write the ledger).
    fn drive_kpi_refresh(&mut self, ctx: &egui::Context) {
        if self.model.ui.panel != Panel::Dashboard || self.model.kpi.loading {
            return;
        }
        let Some(at) = self.model.kpi.requested_at else {
            return;
        };
        let since = at.elapsed();
        if since >= dashboard::REFRESH_EVERY {
            self.request_kpi();
        } else {
            ctx.request_repaint_after(dashboard::REFRESH_EVERY - since);
        }
    }

    /// The one place intents change state.
    pub fn apply(&mut self, intent: Intent) {
        match intent {
            Intent::Navigate(panel) => {
                self.model.ui.panel = panel;
                self.request_panel_data(panel);
            }
            Intent::ShowAbout => self.panels.about.open = true,
            Intent::StartSync => {
                if self.model.running || self.model.info.is_none() {
                    return;
                }
                let first = dry_run::never_synced(&self.model);
                if first.is_empty() {
                    self.start_sync("manual", false);
                } else {
                    self.model.first_sync_prompt = Some(first);
                }
            }
            Intent::StartSyncNow | Intent::StartDryRun => {
                self.model.first_sync_prompt = None;
                self.model.dry_run_result = None;
                if self.model.running || self.model.info.is_none() {
                    return;
                }
                self.start_sync("manual", intent == Intent::StartDryRun);
            }
            Intent::CloseDryRun => {
                self.model.first_sync_prompt = None;
                self.model.dry_run_result = None;
            }
            Intent::CancelSync => {
                if self.model.running {
                    self.model.cancelling = true;
                    self.engine.send(Command::Cancel);
                }
            }
            Intent::SetLocations(keys) => self.model.ui.locations = keys,
            Intent::SetLang(lang) => self.model.ui.lang = lang,
            Intent::SetTheme(theme) => self.model.ui.theme = theme,
            Intent::Refresh => self.engine.send(Command::Refresh),
            Intent::SetQueueFilter(filter) => {
                if filter != self.model.queue.filter {
                    self.model.queue = QueueCache {
                        filter,
                        ..QueueCache::default()
                    };
                    self.load_queue_page(0);
                }
            }
            Intent::LoadQueuePage(offset) => self.load_queue_page(offset),
            Intent::LoadQuarantine => self.engine.send(Command::Quarantine),
            Intent::LoadRuns => self.engine.send(Command::Runs),
            Intent::RetryDead(ids) => self.engine.send(Command::RetryDead(ids)),
            Intent::DiscardDead(id) => self.engine.send(Command::DiscardDead(id)),
            Intent::SaveSettings(change) => {
                if self.model.saving {
                    return;
                }
                self.model.saving = true;
                self.pending_settings = Some(Box::new(change.settings.clone()));
                self.engine.send(Command::SaveSettings(change));
            }
            Intent::TestConnection(test) => {
                self.model.testing.insert(test.location.key.clone(), None);
                self.engine.send(Command::TestConnection(test));
            }
            Intent::Provision => {
                if !self.model.provisioning {
                    self.model.provisioning = true;
                    self.model.provision = None;
                    self.engine.send(Command::Provision);
                }
            }
            Intent::PickFile(pick) => {
                let lang = self.model.lang();
                let title = match pick {
                    Pick::MappingImport => lang.pick("Zuordnung importieren", "Import mapping"),
                    Pick::MappingExportDir | Pick::KpiExportDir => {
                        lang.pick("Ordner für den Export", "Folder for the export")
                    }
                    Pick::BackupTarget => lang.pick("Sicherung speichern", "Save backup"),
                    Pick::BackupSource => lang.pick("Sicherung wiederherstellen", "Restore backup"),
                    Pick::ImportFile => lang.pick("CSV-Export von Ivoris", "Ivoris CSV export"),
                };
                let repaint = self.repaint.clone();
                self.dialogs.open(pick, title, move || repaint());
            }
            Intent::Mapping(intent) => {
                for command in mapping::apply(&mut self.model.mapping, intent) {
                    self.engine.send(Command::Mapping(command));
                }
            }
            Intent::Privacy(privacy::PrivacyIntent::Engine(command)) => {
                if !self.model.privacy.busy {
                    self.model.privacy.busy = true;
                    self.model.privacy.result = None;
                    self.engine.send(Command::Privacy(command));
                }
            }
            Intent::Privacy(privacy::PrivacyIntent::ClosePreview) => {
                self.model.privacy.preview = None;
            }
            Intent::Privacy(privacy::PrivacyIntent::AskRestore) => {
                self.panels.settings.privacy.confirm_restore = true;
            }
            Intent::Duplicates(intent) => self.engine.send(match intent {
                duplicates::DuplicatesIntent::Reload => Command::Duplicates,
                duplicates::DuplicatesIntent::Dismiss(key) => Command::DismissDuplicate(key),
                duplicates::DuplicatesIntent::Mark {
                    location,
                    patient_id,
                    duplicate,
                } => Command::MarkDuplicate {
                    location,
                    patient_id,
                    duplicate,
                },
            }),
            Intent::Import(intent) => {
                for command in import::apply(&mut self.model.import, intent) {
                    self.engine.send(command);
                }
            }
            Intent::Portal(intent) => {
                for command in portal_duplicates::commands(&mut self.model.portal, intent) {
                    self.engine.send(command);
                }
            }
            Intent::Dashboard(intent) => match intent {
                dashboard::DashboardIntent::Choose(choice) => {
                    // The location only filters what is here; other
                    // periods need the engine.
                    let recompute = choice.request() != self.model.ui.dashboard.request();
                    self.model.ui.dashboard = choice;
                    if recompute {
                        self.request_kpi();
                    }
                }
                dashboard::DashboardIntent::Reload => self.request_kpi(),
                dashboard::DashboardIntent::Export(dir) => {
                    if let Some(Ok(report)) = &self.model.kpi.report {
                        self.model.kpi.exported = None;
                        self.engine.send(Command::KpiExport {
                            report: Box::new(report.clone()),
                            dir,
                            german: self.model.lang() == Lang::De,
                        });
                    }
                }
            },
        }
    }

    /// `--screenshot`: start a sync when the ledger is empty, wait until the
    /// data is complete and drawn, then save the window and close.
    fn drive_screenshot(&mut self, ctx: &egui::Context) {
        let Some(plan) = self.screenshot.as_mut() else {
            return;
        };
        if let Some(result) = plan
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            if result.is_ok() || plan.requested {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            return;
        }
        if self.model.setup_error.is_some() {
            *plan.done.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(Err("engine did not start".into()));
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        let Some(overview) = &self.model.overview else {
            ctx.request_repaint();
            return;
        };
        if !plan.synced && overview.runs.is_empty() && !self.model.running {
            plan.synced = true;
            self.apply(Intent::StartSyncNow);
            return;
        }
        let Some(plan) = self.screenshot.as_mut() else {
            return;
        };
        let panel_ready = match self.model.ui.panel {
            Panel::Queue => self.model.queue.total.is_some() && self.model.quarantine.is_some(),
            Panel::Log => self.model.runs.is_some(),
            Panel::Settings => !self.model.home || !self.model.secret_states.is_empty(),
            Panel::Mapping => self.model.mapping.state.is_some(),
            Panel::Dashboard => self.model.kpi.report.is_some() && !self.model.kpi.loading,
            Panel::Duplicates => self.model.duplicates.is_some(),
            Panel::Import => self.model.import.history.is_some(),
            _ => true,
        };
        if self.model.running || !panel_ready {
            plan.settled = 0;
            return;
        }
        // Show the details of the first row, so the picture has them.
        if self.model.ui.panel == Panel::Queue
            && self.panels.queue.selected.is_none()
            && let Some(first) = self.model.queue.row(0)
        {
            self.panels.queue.selected = Some(first.id);
        }
        plan.settled += 1;
        ctx.request_repaint();
        if plan.settled >= SCREENSHOT_SETTLE_FRAMES && !plan.requested {
            plan.requested = true;
            let (path, done, waker) = (plan.path.clone(), plan.done.clone(), ctx.clone());
            ctx.request_screenshot(move |image| {
                // Encoding and writing the PNG is I/O: not on the GUI thread.
                std::thread::spawn(move || {
                    let result = super::save_png(&path, &image);
                    *done.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
                    waker.request_repaint();
                });
            });
        }
    }

    /// Applies the theme when it changed.
    fn apply_theme(&mut self, ctx: &egui::Context) {
        if self.applied_theme == Some(self.model.ui.theme) {
            return;
        }
        self.applied_theme = Some(self.model.ui.theme);
        ctx.set_theme(match self.model.ui.theme {
            Theme::System => egui::ThemePreference::System,
            Theme::Light => egui::ThemePreference::Light,
            Theme::Dark => egui::ThemePreference::Dark,
        });
    }

    /// Draws one frame and returns the panels' intents (tests drive this
    /// through the harness).
    fn draw(&mut self, ui: &mut egui::Ui) -> Vec<Intent> {
        let mut intents = Vec::new();
        if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
            self.panels.close_dialogs();
            intents.push(Intent::CloseDryRun);
        }
        if ui.input(|i| i.key_pressed(egui::Key::F5)) {
            intents.push(if self.model.running {
                Intent::CancelSync
            } else {
                Intent::StartSync
            });
        }
        let model = &self.model;
        egui::Panel::top("top_bar").show(ui, |ui| {
            intents.extend(top_bar::top_bar_ui(ui, model));
        });
        if model.demo() {
            egui::Panel::top("demo_banner").show(ui, |ui| {
                intents.extend(top_bar::demo_banner_ui(ui, model));
            });
        }
        egui::Panel::left("navigation")
            .resizable(false)
            .exact_size(170.0)
            .show(ui, |ui| {
                intents.extend(nav::nav_ui(ui, model));
            });
        let panels = &mut self.panels;
        egui::CentralPanel::default().show(ui, |ui| {
            if let Some(notice) = &model.notice {
                top_bar::notice_ui(ui, notice);
            }
            if let Some(error) = &model.setup_error {
                let fix = top_bar::setup_error_ui(ui, model.lang(), error);
                intents.extend(fix);
                if model.ui.panel != Panel::Settings {
                    return;
                }
                ui.separator();
            }
            let panel_intents = match model.ui.panel {
                Panel::Overview => overview::overview_ui(ui, model),
                Panel::Queue => queue::queue_ui(ui, model, &mut panels.queue),
                Panel::Log => log::log_ui(ui, model, &mut panels.log),
                Panel::Settings => settings::settings_ui(ui, model, &mut panels.settings),
                Panel::Mapping => mapping::mapping_ui(ui, model, &mut panels.mapping),
                Panel::Dashboard => dashboard::dashboard_ui(ui, model, &mut panels.dashboard),
                Panel::Duplicates => duplicates::duplicates_ui(ui, model, &mut panels.duplicates),
                Panel::Import => import::import_ui(ui, model, &mut panels.import),
            };
            intents.extend(panel_intents);
        });
        about::about_ui(ui, model, &mut panels.about);
        intents.extend(dry_run::prompt_ui(ui.ctx(), model));
        intents.extend(dry_run::result_ui(ui.ctx(), model));
        intents
    }
}

impl eframe::App for SyncApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        if let Some(lines) = &self.live_log {
            self.model.live_log.extend(lines.try_iter());
        }
        for event in self.engine.drain() {
            self.on_event(event);
        }
        self.take_chosen_files(ctx);
        self.apply_theme(ctx);
        self.drive_schedule(ctx);
        self.drive_screenshot(ctx);
        self.drive_kpi_refresh(ctx);
        if self.model.running {
            // Remaining time and rate change with the clock, not only with events.
            ctx.request_repaint_after(std::time::Duration::from_millis(500));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        for intent in self.draw(ui) {
            self.apply(intent);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, &self.model.ui);
    }
}
