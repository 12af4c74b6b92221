//! The app's state and the intents that change it: what every panel reads
//! ([`Model`]) and returns ([`Intent`]). Panels depend on this module, not
//! on the shell (`app.rs`) that carries the intents out.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::engine::handle::{
    ConnectionReport, ConnectionTest, EngineInfo, Overview, SettingsChange,
};
use crate::engine::run::{Progress, SyncSummary};
use crate::hubspot::provision::{AppointmentsStatus, ProvisionReport};
use crate::ledger::{OutboxFilter, OutboxItem, QuarantineEntry, RunRecord};
use crate::settings::Settings;

use super::i18n::Lang;
use super::run_progress::RunProgress;
use super::schedule::Schedule;
use super::{
    dashboard, duplicates, file_dialog, import, log, mapping, portal_duplicates, privacy, settings,
};

/// Rows per queue page asked of the engine.
pub const QUEUE_PAGE: usize = 100;

/// The views of the left navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Panel {
    /// Übersicht.
    #[default]
    Overview,
    /// Warteschlange.
    Queue,
    /// Duplikate.
    Duplicates,
    /// Zuordnung.
    Mapping,
    /// Import.
    Import,
    /// Dashboard.
    Dashboard,
    /// Protokoll.
    Log,
    /// Einstellungen.
    Settings,
}

impl Panel {
    /// In navigation order.
    pub const ALL: [Panel; 8] = [
        Panel::Overview,
        Panel::Queue,
        Panel::Duplicates,
        Panel::Mapping,
        Panel::Import,
        Panel::Dashboard,
        Panel::Log,
        Panel::Settings,
    ];

    /// Title in the navigation and as the panel's heading.
    pub fn title(self, lang: Lang) -> &'static str {
        match self {
            Panel::Overview => lang.pick("Übersicht", "Overview"),
            Panel::Queue => lang.pick("Warteschlange", "Queue"),
            Panel::Duplicates => lang.pick("Duplikate", "Duplicates"),
            Panel::Mapping => lang.pick("Zuordnung", "Mapping"),
            Panel::Import => lang.pick("Import", "Import"),
            Panel::Dashboard => lang.pick("Dashboard", "Dashboard"),
            Panel::Log => lang.pick("Protokoll", "Log"),
            Panel::Settings => lang.pick("Einstellungen", "Settings"),
        }
    }

    /// The panel a `--panel` name means (German or English, any case).
    pub fn from_name(name: &str) -> Option<Panel> {
        let name = name.trim().to_lowercase().replace('ü', "ue");
        Panel::ALL.into_iter().find(|panel| {
            [panel.title(Lang::De), panel.title(Lang::En)]
                .iter()
                .any(|title| title.to_lowercase().replace('ü', "ue") == name)
        })
    }
}

/// Light or dark look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Theme {
    /// Follow the operating system.
    #[default]
    System,
    /// Hell.
    Light,
    /// Dunkel.
    Dark,
}

/// What the app remembers between starts (the window size is remembered
/// by eframe itself).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UiState {
    /// The panel shown.
    pub panel: Panel,
    /// Locations chosen for „Jetzt synchronisieren“; empty means all.
    pub locations: Vec<String>,
    /// Language of the interface.
    pub lang: Lang,
    /// Light or dark.
    pub theme: Theme,
    /// Granularity, time range and location of the dashboard.
    pub dashboard: dashboard::DashboardChoice,
}

/// A finished run as the top bar shows it.
#[derive(Debug, Clone)]
pub enum LastResult {
    /// The run finished; its summary.
    Summary(Box<SyncSummary>),
    /// A run from the history (before this session).
    Recorded(Box<RunRecord>),
    /// The run could not start or stopped with an error.
    Error(String),
}

/// The queue's rows as far as the engine has sent them.
#[derive(Debug, Clone, Default)]
pub struct QueueCache {
    /// The filter the rows belong to.
    pub filter: OutboxFilter,
    /// Rows the filter selects, once known.
    pub total: Option<u64>,
    /// Pages by their first row.
    pub pages: HashMap<usize, Vec<OutboxItem>>,
    /// Pages asked for and not yet answered.
    pub requested: HashSet<usize>,
}

impl QueueCache {
    /// The row at `index`, if its page has arrived.
    pub fn row(&self, index: usize) -> Option<&OutboxItem> {
        let start = index - index % QUEUE_PAGE;
        self.pages.get(&start)?.get(index - start)
    }

    /// The row with this id among the loaded pages.
    pub fn find(&self, id: i64) -> Option<&OutboxItem> {
        self.pages.values().flatten().find(|item| item.id == id)
    }
}

/// A short message under the top bar (an action's result or an error).
#[derive(Debug, Clone)]
pub struct Notice {
    /// The text in the chosen language.
    pub text: String,
    /// Whether it reports a problem.
    pub error: bool,
}

