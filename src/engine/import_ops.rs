//! The Import view's requests, answered on the engine thread: the history,
//! opening a file (detection, columns, preview), the check, the dry run and
//! the import itself with progress and cancellation ([`super::import`]).
//! The GUI sends an [`ImportCommand`] and gets [`ImportEvent`]s back; it
//! never reads the file or the ledger itself.

use crate::import::{CheckReport, ImportRequest, ImportSession};
use crate::ledger::Ledger;
use crate::ledger::imports::ImportRecord;

use super::extract::CancelFlag;
use super::import::{
    ImportOptions, ImportOutcome, ImportProgress, ImportRunError, ImportSummary, check, dry_run,
    ensure_location, import, open_session,
};
use super::run::SyncEnvironment;

/// Imports listed in the history.
pub const HISTORY_IMPORTS: usize = 200;

/// What the Import view asks.
#[derive(Debug, Clone)]
pub enum ImportCommand {
    /// Read the import history.
    History,
    /// Open a file: detection, column assignment, preview. A configured
    /// location the ledger does not know yet is added first.
    Open(Box<ImportRequest>),
    /// Check every row of the opened file.
    Check(Box<ImportSession>),
    /// Compute what importing would change in HubSpot (nothing stays).
    DryRun(Box<ImportSession>),
    /// Import the file (the person confirmed).
    Run {
        /// The opened file with its assignment.
        session: Box<ImportSession>,
        /// Whether invalid rows are left out.
        options: ImportOptions,
    },
}

impl ImportCommand {
    /// Whether it writes the file into the ledger (and can be cancelled).
    pub fn is_run(&self) -> bool {
        matches!(self, ImportCommand::Run { .. })
    }
}

/// The engine's answers.
#[derive(Debug, Clone)]
pub enum ImportEvent {
    /// Answer to [`ImportCommand::History`], newest first.
    History(Vec<ImportRecord>),
    /// Answer to [`ImportCommand::Open`].
    Opened(Box<ImportSession>),
    /// Answer to [`ImportCommand::Check`], with the request it checked
    /// (the choices may have changed since).
    Checked(Box<(ImportRequest, CheckReport)>),
    /// Answer to [`ImportCommand::DryRun`], with its request.
    Summary(Box<(ImportRequest, ImportSummary)>),
    /// Progress of the running import, after every batch.
    Progress(ImportProgress),
    /// The import ended (done or cancelled).
    Finished(Box<ImportOutcome>),
    /// A step failed; German / English. An import refused for invalid
    /// rows carries their check report.
    Failed {
        /// Why, German / English.
        message: String,
        /// The check behind a refusal for invalid rows.
        check: Option<Box<CheckReport>>,
    },
    /// An import was asked for while one runs.
    Busy,
}

impl ImportEvent {
    fn failed(error: impl std::fmt::Display) -> ImportEvent {
        ImportEvent::Failed {
            message: error.to_string(),
            check: None,
        }
    }
}

/// Answers one command; `progress` receives the import's progress.
pub async fn handle(
    env: &SyncEnvironment,
    command: ImportCommand,
    progress: impl Fn(ImportProgress) + Send + 'static,
    cancel: CancelFlag,
) -> ImportEvent {
    if let ImportCommand::DryRun(session) = command {
        return match dry_run(env, &session).await {
            Ok(summary) => ImportEvent::Summary(Box::new((session.request.clone(), summary))),
            Err(error) => ImportEvent::failed(error),
        };
    }
    let env = env.clone();
    // SQLite and the file block: off the runtime's workers.
    tokio::task::spawn_blocking(move || blocking(&env, command, &progress, &cancel))
        .await
        .unwrap_or_else(ImportEvent::failed)
}

/// The commands that only read or write the ledger and the file.
fn blocking(
    env: &SyncEnvironment,
    command: ImportCommand,
    progress: &dyn Fn(ImportProgress),
    cancel: &CancelFlag,
) -> ImportEvent {
    let ledger_path = &env.ledger_path;
    let result = match command {
        ImportCommand::History => Ledger::open(ledger_path)
            .and_then(|ledger| ledger.import_history(HISTORY_IMPORTS))
            .map(ImportEvent::History)
            .map_err(ImportRunError::from),
        ImportCommand::Open(request) => (|| {
            if let Some(configured) = env
                .settings
                .locations
                .iter()
                .find(|l| l.key == request.location)
            {
                ensure_location(ledger_path, configured)?;
            }
            open_session(ledger_path, *request)
        })()
        .map(|session| ImportEvent::Opened(Box::new(session))),
        ImportCommand::Check(session) => check(ledger_path, &session)
            .map(|report| ImportEvent::Checked(Box::new((session.request.clone(), report)))),
        ImportCommand::Run { session, options } => {
            import(ledger_path, &session, options, progress, cancel)
                .map(|outcome| ImportEvent::Finished(Box::new(outcome)))
        }
        ImportCommand::DryRun(_) => return ImportEvent::failed("Probelauf / dry run"),
    };
    result.unwrap_or_else(|error| match error {
        ImportRunError::InvalidRows(report) => ImportEvent::Failed {
            message: format!(
                "{} ungültige Zeilen – Datei korrigieren oder „Ungültige Zeilen auslassen“ wählen / \
                 {} invalid rows – correct the file or choose \"Leave out invalid rows\"",
                report.rows_invalid, report.rows_invalid
            ),
            check: Some(report),
        },
        other => ImportEvent::failed(other),
    })
}
