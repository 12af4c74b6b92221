use chrono::{NaiveDate, NaiveDateTime};

use super::export::{percent, period_header, period_rows};
use super::*;
use crate::plan::{PatientCases, derive_stages_by_span};

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("test time")
}

fn appointment(id: &str, start: &str, kind: &str, state: &str) -> AppointmentFacts {
    AppointmentFacts {
        id: id.to_owned(),
        patient_id: "p".to_owned(),
        start: at(start),
        duration_minutes: Some(30),
        state: state.to_owned(),
        type_label: Some(kind.to_owned()),
        template_id: None,
        deleted: false,
    }
}

fn entry(id: &str, date: &str, kind: &str, catalogue: &str, code: &str, cents: i64) -> EntryFacts {
    EntryFacts {
        id: id.to_owned(),
        patient_id: "p".to_owned(),
        date: day(date),
        entry_type: kind.to_owned(),
        catalogue: Some(catalogue.to_owned()),
        code: Some(code.to_owned()),
        amount_cents: cents,
    }
}

/// One patient's figures over `count` months ending at `now`, with the
/// shipped mapping: cases formed and stages derived as planning does.
fn months(
    appointments: &[AppointmentFacts],
    entries: &[EntryFacts],
    now: &str,
    count: u32,
) -> (Periods, LocationFigures) {
    months_with(&Mapping::defaults(), appointments, entries, now, count)
}

fn months_with(
    mapping: &Mapping,
    appointments: &[AppointmentFacts],
    entries: &[EntryFacts],
    now: &str,
    count: u32,
) -> (Periods, LocationFigures) {
    let now = at(now);
    let periods = Periods::ending(Granularity::Month, now.date(), count);
    let mut cases = PatientCases::new("mag", "p");
    cases.admit(appointments, entries, mapping);
    let spans = cases.entries_by_case(entries);
    let outcomes = derive_stages_by_span(&cases, &spans, mapping, now);
    let mut figures = LocationFigures::new("mag", "Magdeburg", &periods);
    figures.add_patient(
        PatientView {
            appointments,
            entries,
            cases: &cases,
            outcomes: &outcomes,
            spans: &spans,
        },
        &periods,
        mapping,
    );
    (periods, figures)
}

#[test]
fn periods_end_with_the_current_one_and_cross_years() {
    let check = |granularity, today: &str, count, first: &str, last: &str, labels: &[&str]| {
        let periods = Periods::ending(granularity, day(today), count);
        assert_eq!(
            periods.starts.len(),
            count.max(1) as usize,
            "{today} {count}"
        );
        assert_eq!(periods.starts.first(), Some(&day(first)));
        assert_eq!(periods.starts.last(), Some(&day(last)));
        let shown: Vec<String> = (0..periods.starts.len())
            .map(|i| periods.label(i, true))
            .collect();
        let tail = &shown[shown.len() - labels.len()..];
        assert_eq!(tail, labels);
    };
    check(
        Granularity::Month,
        "2026-02-15",
        3,
        "2025-12-01",
        "2026-02-01",
        &["12/2025", "01/2026", "02/2026"],
    );
    // 2026 has 53 ISO weeks; 1 January 2027 is a Friday of week 53.
    check(
        Granularity::Week,
        "2027-01-01",
        2,
        "2026-12-21",
        "2026-12-28",
        &["KW 52/2026", "KW 53/2026"],
    );
    check(
        Granularity::Week,
        "2026-11-30",
        1,
        "2026-11-30",
        "2026-11-30",
        &["KW 49/2026"],
    );
    // Zero periods still shows the current one.
    check(
        Granularity::Month,
        "2026-11-28",
        0,
        "2026-11-01",
        "2026-11-01",
        &["11/2026"],
    );
    let periods = Periods::ending(Granularity::Month, day("2026-11-28"), 2);
    assert_eq!(periods.index_of(day("2026-10-31")), Some(0));
    assert_eq!(periods.index_of(day("2026-11-30")), Some(1));
    assert_eq!(periods.index_of(day("2026-09-30")), None);
    assert_eq!(periods.index_of(day("2026-12-01")), None);
}

