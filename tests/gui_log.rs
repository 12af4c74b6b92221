//! The Protokoll shows what the engine logs while it syncs, through the
//! same live log layer the binary installs, filtered by level, and starts
//! afresh with every sync. One test per binary: the layer is the process's
//! global subscriber, because the engine logs from its own threads.

mod engine_support;
mod gui_support;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use engine_support::{bed, options};
use gui_support::{app_harness, click_sync, step_until};
use ivoris_hubspot_sync::gui::{Panel, SyncApp};
use ivoris_hubspot_sync::logging::{LogOptions, init, live_log};

/// Runs a sync and waits until the run history above the messages shows
/// run `run_id` finished: the history grows by a row when it arrives, which
/// moves the level filter, so clicks before that may miss it.
fn sync(harness: &mut Harness<'_, SyncApp>, run_id: i64) {
    click_sync(harness);
    harness.run_steps(2);
    step_until(harness, "the sync and its history row", |app| {
        !app.model.running
            && app.model.runs.as_ref().is_some_and(|runs| {
                runs.iter()
                    .any(|run| run.id == run_id && run.finished_at.is_some())
            })
    });
}

#[test]
fn the_protokoll_shows_the_running_syncs_log_by_level_and_starts_afresh() {
    let (live, lines) = live_log();
    let _guard = init(&LogOptions {
        live: Some(live),
        ..LogOptions::default()
    })
    .expect("the only subscriber of this test binary");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(61)));
    let mut harness = app_harness(bed.env.clone(), Panel::Log, Some(lines));
    step_until(&mut harness, "the engine", |app| app.model.info.is_some());

    sync(&mut harness, 1);
    // The run's closing line, as run.rs logs it (run ids count from 1).
    assert!(
        harness
            .query_by_label_contains("sync finished run_id=1")
            .is_some(),
        "the first run's log is shown"
    );

    harness.get_by_label("Stufe").click();
    harness.run_steps(2);
    harness.get_by_label("Nur Fehler").click();
    harness.run_steps(2);
    assert!(
        harness.query_by_label_contains("sync finished").is_none(),
        "an info line is hidden when only errors are shown"
    );
    assert!(
        harness
            .query_by_label("Keine Meldungen dieser Stufe.")
            .is_some(),
        "a run without errors says so"
    );

    harness.get_by_label("Stufe").click();
    harness.run_steps(2);
    harness.get_by_label("Informationen").click();
    harness.run_steps(2);
    sync(&mut harness, 2);
    assert!(
        harness
            .query_by_label_contains("sync finished run_id=2")
            .is_some(),
        "the second run's log is shown"
    );
    assert!(
        harness
            .query_by_label_contains("sync finished run_id=1")
            .is_none(),
        "a new sync starts a new log"
    );
}