/// Everything the panels read; they change nothing in it directly.
#[derive(Default)]
pub struct Model {
    /// Persisted choices.
    pub ui: UiState,
    /// The engine's settings once it is ready.
    pub info: Option<EngineInfo>,
    /// Why the engine could not start.
    pub setup_error: Option<String>,
    /// Path of the settings file, for the settings panel.
    pub settings_path: Option<PathBuf>,
    /// Directory of the daily log files, for „Über“ (`None` without a
    /// settings home, as in tests).
    pub logs_dir: Option<PathBuf>,
    /// Whether a sync runs.
    pub running: bool,
    /// Whether „Abbrechen“ was pressed for the running sync.
    pub cancelling: bool,
    /// Latest progress of the running sync.
    pub progress: Option<Progress>,
    /// Every side's latest progress of the running sync: HubSpot and each
    /// location, read at the same time.
    pub run_progress: RunProgress,
    /// When the running sync started.
    pub started: Option<Instant>,
    /// The latest finished run.
    pub last: Option<LastResult>,
    /// The overview snapshot.
    pub overview: Option<Overview>,
    /// The queue pages.
    pub queue: QueueCache,
    /// Open quarantine entries, once read.
    pub quarantine: Option<Vec<QuarantineEntry>>,
    /// The run history, once read.
    pub runs: Option<Vec<RunRecord>>,
    /// The latest notice.
    pub notice: Option<Notice>,
    /// The settings as saved in the file (in demo mode not the sandbox's).
    pub settings_file: Settings,
    /// Why the settings file could not be read, German / English.
    pub settings_file_error: Option<String>,
    /// Whether settings can be saved in this session.
    pub home: bool,
    /// Whether a save is on its way.
    pub saving: bool,
    /// Where each secret is, as the engine last reported.
    pub secret_states: settings::SecretStates,
    /// Connection tests by location key; `None` while one runs.
    pub testing: HashMap<String, Option<ConnectionReport>>,
    /// Whether „Einrichtung prüfen“ runs.
    pub provisioning: bool,
    /// The last result of „Einrichtung prüfen“.
    pub provision: Option<Result<ProvisionReport, String>>,
    /// The appointments object as last found in HubSpot.
    pub appointments_detected: Option<AppointmentsStatus>,
    /// The automatic sync.
    pub schedule: Schedule,
    /// What the engine logged since the latest sync started.
    pub live_log: log::LiveLogLines,
    /// What the engine told the mapping editor.
    pub mapping: mapping::MappingModel,
    /// The dashboard's figures.
    pub kpi: dashboard::KpiModel,
    /// While the question before a first sync is open: the names of the
    /// locations never synced.
    pub first_sync_prompt: Option<Vec<String>>,
    /// Whether the running sync is a dry run.
    pub dry_running: bool,
    /// The latest dry run's result, while its window is open.
    pub dry_run_result: Option<Box<SyncSummary>>,
    /// The duplicate review's open groups, once read.
    pub duplicates: Option<Result<Vec<crate::engine::duplicates::ReviewGroup>, String>>,
    /// The review's second part: HubSpot's duplicates and the decision log.
    pub portal: portal_duplicates::PortalModel,
    /// Backup, restore and erasure answers (Einstellungen).
    pub privacy: privacy::PrivacyModel,
    /// What the engine told the Import view, and what is chosen there.
    pub import: import::ImportModel,
}

impl Model {
    /// The language chosen.
    pub fn lang(&self) -> Lang {
        self.ui.lang
    }

    /// Whether the engine runs on the embedded sandbox.
    pub fn demo(&self) -> bool {
        self.info.as_ref().is_some_and(|info| info.demo)
    }
}

/// What a panel wants done; [`SyncApp::apply`] does it.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// Show another panel.
    Navigate(Panel),
    /// Open the „Über“ dialog.
    ShowAbout,
    /// Start a sync of the chosen locations; before a location's first
    /// sync the app asks whether to make a dry run first.
    StartSync,
    /// Start a sync of the chosen locations without asking.
    StartSyncNow,
    /// Start a dry run of the chosen locations: nothing is sent.
    StartDryRun,
    /// Close the first-sync question or the dry run's result.
    CloseDryRun,
    /// Stop the running sync.
    CancelSync,
    /// Choose the locations to sync (empty: all).
    SetLocations(Vec<String>),
    /// Switch the language.
    SetLang(Lang),
    /// Switch light / dark.
    SetTheme(Theme),
    /// Read the overview again.
    Refresh,
    /// Show the queue with another filter.
    SetQueueFilter(OutboxFilter),
    /// Read the queue page starting at this row.
    LoadQueuePage(usize),
    /// Read the quarantine entries.
    LoadQuarantine,
    /// Read the run history.
    LoadRuns,
    /// Make dead letters pending again (empty: all).
    RetryDead(Vec<i64>),
    /// Remove a dead letter (already confirmed by the person).
    DiscardDead(i64),
    /// Save validated settings and secrets, then run with them.
    SaveSettings(Box<SettingsChange>),
    /// Test one location's Ivoris connection.
    TestConnection(Box<ConnectionTest>),
    /// Run HubSpot provisioning („Einrichtung prüfen“).
    Provision,
    /// Something for the mapping editor.
    Mapping(mapping::MappingIntent),
    /// Open the operating system's file or folder dialog.
    PickFile(file_dialog::Pick),
    /// Something for the dashboard.
    Dashboard(dashboard::DashboardIntent),
    /// Something for the duplicate review.
    Duplicates(duplicates::DuplicatesIntent),
    /// Something for the review's second part (HubSpot).
    Portal(portal_duplicates::PortalIntent),
    /// Backup, restore, forgetting a patient.
    Privacy(privacy::PrivacyIntent),
    /// Something for the Import view.
    Import(import::ImportIntent),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panel_names_are_understood_in_both_languages() {
        assert_eq!(Panel::from_name("uebersicht"), Some(Panel::Overview));
        assert_eq!(Panel::from_name("Übersicht"), Some(Panel::Overview));
        assert_eq!(Panel::from_name("queue"), Some(Panel::Queue));
        assert_eq!(Panel::from_name("protokoll"), Some(Panel::Log));
        assert_eq!(Panel::from_name("nichts"), None);
    }
}
