//! Reading an export as a stream of numbered rows, never the whole file.
//!
//! The encoding is decided from the start of the file (a UTF-8 BOM, valid
//! UTF-8, else Windows-1252) and every cell is decoded on its own, so a
//! file of a million lines is read in constant memory. Delimiters and
//! quotes are ASCII in all three encodings, so the csv crate splits the
//! raw bytes. Every row carries the line it starts on, also across quoted
//! line breaks and skipped empty lines; rows the csv crate cannot read,
//! with too many cells, or with a quote that is never closed become
//! [`RowError`]s. Nothing here panics on any input.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;

use crate::csvio::{CsvRow, RowError, SourceEncoding, detect_delimiter};

/// Bytes looked at to decide encoding and delimiter.
const SNIFF_BYTES: usize = 64 * 1024;
/// A cell longer than this is a quote that never closed (or no export).
const MAX_CELL_BYTES: usize = 64 * 1024;
/// A row with more line breaks than this is a quote that never closed.
const MAX_ROW_LINES: usize = 50;

/// Line-break positions of the bytes the csv reader has consumed, shared
/// with the row iterator to number rows.
#[derive(Debug, Default)]
struct Breaks {
    /// Offset of every `\r` or `\n` not yet passed, and whether it is `\n`.
    pending: VecDeque<(u64, bool)>,
    /// `\n` bytes before the first pending entry.
    lines_passed: usize,
    /// Bytes read so far.
    offset: u64,
    /// Quote state of the bytes read, to find a quote that never closes.
    quotes: QuoteScan,
    /// Whether the end of the file was reached.
    eof: bool,
}

/// Follows quoting byte by byte as the csv crate reads it: only a quote at
/// the start of a cell opens a quoted cell, `""` inside is a quote.
#[derive(Debug)]
struct QuoteScan {
    /// The file's delimiter.
    delimiter: u8,
    /// `\n` bytes so far.
    lines: usize,
    /// Inside a quoted cell.
    in_quote: bool,
    /// A quote inside a quoted cell, not yet known to close it.
    quote_pending: bool,
    /// At the start of a cell (only blanks since the last delimiter).
    at_cell_start: bool,
    /// Line where the open quoted cell began.
    opened_at: usize,
}

impl QuoteScan {
    fn new(delimiter: u8) -> QuoteScan {
        QuoteScan {
            delimiter,
            lines: 0,
            in_quote: false,
            quote_pending: false,
            at_cell_start: true,
            opened_at: 0,
        }
    }

    fn feed(&mut self, byte: u8) {
        if byte == b'\n' {
            self.lines += 1;
        }
        if self.quote_pending {
            self.quote_pending = false;
            if byte == b'"' {
                return;
            }
            self.in_quote = false;
        }
        if self.in_quote {
            self.quote_pending = byte == b'"';
            return;
        }
        match byte {
            b'"' if self.at_cell_start => {
                self.in_quote = true;
                self.at_cell_start = false;
                self.opened_at = self.lines + 1;
            }
            b'\n' => self.at_cell_start = true,
            b if b == self.delimiter => self.at_cell_start = true,
            b' ' | b'\t' | b'\r' => {}
            _ => self.at_cell_start = false,
        }
    }

    /// The line of a quote still open at the end of the file.
    fn unclosed(&self) -> Option<usize> {
        (self.in_quote && !self.quote_pending).then_some(self.opened_at)
    }
}

impl Default for QuoteScan {
    fn default() -> Self {
        QuoteScan::new(b';')
    }
}

/// A reader that notes where line breaks are.
struct Counting<R> {
    inner: R,
    breaks: Rc<RefCell<Breaks>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.breaks.borrow_mut();
        breaks.eof |= n == 0 && !buf.is_empty();
        let start = breaks.offset;
        for (i, byte) in buf[..n].iter().enumerate() {
            breaks.quotes.feed(*byte);
            if matches!(byte, b'\r' | b'\n') {
                breaks.pending.push_back((start + i as u64, *byte == b'\n'));
            }
        }
        breaks.offset += n as u64;
        Ok(n)
    }
}

