//! The mapping tables: shipped defaults, validation with row numbers, and
//! versions stored in the ledger.

mod domain_support;

use ivoris_hubspot_sync::ledger::Ledger;
use ivoris_hubspot_sync::mapping::store::{
    list_versions, load_current, load_version, save_version,
};
use ivoris_hubspot_sync::mapping::table::CsvTables;
use ivoris_hubspot_sync::mapping::{
    AppointmentKind, AppointmentState, AppointmentTypeRule, Category, Counting, Mapping,
    PatientField, Problem, Severity, Stage, TableName,
};
use ivoris_hubspot_sync::sandbox::Size;
use ivoris_hubspot_sync::sandbox::data::World;

#[test]
fn defaults_load_and_validate_clean() {
    let parsed = CsvTables::defaults().parse();
    assert_eq!(parsed.problems, vec![]);
    let mapping = Mapping::defaults();
    assert_eq!(mapping, parsed.mapping);
    assert_eq!(mapping.validate(), vec![]);
    assert_eq!(mapping.won_after_days, 60);
    assert_eq!(mapping.appointment_types.len(), 18);
    assert_eq!(mapping.appointment_states.len(), 8);
    assert_eq!(mapping.categories.len(), 34);
    assert_eq!(mapping.entry_types.len(), 6);
    assert_eq!(mapping.contact_fields.len(), 9);
}

#[test]
fn default_stage_labels_are_the_pipeline_of_the_design() {
    let mapping = Mapping::defaults();
    let expected = [
        (Stage::Booked, "Termin gebucht"),
        (Stage::Consulted, "Erstberatung"),
        (Stage::InTreatment, "In Behandlung"),
        (Stage::Won, "Behandlung abgeschlossen"),
        (Stage::Lost, "Verloren"),
    ];
    for (stage, label) in expected {
        assert_eq!(mapping.stage_label(stage), Some(label), "{stage:?}");
    }
}

#[test]
fn default_states_and_entry_types() {
    let mapping = Mapping::defaults();
    let states = [
        ("Booked", Some(AppointmentState::Booked)),
        ("Confirmed", Some(AppointmentState::Confirmed)),
        ("Arrived", Some(AppointmentState::Arrived)),
        ("InTreatment", Some(AppointmentState::Arrived)),
        ("Completed", Some(AppointmentState::Completed)),
        ("completed", Some(AppointmentState::Completed)),
        ("Cancelled", Some(AppointmentState::Cancelled)),
        ("NoShow", Some(AppointmentState::NoShow)),
        ("Clarified", Some(AppointmentState::Clarified)),
        ("Verschoben", None),
        ("", None),
    ];
    for (raw, expected) in states {
        assert_eq!(mapping.appointment_state(raw), expected, "{raw}");
    }
    let types = [
        ("lst", Counting::Revenue, None),
        ("mat", Counting::Revenue, Some(Category::MaterialLabor)),
        ("lab", Counting::Revenue, Some(Category::MaterialLabor)),
        ("pabg", Counting::Separate, None),
        ("text", Counting::Ignored, None),
        ("note", Counting::Ignored, None),
    ];
    for (entry_type, counting, category) in types {
        let rule = mapping.entry_type(entry_type).expect("mapped");
        assert_eq!(
            (rule.counting, rule.category),
            (counting, category),
            "{entry_type}"
        );
    }
    assert!(mapping.entry_type("xyz").is_none());
}

#[test]
fn default_allow_list_minimises_health_data() {
    let mapping = Mapping::defaults();
    let enabled: Vec<(PatientField, &str)> = mapping
        .contact_fields
        .iter()
        .filter(|r| r.enabled)
        .map(|r| (r.field, r.property.as_str()))
        .collect();
    assert_eq!(
        enabled,
        vec![
            (PatientField::Firstname, "firstname"),
            (PatientField::Lastname, "lastname"),
            (PatientField::Email, "email"),
            (PatientField::Phone, "phone"),
            (PatientField::Mobile, "mobilephone"),
            (PatientField::Zip, "zip"),
            (PatientField::City, "city"),
        ]
    );
}

#[test]
fn unknown_appointment_type_is_treatment_and_reported() {
    let mapping = Mapping::defaults();
    let known = mapping.appointment_type(Some(" neupatient "), None);
    assert_eq!(
        (known.kind, known.opens_case, known.mapped),
        (AppointmentKind::Consultation, true, true)
    );
    let unknown = mapping.appointment_type(Some("Wurzelspitzenresektion"), None);
    assert_eq!(
        (unknown.kind, unknown.opens_case, unknown.mapped),
        (AppointmentKind::Treatment, true, false)
    );
    assert!(!mapping.appointment_type(None, None).mapped);
}

