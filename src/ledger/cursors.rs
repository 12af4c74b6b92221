//! Cursors: how far the extraction of each location has come, and the one
//! transaction that moves a cursor together with the data it read.
//!
//! A cursor is a short text per location and stream (the next patient page,
//! the next appointment day, the latest change seen, the sweep's progress).
//! "Nothing lost" (DESIGN.md §3.2) means a cursor may only pass records that
//! are committed; [`Ledger::commit`] gives the extractor one transaction in
//! which it mirrors a page, quarantines its bad records and advances the
//! cursor, so a kill at any instant leaves either all of it or none.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, Transaction, params};

use super::deletions;
use super::mirror::{self, MirrorOutcome, Mirrored};
use super::quarantine::{self, NewQuarantine};
use super::{Ledger, LedgerError, now};

/// The cursors table (migration appended in [`super::schema`]). Values are
/// text so each stream can choose its format (a number, a date, a date-time).
pub const CURSORS_MIGRATION: &str = r#"
CREATE TABLE cursors (
    location_key TEXT NOT NULL REFERENCES locations (key),
    stream       TEXT NOT NULL,
    value        TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (location_key, stream)
) STRICT, WITHOUT ROWID;
"#;

/// The streams the extractor keeps cursors for.
pub mod stream {
    /// Next zero-based `AllPatients` page of the pass in progress.
    pub const PATIENT_PAGE: &str = "patients.page";
    /// First day (`YYYY-MM-DD`) of the next appointment window to read.
    pub const APPOINTMENT_DAY: &str = "appointments.day";
    /// Latest `LastModified` of an appointment seen (`YYYY-MM-DDThh:mm:ss`).
    pub const APPOINTMENT_CHANGES: &str = "appointments.changed_since";
    /// Last patient Id whose entries the sweep in progress has read.
    pub const ENTRY_SWEEP: &str = "entries.sweep_after";
    /// When the last full sweep of entries finished (the plan's now).
    pub const ENTRY_SWEEP_DONE: &str = "entries.sweep_done_at";
}

/// Writes of one transaction: mirror, quarantine and cursors together.
pub struct Batch<'t> {
    /// The open transaction; committed by [`Ledger::commit`] only when the
    /// closure succeeds.
    tx: &'t Transaction<'t>,
}

impl<'t> Batch<'t> {
    /// Writes of an open transaction (a dry run that rolls back, planning
    /// in the same transaction).
    pub fn over(tx: &'t Transaction<'t>) -> Batch<'t> {
        Batch { tx }
    }

    /// The transaction's connection, for reads that must see this batch.
    pub fn connection(&self) -> &rusqlite::Connection {
        self.tx
    }

    /// Mirrors records like [`Ledger::mirror`], inside this transaction.
    pub fn mirror<R: Mirrored>(
        &mut self,
        location: &str,
        records: &[R],
    ) -> Result<MirrorOutcome, LedgerError> {
        self.mirror_known(location, records, &[])
    }

    /// [`Batch::mirror`] for records of which the caller knows some are
    /// not in the ledger (`absent[i]` for `records[i]`; missing entries
    /// count as unknown): those are inserted without looking for them. An
    /// absent record that is there after all fails the batch (its key is
    /// taken), it is never overwritten unseen.
    pub fn mirror_known<R: Mirrored>(
        &mut self,
        location: &str,
        records: &[R],
        absent: &[bool],
    ) -> Result<MirrorOutcome, LedgerError> {
        let outcome = mirror::upsert(self.tx, location, records, absent)?;
        deletions::seen_again(
            self.tx,
            R::TABLE,
            location,
            records.iter().map(Mirrored::id),
        )?;
        Ok(outcome)
    }

    /// [`Batch::mirror_known`] for records serialised ahead (see
    /// [`super::mirror::Serialised`]).
    pub fn mirror_serialised<R: Mirrored>(
        &mut self,
        location: &str,
        records: Vec<mirror::Serialised<R>>,
        absent: &[bool],
    ) -> Result<MirrorOutcome, LedgerError> {
        // Before the records move (the order does not matter: storing
        // reads no deletion).
        deletions::seen_again(
            self.tx,
            R::TABLE,
            location,
            records.iter().map(|r| r.record().id()),
        )?;
        mirror::upsert_serialised(self.tx, location, records, absent)
    }

    /// Removes the billing lines of `patient` that its complete answer
    /// (`present`) no longer has; returns their Ids.
    pub fn remove_missing_entries(
        &mut self,
        location: &str,
        patient: &str,
        present: &HashSet<&str>,
    ) -> Result<Vec<String>, LedgerError> {
        deletions::remove_missing_entries(self.tx, location, patient, present)
    }

    /// Moves appointments deleted in Ivoris out of the mirror (the planner
    /// still sees them, cancelled); returns how many were moved.
    pub fn delete_appointments(
        &mut self,
        location: &str,
        ids: &[String],
        now: &str,
    ) -> Result<u64, LedgerError> {
        deletions::move_appointments(self.tx, location, ids, now)
    }

    /// Notes patients as deleted in Ivoris.
    pub fn delete_patients(
        &mut self,
        location: &str,
        ids: &[String],
        now: &str,
    ) -> Result<(), LedgerError> {
        deletions::mark_patients(self.tx, location, ids, now)
    }

    /// Quarantines a record like [`Ledger::quarantine`], inside this transaction.
    pub fn quarantine(&mut self, item: &NewQuarantine) -> Result<Option<i64>, LedgerError> {
        quarantine::insert(self.tx, item)
    }

    /// Sets a cursor.
    pub fn set_cursor(
        &mut self,
        location: &str,
        stream: &str,
        value: &str,
    ) -> Result<(), LedgerError> {
        set(self.tx, location, stream, value)
    }

    /// Removes a cursor (the stream starts from its beginning next time).
    pub fn clear_cursor(&mut self, location: &str, stream: &str) -> Result<(), LedgerError> {
        self.tx.execute(
            "DELETE FROM cursors WHERE location_key = ?1 AND stream = ?2",
            [location, stream],
        )?;
        Ok(())
    }

    /// Marks a patient whose tombstone was lifted as read again.
    pub fn reread_done(&mut self, location: &str, patient: &str) -> Result<(), LedgerError> {
        super::erasure::reread_done(self.tx, location, patient)
    }

    /// Reads a cursor as this transaction sees it.
    pub fn cursor(&self, location: &str, stream: &str) -> Result<Option<String>, LedgerError> {
        get(self.tx, location, stream)
    }
}