impl Breaks {
    /// The line (1-based) of the first byte at or after `byte` that is not
    /// a line break; forgets the breaks before it.
    fn line_at(&mut self, mut byte: u64) -> usize {
        while let Some(&(offset, is_lf)) = self.pending.front() {
            if offset < byte {
                self.lines_passed += usize::from(is_lf);
                self.pending.pop_front();
            } else if offset == byte {
                // The terminator of the previous row or an empty line.
                byte += 1;
                self.lines_passed += usize::from(is_lf);
                self.pending.pop_front();
            } else {
                break;
            }
        }
        self.lines_passed + 1
    }
}

/// How a file was recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// Encoding of the bytes.
    pub encoding: SourceEncoding,
    /// Cell delimiter.
    pub delimiter: u8,
}

/// Decides encoding and delimiter from the start of a file.
pub fn sniff(start: &[u8]) -> Format {
    let (encoding, body) = match start.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (SourceEncoding::Utf8Bom, rest),
        None => {
            let valid = match std::str::from_utf8(start) {
                Ok(_) => true,
                // Cut off in the middle of a character at the end of the sample.
                Err(error) => error.error_len().is_none(),
            };
            let encoding = if valid {
                SourceEncoding::Utf8
            } else {
                SourceEncoding::Windows1252
            };
            (encoding, start)
        }
    };
    let text = decode_cell(body, encoding);
    Format {
        encoding,
        delimiter: detect_delimiter(&text),
    }
}

/// Decodes one cell: UTF-8 where the file is UTF-8 and the cell is valid,
/// Windows-1252 otherwise (it maps every byte).
pub fn decode_cell(bytes: &[u8], encoding: SourceEncoding) -> String {
    if encoding != SourceEncoding::Windows1252
        && let Ok(text) = std::str::from_utf8(bytes)
    {
        return text.to_owned();
    }
    let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
    text.into_owned()
}

/// Data rows of a file, one at a time, after its header.
pub struct Rows<R: Read> {
    /// The csv reader over the counted bytes.
    reader: csv::Reader<Counting<BufReader<R>>>,
    /// Shared with the counting reader.
    breaks: Rc<RefCell<Breaks>>,
    /// How cells are decoded.
    pub format: Format,
    /// Header cells, trimmed (empty for an empty file).
    pub header: Vec<String>,
    /// Reused record buffer.
    record: csv::ByteRecord,
    /// Set after a fatal read error: the rest of the file is not read.
    done: bool,
}

impl<R: Read> Rows<R> {
    /// Opens a stream: sniffs the format, skips a BOM, reads the header.
    pub fn open(source: R) -> std::io::Result<Rows<R>> {
        let mut buffered = BufReader::with_capacity(SNIFF_BYTES, source);
        let start = buffered.fill_buf()?.to_vec();
        let format = sniff(&start);
        let breaks = Rc::new(RefCell::new(Breaks {
            quotes: QuoteScan::new(format.delimiter),
            ..Breaks::default()
        }));
        if format.encoding == SourceEncoding::Utf8Bom {
            // The csv reader counts its bytes from after the BOM, as we do.
            buffered.consume(3);
        }
        let reader = csv::ReaderBuilder::new()
            .delimiter(format.delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(Counting {
                inner: buffered,
                breaks: Rc::clone(&breaks),
            });
        let mut rows = Rows {
            reader,
            breaks,
            format,
            header: Vec::new(),
            record: csv::ByteRecord::new(),
            done: false,
        };
        // The first non-empty row is the header.
        while let Some(row) = rows.next() {
            if let Ok(row) = row {
                rows.header = row.cells;
                break;
            }
        }
        Ok(rows)
    }

    /// Bytes of the file the reader has taken in so far.
    pub fn bytes_read(&self) -> u64 {
        self.breaks.borrow().offset
    }

    fn cells(&self) -> Vec<String> {
        self.record
            .iter()
            .map(|cell| decode_cell(cell, self.format.encoding).trim().to_owned())
            .collect()
    }
}

impl<R: Read> Iterator for Rows<R> {
    type Item = Result<CsvRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {
                    let byte = self.record.position().map_or(0, |p| p.byte());
                    let line = self.breaks.borrow_mut().line_at(byte);
                    let cells = self.cells();
                    if cells.iter().all(String::is_empty) {
                        continue;
                    }
                    return Some(self.check(line, cells));
                }
                Err(error) => {
                    let byte = error.position().map_or(0, |p| p.byte());
                    let line = self.breaks.borrow_mut().line_at(byte);
                    if !matches!(error.kind(), csv::ErrorKind::Utf8 { .. }) {
                        self.done = matches!(error.kind(), csv::ErrorKind::Io(_));
                    }
                    return Some(Err(RowError::new(
                        line,
                        "Zeile ist kein gültiges CSV",
                        "row is not valid CSV",
                    )));
                }
            }
        }
    }
}

