//! The planning rules, table-driven: cases, stages, entries to cases,
//! revenue, category patterns, property sets and their hashes. Every
//! expected value is worked out by hand from the inputs.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use ivoris_hubspot_sync::mapping::{
    AppointmentKind, AppointmentTypeRule, CataloguePattern, Category, CategoryRule, CodePattern,
    FieldRule, Mapping, PatientField, Stage,
};
use ivoris_hubspot_sync::plan::{
    AppointmentFacts, Case, DealContext, Decision, EntryFacts, LossReason, PatientCases,
    PatientFacts, PropertySet, StageIds, StageOutcome, UnassignedReason, appointment_properties,
    assign, contact_properties, deal_properties, derive_stage, derive_stages, format_cents,
    revenue,
};

const LOCATION: &str = "magdeburg";
const PATIENT: &str = "p1";

/// Day `n` of the test calendar (day 0 = Monday, 5 January 2026).
fn day(n: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 5).expect("date") + Duration::days(n)
}

/// 09:00 on day `n`.
fn at(n: i64) -> NaiveDateTime {
    day(n).and_hms_opt(9, 0, 0).expect("time")
}

fn appt(id: &str, n: i64, state: &str, label: &str) -> AppointmentFacts {
    AppointmentFacts {
        id: id.to_owned(),
        patient_id: PATIENT.to_owned(),
        start: at(n),
        duration_minutes: Some(30),
        state: state.to_owned(),
        type_label: Some(label.to_owned()),
        template_id: None,
        deleted: false,
    }
}

fn entry(
    id: &str,
    n: i64,
    entry_type: &str,
    catalogue: &str,
    code: &str,
    cents: i64,
) -> EntryFacts {
    EntryFacts {
        id: id.to_owned(),
        patient_id: PATIENT.to_owned(),
        date: day(n),
        entry_type: entry_type.to_owned(),
        catalogue: Some(catalogue.to_owned()),
        code: Some(code.to_owned()),
        amount_cents: cents,
    }
}

/// A filling billed on day `n`.
fn filling(id: &str, n: i64) -> EntryFacts {
    entry(id, n, "lst", "BEMA", "13a", 3825)
}

fn case_of(members: &[AppointmentFacts], duplicate: bool) -> Case {
    let mut members = members.to_vec();
    members.sort_by_key(|m| m.start);
    Case {
        key: format!("{LOCATION}:{}", members[0].id),
        location: LOCATION.to_owned(),
        patient_id: PATIENT.to_owned(),
        opening_appointment_id: members[0].id.clone(),
        opened_at: members[0].start,
        members,
        duplicate,
    }
}

// ---------------------------------------------------------------- stages

struct StageCase {
    name: &'static str,
    members: Vec<AppointmentFacts>,
    entries: Vec<EntryFacts>,
    duplicate: bool,
    now: i64,
    expected: (Stage, Option<LossReason>, Option<i64>, Option<i64>),
}

fn check_stage(case: StageCase) {
    let mapping = Mapping::defaults();
    let outcome = derive_stage(
        &case_of(&case.members, case.duplicate),
        &case.entries,
        &mapping,
        at(case.now),
    );
    let (stage, loss_reason, start, closed) = case.expected;
    let expected = StageOutcome {
        stage,
        loss_reason,
        behandlungsstart: start.map(day),
        closed_on: closed.map(day),
    };
    assert_eq!(outcome, expected, "{}", case.name);
}

fn stage(
    name: &'static str,
    members: Vec<AppointmentFacts>,
    entries: Vec<EntryFacts>,
    now: i64,
    expected: (Stage, Option<LossReason>, Option<i64>, Option<i64>),
) -> StageCase {
    StageCase {
        name,
        members,
        entries,
        duplicate: false,
        now,
        expected,
    }
}

