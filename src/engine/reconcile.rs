//! The end of a run: compare, per location and day read in this run, what
//! Ivoris reported with what the ledger holds and what HubSpot confirmed,
//! and keep the report with the run.

use crate::ledger::reconciliation::ReconciliationRow;
use crate::ledger::{Ledger, LedgerError};

use super::extract::ExtractReport;

/// Builds and stores the report of one run for the extracted locations.
pub fn reconcile(
    ledger: &mut Ledger,
    run: i64,
    reports: &[&ExtractReport],
    appointments_in_hubspot: bool,
) -> Result<Vec<ReconciliationRow>, LedgerError> {
    let mut rows = Vec::new();
    for report in reports {
        for (day, count) in &report.appointments_per_day {
            let day = day.format("%Y-%m-%d").to_string();
            rows.push(ledger.reconcile_day(
                &report.location,
                &day,
                "appointments",
                *count,
                appointments_in_hubspot,
            )?);
        }
        for (day, count) in &report.entries_per_day {
            let day = day.format("%Y-%m-%d").to_string();
            rows.push(ledger.reconcile_day(&report.location, &day, "entries", *count, false)?);
        }
    }
    ledger.record_reconciliation(run, &rows)?;
    Ok(rows)
}
