//! The Import view driven through its accessibility tree: kind and
//! location chosen, a fixture export typed in and opened, its unknown
//! columns assigned in the preview's header, „Prüfen“, „Probelauf“ (in
//! HubSpot terms, against the sandbox), „Importieren“ — then the history
//! lists the file and the ledger holds exactly the file's rows.

mod engine_support;
mod gui_support;

use std::path::{Path, PathBuf};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use engine_support::{Bed, bed, options};
use gui_support::{app_harness, step_until};
use ivoris_hubspot_sync::gui::{Panel, SyncApp};
use ivoris_hubspot_sync::ledger::Ledger;
use ivoris_hubspot_sync::settings::LocationSettings;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// Data rows of a CSV file: its non-empty lines after the header.
fn data_rows(path: &PathBuf) -> u64 {
    let text = std::fs::read_to_string(path).expect("fixture");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count() as u64
}

/// Opens the combo box `labelled` and picks `option` in it.
fn choose(harness: &mut Harness<'_, SyncApp>, labelled: &str, option: &str) {
    harness.get_by_label(labelled).click();
    harness.run_steps(3);
    harness.get_by_label(option).click();
    harness.run_steps(2);
}

/// The bed's last location, the one the tests import into.
fn last_location(bed: &Bed) -> LocationSettings {
    bed.env
        .settings
        .locations
        .last()
        .expect("a location")
        .clone()
}

/// Whether the opened file's every column has its field (or is ignored).
fn every_column_assigned(app: &SyncApp) -> bool {
    app.model
        .import
        .session
        .as_ref()
        .is_some_and(|s| s.preview.column_problems.is_empty())
}

/// Chooses `kind` and the location named `location`, types `file` into
/// „Datei:“ and presses „Öffnen“.
fn open_file(harness: &mut Harness<'_, SyncApp>, kind: &str, location: &str, file: &Path) {
    choose(harness, "Art:", kind);
    choose(harness, "Standort:", location);
    harness.get_by_label("Datei:").click();
    harness.run_steps(1);
    harness
        .get_by_label("Datei:")
        .type_text(&file.display().to_string());
    harness.run_steps(2);
    harness.get_by_label("Öffnen").click();
    harness.run_steps(2);
}

#[test]
fn choose_assign_check_dry_run_import_and_the_history() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(91)));
    let location = last_location(&bed);
    let ledger_path = bed.env.ledger_path.clone();
    let file = fixture("patients_unknown_columns.csv");
    let mut harness = app_harness(bed.env.clone(), Panel::Import, None);
    step_until(&mut harness, "the empty history", |app| {
        app.model.import.history.as_ref().is_some_and(Vec::is_empty)
    });
    harness.get_by_label_contains("Noch kein Import");

    choose(&mut harness, "Art:", "Termine");
    open_file(&mut harness, "Patienten", &location.name, &file);
    assert_eq!(
        harness.state().model.import.location.as_deref(),
        Some(location.key.as_str())
    );
    {
        let import = &harness.state().model.import;
        assert!(
            import.opening || import.session.is_some(),
            "„Öffnen“ opens the file: {:?} {:?} {:?}",
            import.path,
            import.location,
            import.error
        );
    }
    step_until(&mut harness, "the preview", |app| !app.model.import.opening);
    assert_eq!(harness.state().model.import.error, None);
    // Both unknown columns block the import until assigned.
    assert_eq!(
        harness
            .state()
            .model
            .import
            .session
            .as_ref()
            .map(|s| s.preview.column_problems.len()),
        Some(3)
    );
    choose(&mut harness, "Kartei", "patient_number");
    step_until(&mut harness, "the file opened with the choice", |app| {
        !app.model.import.opening
    });
    assert_eq!(harness.state().model.import.error, None);
    choose(&mut harness, "Hinweis", "ignorieren");
    step_until(
        &mut harness,
        "the assignment complete",
        every_column_assigned,
    );

    harness.get_by_label("Prüfen").click();
    step_until(&mut harness, "the check", |app| {
        app.model.import.check.is_some() && !app.model.import.checking
    });
    let rows = data_rows(&file);
    {
        let check = harness.state().model.import.check.clone().expect("check");
        assert_eq!((check.rows_read, check.rows_invalid), (rows, 0));
    }
    harness.get_by_label_contains("Alle Zeilen können importiert werden");

    // The top bar has a „Probelauf“ of the sync too; the view's comes after it.
    harness
        .get_all_by_label("Probelauf")
        .last()
        .expect("the view's „Probelauf“")
        .click();
    step_until(&mut harness, "the dry run", |app| {
        !app.model.import.dry_running
            && (app.model.import.summary.is_some() || app.model.import.error.is_some())
    });
    assert_eq!(harness.state().model.import.error, None);
    harness.get_by_label_contains("Probelauf – nichts wurde gespeichert");
    {
        let summary = harness
            .state()
            .model
            .import
            .summary
            .clone()
            .expect("summary");
        // A fresh ledger: every row of the file would be a new patient.
        assert_eq!(summary.records.inserted, rows);
    }
    let before = Ledger::open(&ledger_path)
        .expect("ledger")
        .counts(Some(&location.key))
        .expect("counts")
        .patients;

    harness.get_by_label("Importieren").click();
    step_until(&mut harness, "the import and its history row", |app| {
        app.model.import.outcome.is_some()
            && app
                .model
                .import
                .history
                .as_ref()
                .is_some_and(|h| h.len() == 1)
    });
    assert_eq!(harness.state().model.import.error, None);
    harness.get_by_label_contains("Import abgeschlossen");
    harness.get_by_label("patients_unknown_columns.csv");
    let after = Ledger::open(&ledger_path)
        .expect("ledger")
        .counts(Some(&location.key))
        .expect("counts")
        .patients;
    assert_eq!(after - before, rows, "the ledger gained the file's rows");
    drop(harness);
    drop(bed);
}

