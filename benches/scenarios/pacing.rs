//! The pacing comparison: three ways of spacing Ivoris requests, side by
//! side against the in-process sandbox on 127.0.0.1, each asking the same
//! number of patients for their billing lines (`DocumentEntries`, one
//! request in flight per installation):
//!
//! - (a) a fixed pause of 100 ms after every answer (the earlier default),
//! - (b) no pause at all (as fast as answers come),
//! - (c) adaptive pacing (`ivoris::pacing`, as the sync uses it).
//!
//! On a healthy server (every answer takes 5 ms) it prints requests per
//! second for (a), (b) and (c) and PASS/FAIL for "adaptive ≥ 3 × fixed
//! pause"; on a fragile server (same latency, 504s rising above 25 requests
//! per second and installation) requests per second and 504s for (b) and
//! (c) and PASS/FAIL for "adaptive has fewer 504s than no pause".
//!
//! Every client has a sandbox of its own, so the server's counters are the
//! client's, and all run at once; the fixed pause is the long pole (about
//! 1,000 × 105 ms). Retries are the shipped ones; the circuit breaker is
//! off, because its two-minute cool-down would measure the breaker, not the
//! pacing. `PACING_ASKS=N` changes the number of asks per client.
//!
//! Run with `cargo bench --bench pacing`; `cargo bench --bench sync` runs
//! it too and adds its verdicts to the sync table.

use std::time::{Duration, Instant};

use ivoris_hubspot_sync::ivoris::client::{
    BreakerPolicy, IvorisClient, IvorisClientConfig, RetryPolicy, route,
};
use ivoris_hubspot_sync::ivoris::pacing::{Pacing, PacingPolicy};
use ivoris_hubspot_sync::sandbox::ivoris::faults::DEFAULT_HEALTHY_RATE;
use ivoris_hubspot_sync::sandbox::{Sandbox, SandboxOptions, Size, credentials};
use ivoris_hubspot_sync::secrets::Secret;

/// Asks per client unless `PACING_ASKS` says otherwise.
const DEFAULT_ASKS: usize = 1_000;
/// How long every simulated answer takes.
const LATENCY: Duration = Duration::from_millis(5);
/// The fixed pause of earlier versions.
const FIXED_PAUSE: Duration = Duration::from_millis(100);
/// Adaptive pacing must reach this multiple of the fixed pause's rate.
const MIN_SPEED_UP: f64 = 3.0;

/// One client's run.
pub struct Measured {
    /// Which client on which server, for the table.
    label: String,
    /// Asks made (answered or failed after retries).
    asks: usize,
    /// Asks that failed after all retries.
    failed_asks: u64,
    /// Wall time of all asks.
    elapsed: Duration,
    /// HTTP requests the server answered (every attempt).
    requests: u64,
    /// Of those, answered 504.
    gateway_timeouts: u64,
    /// The adaptive pacer's rate at the end, and its slowdowns.
    pace: Option<(f64, u64)>,
}

impl Measured {
    fn asks_per_second(&self) -> f64 {
        self.asks as f64 / self.elapsed.as_secs_f64()
    }

    fn share_504(&self) -> f64 {
        self.gateway_timeouts as f64 / self.requests.max(1) as f64
    }
}

