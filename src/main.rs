//! Command line of `ivoris-hubspot-sync`: parse, dispatch, decide the exit code.
//!
//! Without a subcommand the desktop app will open (a later step); until then
//! the binary prints its help.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use tracing_subscriber::filter::LevelFilter;

use ivoris_hubspot_sync::logging::{self, LogOptions};
use ivoris_hubspot_sync::settings::DataDirs;

mod commands;

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the simulated Ivoris and HubSpot APIs on 127.0.0.1 („Demo-Modus“, tests).
    Sandbox(commands::sandbox::SandboxArgs),
    /// Show the ledger: records per location, queue, dead letters, latest runs.
    Status,
}

fn main() -> ExitCode {
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
    let _log = match logging::init(&LogOptions::in_data_dir(&dirs, stderr_level(cli.verbose))) {
        Ok(guard) => guard,
        Err(error) => return fail(error.into()),
    };
    let result = match cli.command {
        None => {
            // The desktop app opens here once it exists.
            let _ = Cli::command().print_help();
            Ok(())
        }
        Some(Command::Sandbox(args)) => commands::sandbox::run(args),
        Some(Command::Status) => commands::status::run(cli.config.as_deref(), &dirs),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(error),
    }
}

fn fail(error: anyhow::Error) -> ExitCode {
    eprintln!("Fehler / Error: {error:#}");
    ExitCode::FAILURE
}

fn stderr_level(verbose: u8) -> LevelFilter {
    match verbose {
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}
