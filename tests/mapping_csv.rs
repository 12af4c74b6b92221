//! Mapping tables as CSV files: export → import round trips in every
//! encoding German practices use, line-numbered errors for broken files,
//! ZIP of all tables, version diff / restore / the applied version, and
//! arbitrary bytes never panic.

use ivoris_hubspot_sync::csvio;
use ivoris_hubspot_sync::ledger::Ledger;
use ivoris_hubspot_sync::mapping::archive::{export_zip, read_zip};
use ivoris_hubspot_sync::mapping::diff::{RowChange, diff};
use ivoris_hubspot_sync::mapping::store::{
    applied_version, list_versions, load_applied, load_current, restore_version, save_version,
    set_applied,
};
use ivoris_hubspot_sync::mapping::table::{detect_table, export_table, import_file, import_table};
use ivoris_hubspot_sync::mapping::validate::{check_location_pipelines, check_stage_labels};
use ivoris_hubspot_sync::mapping::{Category, Mapping, Severity, Stage, TableName};
use proptest::prelude::*;

/// A mapping that differs from the defaults in every table, with umlauts,
/// delimiters and quotes inside cells.
fn edited() -> Mapping {
    let mut mapping = Mapping::defaults();
    mapping.appointment_types[0].label = "Erstberatung; „Ästhetik“ \"neu\"".to_owned();
    mapping.appointment_types[1].template_id = Some("0042".to_owned());
    mapping.appointment_states[0].ivoris_value = "Gebucht,vorläufig".to_owned();
    mapping.stages[0].label = "Termin gebucht (Übersicht)".to_owned();
    mapping.won_after_days = 45;
    mapping.categories[0].category = Category::Prophylaxe;
    mapping.categories.swap(1, 2);
    mapping.entry_types[3].counting = ivoris_hubspot_sync::mapping::Counting::Revenue;
    mapping.contact_fields[8].enabled = true;
    mapping.locations = vec![
        ivoris_hubspot_sync::mapping::LocationRule {
            key: "magdeburg".into(),
            name: Some("Zahnärzte am Domplatz; Magdeburg".into()),
            brand: Some("Dentalwerk „Elbe“".into()),
            pipeline: Some("Patientenreise Süd".into()),
            owner_id: Some("31507".into()),
        },
        ivoris_hubspot_sync::mapping::LocationRule {
            key: "leipzig-2".into(),
            ..Default::default()
        },
    ];
    mapping
}

/// Windows-1252 bytes of a UTF-8 text (every character of the tables is in
/// the code page).
fn to_windows_1252(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!unmappable, "text fits Windows-1252");
    bytes.into_owned()
}

/// Reads every table back from the given bytes of each exported file.
fn round_trip(encode: impl Fn(&[u8]) -> Vec<u8>) {
    let mapping = edited();
    let mut read = Mapping::defaults();
    for table in TableName::ALL {
        let exported = export_table(&mapping, table).expect("export");
        let bytes = encode(&exported);
        let import = import_table(&read, table, &bytes);
        assert_eq!(import.problems, vec![], "{table:?}");
        assert_eq!(import.rows_kept, mapping.row_count(table), "{table:?}");
        read = import.mapping;
    }
    assert_eq!(read, mapping);
}

#[test]
fn round_trip_utf8_with_bom() {
    round_trip(|bytes| {
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        bytes.to_vec()
    });
}

#[test]
fn round_trip_utf8_without_bom() {
    round_trip(|bytes| bytes[3..].to_vec());
}

#[test]
fn round_trip_windows_1252() {
    round_trip(|bytes| {
        let text = std::str::from_utf8(&bytes[3..]).expect("utf-8");
        let encoded = to_windows_1252(text);
        if !text.is_ascii() {
            assert_eq!(
                csvio::decode(&encoded).1,
                csvio::SourceEncoding::Windows1252
            );
        }
        encoded
    });
}

#[test]
fn round_trip_comma_and_tab_delimiters_and_lf_line_ends() {
    let mapping = edited();
    for delimiter in [b',', b'\t'] {
        let mut read = Mapping::defaults();
        for table in TableName::ALL {
            let exported = export_table(&mapping, table).expect("export");
            let document = csvio::read(&exported);
            let mut writer = csv::WriterBuilder::new()
                .delimiter(delimiter)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new());
            writer.write_record(&document.header).expect("header");
            for row in &document.rows {
                writer.write_record(&row.cells).expect("row");
            }
            let bytes = writer.into_inner().expect("bytes");
            let import = import_table(&read, table, &bytes);
            assert_eq!(import.problems, vec![], "{table:?} {delimiter}");
            assert_eq!(import.delimiter, delimiter);
            read = import.mapping;
        }
        assert_eq!(read, mapping);
    }
}