#[test]
fn stage_rules() {
    use LossReason::*;
    use Stage::*;
    let cases = vec![
        stage(
            "a booked first consultation",
            vec![appt("a", 10, "Booked", "Erstberatung")],
            vec![],
            5,
            (Booked, None, None, None),
        ),
        stage(
            "a billed consultation is consulted, not in treatment",
            vec![appt("a", 1, "Completed", "Erstberatung")],
            vec![entry("e1", 1, "lst", "BEMA", "01", 2152)],
            2,
            (Consulted, None, None, None),
        ),
        stage(
            "a completed treatment with revenue",
            vec![
                appt("a", 1, "Completed", "Erstberatung"),
                appt("b", 5, "Completed", "Füllungstherapie"),
                appt("c", 9, "Completed", "Füllungstherapie"),
            ],
            vec![filling("e1", 5), filling("e2", 9)],
            10,
            (InTreatment, None, Some(5), None),
        ),
        stage(
            "a completed treatment whose lines are not there yet",
            vec![
                appt("a", 1, "Completed", "Erstberatung"),
                appt("b", 5, "Completed", "Füllungstherapie"),
            ],
            vec![],
            6,
            (Consulted, None, None, None),
        ),
        stage(
            "only separate and ignored lines are no treatment",
            vec![appt("b", 5, "Completed", "ZE-Eingliederung")],
            vec![
                entry("e1", 5, "pabg", "Eigenanteil", "EA", 50000),
                entry("e2", 5, "text", "", "", 0),
            ],
            6,
            (Booked, None, None, None),
        ),
        stage(
            "revenue on another day does not make a treatment",
            vec![appt("b", 5, "Completed", "Füllungstherapie")],
            vec![filling("e1", 6)],
            7,
            (Booked, None, None, None),
        ),
        stage(
            "a routine check-up with billing is treatment",
            vec![appt("a", 3, "Completed", "Kontrolle")],
            vec![entry("e1", 3, "lst", "BEMA", "01", 2152)],
            4,
            (InTreatment, None, Some(3), None),
        ),
        stage(
            "exactly won_after_days after the last activity: still in treatment",
            vec![appt("b", 5, "Completed", "Füllungstherapie")],
            vec![filling("e1", 5)],
            65,
            (InTreatment, None, Some(5), None),
        ),
        stage(
            "one day more: won, closed on the last activity",
            vec![appt("b", 5, "Completed", "Füllungstherapie")],
            vec![filling("e1", 5)],
            66,
            (Won, None, Some(5), Some(5)),
        ),
        stage(
            "a late line is activity",
            vec![appt("b", 5, "Completed", "Füllungstherapie")],
            vec![
                filling("e1", 5),
                entry("e2", 20, "lab", "BEL", "1022", 18000),
            ],
            80,
            (InTreatment, None, Some(5), None),
        ),
        stage(
            "a booked future appointment keeps the treatment open",
            vec![
                appt("b", 5, "Completed", "Füllungstherapie"),
                appt("c", 100, "Booked", "ZE-Eingliederung"),
            ],
            vec![filling("e1", 5)],
            90,
            (InTreatment, None, Some(5), None),
        ),
        stage(
            "a cancelled future appointment neither blocks nor counts as activity",
            vec![
                appt("b", 5, "Completed", "Füllungstherapie"),
                appt("c", 100, "Cancelled", "ZE-Eingliederung"),
            ],
            vec![filling("e1", 5)],
            90,
            (Won, None, Some(5), Some(5)),
        ),
        stage(
            "booked and the only appointment cancelled",
            vec![appt("a", 3, "Cancelled", "Erstberatung")],
            vec![],
            4,
            (Lost, Some(Cancelled), None, Some(3)),
        ),
        stage(
            "the latest appointment cancelled ahead of time",
            vec![appt("a", 10, "Cancelled", "Erstberatung")],
            vec![],
            4,
            (Lost, Some(Cancelled), None, Some(10)),
        ),
        stage(
            "cancelled but another appointment is booked",
            vec![
                appt("a", 3, "Cancelled", "Erstberatung"),
                appt("b", 10, "Booked", "Erstberatung"),
            ],
            vec![],
            4,
            (Booked, None, None, None),
        ),
        stage(
            "consulted, then a no-show",
            vec![
                appt("a", 1, "Completed", "Erstberatung"),
                appt("b", 5, "NoShow", "Füllungstherapie"),
            ],
            vec![],
            6,
            (Lost, Some(Cancelled), None, Some(5)),
        ),
        stage(
            "a cancellation during treatment does not lose the case",
            vec![
                appt("a", 1, "Completed", "Füllungstherapie"),
                appt("b", 5, "Cancelled", "Füllungstherapie"),
            ],
            vec![filling("e1", 1)],
            6,
            (InTreatment, None, Some(1), None),
        ),
        stage(
            "consultation clarified",
            vec![appt("a", 1, "Clarified", "Neupatient")],
            vec![],
            2,
            (Lost, Some(ConsultationClarified), None, Some(1)),
        ),
        stage(
            "clarified wins over a cancellation",
            vec![
                appt("a", 1, "Clarified", "Implantat-Beratung"),
                appt("b", 5, "Cancelled", "Implantation"),
            ],
            vec![],
            6,
            (Lost, Some(ConsultationClarified), None, Some(1)),
        ),
        stage(
            "a clarified side consultation does not end a treatment",
            vec![
                appt("a", 1, "Completed", "Füllungstherapie"),
                appt("b", 3, "Clarified", "Implantat-Beratung"),
            ],
            vec![filling("e1", 1)],
            4,
            (InTreatment, None, Some(1), None),
        ),
        stage(
            "a clarified treatment type is not a consultation",
            vec![appt("a", 1, "Clarified", "Füllungstherapie")],
            vec![],
            2,
            (Booked, None, None, None),
        ),
        stage(
            "an unmapped state is left out, never guessed",
            vec![appt("a", 1, "Verschoben", "Erstberatung")],
            vec![],
            2,
            (Booked, None, None, None),
        ),
        stage(
            "lines after now do not count yet",
            vec![appt("b", 5, "Completed", "Füllungstherapie")],
            vec![filling("e1", 5)],
            4,
            (Booked, None, None, None),
        ),
    ];
    for case in cases {
        check_stage(case);
    }
}

