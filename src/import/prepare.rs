//! A row made ready for the ledger: its mirror key decided (`identity`),
//! merged over the record the ledger holds (`write`), and serialised as
//! the mirror stores it. What is left for the writing thread is storing.
//!
//! A real import prepares on a thread of its own ([`Preparing`]), behind
//! the reading thread and ahead of the writer, with its own connection
//! holding one read snapshot: the ledger as it was before the import.
//! Resolution never depends on the import's own writes — a record the
//! file has twice is an error of the second row, the ordinals of equal
//! billing lines are counted in memory — so the snapshot decides exactly
//! what the writer's transaction would. The dry run prepares on the
//! writer's own connection, inside its rolled-back transaction.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rusqlite::Connection;

use super::ImportError;
use super::columns::ColumnAssignment;
use super::identity::Resolver;
use super::prefetch::{Prefetched, ReadRow};
use super::validate::RowRecord;
use super::write::{merge_appointment, merge_entry, merge_patient, stored_json};
use crate::csvio::{CsvRow, RowError};
use crate::ivoris::wire::{Appointment, DocumentEntry, Patient};
use crate::ledger::{Ledger, LedgerError, Serialised};

/// A row of the file, ready to store or left out.
#[expect(
    clippy::large_enum_variant,
    reason = "rows to store are the common case; boxing each would cost an allocation per row"
)]
pub enum Prepared {
    /// A row to store.
    Row(PreparedRow),
    /// A row that cannot be imported: why, with its cells where it had any.
    LeftOut(RowError, Option<CsvRow>),
}

/// A row to store.
pub struct PreparedRow {
    /// Line in the file.
    pub line: usize,
    /// The record under its mirror key, merged and serialised.
    pub record: StoredRecord,
    /// Whether the ledger is known to hold no record under its key.
    pub new: bool,
    /// Cells repaired on the way (Excel), for the report.
    pub warnings: Vec<RowError>,
}

/// A record of one of the kinds a file can hold, serialised.
pub enum StoredRecord {
    Patient(Serialised<Patient>),
    Appointment(Serialised<Appointment>),
    Entry(Serialised<DocumentEntry>),
}

impl StoredRecord {
    /// The record's mirror key.
    pub fn id(&self) -> &str {
        match self {
            StoredRecord::Patient(p) => &p.record().id,
            StoredRecord::Appointment(a) => &a.record().id,
            StoredRecord::Entry(e) => &e.record().id,
        }
    }
}

/// What preparing a row needs besides the row.
pub struct Preparer {
    /// Identity state of the pass.
    pub resolver: Resolver,
    /// The location imported into.
    pub location: String,
    /// The file's columns (which fields it carries).
    pub assignment: ColumnAssignment,
}

impl Preparer {
    /// Prepares one row read from the file, reading the ledger on `conn`.
    pub fn prepare(&mut self, conn: &Connection, row: ReadRow) -> Result<Prepared, LedgerError> {
        let (mut valid, cells) = match row {
            Ok(row) => row,
            Err((error, cells)) => return Ok(Prepared::LeftOut(error, cells)),
        };
        let warnings = std::mem::take(&mut valid.warnings);
        let resolved = match self.resolver.resolve(conn, valid)? {
            Ok(resolved) => resolved,
            Err(error) => return Ok(Prepared::LeftOut(error, Some(cells))),
        };
        let stored = if resolved.new {
            None
        } else {
            let kind = self.assignment.kind.record_kind();
            stored_json(conn, &self.location, kind, resolved.id())?
        };
        let carried = |field| self.assignment.position(field).is_some();
        let record = match resolved.record {
            RowRecord::Patient(file) => StoredRecord::Patient(Serialised::new(merge_patient(
                parse(stored.as_deref()),
                file,
                &carried,
            ))?),
            RowRecord::Appointment(file, _) => StoredRecord::Appointment(Serialised::new(
                merge_appointment(parse(stored.as_deref()), file, &carried),
            )?),
            RowRecord::Entry(file, _) => StoredRecord::Entry(Serialised::new(merge_entry(
                parse(stored.as_deref()),
                file,
                &carried,
            ))?),
        };
        Ok(Prepared::Row(PreparedRow {
            line: resolved.line,
            record,
            new: resolved.new,
            warnings,
        }))
    }
}

