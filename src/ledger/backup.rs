//! Backup and restore of the ledger with SQLite's online backup API.
//!
//! A backup is a consistent snapshot even while a sync writes: it copies
//! every page inside one read transaction (WAL lets the writer go on), into
//! a file written beside the target and renamed, so a half-written backup
//! never carries the target's name. The copy is a single self-contained
//! file (journal mode `DELETE`, no `-wal` beside it), private to the user.
//!
//! A restore is refused while anyone holds the writer lock (a sync, a
//! mapping re-apply): it takes the lock itself for as long as it writes. The
//! file must be a ledger this program can read — a sound SQLite database
//! with the ledger's tables and a schema no newer than this program's (an
//! older one is upgraded at the next open). The current ledger is first
//! saved beside itself (`<ledger>.before-restore`), then overwritten page by
//! page through the backup API, so readers never see a torn file. Patients
//! forgotten in the replaced ledger (tombstones in force) are forgotten
//! again in the restored one: a backup from before an erasure must not
//! bring them back.

use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::erasure::PatientRef;
use super::lock::{LockError, WriterLock};
use super::{Ledger, LedgerError, schema};
use crate::files;

/// What a backup or restore copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Schema version of the copy (`PRAGMA user_version`).
    pub schema_version: usize,
    /// Size of the copy in bytes.
    pub bytes: u64,
}

/// Why a backup or restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error(
        "Datei {path} kann nicht geschrieben oder gelesen werden / Cannot write or read the file {path}: {source}",
        path = .path.display()
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} ist keine lesbare Ledger-Sicherung ({reason_de}) / {path} is not a readable ledger backup ({reason_en})",
        path = .path.display()
    )]
    NotALedger {
        path: PathBuf,
        reason_de: String,
        reason_en: String,
    },
    #[error(
        "Die Sicherung stammt von einer neueren Programmversion (Schema {found}, dieses Programm kennt {known}); bitte zuerst das Programm aktualisieren / \
         The backup was written by a newer version of the program (schema {found}, this program knows {known}); update the program first"
    )]
    TooNew { found: usize, known: usize },
}

/// Copies the ledger at `ledger` to `to` while it may be in use.
pub fn backup(ledger: &Path, to: &Path) -> Result<Snapshot, BackupError> {
    if same_file(ledger, to) {
        return Err(BackupError::Io {
            path: to.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "die Sicherung darf nicht der Ledger selbst sein / the backup must not be the ledger itself",
            ),
        });
    }
    let source = Ledger::open(ledger)?;
    let snapshot = write_copy(source.connection(), to, check)?;
    tracing::info!(
        schema = snapshot.schema_version,
        bytes = snapshot.bytes,
        "ledger backed up"
    );
    Ok(snapshot)
}

/// Copies the open database `from` into the private file `to` (written
/// beside it and renamed), a single file without WAL, and checks the copy
/// with `verify` before it takes the name.
fn write_copy(
    from: &Connection,
    to: &Path,
    verify: fn(&Path) -> Result<Snapshot, BackupError>,
) -> Result<Snapshot, BackupError> {
    let partial = with_suffix(to, ".partial");
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| BackupError::Io { path, source }
    };
    if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        files::create_dir(parent).map_err(io(parent))?;
    }
    // A leftover of an interrupted backup is overwritten, never reused.
    let _ = std::fs::remove_file(&partial);
    files::open_private(&partial)
        .map(drop)
        .map_err(io(&partial))?;
    {
        let mut copy = Connection::open(&partial).map_err(LedgerError::from)?;
        copy_all(from, &mut copy)?;
        // One self-contained file: no WAL to carry along.
        copy.pragma_update_and_check(None, "journal_mode", "DELETE", |_| Ok(()))
            .map_err(LedgerError::from)?;
    }
    let snapshot = verify(&partial)?;
    std::fs::rename(&partial, to).map_err(io(to))?;
    Ok(snapshot)
}

/// The automatic backup written before the schema of an existing ledger is
/// upgraded: `<ledger>.before-v<new version>.bak`.
pub fn before_upgrade_path(ledger: &Path, to_version: usize) -> PathBuf {
    with_suffix(ledger, &format!(".before-v{to_version}.bak"))
}