#[test]
fn a_confirmed_duplicate_is_lost_whatever_else_holds() {
    check_stage(StageCase {
        name: "duplicate in treatment",
        members: vec![
            appt("a", 1, "Completed", "Füllungstherapie"),
            appt("b", 30, "Booked", "Füllungstherapie"),
        ],
        entries: vec![filling("e1", 1)],
        duplicate: true,
        now: 10,
        expected: (Stage::Lost, Some(LossReason::Duplicate), Some(1), Some(1)),
    });
}

#[test]
fn reverting_a_completion_pushes_the_stage_back() {
    let mapping = Mapping::defaults();
    let entries = vec![filling("e1", 5)];
    let stage_of = |consultation: &str, treatment: &str| {
        let members = [
            appt("a", 1, consultation, "Erstberatung"),
            appt("b", 5, treatment, "Füllungstherapie"),
        ];
        let outcome = derive_stage(&case_of(&members, false), &entries, &mapping, at(6));
        (outcome.stage, outcome.behandlungsstart)
    };
    assert_eq!(
        stage_of("Completed", "Completed"),
        (Stage::InTreatment, Some(day(5)))
    );
    assert_eq!(stage_of("Completed", "Booked"), (Stage::Consulted, None));
    assert_eq!(stage_of("Booked", "Booked"), (Stage::Booked, None));
}

// ---------------------------------------------------------------- cases

/// Assigns a whole history at once and compares the resulting cases (member
/// ids, opener first) and the unassigned appointments.
fn check_cases(
    mapping: &Mapping,
    history: &[AppointmentFacts],
    entries: &[EntryFacts],
    expected_cases: &[&[&str]],
    expected_unassigned: &[&str],
) {
    let mut cases = PatientCases::new(LOCATION, PATIENT);
    cases.admit(history, entries, mapping);
    let found: Vec<Vec<&str>> = cases
        .cases
        .iter()
        .map(|c| c.members.iter().map(|m| m.id.as_str()).collect())
        .collect();
    let expected: Vec<Vec<&str>> = expected_cases.iter().map(|c| c.to_vec()).collect();
    assert_eq!(found, expected);
    let keys: Vec<String> = cases.cases.iter().map(|c| c.key.clone()).collect();
    let expected_keys: Vec<String> = expected_cases
        .iter()
        .map(|c| format!("{LOCATION}:{}", c[0]))
        .collect();
    assert_eq!(keys, expected_keys);
    assert_eq!(cases.unassigned, expected_unassigned);
}

#[test]
fn case_formation() {
    let mapping = Mapping::defaults();
    // A consultation and its treatment series form one case, in start
    // order whatever the input order.
    check_cases(
        &mapping,
        &[
            appt("c", 20, "Completed", "Füllungstherapie"),
            appt("a", 1, "Completed", "Erstberatung"),
            appt("b", 10, "Completed", "Füllungstherapie"),
        ],
        &[filling("e1", 10), filling("e2", 20)],
        &[&["a", "b", "c"]],
        &[],
    );
    // A clarified consultation closes its case: the next booking opens a
    // new one, the closed case is never reopened.
    check_cases(
        &mapping,
        &[
            appt("a", 1, "Clarified", "Erstberatung"),
            appt("b", 30, "Booked", "Erstberatung"),
            appt("c", 40, "Booked", "Füllungstherapie"),
        ],
        &[],
        &[&["a"], &["b", "c"]],
        &[],
    );
    // A cancelled booking with nothing else booked is lost by the time the
    // next appointment starts.
    check_cases(
        &mapping,
        &[
            appt("a", 1, "Cancelled", "Erstberatung"),
            appt("b", 8, "Completed", "Erstberatung"),
        ],
        &[],
        &[&["a"], &["b"]],
        &[],
    );
    // 60 days after the last activity the treatment is still open (joins),
    // 61 days after it is won (a new case).
    check_cases(
        &mapping,
        &[
            appt("a", 1, "Completed", "Füllungstherapie"),
            appt("b", 61, "Completed", "Kontrolle"),
        ],
        &[filling("e1", 1)],
        &[&["a", "b"]],
        &[],
    );
    check_cases(
        &mapping,
        &[
            appt("a", 1, "Completed", "Füllungstherapie"),
            appt("b", 62, "Completed", "Kontrolle"),
        ],
        &[filling("e1", 1)],
        &[&["a"], &["b"]],
        &[],
    );
    // The next visit's own lines do not keep the previous case alive.
    check_cases(
        &mapping,
        &[
            appt("a", 1, "Completed", "Füllungstherapie"),
            appt("b", 100, "Completed", "Kontrolle"),
        ],
        &[
            filling("e1", 1),
            entry("e2", 100, "lst", "BEMA", "01", 2152),
        ],
        &[&["a"], &["b"]],
        &[],
    );
}