/// The stored record, when it can be read as one.
fn parse<R: serde::de::DeserializeOwned>(json: Option<&str>) -> Option<R> {
    json.and_then(|json| serde_json::from_str(json).ok())
}

/// Rows handed over at a time.
const CHUNK_ROWS: usize = 1024;
/// Chunks prepared ahead at most.
const CHUNKS_AHEAD: usize = 4;

/// Rows prepared so far and the file's bytes read up to their end; the
/// last chunk (shorter, or a failure) ends the file.
struct Chunk {
    rows: Result<Vec<Prepared>, LedgerError>,
    bytes: u64,
    last: bool,
}

/// The rows of a file, prepared ahead on a thread.
pub struct Preparing {
    chunks: Receiver<Chunk>,
    current: std::vec::IntoIter<Prepared>,
    bytes: u64,
    ended: bool,
}

impl Preparing {
    /// Starts preparing `rows` on a thread with `snapshot`, a connection
    /// whose read transaction the caller began before writing anything
    /// (`preparer` was loaded in it); the connection closes when the file
    /// is done.
    pub fn start(
        rows: Prefetched,
        snapshot: Ledger,
        preparer: Preparer,
    ) -> Result<Preparing, ImportError> {
        let (sender, chunks) = sync_channel(CHUNKS_AHEAD);
        std::thread::Builder::new()
            .name("import-prepare".into())
            .spawn(move || prepare_all(rows, snapshot, preparer, &sender))
            .map_err(|source| ImportError::Io {
                path: Default::default(),
                source,
            })?;
        Ok(Preparing {
            chunks,
            current: Vec::new().into_iter(),
            bytes: 0,
            ended: false,
        })
    }

    /// Bytes of the file read up to the rows taken so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The next row, `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<Prepared>, LedgerError> {
        loop {
            if let Some(row) = self.current.next() {
                return Ok(Some(row));
            }
            if self.ended {
                return Ok(None);
            }
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.bytes = chunk.bytes;
                    self.ended = chunk.last;
                    self.current = chunk.rows?.into_iter();
                }
                // The thread ended without its last chunk: say so as a row
                // that cannot be taken, never end the file silently.
                Err(_) => {
                    self.ended = true;
                    return Ok(Some(Prepared::LeftOut(
                        RowError::new(
                            0,
                            "Datei konnte nicht zu Ende gelesen werden – Import wiederholen",
                            "file could not be read to its end – repeat the import",
                        ),
                        None,
                    )));
                }
            }
        }
    }
}

/// The preparing thread: chunks until the file ends, preparing fails or
/// nobody takes them.
fn prepare_all(
    mut rows: Prefetched,
    snapshot: Ledger,
    mut preparer: Preparer,
    sender: &SyncSender<Chunk>,
) {
    let mut snapshot = Some(snapshot);
    loop {
        let Some(ledger) = snapshot.as_ref() else {
            return;
        };
        let mut chunk = Vec::with_capacity(CHUNK_ROWS);
        let mut failed = None;
        for row in rows.by_ref() {
            match preparer.prepare(ledger.connection(), row) {
                Ok(prepared) => chunk.push(prepared),
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
            if chunk.len() == CHUNK_ROWS {
                break;
            }
        }
        let last = failed.is_some() || chunk.len() < CHUNK_ROWS;
        if last {
            // The snapshot ends before the writer commits.
            snapshot = None;
        }
        let chunk = Chunk {
            rows: match failed {
                Some(error) => Err(error),
                None => Ok(chunk),
            },
            bytes: rows.bytes_read(),
            last,
        };
        if sender.send(chunk).is_err() || last {
            return;
        }
    }
}
