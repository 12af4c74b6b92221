//! Nothing lost, nothing doubled when the process dies (DESIGN.md §3.2):
//! the real binary's `sync` is killed with SIGKILL again and again — while
//! it reads Ivoris, while it plans, while it writes to HubSpot — and
//! restarted each time; a last undisturbed run then leaves HubSpot exactly
//! as one undisturbed run on a second sandbox with the same seed does, with
//! no duplicates and an empty outbox.

mod engine_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine_support::{
    Bed, assert_same_state, bed, keyed_state, options, run, run_binary, sync_command,
};
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};

const SEED: u64 = 47;

/// When to kill a run, counted from its start.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// After this many Ivoris requests (extraction).
    IvorisRequests(u64),
    /// As soon as the run reports that it plans its n-th location.
    Planning(usize),
    /// After this many HubSpot batch writes (loading).
    HubSpotWrites(u64),
}

/// Where a run was when it was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Extraction,
    Planning,
    Loading,
}

/// HubSpot write calls of the load step (provisioning writes come first,
/// in every run, and are not counted).
fn load_writes(bed: &Bed) -> u64 {
    bed.sandbox
        .hubspot
        .counters()
        .requests
        .iter()
        .filter(|(template, _)| template.contains("/batch/"))
        .filter(|(template, _)| !template.ends_with("/batch/read"))
        .map(|(_, count)| count)
        .sum()
}

fn ivoris_requests(bed: &Bed) -> u64 {
    bed.sandbox
        .ivoris
        .counters()
        .values()
        .flat_map(|by_status| by_status.values())
        .sum()
}

/// The run's stderr lines, collected by a reader thread.
fn collect_lines(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().expect("stderr piped");
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().expect("lines").push(line);
        }
    });
    lines
}

/// Starts a run and kills it at `point`; returns the phase it was killed
/// in, or `None` when it finished first (then it must have succeeded).
async fn kill_at(bed: &Bed, point: KillPoint) -> Option<Phase> {
    let ivoris_before = ivoris_requests(bed);
    let writes_before = load_writes(bed);
    let mut child = sync_command(bed)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sync starts");
    let lines = collect_lines(&mut child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("status") {
            assert_eq!(
                status.code(),
                Some(0),
                "an unkilled run succeeds: {:?}",
                lines.lock().expect("lines")
            );
            return None;
        }
        let seen = lines.lock().expect("lines").clone();
        let planned = seen
            .iter()
            .filter(|l| l.contains("planen / planning"))
            .count();
        let writes = load_writes(bed) - writes_before;
        let loading = seen.iter().any(|l| l.contains("schreiben / writing"));
        let due = match point {
            KillPoint::IvorisRequests(n) => ivoris_requests(bed) - ivoris_before >= n,
            KillPoint::Planning(n) => planned >= n,
            KillPoint::HubSpotWrites(n) => writes >= n,
        };
        if due {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
            // Loading overlaps extraction and planning (a location's rows go
            // out while the next is read), so a kill right after a planning
            // line lands in planning even when writes went out before: the
            // planner runs synchronously once it has said so.
            let phase = if matches!(point, KillPoint::Planning(_)) {
                Phase::Planning
            } else if loading || writes > 0 {
                Phase::Loading
            } else {
                Phase::Extraction
            };
            return Some(phase);
        }
        assert!(
            Instant::now() < deadline,
            "run neither ended nor reached {point:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_resume_to_the_undisturbed_state() {
    let reference = bed(options(SEED)).await;
    let summary = run(&reference.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    let expected = keyed_state(&reference.sandbox.hubspot, &reference.sandbox.hubspot_url).await;

    let bed = bed(options(SEED)).await;
    // Spread over one run: Ivoris reading (a restart resumes from the
    // cursors, so later thresholds reach further), planning, and loading.
    let points = [
        KillPoint::IvorisRequests(3),
        KillPoint::IvorisRequests(40),
        KillPoint::IvorisRequests(120),
        KillPoint::Planning(1),
        KillPoint::IvorisRequests(100),
        KillPoint::Planning(2),
        KillPoint::Planning(3),
        KillPoint::HubSpotWrites(1),
        KillPoint::HubSpotWrites(2),
        KillPoint::HubSpotWrites(3),
        KillPoint::HubSpotWrites(4),
        KillPoint::HubSpotWrites(6),
        KillPoint::HubSpotWrites(8),
    ];
    let mut kills = Vec::new();
    for point in points {
        let phase = kill_at(&bed, point).await;
        kills.push((point, phase));
    }
    eprintln!("kills: {kills:?}");
    let killed: Vec<Phase> = kills.iter().filter_map(|(_, phase)| *phase).collect();
    assert!(killed.len() >= 10, "{kills:?}");
    for phase in [Phase::Extraction, Phase::Planning, Phase::Loading] {
        assert!(killed.contains(&phase), "a kill while {phase:?}: {kills:?}");
    }

    // The last run is left alone.
    let output = run_binary(sync_command(&bed)).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");

    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let queue = ledger.outbox_counts().expect("counts");
    assert_eq!((queue.pending(), queue.dead()), (0, 0), "outbox empty");
    // The history shows the killed runs as interrupted, not as running.
    let history = ledger.recent_runs(100).expect("runs");
    assert_eq!(history.len(), kills.len() + 1);
    let interrupted = history
        .iter()
        .filter(|r| {
            r.outcome == Some(RunOutcome::Failed)
                && r.message
                    .as_deref()
                    .is_some_and(|m| m.contains("Interrupted"))
        })
        .count();
    assert_eq!(interrupted, killed.len(), "{history:#?}");
    assert_eq!(history[0].outcome, Some(RunOutcome::Success));
    drop(ledger);
    let actual = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    assert_same_state(&actual, &expected);
}
