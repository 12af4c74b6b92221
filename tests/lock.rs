//! One writer per ledger (DESIGN.md §3.6): a second sync on a ledger that
//! another sync holds is refused with a message naming the holder, and
//! leaves no trace — no run recorded, nothing read, nothing written.
//! `retry` changes the ledger too and is refused the same way.

mod engine_support;

use std::process::Stdio;
use std::time::Duration;

use engine_support::{
    assert_same_state, bed, bin_command, keyed_state, options, run, run_binary, sync_command,
    wait_until,
};
use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::run::{SyncError, SyncRequest, sync};
use ivoris_hubspot_sync::ledger::lock::{LockError, WriterLock};
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::sandbox::hubspot::FaultSettings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_on_a_held_ledger_is_refused_and_changes_nothing() {
    let bed = bed(options(31)).await;
    let holder = WriterLock::acquire(&bed.env.ledger_path, "GUI").expect("lock");
    let request = SyncRequest {
        trigger: "schedule".into(),
        ..SyncRequest::default()
    };
    let error = sync(&bed.env, &request, &|_| {}, &CancelFlag::new())
        .await
        .expect_err("refused");
    let text = error.to_string();
    assert!(
        matches!(&error, SyncError::Locked(LockError::Held { holder: Some(h) })
            if h.pid == std::process::id() && h.command == "GUI"),
        "{error:?}"
    );
    assert!(
        text.contains("Eine andere Synchronisation") && text.contains("Another sync"),
        "{text}"
    );
    assert_eq!(bed.sandbox.hubspot.write_calls(), 0);
    assert_eq!(bed.sandbox.hubspot.counters().requests.len(), 0);
    assert!(
        bed.sandbox.ivoris.counters().is_empty(),
        "Ivoris was not asked"
    );
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert!(
        ledger.recent_runs(10).expect("runs").is_empty(),
        "no run recorded"
    );
    drop(ledger);

    drop(holder);
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "free again after release"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_process_exits_with_4_naming_the_first() {
    // Reference: HubSpot after one undisturbed run, and what it wrote.
    let reference = bed(options(37)).await;
    let expected_written = run(&reference.env).await.counts.written;
    let expected_state =
        keyed_state(&reference.sandbox.hubspot, &reference.sandbox.hubspot_url).await;

    let bed = bed(options(37)).await;
    // Every HubSpot answer takes two seconds until the second run has been
    // refused: the first holds the lock all that time.
    bed.sandbox.hubspot.set_faults(FaultSettings {
        slow_rate: 1.0,
        slow_delay_ms: 2_000,
        ..FaultSettings::default()
    });
    let info = bed.dir.path().join("ledger.sqlite.lock.info");
    let mut first = sync_command(&bed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("first sync starts");
    let first_pid = first.id();
    // The holder has written who it is: it holds the lock.
    assert!(
        wait_until(Duration::from_secs(60), || {
            std::fs::read_to_string(&info).is_ok_and(|t| t.contains(&first_pid.to_string()))
        })
        .await,
        "the first sync took the lock"
    );

    let second = run_binary(sync_command(&bed)).await;
    assert!(
        first.try_wait().expect("status").is_none(),
        "the first was still running while the second was refused"
    );
    assert_eq!(second.status.code(), Some(4), "{second:?}");
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(
        message.contains("Eine andere Synchronisation")
            && message.contains("Another sync")
            && message.contains(&format!("Prozess {first_pid}"))
            && message.contains(&format!("process {first_pid}")),
        "{message}"
    );

    bed.sandbox.hubspot.set_faults(FaultSettings::default());
    let status = tokio::task::spawn_blocking(move || first.wait().expect("first ends"))
        .await
        .expect("joined");
    assert_eq!(status.code(), Some(0));

    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let runs = ledger.recent_runs(10).expect("runs");
    assert_eq!(runs.len(), 1, "only the first run is recorded: {runs:?}");
    // Locations are read at the same time, so how the records fell into
    // batches may differ from the reference; the records may not.
    assert_eq!(
        runs[0].counts.written, expected_written,
        "every HubSpot write belongs to the one run"
    );
    let state = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    assert_same_state(&state, &expected_state);
}

/// Issue 11 point 5: `retry` while another process writes to the ledger
/// exits with 4 naming the holder, and changes nothing; free again, it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_on_a_held_ledger_exits_with_4_naming_the_holder() {
    let bed = bed(options(39)).await;
    Ledger::open(&bed.env.ledger_path).expect("ledger");
    let holder = WriterLock::acquire(&bed.env.ledger_path, "sync (schedule)").expect("lock");
    let refused = run_binary(bin_command(&bed, "retry")).await;
    assert_eq!(refused.status.code(), Some(4), "{refused:?}");
    let message = String::from_utf8_lossy(&refused.stderr);
    let pid = std::process::id();
    assert!(
        message.contains("Eine andere Synchronisation")
            && message.contains("Another sync")
            && message.contains("sync (schedule)")
            && message.contains(&format!("process {pid}")),
        "{message}"
    );
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert!(
        ledger.audit_log(None, 10).expect("audit").is_empty(),
        "nothing recorded"
    );
    drop(ledger);

    drop(holder);
    let done = run_binary(bin_command(&bed, "retry")).await;
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert!(
        ledger
            .audit_log(None, 10)
            .expect("audit")
            .iter()
            .any(|e| e.entry.action == "outbox.retry"),
        "the retry is audited once the ledger is free"
    );
}
