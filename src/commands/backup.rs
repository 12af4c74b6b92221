//! `backup FILE` and `restore FILE`: a consistent copy of the ledger while
//! the app may be running, and putting such a copy back (refused while a
//! sync holds the ledger). The ledger is the one the settings point at.

use std::path::{Path, PathBuf};

use ivoris_hubspot_sync::ledger::RunOutcome;
use ivoris_hubspot_sync::ledger::backup::{self, BackupError};
use ivoris_hubspot_sync::settings::{DataDirs, Settings};

use super::sync::Ended;

/// Options of `backup`.
#[derive(clap::Args)]
pub struct BackupArgs {
    /// The backup file to write (replaced if it exists).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Options of `restore`.
#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The backup file to put back.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Writes a backup of the ledger.
pub fn run_backup(args: BackupArgs, config: Option<&Path>, dirs: &DataDirs) -> anyhow::Result<()> {
    let ledger = Settings::load(config, dirs)?.ledger_path(dirs);
    if !ledger.exists() {
        anyhow::bail!(
            "Kein Ledger unter {} – noch nichts zu sichern / No ledger at {} – nothing to back up yet",
            ledger.display(),
            ledger.display()
        );
    }
    let snapshot = backup::backup(&ledger, &args.file)?;
    println!(
        "Gesichert / backed up: {} → {} (Schema {}, {} Bytes)",
        ledger.display(),
        args.file.display(),
        snapshot.schema_version,
        snapshot.bytes
    );
    Ok(())
}

/// Puts a backup back in place of the ledger.
pub fn run_restore(
    args: RestoreArgs,
    config: Option<&Path>,
    dirs: &DataDirs,
) -> anyhow::Result<Ended> {
    let ledger = Settings::load(config, dirs)?.ledger_path(dirs);
    match backup::restore(&ledger, &args.file) {
        Ok(snapshot) => {
            println!(
                "Wiederhergestellt / restored: {} → {} (Schema {}); der bisherige Ledger liegt unter / the previous ledger is kept at {}.before-restore",
                args.file.display(),
                ledger.display(),
                snapshot.schema_version,
                ledger.display()
            );
            Ok(Ended::Outcome(RunOutcome::Success))
        }
        Err(BackupError::Locked(error)) => {
            eprintln!("{error}");
            Ok(Ended::Locked)
        }
        Err(error) => Err(error.into()),
    }
}
