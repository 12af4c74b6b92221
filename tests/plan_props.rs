//! Properties of case formation and stages over arbitrary appointment
//! histories (DESIGN.md §3.3, §3.4, §4).

use chrono::{Duration, NaiveDate, NaiveDateTime};
use ivoris_hubspot_sync::mapping::{Mapping, Stage};
use ivoris_hubspot_sync::plan::{
    AppointmentFacts, EntryFacts, PatientCases, derive_stage, derive_stages,
};
use proptest::prelude::*;

const STATES: [&str; 9] = [
    "Booked",
    "Confirmed",
    "Arrived",
    "InTreatment",
    "Completed",
    "Cancelled",
    "NoShow",
    "Clarified",
    "Verschoben",
];

const LABELS: [&str; 8] = [
    "Erstberatung",
    "Neupatient",
    "Kontrolle",
    "PZR",
    "Füllungstherapie",
    "Implantation",
    "Recall",
    "Unbekannt",
];

const LINES: [(&str, &str, &str); 6] = [
    ("lst", "BEMA", "13a"),
    ("lst", "GOZ", "1040"),
    ("lst", "BEMA", "01"),
    ("mat", "Material", "KOMP"),
    ("pabg", "Ausfall", "AUSF"),
    ("note", "", ""),
];

fn at(day: i64, hour: u32) -> NaiveDateTime {
    let base = NaiveDate::from_ymd_opt(2025, 1, 6).unwrap_or_default();
    (base + Duration::days(day))
        .and_hms_opt(hour, 0, 0)
        .unwrap_or_default()
}

/// (day, hour, state, label) per appointment.
fn history() -> impl Strategy<Value = Vec<(i64, u32, usize, usize)>> {
    prop::collection::vec(
        (0i64..400, 8u32..18, 0..STATES.len(), 0..LABELS.len()),
        0..24,
    )
}

/// (day, line kind, cents) per billing line.
fn lines() -> impl Strategy<Value = Vec<(i64, usize, i64)>> {
    prop::collection::vec((0i64..400, 0..LINES.len(), 1i64..50_000), 0..30)
}

fn appointments(patient: &str, raw: &[(i64, u32, usize, usize)]) -> Vec<AppointmentFacts> {
    raw.iter()
        .enumerate()
        .map(|(index, (day, hour, state, label))| AppointmentFacts {
            id: format!("{patient}-a{index}"),
            patient_id: patient.to_owned(),
            start: at(*day, *hour),
            duration_minutes: Some(30),
            state: STATES[*state].to_owned(),
            type_label: Some(LABELS[*label].to_owned()),
            template_id: None,
            deleted: false,
        })
        .collect()
}

fn entries(patient: &str, raw: &[(i64, usize, i64)]) -> Vec<EntryFacts> {
    raw.iter()
        .enumerate()
        .map(|(index, (day, kind, cents))| {
            let (entry_type, catalogue, code) = LINES[*kind];
            EntryFacts {
                id: format!("{patient}-e{index}"),
                patient_id: patient.to_owned(),
                date: at(*day, 0).date(),
                entry_type: entry_type.to_owned(),
                catalogue: Some(catalogue.to_owned()),
                code: Some(code.to_owned()),
                amount_cents: *cents,
            }
        })
        .collect()
}

fn formed(
    patient: &str,
    appointments: &[AppointmentFacts],
    entries: &[EntryFacts],
    mapping: &Mapping,
) -> PatientCases {
    let mut cases = PatientCases::new("magdeburg", patient);
    cases.admit(appointments, entries, mapping);
    cases
}