#[test]
fn header_aliases_and_column_order_do_not_matter() {
    let file =
        "Kategorie;Gebührenordnung;Code\r\nImplantologie;GOZ;9000-9170\r\nFüllung;BEMA;13a-13h\r\n";
    let import = import_table(
        &Mapping::defaults(),
        TableName::TreatmentCategories,
        file.as_bytes(),
    );
    assert_eq!(import.problems, vec![]);
    let rows: Vec<(String, String, Category)> = import
        .mapping
        .categories
        .iter()
        .map(|r| (r.catalogue.to_string(), r.pattern.to_string(), r.category))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("GOZ".into(), "9000-9170".into(), Category::Implantologie),
            ("BEMA".into(), "13a-13h".into(), Category::Fuellung),
        ]
    );
}

/// Problems of importing `file` as `table`: (line, column) pairs.
fn problems(table: TableName, file: &[u8]) -> Vec<(usize, Option<String>)> {
    let import = import_table(&Mapping::defaults(), table, file);
    import
        .problems
        .iter()
        .map(|p| (p.row, p.column.clone()))
        .collect()
}

#[test]
fn invalid_files_give_line_numbered_errors() {
    let categories = TableName::TreatmentCategories;
    // Wrong delimiter: the header is one cell, every column is missing.
    let found = problems(
        categories,
        b"Katalog|Muster|Kategorie\nGOZ|1000|Prophylaxe\n",
    );
    assert_eq!(
        found,
        vec![
            (1, Some("Katalog".into())),
            (1, Some("Muster".into())),
            (1, Some("Kategorie".into())),
        ]
    );
    // A missing column.
    let found = problems(categories, b"Katalog;Muster\nGOZ;1000\n");
    assert_eq!(found, vec![(1, Some("Kategorie".into()))]);
    // A quote opened in line 3 and never closed.
    let found = problems(
        categories,
        b"Katalog;Muster;Kategorie\nGOZ;1000;Prophylaxe\nGOZ;\"2000;F\xc3\xbcllung\nGOZ;3000;Chirurgie\n",
    );
    assert_eq!(found.first(), Some(&(3, None)), "{found:?}");
    // Bad pattern, unknown category, empty cell, shadowed row.
    let found = problems(
        categories,
        "Katalog;Muster;Kategorie\nGOZ;2120-2050;Füllung\nGOZ;9000;Zauberei\n;1000;Prophylaxe\nGOZ;1*;Prophylaxe\nGOZ;1040;Chirurgie\n"
            .as_bytes(),
    );
    assert_eq!(
        found,
        vec![
            (2, Some("Muster".into())),
            (3, Some("Kategorie".into())),
            (4, Some("Katalog".into())),
            (6, None),
        ]
    );
    // Too many cells in a row.
    let found = problems(
        TableName::AppointmentStates,
        b"Ivoris-Wert;Status\nBooked;gebucht;extra\nDone;abgeschlossen\n",
    );
    assert_eq!(found, vec![(2, None)]);
}

#[test]
fn an_invalid_import_leaves_the_ledger_unchanged() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    let first = save_version(&mut ledger, &Mapping::defaults(), "test", "Start").expect("save");
    let import = import_file(
        &load_current(&ledger).expect("load"),
        "kategorien.csv",
        b"Katalog;Muster;Kategorie\nGOZ;9000;Zauberei\n",
    )
    .expect("read");
    assert!(!import.is_clean());
    // The caller stores nothing: the versions are the same.
    assert_eq!(list_versions(&ledger).expect("list").len(), 1);
    assert_eq!(load_current(&ledger).expect("load"), Mapping::defaults());
    assert_eq!(first, 1);
}

