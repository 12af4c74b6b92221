//! The historical import (DESIGN.md §8): patients, appointments and
//! billing lines exported from Ivoris as CSV, into the ledger exactly as
//! extracted records go, so the next sync plans and sends them by the same
//! rules.
//!
//! An [`ImportSession`] is one file of one kind for one location:
//! [`ImportSession::open`] detects encoding, delimiter and notations, reads
//! the first rows as a preview and recognises every column (aliases, the
//! layout the ledger remembers, choices); [`ImportSession::check`] reads
//! the whole file and reports every invalid row with line, column and
//! reason in German and English; a [`Writer`] then puts the rows into the
//! ledger batch by batch within the caller's transaction, checking them
//! on the way — the engine (`engine::import`) runs it in a rolled-back
//! transaction for the dry run's summary and for real under the writer
//! lock.
//!
//! The file is streamed: a few thousand rows are in memory at a time. A
//! real import runs as a pipeline over three threads — reading and
//! validating (`prefetch`), deciding keys, merging and serialising
//! (`prepare`, on a read snapshot of the ledger), storing (the writer).
//! Submodules: `read` (bytes → numbered rows), `columns` (what a column
//! is), `validate` (row → record, pure), `identity` (which mirror row it
//! is), `prepare` (a row made ready to store), `write` (merge and store).
//! Test exports of the sandbox's world are written by
//! `sandbox::data::export`.

pub mod columns;
pub mod identity;
mod prefetch;
mod prepare;
pub mod read;
pub mod validate;
pub mod write;

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

pub use columns::{Column, ColumnAssignment, ColumnChoices, Field, ImportKind, Source, Target};
pub use read::Format;

use crate::csvio::{CsvRow, RowError, delimiter_label};
use crate::ledger::imports::{layout, remember_layout};
use crate::ledger::{Batch, Ledger, LedgerError, MirrorOutcome};
use identity::Resolver;
use prefetch::Prefetched;
use prepare::{Prepared, PreparedRow, Preparer, Preparing};
use read::Rows;
use validate::validate;

/// Rows shown in the preview.
pub const PREVIEW_ROWS: usize = 20;
/// Row errors and warnings kept for display; the rest are counted.
pub const LISTED_PROBLEMS: usize = 1000;
/// Rows stored at a time (progress and cancellation act between them).
pub const BATCH_ROWS: usize = 5_000;

/// What to import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRequest {
    /// The export file.
    pub path: PathBuf,
    /// What it holds.
    pub kind: ImportKind,
    /// The location whose Ivoris exported it.
    pub location: String,
    /// Columns assigned by hand (win over the remembered layout).
    pub choices: ColumnChoices,
}

/// Why a file cannot be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("Datei {path} kann nicht gelesen werden / Cannot read file {path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("Unbekannter Standort „{0}“ / Unknown location \"{0}\"")]
    UnknownLocation(String),
    #[error("Die Datei hat keine Kopfzeile / The file has no header line")]
    Empty,
}

/// One row of the preview: the cells as read and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewRow {
    /// Line in the file.
    pub line: usize,
    /// Cells as read (empty for an unreadable row).
    pub cells: Vec<String>,
    /// Why the row cannot be imported, if so.
    pub error: Option<RowError>,
}

/// What opening a file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPreview {
    /// File name without directory.
    pub file_name: String,
    /// Encoding, e.g. „Windows-1252“.
    pub encoding: String,
    /// Delimiter in words.
    pub delimiter: String,
    /// Whether numbers use a decimal comma.
    pub decimal_comma: bool,
    /// Date notations seen („TT.MM.JJJJ“, „JJJJ-MM-TT hh:mm“ …).
    pub date_notations: Vec<String>,
    /// Layout signature the assignment is remembered under.
    pub signature: String,
    /// Every column and its field.
    pub assignment: ColumnAssignment,
    /// Problems of the assignment (block the import until resolved).
    pub column_problems: Vec<RowError>,
    /// The first rows as read.
    pub rows: Vec<PreviewRow>,
}

