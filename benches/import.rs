//! The historical import at practice scale, on files written like Ivoris
//! exports (`;`, decimal comma, UTF-8 with BOM):
//! - a million billing lines streamed into a fresh ledger: peak resident
//!   memory of the process (VmHWM) must stay under 200 MB — the file is
//!   never held whole;
//! - 100,000 billing lines: parse + validate + ledger write (the whole
//!   `import`, every row checked on the way) at ≥ 100,000 rows/s;
//! - the dry-run summary of 100,000 appointments (rows written and the
//!   location planned twice in a rolled-back transaction) in ≤ 5 s.
//!
//! Run with `cargo bench --bench import` (`-- streamed`, `-- throughput`,
//! `-- dry-run` for one part); each number is printed with its
//! target and PASS/FAIL. The million lines come first, so the peak memory
//! is theirs. `IMPORT_BENCH_SCALE=0.1` shrinks every size (a quick look,
//! e.g. in the dev profile with `cargo test --bench import`; the targets
//! hold for the full sizes in release).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::import::{ImportOptions, PlanInputs, import, summarise};
use ivoris_hubspot_sync::import::{ColumnChoices, ImportKind, ImportRequest, ImportSession};
use ivoris_hubspot_sync::ivoris::wire::DocumentEntry;
use ivoris_hubspot_sync::ledger::{Ledger, LocationRow};
use ivoris_hubspot_sync::mapping::store::load_applied;
use ivoris_hubspot_sync::plan::{LocationStages, StageIds};
use ivoris_hubspot_sync::sandbox::data::export::{
    CsvSink, ExportEncoding, entry_cells, entry_header,
};

const LOCATION: &str = "bench";
const PATIENTS: usize = 10_000;
const STREAMED_LINES: usize = 1_000_000;
const MEASURED_LINES: usize = 100_000;
const APPOINTMENTS: usize = 100_000;
const MIN_ROWS_PER_SECOND: f64 = 100_000.0;
const MAX_PEAK_MB: f64 = 200.0;
const MAX_DRY_RUN_SECONDS: f64 = 5.0;

/// Codes billed in the files: (entry type, catalogue, code, cents).
const CODES: [(&str, &str, &str, i64); 6] = [
    ("lst", "GOZ", "1040", 10_136),
    ("lst", "BEMA", "13a", 3_825),
    ("lst", "BEMA", "01", 1_850),
    ("lst", "GOZ", "0010", 1_293),
    ("mat", "GOZ", "2197", 4_250),
    ("lst", "GOZ", "2100", 123_450),
];

