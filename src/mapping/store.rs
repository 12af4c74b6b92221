//! Mapping versions in the ledger: every saved mapping is a new numbered
//! version with author and comment, so a correction can be re-applied and
//! an older version looked up. Without any saved version the shipped
//! defaults apply.

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

/// The latest saved mapping, or the shipped defaults when none was saved.
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

/// Saves a mapping as a new version and returns its number.
pub fn save_version(
    ledger: &mut Ledger,
    mapping: &Mapping,
    author: &str,
    comment: &str,
) -> Result<i64, MappingStoreError> {
    let tables = serde_json::to_string(mapping)?;
    let created_at = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
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
