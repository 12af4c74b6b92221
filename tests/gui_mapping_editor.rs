//! The Zuordnung editor on its own (no engine): a value the ledger saw but
//! no row maps becomes a prefilled row in one click, the empty category is
//! marked inline, undo and redo step through the edits, the filter
//! finds the row to complete, and a sorted view becomes the row order in
//! one undoable step.

use std::collections::BTreeMap;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ivoris_hubspot_sync::engine::mapping_ops::{
    LocationConnection, MappingState, Unmapped, UnmappedValue,
};
use ivoris_hubspot_sync::gui::mapping::{MappingView, mapping_ui};
use ivoris_hubspot_sync::gui::state::Model;
use ivoris_hubspot_sync::mapping::table::mapping_from_draft;
use ivoris_hubspot_sync::mapping::{Mapping, Stage, TableName};

struct Editor {
    model: Model,
    view: MappingView,
}

fn editor() -> Harness<'static, Editor> {
    let mut model = Model::default();
    let mapping = Mapping::defaults();
    let pipeline_labels = Stage::ALL
        .iter()
        .filter_map(|s| mapping.stage_label(*s).map(str::to_owned))
        .collect();
    model.mapping.state = Some(MappingState {
        versions: Vec::new(),
        latest: None,
        applied: None,
        mapping,
        pipeline_labels: Some(pipeline_labels),
        pipeline_error: None,
        pipelines: BTreeMap::new(),
        owners: Vec::new(),
        connections: Vec::new(),
        unmapped: Unmapped {
            codes: vec![UnmappedValue {
                catalogue: Some("GOZ".into()),
                value: "0090".into(),
                count: 461,
                cents: 376_981,
            }],
            ..Unmapped::default()
        },
    });
    model.mapping.generation = 1;
    Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(
            |ui, editor: &mut Editor| {
                let _ = mapping_ui(ui, &editor.model, &mut editor.view);
            },
            Editor {
                model,
                view: MappingView::default(),
            },
        )
}

fn categories(harness: &Harness<'_, Editor>) -> Vec<Vec<String>> {
    harness.state().view.draft[&TableName::TreatmentCategories].clone()
}

#[test]
fn an_unmapped_code_becomes_a_row_undo_redo_and_completing_it() {
    let mut harness = editor();
    harness.run_steps(3);
    let shipped = Mapping::defaults().categories.len();
    assert_eq!(categories(&harness).len(), shipped);
    assert!(harness.query_all_by_label_contains("GOZ 0090").count() >= 1);

    harness.get_by_label("Hinzufügen GOZ 0090").click();
    harness.run_steps(3);
    let rows = categories(&harness);
    assert_eq!(rows.len(), shipped + 1);
    assert_eq!(rows[shipped], vec!["GOZ", "0090", ""]);
    // Its empty category is a problem of that row (line = row + 1).
    let problems = mapping_from_draft(&harness.state().view.draft).problems;
    assert_eq!(
        problems.iter().map(|p| p.row).collect::<Vec<_>>(),
        vec![shipped + 2]
    );

    harness.get_by_label("Rückgängig").click();
    harness.run_steps(2);
    assert_eq!(categories(&harness).len(), shipped);
    harness.get_by_label("Wiederholen").click();
    harness.run_steps(2);
    assert_eq!(categories(&harness).len(), shipped + 1);

    harness.get_by_label("Filter:").focus();
    harness.run_steps(1);
    harness.get_by_label("Filter:").type_text("0090");
    harness.run_steps(3);
    harness
        .get_by_label(&format!("Kategorie {}", shipped + 1))
        .click();
    harness.run_steps(2);
    harness
        .query_all_by_label("Diagnostik")
        .last()
        .expect("option")
        .click();
    harness.run_steps(3);
    assert_eq!(categories(&harness)[shipped][2], "Diagnostik");
    let parsed = mapping_from_draft(&harness.state().view.draft);
    assert_eq!(parsed.problems, vec![]);
    assert_eq!(parsed.mapping.categories.len(), shipped + 1);

    // Deleting it again is one more undoable step.
    harness
        .get_by_label(&format!("Zeile löschen {}", shipped + 1))
        .click();
    harness.run_steps(2);
    assert_eq!(categories(&harness).len(), shipped);
    harness.get_by_label("Rückgängig").click();
    harness.run_steps(2);
    assert_eq!(categories(&harness)[shipped][2], "Diagnostik");
}

