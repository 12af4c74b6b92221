//! Command line of `ivoris-hubspot-sync`: parse, dispatch, decide the exit code.
//!
//! Without a subcommand the desktop app opens (in demo mode while no
//! location is configured); `--screenshot PATH` saves the loaded window as
//! PNG and closes it, `--panel NAME` chooses the view.
//!
//! Exit codes: 0 success; 1 failed (an error, a location could not be
//! synced, a mapping import with invalid rows saved nothing, or a CSV
//! import refused: columns unassigned, invalid rows without
//! `--drop-invalid`); 2 wrong usage; 3 finished, but writes failed
//! (retried later) or dead letters or quarantined records need a look
//! (also: an import left invalid rows out, or a patient was forgotten but
//! HubSpot has not erased everything yet); 4 another sync holds the
//! ledger (`sync`, `retry`, `mapping apply`, `import`, `restore`,
//! `forget-patient`); 130 cancelled.
//!
//! On Windows the exe is a GUI-subsystem program; commands started from a
//! console print into it (`console.rs`).

#![cfg_attr(windows, windows_subsystem = "windows")]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::filter::LevelFilter;

use ivoris_hubspot_sync::files;
use ivoris_hubspot_sync::logging::{self, LogOptions};
use ivoris_hubspot_sync::settings::DataDirs;

mod commands;
#[cfg(windows)]
mod console;

use commands::sync::Ended;
use ivoris_hubspot_sync::gui::Panel;
use ivoris_hubspot_sync::ledger::RunOutcome;
use ivoris_hubspot_sync::mapping::TableName;

/// Keeps HubSpot in sync with the Ivoris practice systems of a dental chain.
#[derive(Parser)]
#[command(name = "ivoris-hubspot-sync", version, about)]
struct Cli {
    /// Settings file (default: the OS config directory).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Directory for the ledger and the logs (default: the OS data directory).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "IVORIS_HUBSPOT_SYNC_DATA_DIR"
    )]
    data_dir: Option<PathBuf>,
    /// More log output on stderr (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Desktop app: save the window as PNG once the data is loaded, then close.
    #[arg(long, global = true, value_name = "PATH")]
    screenshot: Option<PathBuf>,
    /// Desktop app: view to open (uebersicht, warteschlange, protokoll, einstellungen, …).
    #[arg(long, global = true, value_name = "NAME", value_parser = parse_panel)]
    panel: Option<Panel>,
    /// Desktop app: table the Zuordnung opens on (standorte, terminarten, phasen, …).
    #[arg(long, global = true, value_name = "NAME", value_parser = parse_table)]
    table: Option<TableName>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the simulated Ivoris and HubSpot APIs on 127.0.0.1 („Demo-Modus“, tests).
    Sandbox(commands::sandbox::SandboxArgs),
    /// Show the ledger: records per location, queue, dead letters, latest runs.
    Status,
    /// Run one sync: Ivoris → ledger → HubSpot.
    Sync(commands::sync::SyncArgs),
    /// Send dead letters again with the next sync (after fixing the cause).
    Retry(commands::retry::RetryArgs),
    /// Mapping tables: export / import CSV, versions, diff, restore.
    Mapping(commands::mapping::MappingArgs),
    /// Duplicates in HubSpot: `scan` reads the portal (read only), `list` prints the findings.
    Duplicates(commands::duplicates::DuplicatesArgs),
    /// Key figures per location and week / month; CSV for German Excel.
    Kpi(commands::kpi::KpiArgs),
    /// Write a consistent copy of the ledger (also while the app runs).
    Backup(commands::backup::BackupArgs),
    /// Put a backup back in place of the ledger (refused while a sync runs).
    Restore(commands::backup::RestoreArgs),
    /// Historical CSV export (patients, appointments, billing lines) into the ledger.
    Import(commands::import::ImportArgs),
    /// Forget a patient (GDPR Art. 17): erase it in HubSpot and the ledger, never sync it again.
    ForgetPatient(commands::forget::ForgetArgs),
}

