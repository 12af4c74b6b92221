//! Audit log: who did what, when — merges, duplicate decisions, mapping
//! changes, credential changes (never their values).
//!
//! Entries are append-only; details are JSON so each action can record what
//! it needs. Callers keep personal data out of `subject` and `details`: ids
//! and keys, not names.

use rusqlite::params;

use super::{Ledger, LedgerError, now};

/// An action to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// OS user who acted, see [`os_user`].
    pub actor: String,
    /// What was done, a stable word like `duplicate.merge`.
    pub action: String,
    /// What it was done to, e.g. a case key `magdeburg:…`.
    pub subject: String,
    /// Anything else worth keeping about the action.
    pub details: serde_json::Value,
}

/// A recorded action.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Row id, increasing with time.
    pub id: i64,
    /// When (UTC).
    pub at: String,
    /// The action as recorded.
    pub entry: NewAuditEntry,
}

/// The name of the logged-in OS user, or `unbekannt/unknown`.
pub fn os_user() -> String {
    ["USERNAME", "USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unbekannt/unknown".to_owned())
}

impl Ledger {
    /// Appends an entry and returns its id.
    pub fn audit(&mut self, entry: &NewAuditEntry) -> Result<i64, LedgerError> {
        insert(&self.conn, entry)
    }

    /// Entries about one subject (or all), newest first, at most `limit`.
    pub fn audit_log(
        &self,
        subject: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT id, at, actor, action, subject, details FROM audit_log
             WHERE ?1 IS NULL OR subject = ?1
             ORDER BY id DESC LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![subject, limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (id, at, actor, action, subject, details) = row?;
            entries.push(AuditEntry {
                id,
                at,
                entry: NewAuditEntry {
                    actor,
                    action,
                    subject,
                    details: serde_json::from_str(&details)?,
                },
            });
        }
        Ok(entries)
    }
}

/// Appends an entry through `conn` (also inside a transaction, so an
/// action and its record commit together); returns its id.
pub(super) fn insert(
    conn: &rusqlite::Connection,
    entry: &NewAuditEntry,
) -> Result<i64, LedgerError> {
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, subject, details) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            now(),
            entry.actor,
            entry.action,
            entry.subject,
            serde_json::to_string(&entry.details)?,
        ],
    )?;
    Ok(conn.last_insert_rowid())
}