#[test]
fn defaults_classify_every_synthetic_code_as_domain_md_does() {
    let mapping = Mapping::defaults();
    let world = World::generate(7, Size::Small);
    let mut checked = 0;
    for location in &world.locations {
        for entry in location.entries.iter().chain(&location.pending_entries) {
            let entry_type = entry.entry_type.as_deref().unwrap_or("");
            let rule = mapping.entry_type(entry_type).expect("entry type mapped");
            if rule.counting != Counting::Revenue {
                continue;
            }
            let catalogue = entry.catalogue.as_deref().unwrap_or("");
            let code = entry.code.as_deref().unwrap_or("");
            let found = rule.category.unwrap_or_else(|| {
                mapping.category(entry.catalogue.as_deref(), entry.code.as_deref())
            });
            let expected = domain_support::domain_category(entry_type, catalogue, code)
                .unwrap_or("unklassifiziert");
            assert_eq!(found.label(), expected, "{entry_type} {catalogue} {code}");
            checked += 1;
        }
        for template in &location.templates {
            let name = template.name.as_deref();
            assert!(mapping.appointment_type(name, None).mapped, "{name:?}");
        }
        for appointment in &location.appointments {
            let state = appointment.state.as_deref().unwrap_or("");
            assert!(mapping.appointment_state(state).is_some(), "{state}");
        }
    }
    assert!(checked > 100, "only {checked} lines checked");
}

#[test]
fn synthetic_appointment_types_have_the_expected_kinds() {
    let mapping = Mapping::defaults();
    let kinds = [
        ("Erstberatung", AppointmentKind::Consultation),
        ("Neupatient", AppointmentKind::Consultation),
        ("Implantat-Beratung", AppointmentKind::Consultation),
        ("KFO-Beratung", AppointmentKind::Consultation),
        ("Kontrolle", AppointmentKind::Routine),
        ("PZR", AppointmentKind::Routine),
        ("Prophylaxe", AppointmentKind::Routine),
        ("Recall", AppointmentKind::Routine),
        ("Füllungstherapie", AppointmentKind::Treatment),
        ("Implantation", AppointmentKind::Treatment),
        ("Schmerz/Notfall", AppointmentKind::Treatment),
    ];
    for (label, kind) in kinds {
        assert_eq!(
            mapping.appointment_type(Some(label), None).kind,
            kind,
            "{label}"
        );
    }
}

/// The default tables with one table replaced.
fn tables_with(replace: impl FnOnce(&mut CsvTables)) -> CsvTables {
    let mut tables = CsvTables::defaults();
    replace(&mut tables);
    tables
}

/// Checks that parsing reports exactly these (table, row) problems and that
/// each reason mentions the given German and English words.
fn check_problems(tables: CsvTables, expected: &[(TableName, usize, &str, &str)]) {
    let problems = tables.parse().problems;
    let found: Vec<(TableName, usize)> = problems.iter().map(|p| (p.table, p.row)).collect();
    let wanted: Vec<(TableName, usize)> = expected.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(found, wanted, "{problems:#?}");
    for (problem, (_, _, de, en)) in problems.iter().zip(expected) {
        assert!(problem.reason_de.contains(de), "{problem}");
        assert!(problem.reason_en.contains(en), "{problem}");
    }
}

const CATEGORY_HEADER: &str = "\u{feff}Katalog;Muster;Kategorie\n";

