//! The engine on its own thread, as the desktop app drives it: commands in,
//! events out, a waker called for every event, a second sync refused while
//! one runs, and cancellation.

mod engine_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use engine_support::{bed, options};
use ivoris_hubspot_sync::engine::handle::{Command, EngineHandle, Event};
use ivoris_hubspot_sync::engine::run::SyncRequest;
use ivoris_hubspot_sync::ledger::RunOutcome;
use ivoris_hubspot_sync::sandbox::ivoris::IvorisSim;

/// Drains events until one matches or the deadline passes.
fn wait_for(handle: &EngineHandle, seen: &mut Vec<Event>, done: impl Fn(&Event) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        for event in handle.drain() {
            let hit = done(&event);
            seen.push(event);
            if hit {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn request() -> SyncRequest {
    SyncRequest {
        trigger: "manual".into(),
        ..SyncRequest::default()
    }
}

#[test]
fn a_sync_reports_progress_and_its_result_and_a_second_one_is_refused() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(21)));
    let wakes = Arc::new(AtomicUsize::new(0));
    let counter = wakes.clone();
    let handle = EngineHandle::start(
        bed.env.clone(),
        Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .expect("engine starts");

    handle.send(Command::Sync(request()));
    handle.send(Command::Sync(request()));
    let mut seen = Vec::new();
    assert!(
        wait_for(&handle, &mut seen, |e| matches!(e, Event::Finished(_))),
        "the sync finishes"
    );
    assert!(
        seen.iter().any(|e| matches!(e, Event::Busy)),
        "the second sync is refused while one runs"
    );
    assert!(
        seen.iter().any(|e| matches!(e, Event::Progress(_))),
        "progress is reported"
    );
    let Some(Event::Finished(result)) = seen.last() else {
        panic!("last event is the result")
    };
    let summary = result.as_ref().as_ref().expect("sync succeeded");
    assert_eq!(summary.outcome, RunOutcome::Success);
    assert!(summary.counts.written > 0);
    assert!(
        wakes.load(Ordering::SeqCst) >= seen.len(),
        "every event woke the GUI"
    );
}

#[test]
fn cancel_stops_a_running_sync() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(22)));
    // Slow Ivoris answers keep the run busy long enough to cancel it.
    slow_down(&bed.sandbox.ivoris);
    let handle = EngineHandle::start(bed.env.clone(), Arc::new(|| {})).expect("engine starts");
    handle.send(Command::Sync(request()));
    let mut seen = Vec::new();
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::Progress(_)
    )));
    handle.send(Command::Cancel);
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::Finished(_)
    )));
    let Some(Event::Finished(result)) = seen.last() else {
        panic!("last event is the result")
    };
    assert_eq!(
        result
            .as_ref()
            .as_ref()
            .expect("a cancelled run still reports")
            .outcome,
        RunOutcome::Cancelled
    );
}

fn slow_down(sim: &IvorisSim) {
    let mut faults = sim.faults();
    faults.slow_rate = 1.0;
    faults.slow_delay_ms = 50;
    sim.set_faults(faults);
}
