//! The Zuordnung panel driven through its accessibility tree: edit a
//! category row's pattern, save with a comment, see the re-apply preview, confirm
//! it, and restore an older version.

mod engine_support;
mod gui_support;

use egui_kittest::kittest::Queryable;
use engine_support::{bed, options, run};
use gui_support::{app_harness, click_sync, step_until};
use ivoris_hubspot_sync::gui::Panel;
use ivoris_hubspot_sync::ledger::Ledger;
use ivoris_hubspot_sync::mapping::store::{list_versions, load_applied, save_version};
use ivoris_hubspot_sync::mapping::{Category, Mapping};

#[test]
fn edit_a_category_save_preview_confirm_and_restore() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(43)));
    runtime.block_on(run(&bed.env));
    {
        let mut ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
        save_version(&mut ledger, &Mapping::defaults(), "test", "Start").expect("save");
    }
    let mut harness = app_harness(bed.env.clone(), Panel::Mapping, None);
    step_until(&mut harness, "the mapping", |app| {
        app.model.mapping.state.is_some()
    });
    assert!(harness.query_by_label("Behandlungskategorien").is_some());

    // Row 14 of the shipped categories is GOZ 2050-2120 Füllung.
    let row = Mapping::defaults()
        .categories
        .iter()
        .position(|r| r.pattern.to_string() == "2050-2120")
        .expect("row")
        + 1;
    // Codes 2101-2120 leave the filling row: they become unclassified.
    harness.get_by_label(&format!("Muster {row}")).focus();
    harness.run_steps(1);
    for _ in 0..4 {
        harness.key_press(egui::Key::Backspace);
        harness.run_steps(1);
    }
    harness
        .get_by_label(&format!("Muster {row}"))
        .type_text("2100");
    harness.run_steps(2);
    assert_eq!(
        harness
            .get_by_label(&format!("Muster {row}"))
            .value()
            .as_deref(),
        Some("2050-2100")
    );

    // And the first row's category is chosen from its list.
    harness.get_by_label("Kategorie 1").click();
    harness.run_steps(2);
    harness
        .query_all_by_label("Prophylaxe")
        .last()
        .expect("option in the list")
        .click();
    harness.run_steps(2);

    harness.get_by_label("Kommentar:").focus();
    harness.run_steps(1);
    harness
        .get_by_label("Kommentar:")
        .type_text("GOZ 2101-2120 nicht mehr Füllung");
    harness.run_steps(2);
    harness.get_by_label("Speichern").click();
    step_until(&mut harness, "the preview", |app| {
        app.model.mapping.preview.is_some()
    });
    let preview = harness
        .state()
        .model
        .mapping
        .preview
        .clone()
        .expect("preview");
    assert_eq!(preview.version, 2);
    assert!(harness.query_by_label("Kategorie ändert sich").is_some());
    // Saved, not applied yet.
    let applied = load_applied(&Ledger::open(&bed.env.ledger_path).expect("ledger"))
        .expect("applied")
        .0;
    assert_eq!(applied, None);

    harness.get_by_label("Bestätigen und einreihen").click();
    step_until(&mut harness, "the confirmation", |app| {
        app.model.mapping.preview.is_none()
            && app
                .model
                .mapping
                .state
                .as_ref()
                .is_some_and(|s| s.applied == Some(2))
    });
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let (applied, mapping) = load_applied(&ledger).expect("applied");
    assert_eq!(applied, Some(2));
    assert_eq!(mapping.categories[row - 1].pattern.to_string(), "2050-2100");
    assert_eq!(mapping.categories[0].category, Category::Prophylaxe);
    assert_eq!(
        mapping.category(Some("GOZ"), Some("2110")),
        Category::Unklassifiziert
    );
    let pending = ledger.outbox_counts().expect("counts").pending();
    assert_eq!(pending, preview.total_to_write());

    // Restore version 1 (the shipped tables): a new version 3, not applied.
    harness.get_by_label("Versionen (2)").click();
    harness.run_steps(2);
    harness.get_by_label("Wiederherstellen 1").click();
    step_until(&mut harness, "the restore", |app| {
        app.model
            .mapping
            .state
            .as_ref()
            .is_some_and(|s| s.latest == Some(3))
    });
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert_eq!(list_versions(&ledger).expect("list").len(), 3);
    let state = harness.state().model.mapping.state.clone().expect("state");
    assert_eq!(state.mapping, Mapping::defaults());
    assert_eq!(state.applied, Some(2));
    drop(harness);
    drop(bed);
}

/// A file dropped on the window, as eframe hands it over.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn a_csv_dropped_on_the_zuordnung_is_read_into_the_import_check() {
    use ivoris_hubspot_sync::mapping::TableName;
    use ivoris_hubspot_sync::mapping::table::export_table;

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(44)));
    let file = bed.dir.path().join("behandlungskategorien.csv");
    let csv = export_table(&Mapping::defaults(), TableName::TreatmentCategories).expect("csv");
    std::fs::write(&file, csv).expect("written");
    let rows_in_defaults = Mapping::defaults().categories.len();

    let mut harness = app_harness(bed.env.clone(), Panel::Mapping, None);
    step_until(&mut harness, "the mapping", |app| {
        app.model.mapping.state.is_some()
    });
    assert!(harness.query_by_label("Datei wählen …").is_some());
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(file.clone())));
    step_until(&mut harness, "the import check", |app| {
        app.model.mapping.import.is_some()
    });
    let import = harness.state().model.mapping.import.clone().expect("read");
    assert_eq!(import.tables.len(), 1);
    assert_eq!(import.tables[0].rows_in_file, rows_in_defaults);
    assert!(import.tables[0].problems.is_empty());
    assert!(harness.query_by_label("Import prüfen").is_some());
}

/// „Nicht zugeordnet“ follows the ledger: opened before the first sync it
/// lists the configured locations without patients; after „Jetzt
/// synchronisieren“ it is read again and counts their patients.
#[test]
fn not_mapped_values_are_read_again_after_a_sync() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(47)));
    let mut harness = app_harness(bed.env.clone(), Panel::Mapping, None);
    step_until(&mut harness, "the mapping", |app| {
        app.model.mapping.state.is_some()
    });
    let patients = |harness: &egui_kittest::Harness<'_, ivoris_hubspot_sync::gui::SyncApp>| {
        harness
            .state()
            .model
            .mapping
            .state
            .as_ref()
            .map(|state| {
                state
                    .unmapped
                    .locations
                    .iter()
                    .map(|l| (l.value.clone(), l.count))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let before = patients(&harness);
    assert_eq!(before.len(), bed.env.settings.locations.len(), "{before:?}");
    assert!(before.iter().all(|(_, count)| *count == 0), "{before:?}");

    click_sync(&mut harness);
    step_until(&mut harness, "the sync", |app| {
        !app.model.running && app.model.last.is_some()
    });
    step_until(&mut harness, "the mapping read again", |app| {
        app.model
            .mapping
            .state
            .as_ref()
            .is_some_and(|state| state.unmapped.locations.iter().all(|l| l.count > 0))
    });
    let expected: Vec<(String, u64)> = bed.sandbox.ivoris.with_world(|world| {
        world
            .locations
            .iter()
            .map(|l| (l.key.clone(), l.patients.len() as u64))
            .collect()
    });
    let mut after = patients(&harness);
    after.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(after, expected);
}
