//! CSV as German practices produce it (reference/domain.md): reading any
//! variant, writing what German Excel opens.
//!
//! Reading detects the encoding (UTF-8 with or without BOM, else
//! Windows-1252), the delimiter (`;`, `,` or tab, from the header line),
//! resolves header aliases (`Pat.-Nr.`, `Patientennummer`, …) and numbers
//! every row by its line in the file, so every error can say "line 7,
//! column Muster: …". Every cell stays text: codes and postcodes keep their
//! leading zeros, and numbers and dates are converted deliberately with
//! [`parse_cents`] and [`parse_date`]. Nothing here panics or fails as a
//! whole on bad input: broken rows become [`RowError`]s.
//!
//! Writing produces UTF-8 with BOM, `;`, CRLF and decimal commas.
//!
//! Used by the mapping tables and meant for the historical import
//! (DESIGN.md §8).

use chrono::{NaiveDate, NaiveDateTime};

/// The encoding a file was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceEncoding {
    /// UTF-8 starting with EF BB BF (what Excel writes as „CSV UTF-8“).
    Utf8Bom,
    /// UTF-8 without BOM.
    Utf8,
    /// Windows-1252 (Excel's „CSV (Trennzeichen-getrennt)“ on German Windows).
    Windows1252,
}

impl SourceEncoding {
    /// Name shown in previews.
    pub fn label(self) -> &'static str {
        match self {
            SourceEncoding::Utf8Bom => "UTF-8 (BOM)",
            SourceEncoding::Utf8 => "UTF-8",
            SourceEncoding::Windows1252 => "Windows-1252",
        }
    }
}

/// Decodes a file: a UTF-8 BOM or valid UTF-8 is read as UTF-8, anything
/// else as Windows-1252 (which maps every byte, so decoding never fails).
pub fn decode(bytes: &[u8]) -> (String, SourceEncoding) {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        let (text, _) = encoding_rs::UTF_8.decode_without_bom_handling(rest);
        return (text.into_owned(), SourceEncoding::Utf8Bom);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (text.to_owned(), SourceEncoding::Utf8);
    }
    let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
    (text.into_owned(), SourceEncoding::Windows1252)
}

/// The delimiter of the header line: the most frequent of `;`, `,` and tab
/// outside quotes; `;` when none occurs or on a tie (the German default).
pub fn detect_delimiter(text: &str) -> u8 {
    let header = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    let mut counts = [(b';', 0usize), (b'\t', 0), (b',', 0)];
    let mut quoted = false;
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => counts[0].1 += 1,
            '\t' if !quoted => counts[1].1 += 1,
            ',' if !quoted => counts[2].1 += 1,
            _ => {}
        }
    }
    let mut best = counts[0];
    for candidate in &counts[1..] {
        if candidate.1 > best.1 {
            best = *candidate;
        }
    }
    best.0
}

/// The delimiter in words, for previews and messages.
pub fn delimiter_label(delimiter: u8) -> &'static str {
    match delimiter {
        b';' => "Semikolon / semicolon",
        b',' => "Komma / comma",
        b'\t' => "Tabulator / tab",
        _ => "?",
    }
}

/// One problem in a file, at a line and maybe a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Line in the file (header = 1); a row spanning lines counts from its first.
    pub line: usize,
    /// The column (as the standard header names it), when the error is in one cell.
    pub column: Option<String>,
    /// Reason in German.
    pub reason_de: String,
    /// Reason in English.
    pub reason_en: String,
}

impl RowError {
    /// An error of a whole row.
    pub fn new(line: usize, reason_de: impl Into<String>, reason_en: impl Into<String>) -> Self {
        RowError {
            line,
            column: None,
            reason_de: reason_de.into(),
            reason_en: reason_en.into(),
        }
    }

    /// The same error, located in a column.
    pub fn in_column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(column) => write!(
                f,
                "Zeile {}, Spalte „{column}“: {} / line {}, column \"{column}\": {}",
                self.line, self.reason_de, self.line, self.reason_en
            ),
            None => write!(
                f,
                "Zeile {}: {} / line {}: {}",
                self.line, self.reason_de, self.line, self.reason_en
            ),
        }
    }
}

