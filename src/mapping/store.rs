//! Mapping versions in the ledger: every saved mapping is a new numbered
//! version with author and comment, so a correction can be re-applied and
//! an older version looked up or restored.
//!
//! Saving a version does not put it in force. The planner uses the
//! *applied* version (`mapping_applied`), which only the confirmation of a
//! re-apply preview advances (`engine::reapply`): nothing reaches HubSpot
//! under a new mapping before a person saw what it changes. Without an
//! applied version the shipped defaults apply.

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, params};

use super::Mapping;
use crate::ledger::{Ledger, LedgerError};

/// Migration adding the `mapping_versions` table; the whole mapping is one
/// JSON document per version because versions are read and written whole.
pub const MIGRATION_MAPPING_VERSIONS: &str = r#"
CREATE TABLE mapping_versions (
    version    INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    author     TEXT NOT NULL,
    comment    TEXT NOT NULL,
    tables     TEXT NOT NULL CHECK (json_valid(tables))
) STRICT;
"#;

/// Migration adding `mapping_applied`: the one version the planner uses.
/// A ledger that already had versions keeps using its latest one (that was
/// the rule before), so upgrading changes nothing in HubSpot.
pub const MIGRATION_MAPPING_APPLIED: &str = r#"
CREATE TABLE mapping_applied (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    INTEGER NOT NULL REFERENCES mapping_versions (version),
    applied_at TEXT NOT NULL,
    applied_by TEXT NOT NULL
) STRICT;
INSERT INTO mapping_applied (id, version, applied_at, applied_by)
SELECT 1, max(version), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'migration'
FROM mapping_versions HAVING max(version) IS NOT NULL;
"#;

/// What can go wrong reading or writing mapping versions.
#[derive(Debug, thiserror::Error)]
pub enum MappingStoreError {
    #[error("Ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("Datenbankfehler bei den Zuordnungen / Database error in the mappings: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "Zuordnung Version {version} ist nicht lesbar / Mapping version {version} cannot be read: {source}"
    )]
    Unreadable {
        version: i64,
        source: serde_json::Error,
    },
    #[error("Zuordnung kann nicht gespeichert werden / Cannot store the mapping: {0}")]
    Json(#[from] serde_json::Error),
    #[error("Zuordnung Version {0} gibt es nicht / Mapping version {0} does not exist")]
    NoSuchVersion(i64),
}

/// One saved version, without its tables (for the version list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingVersion {
    /// Increasing version number.
    pub version: i64,
    /// When it was saved (UTC, ISO-8601).
    pub created_at: String,
    /// Who saved it.
    pub author: String,
    /// Why it was changed.
    pub comment: String,
}

fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The latest saved mapping, or the shipped defaults when none was saved.
/// This is what the editor starts from; the planner uses [`load_applied`].
pub fn load_current(ledger: &Ledger) -> Result<Mapping, MappingStoreError> {
    let latest: Option<i64> =
        ledger
            .connection()
            .query_row("SELECT max(version) FROM mapping_versions", [], |row| {
                row.get(0)
            })?;
    match latest {
        Some(version) => {
            load_version(ledger, version).map(|mapping| mapping.unwrap_or_else(Mapping::defaults))
        }
        None => Ok(Mapping::defaults()),
    }
}

/// One saved version, `None` when there is no such version.
pub fn load_version(ledger: &Ledger, version: i64) -> Result<Option<Mapping>, MappingStoreError> {
    let tables: Option<String> = ledger
        .connection()
        .query_row(
            "SELECT tables FROM mapping_versions WHERE version = ?1",
            [version],
            |row| row.get(0),
        )
        .optional()?;
    tables
        .map(|json| {
            serde_json::from_str(&json)
                .map_err(|source| MappingStoreError::Unreadable { version, source })
        })
        .transpose()
}