#[test]
fn validation_reports_problems_with_row_numbers() {
    check_problems(
        tables_with(|t| {
            t.appointment_states =
                "Ivoris-Wert;Status\nBooked;gebucht\nCompleted;abgeschlossen\nbooked;bestätigt\n"
                    .to_owned()
        }),
        &[(
            TableName::AppointmentStates,
            4,
            "früheren Zeile",
            "earlier row",
        )],
    );
    check_problems(
        tables_with(|t| {
            t.treatment_categories = format!(
                "{CATEGORY_HEADER}GOZ;2000-2999;Füllung\nGOZ;2100;Endodontie\n*;13*;Füllung\nBEMA;131;Füllung\n"
            )
        }),
        &[
            (TableName::TreatmentCategories, 3, "Zeile 2", "row 2"),
            (TableName::TreatmentCategories, 5, "Zeile 4", "row 4"),
        ],
    );
    check_problems(
        tables_with(|t| {
            t.treatment_categories = format!(
                "{CATEGORY_HEADER}GOZ;2120-2050;Füllung\nGOZ;1*0;Füllung\nGOZ;9000;Zauberei\nGOZ;;Füllung\nGOZ;IP1-5;Füllung\n"
            )
        }),
        &[
            (
                TableName::TreatmentCategories,
                2,
                "untere Grenze",
                "lower bound",
            ),
            (
                TableName::TreatmentCategories,
                3,
                "nur am Ende",
                "only at the end",
            ),
            (TableName::TreatmentCategories, 4, "unbekannt", "unknown"),
            (TableName::TreatmentCategories, 5, "leer", "empty"),
            (
                TableName::TreatmentCategories,
                6,
                "dieselben Buchstaben",
                "same letters",
            ),
        ],
    );
    check_problems(
        tables_with(|t| {
            t.contact_fields = "Patientenfeld;HubSpot-Eigenschaft;Personenbezogen;Aktiv\n\
                 email;email;ja;ja\ninsurance_number;versicherung;ja;ja\nphone;email;ja;vielleicht\n"
                .to_owned()
        }),
        &[
            (
                TableName::ContactFields,
                3,
                "insurance_number",
                "insurance_number",
            ),
            (TableName::ContactFields, 4, "vielleicht", "vielleicht"),
        ],
    );
    check_problems(
        tables_with(|t| {
            t.stages = "Phase;Bezeichnung in HubSpot;Tage ohne Aktivität\nbooked;Termin gebucht;\nwon;Gewonnen;sechzig\n".to_owned()
        }),
        &[
            (TableName::Stages, 3, "sechzig", "sechzig"),
            (TableName::Stages, 0, "consulted", "consulted"),
            (TableName::Stages, 0, "in_treatment", "in_treatment"),
            (TableName::Stages, 0, "lost", "lost"),
        ],
    );
}

#[test]
fn an_empty_label_and_a_duplicate_label_are_both_reported() {
    check_problems(
        tables_with(|t| {
            t.appointment_types =
                "Terminart;Art;Eröffnet Fall\nRecall;Routine;nein\nrecall;Behandlung;ja\n;Routine;ja\n"
                    .to_owned()
        }),
        &[
            (TableName::AppointmentTypes, 4, "leer", "empty"),
            (
                TableName::AppointmentTypes,
                3,
                "früheren Zeile",
                "earlier row",
            ),
        ],
    );
}

#[test]
fn store_round_trip_keeps_every_version() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    assert_eq!(load_current(&ledger).expect("load"), Mapping::defaults());
    assert_eq!(list_versions(&ledger).expect("list"), vec![]);

    let mut changed = Mapping::defaults();
    changed.won_after_days = 90;
    changed.appointment_types[7].opens_case = false;
    let first =
        save_version(&mut ledger, &Mapping::defaults(), "Frau Schäfer", "Start").expect("save");
    let second =
        save_version(&mut ledger, &changed, "Frau Schäfer", "Recall ohne Fall").expect("save");
    assert!(second > first);

    assert_eq!(load_current(&ledger).expect("load"), changed);
    assert_eq!(
        load_version(&ledger, first).expect("load"),
        Some(Mapping::defaults())
    );
    assert_eq!(load_version(&ledger, second + 1).expect("load"), None);
    let versions = list_versions(&ledger).expect("list");
    let summary: Vec<(i64, &str, &str)> = versions
        .iter()
        .map(|v| (v.version, v.author.as_str(), v.comment.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (first, "Frau Schäfer", "Start"),
            (second, "Frau Schäfer", "Recall ohne Fall")
        ]
    );
}

