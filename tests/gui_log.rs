//! The Protokoll shows what the engine logs while it syncs, through the
//! same live log layer the binary installs, filtered by level, and starts
//! afresh with every sync. One test per binary: the layer is the process's
//! global subscriber, because the engine logs from its own threads.

mod engine_support;

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use engine_support::{bed, options};
use ivoris_hubspot_sync::engine::handle::EngineSetup;
use ivoris_hubspot_sync::gui::{AppOptions, Panel, SyncApp};
use ivoris_hubspot_sync::logging::{LogOptions, init, live_log};
use ivoris_hubspot_sync::settings::Settings;

fn step_until(harness: &mut Harness<'_, SyncApp>, what: &str, done: impl Fn(&SyncApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(2);
}

fn sync(harness: &mut Harness<'_, SyncApp>) {
    harness.get_by_label("Jetzt synchronisieren").click();
    harness.run_steps(2);
    step_until(harness, "the sync", |app| !app.model.running);
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
    let env = bed.env.clone();
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_eframe(move |cc| {
            SyncApp::new(
                cc,
                AppOptions {
                    setup: EngineSetup::Configured(Box::new(env)),
                    home: None,
                    settings_file: Ok(Settings::default()),
                    panel: Some(Panel::Log),
                    screenshot: None,
                    live_log: Some(lines),
                },
            )
            .expect("app starts")
        });
    step_until(&mut harness, "the engine", |app| app.model.info.is_some());

    sync(&mut harness);
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
    sync(&mut harness);
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
