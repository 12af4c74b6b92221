//! The history of sync runs: what each run read, quarantined, wrote, left
//! unchanged or failed, how many API calls it made and how it ended — the
//! „Protokoll“ view and `status` read it.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Ledger, LedgerError, now};

/// Schema step: run history.
pub(super) const RUNS_MIGRATION: &str = r#"
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    trigger     TEXT NOT NULL,
    locations   TEXT NOT NULL,
    dry_run     INTEGER NOT NULL,
    outcome     TEXT,
    message     TEXT,
    counts      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(counts)),
    duration_ms INTEGER
) STRICT;
"#;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Everything read and written.
    Success,
    /// Finished, but dead letters or quarantined records need a look.
    Warnings,
    /// Stopped by an error.
    Failed,
    /// Stopped by the user.
    Cancelled,
}

impl RunOutcome {
    fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Success => "success",
            RunOutcome::Warnings => "warnings",
            RunOutcome::Failed => "failed",
            RunOutcome::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<RunOutcome> {
        [
            RunOutcome::Success,
            RunOutcome::Warnings,
            RunOutcome::Failed,
            RunOutcome::Cancelled,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }
}

/// The numbers of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunCounts {
    /// Ivoris records read (all kinds).
    pub read: u64,
    /// Records put into quarantine this run.
    pub quarantined: u64,
    /// HubSpot records written and confirmed.
    pub written: u64,
    /// Records whose computed content equalled what HubSpot had.
    pub unchanged: u64,
    /// Writes that failed this run (retried later or dead letters).
    pub failed: u64,
    /// Ivoris requests made.
    pub ivoris_calls: u64,
    /// HubSpot requests made.
    pub hubspot_calls: u64,
}

/// One row of the run history.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// Row id.
    pub id: i64,
    /// UTC start, ISO-8601.
    pub started_at: String,
    /// UTC end; `None` while running or when the process died.
    pub finished_at: Option<String>,
    /// `manual`, `schedule`, `cli`.
    pub trigger: String,
    /// Location keys, comma-separated.
    pub locations: String,
    /// Whether nothing was sent.
    pub dry_run: bool,
    /// `None` while running or when the process died mid-run.
    pub outcome: Option<RunOutcome>,
    /// The reason of a failure or the warnings, German / English.
    pub message: Option<String>,
    /// The numbers.
    pub counts: RunCounts,
    /// Wall time.
    pub duration_ms: Option<i64>,
}

impl Ledger {
    /// Records the start of a run; returns its id.
    pub fn start_run(
        &mut self,
        trigger: &str,
        locations: &[String],
        dry_run: bool,
    ) -> Result<i64, LedgerError> {
        self.conn.execute(
            "INSERT INTO runs (started_at, trigger, locations, dry_run) VALUES (?1, ?2, ?3, ?4)",
            params![now(), trigger, locations.join(","), dry_run],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Gives every run that never recorded its end the outcome `Failed`
    /// with a note that its process ended first (killed, crashed, power
    /// cut); returns how many. Only to be called by the holder of the
    /// writer lock: then no other run can still be going, and the history
    /// stops showing dead runs as running. Their end time stays unknown.
    pub fn close_interrupted_runs(&mut self) -> Result<usize, LedgerError> {
        Ok(self.conn.execute(
            "UPDATE runs SET outcome = ?1, message = ?2 WHERE outcome IS NULL",
            params![
                RunOutcome::Failed.as_str(),
                "Unterbrochen: der Prozess endete vor dem Abschluss des Laufs / \
                 Interrupted: the process ended before the run finished"
            ],
        )?)
    }

    /// Records how a run ended.
    pub fn finish_run(
        &mut self,
        run: i64,
        outcome: RunOutcome,
        message: Option<&str>,
        counts: &RunCounts,
        duration_ms: i64,
    ) -> Result<(), LedgerError> {
        self.conn.execute(
            "UPDATE runs SET finished_at = ?2, outcome = ?3, message = ?4, counts = ?5, duration_ms = ?6 WHERE id = ?1",
            params![run, now(), outcome.as_str(), message, serde_json::to_string(counts)?, duration_ms],
        )?;
        Ok(())
    }

    /// The latest runs, newest first.
    pub fn recent_runs(&self, limit: usize) -> Result<Vec<RunRecord>, LedgerError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, started_at, finished_at, trigger, locations, dry_run, outcome, message, counts, duration_ms
             FROM runs ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = statement.query_map([limit as i64], |row| {
            let outcome: Option<String> = row.get(6)?;
            let counts: String = row.get(8)?;
            Ok(RunRecord {
                id: row.get(0)?,
                started_at: row.get(1)?,
                finished_at: row.get(2)?,
                trigger: row.get(3)?,
                locations: row.get(4)?,
                dry_run: row.get(5)?,
                outcome: outcome.as_deref().and_then(RunOutcome::parse),
                message: row.get(7)?,
                counts: serde_json::from_str(&counts).unwrap_or_default(),
                duration_ms: row.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The start time of the latest finished run, if any.
    pub fn last_finished_run(&self) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT started_at FROM runs WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_recorded_with_its_numbers_and_outcome() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        let first = ledger
            .start_run("cli", &["magdeburg".into()], false)
            .expect("start");
        let second = ledger
            .start_run("manual", &["halle".into(), "leipzig".into()], true)
            .expect("start");
        let counts = RunCounts {
            read: 12,
            written: 3,
            unchanged: 9,
            ..RunCounts::default()
        };
        ledger
            .finish_run(
                first,
                RunOutcome::Warnings,
                Some("1 dead letter"),
                &counts,
                1500,
            )
            .expect("finish");

        let runs = ledger.recent_runs(10).expect("runs");
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].id, second);
        assert_eq!(runs[0].outcome, None, "still running");
        assert_eq!(runs[0].locations, "halle,leipzig");
        assert!(runs[0].dry_run);
        assert_eq!(runs[1].outcome, Some(RunOutcome::Warnings));
        assert_eq!(runs[1].counts, counts);
        assert_eq!(runs[1].message.as_deref(), Some("1 dead letter"));
        assert_eq!(
            ledger.last_finished_run().expect("last"),
            Some(runs[1].started_at.clone())
        );
    }

    #[test]
    fn runs_that_never_ended_are_closed_as_interrupted() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        let killed = ledger.start_run("cli", &[], false).expect("start");
        let finished = ledger.start_run("cli", &[], false).expect("start");
        ledger
            .finish_run(
                finished,
                RunOutcome::Success,
                None,
                &RunCounts::default(),
                5,
            )
            .expect("finish");
        assert_eq!(ledger.close_interrupted_runs().expect("close"), 1);
        let runs = ledger.recent_runs(10).expect("runs");
        let run = |id| runs.iter().find(|r| r.id == id).expect("run");
        assert_eq!(run(killed).outcome, Some(RunOutcome::Failed));
        assert_eq!(run(killed).finished_at, None, "its end is unknown");
        let message = run(killed).message.clone().unwrap_or_default();
        assert!(message.contains("Unterbrochen") && message.contains("Interrupted"));
        assert_eq!(run(finished).outcome, Some(RunOutcome::Success));
        assert_eq!(ledger.close_interrupted_runs().expect("again"), 0);
    }
}
