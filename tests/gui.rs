//! The desktop app driven through its accessibility tree, without a
//! display: a sync from the button with progress and result, no second
//! start while one runs, the language switch, and every panel's heading.

mod engine_support;

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use engine_support::{Bed, bed, options};
use ivoris_hubspot_sync::engine::handle::EngineSetup;
use ivoris_hubspot_sync::gui::app::LastResult;
use ivoris_hubspot_sync::gui::i18n::Lang;
use ivoris_hubspot_sync::gui::{AppOptions, Panel, SyncApp};
use ivoris_hubspot_sync::ledger::RunOutcome;

/// The app against an in-process sandbox; the runtime keeps the sandbox's
/// servers alive.
fn app(seed: u64) -> (tokio::runtime::Runtime, Bed, Harness<'static, SyncApp>) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(seed)));
    let env = bed.env.clone();
    let harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_eframe(move |cc| {
            SyncApp::new(
                cc,
                AppOptions {
                    setup: EngineSetup::Configured(Box::new(env)),
                    settings_path: None,
                    panel: Some(Panel::Overview),
                    screenshot: None,
                },
            )
            .expect("app starts")
        });
    (runtime, bed, harness)
}

/// Steps frames until `done` holds; engine events arrive between frames.
fn step_until(harness: &mut Harness<'_, SyncApp>, what: &str, done: impl Fn(&SyncApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(2);
}

/// Waits until the engine is ready and the overview arrived.
fn ready(harness: &mut Harness<'_, SyncApp>) {
    step_until(harness, "the engine", |app| {
        app.model.info.is_some() && app.model.overview.is_some()
    });
}

/// Clicks the navigation entry with this title.
fn navigate(harness: &mut Harness<'_, SyncApp>, title: &str) {
    harness
        .query_all_by_label(title)
        .next()
        .unwrap_or_else(|| panic!("navigation entry {title}"))
        .click();
    harness.run_steps(3);
}

#[test]
fn the_sync_button_runs_a_sync_shows_progress_and_the_result_and_cannot_start_twice() {
    let (_runtime, _bed, mut harness) = app(41);
    ready(&mut harness);
    assert!(
        harness
            .query_by_label("Noch keine Synchronisation")
            .is_some()
    );

    harness.get_by_label("Jetzt synchronisieren").click();
    harness.run_steps(2);
    assert!(harness.state().model.running, "the sync runs");
    assert!(
        harness.query_by_label("Jetzt synchronisieren").is_none(),
        "no second start while one runs"
    );
    assert!(harness.query_by_label("Abbrechen").is_some());

    let mut saw_progress = harness.state().model.progress.is_some();
    let deadline = Instant::now() + Duration::from_secs(120);
    while harness.state().model.running {
        assert!(Instant::now() < deadline, "the sync finishes");
        harness.step();
        saw_progress |= harness.state().model.progress.is_some();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(saw_progress, "progress was shown");
    let Some(LastResult::Summary(summary)) = &harness.state().model.last else {
        panic!("the result is shown: {:?}", harness.state().model.last)
    };
    assert_eq!(summary.outcome, RunOutcome::Success);
    harness.run_steps(3);
    // The top bar says it; the refreshed overview's run list may say it too.
    assert!(harness.query_all_by_label("Erfolgreich").next().is_some());
    assert!(harness.query_by_label("Jetzt synchronisieren").is_some());

    step_until(&mut harness, "the refreshed overview", |app| {
        app.model.overview.as_ref().is_some_and(|o| {
            !o.runs.is_empty() && o.locations.iter().any(|l| l.counts.patients > 0)
        })
    });
}

#[test]
fn the_language_switch_changes_the_visible_labels() {
    let (_runtime, _bed, mut harness) = app(42);
    ready(&mut harness);
    navigate(&mut harness, "Einstellungen");
    harness.get_by_label("English").click();
    harness.run_steps(3);
    assert_eq!(harness.state().model.ui.lang, Lang::En);
    assert!(harness.query_by_label("Sync now").is_some());
    assert!(harness.query_by_label("Jetzt synchronisieren").is_none());
    assert!(harness.query_all_by_label("Settings").count() >= 2);
    assert!(harness.query_by_label("Queue").is_some());

    harness.get_by_label("Deutsch").click();
    harness.run_steps(3);
    assert!(harness.query_by_label("Jetzt synchronisieren").is_some());
    navigate(&mut harness, "Protokoll");
    assert_eq!(harness.state().model.ui.panel, Panel::Log);
}

#[test]
fn every_navigation_entry_shows_its_panel() {
    let (_runtime, _bed, mut harness) = app(43);
    ready(&mut harness);
    for panel in Panel::ALL {
        let title = panel.title(Lang::De);
        navigate(&mut harness, title);
        assert_eq!(harness.state().model.ui.panel, panel);
        assert!(
            harness.query_all_by_label(title).count() >= 2,
            "{title}: navigation entry and heading"
        );
        if panel == Panel::Log {
            step_until(&mut harness, "the run history", |app| {
                app.model.runs.is_some()
            });
            assert!(harness.query_by_label("Noch keine Läufe.").is_some());
        }
    }
}