/// What checking every row found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Data rows in the file.
    pub rows_read: u64,
    /// Rows that can be imported.
    pub rows_valid: u64,
    /// Rows that cannot.
    pub rows_invalid: u64,
    /// Problems of the column assignment (nothing can be imported).
    pub column_problems: Vec<RowError>,
    /// Up to [`LISTED_PROBLEMS`] invalid rows with line, column and reason.
    pub errors: Vec<RowError>,
    /// Up to [`LISTED_PROBLEMS`] repaired cells (Excel), for a look.
    pub warnings: Vec<RowError>,
    /// All repaired cells.
    pub warnings_total: u64,
}

impl CheckReport {
    /// Whether the file can be imported without leaving rows out.
    pub fn clean(&self) -> bool {
        self.column_problems.is_empty() && self.rows_invalid == 0
    }

    fn note(&mut self, error: RowError) {
        self.rows_invalid += 1;
        if self.errors.len() < LISTED_PROBLEMS {
            self.errors.push(error);
        }
    }

    fn warn(&mut self, warnings: Vec<RowError>) {
        self.warnings_total += warnings.len() as u64;
        let room = LISTED_PROBLEMS.saturating_sub(self.warnings.len());
        self.warnings.extend(warnings.into_iter().take(room));
    }
}

/// One file of one kind for one location, opened.
#[derive(Debug, Clone)]
pub struct ImportSession {
    /// What was asked.
    pub request: ImportRequest,
    /// What opening found.
    pub preview: ImportPreview,
}

impl ImportSession {
    /// Opens a file: detection, column assignment (with the layout the
    /// ledger remembers) and the preview of the first rows.
    pub fn open(conn: &Connection, request: ImportRequest) -> Result<ImportSession, ImportError> {
        let known: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM locations WHERE key = ?1)",
                [&request.location],
                |row| row.get(0),
            )
            .map_err(LedgerError::from)?;
        if !known {
            return Err(ImportError::UnknownLocation(request.location.clone()));
        }
        let mut rows = open_rows(&request.path)?;
        if rows.header.is_empty() {
            return Err(ImportError::Empty);
        }
        let header = rows.header.clone();
        let signature = columns::signature(request.kind, &header);
        let remembered = layout(conn, &signature)?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        let assignment =
            ColumnAssignment::resolve(request.kind, &header, &request.choices, &remembered);
        let column_problems = assignment.problems();
        let mut preview_rows = Vec::new();
        for row in rows.by_ref().take(PREVIEW_ROWS) {
            preview_rows.push(match row {
                Ok(row) => PreviewRow {
                    line: row.line,
                    error: column_problems
                        .is_empty()
                        .then(|| validate(&assignment, &row).err())
                        .flatten(),
                    cells: row.cells,
                },
                Err(error) => PreviewRow {
                    line: error.line,
                    cells: Vec::new(),
                    error: Some(error),
                },
            });
        }
        let (decimal_comma, date_notations) = notations(&assignment, &preview_rows);
        let preview = ImportPreview {
            file_name: file_name(&request.path),
            encoding: rows.format.encoding.label().to_owned(),
            delimiter: delimiter_label(rows.format.delimiter).to_owned(),
            decimal_comma,
            date_notations,
            signature,
            assignment,
            column_problems,
            rows: preview_rows,
        };
        Ok(ImportSession { request, preview })
    }

    /// Reads every row and reports what cannot be imported, without
    /// writing: validation and identity (unknown patients, a record twice).
    pub fn check(&self, conn: &Connection) -> Result<CheckReport, ImportError> {
        let mut report = CheckReport {
            column_problems: self.preview.column_problems.clone(),
            ..CheckReport::default()
        };
        let mut rows =
            Prefetched::start(self.request.path.clone(), self.preview.assignment.clone())?;
        let mut resolver = self.resolver(conn)?;
        for row in rows.by_ref() {
            report.rows_read += 1;
            if !report.column_problems.is_empty() {
                continue;
            }
            match row {
                Err((error, _)) => report.note(error),
                Ok((mut valid, _)) => {
                    report.warn(std::mem::take(&mut valid.warnings));
                    // The writer's own decision, so the check and the
                    // import never disagree.
                    match resolver.resolve(conn, valid)? {
                        Ok(_) => report.rows_valid += 1,
                        Err(error) => report.note(error),
                    }
                }
            }
        }
        Ok(report)
    }

    fn preparer(&self, conn: &Connection) -> Result<Preparer, LedgerError> {
        Ok(Preparer {
            resolver: self.resolver(conn)?,
            location: self.request.location.clone(),
            assignment: self.preview.assignment.clone(),
        })
    }

    /// Whether the file is the truth of its patients' days (billing lines
    /// without UUID); only lines imported before can vanish from a
    /// corrected file.
    fn day_scoped(&self, resolver: &Resolver) -> bool {
        let assignment = &self.preview.assignment;
        assignment.kind == ImportKind::Entries
            && assignment.position(Field::Uuid).is_none()
            && resolver.had_synthetic_entries()
    }

    fn resolver(&self, conn: &Connection) -> Result<Resolver, LedgerError> {
        let assignment = &self.preview.assignment;
        let column = assignment
            .position(Field::PatientNumber)
            .or_else(|| assignment.position(Field::PatientUuid))
            .and_then(|p| assignment.columns.get(p))
            .map_or("Patientennummer", |c| c.header.as_str());
        Resolver::load(conn, &self.request.location, column)
    }
}

