//! The desktop app driven through its accessibility tree, without a
//! display: a sync from the button with progress and result, no second
//! start while one runs, the language switch, every panel's heading, a dead
//! letter from a failing HubSpot retried from the queue, Esc on the discard
//! dialog, and frames that keep coming while a slow sync runs.

mod engine_support;
mod gui_support;

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use engine_support::{Bed, bed, options};
use gui_support::{app_harness, click_sync, step_until};
use ivoris_hubspot_sync::engine::run::Progress;
use ivoris_hubspot_sync::gui::i18n::Lang;
use ivoris_hubspot_sync::gui::schedule::Schedule;
use ivoris_hubspot_sync::gui::state::LastResult;
use ivoris_hubspot_sync::gui::{Panel, SyncApp};
use ivoris_hubspot_sync::ledger::{Ledger, OutboxFilter, RunOutcome};
use ivoris_hubspot_sync::sandbox::hubspot::FaultSettings;

/// The app against an in-process sandbox; the runtime keeps the sandbox's
/// servers alive.
fn app(seed: u64) -> (tokio::runtime::Runtime, Bed, Harness<'static, SyncApp>) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(seed)));
    let harness = app_harness(bed.env.clone(), Panel::Overview, None);
    (runtime, bed, harness)
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

    click_sync(&mut harness);
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
    // The top bar, and the overview's run table once it is refreshed.
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

/// Clicks „Jetzt synchronisieren“ and steps frames until the run ended;
/// returns how many frames were drawn while it ran.
fn sync_from_button(harness: &mut Harness<'_, SyncApp>) -> usize {
    click_sync(harness);
    harness.run_steps(2);
    assert!(harness.state().model.running, "the sync runs");
    let mut frames = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    while harness.state().model.running {
        assert!(Instant::now() < deadline, "the sync finishes");
        harness.step();
        frames += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    harness.run_steps(2);
    frames
}

#[test]
fn a_dead_letter_appears_in_the_queue_esc_closes_the_discard_dialog_and_retry_clears_it() {
    let (_runtime, bed, mut harness) = app(44);
    ready(&mut harness);
    // HubSpot refuses writes once the portal is provisioned (provisioning
    // writes too, and a run stops when it fails).
    click_sync(&mut harness);
    step_until(&mut harness, "the extraction", |app| {
        matches!(app.model.progress, Some(Progress::Extract(_)))
    });
    bed.sandbox.hubspot.set_fail_every_write(true);
    step_until(&mut harness, "the end of the run", |app| !app.model.running);
    // Five failed runs make a dead letter; the backoff between them is
    // minutes. Count the first failure as the fourth and make it due.
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let failed = ledger
        .connection()
        .execute(
            "UPDATE outbox SET attempts = 4, next_attempt_at = NULL WHERE attempts > 0",
            [],
        )
        .expect("failed writes made due");
    assert!(failed > 0, "writes failed while HubSpot refused them");
    sync_from_button(&mut harness);

    navigate(&mut harness, "Warteschlange");
    // Contacts are queued first and all of them failed. The page and the
    // queue counts (which carry the retry-all button) arrive separately.
    step_until(&mut harness, "the dead letters", |app| {
        app.model.queue.row(0).is_some_and(|row| row.dead)
            && app
                .model
                .overview
                .as_ref()
                .is_some_and(|overview| overview.queue.dead() > 0)
    });
    let dead = harness
        .state()
        .model
        .queue
        .row(0)
        .cloned()
        .expect("a dead letter");
    assert!(dead.dead);
    assert!(
        harness
            .query_by_label("Alle fehlgeschlagenen erneut versuchen")
            .is_some()
    );

    harness.get_by_label(&dead.record_key).click();
    harness.run_steps(2);
    harness.get_by_label("Verwerfen").click();
    harness.run_steps(2);
    assert!(
        harness.query_by_label("Eintrag verwerfen?").is_some(),
        "asks first"
    );
    harness.key_press(egui::Key::Escape);
    harness.run_steps(3);
    assert!(
        harness.query_by_label("Eintrag verwerfen?").is_none(),
        "Esc closes the dialog"
    );

    bed.sandbox.hubspot.set_fail_every_write(false);
    harness.get_by_label("Erneut versuchen").click();
    step_until(&mut harness, "the retry", |app| {
        app.model
            .notice
            .as_ref()
            .is_some_and(|n| n.text.contains("erneut gesendet"))
    });
    sync_from_button(&mut harness);
    let rows = Ledger::open(&bed.env.ledger_path)
        .expect("ledger")
        .outbox_filtered(
            &OutboxFilter {
                text: dead.record_key.clone(),
                ..OutboxFilter::default()
            },
            0,
            10,
        )
        .expect("queue");
    assert!(
        rows.0.iter().all(|row| row.id != dead.id),
        "the retried write was confirmed and left the queue"
    );
    step_until(&mut harness, "the queue without the entry", |app| {
        app.model.queue.total.is_some() && app.model.queue.find(dead.id).is_none()
    });
    assert!(harness.query_by_label(&dead.record_key).is_none());
}

#[test]
fn frames_keep_coming_while_a_slow_sync_runs() {
    let (_runtime, bed, mut harness) = app(45);
    ready(&mut harness);
    bed.sandbox.hubspot.set_faults(FaultSettings {
        slow_rate: 1.0,
        slow_delay_ms: 40,
        ..FaultSettings::default()
    });
    click_sync(&mut harness);
    harness.run_steps(1);
    let mut frames_while_running = 0;
    let mut progress_seen = 0;
    let mut last_progress = String::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while harness.state().model.running {
        assert!(Instant::now() < deadline, "the sync finishes");
        harness.step();
        frames_while_running += 1;
        if let Some(progress) = &harness.state().model.progress {
            let now = format!("{progress:?}");
            if now != last_progress {
                progress_seen += 1;
                last_progress = now;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        progress_seen >= 5,
        "the run progressed while frames were drawn ({progress_seen} updates)"
    );
    assert!(
        frames_while_running >= 200,
        "the GUI kept drawing while HubSpot answered slowly ({frames_while_running} frames)"
    );
    let Some(LastResult::Summary(summary)) = &harness.state().model.last else {
        panic!("the result is shown: {:?}", harness.state().model.last)
    };
    assert_eq!(summary.outcome, RunOutcome::Success);
}

#[test]
fn a_due_schedule_starts_a_sync_and_a_turn_during_a_run_is_skipped_politely() {
    let (_runtime, _bed, mut harness) = app(46);
    ready(&mut harness);
    let overdue = || {
        Instant::now()
            .checked_sub(Duration::from_secs(6 * 60))
            .expect("an instant six minutes ago")
    };
    harness.state_mut().model.schedule = Schedule::new(Some(5), overdue());
    harness.run_steps(2);
    assert!(harness.state().model.running, "the due turn started a sync");
    assert!(
        harness
            .query_by_label_contains("Nächste automatische Synchronisation:")
            .is_none(),
        "the progress replaces the result line while it runs"
    );

    harness.state_mut().model.schedule = Schedule::new(Some(5), overdue());
    harness.step();
    let notice = harness.state().model.notice.clone().expect("a notice");
    assert!(
        notice.text.contains("übersprungen") && !notice.error,
        "{}",
        notice.text
    );
    step_until(&mut harness, "the end of the run", |app| !app.model.running);
    assert!(
        harness
            .query_by_label_contains("Nächste automatische Synchronisation:")
            .is_some(),
        "the top bar shows the next turn"
    );
    step_until(&mut harness, "the run history", |app| {
        app.model
            .overview
            .as_ref()
            .is_some_and(|o| o.runs.first().is_some_and(|run| run.trigger == "schedule"))
    });
}

#[test]
fn while_a_sync_runs_every_location_shows_its_own_step() {
    let (_runtime, bed, mut harness) = app(46);
    ready(&mut harness);
    // Every Ivoris answer takes a moment, so all locations are seen reading.
    bed.sandbox
        .ivoris
        .update_faults(&ivoris_hubspot_sync::sandbox::ivoris::FaultUpdate {
            slow_rate: Some(1.0),
            slow_delay_ms: Some(5),
            ..Default::default()
        });
    let names: Vec<String> = bed
        .sandbox
        .locations
        .iter()
        .map(|l| l.name.clone())
        .collect();
    click_sync(&mut harness);
    harness.run_steps(1);
    assert!(harness.state().model.running, "the sync runs");
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while seen.len() < names.len() && harness.state().model.running {
        assert!(Instant::now() < deadline, "the sync finishes");
        harness.step();
        for name in &names {
            let prefix = format!("{name}: ");
            let shown = harness
                .query_all_by_label_contains(&prefix)
                .next()
                .is_some();
            if shown && harness.state().model.run_progress.locations.len() > 1 {
                seen.insert(name.clone());
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        seen.len(),
        names.len(),
        "each location's step was shown beside the others: {seen:?} of {names:?}"
    );
    step_until(&mut harness, "the end of the run", |app| !app.model.running);
}
