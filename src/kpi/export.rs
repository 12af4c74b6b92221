//! The dashboard's figures as CSV for German Excel (UTF-8 with BOM, `;`,
//! decimal comma): one row per location and period (and the chain's total),
//! and the stage snapshot per location.

use crate::csvio::{CsvWriteError, format_cents, write_excel};
use crate::mapping::{Category, Stage};

use super::{KpiReport, LocationFigures};

/// The name of the chain's total row.
pub fn all_locations(german: bool) -> &'static str {
    if german {
        "Alle Standorte"
    } else {
        "All locations"
    }
}

/// A share as a percentage with a decimal comma and one decimal (`12,5`);
/// empty when there is nothing to divide by.
pub fn percent(rate: Option<f64>) -> String {
    rate.map(|r| format!("{:.1}", r * 100.0).replace('.', ","))
        .unwrap_or_default()
}

/// The column titles of [`period_rows`].
pub fn period_header(german: bool) -> Vec<String> {
    let pick = |de: &str, en: &str| if german { de } else { en }.to_owned();
    let mut header = vec![
        pick("Standort", "Location"),
        pick("Zeitraum", "Period"),
        pick("Beginn", "Start"),
        pick("Termine", "Appointments"),
        pick("Stattgefunden", "Attended"),
        pick("Abgesagt", "Cancelled"),
        pick("Nicht erschienen", "No-show"),
        pick("Offen", "Open"),
        pick("Status nicht zugeordnet", "State not mapped"),
        pick("Ausfallquote %", "No-show rate %"),
        pick("Neupatienten", "New patients"),
        pick("Erstberatungen", "Consultations"),
        pick("Fälle mit Erstberatung", "Consulted cases"),
        pick("Davon in Behandlung", "Of which treated"),
        pick("Konversion %", "Conversion %"),
        pick("Umsatz €", "Revenue €"),
    ];
    for category in Category::ALL {
        header.push(format!(
            "{} {} €",
            pick("Umsatz", "Revenue"),
            category.label()
        ));
    }
    header.extend([
        pick("Separat €", "Separate €"),
        pick("Abgeschlossene Behandlungen", "Completed treatments"),
        pick("Umsatz je Fall €", "Revenue per case €"),
        pick("Verlorene Fälle", "Lost cases"),
    ]);
    header
}

/// One row per location and period, then the total of all locations.
pub fn period_rows(report: &KpiReport, german: bool) -> Vec<Vec<String>> {
    let total = report.total(all_locations(german));
    let mut rows = Vec::new();
    for location in report.locations.iter().chain(std::iter::once(&total)) {
        rows.extend(location_rows(report, location, german));
    }
    rows
}

fn location_rows(report: &KpiReport, location: &LocationFigures, german: bool) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for (index, figures) in location.periods.iter().enumerate() {
        let start = report.periods.starts.get(index);
        let a = &figures.appointments;
        let mut row = vec![
            location.name.clone(),
            report.periods.label(index, german),
            start
                .map(|d| d.format("%d.%m.%Y").to_string())
                .unwrap_or_default(),
            a.total().to_string(),
            a.attended.to_string(),
            a.cancelled.to_string(),
            a.no_show.to_string(),
            a.open.to_string(),
            a.unmapped.to_string(),
            percent(a.no_show_rate()),
            figures.new_patients.to_string(),
            figures.consultations.to_string(),
            figures.consulted_cases.to_string(),
            figures.converted_cases.to_string(),
            percent(figures.conversion_rate()),
            format_cents(figures.revenue_cents),
        ];
        for category in Category::ALL {
            let cents = figures
                .revenue_by_category
                .get(&category)
                .copied()
                .unwrap_or(0);
            row.push(format_cents(cents));
        }
        row.extend([
            format_cents(figures.separate_cents),
            figures.completed_treatments.to_string(),
            figures
                .revenue_per_case_cents()
                .map(format_cents)
                .unwrap_or_default(),
            figures.lost_cases.to_string(),
        ]);
        rows.push(row);
    }
    rows
}

/// The column titles of [`funnel_rows`].
pub fn funnel_header(german: bool, stage_label: impl Fn(Stage) -> String) -> Vec<String> {
    let mut header = vec![if german { "Standort" } else { "Location" }.to_owned()];
    header.extend(Stage::ALL.into_iter().map(stage_label));
    header.push(
        if german {
            "Offen gesamt"
        } else {
            "Open in total"
        }
        .to_owned(),
    );
    header
}

/// Cases per stage now, per location and in total.
pub fn funnel_rows(report: &KpiReport, german: bool) -> Vec<Vec<String>> {
    let total = report.total(all_locations(german));
    report
        .locations
        .iter()
        .chain(std::iter::once(&total))
        .map(|location| {
            let mut row = vec![location.name.clone()];
            row.extend(
                Stage::ALL
                    .into_iter()
                    .map(|stage| location.funnel.count(stage).to_string()),
            );
            row.push(location.funnel.open().to_string());
            row
        })
        .collect()
}

/// The period table as a CSV file.
pub fn periods_csv(report: &KpiReport, german: bool) -> Result<Vec<u8>, CsvWriteError> {
    let header = period_header(german);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write_excel(&header, &period_rows(report, german))
}

/// The stage snapshot as a CSV file; `stage_label` names each stage as
/// the mapping does.
pub fn funnel_csv(
    report: &KpiReport,
    german: bool,
    stage_label: impl Fn(Stage) -> String,
) -> Result<Vec<u8>, CsvWriteError> {
    let header = funnel_header(german, stage_label);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write_excel(&header, &funnel_rows(report, german))
}