/// One data row: where it starts and its trimmed cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    /// Line in the file where the row starts (header = 1).
    pub line: usize,
    /// Cells, trimmed.
    pub cells: Vec<String>,
}

/// A file read as far as it could be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvDocument {
    /// How the bytes were decoded.
    pub encoding: SourceEncoding,
    /// The delimiter found.
    pub delimiter: u8,
    /// Header cells, trimmed; empty for an empty file.
    pub header: Vec<String>,
    /// Data rows that could be read; empty rows are skipped.
    pub rows: Vec<CsvRow>,
    /// Rows that could not be read (broken quotes, wrong cell count).
    pub errors: Vec<RowError>,
}

/// Reads a file of any variant (see the module documentation).
pub fn read(bytes: &[u8]) -> CsvDocument {
    let (text, encoding) = decode(bytes);
    read_text(&text, encoding)
}

/// Reads decoded text.
pub fn read_text(text: &str, encoding: SourceEncoding) -> CsvDocument {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = detect_delimiter(text);
    let mut errors = Vec::new();
    if let Some(line) = unclosed_quote(text, delimiter) {
        errors.push(RowError::new(
            line,
            "Anführungszeichen wird nicht geschlossen: der Rest der Datei wäre eine Zelle",
            "quote is never closed: the rest of the file would be one cell",
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    // Line numbers from byte offsets: the reader's own line count is not
    // the line a record starts on once quoted line breaks are involved.
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    // The reader reports where the previous record's terminator began;
    // the record itself starts after the line breaks (and skipped empty
    // lines) that follow.
    let bytes = text.as_bytes();
    let line_of = |byte: u64| -> usize {
        let mut byte = usize::try_from(byte).unwrap_or(usize::MAX);
        while byte < bytes.len() && matches!(bytes[byte], b'\r' | b'\n') {
            byte += 1;
        }
        line_starts.partition_point(|start| *start <= byte).max(1)
    };
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record.position().map_or(0, |p| line_of(p.byte()));
                let cells: Vec<String> = record.iter().map(str::to_owned).collect();
                if cells.iter().all(String::is_empty) {
                    continue;
                }
                match &header {
                    None => header = Some(cells),
                    Some(names) => {
                        if cells.len() > names.len()
                            && cells[names.len()..].iter().any(|c| !c.is_empty())
                        {
                            errors.push(RowError::new(
                                line,
                                format!(
                                    "{} Zellen, die Kopfzeile hat {} – Trennzeichen oder Anführungszeichen prüfen",
                                    cells.len(),
                                    names.len()
                                ),
                                format!(
                                    "{} cells, the header has {} – check delimiter or quotes",
                                    cells.len(),
                                    names.len()
                                ),
                            ));
                            continue;
                        }
                        rows.push(CsvRow { line, cells });
                    }
                }
            }
            Err(error) => {
                let line = error.position().map_or(0, |p| line_of(p.byte()));
                errors.push(RowError::new(
                    line,
                    "Zeile ist kein gültiges CSV",
                    format!("row is not valid CSV: {error}"),
                ));
            }
        }
    }
    CsvDocument {
        encoding,
        delimiter,
        header: header.unwrap_or_default(),
        rows,
        errors,
    }
}

/// The line where a quote opens that is never closed, if any. Only a quote
/// at the start of a cell opens a quoted cell (as the csv crate reads it).
fn unclosed_quote(text: &str, delimiter: u8) -> Option<usize> {
    let delimiter = char::from(delimiter);
    let mut line = 1;
    let mut open_at = None;
    let mut at_cell_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (open_at, c) {
            (None, '"') if at_cell_start => {
                open_at = Some(line);
                at_cell_start = false;
            }
            (Some(_), '"') => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                } else {
                    open_at = None;
                }
            }
            (_, '\n') => {
                line += 1;
                if open_at.is_none() {
                    at_cell_start = true;
                }
            }
            (None, c) if c == delimiter => at_cell_start = true,
            (None, ' ' | '\t' | '\r') => {}
            (None, _) => at_cell_start = false,
            (Some(_), _) => {}
        }
    }
    open_at
}

