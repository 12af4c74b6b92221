//! Shared by the desktop app's kittest suites: the app started against a
//! sync environment (usually a sandbox bed), and frames stepped until
//! something holds — engine events arrive between frames.

#![allow(dead_code)]

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ivoris_hubspot_sync::engine::handle::EngineSetup;
use ivoris_hubspot_sync::engine::run::SyncEnvironment;
use ivoris_hubspot_sync::gui::{AppOptions, Panel, SyncApp};
use ivoris_hubspot_sync::logging::LiveLine;
use ivoris_hubspot_sync::settings::Settings;

/// The app at 1280×800 on `panel`, syncing with `env`, without a settings
/// home; `live_log` feeds the Protokoll's messages.
pub fn app_harness(
    env: SyncEnvironment,
    panel: Panel,
    live_log: Option<Receiver<LiveLine>>,
) -> Harness<'static, SyncApp> {
    Harness::builder()
        .with_size([1280.0, 800.0])
        .build_eframe(move |cc| {
            SyncApp::new(
                cc,
                AppOptions {
                    setup: EngineSetup::Configured(Box::new(env)),
                    home: None,
                    settings_file: Ok(Settings::default()),
                    panel: Some(panel),
                    mapping_table: None,
                    screenshot: None,
                    live_log,
                },
            )
            .expect("app starts")
        })
}

/// Steps frames until `done` holds (at most three minutes), then two more
/// so what arrived is drawn.
pub fn step_until(harness: &mut Harness<'_, SyncApp>, what: &str, done: impl Fn(&SyncApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(3);
}

/// Clicks „Jetzt synchronisieren“; before a first sync the app asks
/// whether to make a dry run first, and this answers „Direkt
/// synchronisieren“.
pub fn click_sync(harness: &mut Harness<'_, SyncApp>) {
    harness.get_by_label("Jetzt synchronisieren").click();
    // The intent is applied after the frame, the question drawn (after a
    // sizing pass) in the frames that follow.
    harness.run_steps(4);
    if harness.state().model.first_sync_prompt.is_some() {
        harness.get_by_label("Direkt synchronisieren").click();
        harness.run_steps(2);
    }
}
