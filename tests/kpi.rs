//! The dashboard's figures against the data they come from, never against
//! the code that computes them: appointments, new patients, consultations
//! and revenue are counted straight from the sandbox's Ivoris data with
//! this test's own reading of the shipped mapping; cases per stage,
//! completed treatments and lost cases come from the deals HubSpot holds
//! after the sync.

mod engine_support;

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use engine_support::{bed, keyed_state, options, run};
use ivoris_hubspot_sync::engine::dashboard::{KpiRequest, export, kpi_report};
use ivoris_hubspot_sync::kpi::{Granularity, KpiReport, LocationFigures};
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::mapping::Stage;

/// Months back from now the report covers: the sandbox's whole history.
const MONTHS: u32 = 30;

/// A month as (year, month).
type Month = (i32, u32);

fn month_of(day: NaiveDate) -> Month {
    (day.year(), day.month())
}

/// The shipped appointment-state table, as this test reads it.
fn state_slot(raw: &str) -> usize {
    match raw {
        "Arrived" | "InTreatment" | "Completed" | "Clarified" => 0,
        "Cancelled" => 1,
        "NoShow" => 2,
        "Booked" | "Confirmed" => 3,
        _ => 4,
    }
}

/// The consultation types of the shipped appointment-type table.
fn is_consultation(label: &str) -> bool {
    matches!(
        label,
        "Erstberatung" | "Neupatient" | "Implantat-Beratung" | "KFO-Beratung"
    )
}

/// The shipped entry-type table: (counts as revenue, counts as separate).
fn counting(entry_type: &str) -> (bool, bool) {
    match entry_type {
        "lst" | "mat" | "lab" => (true, false),
        "pabg" => (false, true),
        _ => (false, false),
    }
}

fn cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

/// HubSpot's `amount` ("171.50") in cents.
fn amount_cents(text: &str) -> i64 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let negative = whole.starts_with('-');
    let whole: i64 = whole.trim_start_matches('-').parse().expect("amount");
    let fraction: i64 = format!("{fraction:0<2}")[..2].parse().expect("amount");
    let value = whole * 100 + fraction;
    if negative { -value } else { value }
}

fn period_index(report: &KpiReport, month: Month) -> Option<usize> {
    report
        .periods
        .starts
        .iter()
        .position(|start| month_of(*start) == month)
}

/// Per month of the report: what `value` says for the location.
fn by_month<T: Copy + Default>(
    report: &KpiReport,
    figures: &LocationFigures,
    value: impl Fn(&ivoris_hubspot_sync::kpi::PeriodFigures) -> T,
) -> BTreeMap<Month, T> {
    report
        .periods
        .starts
        .iter()
        .zip(&figures.periods)
        .map(|(start, p)| (month_of(*start), value(p)))
        .collect()
}

