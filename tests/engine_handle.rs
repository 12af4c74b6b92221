//! The engine on its own thread, as the desktop app drives it: commands in,
//! events out, a waker called for every event, a second sync refused while
//! one runs, and cancellation.

mod engine_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use engine_support::{bed, options, wait_for};
use ivoris_hubspot_sync::engine::handle::{Command, EngineHandle, Event};
use ivoris_hubspot_sync::engine::run::SyncRequest;
use ivoris_hubspot_sync::ledger::{OutboxFilter, RunOutcome};
use ivoris_hubspot_sync::sandbox::ivoris::IvorisSim;

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

#[test]
fn queries_answer_with_the_overview_queue_pages_runs_and_dead_letter_actions() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(23)));
    let handle = EngineHandle::start(bed.env.clone(), Arc::new(|| {})).expect("engine starts");
    let mut seen = Vec::new();
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::Ready(_)
    )));
    handle.send(Command::Sync(request()));
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::Finished(_)
    )));

    handle.send(Command::Refresh);
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::Overview(_)
    )));
    let Some(Event::Overview(overview)) = seen.last() else {
        panic!("overview")
    };
    assert_eq!(overview.locations.len(), bed.env.settings.locations.len());
    for location in &overview.locations {
        assert!(location.counts.patients > 0, "{}", location.key);
        assert!(location.confirmed.contacts > 0, "{}", location.key);
        assert!(location.cases > 0, "{}", location.key);
        assert_eq!(location.dead, 0);
    }
    assert_eq!(overview.runs.len(), 1);

    handle.send(Command::QueuePage {
        filter: OutboxFilter::default(),
        offset: 0,
        limit: 50,
    });
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::QueuePage(_)
    )));
    let Some(Event::QueuePage(page)) = seen.last() else {
        panic!("queue page")
    };
    assert_eq!(page.total as usize, page.rows.len());

    handle.send(Command::Runs);
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::Runs(_)
    )));
    let Some(Event::Runs(runs)) = seen.last() else {
        panic!("runs")
    };
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].trigger, "manual");

    handle.send(Command::RetryDead(Vec::new()));
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::Retried(0)
    )));
    handle.send(Command::DiscardDead(987_654));
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::Discarded(false)
    )));
    assert!(
        !seen.iter().any(|e| matches!(e, Event::QueryFailed(_))),
        "{seen:?}"
    );
}

fn slow_down(sim: &IvorisSim) {
    let mut faults = sim.faults();
    faults.slow_rate = 1.0;
    faults.slow_delay_ms = 50;
    sim.set_faults(faults);
}

#[test]
fn the_overview_shows_which_connection_failed_and_when_it_last_worked() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(24)));
    let broken = bed.env.settings.locations[1].key.clone();
    let mut env = bed.env.clone();
    env.credentials
        .ivoris
        .get_mut(&broken)
        .expect("sandbox location")
        .password = ivoris_hubspot_sync::secrets::Secret::new("falsches-passwort");
    runtime.block_on(engine_support::run(&env));

    let overview = |env: &ivoris_hubspot_sync::engine::run::SyncEnvironment| {
        let handle = EngineHandle::start(env.clone(), Arc::new(|| {})).expect("engine starts");
        handle.send(Command::Refresh);
        let mut seen = Vec::new();
        assert!(wait_for(&handle, &mut seen, |e| matches!(
            e,
            Event::Overview(_)
        )));
        let Some(Event::Overview(overview)) = seen.pop() else {
            panic!("overview")
        };
        overview
    };
    let first = overview(&env);
    let hubspot = first.hubspot.as_ref().expect("HubSpot was asked");
    assert!(hubspot.ok);
    for location in &first.locations {
        let health = location.ivoris.as_ref().expect("every location was asked");
        if location.key == broken {
            assert!(!health.ok, "wrong password → failing");
            let message = health.message.as_deref().unwrap_or_default();
            assert!(!message.is_empty(), "says why");
            assert_eq!(health.last_ok_at, None, "never reached so far");
        } else {
            assert!(health.ok, "{}", location.key);
            assert!(health.last_ok_at.is_some());
        }
    }

    // The password corrected: the next run finds it reachable again.
    runtime.block_on(engine_support::run(&bed.env));
    let second = overview(&bed.env);
    let fixed = second
        .locations
        .iter()
        .find(|l| l.key == broken)
        .and_then(|l| l.ivoris.as_ref())
        .expect("asked again");
    assert!(fixed.ok);
    assert_eq!(fixed.message, None);
    assert!(fixed.last_ok_at.is_some());
}

/// The overview labels a location with the name and brand of the latest
/// saved location table; without a row it keeps the settings' name.
#[test]
fn the_overview_names_locations_as_the_location_table_does() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(24)));
    let renamed = bed.env.settings.locations[0].key.clone();
    let kept = &bed.env.settings.locations[1];
    {
        let mut ledger =
            ivoris_hubspot_sync::ledger::Ledger::open(&bed.env.ledger_path).expect("ledger");
        let mut mapping = ivoris_hubspot_sync::mapping::Mapping::defaults();
        mapping.locations = vec![
            ivoris_hubspot_sync::mapping::LocationRule {
                key: renamed.clone(),
                name: Some("Zahnärzte am Domplatz".into()),
                brand: Some("Domplatz Dental".into()),
                ..Default::default()
            },
            ivoris_hubspot_sync::mapping::LocationRule {
                key: kept.key.clone(),
                owner_id: Some("70001".into()),
                ..Default::default()
            },
        ];
        ivoris_hubspot_sync::mapping::store::save_version(&mut ledger, &mapping, "test", "Namen")
            .expect("saved");
    }
    let handle = EngineHandle::start(bed.env.clone(), Arc::new(|| {})).expect("engine starts");
    let mut seen = Vec::new();
    handle.send(Command::Refresh);
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::Overview(_)
    )));
    let Some(Event::Overview(overview)) = seen.last() else {
        panic!("overview")
    };
    let shown = |key: &str| {
        overview
            .locations
            .iter()
            .find(|l| l.key == key)
            .expect("listed")
            .clone()
    };
    let first = shown(&renamed);
    assert_eq!(first.name, "Zahnärzte am Domplatz");
    assert_eq!(first.brand.as_deref(), Some("Domplatz Dental"));
    let second = shown(&kept.key);
    assert_eq!(second.name, kept.name);
    assert_eq!(second.brand, kept.brand);
}