fn main() -> ExitCode {
    #[cfg(windows)]
    console::attach_parent();
    let cli = Cli::parse();
    let dirs = match &cli.data_dir {
        Some(dir) => DataDirs {
            data_dir: dir.clone(),
            ..DataDirs::from_os().unwrap_or_else(|_| DataDirs::under(dir))
        },
        None => match DataDirs::from_os() {
            Ok(dirs) => dirs,
            Err(error) => return fail(error.into()),
        },
    };
    let mut log_options = LogOptions::in_data_dir(&dirs, stderr_level(cli.verbose));
    // The desktop app shows the engine's log lines in its Protokoll.
    let live_lines = cli.command.is_none().then(|| {
        let (live, lines) = logging::live_log();
        log_options.live = Some(live);
        lines
    });
    let _log = match logging::init(&log_options) {
        Ok(guard) => guard,
        Err(error) => return fail(error.into()),
    };
    // The ledger and the logs hold patient data: the folder is the user's
    // alone (narrowed and logged if it was wider).
    if let Err(error) = files::private_dir(&dirs.data_dir) {
        tracing::warn!(%error, "data directory could not be made private");
    }
    let result = match cli.command {
        None => commands::gui::run(
            cli.config.as_deref(),
            &dirs,
            cli.panel,
            cli.table,
            cli.screenshot,
            live_lines,
        )
        .map(|()| Ended::Outcome(RunOutcome::Success)),
        Some(Command::Sandbox(args)) => {
            commands::sandbox::run(args).map(|()| Ended::Outcome(RunOutcome::Success))
        }
        Some(Command::Status) => commands::status::run(cli.config.as_deref(), &dirs)
            .map(|()| Ended::Outcome(RunOutcome::Success)),
        Some(Command::Sync(args)) => commands::sync::run(args, cli.config.as_deref(), &dirs),
        Some(Command::Retry(args)) => commands::retry::run(args, cli.config.as_deref(), &dirs),
        Some(Command::Mapping(args)) => commands::mapping::run(args, cli.config.as_deref(), &dirs),
        Some(Command::Duplicates(args)) => {
            commands::duplicates::run(args, cli.config.as_deref(), &dirs)
        }
        Some(Command::Kpi(args)) => commands::kpi::run(args, cli.config.as_deref(), &dirs)
            .map(|()| Ended::Outcome(RunOutcome::Success)),
        Some(Command::Backup(args)) => {
            commands::backup::run_backup(args, cli.config.as_deref(), &dirs)
                .map(|()| Ended::Outcome(RunOutcome::Success))
        }
        Some(Command::Restore(args)) => {
            commands::backup::run_restore(args, cli.config.as_deref(), &dirs)
        }
        Some(Command::Import(args)) => commands::import::run(args, cli.config.as_deref(), &dirs),
        Some(Command::ForgetPatient(args)) => {
            commands::forget::run(args, cli.config.as_deref(), &dirs)
        }
    };
    match result {
        Ok(Ended::Outcome(RunOutcome::Success)) => ExitCode::SUCCESS,
        Ok(Ended::Outcome(RunOutcome::Failed)) => ExitCode::from(1),
        Ok(Ended::Outcome(RunOutcome::Warnings)) => ExitCode::from(3),
        Ok(Ended::Locked) => ExitCode::from(4),
        Ok(Ended::Outcome(RunOutcome::Cancelled)) => ExitCode::from(130),
        Err(error) => fail(error),
    }
}

fn fail(error: anyhow::Error) -> ExitCode {
    eprintln!("Fehler / Error: {error:#}");
    ExitCode::FAILURE
}

fn parse_panel(name: &str) -> Result<Panel, String> {
    Panel::from_name(name).ok_or_else(|| {
        "unbekannte Ansicht / unknown view (uebersicht, warteschlange, duplikate, zuordnung, import, dashboard, protokoll, einstellungen)".to_owned()
    })
}

fn parse_table(name: &str) -> Result<TableName, String> {
    TableName::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = TableName::ALL.iter().map(|t| t.label()).collect();
        format!(
            "unbekannte Tabelle / unknown table ({})",
            names.join(", ").to_lowercase()
        )
    })
}

fn stderr_level(verbose: u8) -> LevelFilter {
    match verbose {
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}