/// A column a reader expects: its standard name (written on export and
/// used in messages) and the other names practices give it.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    /// Standard header name.
    pub name: &'static str,
    /// Other accepted header names; compared after [`header_key`].
    pub aliases: &'static [&'static str],
    /// Whether the file is refused without it.
    pub required: bool,
}

/// The comparable form of a header name: lower case, letters and digits
/// only (`Pat.-Nr.` → `patnr`, `Eröffnet Fall` → `eröffnetfall`).
pub fn header_key(name: &str) -> String {
    name.trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Where each expected column is in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// Index in the file of each spec's column, in spec order.
    positions: Vec<Option<usize>>,
}

impl Columns {
    /// Finds every spec's column in the header; every missing required
    /// column is an error on line 1.
    pub fn resolve(header: &[String], specs: &[ColumnSpec]) -> Result<Columns, Vec<RowError>> {
        let keys: Vec<String> = header.iter().map(|h| header_key(h)).collect();
        let mut errors = Vec::new();
        let mut positions = Vec::with_capacity(specs.len());
        for spec in specs {
            let names: Vec<String> = std::iter::once(spec.name)
                .chain(spec.aliases.iter().copied())
                .map(header_key)
                .collect();
            let position = keys.iter().position(|k| names.contains(k));
            if position.is_none() && spec.required {
                errors.push(
                    RowError::new(
                        1,
                        format!("Spalte „{}“ fehlt in der Kopfzeile", spec.name),
                        format!("column \"{}\" is missing from the header", spec.name),
                    )
                    .in_column(spec.name),
                );
            }
            positions.push(position);
        }
        if errors.is_empty() {
            Ok(Columns { positions })
        } else {
            Err(errors)
        }
    }

    /// Whether every required spec resolves in this header (used to tell
    /// which table a file holds).
    pub fn fits(header: &[String], specs: &[ColumnSpec]) -> bool {
        Columns::resolve(header, specs).is_ok()
    }

    /// The cell of the spec at `index` in a row; empty when the column is
    /// absent or the row is short.
    pub fn cell<'r>(&self, row: &'r CsvRow, index: usize) -> &'r str {
        self.positions
            .get(index)
            .copied()
            .flatten()
            .and_then(|position| row.cells.get(position))
            .map_or("", String::as_str)
    }
}

/// An amount in integer cents from German notation: `1.234,56`, `12,5`,
/// `-12,50`, `12,50-`, with or without `€`; a plain `12.50` (one dot, not
/// three digits after it) is read as a decimal point. `None` for anything
/// else — never a guess.
pub fn parse_cents(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches("EUR");
    // Without a euro sign or inner blanks (nearly always) nothing is copied.
    let cleaned: std::borrow::Cow<'_, str> =
        if text.contains(|c: char| c == '€' || c.is_whitespace()) {
            text.chars()
                .filter(|c| *c != '€' && !c.is_whitespace())
                .collect::<String>()
                .into()
        } else {
            text.into()
        };
    let mut text: &str = &cleaned;
    let mut negative = false;
    if let Some(rest) = text.strip_suffix('-') {
        negative = true;
        text = rest;
    }
    if let Some(rest) = text.strip_prefix('-') {
        if negative {
            return None;
        }
        negative = true;
        text = rest;
    }
    let (whole, fraction) = match text.split_once(',') {
        Some(parts) => parts,
        None => match text.split_once('.') {
            Some((whole, fraction)) if !fraction.contains('.') && fraction.len() != 3 => {
                (whole, fraction)
            }
            _ => (text, ""),
        },
    };
    let whole = grouped_digits(whole)?;
    if fraction.len() > 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction_cents: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().ok()? * 10,
        _ => fraction.parse().ok()?,
    };
    let cents = whole.checked_mul(100)?.checked_add(fraction_cents)?;
    Some(if negative { -cents } else { cents })
}