fn get(
    conn: &rusqlite::Connection,
    location: &str,
    stream: &str,
) -> Result<Option<String>, LedgerError> {
    Ok(conn
        .query_row(
            "SELECT value FROM cursors WHERE location_key = ?1 AND stream = ?2",
            [location, stream],
            |row| row.get(0),
        )
        .optional()?)
}

fn set(
    conn: &rusqlite::Connection,
    location: &str,
    stream: &str,
    value: &str,
) -> Result<(), LedgerError> {
    Ledger::require_location(conn, location)?;
    conn.execute(
        "INSERT INTO cursors (location_key, stream, value, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (location_key, stream) DO UPDATE SET
            value = excluded.value, updated_at = excluded.updated_at
         WHERE value IS NOT excluded.value",
        params![location, stream, value, now()],
    )?;
    Ok(())
}

impl Ledger {
    /// A cursor's value, `None` when the stream has not started.
    pub fn cursor(&self, location: &str, stream: &str) -> Result<Option<String>, LedgerError> {
        get(&self.conn, location, stream)
    }

    /// Sets one cursor on its own.
    pub fn set_cursor(
        &mut self,
        location: &str,
        stream: &str,
        value: &str,
    ) -> Result<(), LedgerError> {
        set(&self.conn, location, stream, value)
    }

    /// The latest `LastModified` of a mirrored appointment of a location:
    /// where the change route starts when its cursor is not set yet.
    pub fn latest_appointment_change(&self, location: &str) -> Result<Option<String>, LedgerError> {
        Ok(self.conn.query_row(
            "SELECT max(last_modified) FROM appointments WHERE location_key = ?1",
            [location],
            |row| row.get(0),
        )?)
    }

    /// Ivoris ids of the mirrored patients of a location after `after`, in
    /// order: what a resumed sweep still has to read. An imported patient
    /// is asked by the Ivoris id it is an alias of, one without any is not
    /// asked (`ledger::identity`).
    pub fn patient_ids_after(
        &self,
        location: &str,
        after: &str,
    ) -> Result<Vec<String>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT id FROM (
                SELECT ivoris_id AS id FROM patients WHERE location_key = ?1
                  AND NOT (ivoris_id >= 'imp-' AND ivoris_id < 'imp.')
                UNION
                SELECT api_id FROM id_aliases WHERE location_key = ?1 AND kind = 'patient')
             WHERE id > ?2 ORDER BY id",
        )?;
        let rows = statement.query_map([location, after], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Runs `write` in one transaction: committed when it returns `Ok`,
    /// rolled back (nothing written) when it returns `Err`.
    pub fn commit<T>(
        &mut self,
        write: impl FnOnce(&mut Batch<'_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let tx = self.conn.transaction()?;
        let value = write(&mut Batch { tx: &tx })?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs `write` in one transaction, committed only when it returns
    /// `Ok((value, true))`; `Ok((value, false))` and `Err` roll it back.
    pub fn commit_if<T>(
        &mut self,
        write: impl FnOnce(&mut Batch<'_>) -> Result<(T, bool), LedgerError>,
    ) -> Result<T, LedgerError> {
        let tx = self.conn.transaction()?;
        let (value, keep) = write(&mut Batch { tx: &tx })?;
        if keep {
            tx.commit()?;
        }
        Ok(value)
    }
}
