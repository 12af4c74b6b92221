//! Shared by the benchmarks: the desktop app in a CPU-only kittest harness
//! and its frame timing, and a sync environment for the in-process sandbox.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use ivoris_hubspot_sync::engine::handle::EngineSetup;
use ivoris_hubspot_sync::engine::run::{Credentials, SyncEnvironment};
use ivoris_hubspot_sync::gui::{AppOptions, Panel, SyncApp};
use ivoris_hubspot_sync::sandbox::{Sandbox, credentials};
use ivoris_hubspot_sync::secrets::{IvorisSecrets, Secret};
use ivoris_hubspot_sync::settings::Settings;

/// The app at 1280×800 on `panel`, syncing with `env`.
pub fn app_harness(env: SyncEnvironment, panel: Panel) -> Harness<'static, SyncApp> {
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
                    live_log: None,
                },
            )
            .expect("app starts")
        })
}

/// Steps frames until `done` holds (engine answers arrive between frames);
/// `false` after ten minutes.
pub fn wait(harness: &mut Harness<'_, SyncApp>, done: impl Fn(&SyncApp) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done(harness.state()) {
        if Instant::now() > deadline {
            return false;
        }
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(5);
    true
}

/// The median time of one frame over `frames` frames, each of which must
/// draw the UI.
pub fn median_frame_ms(harness: &mut Harness<'_, SyncApp>, frames: usize) -> f64 {
    harness.run_steps(10);
    let passes = harness.ctx.cumulative_pass_nr();
    let mut times: Vec<f64> = (0..frames)
        .map(|_| {
            let started = Instant::now();
            harness.step();
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    assert!(
        harness.ctx.cumulative_pass_nr() >= passes + frames as u64,
        "every step drew the UI"
    );
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// A sync environment for the in-process sandbox with the shipped client
/// settings (adaptive Ivoris pacing without a ceiling).
pub fn sandbox_environment(sandbox: &Sandbox, ledger_path: PathBuf) -> SyncEnvironment {
    let settings = Settings::for_sandbox(
        &sandbox.hubspot_url,
        &sandbox.locations,
        Some(ledger_path.clone()),
    );
    let ivoris: BTreeMap<String, IvorisSecrets> = sandbox
        .locations
        .iter()
        .map(|l| {
            (
                l.key.clone(),
                IvorisSecrets {
                    password: Secret::new(credentials::IVORIS_PASSWORD),
                    api_key: Secret::new(credentials::IVORIS_API_KEY),
                },
            )
        })
        .collect();
    let sim = sandbox.ivoris.clone();
    SyncEnvironment {
        settings,
        ledger_path,
        credentials: Credentials {
            hubspot_token: Secret::new(credentials::HUBSPOT_TOKEN),
            ivoris,
        },
        clock: Arc::new(move || sim.now()),
        tune_ivoris: None,
        tune_hubspot: None,
    }
}