/// Digits with optional dot thousands separators (`1.234.567`).
fn grouped_digits(text: &str) -> Option<i64> {
    if text.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    let mut first_len = 0;
    let mut groups = 0;
    for group in text.split('.') {
        if group.is_empty() || !group.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if groups == 0 {
            first_len = group.len();
        } else if group.len() != 3 {
            return None;
        }
        groups += 1;
        for digit in group.bytes() {
            value = value
                .checked_mul(10)?
                .checked_add(i64::from(digit - b'0'))?;
        }
    }
    (groups == 1 || first_len <= 3).then_some(value)
}

/// Cents in German notation with two decimals and dot thousands
/// (`-1.234,56`), as German Excel reads numbers.
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped},{:02}", abs % 100)
}

/// A date in any notation practices and Ivoris use: `dd.mm.yyyy`,
/// `dd.mm.yy` (years up to 69 are 20xx), `dd.mm.yyyy hh:mm`, `yyyymmdd`,
/// `yyyy-mm-dd` and ISO date-times. `None` for anything else.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    // Only a text with a time part is tried as date and time: the formats
    // are tried one by one, which a file of plain dates pays on every cell.
    if text.contains([' ', 'T'])
        && let Some(date) = parse_date_time(text)
    {
        return Some(date.date());
    }
    if text.len() == 8 && text.chars().all(|c| c.is_ascii_digit()) {
        return NaiveDate::parse_from_str(text, "%Y%m%d").ok();
    }
    let parts: Vec<&str> = text.split('.').collect();
    if let [day, month, year] = parts[..] {
        let all_digits = [day, month, year]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()));
        if !all_digits || day.len() > 2 || month.len() > 2 {
            return None;
        }
        let year: i32 = match year.len() {
            2 => {
                let short: i32 = year.parse().ok()?;
                if short <= 69 {
                    2000 + short
                } else {
                    1900 + short
                }
            }
            4 => year.parse().ok()?,
            _ => return None,
        };
        return NaiveDate::from_ymd_opt(year, month.parse().ok()?, day.parse().ok()?);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A date-time: `dd.mm.yyyy hh:mm[:ss]` or ISO `yyyy-mm-ddThh:mm[:ss]`.
pub fn parse_date_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    // German dates have dots, ISO ones dashes: only that family's formats
    // are tried.
    let formats: &[&str] = if text.contains('.') {
        &["%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S"]
    } else {
        &[
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
        ]
    };
    formats
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
}

/// Why a CSV could not be written.
#[derive(Debug, thiserror::Error)]
#[error("CSV kann nicht geschrieben werden / Cannot write CSV: {0}")]
pub struct CsvWriteError(String);