fn open_rows(path: &Path) -> Result<Rows<File>, ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_owned(),
        source,
    };
    Rows::open(File::open(path).map_err(io)?).map_err(io)
}

/// The file's name without its directory (a directory may name a person).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "?".to_owned(), |n| n.to_string_lossy().into_owned())
}

/// blake3 of a file's bytes, read in pieces.
pub fn file_hash(path: &Path) -> Result<String, ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_owned(),
        source,
    };
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(File::open(path).map_err(io)?)
        .map_err(io)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Decimal comma and date notations seen in the preview's number and date
/// columns.
fn notations(assignment: &ColumnAssignment, rows: &[PreviewRow]) -> (bool, Vec<String>) {
    let cells = |fields: &[Field]| -> Vec<&str> {
        let positions: Vec<usize> = fields
            .iter()
            .filter_map(|f| assignment.position(*f))
            .collect();
        rows.iter()
            .flat_map(|r| positions.iter().filter_map(|p| r.cells.get(*p)))
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .collect()
    };
    let decimal_comma = cells(&[Field::Amount, Field::Quantity, Field::Factor])
        .iter()
        .any(|c| c.contains(','));
    let mut notations: Vec<String> = Vec::new();
    for cell in cells(&[Field::Birthday, Field::Date, Field::Start]) {
        let date = cell.split([' ', 'T']).next().unwrap_or("");
        let mut name = match date.split('.').collect::<Vec<_>>()[..] {
            [_, _, year] if year.len() == 2 => "TT.MM.JJ".to_owned(),
            [_, _, _] => "TT.MM.JJJJ".to_owned(),
            _ if date.len() == 8 && !date.contains('-') => "JJJJMMTT".to_owned(),
            _ => "JJJJ-MM-TT".to_owned(),
        };
        if cell.len() > date.len() {
            name.push_str(" hh:mm");
        }
        if !notations.contains(&name) {
            notations.push(name);
        }
    }
    (decimal_comma, notations)
}

/// What writing a file did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCounts {
    /// Data rows read.
    pub rows_read: u64,
    /// Rows stored (inserted, updated or unchanged).
    pub rows_taken: u64,
    /// Invalid rows left out.
    pub rows_left_out: u64,
    /// Mirror rows inserted.
    pub inserted: u64,
    /// Mirror rows changed.
    pub updated: u64,
    /// Rows identical to what the ledger holds.
    pub unchanged: u64,
    /// Imported billing lines without UUID that a corrected file no longer
    /// has on their day (see [`Writer::finish`]).
    pub removed: u64,
}

impl WriteCounts {
    /// Mirror rows written (inserted or changed).
    pub fn written(&self) -> u64 {
        self.inserted + self.updated + self.removed
    }