#[test]
fn tables_are_recognised_by_name_or_header() {
    let header_only = b"Eintragsart;Z\xc3\xa4hlung;Kategorie\nlst;Umsatz;\n";
    assert_eq!(
        detect_table("export (3).csv", header_only),
        Some(TableName::EntryTypes)
    );
    assert_eq!(
        detect_table("Behandlungskategorien.csv", b""),
        Some(TableName::TreatmentCategories)
    );
    assert_eq!(detect_table("stages.csv", b"x"), Some(TableName::Stages));
    assert_eq!(detect_table("patienten.csv", b"Name;Vorname\n"), None);
}

#[test]
fn zip_of_all_tables_round_trips() {
    let mapping = edited();
    let bytes = export_zip(&mapping).expect("zip");
    let files = read_zip(&bytes).expect("read");
    assert_eq!(files.len(), TableName::ALL.len());
    let import = import_file(&Mapping::defaults(), "zuordnung.zip", &bytes).expect("import");
    assert!(
        import.is_clean(),
        "{:?}",
        import.problems().collect::<Vec<_>>()
    );
    assert_eq!(import.mapping, mapping);
    assert!(read_zip(b"PK\x03\x04 not really").is_err());
}

#[test]
fn diff_names_added_removed_changed_and_reordered_rows() {
    let before = Mapping::defaults();
    let mut after = Mapping::defaults();
    after.categories[0].category = Category::Prophylaxe;
    after.categories.swap(1, 2);
    after.entry_types.remove(5);
    after
        .appointment_states
        .push(ivoris_hubspot_sync::mapping::StateRule {
            ivoris_value: "Verschoben".into(),
            state: ivoris_hubspot_sync::mapping::AppointmentState::Cancelled,
        });
    let diffs = diff(&before, &after);
    let tables: Vec<TableName> = diffs.iter().map(|d| d.table).collect();
    assert_eq!(
        tables,
        vec![
            TableName::AppointmentStates,
            TableName::TreatmentCategories,
            TableName::EntryTypes
        ]
    );
    assert_eq!(
        diffs[0].changes,
        vec![RowChange::Added(vec![
            "Verschoben".into(),
            "abgesagt".into()
        ])]
    );
    assert_eq!(
        diffs[1].changes,
        vec![RowChange::Changed {
            before: vec!["BEMA".into(), "01".into(), "Diagnostik".into()],
            after: vec!["BEMA".into(), "01".into(), "Prophylaxe".into()],
        }]
    );
    assert!(diffs[1].reordered);
    assert_eq!(
        diffs[2].changes,
        vec![RowChange::Removed(vec![
            "note".into(),
            "ignorieren".into(),
            String::new()
        ])]
    );
    assert!(diff(&before, &before).is_empty());
}

#[test]
fn saving_does_not_apply_and_restoring_saves_a_new_version() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    assert_eq!(
        load_applied(&ledger).expect("applied"),
        (None, Mapping::defaults())
    );
    let first = save_version(&mut ledger, &Mapping::defaults(), "a", "Start").expect("save");
    let changed = edited();
    let second = save_version(&mut ledger, &changed, "b", "Kategorien").expect("save");
    // Saved, not applied: planning still uses the defaults.
    assert_eq!(applied_version(&ledger).expect("applied"), None);
    assert_eq!(
        load_applied(&ledger).expect("applied").1,
        Mapping::defaults()
    );
    set_applied(ledger.connection(), second, "b").expect("apply");
    assert_eq!(
        load_applied(&ledger).expect("applied"),
        (Some(second), changed)
    );
    assert!(set_applied(ledger.connection(), 99, "b").is_err());

    let third = restore_version(&mut ledger, first, "c").expect("restore");
    assert_eq!(third, second + 1);
    assert_eq!(load_current(&ledger).expect("load"), Mapping::defaults());
    // Restoring is a save: the applied version stays until confirmed.
    assert_eq!(applied_version(&ledger).expect("applied"), Some(second));
    let versions = list_versions(&ledger).expect("list");
    assert!(versions[2].comment.contains("Version 1"), "{versions:?}");
    assert!(restore_version(&mut ledger, 42, "c").is_err());
}