#[test]
fn appointments_are_counted_by_state_and_ignored_types_left_out() {
    let appointments = [
        appointment("1", "2026-09-02 09:00", "Kontrolle", "Completed"),
        appointment("2", "2026-09-09 09:00", "Kontrolle", "NoShow"),
        appointment("3", "2026-09-16 09:00", "Kontrolle", "Cancelled"),
        appointment("4", "2026-10-01 09:00", "Kontrolle", "Arrived"),
        appointment("5", "2026-10-02 09:00", "Kontrolle", "Gestrichen"),
        appointment("6", "2026-11-30 09:00", "Kontrolle", "Booked"),
        // Before the report: counted nowhere.
        appointment("7", "2026-08-31 09:00", "Kontrolle", "Completed"),
        // An internal blocker: no appointment of a patient.
        appointment("8", "2026-10-20 09:00", "Pause", "Completed"),
    ];
    let mut mapping = Mapping::defaults();
    mapping
        .appointment_types
        .push(crate::mapping::AppointmentTypeRule {
            label: "Pause".to_owned(),
            template_id: None,
            kind: AppointmentKind::Ignore,
            opens_case: false,
        });
    let (_, figures) = months_with(&mapping, &appointments, &[], "2026-11-28 12:00", 3);
    let counts: Vec<(u64, u64, u64, u64, u64)> = figures
        .periods
        .iter()
        .map(|p| {
            let a = p.appointments;
            (a.attended, a.cancelled, a.no_show, a.open, a.unmapped)
        })
        .collect();
    assert_eq!(counts, [(1, 1, 1, 0, 0), (1, 0, 0, 0, 1), (0, 0, 0, 1, 0)]);
    assert_eq!(figures.periods[0].appointments.total(), 3);
    assert_eq!(figures.periods[0].appointments.no_show_rate(), Some(0.5));
    assert_eq!(figures.periods[2].appointments.no_show_rate(), None);
    // The patient first came in August, before the report.
    assert!(figures.periods.iter().all(|p| p.new_patients == 0));
}

#[test]
fn a_new_patient_is_counted_in_the_month_of_the_first_visit_that_took_place() {
    let appointments = [
        appointment("1", "2026-09-20 09:00", "Erstberatung", "Cancelled"),
        appointment("2", "2026-10-05 09:00", "Erstberatung", "NoShow"),
        appointment("3", "2026-11-03 09:00", "Erstberatung", "Completed"),
        appointment("4", "2026-11-10 09:00", "Kontrolle", "Completed"),
    ];
    let (_, figures) = months(&appointments, &[], "2026-11-28 12:00", 3);
    let new: Vec<u64> = figures.periods.iter().map(|p| p.new_patients).collect();
    assert_eq!(new, [0, 0, 1]);
    let consultations: Vec<u64> = figures.periods.iter().map(|p| p.consultations).collect();
    assert_eq!(consultations, [0, 0, 1]);
}

#[test]
fn revenue_follows_the_line_date_and_the_category_table() {
    let entries = [
        entry("a", "2026-10-07", "lst", "BEMA", "13a", 4_210),
        entry("b", "2026-10-31", "lst", "GOZ", "2060", 10_000),
        entry("c", "2026-11-01", "lab", "BEL", "0010", 2_500),
        entry("d", "2026-11-02", "pabg", "GOZ", "2060", 900),
        entry("e", "2026-11-02", "text", "", "", 777),
        // Before the report.
        entry("f", "2026-09-30", "lst", "BEMA", "13a", 1_000),
    ];
    let (_, figures) = months(&[], &entries, "2026-11-28 12:00", 2);
    let october = &figures.periods[0];
    let november = &figures.periods[1];
    assert_eq!(october.revenue_cents, 14_210);
    assert_eq!(october.revenue_by_category[&Category::Fuellung], 14_210);
    assert_eq!(november.revenue_cents, 2_500);
    assert_eq!(
        november.revenue_by_category[&Category::MaterialLabor],
        2_500
    );
    assert_eq!(november.separate_cents, 900);
    for period in &figures.periods {
        let sum: i64 = period.revenue_by_category.values().sum();
        assert_eq!(sum, period.revenue_cents, "categories add up to the total");
    }
}

#[test]
fn a_consultation_converts_when_its_case_reaches_treatment() {
    let appointments = [
        appointment("1", "2026-09-01 09:00", "Erstberatung", "Completed"),
        appointment("2", "2026-10-06 09:00", "Füllungstherapie", "Completed"),
    ];
    let entries = [entry("a", "2026-10-06", "lst", "BEMA", "13a", 5_000)];
    let (_, figures) = months(&appointments, &entries, "2026-11-28 12:00", 3);
    let cohort: Vec<(u64, u64)> = figures
        .periods
        .iter()
        .map(|p| (p.consulted_cases, p.converted_cases))
        .collect();
    assert_eq!(cohort, [(1, 1), (0, 0), (0, 0)]);
    assert_eq!(figures.periods[0].conversion_rate(), Some(1.0));
    assert_eq!(figures.funnel.count(Stage::InTreatment), 1);
    assert_eq!(figures.funnel.open(), 1);
    // Without the treatment line the case stays consulted: no conversion.
    let (_, figures) = months(&appointments, &[], "2026-11-28 12:00", 3);
    assert_eq!(figures.periods[0].consulted_cases, 1);
    assert_eq!(figures.periods[0].converted_cases, 0);
    assert_eq!(figures.periods[0].conversion_rate(), Some(0.0));
    assert_eq!(figures.funnel.count(Stage::Consulted), 1);
}

