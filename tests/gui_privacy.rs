//! Einstellungen › „Datenschutz und Sicherung“ driven through the
//! accessibility tree, the file dialog replaced by the field next to the
//! buttons (as the other GUI tests do): „Sicherung erstellen…“ writes a
//! sound backup; „Sicherung wiederherstellen…“ asks, is refused with the
//! lock's message while a sync holds the ledger and restores afterwards;
//! „Patient vergessen…“ names every step in its confirmation and forgets
//! the patient.

mod engine_support;

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{By, Queryable};
use engine_support::{bed, options, run};
use ivoris_hubspot_sync::engine::handle::EngineSetup;
use ivoris_hubspot_sync::gui::{AppOptions, Panel, SyncApp};
use ivoris_hubspot_sync::ledger::backup;
use ivoris_hubspot_sync::ledger::lock::WriterLock;
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::settings::Settings;

fn step_until(harness: &mut Harness<'_, SyncApp>, what: &str, done: impl Fn(&SyncApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(2);
}

/// Replaces the text of the field with this accessible name.
fn fill(harness: &mut Harness<'_, SyncApp>, label: &str, text: &str) {
    harness.get_by_label(label).focus();
    harness.run_steps(1);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.run_steps(1);
    harness.get_by_label(label).type_text(text);
    harness.run_steps(2);
}

/// The result line of the last action, once it arrived.
fn result(harness: &mut Harness<'_, SyncApp>, what: &str) -> (String, bool) {
    // The click is taken by the next frame, which clears the last result.
    harness.run_steps(1);
    step_until(harness, what, |app| {
        !app.model.privacy.busy && app.model.privacy.result.is_some()
    });
    let notice = harness
        .state()
        .model
        .privacy
        .result
        .clone()
        .expect("result");
    (notice.text, notice.error)
}

fn shows(harness: &Harness<'_, SyncApp>, part: &str) -> bool {
    harness
        .query_all(By::new().predicate(|node| {
            [node.label(), node.value()]
                .into_iter()
                .flatten()
                .any(|text| text.contains(part))
        }))
        .count()
        > 0
}

#[test]
fn backup_restore_and_forgetting_a_patient_from_the_settings() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(1331)));
    let first = runtime.block_on(run(&bed.env));
    assert_eq!(first.outcome, RunOutcome::Success, "{:?}", first.message);
    let env = bed.env.clone();
    let ledger_path = env.ledger_path.clone();
    let mut harness = Harness::builder()
        .with_size([1280.0, 2400.0])
        .build_eframe(move |cc| {
            SyncApp::new(
                cc,
                AppOptions {
                    setup: EngineSetup::Configured(Box::new(env)),
                    home: None,
                    settings_file: Ok(Settings::default()),
                    panel: Some(Panel::Settings),
                    mapping_table: None,
                    screenshot: None,
                    live_log: None,
                },
            )
            .expect("app starts")
        });
    step_until(&mut harness, "the engine", |app| {
        app.model.info.is_some() && app.model.overview.is_some()
    });

    let file = bed
        .dir
        .path()
        .join("sicherung")
        .join("ledger-backup.sqlite");
    fill(
        &mut harness,
        "Sicherungsdatei:",
        &file.display().to_string(),
    );
    harness.get_by_label("Sicherung erstellen…").click();
    let (text, error) = result(&mut harness, "the backup");
    assert!(!error && text.starts_with("Sicherung erstellt"), "{text}");
    let snapshot = backup::check(&file).expect("a sound ledger backup");
    assert!(snapshot.bytes > 0);

    // While a sync holds the ledger the restore is refused with its message.
    {
        let _sync = WriterLock::acquire(&ledger_path, "sync (test)").expect("lock");
        harness.get_by_label("Sicherung wiederherstellen…").click();
        harness.run_steps(4);
        assert!(shows(&harness, "Sicherung wiederherstellen?"), "asks first");
        harness.get_by_label("Wiederherstellen").click();
        let (text, error) = result(&mut harness, "the refusal");
        assert!(
            error && text.contains("Eine andere Synchronisation"),
            "{text}"
        );
        assert!(
            shows(&harness, "Eine andere Synchronisation"),
            "shown on screen"
        );
    }
    assert!(!ledger_path.with_extension("sqlite.before-restore").exists());
    harness.get_by_label("Sicherung wiederherstellen…").click();
    harness.run_steps(4);
    harness.get_by_label("Wiederherstellen").click();
    let (text, error) = result(&mut harness, "the restore");
    assert!(
        !error && text.starts_with("Sicherung wiederhergestellt"),
        "{text}"
    );
    assert!(ledger_path.with_extension("sqlite.before-restore").exists());

    // Forgetting: the confirmation names every step.
    let (location, number, patient_id) = bed.sandbox.ivoris.with_world(|world| {
        let first = &world.locations[0];
        let patient = &first.patients[0];
        (
            first.key.clone(),
            patient.human_readable_id.clone().expect("number"),
            patient.id.clone(),
        )
    });
    assert_eq!(
        harness
            .state()
            .model
            .overview
            .as_ref()
            .expect("overview")
            .locations[0]
            .key,
        location
    );
    fill(&mut harness, "Patientennummer:", &number);
    harness.get_by_label("Patient vergessen…").click();
    step_until(&mut harness, "the preview", |app| {
        app.model.privacy.preview.is_some()
    });
    for step in [
        "per DSGVO-Löschung endgültig gelöscht",
        "Termine werden in HubSpot ohne Namen archiviert",
        "Alle Daten des Patienten in diesem Programm werden entfernt",
        "nie wieder übertragen, bis die Sperre aufgehoben wird",
    ] {
        assert!(shows(&harness, step), "the dialog says: {step}");
    }
    harness.get_by_label("Endgültig vergessen").click();
    let (text, error) = result(&mut harness, "the erasure");
    assert!(!error && text.starts_with("Vergessen:"), "{text}");
    assert!(
        harness.state().model.privacy.preview.is_none(),
        "dialog closed"
    );
    let ledger = Ledger::open(&ledger_path).expect("ledger");
    let tombstones = ledger.tombstones().expect("tombstones");
    assert_eq!(tombstones.len(), 1);
    assert_eq!(tombstones[0].patient.patient_id, patient_id);
    assert_eq!(
        ledger.find_patient(&location, &number).expect("query"),
        None,
        "the patient is gone from the ledger"
    );
}
