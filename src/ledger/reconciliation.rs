//! The reconciliation report (DESIGN.md §5): per run, location and day, how
//! many appointments and billing lines Ivoris reported, how many the ledger
//! holds and how many HubSpot confirmed — so a missing record is seen, not
//! guessed.

use rusqlite::params;

use super::{Ledger, LedgerError};

/// Schema step: the reconciliation counts.
pub(super) const RECONCILIATION_MIGRATION: &str = r#"
CREATE TABLE reconciliation (
    run_id       INTEGER NOT NULL REFERENCES runs (id),
    location_key TEXT NOT NULL REFERENCES locations (key),
    day          TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('appointments', 'entries')),
    ivoris       INTEGER NOT NULL,
    ledger       INTEGER NOT NULL,
    hubspot      INTEGER,
    PRIMARY KEY (run_id, location_key, day, kind)
) STRICT, WITHOUT ROWID;
"#;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciliationRow {
    /// Location key.
    pub location_key: String,
    /// The day (`YYYY-MM-DD`).
    pub day: String,
    /// `appointments` or `entries`.
    pub kind: String,
    /// What Ivoris reported in the run.
    pub ivoris: u64,
    /// What the ledger holds for the day.
    pub ledger: u64,
    /// What HubSpot confirmed, where HubSpot has a per-day count
    /// (appointment records); `None` otherwise.
    pub hubspot: Option<u64>,
}

impl ReconciliationRow {
    /// Whether the sides disagree.
    pub fn differs(&self) -> bool {
        self.ivoris != self.ledger || self.hubspot.is_some_and(|h| h != self.ledger)
    }
}

impl Ledger {
    /// Ledger and HubSpot counts for one day of a location, given Ivoris's.
    /// `with_hubspot` is false when appointment records are not written.
    pub fn reconcile_day(
        &self,
        location: &str,
        day: &str,
        kind: &str,
        ivoris: u64,
        with_hubspot: bool,
    ) -> Result<ReconciliationRow, LedgerError> {
        // Starts are `YYYY-MM-DDThh:mm:ss`: the day's starts sort from `day`
        // to just before `dayU`, a range the index on (location, start)
        // answers without reading every appointment.
        let count = |sql: &str| -> Result<u64, LedgerError> {
            let n: i64 = self
                .conn
                .prepare_cached(sql)?
                .query_row(params![location, day], |row| row.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let (ledger, hubspot) = if kind == "appointments" {
            let ledger = count(
                "SELECT count(*) FROM appointments
                 WHERE location_key = ?1 AND start >= ?2 AND start < ?2 || 'U'",
            )?;
            let hubspot = if with_hubspot {
                Some(count(
                    "SELECT count(*) FROM appointments a JOIN hubspot_records h
                       ON h.kind = 'appointment' AND h.record_key = a.location_key || ':' || a.ivoris_id
                     WHERE a.location_key = ?1 AND a.start >= ?2 AND a.start < ?2 || 'U'
                       AND h.hubspot_id IS NOT NULL",
                )?)
            } else {
                None
            };
            (ledger, hubspot)
        } else {
            (
                count(
                    "SELECT count(*) FROM document_entries WHERE location_key = ?1 AND date = ?2",
                )?,
                None,
            )
        };
        Ok(ReconciliationRow {
            location_key: location.to_owned(),
            day: day.to_owned(),
            kind: kind.to_owned(),
            ivoris,
            ledger,
            hubspot,
        })
    }

    /// Stores the report of a run in one transaction.
    pub fn record_reconciliation(
        &mut self,
        run: i64,
        rows: &[ReconciliationRow],
    ) -> Result<(), LedgerError> {
        self.transaction(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO reconciliation (run_id, location_key, day, kind, ivoris, ledger, hubspot)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for row in rows {
                insert.execute(params![
                    run,
                    row.location_key,
                    row.day,
                    row.kind,
                    row.ivoris as i64,
                    row.ledger as i64,
                    row.hubspot.map(|h| h as i64)
                ])?;
            }
            Ok(())
        })
    }

    /// The report of the latest run that has one, days in order; with
    /// `differing_only`, just the days where the sides disagree.
    pub fn latest_reconciliation(
        &self,
        differing_only: bool,
    ) -> Result<Vec<ReconciliationRow>, LedgerError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT location_key, day, kind, ivoris, ledger, hubspot FROM reconciliation
             WHERE run_id = (SELECT max(run_id) FROM reconciliation)
             ORDER BY location_key, day, kind",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(ReconciliationRow {
                location_key: row.get(0)?,
                day: row.get(1)?,
                kind: row.get(2)?,
                ivoris: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                ledger: u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
                hubspot: row
                    .get::<_, Option<i64>>(5)?
                    .map(|h| u64::try_from(h).unwrap_or(0)),
            })
        })?;
        let rows: Vec<ReconciliationRow> = rows.collect::<Result<_, _>>()?;
        Ok(rows
            .into_iter()
            .filter(|r| !differing_only || r.differs())
            .collect())
    }
}
