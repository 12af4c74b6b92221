//! The Dashboard driven through its accessibility tree after a sync: the
//! tiles against counts taken straight from the sandbox's Ivoris data,
//! weeks instead of months, one location instead of all, and the CSV
//! export against the deals HubSpot holds.

mod engine_support;
mod gui_support;

use chrono::{Datelike, Days, NaiveDate};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use engine_support::{bed, keyed_state, options, run};
use gui_support::{app_harness, step_until};
use ivoris_hubspot_sync::gui::{Panel, SyncApp};
use ivoris_hubspot_sync::kpi::Granularity;
use ivoris_hubspot_sync::sandbox::data::Location;

/// A count as the German interface writes it: `11.628`.
fn german(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// Appointments of `locations` starting on or after `from`, up to the end
/// of the sandbox's current period (nothing later is in the report).
fn appointments_since(locations: &[&Location], from: NaiveDate, until: NaiveDate) -> u64 {
    locations
        .iter()
        .flat_map(|l| &l.appointments)
        .filter(|a| a.patient_id.is_some() && a.state.is_some())
        .filter_map(|a| a.start)
        .filter(|start| start.date() >= from && start.date() < until)
        .count() as u64
}

fn wait_for_figures(harness: &mut Harness<'_, SyncApp>, granularity: Granularity) {
    step_until(harness, "the figures", |app| {
        !app.model.kpi.loading
            && matches!(&app.model.kpi.report, Some(Ok(r)) if r.periods.granularity == granularity)
    });
}

#[test]
fn tiles_weeks_a_location_and_the_csv_export() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(53)));
    runtime.block_on(run(&bed.env));
    let world = bed.sandbox.ivoris.snapshot();
    let today = (bed.env.clock)().date();
    let mut harness = app_harness(bed.env.clone(), Panel::Dashboard, None);
    step_until(&mut harness, "the engine", |app| app.model.info.is_some());
    wait_for_figures(&mut harness, Granularity::Month);

    // Twelve months: from the first of the month eleven months back to the
    // end of this month.
    let this_month = today.with_day(1).expect("first of month");
    let from = this_month - chrono::Months::new(11);
    let until = this_month + chrono::Months::new(1);
    let all: Vec<&Location> = world.locations.iter().collect();
    let expected = appointments_since(&all, from, until);
    assert!(expected > 100, "the sandbox has appointments");
    assert!(
        harness.query_by_label(&german(expected)).is_some(),
        "the tile „Termine“ shows {expected} for all locations"
    );

    // Weeks: 13 of them, ending with this one; the table names them.
    harness.get_by_label("Woche").click();
    harness.run_steps(2);
    wait_for_figures(&mut harness, Granularity::Week);
    let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
    let week = today.iso_week();
    harness
        .query_all_by_label("Tabelle")
        .next()
        .expect("table")
        .click();
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label(&format!("KW {:02}/{}", week.week(), week.year()))
            .is_some(),
        "this week's row is in the table"
    );

    // Closed again, so only the tiles show totals.
    harness
        .query_all_by_label("Tabelle")
        .next()
        .expect("table")
        .click();
    harness.run_steps(2);

    // One location: Halle's appointments of the 13 weeks.
    let halle = world
        .locations
        .iter()
        .find(|l| l.key == "halle")
        .expect("halle");
    harness.get_by_label("Standort").click();
    harness.run_steps(2);
    harness.get_by_label(&halle.name).click();
    harness.run_steps(2);
    step_until(&mut harness, "Halle chosen", |app| {
        app.model.ui.dashboard.location.as_deref() == Some("halle") && !app.model.kpi.loading
    });
    let from = monday - Days::new(7 * 12);
    let expected = appointments_since(&[halle], from, monday + Days::new(7));
    let figures = match &harness.state().model.kpi.report {
        Some(Ok(report)) => report.figures(Some("halle"), "").expect("Halle"),
        other => panic!("no figures: {other:?}"),
    };
    assert_eq!(figures.sum().appointments.total(), expected);
    assert!(
        harness
            .query_all_by_label(&german(expected))
            .next()
            .is_some(),
        "the tile „Termine“ shows Halle's {expected} appointments of 13 weeks"
    );

    // The export writes both files; the stage table's total row says how
    // many deals HubSpot has in each open stage.
    let dir = tempfile::tempdir().expect("temp dir");
    // The export sits below the charts: scrolled to, as a person would.
    harness.get_by_label("Als CSV exportieren").scroll_to_me();
    harness.run_steps(10);
    harness.get_by_label("Ordner:").focus();
    harness.run_steps(1);
    harness
        .get_by_label("Ordner:")
        .type_text(&dir.path().display().to_string());
    harness.run_steps(2);
    assert_eq!(
        harness.get_by_label("Ordner:").value().as_deref(),
        Some(dir.path().display().to_string().as_str())
    );
    harness.get_by_label("Als CSV exportieren").click();
    step_until(&mut harness, "the export", |app| {
        app.model.kpi.exported.is_some()
    });
    let written = match &harness.state().model.kpi.exported {
        Some(Ok(files)) => files.clone(),
        other => panic!("export failed: {other:?}"),
    };
    assert!(
        written
            .iter()
            .all(|f| f.starts_with(dir.path()) && f.exists())
    );
    let funnel = std::fs::read_to_string(dir.path().join("faelle_je_phase.csv")).expect("file");
    let total: Vec<String> = funnel
        .lines()
        .find(|line| line.starts_with("Alle Standorte;"))
        .expect("total row")
        .split(';')
        .map(str::to_owned)
        .collect();
    let hubspot = runtime.block_on(keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url));
    let open_in_hubspot = hubspot
        .deals
        .values()
        .filter(|deal| {
            let stage = deal
                .get("dealstage")
                .map(String::as_str)
                .unwrap_or_default();
            ["Termin gebucht", "Erstberatung", "In Behandlung"]
                .iter()
                .any(|open| stage == format!("Patientenreise / {open}"))
        })
        .count();
    assert_eq!(
        total.last().map(String::as_str),
        Some(open_in_hubspot.to_string().as_str()),
        "open cases in total = open deals in HubSpot"
    );
}