#[test]
fn a_template_id_row_wins_over_the_label() {
    let mut mapping = Mapping::defaults();
    mapping.appointment_types.push(AppointmentTypeRule {
        label: "Beratung (alt)".to_owned(),
        template_id: Some("t-eb".to_owned()),
        kind: AppointmentKind::Consultation,
        opens_case: false,
    });
    let resolved = mapping.appointment_type(Some("Füllungstherapie"), Some("t-eb"));
    assert_eq!(
        (resolved.kind, resolved.opens_case, resolved.mapped),
        (AppointmentKind::Consultation, false, true)
    );
    let by_label = mapping.appointment_type(Some("Füllungstherapie"), Some("t-other"));
    assert_eq!(by_label.kind, AppointmentKind::Treatment);
    assert!(by_label.mapped);

    mapping.appointment_types.push(AppointmentTypeRule {
        label: "Beratung (neu)".to_owned(),
        template_id: Some("t-eb".to_owned()),
        kind: AppointmentKind::Consultation,
        opens_case: true,
    });
    let problems: Vec<(TableName, usize)> = mapping
        .validate()
        .iter()
        .map(|p| (p.table, p.row))
        .collect();
    assert_eq!(problems, vec![(TableName::AppointmentTypes, 21)]);
}

#[test]
fn csv_export_reads_back_to_the_same_mapping() {
    let mut mapping = Mapping::defaults();
    mapping.won_after_days = 45;
    mapping.appointment_types[0].template_id = Some("t-eb".to_owned());
    mapping.appointment_types[1].label = "Neu; Patient \"A\"".to_owned();
    let tables = CsvTables::from_mapping(&mapping).expect("writes");
    assert!(
        tables
            .treatment_categories
            .starts_with("\u{feff}Katalog;Muster;Kategorie\r\n")
    );
    assert!(
        tables
            .treatment_categories
            .contains("BEMA;Ä925-Ä935;Diagnostik\r\n")
    );
    let parsed = tables.parse();
    assert_eq!(parsed.problems, vec![]);
    assert_eq!(parsed.mapping, mapping);
    assert_eq!(
        CsvTables::from_mapping(&Mapping::defaults())
            .expect("writes")
            .parse()
            .mapping,
        Mapping::defaults()
    );
}

fn check_shadowed(earlier: (&str, &str), later: (&str, &str), expected: bool) {
    let tables = tables_with(|t| {
        t.treatment_categories = format!(
            "{CATEGORY_HEADER}{};{};Füllung\n{};{};Chirurgie\n",
            earlier.0, earlier.1, later.0, later.1
        )
    });
    // Overlaps that leave the later row some codes are warnings, not this.
    let errors: Vec<Problem> = tables
        .parse()
        .problems
        .into_iter()
        .filter(Problem::is_error)
        .collect();
    assert_eq!(
        !errors.is_empty(),
        expected,
        "{earlier:?} then {later:?}: {errors:#?}"
    );
    if expected {
        assert_eq!(errors[0].row, 3);
    }
}

/// Category rows `(catalogue, pattern, category)` give exactly these
/// `(line, severity)` problems; a warning's reasons contain the words given.
fn check_order(rows: &[(&str, &str, &str)], expected: &[(usize, Severity, &[&str])]) {
    let body: String = rows
        .iter()
        .map(|(catalogue, pattern, category)| format!("{catalogue};{pattern};{category}\n"))
        .collect();
    let problems = tables_with(|t| t.treatment_categories = format!("{CATEGORY_HEADER}{body}"))
        .parse()
        .problems;
    let found: Vec<(usize, Severity)> = problems.iter().map(|p| (p.row, p.severity)).collect();
    let wanted: Vec<(usize, Severity)> = expected.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(found, wanted, "{rows:?}: {problems:#?}");
    for (problem, (_, _, words)) in problems.iter().zip(expected) {
        for word in *words {
            assert!(
                problem.reason_de.contains(word) || problem.reason_en.contains(word),
                "{word}: {problem}"
            );
        }
    }
}

