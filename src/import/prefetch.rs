//! A file's rows read and validated on a thread of their own, while the
//! caller resolves and stores the rows before them: reading, decoding and
//! validating cost about as much as writing, and a practice PC has two
//! cores for both. The rows come in file order, a bounded number ahead
//! (a few thousand, whatever the file's size).

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::columns::ColumnAssignment;
use super::validate::{ValidRow, validate};
use super::{ImportError, open_rows};
use crate::csvio::{CsvRow, RowError};

/// A row as read: valid, or why not (with its cells where it had any).
pub type ReadRow = Result<(ValidRow, CsvRow), (RowError, Option<CsvRow>)>;

/// Rows handed over at a time.
const CHUNK_ROWS: usize = 2048;
/// Chunks read ahead at most.
const CHUNKS_AHEAD: usize = 4;

/// Rows read so far and the file's bytes read up to their end.
struct Chunk {
    rows: Vec<ReadRow>,
    bytes: u64,
    /// The last chunk: the file was read to its end.
    last: bool,
}

/// The rows of a file, read ahead on a thread.
pub struct Prefetched {
    chunks: Receiver<Chunk>,
    current: std::vec::IntoIter<ReadRow>,
    bytes: u64,
    ended: bool,
}

impl Prefetched {
    /// Starts reading `path` (opened here first, so that a file that cannot
    /// be read is an error of the caller, not a row).
    pub fn start(path: PathBuf, assignment: ColumnAssignment) -> Result<Prefetched, ImportError> {
        drop(open_rows(&path)?);
        let (sender, chunks) = sync_channel(CHUNKS_AHEAD);
        std::thread::Builder::new()
            .name("import-reader".into())
            .spawn(move || read(&path, &assignment, &sender))
            .map_err(|source| ImportError::Io {
                path: PathBuf::new(),
                source,
            })?;
        Ok(Prefetched {
            chunks,
            current: Vec::new().into_iter(),
            bytes: 0,
            ended: false,
        })
    }

    /// Bytes of the file read up to the rows taken so far (within a chunk).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

/// The reading thread: chunks until the file ends or nobody takes them.
fn read(path: &std::path::Path, assignment: &ColumnAssignment, sender: &SyncSender<Chunk>) {
    let Ok(mut rows) = open_rows(path) else {
        return;
    };
    loop {
        let mut chunk = Vec::with_capacity(CHUNK_ROWS);
        for row in rows.by_ref() {
            chunk.push(row.map_err(|error| (error, None)).and_then(|row| {
                match validate(assignment, &row) {
                    Ok(valid) => Ok((valid, row)),
                    Err(error) => Err((error, Some(row))),
                }
            }));
            if chunk.len() == CHUNK_ROWS {
                break;
            }
        }
        let last = chunk.len() < CHUNK_ROWS;
        let bytes = rows.bytes_read();
        if sender
            .send(Chunk {
                rows: chunk,
                bytes,
                last,
            })
            .is_err()
            || last
        {
            return;
        }
    }
}

impl Iterator for Prefetched {
    type Item = ReadRow;

    fn next(&mut self) -> Option<ReadRow> {
        loop {
            if let Some(row) = self.current.next() {
                return Some(row);
            }
            if self.ended {
                return None;
            }
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.bytes = chunk.bytes;
                    self.ended = chunk.last;
                    self.current = chunk.rows.into_iter();
                }
                // The thread ended without its last chunk: say so as a row
                // that cannot be taken, never end the file silently.
                Err(_) => {
                    self.ended = true;
                    return Some(Err((
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_in_file_order_across_chunks_with_the_bytes_read() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("leistungen.csv");
        let rows = 3 * CHUNK_ROWS + 7;
        let mut text = String::from("Pat.-Nr.;Datum;Katalog;Ziffer;Betrag\n");
        for i in 0..rows {
            // Every 100th row has no valid date.
            let day = if i % 100 == 99 {
                "31.02.2024".to_owned()
            } else {
                format!("{:02}.01.2024", 1 + i % 28)
            };
            text.push_str(&format!("{};{day};BEMA;13a;{},50\n", 1 + i % 50, i));
        }
        std::fs::write(&path, &text).expect("written");
        let mut ledger = crate::ledger::Ledger::open_in_memory().expect("ledger");
        ledger
            .upsert_location(&crate::ledger::LocationRow {
                key: "mag".into(),
                name: "Magdeburg".into(),
                brand: None,
                ivoris_url: "http://127.0.0.1:1".into(),
                profile_id: None,
            })
            .expect("location");
        let session = super::super::ImportSession::open(
            ledger.connection(),
            super::super::ImportRequest {
                path: path.clone(),
                kind: super::super::ImportKind::Entries,
                location: "mag".into(),
                choices: Default::default(),
            },
        )
        .expect("opens");
        let mut read = Prefetched::start(path, session.preview.assignment).expect("starts");
        let mut lines = Vec::new();
        let mut invalid = 0;
        for row in read.by_ref() {
            match row {
                Ok((_, cells)) => lines.push(cells.line),
                Err((_, Some(cells))) => {
                    invalid += 1;
                    lines.push(cells.line);
                }
                Err((error, None)) => panic!("{error:?}"),
            }
        }
        assert_eq!(lines.len(), rows);
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "file order");
        assert_eq!(invalid, rows / 100);
        assert_eq!(read.bytes_read(), text.len() as u64);
    }
}
