//! The KPI dashboard's figures from the ledger (DESIGN.md §9): every
//! location's patients derived at `now` with the mapping in force — the
//! stages HubSpot shows — folded into [`crate::kpi`] figures.
//!
//! Read-only: it opens no writer lock and writes nothing, so it runs beside
//! a sync (SQLite's WAL lets it read the last committed state).

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;

use crate::kpi::{Granularity, KpiReport, LocationFigures, Periods, export};
use crate::ledger::{Ledger, LedgerError};
use crate::mapping::Stage;
use crate::mapping::store::{MappingStoreError, load_applied};
use crate::settings::Settings;

use super::known_locations;
use super::planner::{observe_location, planning_threads};

/// What the dashboard shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KpiRequest {
    /// Weeks or months.
    pub granularity: Granularity,
    /// How many periods, ending with the current one.
    pub periods: u32,
}

impl Default for KpiRequest {
    fn default() -> Self {
        KpiRequest {
            granularity: Granularity::Month,
            periods: 12,
        }
    }
}

/// Why the figures could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum KpiError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] MappingStoreError),
}

/// The CSV files [`export`] writes, by the report's granularity.
pub fn export_file_names(granularity: Granularity) -> [&'static str; 2] {
    match granularity {
        Granularity::Week => ["kennzahlen_wochen.csv", "faelle_je_phase.csv"],
        Granularity::Month => ["kennzahlen_monate.csv", "faelle_je_phase.csv"],
    }
}

/// Writes the period table and the stage snapshot as CSV for German Excel
/// into `dir`; returns the files written. Errors are German / English.
pub fn export(report: &KpiReport, dir: &Path, german: bool) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let [periods_name, funnel_name] = export_file_names(report.periods.granularity);
    let files = [
        (periods_name, export::periods_csv(report, german)),
        (
            funnel_name,
            export::funnel_csv(report, german, |stage| report.stage_label(stage)),
        ),
    ];
    let mut written = Vec::new();
    for (name, bytes) in files {
        let bytes = bytes.map_err(|e| e.to_string())?;
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Computes the figures of every known location.
pub fn kpi_report(
    ledger: &Ledger,
    settings: &Settings,
    request: KpiRequest,
    now: NaiveDateTime,
) -> Result<KpiReport, KpiError> {
    let (_, mapping) = load_applied(ledger)?;
    let periods = Periods::ending(request.granularity, now.date(), request.periods);
    let mut locations = Vec::new();
    for (key, name, _) in known_locations(ledger, settings)? {
        let parts = observe_location(
            ledger,
            &key,
            &mapping,
            now,
            planning_threads(),
            || LocationFigures::new(&key, &name, &periods),
            |figures, patient| figures.add_patient(patient, &periods, &mapping),
        )?;
        let mut figures = LocationFigures::new(&key, &name, &periods);
        for part in &parts {
            figures.absorb(part);
        }
        locations.push(figures);
    }
    let stage_labels = Stage::ALL
        .into_iter()
        .map(|stage| {
            let label = mapping.stage_label(stage).unwrap_or(stage.key());
            (stage, label.to_owned())
        })
        .collect();
    Ok(KpiReport {
        now,
        periods,
        locations,
        stage_labels,
    })
}