#[test]
fn types_that_open_no_case_and_ignored_types() {
    let mut mapping = Mapping::defaults();
    for rule in &mut mapping.appointment_types {
        if rule.label == "Recall" {
            rule.opens_case = false;
        }
    }
    mapping.appointment_types.push(AppointmentTypeRule {
        label: "Blocker".to_owned(),
        template_id: None,
        kind: AppointmentKind::Ignore,
        opens_case: true,
    });
    check_cases(
        &mapping,
        &[
            appt("r1", 1, "Completed", "Recall"),
            appt("a", 5, "Booked", "Erstberatung"),
            appt("r2", 6, "Booked", "Recall"),
            appt("x", 7, "Booked", "Blocker"),
        ],
        &[],
        &[&["a", "r2"]],
        &["r1", "x"],
    );
    let assignments = assign(
        &PatientCases::new(LOCATION, PATIENT),
        &[
            appt("r1", 1, "Completed", "Recall"),
            appt("x", 2, "Booked", "Blocker"),
            appt("u", 3, "Booked", "Wurzelspitzenresektion"),
        ],
        &[],
        &mapping,
    );
    let found: Vec<(&str, &Decision, bool)> = assignments
        .iter()
        .map(|a| (a.appointment_id.as_str(), &a.decision, a.unmapped_type))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "r1",
                &Decision::Unassigned(UnassignedReason::NoOpenCase),
                false
            ),
            (
                "x",
                &Decision::Unassigned(UnassignedReason::IgnoredType),
                false
            ),
            ("u", &Decision::Opened(format!("{LOCATION}:u")), true),
        ]
    );
}

#[test]
fn membership_is_sticky() {
    let mapping = Mapping::defaults();
    // The existing case was formed when its consultation was still booked;
    // now it is clarified (closed), but its members stay where they are.
    let existing = PatientCases {
        location: LOCATION.to_owned(),
        patient_id: PATIENT.to_owned(),
        cases: vec![case_of(
            &[
                appt("a", 1, "Clarified", "Erstberatung"),
                appt("b", 5, "Booked", "Füllungstherapie"),
            ],
            false,
        )],
        unassigned: vec!["r".to_owned()],
    };
    let new = [
        appt("b", 5, "Booked", "Füllungstherapie"),
        appt("r", 6, "Booked", "Recall"),
        appt("c", 9, "Booked", "Füllungstherapie"),
        AppointmentFacts {
            patient_id: "someone-else".to_owned(),
            ..appt("z", 9, "Booked", "Füllungstherapie")
        },
    ];
    let assignments = assign(&existing, &new, &[], &mapping);
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0].appointment_id, "c");
    assert_eq!(
        assignments[0].decision,
        Decision::Opened(format!("{LOCATION}:c"))
    );
    let mut after = existing.clone();
    after.admit(&new, &[], &mapping);
    assert_eq!(after.cases[0], existing.cases[0]);
}

#[test]
fn two_locations_are_independent() {
    let mapping = Mapping::defaults();
    let history = [appt("a", 1, "Booked", "Erstberatung")];
    let mut here = PatientCases::new("magdeburg", PATIENT);
    let mut there = PatientCases::new("leipzig", PATIENT);
    here.admit(&history, &[], &mapping);
    there.admit(&history, &[], &mapping);
    assert_eq!(here.cases[0].key, "magdeburg:a");
    assert_eq!(there.cases[0].key, "leipzig:a");
    let stages: Vec<Stage> = [&here, &there]
        .iter()
        .flat_map(|c| derive_stages(c, &[], &mapping, at(0)))
        .map(|o| o.stage)
        .collect();
    assert_eq!(stages, vec![Stage::Booked, Stage::Booked]);
}

#[test]
fn an_earlier_case_reopened_by_changed_facts_is_still_closed() {
    let mapping = Mapping::defaults();
    let mut cases = PatientCases::new(LOCATION, PATIENT);
    cases.admit(
        &[
            appt("a", 1, "Clarified", "Erstberatung"),
            appt("b", 30, "Booked", "Erstberatung"),
        ],
        &[],
        &mapping,
    );
    assert_eq!(cases.cases.len(), 2);
    // Staff correct the first consultation to "completed": it would be
    // consulted (open) again, but a later case exists.
    cases.cases[0].members[0].state = "Completed".to_owned();
    let outcomes = derive_stages(&cases, &[], &mapping, at(10));
    let found: Vec<(Stage, Option<LossReason>)> =
        outcomes.iter().map(|o| (o.stage, o.loss_reason)).collect();
    assert_eq!(
        found,
        vec![
            (Stage::Lost, Some(LossReason::Superseded)),
            (Stage::Booked, None)
        ]
    );
}