/// Writes a table for German Excel: UTF-8 with BOM, `;`, CRLF, every cell
/// quoted only where needed.
pub fn write_excel(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>, CsvWriteError> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::CRLF)
        .from_writer(b"\xEF\xBB\xBF".to_vec());
    let error = |e: &dyn std::fmt::Display| CsvWriteError(e.to_string());
    writer.write_record(header).map_err(|e| error(&e))?;
    for row in rows {
        writer.write_record(row).map_err(|e| error(&e))?;
    }
    writer.into_inner().map_err(|e| error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_german_notation() {
        let cases = [
            ("1.234,56", Some(123_456)),
            ("12,5", Some(1250)),
            ("-12,50", Some(-1250)),
            ("12,50-", Some(-1250)),
            ("12,50 €", Some(1250)),
            ("€ 3", Some(300)),
            ("1.234", Some(123_400)),
            ("12.50", Some(1250)),
            ("0,05", Some(5)),
            ("", None),
            ("1,234,5", None),
            ("12,345", None),
            ("1.23.4", None),
            ("abc", None),
            ("--1", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_cents(text), expected, "{text}");
        }
    }

    #[test]
    fn cents_are_written_the_german_way() {
        assert_eq!(format_cents(123_456), "1.234,56");
        assert_eq!(format_cents(-5), "-0,05");
        assert_eq!(format_cents(100_000_000), "1.000.000,00");
    }

    #[test]
    fn dates_in_every_notation() {
        let day = NaiveDate::from_ymd_opt(2024, 3, 7);
        for text in [
            "07.03.2024",
            "7.3.2024",
            "07.03.24",
            "07.03.2024 14:30",
            "20240307",
            "2024-03-07",
            "2024-03-07T14:30:00",
        ] {
            assert_eq!(parse_date(text), day, "{text}");
        }
        assert_eq!(parse_date("01.01.85"), NaiveDate::from_ymd_opt(1985, 1, 1));
        assert_eq!(parse_date("31.02.2024"), None);
        assert_eq!(parse_date("gestern"), None);
    }

    #[test]
    fn delimiters_are_found_in_the_header() {
        assert_eq!(detect_delimiter("a;b;c\n1,2;3;4"), b';');
        assert_eq!(detect_delimiter("a,b,c\n"), b',');
        assert_eq!(detect_delimiter("a\tb\n"), b'\t');
        assert_eq!(detect_delimiter("\"a;b\",c\n"), b',');
        assert_eq!(detect_delimiter("single\n"), b';');
    }

    #[test]
    fn encodings_are_told_apart() {
        let (text, encoding) = decode(b"\xEF\xBB\xBFK\xC3\xA4se");
        assert_eq!((text.as_str(), encoding), ("Käse", SourceEncoding::Utf8Bom));
        let (text, encoding) = decode(b"K\xC3\xA4se");
        assert_eq!((text.as_str(), encoding), ("Käse", SourceEncoding::Utf8));
        let (text, encoding) = decode(b"K\xE4se \x80");
        assert_eq!(
            (text.as_str(), encoding),
            ("Käse €", SourceEncoding::Windows1252)
        );
    }

    #[test]
    fn rows_carry_their_line_numbers_across_quoted_line_breaks() {
        let doc = read(b"A;B\r\n1;\"x\r\ny\"\r\n\r\n2;z\r\n");
        assert_eq!(doc.header, vec!["A", "B"]);
        let lines: Vec<usize> = doc.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 5]);
        assert_eq!(doc.rows[0].cells[1], "x\r\ny");
        assert!(doc.errors.is_empty());
    }

    #[test]
    fn an_unclosed_quote_is_reported_at_its_line() {
        let doc = read(b"A;B\n1;2\n3;\"open\n4;5\n");
        assert_eq!(doc.errors.len(), 1, "{:?}", doc.errors);
        assert_eq!(doc.errors[0].line, 3);
    }

    #[test]
    fn too_many_cells_are_an_error_of_the_row() {
        let doc = read(b"A;B\n1;2;3\n4;5\n");
        assert_eq!(doc.rows.len(), 1);
        assert_eq!(doc.errors[0].line, 2);
    }

    #[test]
    fn header_aliases_resolve() {
        let specs = [
            ColumnSpec {
                name: "Patientennummer",
                aliases: &["Pat.-Nr.", "IVORIS-Nr", "HumanReadableId"],
                required: true,
            },
            ColumnSpec {
                name: "Name",
                aliases: &[],
                required: false,
            },
        ];
        let header = vec!["pat.-nr.".to_owned(), "x".to_owned()];
        let columns = Columns::resolve(&header, &specs).expect("resolves");
        let row = CsvRow {
            line: 2,
            cells: vec!["0815".into(), "y".into()],
        };
        assert_eq!(columns.cell(&row, 0), "0815");
        assert_eq!(columns.cell(&row, 1), "");
        let missing = Columns::resolve(&["Name".to_owned()], &specs).expect_err("missing");
        assert_eq!(missing[0].line, 1);
        assert_eq!(missing[0].column.as_deref(), Some("Patientennummer"));
    }

    #[test]
    fn excel_output_has_bom_semicolons_and_crlf() {
        let bytes = write_excel(&["A", "B"], &[vec!["x;y".into(), "1,5".into()]]).expect("writes");
        assert_eq!(bytes, b"\xEF\xBB\xBFA;B\r\n\"x;y\";1,5\r\n".to_vec());
    }
}
