//! Chaos: a sync against a hostile Ivoris (gateway timeouts, empty 503s,
//! 500s, slow answers, records repeated across pages, billing lines missing
//! on the first ask) and a HubSpot that answers 10 % of requests with a
//! 429, 5 % with a 5xx and loses 5 % of committed writes' answers, with
//! its real rate limits of the Free tier on. The expected HubSpot state is
//! an undisturbed run's on a second sandbox with the same seed, compared by
//! unique keys (DESIGN.md §3.1, §3.2, §5). A second test drives a fault-free
//! run through the Free tier's ten-second limit to show the client's
//! limiter keeps below it.

mod engine_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use engine_support::{KeyedState, SimClock, assert_same_state, bed, keyed_state, options, run};
use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::run::{Progress, SyncRequest, sync};
use ivoris_hubspot_sync::hubspot::Tier;
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::sandbox::hubspot::FaultSettings;
use ivoris_hubspot_sync::sandbox::{FaultProfile, credentials};

const SEED: u64 = 23;
/// Runs allowed until the outbox is empty and every location went through.
const MAX_RUNS: usize = 6;

/// Another integration of the same portal: sends requests until the
/// ten-second window has only `leave` left; returns how many it sent. Runs
/// on its own thread and runtime, called from the sync's progress callback.
fn use_up_window(url: &str, leave: u32) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for sent in 1..=200 {
            let answer = client
                .get(format!("{url}/crm/v3/pipelines/deals"))
                .bearer_auth(credentials::HUBSPOT_TOKEN)
                .send()
                .await
                .expect("answer");
            assert_eq!(answer.status(), 200);
            let remaining: u32 = answer
                .headers()
                .get("x-hubspot-ratelimit-remaining")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .expect("remaining header");
            if remaining <= leave {
                return sent;
            }
        }
        panic!("the window never filled");
    })
}