#[test]
fn a_ledger_with_versions_keeps_its_latest_in_force_after_the_upgrade() {
    use ivoris_hubspot_sync::ledger::schema::migrations;
    // Schema 9 is the last one without `mapping_applied` (step 10 adds it).
    const BEFORE_APPLIED: usize = 9;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ledger.sqlite");
    {
        let mut conn = rusqlite::Connection::open(&path).expect("open");
        migrations()
            .to_version(&mut conn, BEFORE_APPLIED)
            .expect("old schema");
        let applied_tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'mapping_applied'",
                [],
                |row| row.get(0),
            )
            .expect("schema");
        assert_eq!(applied_tables, 0, "the schema before the applied version");
        for comment in ["eins", "zwei"] {
            conn.execute(
                "INSERT INTO mapping_versions (created_at, author, comment, tables) VALUES ('2026-01-01T00:00:00Z', 'x', ?1, ?2)",
                rusqlite::params![comment, serde_json::to_string(&Mapping::defaults()).expect("json")],
            )
            .expect("insert");
        }
    }
    let ledger = Ledger::open(&path).expect("upgrade");
    assert_eq!(applied_version(&ledger).expect("applied"), Some(2));
}

#[test]
fn location_rows_are_checked_and_name_the_deal_owner() {
    let file = "Standort;Owner\nmagdeburg;31507\nMagdeburg Süd;\nleipzig;Frau Meier\nmagdeburg;4\n";
    let import = import_table(&Mapping::defaults(), TableName::Locations, file.as_bytes());
    let found: Vec<usize> = import.problems.iter().map(|p| p.row).collect();
    assert_eq!(found, vec![3, 4, 5], "{:?}", import.problems);
    assert_eq!(import.mapping.deal_owner("magdeburg"), Some("31507"));
    assert_eq!(import.mapping.deal_owner("halle"), None);
    // A file with name, brand and pipeline under other headers.
    let file = "Praxis;Standortname;Brand;Pipeline;Deal owner\nhalle;Praxis am Markt;Lächelwerk;KFO-Reise;70002\nleipzig;;;;\n";
    let import = import_table(&Mapping::defaults(), TableName::Locations, file.as_bytes());
    assert_eq!(import.problems, vec![]);
    assert_eq!(
        import.mapping.location_name("halle"),
        Some("Praxis am Markt")
    );
    assert_eq!(import.mapping.location_brand("halle"), Some("Lächelwerk"));
    assert_eq!(import.mapping.location_pipeline("halle"), Some("KFO-Reise"));
    assert_eq!(import.mapping.deal_owner("halle"), Some("70002"));
    assert_eq!(import.mapping.location_pipeline("leipzig"), None);
    assert_eq!(import.mapping.location_name("leipzig"), None);
    // Versions saved before the table existed read as without locations,
    // and rows saved before name, brand and pipeline existed read without.
    let mut json = serde_json::to_value(Mapping::defaults()).expect("json");
    json.as_object_mut().expect("object").remove("locations");
    let old: Mapping = serde_json::from_value(json).expect("old version reads");
    assert!(old.locations.is_empty());
    let mut json = serde_json::to_value(Mapping::defaults()).expect("json");
    json["locations"] = serde_json::json!([{ "key": "halle", "owner_id": "70002" }]);
    let old: Mapping = serde_json::from_value(json).expect("old rows read");
    assert_eq!(old.deal_owner("halle"), Some("70002"));
    assert_eq!(old.location_pipeline("halle"), None);
}

#[test]
fn stage_labels_are_checked_against_the_pipeline() {
    let mut mapping = Mapping::defaults();
    mapping.stages[1].label = "Beratung erfolgt".into();
    let pipeline: Vec<String> = [
        "Termin gebucht",
        "Erstberatung",
        "In Behandlung",
        "Behandlung abgeschlossen",
        "Verloren",
    ]
    .map(String::from)
    .to_vec();
    let found = check_stage_labels(&mapping, &pipeline);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].row, 3);
    assert!(found[0].reason_de.contains("Beratung erfolgt"));
    assert!(check_stage_labels(&Mapping::defaults(), &pipeline).is_empty());
}