/// The contact properties `in_force` clears: see
/// [`Mapping::cleared_contact_properties`], over every saved version (a
/// version may have been in force, so what it enabled may be in HubSpot).
pub fn contact_properties_to_clear(
    ledger: &Ledger,
    in_force: &Mapping,
) -> Result<BTreeSet<String>, MappingStoreError> {
    let mut statement = ledger
        .connection()
        .prepare("SELECT version, tables FROM mapping_versions ORDER BY version")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut saved = Vec::new();
    for row in rows {
        let (version, json) = row?;
        saved.push(
            serde_json::from_str::<Mapping>(&json)
                .map_err(|source| MappingStoreError::Unreadable { version, source })?,
        );
    }
    Ok(in_force.cleared_contact_properties(&saved))
}

/// Saves a mapping as a new version and returns its number.
pub fn save_version(
    ledger: &mut Ledger,
    mapping: &Mapping,
    author: &str,
    comment: &str,
) -> Result<i64, MappingStoreError> {
    let tables = serde_json::to_string(mapping)?;
    let created_at = now_text();
    let conn = ledger.connection();
    conn.execute(
        "INSERT INTO mapping_versions (created_at, author, comment, tables) VALUES (?1, ?2, ?3, ?4)",
        params![created_at, author, comment, tables],
    )?;
    Ok(conn.last_insert_rowid())
}

/// All saved versions, oldest first.
pub fn list_versions(ledger: &Ledger) -> Result<Vec<MappingVersion>, MappingStoreError> {
    let mut statement = ledger.connection().prepare(
        "SELECT version, created_at, author, comment FROM mapping_versions ORDER BY version",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(MappingVersion {
            version: row.get(0)?,
            created_at: row.get(1)?,
            author: row.get(2)?,
            comment: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The latest version number, if any was saved.
pub fn latest_version(ledger: &Ledger) -> Result<Option<i64>, MappingStoreError> {
    Ok(ledger
        .connection()
        .query_row("SELECT max(version) FROM mapping_versions", [], |row| {
            row.get(0)
        })?)
}

/// The version the planner uses, if one was applied.
pub fn applied_version(ledger: &Ledger) -> Result<Option<i64>, MappingStoreError> {
    Ok(ledger
        .connection()
        .query_row(
            "SELECT version FROM mapping_applied WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .optional()?)
}

/// The mapping in force for planning: the applied version, or the shipped
/// defaults when none was applied yet.
pub fn load_applied(ledger: &Ledger) -> Result<(Option<i64>, Mapping), MappingStoreError> {
    match applied_version(ledger)? {
        Some(version) => {
            let mapping =
                load_version(ledger, version)?.ok_or(MappingStoreError::NoSuchVersion(version))?;
            Ok((Some(version), mapping))
        }
        None => Ok((None, Mapping::defaults())),
    }
}

/// Records that `version` is now the one in force. Only the confirmation
/// of a re-apply preview calls this, in the transaction that queues the
/// changed records.
pub fn set_applied(
    conn: &rusqlite::Connection,
    version: i64,
    who: &str,
) -> Result<(), MappingStoreError> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT version FROM mapping_versions WHERE version = ?1",
            [version],
            |row| row.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Err(MappingStoreError::NoSuchVersion(version));
    }
    conn.execute(
        "INSERT INTO mapping_applied (id, version, applied_at, applied_by) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version,
             applied_at = excluded.applied_at, applied_by = excluded.applied_by",
        params![version, now_text(), who],
    )?;
    Ok(())
}

/// Saves an older version again as the newest one („Wiederherstellen“);
/// like any save it is in force only after its re-apply is confirmed.
pub fn restore_version(
    ledger: &mut Ledger,
    version: i64,
    author: &str,
) -> Result<i64, MappingStoreError> {
    let mapping =
        load_version(ledger, version)?.ok_or(MappingStoreError::NoSuchVersion(version))?;
    save_version(
        ledger,
        &mapping,
        author,
        &format!("Wiederhergestellt aus Version {version} / restored from version {version}"),
    )
}