fn sorted(mut appointments: Vec<AppointmentFacts>) -> Vec<AppointmentFacts> {
    appointments.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    appointments
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn at_most_one_open_case_per_patient_and_location(
        raw in history(),
        raw_lines in lines(),
        now_day in 0i64..500,
    ) {
        let mapping = Mapping::defaults();
        let appointments = appointments("p1", &raw);
        let entries = entries("p1", &raw_lines);
        let cases = formed("p1", &appointments, &entries, &mapping);
        let outcomes = derive_stages(&cases, &entries, &mapping, at(now_day, 12));
        let open = outcomes.iter().filter(|o| !o.stage.is_closed()).count();
        prop_assert!(open <= 1, "{outcomes:?}");
        // Every assigned appointment is in exactly one case.
        let members: usize = cases.cases.iter().map(|c| c.members.len()).sum();
        prop_assert_eq!(members + cases.unassigned.len(), appointments.len());
    }

    #[test]
    fn chunked_assignment_in_start_order_forms_the_same_cases(
        raw in history(),
        raw_lines in lines(),
        cuts in prop::collection::vec(0usize..24, 0..4),
    ) {
        let mapping = Mapping::defaults();
        let appointments = sorted(appointments("p1", &raw));
        let entries = entries("p1", &raw_lines);
        let at_once = formed("p1", &appointments, &entries, &mapping);

        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(appointments.len())).collect();
        cuts.push(0);
        cuts.push(appointments.len());
        cuts.sort_unstable();
        let mut chunked = PatientCases::new("magdeburg", "p1");
        for window in cuts.windows(2) {
            chunked.admit(&appointments[window[0]..window[1]], &entries, &mapping);
        }
        prop_assert_eq!(chunked, at_once);
    }

    #[test]
    fn the_same_input_gives_the_same_cases_and_stages(
        raw in history(),
        raw_lines in lines(),
        now_day in 0i64..500,
    ) {
        let mapping = Mapping::defaults();
        let appointments = appointments("p1", &raw);
        let entries = entries("p1", &raw_lines);
        let mut reversed = appointments.clone();
        reversed.reverse();
        let first = formed("p1", &appointments, &entries, &mapping);
        let second = formed("p1", &reversed, &entries, &mapping);
        prop_assert_eq!(&first, &second);
        let now = at(now_day, 12);
        prop_assert_eq!(
            derive_stages(&first, &entries, &mapping, now),
            derive_stages(&second, &entries, &mapping, now)
        );
    }

    #[test]
    fn an_unrelated_record_changes_no_case(
        raw in history(),
        raw_lines in lines(),
        other in history(),
        other_lines in lines(),
        now_day in 0i64..500,
    ) {
        let mapping = Mapping::defaults();
        let mine = appointments("p1", &raw);
        let my_lines = entries("p1", &raw_lines);
        let alone = formed("p1", &mine, &my_lines, &mapping);

        let mut all = mine.clone();
        all.extend(appointments("p2", &other));
        let mut all_lines = my_lines.clone();
        all_lines.extend(entries("p2", &other_lines));
        let together = formed("p1", &all, &all_lines, &mapping);
        prop_assert_eq!(&together, &alone);
        let now = at(now_day, 12);
        prop_assert_eq!(
            derive_stages(&together, &all_lines, &mapping, now),
            derive_stages(&alone, &my_lines, &mapping, now)
        );
    }

    #[test]
    fn reverting_completions_pushes_the_stage_back(
        raw in history(),
        raw_lines in lines(),
        now_day in 0i64..500,
    ) {
        let mapping = Mapping::defaults();
        let appointments = appointments("p1", &raw);
        let entries = entries("p1", &raw_lines);
        let cases = formed("p1", &appointments, &entries, &mapping);
        let spans = cases.entries_by_case(&entries);
        let now = at(now_day, 12);
        for case in &cases.cases {
            let lines = spans.by_case.get(&case.key).cloned().unwrap_or_default();
            let before = derive_stage(case, &lines, &mapping, now);
            let mut reverted = case.clone();
            for member in &mut reverted.members {
                if member.state == "Completed" {
                    member.state = "Booked".to_owned();
                }
            }
            let after = derive_stage(&reverted, &lines, &mapping, now);
            prop_assert!(
                !matches!(after.stage, Stage::InTreatment | Stage::Won | Stage::Consulted),
                "{before:?} -> {after:?}"
            );
            prop_assert_eq!(after.behandlungsstart, None);
            // Facts restored, stage restored: nothing is remembered.
            prop_assert_eq!(derive_stage(case, &lines, &mapping, now), before);
        }
    }
}
