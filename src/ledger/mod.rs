//! The ledger: the local SQLite database every sync step reads and writes.
//!
//! It mirrors the Ivoris records of every location (so planning never needs
//! the slow Ivoris API twice), keeps quarantined bad input and an audit log
//! of user actions, and later the cursors, cases, id map and outbox. It is
//! the reason the sync survives being killed at any instant: a step's writes
//! are one transaction, committed or absent (DESIGN.md §3.2, §3.9).
//!
//! Health data stays on this PC: the ledger is a local file, and fields the
//! app never uses (free text and tooth of billing lines, insurance numbers)
//! are not stored at all (DESIGN.md §3.7).

pub mod adoption;
pub mod audit;
pub mod backup;
pub mod cases;
pub mod cursors;
pub mod deletions;
pub mod erasure;
pub mod health;
pub mod identity;
pub mod imports;
pub mod lock;
pub mod mirror;
pub mod outbox;
pub mod portal;
pub mod quarantine;
pub mod reconciliation;
pub mod reviews;
pub mod runs;
pub mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::files;

pub use audit::{AuditEntry, NewAuditEntry};
pub use cursors::Batch;
pub use health::{Health, Side};
pub use mirror::{MirrorOutcome, Mirrored, Serialised};
pub use outbox::{
    Confirmation, Confirmed, ConfirmedCounts, Enqueued, OutboxCounts, OutboxFilter, OutboxItem,
    OutboxKind,
};
pub use quarantine::{NewQuarantine, QuarantineEntry};
pub use runs::{RunCounts, RunOutcome, RunRecord};

/// How long a statement waits for a lock held by another connection (a
/// reader in the GUI, a KPI refresh) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong with the ledger. Messages never contain record
/// contents, only table names and Ivoris ids.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "Ledger-Datei oder -Verzeichnis {path} kann nicht angelegt oder geschützt werden / Cannot create or protect the ledger file or directory {path}: {source}",
        path = .path.display()
    )]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Datenbankfehler im Ledger / Ledger database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "Ledger konnte nicht auf den aktuellen Stand gebracht werden / Could not upgrade the ledger: {0}"
    )]
    Migration(#[from] rusqlite_migration::Error),
    #[error(
        "Der Ledger stammt von einer neueren Programmversion (Schema {found}, dieses Programm kennt {known}); bitte das Programm aktualisieren / \
         The ledger was written by a newer version of the program (schema {found}, this program knows {known}); please update the program"
    )]
    TooNew { found: usize, known: usize },
    #[error(
        "Datensatz Nr. {position} für „{table}“ hat keine Id / Record no. {position} for \"{table}\" has no Id"
    )]
    EmptyId {
        table: &'static str,
        position: usize,
    },
    #[error("Unbekannter Standort „{0}“ / Unknown location \"{0}\"")]
    UnknownLocation(String),
    #[error("Datensatz kann nicht als JSON gespeichert werden / Cannot store record as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "Vor dem Aktualisieren des Ledgers ließ sich keine Sicherung schreiben; er bleibt, wie er ist / \
         No backup could be written before upgrading the ledger; it is left as it is: {0}"
    )]
    UpgradeBackup(Box<backup::BackupError>),
}

/// SQLite's files beside the ledger in WAL mode.
const WAL_SUFFIXES: [&str; 2] = ["-wal", "-shm"];

/// `ledger.sqlite` + `suffix` in the same directory.
fn sibling_file(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A location as the ledger knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationRow {
    /// The namespace of every key of this location.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Brand, if the chain has several.
    pub brand: Option<String>,
    /// Ivoris base URL, recorded so a changed URL is visible in the ledger.
    pub ivoris_url: String,
    /// Ivoris Mandant id, if any.
    pub profile_id: Option<String>,
}

impl From<&crate::settings::LocationSettings> for LocationRow {
    fn from(location: &crate::settings::LocationSettings) -> Self {
        LocationRow {
            key: location.key.clone(),
            name: location.name.clone(),
            brand: location.brand.clone(),
            ivoris_url: location.ivoris_url.clone(),
            profile_id: location.profile_id.clone(),
        }
    }
}

/// Number of rows per table for one location (or all), shown in the status
/// view and compared with Ivoris's own counts in the reconciliation report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Mirrored patients.
    pub patients: u64,
    /// Mirrored appointments.
    pub appointments: u64,
    /// Mirrored billing lines.
    pub document_entries: u64,
    /// Mirrored dentist chairs.
    pub chairs: u64,
    /// Mirrored practitioners.
    pub practitioners: u64,
    /// Mirrored appointment types.
    pub appointment_templates: u64,
    /// Quarantined records not yet resolved.
    pub quarantined: u64,
}

/// An open ledger. One value per connection; writing methods take
/// `&mut self` because each runs in its own transaction.
pub struct Ledger {
    /// The SQLite connection, configured and migrated.
    conn: Connection,
}

