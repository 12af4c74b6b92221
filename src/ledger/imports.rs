//! The historical import's bookkeeping (DESIGN.md §8): the column
//! assignment remembered per file layout, so the next file of the same
//! export needs none, and the history of imports — file, hash, kind,
//! location, rows read / taken / left out, who and when — which the audit
//! log repeats.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Ledger, LedgerError, NewAuditEntry, now};

/// Schema step: remembered layouts and the import history.
pub(super) const IMPORTS_MIGRATION: &str = r#"
CREATE TABLE import_layouts (
    signature  TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    assignment TEXT NOT NULL CHECK (json_valid(assignment)),
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE imports (
    id               INTEGER PRIMARY KEY,
    location_key     TEXT NOT NULL REFERENCES locations (key),
    kind             TEXT NOT NULL,
    file_name        TEXT NOT NULL,
    file_hash        TEXT NOT NULL,
    rows_read        INTEGER NOT NULL,
    rows_taken       INTEGER NOT NULL,
    rows_left_out    INTEGER NOT NULL,
    records_written  INTEGER NOT NULL,
    outcome          TEXT NOT NULL,
    actor            TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    finished_at      TEXT NOT NULL
) STRICT;
CREATE INDEX imports_by_location ON imports (location_key, finished_at);
"#;

/// One import as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRecord {
    /// Row id (0 before it is stored).
    pub id: i64,
    /// Location the rows were imported for.
    pub location_key: String,
    /// `patients`, `appointments` or `entries`.
    pub kind: String,
    /// File name without its directory (the path may name a person).
    pub file_name: String,
    /// blake3 of the file's bytes: the same file is recognised.
    pub file_hash: String,
    /// Data rows in the file.
    pub rows_read: u64,
    /// Rows stored (new, changed or unchanged).
    pub rows_taken: u64,
    /// Invalid rows left out (quarantined).
    pub rows_left_out: u64,
    /// Mirror rows inserted or changed.
    pub records_written: u64,
    /// `done` or `cancelled`.
    pub outcome: String,
    /// OS user who imported.
    pub actor: String,
    /// When it started (UTC).
    pub started_at: String,
    /// When it ended (UTC).
    pub finished_at: String,
}

/// The column assignment stored for a layout (JSON of the import module's
/// assignment), `None` when the layout is new.
pub fn layout(conn: &Connection, signature: &str) -> Result<Option<String>, LedgerError> {
    Ok(conn
        .query_row(
            "SELECT assignment FROM import_layouts WHERE signature = ?1",
            [signature],
            |row| row.get(0),
        )
        .optional()?)
}

/// Remembers a layout's column assignment (JSON).
pub fn remember_layout(
    conn: &Connection,
    signature: &str,
    kind: &str,
    assignment: &str,
) -> Result<(), LedgerError> {
    conn.execute(
        "INSERT INTO import_layouts (signature, kind, assignment, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (signature) DO UPDATE SET assignment = excluded.assignment,
            updated_at = excluded.updated_at
         WHERE assignment IS NOT excluded.assignment",
        params![signature, kind, assignment, now()],
    )?;
    Ok(())
}

impl Ledger {
    /// Stores an import in the history and the audit log, in one
    /// transaction; returns its id.
    pub fn record_import(&mut self, record: &ImportRecord) -> Result<i64, LedgerError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO imports (location_key, kind, file_name, file_hash, rows_read, rows_taken,
                rows_left_out, records_written, outcome, actor, started_at, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                record.location_key,
                record.kind,
                record.file_name,
                record.file_hash,
                record.rows_read as i64,
                record.rows_taken as i64,
                record.rows_left_out as i64,
                record.records_written as i64,
                record.outcome,
                record.actor,
                record.started_at,
                record.finished_at,
            ],
        )?;
        let id = tx.last_insert_rowid();
        super::audit::insert(
            &tx,
            &NewAuditEntry {
                actor: record.actor.clone(),
                action: "import".to_owned(),
                subject: format!("import:{id}"),
                details: serde_json::json!({
                    "location": record.location_key,
                    "kind": record.kind,
                    "file_name": record.file_name,
                    "file_hash": record.file_hash,
                    "rows_read": record.rows_read,
                    "rows_taken": record.rows_taken,
                    "rows_left_out": record.rows_left_out,
                    "records_written": record.records_written,
                    "outcome": record.outcome,
                }),
            },
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// The import history, newest first, at most `limit`.
    pub fn import_history(&self, limit: usize) -> Result<Vec<ImportRecord>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT id, location_key, kind, file_name, file_hash, rows_read, rows_taken,
                    rows_left_out, records_written, outcome, actor, started_at, finished_at
             FROM imports ORDER BY id DESC LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let count = |v: i64| u64::try_from(v).unwrap_or(0);
        let rows = statement.query_map([limit], |row| {
            Ok(ImportRecord {
                id: row.get(0)?,
                location_key: row.get(1)?,
                kind: row.get(2)?,
                file_name: row.get(3)?,
                file_hash: row.get(4)?,
                rows_read: count(row.get(5)?),
                rows_taken: count(row.get(6)?),
                rows_left_out: count(row.get(7)?),
                records_written: count(row.get(8)?),
                outcome: row.get(9)?,
                actor: row.get(10)?,
                started_at: row.get(11)?,
                finished_at: row.get(12)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Current UTC time as the history stores it.
pub fn timestamp() -> String {
    now()
}
