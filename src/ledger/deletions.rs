//! Records deleted in Ivoris (not cancelled: gone from every answer), as
//! a full sweep finds them (DESIGN.md §5, the rule in `engine/extract.rs`):
//!
//! - a billing line missing from its patient's unwindowed answer is
//!   removed from the mirror: revenue and stage follow without it;
//! - an appointment no window of the sweep returned and its patient's own
//!   list does not hold either moves from the mirror to
//!   `deleted_appointments`; the planner still sees it, as cancelled, so
//!   its HubSpot record says so and the case's stage follows;
//! - a patient the complete listing lacks and `Patient?id=` does not know
//!   is noted in `deleted_patients`: its contact stays in HubSpot (only
//!   „Patient vergessen“ erases), the run summary counts it.
//!
//! A record that appears again is simply mirrored again; mirroring clears
//! its deletion. Records imported from a CSV export that the API never
//! delivered (no alias, `ledger::identity`) are never found deleted: there
//! is nothing to ask Ivoris about, and history the API does not serve must
//! stay.

use std::collections::HashSet;

use rusqlite::{Connection, Transaction, params};

use super::LedgerError;
use super::identity::{RecordKind, alias_of, api_id_of};

/// The tables of this module (a migration of the ledger's schema).
pub const DELETIONS_MIGRATION: &str = "
CREATE TABLE deleted_appointments (
    location_key     TEXT NOT NULL REFERENCES locations (key),
    ivoris_id        TEXT NOT NULL,
    patient_id       TEXT,
    start            TEXT,
    duration_minutes INTEGER,
    state            TEXT,
    type_label       TEXT,
    template_id      TEXT,
    deleted_at       TEXT NOT NULL,
    PRIMARY KEY (location_key, ivoris_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE deleted_patients (
    location_key TEXT NOT NULL REFERENCES locations (key),
    ivoris_id    TEXT NOT NULL,
    deleted_at   TEXT NOT NULL,
    PRIMARY KEY (location_key, ivoris_id)
) STRICT, WITHOUT ROWID;
";

/// Removes the mirrored billing lines of `patient` whose Id is not in
/// `present` (the patient's complete answer, quarantined lines included);
/// returns their Ids. Ivoris ids are compared through the aliases of
/// imported rows; a line only imported is never removed.
pub(super) fn remove_missing_entries(
    tx: &Transaction<'_>,
    location: &str,
    patient: &str,
    present: &HashSet<&str>,
) -> Result<Vec<String>, LedgerError> {
    // An imported patient's lines are stored under its key (`identity`).
    let patient =
        alias_of(tx, location, RecordKind::Patient, patient)?.unwrap_or_else(|| patient.to_owned());
    let mut select = tx.prepare_cached(
        "SELECT ivoris_id FROM document_entries WHERE location_key = ?1 AND patient_id = ?2",
    )?;
    let stored: Vec<String> = select
        .query_map([location, &patient], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut delete = tx.prepare_cached(
        "DELETE FROM document_entries WHERE location_key = ?1 AND ivoris_id = ?2",
    )?;
    let mut removed = Vec::new();
    for id in stored {
        // A line only imported was never in an answer: history the API may
        // not serve stays.
        let Some(ivoris_id) = api_id_of(tx, location, RecordKind::Entry, &id)? else {
            continue;
        };
        if !present.contains(ivoris_id.as_str()) {
            delete.execute([location, &id])?;
            removed.push(ivoris_id);
        }
    }
    Ok(removed)
}

/// Moves mirrored appointments to `deleted_appointments`; returns how many
/// were moved.
pub(super) fn move_appointments(
    tx: &Transaction<'_>,
    location: &str,
    ids: &[String],
    now: &str,
) -> Result<u64, LedgerError> {
    let mut copy = tx.prepare_cached(
        "INSERT OR REPLACE INTO deleted_appointments
             (location_key, ivoris_id, patient_id, start, duration_minutes, state, type_label,
              template_id, deleted_at)
         SELECT location_key, ivoris_id, patient_id, start, duration_minutes, state, type_label,
                template_id, ?3
         FROM appointments WHERE location_key = ?1 AND ivoris_id = ?2",
    )?;
    let mut delete =
        tx.prepare_cached("DELETE FROM appointments WHERE location_key = ?1 AND ivoris_id = ?2")?;
    let mut moved = 0;
    for id in ids {
        copy.execute(params![location, id, now])?;
        moved += delete.execute([location, id])? as u64;
    }
    Ok(moved)
}

/// Notes patients as deleted in Ivoris.
pub(super) fn mark_patients(
    tx: &Transaction<'_>,
    location: &str,
    ids: &[String],
    now: &str,
) -> Result<(), LedgerError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO deleted_patients (location_key, ivoris_id, deleted_at)
         VALUES (?1, ?2, ?3)",
    )?;
    for id in ids {
        insert.execute([location, id, now])?;
    }
    Ok(())
}

/// Clears the deletion of records that Ivoris answered with again.
pub(super) fn seen_again<'i>(
    tx: &Transaction<'_>,
    table: &str,
    location: &str,
    ids: impl Iterator<Item = &'i str>,
) -> Result<(), LedgerError> {
    let deleted = match table {
        "appointments" => "deleted_appointments",
        "patients" => "deleted_patients",
        _ => return Ok(()),
    };
    // Nearly always nothing is deleted: one look instead of a delete per record.
    let any: bool = tx
        .prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM {deleted} WHERE location_key = ?1)"
        ))?
        .query_row([location], |row| row.get(0))?;
    if !any {
        return Ok(());
    }
    let mut delete = tx.prepare_cached(&format!(
        "DELETE FROM {deleted} WHERE location_key = ?1 AND ivoris_id = ?2"
    ))?;
    for id in ids {
        delete.execute([location, id])?;
    }
    Ok(())
}

/// Mirrored appointments of a location starting on `first`..=`last`
/// (dates `YYYY-MM-DD`), with their patient.
pub fn appointments_between(
    conn: &Connection,
    location: &str,
    first: &str,
    last: &str,
) -> Result<Vec<(String, Option<String>)>, LedgerError> {
    let mut statement = conn.prepare_cached(
        "SELECT ivoris_id, patient_id FROM appointments
         WHERE location_key = ?1 AND substr(start, 1, 10) BETWEEN ?2 AND ?3",
    )?;
    let rows = statement
        .query_map([location, first, last], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Mirrored patients of a location not noted as deleted.
pub fn live_patient_ids(conn: &Connection, location: &str) -> Result<Vec<String>, LedgerError> {
    let mut statement = conn.prepare_cached(
        "SELECT p.ivoris_id FROM patients p
         WHERE p.location_key = ?1 AND NOT EXISTS (
             SELECT 1 FROM deleted_patients d
             WHERE d.location_key = p.location_key AND d.ivoris_id = p.ivoris_id)",
    )?;
    let rows = statement
        .query_map([location], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Patients of a location noted as deleted in Ivoris.
pub fn deleted_patient_count(conn: &Connection, location: &str) -> Result<u64, LedgerError> {
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM deleted_patients WHERE location_key = ?1",
        [location],
        |row| row.get(0),
    )?;
    Ok(u64::try_from(count).unwrap_or(0))
}