#[test]
fn a_treatment_completes_in_the_month_of_its_last_activity() {
    // Last activity 1 August; won after 60 quiet days, so by 28 November.
    let appointments = [
        appointment("1", "2026-07-01 09:00", "Füllungstherapie", "Completed"),
        appointment("2", "2026-08-01 09:00", "Füllungstherapie", "Completed"),
    ];
    let entries = [
        entry("a", "2026-07-01", "lst", "BEMA", "13a", 3_001),
        entry("b", "2026-08-01", "lst", "BEMA", "13b", 4_000),
    ];
    let (periods, figures) = months(&appointments, &entries, "2026-11-28 12:00", 5);
    assert_eq!(periods.label(1, true), "08/2026");
    let august = &figures.periods[1];
    assert_eq!(august.completed_treatments, 1);
    assert_eq!(august.completed_revenue_cents, 7_001);
    assert_eq!(august.revenue_per_case_cents(), Some(7_001));
    assert_eq!(figures.funnel.count(Stage::Won), 1);
    assert_eq!(figures.funnel.open(), 0);
}

#[test]
fn a_cancelled_consultation_loses_the_case_in_its_month() {
    let appointments = [appointment(
        "1",
        "2026-10-12 09:00",
        "Erstberatung",
        "Cancelled",
    )];
    let (_, figures) = months(&appointments, &[], "2026-11-28 12:00", 2);
    assert_eq!(figures.periods[0].lost_cases, 1);
    assert_eq!(figures.funnel.count(Stage::Lost), 1);
    assert_eq!(figures.funnel.open(), 0);
}

#[test]
fn the_total_adds_locations_and_averages_are_rounded() {
    let periods = Periods::ending(Granularity::Month, day("2026-11-28"), 1);
    let mut a = LocationFigures::new("a", "A", &periods);
    let mut b = LocationFigures::new("b", "B", &periods);
    a.periods[0].completed_treatments = 2;
    a.periods[0].completed_revenue_cents = 101;
    a.periods[0].appointments.no_show = 1;
    b.periods[0].completed_treatments = 1;
    b.periods[0].completed_revenue_cents = 1;
    b.periods[0].appointments.attended = 3;
    *b.funnel.by_stage.entry(Stage::Booked).or_insert(0) += 4;
    assert_eq!(
        a.periods[0].revenue_per_case_cents(),
        Some(51),
        "50.5 rounds up"
    );
    let report = KpiReport {
        now: at("2026-11-28 12:00"),
        periods,
        locations: vec![a, b],
        stage_labels: BTreeMap::new(),
    };
    let total = report.total("Alle");
    assert_eq!(total.periods[0].completed_treatments, 3);
    assert_eq!(total.periods[0].revenue_per_case_cents(), Some(34));
    assert_eq!(total.periods[0].appointments.no_show_rate(), Some(0.25));
    assert_eq!(total.funnel.count(Stage::Booked), 4);
    assert_eq!(
        report.figures(Some("b"), "Alle").map(|f| f.name),
        Some("B".into())
    );
    assert!(report.figures(Some("x"), "Alle").is_none());
    assert_eq!(percent(Some(0.125)), "12,5");
    assert_eq!(percent(None), "");
}