#[test]
fn overlapping_category_rows_are_warnings() {
    use Severity::{Error, Warning};
    // Specific first, general later: intended, no message.
    check_order(&[("GOZ", "2*", "Füllung"), ("GOZ", "*", "Chirurgie")], &[]);
    check_order(
        &[
            ("GOZ", "2050-2120", "Füllung"),
            ("BEMA", "13a-13h", "Füllung"),
            ("GOZ", "2*", "Prothetik"),
            ("*", "*", "Diagnostik"),
        ],
        &[],
    );
    // A range partly taken by an earlier one of another category.
    check_order(
        &[
            ("GOZ", "2000-2100", "Füllung"),
            ("GOZ", "2050-2200", "Prothetik"),
        ],
        &[(
            3,
            Warning,
            &[
                "Zeile 2",
                "Kategorie Füllung",
                "row 2",
                "z. B. 2100",
                "e.g. 2100",
            ],
        )],
    );
    // The same category either way: nothing changes, nothing to say.
    check_order(
        &[
            ("GOZ", "2000-2100", "Füllung"),
            ("GOZ", "2050-2200", "Füllung"),
        ],
        &[],
    );
    // Other catalogues never meet; every catalogue meets each.
    check_order(
        &[
            ("BEMA", "2000-2100", "Füllung"),
            ("GOZ", "2050-2200", "Prothetik"),
        ],
        &[],
    );
    check_order(
        &[("*", "2100", "Endodontie"), ("GOZ", "2000-2200", "Füllung")],
        &[(3, Warning, &["Zeile 2", "Endodontie", "2100"])],
    );
    check_order(
        &[
            ("BEMA", "28,29,31", "Endodontie"),
            ("bema", "29,40", "Chirurgie"),
        ],
        &[(3, Warning, &["z. B. 29"])],
    );
    check_order(
        &[
            ("BEMA", "1*", "Prophylaxe"),
            ("BEMA", "100-200", "Prothetik"),
        ],
        &[(3, Warning, &["Zeile 2"])],
    );
    // Fully taken stays an error, without a warning besides.
    check_order(
        &[
            ("GOZ", "2000-2999", "Füllung"),
            ("GOZ", "2100", "Endodontie"),
        ],
        &[(3, Error, &["Zeile 2"])],
    );
    // A dead row takes nothing; several rows taking part are all named.
    check_order(
        &[
            ("GOZ", "2000-2200", "Füllung"),
            ("GOZ", "2100-2150", "Prothetik"),
            ("GOZ", "2140-2300", "Chirurgie"),
        ],
        &[(3, Error, &[]), (4, Warning, &["Zeile 2 (", "row 2 ("])],
    );
    check_order(
        &[
            ("GOZ", "2000-2100", "Füllung"),
            ("GOZ", "2200-2300", "Prothetik"),
            ("GOZ", "2050-2250", "Chirurgie"),
        ],
        &[(4, Warning, &["Zeile 2", "ebenso Zeile 3", "likewise row 3"])],
    );
}

#[test]
fn the_shipped_categories_have_no_overlap_warnings() {
    // The defaults are laid out specific first: nothing to warn about.
    let problems = CsvTables::defaults().parse().problems;
    assert_eq!(problems, vec![]);
    let mapping = Mapping::defaults();
    assert!(
        mapping
            .validate()
            .iter()
            .all(|p| p.severity != Severity::Warning)
    );
}

#[test]
fn shadowed_category_rows() {
    check_shadowed(("GOZ", "2000-2999"), ("GOZ", "2050-2120"), true);
    check_shadowed(("BEMA", "13a-13h"), ("BEMA", "13c-13d"), true);
    check_shadowed(("BEMA", "43-48"), ("BEMA", "47a"), true);
    check_shadowed(("BEMA", "43-48"), ("BEMA", "43-49"), false);
    check_shadowed(("BEMA", "0010-0090"), ("BEMA", "10-90"), false);
    check_shadowed(("*", "*"), ("GOZ", "1040"), true);
    // GOZ 1040 goes to the earlier row, other catalogues' 1040 to the
    // later one: a warning, not this error.
    check_shadowed(("GOZ", "*"), ("*", "1040"), false);
    check_shadowed(("GOZ", "1*"), ("GOZ", "10*"), true);
    check_shadowed(("GOZ", "10*"), ("GOZ", "1*"), false);
    check_shadowed(("BEMA", "IP1,IP2,IP3"), ("BEMA", "IP2"), true);
    check_shadowed(("BEMA", "IP1-IP5"), ("BEMA", "IP2,IP4"), true);
    check_shadowed(("BEMA", "IP2"), ("BEMA", "IP1-IP5"), false);
    check_shadowed(("GOZ", "4050-4060"), ("GOZ", "4000-4150"), false);
}

#[test]
fn an_unreadable_stored_version_is_an_error_not_the_defaults() {
    let ledger = Ledger::open_in_memory().expect("ledger");
    ledger
        .connection()
        .execute(
            "INSERT INTO mapping_versions (created_at, author, comment, tables)
             VALUES ('2026-10-01T08:00:00.000Z', 'x', 'y', '{\"stages\": 1}')",
            [],
        )
        .expect("insert");
    let error = load_current(&ledger).expect_err("unreadable");
    assert!(error.to_string().contains("Version 1"), "{error}");
}