/// `n` scaled by `IMPORT_BENCH_SCALE` (default 1).
fn scaled(n: usize) -> usize {
    let scale: f64 = std::env::var("IMPORT_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale) as usize).max(1)
}

fn main() {
    // `cargo bench --bench import -- throughput` runs only the parts named.
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs = |part: &str| chosen.is_empty() || chosen.iter().any(|c| c == part);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut all = true;
    if runs("streamed") {
        all &= report_streamed(streamed_million(dir.path()));
    }
    if runs("throughput") {
        all &= report_throughput(billing_throughput(dir.path()));
    }
    if runs("dry-run") {
        all &= report_dry_run(appointment_dry_run(dir.path()));
    }
    println!("{}", if all { "ALL PASS" } else { "SOME FAIL" });
}

fn report_streamed(streamed: Option<f64>) -> bool {
    report(
        &format!(
            "{} billing lines streamed, peak memory (VmHWM)",
            scaled(STREAMED_LINES)
        ),
        streamed.map_or("n/a".to_owned(), |mb| format!("{mb:.1} MB")),
        &format!("≤ {MAX_PEAK_MB} MB"),
        streamed.is_some_and(|mb| mb <= MAX_PEAK_MB),
    )
}

fn report_throughput(throughput: f64) -> bool {
    report(
        &format!(
            "{} billing lines parsed, validated, written",
            scaled(MEASURED_LINES)
        ),
        format!("{throughput:.0} rows/s"),
        &format!("≥ {MIN_ROWS_PER_SECOND}"),
        throughput >= MIN_ROWS_PER_SECOND,
    )
}

fn report_dry_run(dry_run: f64) -> bool {
    report(
        &format!("dry-run summary of {} appointments", scaled(APPOINTMENTS)),
        format!("{dry_run:.2} s"),
        &format!("≤ {MAX_DRY_RUN_SECONDS} s"),
        dry_run <= MAX_DRY_RUN_SECONDS,
    )
}

fn report(what: &str, value: String, target: &str, pass: bool) -> bool {
    println!(
        "{what}: {value} (target {target}) {}",
        if pass { "PASS" } else { "FAIL" }
    );
    pass
}

/// A fresh ledger with the location and `PATIENTS` patients imported.
fn ledger_with_patients(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.sqlite"));
    let mut ledger = Ledger::open(&path).expect("ledger");
    ledger
        .upsert_location(&LocationRow {
            key: LOCATION.into(),
            name: "Benchmark".into(),
            brand: None,
            ivoris_url: "http://127.0.0.1:1".into(),
            profile_id: None,
        })
        .expect("location");
    drop(ledger);
    let file = dir.join(format!("{name}-patients.csv"));
    let mut sink = sink(&file);
    sink.row(&["Pat.-Nr.", "Vorname", "Nachname", "Geburtsdatum"])
        .expect("header");
    for p in 0..scaled(PATIENTS) {
        let birthday = NaiveDate::from_ymd_opt(
            1950 + (p % 60) as i32,
            1 + (p % 12) as u32,
            1 + (p % 28) as u32,
        )
        .expect("date")
        .format("%d.%m.%Y")
        .to_string();
        sink.row(&[
            number(p),
            format!("Vorname{p}"),
            format!("Müller{p}"),
            birthday,
        ])
        .expect("row");
    }
    drop(sink);
    run_import(&path, &file, ImportKind::Patients);
    path
}

fn number(patient: usize) -> String {
    (10_000 + patient).to_string()
}

fn sink(path: &Path) -> CsvSink<BufWriter<File>> {
    let file = BufWriter::new(File::create(path).expect("file"));
    CsvSink::new(file, ExportEncoding::Utf8Bom, b';').expect("sink")
}

fn session(ledger: &Path, file: &Path, kind: ImportKind) -> ImportSession {
    let ledger = Ledger::open(ledger).expect("ledger");
    ImportSession::open(
        ledger.connection(),
        ImportRequest {
            path: file.to_owned(),
            kind,
            location: LOCATION.into(),
            choices: ColumnChoices::default(),
        },
    )
    .expect("session")
}

fn run_import(ledger: &Path, file: &Path, kind: ImportKind) -> u64 {
    let session = session(ledger, file, kind);
    let outcome = import(
        ledger,
        &session,
        ImportOptions::default(),
        &|_| {},
        &CancelFlag::new(),
    )
    .expect("imports");
    assert_eq!(outcome.counts.rows_left_out, 0);
    outcome.counts.rows_read
}

/// Writes `lines` billing lines spread over the patients and days.
fn write_entries(path: &Path, lines: usize) {
    let mut sink = sink(path);
    sink.row(&entry_header(false)).expect("header");
    let first = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    for i in 0..lines {
        let (entry_type, catalogue, code, cents) = CODES[i % CODES.len()];
        let patient = i % scaled(PATIENTS);
        let entry = DocumentEntry {
            id: String::new(),
            profile_id: None,
            patient_id: None,
            practitioner_id: None,
            date: Some(first + Duration::days((i / scaled(PATIENTS)) as i64)),
            entry_type: Some(entry_type.into()),
            catalogue: Some(catalogue.into()),
            code: Some(code.into()),
            quantity: Some(1.0),
            factor: Some(2.3),
            amount: Some(cents as f64 / 100.0),
            tooth: Some("36".into()),
            text: Some("Leistung".into()),
            last_modified: None,
        };
        sink.row(&entry_cells(&entry, &number(patient), false, i))
            .expect("row");
    }
}

/// Peak memory (MB) after importing a million billing lines.
fn streamed_million(dir: &Path) -> Option<f64> {
    let ledger = ledger_with_patients(dir, "streamed");
    let file = dir.join("million.csv");
    write_entries(&file, scaled(STREAMED_LINES));
    let started = Instant::now();
    let rows = run_import(&ledger, &file, ImportKind::Entries);
    println!(
        "(streamed {rows} lines in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    peak_mb()
}

/// Rows per second of a whole import of `MEASURED_LINES` billing lines.
fn billing_throughput(dir: &Path) -> f64 {
    let ledger = ledger_with_patients(dir, "throughput");
    let file = dir.join("lines.csv");
    write_entries(&file, scaled(MEASURED_LINES));
    let started = Instant::now();
    let rows = run_import(&ledger, &file, ImportKind::Entries);
    rows as f64 / started.elapsed().as_secs_f64()
}

/// Seconds for the dry-run summary of `APPOINTMENTS` appointments.
fn appointment_dry_run(dir: &Path) -> f64 {
    let ledger_path = ledger_with_patients(dir, "dry-run");
    let file = dir.join("appointments.csv");
    let mut sink = sink(&file);
    sink.row(&[
        "Pat.-Nr.",
        "Datum",
        "Uhrzeit",
        "Dauer",
        "Terminart",
        "Status",
    ])
    .expect("header");
    let first = NaiveDate::from_ymd_opt(2024, 1, 2).expect("date");
    let types = ["Erstberatung", "Kontrolle", "PZR", "Füllungstherapie"];
    let states = ["Completed", "Completed", "Completed", "Cancelled", "Booked"];
    let patients = scaled(PATIENTS);
    for i in 0..scaled(APPOINTMENTS) {
        let visit = i / patients;
        let day = first + Duration::days((visit * 35 + i % 30) as i64);
        sink.row(&[
            number(i % patients),
            day.format("%d.%m.%Y").to_string(),
            format!("{:02}:{:02}", 8 + i % 9, (i % 4) * 15),
            "30".to_owned(),
            types[visit % types.len()].to_owned(),
            states[(i + visit) % states.len()].to_owned(),
        ])
        .expect("row");
    }
    drop(sink);
    let session = session(&ledger_path, &file, ImportKind::Appointments);
    let mut ledger = Ledger::open(&ledger_path).expect("ledger");
    let (_, mapping) = load_applied(&ledger).expect("mapping");
    let ids = StageIds {
        pipeline: "p".into(),
        booked: "s-booked".into(),
        consulted: "s-consulted".into(),
        in_treatment: "s-treatment".into(),
        won: "s-won".into(),
        lost: "s-lost".into(),
    };
    let inputs = PlanInputs {
        mapping,
        stage_ids: LocationStages::uniform(ids),
        labels: Default::default(),
        appointments_enabled: true,
        now: NaiveDate::from_ymd_opt(2026, 10, 1)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .expect("now"),
    };
    let started = Instant::now();
    let summary = summarise(&mut ledger, &session, &inputs).expect("dry run");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "(dry run: {} appointments new, {} deals new)",
        summary.records.inserted,
        summary
            .hubspot
            .get(&ivoris_hubspot_sync::ledger::OutboxKind::Deal)
            .map_or(0, |e| e.new)
    );
    seconds
}

/// The process's peak resident memory in MB (Linux).
fn peak_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