/// Asks per client: `PACING_ASKS`, else [`DEFAULT_ASKS`].
pub fn asks() -> usize {
    std::env::var("PACING_ASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ASKS)
}

/// The five runs, all at once: (a), (b), (c) healthy; (b), (c) fragile.
pub async fn compare(asks: usize) -> Vec<Measured> {
    let adaptive = Pacing::Adaptive(PacingPolicy::default());
    let plan = [
        (
            "(a) fixed pause 100 ms, healthy",
            false,
            Pacing::FixedPause(FIXED_PAUSE),
        ),
        (
            "(b) no pause, healthy",
            false,
            Pacing::FixedPause(Duration::ZERO),
        ),
        ("(c) adaptive, healthy", false, adaptive),
        (
            "(b) no pause, fragile",
            true,
            Pacing::FixedPause(Duration::ZERO),
        ),
        ("(c) adaptive, fragile", true, adaptive),
    ];
    let mut tasks = Vec::new();
    for (label, fragile, pacing) in plan {
        tasks.push(tokio::spawn(run_one(
            label.to_owned(),
            fragile,
            pacing,
            asks,
        )));
    }
    let mut runs = Vec::new();
    for task in tasks {
        runs.push(task.await.expect("run"));
    }
    runs
}

/// One client against a sandbox of its own.
async fn run_one(label: String, fragile: bool, pacing: Pacing, asks: usize) -> Measured {
    let sandbox = Sandbox::start(SandboxOptions {
        size: Size::Small,
        rate_limits: false,
        ivoris_latency: LATENCY,
        ivoris_fragile: fragile,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox");
    let location = &sandbox.locations[0];
    let patients: Vec<String> = sandbox.ivoris.with_world(|w| {
        w.locations[0]
            .patients
            .iter()
            .map(|p| p.id.clone())
            .collect()
    });
    let client = IvorisClient::new(config(&sandbox, pacing)).expect("client");
    let started = Instant::now();
    let mut failed_asks = 0;
    for patient in patients.iter().cycle().take(asks) {
        let asked = client
            .document_entries(patient, Some(&location.profile_id), None, None)
            .await;
        failed_asks += u64::from(asked.is_err());
    }
    let elapsed = started.elapsed();
    let answered = sandbox
        .ivoris
        .counters()
        .remove(&format!("GET {}", route::DOCUMENT_ENTRIES))
        .unwrap_or_default();
    let report = client.pace();
    let measured = Measured {
        label,
        asks,
        failed_asks,
        elapsed,
        requests: answered.values().sum(),
        gateway_timeouts: answered.get(&504).copied().unwrap_or(0),
        pace: report
            .requests_per_second
            .map(|rate| (rate, report.slowdowns)),
    };
    sandbox.shutdown().await;
    measured
}

fn config(sandbox: &Sandbox, pacing: Pacing) -> IvorisClientConfig {
    let location = &sandbox.locations[0];
    IvorisClientConfig {
        location_key: location.key.clone(),
        base_url: location.ivoris_url.clone(),
        user: credentials::IVORIS_USER.to_owned(),
        password: Secret::new(credentials::IVORIS_PASSWORD),
        app: credentials::IVORIS_APP.to_owned(),
        app_version: credentials::IVORIS_APP_VERSION.to_owned(),
        api_key: Secret::new(credentials::IVORIS_API_KEY),
        timeout: ivoris_hubspot_sync::ivoris::client::DEFAULT_TIMEOUT,
        retry: RetryPolicy::default(),
        breaker: BreakerPolicy {
            threshold: u32::MAX,
            ..BreakerPolicy::default()
        },
        pacing,
    }
}

pub fn print_runs(runs: &[Measured]) {
    println!(
        "\nserver: {} ms per answer; fragile: 504s above {DEFAULT_HEALTHY_RATE} requests/s per installation",
        LATENCY.as_millis()
    );
    println!(
        "\n{:<34} {:>6} {:>8} {:>10} {:>9} {:>7} {:>7} {:>22}",
        "client, server", "asks", "time s", "asks/s", "requests", "504s", "share", "pacer at end"
    );
    println!("{}", "-".repeat(110));
    for run in runs {
        let pace = run.pace.map_or("-".to_owned(), |(rate, slowdowns)| {
            format!("{rate:.1}/s, {slowdowns} slowdowns")
        });
        println!(
            "{:<34} {:>6} {:>8.1} {:>10.1} {:>9} {:>7} {:>6.1}% {:>22}",
            run.label,
            run.asks,
            run.elapsed.as_secs_f64(),
            run.asks_per_second(),
            run.requests,
            run.gateway_timeouts,
            run.share_504() * 100.0,
            pace
        );
        if run.failed_asks > 0 {
            println!(
                "{:<34} {} asks failed after all retries",
                "", run.failed_asks
            );
        }
    }
}

/// The two targets as (what, measured, pass): adaptive at least
/// [`MIN_SPEED_UP`] × the fixed pause on a healthy server, and fewer 504s
/// than no pause on a fragile one.
pub fn verdicts(runs: &[Measured]) -> Vec<(String, String, bool)> {
    let [fixed, _, adaptive, no_pause, adaptive_fragile] = runs else {
        return Vec::new();
    };
    let speed_up = adaptive.asks_per_second() / fixed.asks_per_second();
    vec![
        (
            format!("pacing, healthy Ivoris: adaptive ≥ {MIN_SPEED_UP} × fixed pause"),
            format!(
                "{:.1} vs {:.1} asks/s = {speed_up:.1} ×",
                adaptive.asks_per_second(),
                fixed.asks_per_second()
            ),
            speed_up >= MIN_SPEED_UP,
        ),
        (
            "pacing, fragile Ivoris: adaptive fewer 504s than no pause".to_owned(),
            format!(
                "{} ({:.1} %, {:.1} asks/s) vs {} ({:.1} %, {:.1} asks/s)",
                adaptive_fragile.gateway_timeouts,
                adaptive_fragile.share_504() * 100.0,
                adaptive_fragile.asks_per_second(),
                no_pause.gateway_timeouts,
                no_pause.share_504() * 100.0,
                no_pause.asks_per_second()
            ),
            adaptive_fragile.gateway_timeouts < no_pause.gateway_timeouts,
        ),
    ]
}

/// Prints [`verdicts`] with PASS/FAIL.
pub fn print_verdicts(runs: &[Measured]) {
    println!();
    for (what, measured, pass) in verdicts(runs) {
        println!("{what}: {measured}  {}", verdict(pass));
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}