/// The location table: a configured location without a row is one click
/// from a row carrying the settings' name and brand; its connection is shown
/// beside it; the pipeline is chosen from HubSpot's pipelines, and one that
/// lacks a stage of the stage table is reported at the row.
#[test]
fn a_location_row_is_prefilled_from_the_settings_and_its_pipeline_is_checked() {
    let mut harness = editor();
    let stages: Vec<String> = Stage::ALL
        .iter()
        .filter_map(|s| Mapping::defaults().stage_label(*s).map(str::to_owned))
        .collect();
    {
        let state = harness
            .state_mut()
            .model
            .mapping
            .state
            .as_mut()
            .expect("state");
        state.pipelines = BTreeMap::from([
            ("Patientenreise".to_owned(), stages.clone()),
            ("Kieferorthopädie".to_owned(), stages[..3].to_vec()),
        ]);
        state.connections = vec![LocationConnection {
            key: "halle".into(),
            name: "Zahnarztpraxis Halle".into(),
            brand: Some("Lächelwerk".into()),
            ivoris_url: "http://127.0.0.1:9/halle".into(),
            ivoris_user: "sync".into(),
        }];
        state.unmapped.locations = vec![UnmappedValue {
            catalogue: None,
            value: "halle".into(),
            count: 0,
            cents: 0,
        }];
    }
    harness.run_steps(2);
    harness.get_by_label("Standorte").click();
    harness.run_steps(3);
    harness.get_by_label("Hinzufügen halle").click();
    harness.run_steps(3);
    let rows = harness.state().view.draft[&TableName::Locations].clone();
    assert_eq!(
        rows,
        vec![vec![
            "halle".to_owned(),
            "Zahnarztpraxis Halle".to_owned(),
            "Lächelwerk".to_owned(),
            String::new(),
            String::new(),
        ]]
    );
    assert!(
        harness
            .query_all_by_label_contains("http://127.0.0.1:9/halle")
            .count()
            >= 1,
        "the referenced connection is shown"
    );

    harness.get_by_label("HubSpot-Pipeline 1").click();
    harness.run_steps(2);
    harness
        .query_all_by_label("Kieferorthopädie")
        .last()
        .expect("pipeline option")
        .click();
    harness.run_steps(3);
    assert_eq!(
        harness.state().view.draft[&TableName::Locations][0][3],
        "Kieferorthopädie"
    );
    // The pipeline lacks the last two stages of the stage table.
    let missing = format!("{}, {}", stages[3], stages[4]);
    assert!(
        harness.query_all_by_label_contains(&missing).count() >= 1,
        "the row names the missing stages"
    );
    let parsed = mapping_from_draft(&harness.state().view.draft);
    assert_eq!(
        parsed.mapping.location_pipeline("halle"),
        Some("Kieferorthopädie")
    );
    assert_eq!(
        parsed.mapping.location_name("halle"),
        Some("Zahnarztpraxis Halle")
    );
}

#[test]
fn the_sorted_view_becomes_the_row_order_in_one_undoable_step() {
    let mut harness = editor();
    harness.run_steps(3);
    let shipped = categories(&harness);
    // Moving rows is for the table order; the sorted view offers to become it.
    assert!(
        harness
            .query_by_label("Sortierung als Reihenfolge übernehmen")
            .is_none()
    );
    harness.get_by_label("Muster").click();
    harness.run_steps(2);
    assert_eq!(harness.state().view.sort, Some((1, true)));
    assert_eq!(
        categories(&harness),
        shipped,
        "sorting only changes the view"
    );

    harness
        .get_by_label("Sortierung als Reihenfolge übernehmen")
        .click();
    harness.run_steps(2);
    let mut expected = shipped.clone();
    expected.sort_by_key(|row| row[1].to_lowercase());
    assert_eq!(categories(&harness), expected);
    assert_ne!(categories(&harness), shipped);
    assert_eq!(harness.state().view.sort, None);

    harness.get_by_label("Rückgängig").click();
    harness.run_steps(2);
    assert_eq!(categories(&harness), shipped, "one undo restores the order");
    harness.get_by_label("Wiederholen").click();
    harness.run_steps(2);
    assert_eq!(categories(&harness), expected);
}

/// Whether the button with this label can be clicked.
fn enabled(harness: &Harness<'_, Editor>, label: &str) -> bool {
    use egui_kittest::kittest::NodeT;
    !harness.get_by_label(label).accesskit_node().is_disabled()
}

#[test]
fn an_overlap_warning_is_shown_and_does_not_block_saving_an_error_does() {
    let mut harness = editor();
    harness.run_steps(3);
    // GOZ 2100-2120 stay with the earlier filling row: a warning.
    harness.state_mut().view.add_row(
        TableName::TreatmentCategories,
        vec!["GOZ".into(), "2100-2200".into(), "Chirurgie".into()],
    );
    // The new row is the last; the filter brings it into view.
    harness.state_mut().view.filter = "2100-2200".into();
    harness.run_steps(3);
    assert!(
        harness
            .query_all_by_label_contains("Hinweis: „GOZ 2100-2200“ überschneidet sich")
            .count()
            >= 1
    );
    assert!(
        harness
            .query_by_label("Behandlungskategorien (1 Hinweis)")
            .is_some()
    );
    harness.get_by_label("Kommentar:").focus();
    harness.run_steps(1);
    harness
        .get_by_label("Kommentar:")
        .type_text("Chirurgie ab 2100");
    harness.run_steps(2);
    assert!(enabled(&harness, "Speichern"), "a warning does not block");

    // A row the filling row takes completely can never match: an error.
    harness.state_mut().view.add_row(
        TableName::TreatmentCategories,
        vec!["GOZ".into(), "2060".into(), "Endodontie".into()],
    );
    harness.state_mut().view.filter = "2060".into();
    harness.run_steps(3);
    assert!(harness.query_all_by_label_contains("greift nie").count() >= 1);
    assert!(!enabled(&harness, "Speichern"), "an error blocks");
}