/// A file dropped on the window, as eframe hands it over.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn a_file_dropped_on_the_window_is_opened() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(92)));
    let file = fixture("patients_unknown_columns.csv");
    let mut harness = app_harness(bed.env.clone(), Panel::Import, None);
    step_until(&mut harness, "the history", |app| {
        app.model.import.history.is_some()
    });
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(file.clone())));
    step_until(&mut harness, "the preview", |app| {
        app.model.import.session.is_some() || app.model.import.error.is_some()
    });
    assert_eq!(harness.state().model.import.error, None);
    let import = &harness.state().model.import;
    assert_eq!(import.path.as_ref(), Some(&file));
    let preview = &import.session.as_ref().expect("session").preview;
    assert_eq!(preview.rows.len() as u64, data_rows(&file));
    harness.get_by_label_contains("Zeichensatz: ");
    drop(harness);
    drop(bed);
}

/// Patients `1`–`50` imported into `location` (through the engine, as a
/// first pass of the migration would have).
fn fifty_patients(ledger: &std::path::Path, location: &str, dir: &std::path::Path) {
    use ivoris_hubspot_sync::engine::extract::CancelFlag;
    use ivoris_hubspot_sync::engine::import::{ImportOptions, import, open_session};
    use ivoris_hubspot_sync::import::{ColumnChoices, ImportKind, ImportRequest};
    let file = dir.join("patienten.csv");
    let mut text = String::from("Pat.-Nr.;Nachname\n");
    for n in 1..=50 {
        text.push_str(&format!("{n};Name{n}\n"));
    }
    std::fs::write(&file, text).expect("written");
    let request = ImportRequest {
        path: file,
        kind: ImportKind::Patients,
        location: location.to_owned(),
        choices: ColumnChoices::default(),
    };
    let session = open_session(ledger, request).expect("opens");
    import(
        ledger,
        &session,
        ImportOptions::default(),
        &|_| {},
        &CancelFlag::new(),
    )
    .expect("patients imported");
}

#[test]
fn a_large_file_shows_its_progress_and_cancelling_leaves_the_ledger_unchanged() {
    use ivoris_hubspot_sync::import::BATCH_ROWS;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(93)));
    let location = last_location(&bed);
    let ledger_path = bed.env.ledger_path.clone();
    ivoris_hubspot_sync::engine::import::ensure_location(&ledger_path, &location)
        .expect("location known");
    fifty_patients(&ledger_path, &location.key, bed.dir.path());
    // Enough batches that the import is still running when „Abbrechen“ is
    // pressed after the first one.
    let lines = 30 * BATCH_ROWS;
    let file = bed.dir.path().join("leistungen.csv");
    let mut text = String::from("Pat.-Nr.;Datum;Katalog;Ziffer;Betrag\n");
    for i in 0..lines {
        text.push_str(&format!(
            "{};{:02}.{:02}.2024;BEMA;13a;{},50\n",
            1 + i % 50,
            1 + i % 28,
            1 + (i / 50) % 12,
            10 + i
        ));
    }
    std::fs::write(&file, text).expect("written");
    let lines_before = Ledger::open(&ledger_path)
        .expect("ledger")
        .counts(Some(&location.key))
        .expect("counts")
        .document_entries;

    let mut harness = app_harness(bed.env.clone(), Panel::Import, None);
    step_until(&mut harness, "the history", |app| {
        app.model.import.history.is_some()
    });
    open_file(&mut harness, "Leistungen", &location.name, &file);
    step_until(&mut harness, "the preview", every_column_assigned);
    harness.get_by_label("Importieren").click();
    step_until(&mut harness, "the first batch's progress", |app| {
        app.model.import.progress.is_some_and(|p| p.rows > 0)
    });
    {
        let progress = harness.state().model.import.progress.expect("progress");
        assert!(progress.rows >= BATCH_ROWS as u64 && progress.rows < lines as u64);
        assert!(progress.bytes > 0 && progress.bytes < progress.total_bytes);
        assert!(progress.rows_per_second > 0.0);
    }
    harness.get_by_label("Abbrechen").click();
    step_until(&mut harness, "the cancelled import in the history", |app| {
        app.model.import.outcome.is_some()
            && app
                .model
                .import
                .history
                .as_ref()
                .is_some_and(|h| h.iter().any(|r| r.outcome == "cancelled"))
    });
    let outcome = harness
        .state()
        .model
        .import
        .outcome
        .clone()
        .expect("outcome");
    assert!(outcome.cancelled);
    harness.get_by_label_contains("Import abgebrochen – nichts übernommen");
    harness.get_by_label("leistungen.csv (abgebrochen)");
    let stored = Ledger::open(&ledger_path)
        .expect("ledger")
        .counts(Some(&location.key))
        .expect("counts")
        .document_entries
        - lines_before;
    assert_eq!(stored, 0, "rolled back");
    assert_eq!(outcome.counts.written(), 0, "says it stored nothing");
    drop(harness);
    drop(bed);
}
