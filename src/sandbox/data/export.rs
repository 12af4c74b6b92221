//! Ivoris-like CSV exports of a location of the synthetic world, for the
//! historical import's tests and benchmark: patients, appointments and
//! billing lines as German practices hand them over — Windows-1252 or
//! UTF-8 with BOM, `;` (or `,` / tab) with decimal commas, amounts like
//! `12,50` and `1.234,50`, dates in three notations, quoted line breaks
//! and delimiters in remarks (and, on request, in names), a few cells
//! Excel mangled, a few invalid rows, with or without UUID columns.
//!
//! Everything is a pure function of the location and the options, so a
//! test knows which lines are invalid and which cells were mangled.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use chrono::{NaiveDate, NaiveDateTime};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Location;
use crate::csvio::format_cents;
use crate::ivoris::wire::{Appointment, DocumentEntry, Patient};

/// The bytes' encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportEncoding {
    /// UTF-8 with BOM (Excel's „CSV UTF-8“).
    Utf8Bom,
    /// Windows-1252 (Excel's „CSV (Trennzeichen-getrennt)“).
    Windows1252,
}

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportOptions {
    /// Encoding.
    pub encoding: ExportEncoding,
    /// Delimiter (`;`, `,`, tab).
    pub delimiter: u8,
    /// Whether the record's (and its patient's) UUID columns are written.
    pub with_uuids: bool,
    /// Dates rotate through `dd.mm.yyyy`, `dd.mm.yy` and ISO (birthdays
    /// never use two-digit years: they would be ambiguous).
    pub mixed_dates: bool,
    /// Roughly one row in `n` gets a cell Excel mangled (0: none): a
    /// leading `'`, a code as `1,04E+03`, a GOZ code or postcode without
    /// its leading zeros — all repaired by the import.
    pub excel_every: usize,
    /// Invalid rows mixed in (bad date, bad amount, empty or unknown
    /// patient), at deterministic places.
    pub invalid_rows: usize,
    /// Puts quoted line breaks into a few last names (not for round
    /// trips: the name changes).
    pub breaks_in_names: bool,
    /// Seed for the choice of mangled cells and invalid rows.
    pub seed: u64,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            encoding: ExportEncoding::Utf8Bom,
            delimiter: b';',
            with_uuids: true,
            mixed_dates: true,
            excel_every: 0,
            invalid_rows: 0,
            breaks_in_names: false,
            seed: 1,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Data rows written, invalid ones included.
    pub rows: usize,
    /// Lines (header = 1) of the invalid rows.
    pub invalid_lines: Vec<usize>,
    /// Cells mangled the way Excel does.
    pub mangled: usize,
}

/// A byte buffer the csv writer fills and the sink empties.
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes rows of cells as CSV in the chosen encoding, one at a time.
pub struct CsvSink<W: Write> {
    /// Where the bytes go.
    out: W,
    /// Encoding.
    encoding: ExportEncoding,
    /// Formats one record at a time into `buffer`.
    writer: csv::Writer<Shared>,
    /// The formatted record, taken after each row.
    buffer: Rc<RefCell<Vec<u8>>>,
    /// Lines written so far (quoted line breaks included).
    lines: usize,
}

impl<W: Write> CsvSink<W> {
    /// A sink that writes the BOM (for UTF-8) right away.
    pub fn new(mut out: W, encoding: ExportEncoding, delimiter: u8) -> std::io::Result<CsvSink<W>> {
        if encoding == ExportEncoding::Utf8Bom {
            out.write_all(b"\xEF\xBB\xBF")?;
        }
        let buffer = Rc::new(RefCell::new(Vec::new()));
        let writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(csv::Terminator::CRLF)
            .from_writer(Shared(Rc::clone(&buffer)));
        Ok(CsvSink {
            out,
            encoding,
            writer,
            buffer,
            lines: 0,
        })
    }