#[test]
fn location_pipelines_are_checked_against_hubspots_pipelines() {
    let full: Vec<String> = Stage::ALL
        .iter()
        .filter_map(|s| Mapping::defaults().stage_label(*s).map(str::to_owned))
        .collect();
    let pipelines = std::collections::BTreeMap::from([
        ("Patientenreise".to_owned(), full.clone()),
        ("KFO-Reise".to_owned(), full[..4].to_vec()),
    ]);
    let file = "Standort;HubSpot-Pipeline\nmagdeburg;\nhalle;Patientenreise\nleipzig;KFO-Reise\ndessau;Implantate\n";
    let mapping = import_table(&Mapping::defaults(), TableName::Locations, file.as_bytes()).mapping;
    let found = check_location_pipelines(&mapping, &pipelines);
    let rows: Vec<usize> = found.iter().map(|p| p.row).collect();
    assert_eq!(rows, vec![4, 5], "{found:?}");
    assert!(found[0].reason_de.contains(&full[4]), "{found:?}");
    assert!(found[1].reason_de.contains("Implantate"), "{found:?}");
    assert!(
        found
            .iter()
            .all(|p| p.column.as_deref() == Some("HubSpot-Pipeline"))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for table in TableName::ALL {
            let _ = import_table(&Mapping::defaults(), table, &bytes);
        }
        let _ = import_file(&Mapping::defaults(), "x.zip", &bytes);
        let _ = csvio::read(&bytes);
    }

    #[test]
    fn csv_like_text_never_panics(text in "[A-Za-zÄäß0-9;,\t\"\r\n *-]{0,200}") {
        for table in TableName::ALL {
            let mut file = csvio::write_excel(&ivoris_hubspot_sync::mapping::table::header(table), &[]).expect("header");
            file.extend_from_slice(text.as_bytes());
            let import = import_table(&Mapping::defaults(), table, &file);
            for problem in &import.problems {
                prop_assert!(problem.row >= 1 || problem.table == TableName::Stages);
            }
        }
    }

    #[test]
    fn german_amounts_round_trip(cents in -10_000_000_000i64..10_000_000_000) {
        prop_assert_eq!(csvio::parse_cents(&csvio::format_cents(cents)), Some(cents));
    }
}

#[test]
fn the_editor_rows_read_back_to_the_same_mapping() {
    use ivoris_hubspot_sync::mapping::table::{draft_of, mapping_from_draft};
    let mapping = edited();
    let parsed = mapping_from_draft(&draft_of(&mapping));
    assert_eq!(parsed.problems, vec![]);
    assert_eq!(parsed.mapping, mapping);
    let mut draft = draft_of(&Mapping::defaults());
    draft
        .get_mut(&TableName::TreatmentCategories)
        .expect("table")
        .push(vec!["GOZ".into(), "2100".into(), String::new()]);
    let parsed = mapping_from_draft(&draft);
    let found: Vec<(usize, Option<String>)> = parsed
        .problems
        .iter()
        .map(|p| (p.row, p.column.clone()))
        .collect();
    assert_eq!(found, vec![(36, Some("Kategorie".into()))]);
}

#[test]
fn an_overlapping_row_is_imported_with_a_warning_a_shadowed_one_is_not() {
    // GOZ 2100-2120 of the later row go to the earlier one: worth a
    // warning, but the file is taken with every row.
    let overlapping = "Katalog;Muster;Kategorie\nGOZ;2000-2120;Füllung\nGOZ;2100-2200;Prothetik\nGOZ;*;Chirurgie\n";
    let import = import_file(
        &Mapping::defaults(),
        "treatment_categories.csv",
        overlapping.as_bytes(),
    )
    .expect("read");
    assert!(import.is_clean(), "{:?}", import.tables[0].problems);
    assert_eq!(import.errors().count(), 0);
    let warnings: Vec<(usize, Severity)> = import.problems().map(|p| (p.row, p.severity)).collect();
    assert_eq!(warnings, vec![(3, Severity::Warning)]);
    assert_eq!(import.tables[0].rows_kept, 3);
    assert_eq!(import.mapping.categories.len(), 3);
    assert_eq!(
        import.mapping.category(Some("GOZ"), Some("2110")),
        Category::Fuellung
    );
    assert_eq!(
        import.mapping.category(Some("GOZ"), Some("2150")),
        Category::Prothetik
    );
    assert!(
        import.mapping.validate().iter().all(|p| !p.is_error()),
        "saving is not blocked"
    );

    // A row the earlier one takes completely is still refused.
    let shadowed = "Katalog;Muster;Kategorie\nGOZ;2000-2200;Füllung\nGOZ;2100-2120;Prothetik\n";
    let import = import_file(
        &Mapping::defaults(),
        "treatment_categories.csv",
        shadowed.as_bytes(),
    )
    .expect("read");
    assert!(!import.is_clean());
    let errors: Vec<usize> = import.errors().map(|p| p.row).collect();
    assert_eq!(errors, vec![3]);
}