#[test]
fn entries_belong_to_the_case_whose_span_holds_their_date() {
    let mapping = Mapping::defaults();
    let mut cases = PatientCases::new(LOCATION, PATIENT);
    cases.admit(
        &[
            appt("a", 1, "Clarified", "Erstberatung"),
            appt("b", 50, "Booked", "Erstberatung"),
        ],
        &[],
        &mapping,
    );
    let entries = [
        filling("before", 0),
        filling("first-day", 1),
        filling("last-day", 49),
        filling("second", 50),
        filling("later", 400),
        EntryFacts {
            patient_id: "someone-else".to_owned(),
            ..filling("other", 10)
        },
    ];
    let split = cases.entries_by_case(&entries);
    let ids =
        |lines: &[EntryFacts]| -> Vec<String> { lines.iter().map(|e| e.id.clone()).collect() };
    let found: BTreeMap<String, Vec<String>> = split
        .by_case
        .iter()
        .map(|(key, lines)| (key.clone(), ids(lines)))
        .collect();
    let expected: BTreeMap<String, Vec<String>> = [
        ("magdeburg:a", vec!["first-day", "last-day"]),
        ("magdeburg:b", vec!["second", "later"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(found, expected);
    assert_eq!(ids(&split.before_first_case), vec!["before"]);
}

// ---------------------------------------------------------------- revenue

#[test]
fn revenue_in_cents_by_entry_type_and_category() {
    let mapping = Mapping::defaults();
    let entries = [
        entry("1", 1, "lst", "GOZ", "1040", 3050),
        entry("2", 1, "lst", "BEMA", "13a", 4000),
        entry("3", 1, "mat", "Material", "KOMP", 350),
        entry("4", 1, "lab", "BEL", "1022", 18001),
        entry("5", 1, "pabg", "Eigenanteil", "EA", 20000),
        entry("6", 1, "text", "", "", 0),
        entry("7", 1, "lst", "BEMA", "38", 1195),
        entry("8", 1, "xyz", "GOZ", "1040", 500),
        entry("9", 1, "LST", "GOZ", "1040", 1),
    ];
    let sums = revenue(&entries, &mapping);
    assert_eq!(sums.total_cents, 3050 + 4000 + 350 + 18001 + 1195 + 1);
    assert_eq!(sums.separate_cents, 20000);
    assert_eq!(sums.ignored_cents, 500);
    let nonzero: Vec<(Category, i64)> = sums
        .per_category
        .iter()
        .filter(|(_, cents)| **cents != 0)
        .map(|(c, cents)| (*c, *cents))
        .collect();
    assert_eq!(
        nonzero,
        vec![
            (Category::Prophylaxe, 3051),
            (Category::Fuellung, 4000),
            (Category::MaterialLabor, 18351),
            (Category::Unklassifiziert, 1195),
        ]
    );
    assert_eq!(sums.per_category.len(), 12);
    assert_eq!(
        sums.unmapped_entry_types.iter().collect::<Vec<_>>(),
        vec!["xyz"]
    );
    // Lab costs are the largest sum, but pass-through costs do not name
    // the treatment.
    assert_eq!(sums.dominant_category(), Some(Category::Fuellung));
}

fn check_dominant(entries: &[EntryFacts], expected: Option<Category>) {
    let sums = revenue(entries, &Mapping::defaults());
    assert_eq!(sums.dominant_category(), expected, "{entries:?}");
}

#[test]
fn dominant_category() {
    check_dominant(&[], None);
    check_dominant(
        &[
            entry("1", 1, "lst", "BEMA", "13a", 1000),
            entry("2", 1, "lst", "GOZ", "1040", 1000),
        ],
        Some(Category::Prophylaxe),
    );
    check_dominant(
        &[
            entry("1", 1, "lst", "GOZ", "6030", 100),
            entry("2", 1, "lab", "BEB", "ALN", 250000),
        ],
        Some(Category::Kieferorthopaedie),
    );
    check_dominant(
        &[entry("1", 1, "mat", "Material", "IMPL", 100)],
        Some(Category::MaterialLabor),
    );
    check_dominant(
        &[
            entry("1", 1, "lst", "BEMA", "13a", 5000),
            entry("2", 2, "lst", "BEMA", "13a", -5000),
        ],
        None,
    );
    check_dominant(&[entry("1", 1, "pabg", "Ausfall", "AUSF", 5000)], None);
}

#[test]
fn cents_format_for_hubspot() {
    let cases = [
        (17150, "171.50"),
        (5, "0.05"),
        (0, "0.00"),
        (100, "1.00"),
        (-5, "-0.05"),
        (-12345, "-123.45"),
        (123456789, "1234567.89"),
    ];
    for (cents, expected) in cases {
        assert_eq!(format_cents(cents), expected, "{cents}");
    }
}

// ---------------------------------------------------------------- categories

fn check_category(
    mapping: &Mapping,
    catalogue: Option<&str>,
    code: Option<&str>,
    expected: Category,
) {
    assert_eq!(
        mapping.category(catalogue, code),
        expected,
        "{catalogue:?} {code:?}"
    );
}

#[test]
fn category_patterns_of_the_defaults() {
    use Category::*;
    let mapping = Mapping::defaults();
    let cases = [
        ("GOZ", "1040", Prophylaxe),
        ("GOZ", "4055", Prophylaxe),
        ("GOZ", "4100", Parodontologie),
        ("BEMA", "13c", Fuellung),
        ("BEMA", "13C", Fuellung),
        ("BEMA", "13", Unklassifiziert),
        ("BEMA", "13i", Unklassifiziert),
        ("BEMA", "47a", Chirurgie),
        ("BEMA", "49", Unklassifiziert),
        ("BEMA", "Ä925a", Diagnostik),
        ("BEMA", "ä935d", Diagnostik),
        ("BEMA", "Ä936", Unklassifiziert),
        ("BEMA", "IP3", Prophylaxe),
        ("BEMA", "IP6", Unklassifiziert),
        ("GOZ", "5000", Prothetik),
        ("GOÄ", "5000", Diagnostik),
        ("goä", "5", Diagnostik),
        ("BEMA", "01", Diagnostik),
        ("BEMA", "1", Unklassifiziert),
        ("GOZ", "10", Unklassifiziert),
        ("GOZ", "0010", Diagnostik),
        ("GOZ", "2290a", Aesthetik),
        ("GOZ", "2290", Prothetik),
        ("BEL", "anything", MaterialLabor),
        ("BEMA", "ATG", Parodontologie),
        ("BEMA", "01K", Kieferorthopaedie),
        ("PKV", "1040", Unklassifiziert),
    ];
    for (catalogue, code, expected) in cases {
        check_category(&mapping, Some(catalogue), Some(code), expected);
    }
    check_category(&mapping, None, Some("01"), Unklassifiziert);
    check_category(&mapping, Some("BEMA"), None, Unklassifiziert);
}

fn rule(catalogue: &str, pattern: &str, category: Category) -> CategoryRule {
    CategoryRule {
        catalogue: CataloguePattern::parse(catalogue).expect("catalogue"),
        pattern: CodePattern::parse(pattern).expect("pattern"),
        category,
    }
}

#[test]
fn category_patterns_first_match_wins() {
    use Category::*;
    let mapping = Mapping {
        categories: vec![
            rule("GOZ", "2100", Aesthetik),
            rule("*", "21*", Fuellung),
            rule("BEMA", "0010-0090", Diagnostik),
            rule("GOZ", "IP1,IP2 , IP3", Prophylaxe),
            rule("*", "*", Chirurgie),
        ],
        ..Mapping::defaults()
    };
    let cases = [
        ("GOZ", "2100", Aesthetik),
        ("BEMA", "2100", Fuellung),
        ("GOZ", "2199x", Fuellung),
        ("BEMA", "0050", Diagnostik),
        ("BEMA", "50", Chirurgie),
        ("BEMA", "00050", Chirurgie),
        ("GOZ", "IP2", Prophylaxe),
        ("GOZ", "IP3", Prophylaxe),
        ("GOZ", "IP4", Chirurgie),
        ("XYZ", "1", Chirurgie),
    ];
    for (catalogue, code, expected) in cases {
        check_category(&mapping, Some(catalogue), Some(code), expected);
    }
}

// ---------------------------------------------------------------- properties

fn patient() -> PatientFacts {
    PatientFacts {
        location: LOCATION.to_owned(),
        id: PATIENT.to_owned(),
        human_readable_id: Some("10234".to_owned()),
        firstname: Some("Jürgen".to_owned()),
        lastname: Some("Weiß".to_owned()),
        email: Some("j.weiss@example.de".to_owned()),
        phone: Some("0391 123456".to_owned()),
        mobile: Some("+49 170 1234567".to_owned()),
        birthday: NaiveDate::from_ymd_opt(1985, 3, 15),
        street: Some("Breiter Weg 5".to_owned()),
        zip: Some("39104".to_owned()),
        city: Some("Magdeburg".to_owned()),
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn contact_properties_follow_the_allow_list() {
    let mut mapping = Mapping::defaults();
    let nothing_cleared = BTreeSet::new();
    let set = contact_properties(&patient(), &mapping, &nothing_cleared);
    assert_eq!(
        set.as_map(),
        &map(&[
            ("firstname", "Jürgen"),
            ("lastname", "Weiß"),
            ("email", "j.weiss@example.de"),
            ("phone", "0391 123456"),
            ("mobilephone", "+49 170 1234567"),
            ("zip", "39104"),
            ("city", "Magdeburg"),
            ("ivoris_patient_key", "magdeburg:p1"),
            ("ivoris_patientennummer", "10234"),
            ("praxis_standort", "magdeburg"),
        ])
    );
    for rule in &mut mapping.contact_fields {
        rule.enabled = matches!(rule.field, PatientField::Birthday | PatientField::Email);
    }
    mapping.contact_fields.push(FieldRule {
        field: PatientField::Street,
        property: "strasse".to_owned(),
        personal: true,
        enabled: false,
    });
    let cleared: BTreeSet<String> = ["phone", "city"].map(str::to_owned).into();
    let set = contact_properties(
        &PatientFacts {
            email: None,
            ..patient()
        },
        &mapping,
        &cleared,
    );
    assert_eq!(
        set.as_map(),
        &map(&[
            ("email", ""),
            ("date_of_birth", "1985-03-15"),
            // Switched off after an earlier mapping filled them: sent
            // empty, so HubSpot drops what an earlier sync wrote there.
            ("phone", ""),
            ("city", ""),
            ("ivoris_patient_key", "magdeburg:p1"),
            ("ivoris_patientennummer", "10234"),
            ("praxis_standort", "magdeburg"),
        ])
    );
}

/// Cleared are exactly the properties the shipped defaults or an earlier
/// version filled and the mapping in force no longer fills: never a field
/// this app never sent (street and birthday ship off).
#[test]
fn cleared_contact_properties_are_those_switched_off_after_being_sent() {
    let defaults = Mapping::defaults();
    assert!(
        defaults.cleared_contact_properties([]).is_empty(),
        "the shipped allow-list clears nothing"
    );
    let mut with_birthday = Mapping::defaults();
    let mut without_phone = Mapping::defaults();
    for rule in &mut with_birthday.contact_fields {
        if rule.field == PatientField::Birthday {
            rule.enabled = true;
        }
    }
    for rule in &mut without_phone.contact_fields {
        if rule.field == PatientField::Phone {
            rule.enabled = false;
        }
    }
    assert_eq!(
        without_phone.cleared_contact_properties([]),
        BTreeSet::from(["phone".to_owned()])
    );
    assert_eq!(
        without_phone.cleared_contact_properties([&with_birthday]),
        BTreeSet::from(["phone".to_owned(), "date_of_birth".to_owned()])
    );
    assert!(
        with_birthday
            .cleared_contact_properties([&without_phone])
            .is_empty(),
        "a field enabled again is filled, not cleared"
    );
}

fn stage_ids() -> StageIds {
    StageIds {
        pipeline: "pl-1".to_owned(),
        booked: "s-booked".to_owned(),
        consulted: "s-consulted".to_owned(),
        in_treatment: "s-treat".to_owned(),
        won: "s-won".to_owned(),
        lost: "s-lost".to_owned(),
    }
}

/// Deal properties of a case as of `now`, with its derived stage.
fn deal(members: &[AppointmentFacts], entries: &[EntryFacts], now: i64) -> PropertySet {
    let mapping = Mapping::defaults();
    let case = case_of(members, false);
    let outcome = derive_stage(&case, entries, &mapping, at(now));
    let ids = stage_ids();
    let context = DealContext {
        mapping: &mapping,
        stage_ids: &ids,
        now: at(now),
    };
    deal_properties(&patient(), &case, entries, &outcome, &context)
}

#[test]
fn deal_properties_of_a_case_in_treatment() {
    let members = [
        appt("a", 0, "Completed", "Erstberatung"),
        appt("b", 7, "Completed", "Füllungstherapie"),
        appt("c", 14, "Cancelled", "Füllungstherapie"),
        appt("d", 21, "Booked", "Füllungstherapie"),
        appt("e", 28, "Booked", "Endo"),
    ];
    let entries = [
        entry("1", 0, "lst", "BEMA", "01", 2152),
        entry("2", 7, "lst", "BEMA", "13a", 3825),
        entry("3", 7, "mat", "Material", "KOMP", 412),
        entry("4", 7, "pabg", "Ausfall", "AUSF", 5000),
        entry("5", 7, "text", "", "", 0),
    ];
    let set = deal(&members, &entries, 15);
    let mut expected = map(&[
        ("dealname", "Jürgen Weiß – Erstberatung 05.01.2026"),
        ("pipeline", "pl-1"),
        ("dealstage", "s-treat"),
        ("amount", "63.89"),
        ("umsatz_diagnostik", "21.52"),
        ("umsatz_fuellung", "38.25"),
        ("umsatz_material_labor", "4.12"),
        ("umsatz_separat", "50.00"),
        ("behandlungskategorie", "Füllung"),
        ("behandlungsstart", "2026-01-12"),
        ("erster_termin", "2026-01-05"),
        ("letzter_termin", "2026-01-19"),
        ("naechster_termin", "2026-01-26"),
        ("termin_status", "gebucht"),
        ("praxis_standort", "magdeburg"),
        ("closedate", ""),
        ("verlustgrund", ""),
        ("ivoris_case_key", "magdeburg:a"),
    ]);
    for slug in [
        "prophylaxe",
        "endodontie",
        "parodontologie",
        "chirurgie",
        "implantologie",
        "prothetik",
        "kieferorthopaedie",
        "aesthetik",
        "unklassifiziert",
    ] {
        expected.insert(format!("umsatz_{slug}"), "0.00".to_owned());
    }
    assert_eq!(set.as_map(), &expected);
}

#[test]
fn deal_properties_of_a_lost_case() {
    let set = deal(&[appt("a", 3, "Clarified", "Neupatient")], &[], 4);
    let pick = |name: &str| set.get(name).unwrap_or("<missing>").to_owned();
    assert_eq!(pick("dealstage"), "s-lost");
    assert_eq!(pick("verlustgrund"), "Erstberatung geklärt");
    assert_eq!(pick("closedate"), "2026-01-08");
    assert_eq!(pick("amount"), "0.00");
    assert_eq!(pick("behandlungskategorie"), "");
    assert_eq!(pick("behandlungsstart"), "");
    assert_eq!(pick("naechster_termin"), "");
    assert_eq!(pick("termin_status"), "geklärt");
    assert_eq!(pick("dealname"), "Jürgen Weiß – Neupatient 08.01.2026");
}

#[test]
fn no_health_details_ever_reach_a_property() {
    let members = [appt("a", 0, "Completed", "Füllungstherapie")];
    let entries = [
        entry("1", 0, "lst", "BEMA", "13a", 3825),
        entry("2", 0, "lst", "GOZ", "2290a", 11240),
        entry("3", 0, "note", "", "", 0),
    ];
    let sets = [
        deal(&members, &entries, 1),
        contact_properties(&patient(), &Mapping::defaults(), &BTreeSet::new()),
        appointment_properties(LOCATION, &members[0], &Mapping::defaults()),
    ];
    for set in &sets {
        for (name, value) in set.as_map() {
            for forbidden in [
                "tooth",
                "zahn",
                "text",
                "code",
                "insurance",
                "versicher",
                "birth",
                "geburt",
            ] {
                assert!(!name.to_lowercase().contains(forbidden), "{name}");
            }
            for code in ["13a", "2290a", "BEMA", "GOZ", "Breiter Weg", "1985"] {
                assert!(!value.contains(code), "{name} = {value}");
            }
        }
    }
}

fn check_times(start: NaiveDateTime, minutes: u32, expected: (&str, &str)) {
    let appointment = AppointmentFacts {
        start,
        duration_minutes: Some(minutes),
        ..appt("a", 0, "Booked", "PZR")
    };
    let set = appointment_properties(LOCATION, &appointment, &Mapping::defaults());
    assert_eq!(
        (
            set.get("hs_appointment_start"),
            set.get("hs_appointment_end")
        ),
        (Some(expected.0), Some(expected.1)),
        "{start}"
    );
}

#[test]
fn appointment_times_are_utc_across_daylight_saving() {
    let local = |y, m, d, h, min| {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|date| date.and_hms_opt(h, min, 0))
            .expect("time")
    };
    // Winter: +01:00.
    check_times(
        local(2026, 3, 12, 9, 30),
        30,
        ("2026-03-12T08:30:00Z", "2026-03-12T09:00:00Z"),
    );
    // Summer: +02:00.
    check_times(
        local(2026, 7, 1, 9, 30),
        60,
        ("2026-07-01T07:30:00Z", "2026-07-01T08:30:00Z"),
    );
    // Clocks go forward at 02:00 on 29 March: 01:30 is winter time, and a
    // 90-minute appointment lasts 90 real minutes.
    check_times(
        local(2026, 3, 29, 1, 30),
        90,
        ("2026-03-29T00:30:00Z", "2026-03-29T02:00:00Z"),
    );
    // 02:30 on 29 March does not exist; read as winter time.
    check_times(
        local(2026, 3, 29, 2, 30),
        0,
        ("2026-03-29T01:30:00Z", "2026-03-29T01:30:00Z"),
    );
    // 02:30 on 25 October happens twice; the first (summer time) is taken.
    check_times(
        local(2026, 10, 25, 2, 30),
        60,
        ("2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"),
    );
}

#[test]
fn appointment_properties_carry_type_state_and_key_only() {
    let set = appointment_properties(
        LOCATION,
        &appt("a1", 0, "NoShow", "Implantat-Beratung"),
        &Mapping::defaults(),
    );
    assert_eq!(
        set.as_map(),
        &map(&[
            ("hs_appointment_name", "Implantat-Beratung"),
            ("hs_appointment_start", "2026-01-05T08:00:00Z"),
            ("hs_appointment_end", "2026-01-05T08:30:00Z"),
            ("hs_appointment_status", "NO_SHOW"),
            ("ivoris_appointment_key", "magdeburg:a1"),
        ])
    );
}

// ---------------------------------------------------------------- hashes

fn set_of(pairs: &[(&str, &str)]) -> PropertySet {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn content_hash_changes_exactly_with_the_content() {
    let base = set_of(&[("amount", "171.50"), ("dealstage", "s-treat")]);
    let same_reordered = set_of(&[("dealstage", "s-treat"), ("amount", "171.50")]);
    assert_eq!(base.content_hash(), same_reordered.content_hash());
    assert_eq!(base.content_hash(), base.clone().content_hash());
    assert_eq!(base.content_hash().len(), 64);

    let different = [
        set_of(&[("amount", "171.51"), ("dealstage", "s-treat")]),
        set_of(&[("amount", "171.50"), ("dealstage", "s-won")]),
        set_of(&[("amount", "171.50")]),
        set_of(&[
            ("amount", "171.50"),
            ("dealstage", "s-treat"),
            ("closedate", ""),
        ]),
        set_of(&[("amountx", "171.50"), ("dealstage", "s-treat")]),
        set_of(&[("amount", "171.5"), ("dealstage", "0s-treat")]),
    ];
    for other in &different {
        assert_ne!(base.content_hash(), other.content_hash(), "{other:?}");
    }
    // Name/value boundaries are part of the hash.
    assert_ne!(
        set_of(&[("ab", "c")]).content_hash(),
        set_of(&[("a", "bc")]).content_hash()
    );
    // The same case planned twice hashes alike; a changed fact does not.
    let members = [appt("a", 0, "Completed", "Füllungstherapie")];
    let entries = [filling("1", 0)];
    assert_eq!(
        deal(&members, &entries, 3).content_hash(),
        deal(&members, &entries, 3).content_hash()
    );
    assert_ne!(
        deal(&members, &entries, 3).content_hash(),
        deal(&members, &[entry("1", 0, "lst", "BEMA", "13a", 3826)], 3).content_hash()
    );
}