/// Saves the ledger as it is before its schema is upgraded from `found`
/// (`Ledger::open` calls this before migrating; an upgrade without this
/// copy does not happen).
pub(super) fn before_upgrade(
    conn: &Connection,
    ledger: &Path,
    found: usize,
) -> Result<PathBuf, BackupError> {
    let to = before_upgrade_path(ledger, schema::LATEST_VERSION);
    // Any older schema, even one from before the outbox existed.
    let snapshot = write_copy(conn, &to, check_sound)?;
    tracing::info!(
        from = found,
        to = schema::LATEST_VERSION,
        bytes = snapshot.bytes,
        file = %to.file_name().unwrap_or_default().to_string_lossy(),
        "ledger backed up before its schema is upgraded"
    );
    Ok(to)
}

/// Replaces the ledger at `ledger` with the backup `from`; refused while a
/// sync holds the writer lock. The ledger as it was is kept at
/// `<ledger>.before-restore`.
pub fn restore(ledger: &Path, from: &Path) -> Result<Snapshot, BackupError> {
    let snapshot = check(from)?;
    let _lock = WriterLock::acquire(ledger, "restore")?;
    if ledger.exists() {
        backup(ledger, &with_suffix(ledger, ".before-restore"))?;
    }
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(LedgerError::from)?;
    let mut live = Ledger::open(ledger)?;
    let forgotten: Vec<PatientRef> = live
        .tombstones()?
        .into_iter()
        .filter(|t| t.lifted_on.is_none())
        .map(|t| t.patient)
        .collect();
    copy_all(&source, &mut live.conn)?;
    drop(live);
    // Opening migrates a backup of an older schema and checks the result.
    let mut restored = Ledger::open(ledger)?;
    // A backup from before an erasure still holds the patient: it is
    // forgotten again, so a restore never brings a forgotten patient back.
    let missing: Vec<PatientRef> = {
        let kept: Vec<PatientRef> = restored
            .tombstones()?
            .into_iter()
            .filter(|t| t.lifted_on.is_none())
            .map(|t| t.patient)
            .collect();
        forgotten
            .into_iter()
            .filter(|p| !kept.contains(p))
            .collect()
    };
    if !missing.is_empty() {
        restored.forget_patients(&missing, "restore")?;
        tracing::info!(
            patients = missing.len(),
            "forgotten patients forgotten again after the restore"
        );
    }
    tracing::info!(schema = snapshot.schema_version, "ledger restored");
    Ok(snapshot)
}

/// Every page of `from` into `to`, in one step: one read transaction on
/// the source, so the copy is one consistent state however busy it is.
fn copy_all(from: &Connection, to: &mut Connection) -> Result<(), LedgerError> {
    let backup = Backup::new(from, to)?;
    // Anything but done means another connection holds a lock (or pages
    // remain): wait briefly, as a statement would, and go on.
    while backup.step(-1)? != StepResult::Done {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

/// Whether `path` is a ledger this program can restore: a sound SQLite
/// file with the ledger's tables and a schema no newer than this program's.
pub fn check(path: &Path) -> Result<Snapshot, BackupError> {
    let snapshot = check_sound(path)?;
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(LedgerError::from)?;
    let has_tables = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'
             AND name IN ('locations', 'patients', 'outbox')",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map_err(LedgerError::from)?;
    if snapshot.schema_version == 0 || has_tables < 3 {
        return Err(not_a_ledger(
            path,
            "ohne die Tabellen des Ledgers",
            "without the ledger's tables",
        ));
    }
    if snapshot.schema_version > schema::LATEST_VERSION {
        return Err(BackupError::TooNew {
            found: snapshot.schema_version,
            known: schema::LATEST_VERSION,
        });
    }
    Ok(snapshot)
}

/// Whether `path` is a sound SQLite file; its schema version and size.
fn check_sound(path: &Path) -> Result<Snapshot, BackupError> {
    let bytes = std::fs::metadata(path)
        .map_err(|source| BackupError::Io {
            path: path.to_owned(),
            source,
        })?
        .len();
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|_| not_a_ledger(path, "nicht zu öffnen", "cannot be opened"))?;
    let sound = conn
        .query_row("PRAGMA quick_check", [], |row| row.get::<_, String>(0))
        .map_err(|_| not_a_ledger(path, "keine SQLite-Datenbank", "not an SQLite database"))?;
    if sound != "ok" {
        return Err(not_a_ledger(path, "beschädigt", "damaged"));
    }
    let version = conn
        .query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
        .map_err(LedgerError::from)?;
    Ok(Snapshot {
        schema_version: usize::try_from(version).unwrap_or(usize::MAX),
        bytes,
    })
}

fn not_a_ledger(path: &Path, de: &str, en: &str) -> BackupError {
    BackupError::NotALedger {
        path: path.to_owned(),
        reason_de: de.to_owned(),
        reason_en: en.to_owned(),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
