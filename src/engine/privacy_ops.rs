//! The Einstellungen' „Datenschutz und Sicherung“: backup and restore of
//! the ledger, and forgetting a patient (preview, erasure, lifting) — the
//! same library calls as `backup`, `restore` and `forget-patient`.
//!
//! Answers are plain data with messages in German and English; a held
//! writer lock (a sync runs) refuses a restore or an erasure with the lock's
//! own message, it never waits.

use std::path::PathBuf;

use crate::ledger::backup;
use crate::ledger::erasure::ErasurePreview;

use super::forget::{self, ForgetReport, ForgetRequest};
use super::run::SyncEnvironment;

/// What the panel asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivacyCommand {
    /// Write a backup of the ledger to this file.
    Backup(PathBuf),
    /// Put this backup in place of the ledger.
    Restore(PathBuf),
    /// What forgetting this patient would do.
    Preview {
        /// Location key.
        location: String,
        /// Patient number in Ivoris or Ivoris id.
        patient: String,
    },
    /// Forget the patient (confirmed by the person).
    Forget(ForgetRequest),
    /// Lift the tombstone of a forgotten patient (by Ivoris id).
    Lift {
        /// Location key.
        location: String,
        /// Ivoris id.
        patient: String,
    },
}

/// What the engine answers.
#[derive(Debug, Clone, PartialEq)]
pub enum PrivacyEvent {
    /// The backup was written (its path) or why not.
    BackedUp(Result<PathBuf, String>),
    /// The backup was restored (where the replaced ledger is kept) or why not.
    Restored(Result<PathBuf, String>),
    /// The preview, or why there is none (unknown patient …).
    Preview(Result<ErasurePreview, String>),
    /// The patient was forgotten, or why not.
    Forgotten(Result<ForgetReport, String>),
    /// Whether a tombstone was lifted, or why not.
    Lifted(Result<bool, String>),
}

/// Answers one command (blocking work off the runtime's workers).
pub async fn handle(env: &SyncEnvironment, command: PrivacyCommand) -> PrivacyEvent {
    let ledger = env.ledger_path.clone();
    match command {
        PrivacyCommand::Backup(to) => PrivacyEvent::BackedUp(
            blocking(move || {
                backup::backup(&ledger, &to)
                    .map(|_| to)
                    .map_err(|e| e.to_string())
            })
            .await,
        ),
        PrivacyCommand::Restore(from) => PrivacyEvent::Restored(
            blocking(move || {
                let kept = PathBuf::from(format!("{}.before-restore", ledger.display()));
                backup::restore(&ledger, &from)
                    .map(|_| kept)
                    .map_err(|e| e.to_string())
            })
            .await,
        ),
        PrivacyCommand::Preview { location, patient } => PrivacyEvent::Preview(
            blocking(move || {
                forget::preview(&ledger, &location, &patient).map_err(|e| e.to_string())
            })
            .await,
        ),
        PrivacyCommand::Forget(request) => PrivacyEvent::Forgotten(
            forget::forget_patient(env, &request)
                .await
                .map_err(|error| error.to_string()),
        ),
        PrivacyCommand::Lift { location, patient } => PrivacyEvent::Lifted(
            blocking(move || forget::lift(&ledger, &location, &patient).map_err(|e| e.to_string()))
                .await,
        ),
    }
}

/// Runs SQLite work on a blocking thread; a panic there is an error too.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| Err(error.to_string()))
}
