//! `kpi`: the dashboard's key figures from the ledger, per location and
//! week or month, printed as a table and optionally written as CSV files
//! for German Excel — for reports without opening the app.

use std::path::{Path, PathBuf};

use anyhow::Context;

use ivoris_hubspot_sync::csvio::format_cents;
use ivoris_hubspot_sync::engine::dashboard::{KpiRequest, export, kpi_report};
use ivoris_hubspot_sync::engine::run::clock_for;
use ivoris_hubspot_sync::kpi::export::{all_locations, percent};
use ivoris_hubspot_sync::kpi::{Granularity, LocationFigures, PeriodFigures};
use ivoris_hubspot_sync::ledger::Ledger;
use ivoris_hubspot_sync::mapping::Stage;
use ivoris_hubspot_sync::settings::{DataDirs, Language, Settings};

/// Options of `kpi`.
#[derive(clap::Args)]
pub struct KpiArgs {
    /// Weeks instead of months.
    #[arg(long)]
    weeks: bool,
    /// How many periods, ending with the current one.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=520))]
    periods: u32,
    /// Only this location (its key); default: every location and the total.
    #[arg(long, value_name = "KEY")]
    location: Option<String>,
    /// Also write the CSV files (German Excel) into this folder.
    #[arg(long, value_name = "DIR")]
    csv: Option<PathBuf>,
}

/// Prints the figures and writes the CSV files when asked.
pub fn run(args: KpiArgs, config: Option<&Path>, dirs: &DataDirs) -> anyhow::Result<()> {
    let settings = Settings::load(config, dirs)?;
    let german = settings.language == Language::De;
    let path = settings.ledger_path(dirs);
    if !path.exists() {
        anyhow::bail!(
            "Noch keine Synchronisation: kein Ledger unter {} / No sync yet: no ledger at {}",
            path.display(),
            path.display()
        );
    }
    let ledger = Ledger::open(&path).with_context(|| format!("{}", path.display()))?;
    let request = KpiRequest {
        granularity: if args.weeks {
            Granularity::Week
        } else {
            Granularity::Month
        },
        periods: args.periods,
    };
    let report = kpi_report(&ledger, &settings, request, clock_for(&settings)())?;
    let shown: Vec<LocationFigures> = match &args.location {
        Some(key) => vec![report.figures(Some(key), "").with_context(|| {
            format!("Standort „{key}“ ist im Ledger nicht bekannt / location \"{key}\" is not in the ledger")
        })?],
        None => {
            let mut all = report.locations.clone();
            if all.len() > 1 {
                all.push(report.total(all_locations(german)));
            }
            all
        }
    };
    println!(
        "{} {}",
        if german { "Stand" } else { "As of" },
        report.now.format("%d.%m.%Y %H:%M")
    );
    for figures in &shown {
        print_location(figures, &report, german);
    }
    if let Some(dir) = &args.csv {
        let files = export(&report, dir, german).map_err(anyhow::Error::msg)?;
        for file in files {
            println!(
                "{} {}",
                if german { "Geschrieben:" } else { "Written:" },
                file.display()
            );
        }
    }
    Ok(())
}

/// One location's table and its stage snapshot.
fn print_location(
    figures: &LocationFigures,
    report: &ivoris_hubspot_sync::kpi::KpiReport,
    german: bool,
) {
    let pick = |de: &'static str, en: &'static str| if german { de } else { en };
    println!("\n{}", figures.name);
    println!(
        "  {:<11} {:>8} {:>9} {:>9} {:>9} {:>8} {:>14} {:>9} {:>12}",
        pick("Zeitraum", "Period"),
        pick("Termine", "Appts"),
        pick("Ausfall %", "No-show %"),
        pick("Neupat.", "New pat."),
        pick("Erstber.", "Consult."),
        pick("Konv. %", "Conv. %"),
        pick("Umsatz €", "Revenue €"),
        pick("Abgeschl.", "Completed"),
        pick("€ je Fall", "€ per case"),
    );
    let row = |label: String, p: &PeriodFigures| {
        println!(
            "  {:<11} {:>8} {:>9} {:>9} {:>9} {:>8} {:>14} {:>9} {:>12}",
            label,
            p.appointments.total(),
            percent(p.appointments.no_show_rate()),
            p.new_patients,
            p.consultations,
            percent(p.conversion_rate()),
            format_cents(p.revenue_cents),
            p.completed_treatments,
            p.revenue_per_case_cents()
                .map(format_cents)
                .unwrap_or_default(),
        );
    };
    for (index, period) in figures.periods.iter().enumerate() {
        row(report.periods.label(index, german), period);
    }
    row(pick("Summe", "Total").to_owned(), &figures.sum());
    let stages: Vec<String> = Stage::ALL
        .into_iter()
        .map(|stage| {
            format!(
                "{} {}",
                report.stage_label(stage),
                figures.funnel.count(stage)
            )
        })
        .collect();
    println!(
        "  {}: {}",
        pick("Fälle je Phase", "Cases per stage"),
        stages.join(" · ")
    );
}