async fn reference() -> KeyedState {
    let bed = bed(options(SEED)).await;
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_apis_converge_to_the_undisturbed_state_without_duplicates() {
    let expected = reference().await;

    let mut chaotic = options(SEED);
    chaotic.faults = FaultProfile::Hostile;
    chaotic.rate_limits = true;
    chaotic.tier = Tier::Free;
    let mut bed = bed(chaotic).await;
    let hubspot = bed.sandbox.hubspot.clone();
    hubspot.set_faults(FaultSettings {
        rate_limit_rate: 0.10,
        server_error_rate: 0.05,
        committed_but_lost_rate: 0.05,
        ..FaultSettings::default()
    });
    // Hostile rates as they are; slow answers stay below the client's
    // timeout so the test does not spend minutes waiting for them.
    let mut ivoris_faults = bed.sandbox.ivoris.faults();
    assert!(ivoris_faults.missing_entries_rate > 0.0 && ivoris_faults.gateway_timeout_rate > 0.0);
    ivoris_faults.slow_delay_ms = 300;
    bed.sandbox.ivoris.set_faults(ivoris_faults);

    bed.env.settings.hubspot.tier = Tier::Free;
    let clock = Arc::new(SimClock::new(hubspot.clone()));
    let tune_hubspot = bed.env.tune_hubspot.clone().expect("tuning");
    bed.env.tune_hubspot = Some(Arc::new(move |config| {
        tune_hubspot(config);
        config.clock = clock.clone();
    }));

    let mut runs = 0;
    let mut outcomes = Vec::new();
    loop {
        runs += 1;
        // The first run reads everything once; billing lines Ivoris left out
        // on that first ask are caught by a full sweep, asked for here as
        // staff would when the reconciliation looks short.
        let request = SyncRequest {
            trigger: "test".into(),
            full_sweep: runs > 1,
            ..SyncRequest::default()
        };
        let result = sync(&bed.env, &request, &|_| {}, &CancelFlag::new()).await;
        let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
        let queue = ledger.outbox_counts().expect("counts");
        assert_eq!(queue.dead(), 0, "no dead letters after run {runs}");
        let swept = matches!(&result, Ok(summary) if summary
            .locations
            .iter()
            .all(|l| l.extract.as_ref().is_some_and(|e| e.sweep_done)));
        let done = swept
            && matches!(&result, Ok(s) if s.outcome == RunOutcome::Success)
            && queue.pending() == 0;
        outcomes.push(result.map(|s| s.outcome).map_err(|e| e.to_string()));
        if done {
            break;
        }
        assert!(runs < MAX_RUNS, "no convergence: {outcomes:?}");
    }
    eprintln!("chaos converged after {runs} run(s): {outcomes:?}");
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert!(
        ledger.quarantined(None).expect("quarantine").is_empty(),
        "transport faults are retried, never quarantined"
    );

    let counters = hubspot.counters();
    eprintln!("hubspot counters: {counters:?}");
    eprintln!("ivoris counters: {:?}", bed.sandbox.ivoris.counters());
    let injected = |kind: &str| counters.faults_injected.get(kind).copied().unwrap_or(0);
    assert!(
        injected("rateLimit") > 0
            && injected("serverError") > 0
            && injected("committedButLost") > 0,
        "the faults struck: {:?}",
        counters.faults_injected
    );
    assert_eq!(
        hubspot.limit_refusals("TEN_SECONDLY_ROLLING"),
        0,
        "after every 429 the client waited: the limit itself never refused"
    );

    // Faults off for the comparison's own reads of the portal.
    hubspot.set_faults(FaultSettings::default());
    let actual = keyed_state(&hubspot, &bed.sandbox.hubspot_url).await;
    assert_same_state(&actual, &expected);
}

/// Without injected faults, when another integration has used most of the
/// Free tier's 100 requests per ten seconds just as the sync starts
/// writing, the sync needs more than the window has left: the client's
/// limiter (told by the rate headers) must hold requests back so that the
/// simulated limit never refuses one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_free_tier_limit_is_reached_and_never_overrun() {
    let expected = reference().await;
    let mut limited = options(SEED);
    limited.rate_limits = true;
    limited.tier = Tier::Free;
    let mut bed = bed(limited).await;
    let hubspot = bed.sandbox.hubspot.clone();
    bed.env.settings.hubspot.tier = Tier::Free;
    let clock = Arc::new(SimClock::new(hubspot.clone()));
    let waits = clock.clone();
    let tune_hubspot = bed.env.tune_hubspot.clone().expect("tuning");
    bed.env.tune_hubspot = Some(Arc::new(move |config| {
        tune_hubspot(config);
        config.clock = clock.clone();
    }));

    // The window is shared with the portal's other integrations: one of
    // them uses all but 15 requests of it just as the sync starts writing.
    let url = bed.sandbox.hubspot_url.clone();
    let burst = AtomicBool::new(false);
    let other_sent = AtomicU64::new(0);
    let progress = |progress: Progress| {
        if matches!(progress, Progress::Loading { .. }) && !burst.swap(true, Ordering::SeqCst) {
            let url = url.clone();
            let sent = std::thread::spawn(move || use_up_window(&url, 15))
                .join()
                .expect("other integration");
            other_sent.store(sent, Ordering::SeqCst);
        }
    };
    let request = SyncRequest {
        trigger: "test".into(),
        ..SyncRequest::default()
    };
    let summary = sync(&bed.env, &request, &progress, &CancelFlag::new())
        .await
        .expect("sync runs");
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    assert!(
        other_sent.load(Ordering::SeqCst) > 0,
        "the other integration ran"
    );
    // The run needed more than the window had left: the limiter held
    // requests back (no faults are injected, so every sleep of the client
    // is a wait for the rate window) …
    let counters = hubspot.counters();
    assert!(
        waits.slept() > Duration::ZERO,
        "the run had to wait for the ten-second window: {counters:?}"
    );
    // … and the limit never refused one.
    assert_eq!(hubspot.limit_refusals("TEN_SECONDLY_ROLLING"), 0);
    assert_eq!(hubspot.rate_limited("TEN_SECONDLY_ROLLING"), 0);
    let actual = keyed_state(&hubspot, &bed.sandbox.hubspot_url).await;
    assert_same_state(&actual, &expected);
}