    /// Writes one row; returns the line it starts on.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) -> std::io::Result<usize> {
        self.writer
            .write_record(cells.iter().map(|c| c.as_ref()))
            .map_err(std::io::Error::other)?;
        self.writer.flush()?;
        let bytes = std::mem::take(&mut *self.buffer.borrow_mut());
        let text = String::from_utf8_lossy(&bytes);
        let line = self.lines + 1;
        self.lines += text.matches('\n').count();
        match self.encoding {
            ExportEncoding::Utf8Bom => self.out.write_all(text.as_bytes())?,
            ExportEncoding::Windows1252 => {
                // Like Excel: a letter Windows-1252 lacks (ł, ı) becomes `?`.
                let mut encoded = Vec::with_capacity(text.len());
                let mut buffer = [0u8; 4];
                for c in text.chars() {
                    let (bytes, _, unmappable) =
                        encoding_rs::WINDOWS_1252.encode(c.encode_utf8(&mut buffer));
                    if unmappable {
                        encoded.push(b'?');
                    } else {
                        encoded.extend_from_slice(&bytes);
                    }
                }
                self.out.write_all(&encoded)?;
            }
        }
        Ok(line)
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

fn date(day: NaiveDate, style: usize) -> String {
    match style % 3 {
        0 => day.format("%d.%m.%Y").to_string(),
        1 => day.format("%d.%m.%y").to_string(),
        _ => day.format("%Y-%m-%d").to_string(),
    }
}

fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// A remark with a quoted line break and a delimiter, every few rows.
fn remark(index: usize) -> String {
    match index % 7 {
        0 => "Rückruf erbeten;\r\nbitte vormittags".to_owned(),
        3 => "\"Angst\" vor Spritzen".to_owned(),
        _ => String::new(),
    }
}

struct Dice {
    rng: ChaCha8Rng,
    every: usize,
}

impl Dice {
    fn mangle(&mut self) -> bool {
        self.every > 0 && self.rng.random_range(0..self.every) == 0
    }
}

/// Positions (0-based among data rows) where invalid rows go.
fn invalid_positions(rows: usize, count: usize) -> Vec<usize> {
    (0..count)
        .map(|i| (i * 7 + 3) * rows.max(1) / (count * 7 + 3))
        .collect()
}

/// Writes the location's patients.
pub fn patients<W: Write>(
    out: W,
    location: &Location,
    options: &ExportOptions,
) -> std::io::Result<ExportReport> {
    let mut header = vec![];
    if options.with_uuids {
        header.push("Id");
    }
    header.extend([
        "Pat.-Nr.",
        "Vorname",
        "Nachname",
        "Geburtsdatum",
        "Geschlecht",
        "E-Mail",
        "Telefon",
        "Mobil",
        "Straße",
        "PLZ",
        "Ort",
        "Land",
        "Versicherung",
        "Bemerkung",
    ]);
    let mut sink = CsvSink::new(out, options.encoding, options.delimiter)?;
    sink.row(&header)?;
    let mut dice = Dice {
        rng: ChaCha8Rng::seed_from_u64(options.seed),
        every: options.excel_every,
    };
    let mut report = ExportReport::default();
    let invalid = invalid_positions(location.patients.len(), options.invalid_rows);
    for (index, patient) in location.patients.iter().enumerate() {
        if let Some(n) = invalid.iter().position(|p| *p == index) {
            let mut cells = vec![String::new(); header.len()];
            let first = usize::from(options.with_uuids);
            // An empty patient number, or a birthday that is no date.
            if n % 2 == 1 {
                cells[first] = format!("9{index:05}");
                cells[first + 3] = "31.02.1980".to_owned();
            }
            cells[first + 2] = "Ungültig".to_owned();
            report.invalid_lines.push(sink.row(&cells)?);
            report.rows += 1;
        }
        let cells = patient_cells(patient, index, options, &mut dice, &mut report);
        sink.row(&cells)?;
        report.rows += 1;
    }
    Ok(report)
}

fn patient_cells(
    patient: &Patient,
    index: usize,
    options: &ExportOptions,
    dice: &mut Dice,
    report: &mut ExportReport,
) -> Vec<String> {
    let address = patient.address.clone().unwrap_or_default();
    let mut number = opt(&patient.human_readable_id);
    if dice.mangle() {
        number = format!("'{number}");
        report.mangled += 1;
    }
    let mut zip = opt(&address.zip);
    if zip.starts_with('0') && zip.len() == 5 && dice.mangle() {
        zip = zip[1..].to_owned();
        report.mangled += 1;
    }
    let mut lastname = opt(&patient.lastname);
    if options.breaks_in_names && index % 5 == 2 {
        lastname = format!("{lastname}\r\ngeb. Muster");
    }
    let birthday = patient
        .birthday
        .map(|b| b.date())
        .map_or(String::new(), |d| {
            // Two-digit years would make 1965 a 2065.
            date(
                d,
                if options.mixed_dates {
                    (index % 2) * 2
                } else {
                    0
                },
            )
        });
    let mut cells = Vec::new();
    if options.with_uuids {
        cells.push(patient.id.clone());
    }
    cells.extend([
        number,
        opt(&patient.firstname),
        lastname,
        birthday,
        opt(&patient.gender),
        opt(&patient.email),
        opt(&patient.phone),
        opt(&patient.mobile),
        opt(&address.street),
        zip,
        opt(&address.city),
        opt(&address.country),
        opt(&patient.health_insurance),
        remark(index),
    ]);
    cells
}

fn number_of<'l>(location: &'l Location, patient_id: &Option<String>) -> &'l str {
    let id = patient_id.as_deref().unwrap_or("");
    location
        .patients
        .iter()
        .find(|p| p.id == id)
        .and_then(|p| p.human_readable_id.as_deref())
        .unwrap_or("")
}