    fn add(&mut self, outcome: MirrorOutcome) {
        self.inserted += outcome.inserted as u64;
        self.updated += outcome.updated as u64;
        self.unchanged += outcome.unchanged as u64;
    }
}

/// Where a [`Writer`] takes its rows from.
enum RowSource {
    /// Read ahead on a thread, prepared here on the writer's connection
    /// (the dry run, inside its rolled-back transaction).
    Inline {
        rows: Prefetched,
        preparer: Box<Preparer>,
    },
    /// Read and prepared ahead on threads of their own (a real import).
    Pipelined(Preparing),
}

/// Puts a session's rows into the ledger batch by batch, all of them in
/// the caller's transaction, and checks every row on the way.
pub struct Writer<'s> {
    /// The session written.
    session: &'s ImportSession,
    /// The file's rows, streamed.
    source: RowSource,
    /// Whether rows left out are quarantined (a real import with
    /// `--drop-invalid`) or only counted (a dry run).
    quarantine: bool,
    /// Whether the layout was remembered yet.
    layout_saved: bool,
    /// Billing lines without UUID: the file is the whole truth of every
    /// patient's day it has lines for (see [`Writer::finish`]).
    day_scoped: bool,
    /// Counts so far.
    pub counts: WriteCounts,
    /// Quarantine sources (`<file>:<line>`) of the rows left out.
    pub left_out: Vec<String>,
    /// The check of the rows read so far: every invalid row with line,
    /// column and reason, and the cells repaired.
    pub report: CheckReport,
}