#[test]
fn the_export_has_a_row_per_location_and_period_in_german_notation() {
    let entries = [entry("a", "2026-11-07", "lst", "BEMA", "13a", 123_456)];
    let (periods, figures) = months(&[], &entries, "2026-11-28 12:00", 2);
    let report = KpiReport {
        now: at("2026-11-28 12:00"),
        periods,
        locations: vec![figures],
        stage_labels: BTreeMap::new(),
    };
    let header = period_header(true);
    let rows = period_rows(&report, true);
    assert_eq!(
        rows.len(),
        4,
        "two periods of the location and of the total"
    );
    assert!(rows.iter().all(|row| row.len() == header.len()));
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let november = &rows[1];
    assert_eq!(november[column("Zeitraum")], "11/2026");
    assert_eq!(november[column("Beginn")], "01.11.2026");
    assert_eq!(november[column("Umsatz €")], "1.234,56");
    assert_eq!(november[column("Umsatz Füllung €")], "1.234,56");
    assert_eq!(rows[3][column("Standort")], "Alle Standorte");
    assert_eq!(rows[3][column("Umsatz €")], "1.234,56");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn any_day() -> impl Strategy<Value = NaiveDate> {
        prop_oneof![
            // Around the report, where most lines fall.
            (0i64..1_200).prop_map(|d| day("2024-01-01") + chrono::Duration::days(d)),
            // Anywhere in the calendar, the ends included.
            prop_oneof![
                Just(NaiveDate::MIN),
                Just(NaiveDate::MAX),
                (-100_000i32..100_000, 1u32..=366)
                    .prop_map(|(y, o)| { NaiveDate::from_yo_opt(y, o).unwrap_or(NaiveDate::MIN) }),
            ],
        ]
    }

    fn any_entry() -> impl Strategy<Value = EntryFacts> {
        (
            any_day(),
            prop::sample::select(vec!["lst", "mat", "lab", "pabg", "text", "xyz"]),
            prop::sample::select(vec!["BEMA", "GOZ", "GOÄ", ""]),
            prop::sample::select(vec!["13a", "2060", "01", "9000", "Ä1", ""]),
            -1_000_000i64..1_000_000,
        )
            .prop_map(|(date, kind, catalogue, code, cents)| EntryFacts {
                id: "e".to_owned(),
                patient_id: "p".to_owned(),
                date,
                entry_type: kind.to_owned(),
                catalogue: Some(catalogue.to_owned()),
                code: Some(code.to_owned()),
                amount_cents: cents,
            })
    }

    fn any_appointment() -> impl Strategy<Value = AppointmentFacts> {
        (
            any_day(),
            prop::sample::select(vec!["Erstberatung", "Kontrolle", "Endo", "Unbekannt"]),
            prop::sample::select(vec![
                "Booked",
                "Confirmed",
                "Arrived",
                "Completed",
                "Cancelled",
                "NoShow",
                "Clarified",
                "???",
            ]),
            0u32..1_000,
        )
            .prop_map(|(date, kind, state, id)| AppointmentFacts {
                id: id.to_string(),
                patient_id: "p".to_owned(),
                start: date.and_hms_opt(9, 0, 0).unwrap_or_default(),
                duration_minutes: None,
                state: state.to_owned(),
                type_label: Some(kind.to_owned()),
                template_id: None,
                deleted: false,
            })
    }

    proptest! {
        /// Whatever the lines and appointments, nothing panics, categories
        /// add up to the revenue, and every appointment of a period is in
        /// exactly one of its counts.
        #[test]
        fn figures_add_up_for_any_input(
            mut entries in prop::collection::vec(any_entry(), 0..40),
            appointments in prop::collection::vec(any_appointment(), 0..30),
            weeks in any::<bool>(),
        ) {
            entries.sort_by_key(|e| e.date);
            let mapping = Mapping::defaults();
            let now = at("2026-11-28 12:00");
            let granularity = if weeks { Granularity::Week } else { Granularity::Month };
            let periods = Periods::ending(granularity, now.date(), 30);
            let mut cases = PatientCases::new("mag", "p");
            cases.admit(&appointments, &entries, &mapping);
            let spans = cases.entries_by_case(&entries);
            let outcomes = derive_stages_by_span(&cases, &spans, &mapping, now);
            let mut figures = LocationFigures::new("mag", "M", &periods);
            figures.add_patient(
                PatientView {
                    appointments: &appointments,
                    entries: &entries,
                    cases: &cases,
                    outcomes: &outcomes,
                    spans: &spans,
                },
                &periods,
                &mapping,
            );
            for (index, period) in figures.periods.iter().enumerate() {
                let sum: i64 = period.revenue_by_category.values().sum();
                prop_assert_eq!(sum, period.revenue_cents);
                let start = periods.starts[index];
                let in_period = appointments
                    .iter()
                    .filter(|a| periods.granularity.period_start(a.start.date()) == start)
                    .count() as u64;
                prop_assert_eq!(period.appointments.total(), in_period);
            }
            let cases_total: u64 = figures.funnel.by_stage.values().sum();
            prop_assert_eq!(cases_total, cases.cases.len() as u64);
        }

        /// The periods of any day are contiguous and each contains its start.
        #[test]
        fn periods_are_contiguous_for_any_day(today in any_day(), count in 0u32..60, weeks in any::<bool>()) {
            let granularity = if weeks { Granularity::Week } else { Granularity::Month };
            let periods = Periods::ending(granularity, today, count);
            prop_assert!(!periods.starts.is_empty());
            for pair in periods.starts.windows(2) {
                prop_assert!(pair[0] < pair[1]);
                prop_assert_eq!(granularity.next(pair[0]), pair[1]);
            }
            for (index, start) in periods.starts.iter().enumerate() {
                prop_assert_eq!(periods.index_of(*start), Some(index));
            }
        }
    }
}