/// Patient numbers by Ivoris id, for the appointment and entry exports.
fn numbers(location: &Location) -> std::collections::HashMap<&str, &str> {
    location
        .patients
        .iter()
        .map(|p| (p.id.as_str(), p.human_readable_id.as_deref().unwrap_or("")))
        .collect()
}

/// Writes the location's appointments (sorted by start, as Ivoris exports them).
pub fn appointments<W: Write>(
    out: W,
    location: &Location,
    options: &ExportOptions,
) -> std::io::Result<ExportReport> {
    let mut header = vec![];
    if options.with_uuids {
        header.extend(["Id", "PatientId"]);
    }
    header.extend([
        "Pat.-Nr.",
        "Datum",
        "Uhrzeit",
        "Dauer",
        "Terminart",
        "Status",
        "Bemerkung",
    ]);
    let mut sink = CsvSink::new(out, options.encoding, options.delimiter)?;
    sink.row(&header)?;
    let numbers = numbers(location);
    let mut sorted: Vec<&Appointment> = location.appointments.iter().collect();
    sorted.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    let mut dice = Dice {
        rng: ChaCha8Rng::seed_from_u64(options.seed ^ 0xa),
        every: options.excel_every,
    };
    let mut report = ExportReport::default();
    let invalid = invalid_positions(sorted.len(), options.invalid_rows);
    for (index, appointment) in sorted.into_iter().enumerate() {
        if let Some(n) = invalid.iter().position(|p| *p == index) {
            let first = if options.with_uuids { 2 } else { 0 };
            let mut cells = vec![String::new(); header.len()];
            cells[first] = if n % 2 == 0 {
                "999999".to_owned()
            } else {
                "1".to_owned()
            };
            cells[first + 1] = if n % 2 == 0 {
                "01.02.2025".to_owned()
            } else {
                "32.01.2025".to_owned()
            };
            cells[first + 2] = "09:00".to_owned();
            report.invalid_lines.push(sink.row(&cells)?);
            report.rows += 1;
        }
        let start = appointment.start.unwrap_or(NaiveDateTime::MIN);
        let patient = appointment.patient_id.as_deref().unwrap_or("");
        let mut number = numbers.get(patient).copied().unwrap_or("").to_owned();
        if dice.mangle() {
            number = format!("'{number}");
            report.mangled += 1;
        }
        let mut cells = Vec::new();
        if options.with_uuids {
            cells.extend([appointment.id.clone(), patient.to_owned()]);
        }
        cells.extend([
            number,
            date(start.date(), if options.mixed_dates { index } else { 0 }),
            start.format("%H:%M").to_string(),
            appointment
                .duration_minutes
                .map_or(String::new(), |d| d.to_string()),
            opt(&appointment.type_label),
            opt(&appointment.state),
            remark(index),
        ]);
        sink.row(&cells)?;
        report.rows += 1;
    }
    Ok(report)
}

