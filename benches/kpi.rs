//! The KPI dashboard over a realistic ledger: every location of the
//! `large` sandbox synced (rate limits off), then the figures computed as
//! the Dashboard asks for them — 12 and 36 months, 13 and 52 weeks —
//! median of 5, and the Dashboard's median frame with the figures loaded
//! (CPU-only kittest harness, 200 frames).
//!
//! Run with `cargo bench --bench kpi`. It prints each number with its
//! target and PASS/FAIL. The sync takes minutes; with `KPI_BENCH_DIR=DIR`
//! the ledger is kept in `DIR` and a later run measures on it again
//! without syncing.

mod support;

use std::time::Instant;

use ivoris_hubspot_sync::engine::dashboard::{KpiRequest, kpi_report};
use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::run::{SyncRequest, sync};
use ivoris_hubspot_sync::gui::Panel;
use ivoris_hubspot_sync::kpi::Granularity;
use ivoris_hubspot_sync::ledger::Ledger;
use ivoris_hubspot_sync::sandbox::{FaultProfile, Sandbox, SandboxOptions, Size};
use support::{app_harness, median_frame_ms, sandbox_environment, wait};

/// Seed of the synthetic world (the sync benchmark's).
const SEED: u64 = 42;
/// Computations per request; the median is reported.
const RUNS: usize = 5;
/// Frames measured.
const FRAMES: usize = 200;
/// The dashboard recomputes every minute: a refresh must stay a small
/// share of that, also for the whole chain.
const MAX_COMPUTE_MS: f64 = 3_000.0;
const MAX_FRAME_MS: f64 = 8.0;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let started = Instant::now();
    let sandbox = runtime
        .block_on(Sandbox::start(SandboxOptions {
            seed: SEED,
            size: Size::Large,
            faults: FaultProfile::None,
            rate_limits: false,
            ..SandboxOptions::default()
        }))
        .expect("sandbox");
    let temp = tempfile::tempdir().expect("temp dir");
    let kept = std::env::var_os("KPI_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = kept.clone().unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir).expect("bench dir");
    let env = sandbox_environment(&sandbox, dir.join("ledger.sqlite"));
    let synced = kept.is_some()
        && Ledger::open(&env.ledger_path)
            .and_then(|ledger| ledger.recent_runs(1))
            .is_ok_and(|runs| !runs.is_empty());
    if synced {
        println!("ledger kept in {} is measured again", dir.display());
    } else {
        let summary = runtime
            .block_on(sync(
                &env,
                &SyncRequest {
                    trigger: "bench".into(),
                    ..SyncRequest::default()
                },
                &|_| {},
                &CancelFlag::new(),
            ))
            .expect("sync");
        println!(
            "sandbox `large` synced in {:.1} s ({:?})",
            started.elapsed().as_secs_f64(),
            summary.outcome
        );
    }
    let ledger = Ledger::open(&env.ledger_path).expect("ledger");
    let counts = ledger.counts(None).expect("counts");
    let cases: usize = sandbox
        .locations
        .iter()
        .map(|l| ledger.cases(&l.key).expect("cases").len())
        .sum();
    println!(
        "ledger: {} locations, {} patients, {} appointments, {} billing lines, {cases} cases",
        sandbox.locations.len(),
        counts.patients,
        counts.appointments,
        counts.document_entries
    );

    let now = (env.clock)();
    let mut rows = Vec::new();
    for (granularity, periods) in [
        (Granularity::Month, 12),
        (Granularity::Month, 36),
        (Granularity::Week, 13),
        (Granularity::Week, 52),
    ] {
        let request = KpiRequest {
            granularity,
            periods,
        };
        let mut times: Vec<f64> = (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                let report = kpi_report(&ledger, &env.settings, request, now).expect("figures");
                assert_eq!(report.periods.starts.len(), periods as usize);
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let unit = match granularity {
            Granularity::Week => "weeks",
            Granularity::Month => "months",
        };
        rows.push((
            format!("figures of all locations, {periods} {unit}"),
            times[RUNS / 2],
            MAX_COMPUTE_MS,
        ));
    }
    drop(ledger);

    let mut harness = app_harness(env, Panel::Dashboard);
    assert!(
        wait(&mut harness, |app| matches!(
            &app.model.kpi.report,
            Some(Ok(_))
        ) && !app.model.kpi.loading),
        "the figures arrived"
    );
    rows.push((
        "Dashboard: median frame (200)".to_owned(),
        median_frame_ms(&mut harness, FRAMES),
        MAX_FRAME_MS,
    ));

    println!();
    println!("{:<44} {:>12} {:>10}  result", "measure", "value", "target");
    for (name, value, target) in rows {
        let verdict = if value <= target { "PASS" } else { "FAIL" };
        println!("{name:<44} {value:>9.2} ms {target:>7.0} ms  {verdict}");
    }
}