impl<'s> Writer<'s> {
    /// Starts writing on `conn`, preparing the rows there too;
    /// `quarantine` stores rows left out in the quarantine.
    pub fn start(
        session: &'s ImportSession,
        conn: &Connection,
        quarantine: bool,
    ) -> Result<Writer<'s>, ImportError> {
        let preparer = session.preparer(conn)?;
        let day_scoped = session.day_scoped(&preparer.resolver);
        let rows = Prefetched::start(session.request.path.clone(), preparer.assignment.clone())?;
        Writer::with(
            session,
            conn,
            RowSource::Inline {
                rows,
                preparer: Box::new(preparer),
            },
            day_scoped,
            quarantine,
        )
    }

    /// Starts writing on `conn` with the rows prepared on a thread over
    /// `snapshot`, another connection to the same ledger: its read
    /// transaction begins here, before anything is written, so it sees the
    /// ledger as it was (see `prepare`).
    pub fn start_pipelined(
        session: &'s ImportSession,
        conn: &Connection,
        snapshot: Ledger,
        quarantine: bool,
    ) -> Result<Writer<'s>, ImportError> {
        snapshot
            .connection()
            .execute_batch("BEGIN")
            .map_err(LedgerError::from)?;
        let preparer = session.preparer(snapshot.connection())?;
        let day_scoped = session.day_scoped(&preparer.resolver);
        let rows = Prefetched::start(session.request.path.clone(), preparer.assignment.clone())?;
        let preparing = Preparing::start(rows, snapshot, preparer)?;
        Writer::with(
            session,
            conn,
            RowSource::Pipelined(preparing),
            day_scoped,
            quarantine,
        )
    }

    fn with(
        session: &'s ImportSession,
        conn: &Connection,
        source: RowSource,
        day_scoped: bool,
        quarantine: bool,
    ) -> Result<Writer<'s>, ImportError> {
        if day_scoped {
            conn.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS import_lines (id TEXT PRIMARY KEY) WITHOUT ROWID;
                 CREATE TEMP TABLE IF NOT EXISTS import_days (patient_id TEXT, date TEXT,
                     PRIMARY KEY (patient_id, date)) WITHOUT ROWID;
                 DELETE FROM temp.import_lines; DELETE FROM temp.import_days;",
            )
            .map_err(LedgerError::from)?;
        }
        Ok(Writer {
            session,
            source,
            quarantine,
            layout_saved: false,
            day_scoped,
            counts: WriteCounts::default(),
            left_out: Vec::new(),
            report: CheckReport {
                column_problems: session.preview.column_problems.clone(),
                ..CheckReport::default()
            },
        })
    }

    /// Bytes of the file read so far (for progress against its size).
    pub fn bytes_read(&self) -> u64 {
        match &self.source {
            RowSource::Inline { rows, .. } => rows.bytes_read(),
            RowSource::Pipelined(preparing) => preparing.bytes_read(),
        }
    }

    /// The next row, prepared; `None` at the end of the file.
    fn next_row(&mut self, conn: &Connection) -> Result<Option<Prepared>, LedgerError> {
        match &mut self.source {
            RowSource::Inline { rows, preparer } => match rows.next() {
                Some(row) => preparer.prepare(conn, row).map(Some),
                None => Ok(None),
            },
            RowSource::Pipelined(preparing) => preparing.next_row(),
        }
    }

    /// Notes a row in the check; returns the row to store, if any.
    fn checked(&mut self, row: Prepared) -> Result<PreparedRow, (RowError, Option<CsvRow>)> {
        self.counts.rows_read += 1;
        self.report.rows_read += 1;
        match row {
            Prepared::Row(mut row) => {
                self.report.warn(std::mem::take(&mut row.warnings));
                self.report.rows_valid += 1;
                Ok(row)
            }
            Prepared::LeftOut(error, cells) => {
                self.report.note(error.clone());
                Err((error, cells))
            }
        }
    }

    /// Reads and writes up to `max_rows` rows in `batch`; `false` once the
    /// file is done.
    pub fn next_batch(
        &mut self,
        batch: &mut Batch<'_>,
        max_rows: usize,
    ) -> Result<bool, LedgerError> {
        let session = self.session;
        let location = session.request.location.as_str();
        let assignment = &session.preview.assignment;
        if !self.layout_saved {
            let choices = serde_json::to_string(&assignment.choices())?;
            remember_layout(
                batch.connection(),
                &session.preview.signature,
                assignment.kind.name(),
                &choices,
            )?;
            self.layout_saved = true;
        }
        let mut prepared: Vec<PreparedRow> = Vec::with_capacity(max_rows.min(BATCH_ROWS));
        let mut read = 0;
        let mut more = false;
        while let Some(row) = self.next_row(batch.connection())? {
            read += 1;
            match self.checked(row) {
                Ok(row) => prepared.push(row),
                Err((error, row)) => {
                    self.counts.rows_left_out += 1;
                    self.left_out
                        .push(format!("{}:{}", session.preview.file_name, error.line));
                    if self.quarantine {
                        write::quarantine_row(
                            batch,
                            location,
                            &session.preview.file_name,
                            assignment,
                            row.as_ref(),
                            &error,
                        )?;
                    }
                }
            }
            if read >= max_rows {
                more = true;
                break;
            }
        }
        self.counts.rows_taken += prepared.len() as u64;
        if self.day_scoped {
            write::note_lines(batch.connection(), &prepared)?;
        }
        let outcome = write::write_prepared(batch, location, prepared)?;
        self.counts.add(outcome);
        Ok(more)
    }

    /// Reads the rest of the file into the check without writing (a file
    /// refused: its report lists every invalid row); `progress` after
    /// every [`BATCH_ROWS`] rows.
    pub fn check_rest(
        &mut self,
        conn: &Connection,
        progress: &mut dyn FnMut(&Writer<'_>),
    ) -> Result<(), LedgerError> {
        while let Some(row) = self.next_row(conn)? {
            // Rows left out are only counted here.
            let _ = self.checked(row);
            if self.report.rows_read.is_multiple_of(BATCH_ROWS as u64) {
                progress(self);
            }
        }
        Ok(())
    }

    /// Completes a file that was read to its end. A billing line without
    /// UUID has its amount and code in its identity, so a corrected amount
    /// is a new line: imported lines (never those the API delivered) of a
    /// patient's day the file has lines for, which the file no longer
    /// has, are removed — the file is the truth of that day.
    pub fn finish(&mut self, batch: &mut Batch<'_>) -> Result<(), LedgerError> {
        if self.day_scoped {
            self.counts.removed +=
                write::remove_vanished_lines(batch.connection(), &self.session.request.location)?;
        }
        Ok(())
    }
}
