//! `retry`: makes dead letters pending again so the next sync sends them —
//! after the cause (a missing property, a full daily budget, a refused
//! value) was fixed. Recorded in the audit log. Takes the writer lock like
//! `sync`: while a sync writes to the ledger, `retry` is refused (exit code
//! 4) with the holder's name.

use std::path::Path;

use anyhow::Context;

use ivoris_hubspot_sync::ledger::audit::os_user;
use ivoris_hubspot_sync::ledger::lock::{LockError, WriterLock};
use ivoris_hubspot_sync::ledger::{Ledger, NewAuditEntry, RunOutcome};
use ivoris_hubspot_sync::settings::{DataDirs, Settings};

use super::sync::Ended;

/// Options of `retry`.
#[derive(clap::Args)]
pub struct RetryArgs {
    /// Outbox row ids of dead letters (see `status`); none means all.
    ids: Vec<i64>,
}

/// Makes the chosen dead letters pending again, unless a sync holds the
/// ledger.
pub fn run(args: RetryArgs, config: Option<&Path>, dirs: &DataDirs) -> anyhow::Result<Ended> {
    let settings = Settings::load(config, dirs)?;
    let path = settings.ledger_path(dirs);
    let _lock = match WriterLock::acquire(&path, "retry") {
        Ok(lock) => lock,
        Err(error @ LockError::Held { .. }) => {
            eprintln!("{error}");
            return Ok(Ended::Locked);
        }
        Err(error) => return Err(error.into()),
    };
    let mut ledger = Ledger::open(&path).with_context(|| format!("{}", path.display()))?;
    let count = ledger.retry_dead(&args.ids)?;
    ledger.audit(&NewAuditEntry {
        actor: os_user(),
        action: "outbox.retry".into(),
        subject: if args.ids.is_empty() {
            "all".into()
        } else {
            format!("{:?}", args.ids)
        },
        details: serde_json::json!({ "rows": count }),
    })?;
    println!(
        "{count} fehlgeschlagene Schreibvorgänge werden beim nächsten Lauf erneut versucht / \
         {count} dead letters will be retried by the next run"
    );
    Ok(Ended::Outcome(RunOutcome::Success))
}