/// `expected` spread over every month of the report (zero where absent).
fn filled<T: Copy + Default>(
    report: &KpiReport,
    expected: &BTreeMap<Month, T>,
) -> BTreeMap<Month, T> {
    report
        .periods
        .starts
        .iter()
        .map(|start| {
            let month = month_of(*start);
            (month, expected.get(&month).copied().unwrap_or_default())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_figures_match_the_ivoris_data_and_the_deals_in_hubspot() {
    let bed = bed(options(23)).await;
    let summary = run(&bed.env).await;
    assert_eq!(summary.outcome, RunOutcome::Success, "{summary:?}");
    let now = (bed.env.clock)();
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let report = kpi_report(
        &ledger,
        &bed.env.settings,
        KpiRequest {
            granularity: Granularity::Month,
            periods: MONTHS,
        },
        now,
    )
    .expect("figures");
    let world = bed.sandbox.ivoris.snapshot();
    let hubspot = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    assert_eq!(report.locations.len(), world.locations.len());
    let first = report.periods.starts[0];
    assert!(
        world.locations.iter().all(|l| l
            .appointments
            .iter()
            .filter_map(|a| a.start)
            .all(|start| start.date() >= first)),
        "the report reaches back before the first appointment"
    );

    let mut checked_revenue = 0;
    for location in &world.locations {
        let figures = report
            .locations
            .iter()
            .find(|l| l.key == location.key)
            .expect("every location is in the report");
        assert_eq!(figures.name, location.name);

        // Appointments by what became of them, per month of their start.
        let mut appointments: BTreeMap<Month, [u64; 5]> = BTreeMap::new();
        let mut consultations: BTreeMap<Month, u64> = BTreeMap::new();
        let mut first_visit: BTreeMap<&str, NaiveDate> = BTreeMap::new();
        for appointment in &location.appointments {
            let (Some(start), Some(state), Some(patient)) = (
                appointment.start,
                appointment.state.as_deref(),
                appointment.patient_id.as_deref(),
            ) else {
                continue;
            };
            let slot = state_slot(state);
            appointments.entry(month_of(start.date())).or_default()[slot] += 1;
            if slot == 0 {
                let day = first_visit.entry(patient).or_insert(start.date());
                *day = (*day).min(start.date());
                if appointment
                    .type_label
                    .as_deref()
                    .is_some_and(is_consultation)
                {
                    *consultations.entry(month_of(start.date())).or_default() += 1;
                }
            }
        }
        let actual = by_month(&report, figures, |p| {
            let a = p.appointments;
            [a.attended, a.cancelled, a.no_show, a.open, a.unmapped]
        });
        assert_eq!(
            actual,
            filled(&report, &appointments),
            "{}: appointments",
            location.key
        );
        assert!(
            actual.values().map(|a| a[0]).sum::<u64>() > 50,
            "{}: enough appointments to mean something",
            location.key
        );
        let mut new_patients: BTreeMap<Month, u64> = BTreeMap::new();
        for day in first_visit.values() {
            *new_patients.entry(month_of(*day)).or_default() += 1;
        }
        assert_eq!(
            by_month(&report, figures, |p| p.new_patients),
            filled(&report, &new_patients),
            "{}: new patients",
            location.key
        );
        assert_eq!(
            by_month(&report, figures, |p| p.consultations),
            filled(&report, &consultations),
            "{}: consultations",
            location.key
        );

        // Revenue and separate lines per month of the line's date.
        let mut revenue: BTreeMap<Month, (i64, i64)> = BTreeMap::new();
        for entry in &location.entries {
            let (Some(date), Some(kind), Some(amount)) =
                (entry.date, entry.entry_type.as_deref(), entry.amount)
            else {
                continue;
            };
            let (counts, separate) = counting(kind);
            let slot = revenue.entry(month_of(date)).or_default();
            if counts {
                slot.0 += cents(amount);
            }
            if separate {
                slot.1 += cents(amount);
            }
        }
        let actual = by_month(&report, figures, |p| (p.revenue_cents, p.separate_cents));
        assert_eq!(
            actual,
            filled(&report, &revenue),
            "{}: revenue",
            location.key
        );
        checked_revenue += actual.values().map(|r| r.0).sum::<i64>();

        // Stages, completed treatments and lost cases: HubSpot's deals.
        let deals: Vec<&BTreeMap<String, String>> = hubspot
            .deals
            .values()
            .filter(|d| d.get("praxis_standort").map(String::as_str) == Some(location.key.as_str()))
            .collect();
        assert!(!deals.is_empty());
        // The keyed state names a stage „pipeline / stage“.
        let in_pipeline = |stage: Stage| format!("Patientenreise / {}", report.stage_label(stage));
        for stage in Stage::ALL {
            let label = in_pipeline(stage);
            let in_hubspot = deals
                .iter()
                .filter(|d| d.get("dealstage") == Some(&label))
                .count() as u64;
            assert_eq!(
                figures.funnel.count(stage),
                in_hubspot,
                "{}: deals in „{label}“",
                location.key
            );
        }
        let mut completed: BTreeMap<Month, (u64, i64)> = BTreeMap::new();
        let mut lost: BTreeMap<Month, u64> = BTreeMap::new();
        for deal in &deals {
            let Some(closed) = deal
                .get("closedate")
                .filter(|d| !d.is_empty())
                .and_then(|d| NaiveDate::parse_from_str(&d[..10], "%Y-%m-%d").ok())
            else {
                continue;
            };
            let month = month_of(closed);
            if period_index(&report, month).is_none() {
                continue;
            }
            let stage = deal.get("dealstage").cloned().unwrap_or_default();
            if stage == in_pipeline(Stage::Won) {
                let slot = completed.entry(month).or_default();
                slot.0 += 1;
                slot.1 += deal.get("amount").map_or(0, |a| amount_cents(a));
            } else if stage == in_pipeline(Stage::Lost) {
                *lost.entry(month).or_default() += 1;
            }
        }
        assert_eq!(
            by_month(&report, figures, |p| (
                p.completed_treatments,
                p.completed_revenue_cents
            )),
            filled(&report, &completed),
            "{}: completed treatments and their revenue",
            location.key
        );
        assert!(completed.values().map(|c| c.0).sum::<u64>() > 0);
        assert_eq!(
            by_month(&report, figures, |p| p.lost_cases),
            filled(&report, &lost),
            "{}: lost cases",
            location.key
        );
    }

    // The chain's total is the sum of its locations.
    let total = report.total("Alle Standorte");
    let total_revenue: i64 = total.periods.iter().map(|p| p.revenue_cents).sum();
    assert_eq!(total_revenue, checked_revenue);
    assert!(total_revenue > 0);

    // The CSV files open in German Excel: BOM, `;`, the total in German
    // notation, one row per location and month plus the total's.
    let dir = tempfile::tempdir().expect("temp dir");
    let files = export(&report, dir.path(), true).expect("export");
    assert_eq!(files.len(), 2);
    let bytes = std::fs::read(&files[0]).expect("period file");
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with BOM");
    let text = String::from_utf8(bytes[3..].to_vec()).expect("UTF-8");
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    let header: Vec<&str> = lines[0].split(';').collect();
    assert_eq!(header[0], "Standort");
    assert_eq!(
        lines.len() - 1,
        (world.locations.len() + 1) * MONTHS as usize,
        "a row per location and month, and the total's"
    );
    let revenue_column = header
        .iter()
        .position(|h| *h == "Umsatz €")
        .expect("revenue column");
    let total_rows: i64 = lines[1..]
        .iter()
        .map(|line| line.split(';').collect::<Vec<_>>())
        .filter(|cells| cells[0] == "Alle Standorte")
        .map(|cells| {
            let german = cells[revenue_column].replace('.', "").replace(',', ".");
            amount_cents(&german)
        })
        .sum();
    assert_eq!(total_rows, checked_revenue);
}

/// `kpi` of the real binary on a synced ledger: the table, the CSV files,
/// and a clear refusal of an unknown location.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kpi_command_prints_the_figures_and_writes_the_csv_files() {
    let bed = bed(options(29)).await;
    run(&bed.env).await;
    let config = bed.dir.path().join("settings.toml");
    let mut settings = bed.env.settings.clone();
    settings.sync.simulated_now = Some(bed.sandbox.ivoris.now());
    settings.save(&config).expect("settings written");
    let kpi = |args: &[&str]| {
        std::process::Command::new(engine_support::BIN)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(bed.dir.path().join("data"))
            .arg("kpi")
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .expect("binary runs")
    };
    let out_dir = bed.dir.path().join("export");
    let output = kpi(&[
        "--weeks",
        "--periods",
        "4",
        "--location",
        "leipzig",
        "--csv",
        out_dir.to_str().expect("path"),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let week = (bed.env.clock)().date().iso_week();
    let this_week = format!("KW {:02}/{}", week.week(), week.year());
    assert!(stdout.contains("Zahnwerk Leipzig"), "{stdout}");
    assert!(stdout.contains(&this_week), "{stdout}");
    assert!(
        !stdout.contains("Zahnarztpraxis Magdeburg"),
        "only the chosen location: {stdout}"
    );
    for name in ["kennzahlen_wochen.csv", "faelle_je_phase.csv"] {
        assert!(out_dir.join(name).exists(), "{name} written");
    }

    let output = kpi(&["--location", "nowhere"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Standort „nowhere“ ist im Ledger nicht bekannt"),
        "{stderr}"
    );
}

/// Patients observed on several threads, each part folded on its own and
/// merged, give the same figures as one thread over all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_are_the_same_on_one_thread_and_on_several() {
    use ivoris_hubspot_sync::engine::planner::observe_location;
    use ivoris_hubspot_sync::kpi::Periods;
    use ivoris_hubspot_sync::mapping::Mapping;

    let bed = bed(options(31)).await;
    run(&bed.env).await;
    let now = (bed.env.clock)();
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let mapping = Mapping::defaults();
    let periods = Periods::ending(Granularity::Week, now.date(), 104);
    let figures = |threads: usize| {
        let parts = observe_location(
            &ledger,
            "magdeburg",
            &mapping,
            now,
            threads,
            || LocationFigures::new("magdeburg", "Magdeburg", &periods),
            |figures, patient| figures.add_patient(patient, &periods, &mapping),
        )
        .expect("observed");
        let mut merged = LocationFigures::new("magdeburg", "Magdeburg", &periods);
        for part in &parts {
            merged.absorb(part);
        }
        (parts.len(), merged)
    };
    let (one_part, alone) = figures(1);
    assert_eq!(one_part, 1);
    assert!(alone.sum().appointments.total() > 0);
    for threads in [2, 3, 7] {
        let (parts, together) = figures(threads);
        assert_eq!(parts, threads, "one part per thread");
        assert_eq!(together, alone, "{threads} threads");
    }
}