/// One billing line's cells (also used by the benchmark to write many).
pub fn entry_cells(
    entry: &DocumentEntry,
    number: &str,
    with_uuids: bool,
    date_style: usize,
) -> Vec<String> {
    let mut cells = Vec::new();
    if with_uuids {
        cells.extend([entry.id.clone(), opt(&entry.patient_id)]);
    }
    let decimal = |v: Option<f64>| {
        v.map_or(String::new(), |v| {
            let cents = (v * 100.0).round() as i64;
            if cents % 100 == 0 {
                (cents / 100).to_string()
            } else {
                format_cents(cents).replace('.', "")
            }
        })
    };
    cells.extend([
        number.to_owned(),
        entry.date.map_or(String::new(), |d| date(d, date_style)),
        opt(&entry.entry_type),
        opt(&entry.catalogue),
        opt(&entry.code),
        decimal(entry.quantity),
        decimal(entry.factor),
        entry.amount_cents().map_or(String::new(), format_cents),
        opt(&entry.tooth),
        opt(&entry.text),
    ]);
    cells
}

/// The header of a billing-line export.
pub fn entry_header(with_uuids: bool) -> Vec<&'static str> {
    let mut header = vec![];
    if with_uuids {
        header.extend(["Id", "PatientId"]);
    }
    header.extend([
        "Pat.-Nr.", "Datum", "Typ", "Katalog", "Ziffer", "Anzahl", "Faktor", "Betrag", "Zahn",
        "Text",
    ]);
    header
}

/// Writes the location's billing lines (by patient and date).
pub fn entries<W: Write>(
    out: W,
    location: &Location,
    options: &ExportOptions,
) -> std::io::Result<ExportReport> {
    let header = entry_header(options.with_uuids);
    let mut sink = CsvSink::new(out, options.encoding, options.delimiter)?;
    sink.row(&header)?;
    let numbers = numbers(location);
    let mut sorted: Vec<&DocumentEntry> = location.entries.iter().collect();
    sorted.sort_by(|a, b| (&a.patient_id, a.date, &a.id).cmp(&(&b.patient_id, b.date, &b.id)));
    let mut dice = Dice {
        rng: ChaCha8Rng::seed_from_u64(options.seed ^ 0xe),
        every: options.excel_every,
    };
    let mut report = ExportReport::default();
    let invalid = invalid_positions(sorted.len(), options.invalid_rows);
    let first = if options.with_uuids { 2 } else { 0 };
    for (index, entry) in sorted.into_iter().enumerate() {
        if let Some(n) = invalid.iter().position(|p| *p == index) {
            let mut cells = entry_cells(entry, number_of(location, &entry.patient_id), false, 0);
            if options.with_uuids {
                cells.splice(0..0, [String::new(), String::new()]);
            }
            match n % 3 {
                0 => cells[first + 7] = "zwölf Euro".to_owned(),
                1 => cells[first + 1] = "2025-13-01".to_owned(),
                _ => cells[first] = String::new(),
            }
            report.invalid_lines.push(sink.row(&cells)?);
            report.rows += 1;
        }
        let number = numbers
            .get(entry.patient_id.as_deref().unwrap_or(""))
            .copied()
            .unwrap_or("");
        let mut cells = entry_cells(
            entry,
            number,
            options.with_uuids,
            if options.mixed_dates { index } else { 0 },
        );
        if dice.mangle() {
            report.mangled += mangle_code(&mut cells[first + 4], entry.catalogue.as_deref());
        }
        sink.row(&cells)?;
        report.rows += 1;
    }
    Ok(report)
}

/// What Excel does to a code: `1040` → `1,04E+03` (only where that is
/// exact), GOZ `0010` → `10`. Returns 1 when the cell was mangled.
fn mangle_code(code: &mut String, catalogue: Option<&str>) -> usize {
    let digits = code.len() == 4 && code.chars().all(|c| c.is_ascii_digit());
    if !digits {
        return 0;
    }
    if code.starts_with('0') && catalogue == Some("GOZ") {
        *code = code.trim_start_matches('0').to_owned();
        return 1;
    }
    if code.ends_with('0') && !code.starts_with('0') {
        let bytes = code.as_bytes();
        *code = format!(
            "{},{}{}E+03",
            bytes[0] as char, bytes[1] as char, bytes[2] as char
        );
        return 1;
    }
    0
}