impl Ledger {
    /// Opens (creating if needed) the ledger file and brings its schema to
    /// the latest version. A ledger of an older schema is first copied to
    /// `<ledger>.before-v<N>.bak` (private; `backup::before_upgrade`): no
    /// migration without that copy.
    ///
    /// The file, its WAL and shared-memory files are private to the user
    /// (`0600` on Unix, narrowed if they were wider); a directory it has to
    /// create is `0700` (`crate::files`).
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let private = |path: &Path, result: std::io::Result<()>| {
            result.map_err(|source| LedgerError::Directory {
                path: path.to_owned(),
                source,
            })
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            private(parent, files::create_dir(parent))?;
        }
        // Created private before SQLite opens it: SQLite gives the WAL and
        // shared-memory files the database file's permissions.
        private(path, files::open_private(path).map(drop))?;
        for suffix in WAL_SUFFIXES {
            files::narrow_or_warn(&sibling_file(path, suffix));
        }
        let conn = Connection::open(path)?;
        // An existing ledger of an older schema is saved before it is
        // upgraded: a migration cannot be undone, a copy can be restored.
        let found = user_version(&conn)?;
        if found > 0 && found < schema::LATEST_VERSION {
            backup::before_upgrade(&conn, path, found)
                .map_err(|error| LedgerError::UpgradeBackup(Box::new(error)))?;
        }
        let ledger = Ledger::prepare(conn)?;
        for suffix in WAL_SUFFIXES {
            files::narrow_or_warn(&sibling_file(path, suffix));
        }
        Ok(ledger)
    }

    /// A fresh ledger in memory (tests, previews).
    pub fn open_in_memory() -> Result<Ledger, LedgerError> {
        Ledger::prepare(Connection::open_in_memory()?)
    }

    fn prepare(mut conn: Connection) -> Result<Ledger, LedgerError> {
        // WAL lets the GUI and KPI queries read while a sync writes.
        // synchronous=NORMAL is safe with WAL: a commit survives the process
        // being killed (the case invariant 2 is about); only a power cut or
        // OS crash can drop the last commits, never corrupt the file, and
        // since records, cursors and outbox rows move together in one
        // transaction the ledger stays consistent and the next run re-reads
        // what was lost. FULL would fsync every commit for no gain in
        // consistency.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // A sync reads and writes hundreds of thousands of rows: a page
        // cache of 32 MiB (instead of 2) keeps the hot index pages out of
        // the file, and checkpointing every 32 MiB of WAL (instead of 4)
        // copies a page rewritten by many commits once. Both bound memory.
        conn.pragma_update(None, "cache_size", -32_768)?;
        conn.pragma_update(None, "wal_autocheckpoint", 8_192)?;
        // An import of a large file is one transaction, its WAL as large as
        // the pages it touched: cut back to 64 MiB once checkpointed, not
        // kept at its largest beside the ledger.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.busy_timeout(BUSY_TIMEOUT)?;

        let found = user_version(&conn)?;
        if found > schema::LATEST_VERSION {
            return Err(LedgerError::TooNew {
                found,
                known: schema::LATEST_VERSION,
            });
        }
        schema::migrations().to_latest(&mut conn)?;
        Ok(Ledger { conn })
    }

    /// The schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<usize, LedgerError> {
        let version = self
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))?;
        Ok(usize::try_from(version).unwrap_or(0))
    }

    /// The underlying connection, for read-only queries of sibling modules
    /// and tests.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Inserts or updates a location from the settings.
    pub fn upsert_location(&mut self, location: &LocationRow) -> Result<(), LedgerError> {
        let now = now();
        self.conn.execute(
            "INSERT INTO locations (key, name, brand, ivoris_url, profile_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (key) DO UPDATE SET
                name = excluded.name, brand = excluded.brand,
                ivoris_url = excluded.ivoris_url, profile_id = excluded.profile_id,
                updated_at = excluded.updated_at
             WHERE (name, brand, ivoris_url, profile_id)
                IS NOT (excluded.name, excluded.brand, excluded.ivoris_url, excluded.profile_id)",
            params![
                location.key,
                location.name,
                location.brand,
                location.ivoris_url,
                location.profile_id,
                now
            ],
        )?;
        Ok(())
    }

    /// All known locations, by key.
    pub fn locations(&self) -> Result<Vec<LocationRow>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT key, name, brand, ivoris_url, profile_id FROM locations ORDER BY key",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(LocationRow {
                key: row.get(0)?,
                name: row.get(1)?,
                brand: row.get(2)?,
                ivoris_url: row.get(3)?,
                profile_id: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Row counts per table, for one location or for all.
    pub fn counts(&self, location: Option<&str>) -> Result<Counts, LedgerError> {
        let count = |table: &str, extra: &str| -> Result<u64, LedgerError> {
            let sql = format!(
                "SELECT count(*) FROM {table} WHERE (?1 IS NULL OR location_key = ?1) {extra}"
            );
            let n: i64 = self.conn.query_row(&sql, [location], |row| row.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        Ok(Counts {
            patients: count("patients", "")?,
            appointments: count("appointments", "")?,
            document_entries: count("document_entries", "")?,
            chairs: count("chairs", "")?,
            practitioners: count("practitioners", "")?,
            appointment_templates: count("appointment_templates", "")?,
            quarantined: count("quarantine", "AND resolved_at IS NULL")?,
        })
    }

    fn require_location(conn: &Connection, location: &str) -> Result<(), LedgerError> {
        let known = conn
            .query_row("SELECT 1 FROM locations WHERE key = ?1", [location], |_| {
                Ok(())
            })
            .optional()?;
        known.ok_or_else(|| LedgerError::UnknownLocation(location.to_owned()))
    }
}

/// The schema version a ledger file carries (`PRAGMA user_version`).
fn user_version(conn: &Connection) -> Result<usize, LedgerError> {
    let found = conn.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))?;
    Ok(usize::try_from(found).unwrap_or(usize::MAX))
}

/// Current UTC time as stored in bookkeeping columns.
fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}
