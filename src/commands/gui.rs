//! No subcommand: the desktop app. Reads the settings and resolves the
//! credentials before the window opens, so the GUI thread never has to;
//! without locations the engine runs the embedded sandbox („Demo-Modus“).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use ivoris_hubspot_sync::engine::handle::{EngineSetup, SettingsHome};
use ivoris_hubspot_sync::engine::run::{Credentials, SyncEnvironment, clock_for};
use ivoris_hubspot_sync::gui::{self, Launch, Panel};
use ivoris_hubspot_sync::logging::LiveLine;
use ivoris_hubspot_sync::mapping::TableName;
use ivoris_hubspot_sync::secrets::{OsSecretStore, Secrets};
use ivoris_hubspot_sync::settings::{DataDirs, Settings};

/// The demo's ledger, kept apart from the real one.
const DEMO_LEDGER: &str = "demo-ledger.sqlite";

/// Opens the window and runs until it is closed.
pub fn run(
    config: Option<&Path>,
    dirs: &DataDirs,
    panel: Option<Panel>,
    mapping_table: Option<TableName>,
    screenshot: Option<PathBuf>,
    live_log: Option<Receiver<LiveLine>>,
) -> anyhow::Result<()> {
    let settings_path = config
        .map(Path::to_owned)
        .unwrap_or_else(|| dirs.settings_file());
    let store = Arc::new(OsSecretStore::new());
    let loaded = Settings::load(config, dirs);
    let settings_file = loaded
        .as_ref()
        .map(Clone::clone)
        .map_err(ToString::to_string);
    let setup = match loaded {
        Err(error) => EngineSetup::Unavailable(error.to_string()),
        Ok(settings) if settings.is_demo() => EngineSetup::Demo {
            ledger_path: dirs.data_dir.join(DEMO_LEDGER),
        },
        Ok(settings) => {
            match Credentials::resolve(&settings, &Secrets::from_process_env(store.as_ref())) {
                Err(error) => EngineSetup::Unavailable(error.to_string()),
                Ok(credentials) => EngineSetup::Configured(Box::new(SyncEnvironment {
                    ledger_path: settings.ledger_path(dirs),
                    clock: clock_for(&settings),
                    settings,
                    credentials,
                    tune_ivoris: None,
                    tune_hubspot: None,
                })),
            }
        }
    };
    let home = SettingsHome {
        path: settings_path,
        dirs: dirs.clone(),
        store,
        env: std::env::vars().collect(),
    };
    gui::run(Launch {
        setup,
        home: Some(home),
        settings_file,
        panel,
        mapping_table,
        screenshot,
        live_log,
    })?;
    Ok(())
}