impl<R: Read> Rows<R> {
    fn check(&self, line: usize, cells: Vec<String>) -> Result<CsvRow, RowError> {
        let breaks = self
            .record
            .iter()
            .map(|cell| cell.iter().filter(|b| **b == b'\n').count())
            .sum::<usize>();
        let state = self.breaks.borrow();
        let unclosed = state
            .quotes
            .unclosed()
            .filter(|open| state.eof && (line..=line + breaks).contains(open));
        drop(state);
        if unclosed.is_some()
            || breaks > MAX_ROW_LINES
            || self.record.iter().any(|c| c.len() > MAX_CELL_BYTES)
        {
            return Err(RowError::new(
                line,
                "Anführungszeichen wird nicht geschlossen: der Rest der Datei wäre eine Zelle",
                "quote is never closed: the rest of the file would be one cell",
            ));
        }
        let width = self.header.len();
        if !self.header.is_empty()
            && cells.len() > width
            && cells[width..].iter().any(|c| !c.is_empty())
        {
            return Err(RowError::new(
                line,
                format!(
                    "{} Zellen, die Kopfzeile hat {width} – Trennzeichen oder Anführungszeichen prüfen",
                    cells.len()
                ),
                format!(
                    "{} cells, the header has {width} – check delimiter or quotes",
                    cells.len()
                ),
            ));
        }
        Ok(CsvRow { line, cells })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header, rows as (line, cells), and the lines of row errors.
    type Read = (Vec<String>, Vec<(usize, Vec<String>)>, Vec<usize>);

    fn lines(bytes: &[u8]) -> Read {
        let rows = Rows::open(bytes).expect("opens");
        let header = rows.header.clone();
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for row in rows {
            match row {
                Ok(row) => ok.push((row.line, row.cells)),
                Err(error) => errors.push(error.line),
            }
        }
        (header, ok, errors)
    }

    #[test]
    fn rows_are_numbered_by_the_line_they_start_on() {
        let (header, rows, errors) = lines(b"A;B\r\n1;\"x\r\ny\"\r\n\r\n2;z\r\n3;\"q\"\n\n\n4;w\n");
        assert_eq!(header, vec!["A", "B"]);
        let numbered: Vec<usize> = rows.iter().map(|r| r.0).collect();
        assert_eq!(numbered, vec![2, 5, 6, 9]);
        assert_eq!(rows[0].1[1], "x\r\ny");
        assert!(errors.is_empty());
    }

    #[test]
    fn encodings_are_recognised_per_file() {
        let (header, rows, _) = lines(b"\xEF\xBB\xBFName;Ort\nJ\xC3\xBCrgen;K\xC3\xB6ln\n");
        assert_eq!(header, vec!["Name", "Ort"]);
        assert_eq!(rows[0].1, vec!["Jürgen", "Köln"]);
        let (_, rows, _) = lines(b"Name;Betrag\nJ\xFCrgen;\x80 12,50\n");
        assert_eq!(rows[0].1, vec!["Jürgen", "€ 12,50"]);
        let (_, rows, _) = lines(b"Name\tOrt\nA\tB\n");
        assert_eq!(rows[0].1, vec!["A", "B"]);
    }

    #[test]
    fn too_many_cells_and_open_quotes_are_row_errors() {
        let (_, rows, errors) = lines(b"A;B\n1;2;3\n4;5\n");
        assert_eq!((rows.len(), errors), (1, vec![2]));
        let mut open = b"A;B\n1;\"open\n".to_vec();
        for _ in 0..60 {
            open.extend_from_slice(b"x;y\n");
        }
        let (_, rows, errors) = lines(&open);
        assert!(rows.is_empty());
        assert_eq!(errors, vec![2]);
        let (_, rows, errors) = lines(b"A;B\n1;2\n3;\"open\n4;5\n");
        assert_eq!((rows.len(), errors), (1, vec![3]));
        let (_, rows, errors) = lines(b"A;B\n1;\"a \"\"b\"\"\"\n");
        assert_eq!((rows[0].1[1].as_str(), errors.len()), ("a \"b\"", 0));
    }
}
