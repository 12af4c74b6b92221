//! Forgetting a patient (GDPR Art. 17): the ledger's side of the erasure.
//!
//! One transaction removes everything the ledger holds about the patient —
//! the mirrored patient, appointments (also those deleted in Ivoris) and
//! billing lines, cases, the id map and queued writes of its records and
//! their associations, quarantined records that mention it, the HubSpot
//! duplicate review's merges and marks of its records and the review's
//! scan cache — queues the erasure of its HubSpot records as outbox rows
//! (kind `erasure`: the contact by GDPR delete, deals and appointment
//! records by archive; sent by `engine::load`) and keeps a *tombstone*:
//! location and Ivoris patient id, and the day. Nothing personal stays;
//! deleted content is overwritten (`secure_delete`, then `VACUUM`).
//!
//! The tombstone keeps the patient out of the ledger: the mirror and the
//! quarantine pass over records of a forgotten patient (its patient record,
//! its appointments and billing lines), so no later sync plans or writes
//! anything for it. Lifting the tombstone marks it lifted; the next
//! extraction then reads the patient, its appointments and billing lines
//! once more ([`Ledger::lifted_patients`]) and removes the marker.

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::json;

use super::audit::{NewAuditEntry, insert as audit_insert};
use super::outbox::OutboxKind;
use super::{Ledger, LedgerError, now};
use crate::plan::properties::{appointment_key, patient_key};

/// Schema step: tombstones of forgotten patients.
pub(super) const ERASURE_MIGRATION: &str = r#"
CREATE TABLE tombstones (
    location_key TEXT NOT NULL,
    patient_id   TEXT NOT NULL,
    forgotten_on TEXT NOT NULL,
    lifted_on    TEXT,
    PRIMARY KEY (location_key, patient_id)
) STRICT, WITHOUT ROWID;
"#;

/// A patient of one location, by Ivoris id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PatientRef {
    /// Location key.
    pub location: String,
    /// Ivoris patient id (a UUID).
    pub patient_id: String,
}

impl PatientRef {
    /// The contact's unique key `<location>:<patient id>`; carries no
    /// personal data, so it may be shown, logged and audited.
    pub fn key(&self) -> String {
        patient_key(&self.location, &self.patient_id)
    }
}

/// What forgetting a patient would do, shown before it is done.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErasurePreview {
    /// The patient.
    pub patient: Option<PatientRef>,
    /// Its number in Ivoris (HumanReadableId), if the mirror has it.
    pub number: Option<String>,
    /// The HubSpot id of its contact, if HubSpot confirmed one.
    pub contact: Option<String>,
    /// Deals (treatment cases) in the ledger.
    pub deals: usize,
    /// Appointments in the ledger.
    pub appointments: usize,
    /// Patients at other locations linked to the same HubSpot contact.
    pub linked: Vec<PatientRef>,
    /// Whether the patient is forgotten already (tombstone in force).
    pub forgotten: bool,
}

/// What one erasure removed and queued.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErasureOutcome {
    /// Patients forgotten (tombstones written).
    pub patients: usize,
    /// Ledger rows removed, all tables together.
    pub rows_removed: usize,
    /// HubSpot erasures queued: contacts, deals, appointment records.
    pub queued: usize,
}

/// A tombstone as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The forgotten patient.
    pub patient: PatientRef,
    /// When it was forgotten (`YYYY-MM-DD`).
    pub forgotten_on: String,
    /// When the tombstone was lifted, while the re-read is still due.
    pub lifted_on: Option<String>,
}

/// Object type of an erasure row, as its payload names it.
pub const ERASE_CONTACT: &str = "contacts";
/// Deals are archived.
pub const ERASE_DEAL: &str = "deals";
/// Appointment records are archived.
pub const ERASE_APPOINTMENT: &str = "appointments";

/// Whether records of `patient` at `location` are to be passed over
/// (tombstone in force).
pub(super) fn forgotten(
    conn: &rusqlite::Connection,
    location: &str,
    patient: &str,
) -> Result<bool, LedgerError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM tombstones WHERE location_key = ?1 AND patient_id = ?2 AND lifted_on IS NULL",
        )?
        .query_row([location, patient], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether any tombstone of `location` is in force (most batches have
/// none, and then no record needs looking up).
pub(super) fn any_forgotten(
    conn: &rusqlite::Connection,
    location: &str,
) -> Result<bool, LedgerError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM tombstones WHERE location_key = ?1 AND lifted_on IS NULL LIMIT 1",
        )?
        .query_row([location], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether a quarantined payload mentions a forgotten patient of
/// `location` (its id, or the record is the patient itself).
pub(super) fn mentions_forgotten(
    conn: &rusqlite::Connection,
    location: &str,
    record_id: Option<&str>,
    raw: &str,
) -> Result<bool, LedgerError> {
    if !any_forgotten(conn, location)? {
        return Ok(false);
    }
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM tombstones WHERE location_key = ?1 AND lifted_on IS NULL
             AND (patient_id = ?2 OR instr(?3, patient_id) > 0) LIMIT 1",
        )?
        .query_row(params![location, record_id, raw], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The HubSpot records of one patient: (kind, record key).
struct PatientRecords {
    contact: String,
    deals: Vec<String>,
    appointments: Vec<String>,
}

impl PatientRecords {
    fn read(conn: &rusqlite::Connection, patient: &PatientRef) -> Result<Self, LedgerError> {
        let location = patient.location.as_str();
        let ids = |sql: &str| -> Result<Vec<String>, LedgerError> {
            let mut statement = conn.prepare(sql)?;
            let rows = statement.query_map([location, &patient.patient_id], |row| row.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        let deals = ids(
            "SELECT case_key FROM cases WHERE location_key = ?1 AND patient_id = ?2 ORDER BY case_key",
        )?;
        let appointment_ids: BTreeSet<String> = ids(
            "SELECT ivoris_id FROM appointments WHERE location_key = ?1 AND patient_id = ?2
             UNION SELECT ivoris_id FROM deleted_appointments WHERE location_key = ?1 AND patient_id = ?2
             UNION SELECT appointment_id FROM case_members WHERE location_key = ?1 AND patient_id = ?2",
        )?
        .into_iter()
        .collect();
        Ok(PatientRecords {
            contact: patient.key(),
            deals,
            appointments: appointment_ids
                .iter()
                .map(|id| appointment_key(location, id))
                .collect(),
        })
    }

    /// Every record key with the kind HubSpot knows it by.
    fn keyed(&self) -> Vec<(OutboxKind, &'static str, &str)> {
        let mut all = vec![(OutboxKind::Contact, ERASE_CONTACT, self.contact.as_str())];
        all.extend(
            self.deals
                .iter()
                .map(|k| (OutboxKind::Deal, ERASE_DEAL, k.as_str())),
        );
        all.extend(
            self.appointments
                .iter()
                .map(|k| (OutboxKind::Appointment, ERASE_APPOINTMENT, k.as_str())),
        );
        all
    }
}

impl Ledger {
    /// The Ivoris id of a patient named by its number in Ivoris
    /// (HumanReadableId) or by its Ivoris id, if the mirror knows it.
    pub fn find_patient(
        &self,
        location: &str,
        number_or_id: &str,
    ) -> Result<Option<String>, LedgerError> {
        let wanted = number_or_id.trim();
        for column in ["ivoris_id", "human_readable_id"] {
            let found = self
                .conn
                .query_row(
                    &format!(
                        "SELECT ivoris_id FROM patients WHERE location_key = ?1 AND {column} = ?2 COLLATE NOCASE
                         ORDER BY ivoris_id LIMIT 1"
                    ),
                    [location, wanted],
                    |row| row.get(0),
                )
                .optional()?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// What forgetting `patient` would remove, and who shares its contact.
    pub fn erasure_preview(&self, patient: &PatientRef) -> Result<ErasurePreview, LedgerError> {
        let records = PatientRecords::read(&self.conn, patient)?;
        let number: Option<String> = self
            .conn
            .query_row(
                "SELECT human_readable_id FROM patients WHERE location_key = ?1 AND ivoris_id = ?2",
                [&patient.location, &patient.patient_id],
                |row| row.get(0),
            )
            .optional()?
            .flatten();
        let contact = self
            .confirmed(OutboxKind::Contact, &records.contact)?
            .and_then(|c| c.hubspot_id);
        Ok(ErasurePreview {
            patient: Some(patient.clone()),
            number,
            linked: self.linked_patients(patient)?,
            contact,
            deals: records.deals.len(),
            appointments: records.appointments.len(),
            forgotten: forgotten(&self.conn, &patient.location, &patient.patient_id)?,
        })
    }

    /// Patients of other locations whose contact in HubSpot is this
    /// patient's (the same person, linked over a shared e-mail address).
    pub fn linked_patients(&self, patient: &PatientRef) -> Result<Vec<PatientRef>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT other.record_key FROM hubspot_records own
             JOIN hubspot_records other ON other.kind = own.kind AND other.hubspot_id = own.hubspot_id
             WHERE own.kind = 'contact' AND own.record_key = ?1 AND other.record_key != ?1
             ORDER BY other.record_key",
        )?;
        let rows = statement.query_map([patient.key()], |row| row.get::<_, String>(0))?;
        let mut linked = Vec::new();
        for key in rows {
            let key = key?;
            if let Some((location, id)) = key.split_once(':') {
                linked.push(PatientRef {
                    location: location.to_owned(),
                    patient_id: id.to_owned(),
                });
            }
        }
        Ok(linked)
    }

    /// Forgets the patients in one transaction: their rows are removed,
    /// the erasure of their HubSpot records is queued, a tombstone is kept
    /// and the erasure is audited (keys and HubSpot ids only).
    pub fn forget_patients(
        &mut self,
        patients: &[PatientRef],
        actor: &str,
    ) -> Result<ErasureOutcome, LedgerError> {
        // Freed pages and cells are overwritten: the deleted values must not
        // linger in the file.
        self.conn.pragma_update(None, "secure_delete", true)?;
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        let outcome = self.transaction(|tx| {
            let mut outcome = ErasureOutcome::default();
            for patient in patients {
                let records = PatientRecords::read(tx, patient)?;
                let queued = queue_erasures(tx, patient, &records)?;
                let removed = remove_rows(tx, patient, &records)?;
                tx.execute(
                    "INSERT INTO tombstones (location_key, patient_id, forgotten_on) VALUES (?1, ?2, ?3)
                     ON CONFLICT (location_key, patient_id) DO UPDATE SET
                        forgotten_on = excluded.forgotten_on, lifted_on = NULL",
                    params![patient.location, patient.patient_id, today],
                )?;
                audit_insert(
                    tx,
                    &NewAuditEntry {
                        actor: actor.to_owned(),
                        action: "patient.forget".into(),
                        subject: patient.key(),
                        details: json!({
                            "deals": records.deals,
                            "appointments": records.appointments.len(),
                            "erasures_queued": queued,
                            "rows_removed": removed,
                        }),
                    },
                )?;
                outcome.patients += 1;
                outcome.queued += queued;
                outcome.rows_removed += removed;
            }
            Ok(outcome)
        })?;
        self.scrub();
        Ok(outcome)
    }

    /// Rewrites the file without free space: rows deleted earlier without
    /// `secure_delete` (confirmed outbox payloads, replaced records) leave
    /// their bytes in free pages until then. The WAL, which holds the old
    /// pages too, is copied back and emptied. A reader that keeps an old
    /// state open can hold some of it back; that is logged, never fatal.
    fn scrub(&self) {
        let vacuumed = self.conn.execute_batch("VACUUM").map_err(LedgerError::from);
        if let Err(error) = vacuumed.and_then(|()| self.checkpoint()) {
            tracing::warn!(%error, "ledger could not be compacted after an erasure");
        }
    }

    /// Copies the WAL into the ledger file and empties it (readers that
    /// still see an older state may keep some of it until they finish).
    pub fn checkpoint(&self) -> Result<(), LedgerError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Lifts the tombstone: the patient is read again by the next sync.
    /// Returns whether there was one in force.
    pub fn lift_tombstone(
        &mut self,
        patient: &PatientRef,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        self.transaction(|tx| {
            let lifted = tx.execute(
                "UPDATE tombstones SET lifted_on = ?3
                 WHERE location_key = ?1 AND patient_id = ?2 AND lifted_on IS NULL",
                params![patient.location, patient.patient_id, today],
            )?;
            if lifted > 0 {
                audit_insert(
                    tx,
                    &NewAuditEntry {
                        actor: actor.to_owned(),
                        action: "patient.forget_lifted".into(),
                        subject: patient.key(),
                        details: json!({}),
                    },
                )?;
            }
            Ok(lifted > 0)
        })
    }

    /// HubSpot erased these records (`(outbox row, record key, HubSpot id)`
    /// of one object type): their rows leave the outbox, each with an audit
    /// entry. One transaction.
    pub fn erased(
        &mut self,
        object: &str,
        done: &[(i64, String, Option<String>)],
    ) -> Result<(), LedgerError> {
        self.transaction(|tx| {
            for (row, key, hubspot_id) in done {
                tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
                    .execute([row])?;
                audit_insert(
                    tx,
                    &NewAuditEntry {
                        actor: "sync".into(),
                        action: "patient.erased".into(),
                        subject: key.clone(),
                        details: json!({"object": object, "hubspot_id": hubspot_id}),
                    },
                )?;
            }
            Ok(())
        })
    }

    /// Every tombstone, in force or lifted and not yet re-read.
    pub fn tombstones(&self) -> Result<Vec<Tombstone>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT location_key, patient_id, forgotten_on, lifted_on FROM tombstones
             ORDER BY location_key, patient_id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(Tombstone {
                patient: PatientRef {
                    location: row.get(0)?,
                    patient_id: row.get(1)?,
                },
                forgotten_on: row.get(2)?,
                lifted_on: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Patients of `location` whose tombstone was lifted: the extraction
    /// reads them again whole (their history lies before its windows).
    pub fn lifted_patients(&self, location: &str) -> Result<Vec<String>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT patient_id FROM tombstones WHERE location_key = ?1 AND lifted_on IS NOT NULL
             ORDER BY patient_id",
        )?;
        let rows = statement.query_map([location], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Removes the marker of a lifted tombstone once the patient was read again.
pub(super) fn reread_done(
    tx: &Transaction<'_>,
    location: &str,
    patient: &str,
) -> Result<(), LedgerError> {
    tx.execute(
        "DELETE FROM tombstones WHERE location_key = ?1 AND patient_id = ?2 AND lifted_on IS NOT NULL",
        [location, patient],
    )?;
    Ok(())
}

/// Queues one erasure row per HubSpot record of the patient that HubSpot
/// has or may have (confirmed with an id, or a write queued whose answer
/// may have been lost). The payload names the object by HubSpot id where
/// known and always by its unique key. Returns how many were queued.
fn queue_erasures(
    tx: &Transaction<'_>,
    patient: &PatientRef,
    records: &PatientRecords,
) -> Result<usize, LedgerError> {
    let now = now();
    let mut queued = 0;
    for (kind, object, key) in records.keyed() {
        let hubspot_id: Option<Option<String>> = tx
            .prepare_cached(
                "SELECT hubspot_id FROM hubspot_records WHERE kind = ?1 AND record_key = ?2",
            )?
            .query_row(params![kind.as_str(), key], |row| row.get(0))
            .optional()?;
        let pending = tx
            .prepare_cached("SELECT 1 FROM outbox WHERE kind = ?1 AND record_key = ?2")?
            .query_row(params![kind.as_str(), key], |_| Ok(()))
            .optional()?
            .is_some();
        if hubspot_id.is_none() && !pending {
            continue;
        }
        let payload = json!({"object": object, "key": key, "id": hubspot_id.flatten()});
        let text = serde_json::to_string(&payload)?;
        let hash = blake3::hash(text.as_bytes()).to_hex().to_string();
        tx.prepare_cached(
            "INSERT INTO outbox (kind, record_key, location_key, payload, payload_hash, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)
             ON CONFLICT (kind, record_key) DO UPDATE SET payload = excluded.payload,
                payload_hash = excluded.payload_hash, state = 'pending', attempts = 0,
                last_error = NULL, next_attempt_at = NULL, updated_at = excluded.updated_at",
        )?
        .execute(params![
            OutboxKind::Erasure.as_str(),
            format!("{object}/{key}"),
            patient.location,
            text,
            hash,
            now
        ])?;
        queued += 1;
    }
    Ok(queued)
}

/// Deletes every row about the patient; returns how many.
fn remove_rows(
    tx: &Transaction<'_>,
    patient: &PatientRef,
    records: &PatientRecords,
) -> Result<usize, LedgerError> {
    let location = patient.location.as_str();
    let id = patient.patient_id.as_str();
    // First, while the id map still names the patient's HubSpot ids.
    let mut removed = remove_review_rows(tx, records)?;
    for sql in [
        "DELETE FROM case_members WHERE location_key = ?1 AND patient_id = ?2",
        "DELETE FROM cases WHERE location_key = ?1 AND patient_id = ?2",
        "DELETE FROM document_entries WHERE location_key = ?1 AND patient_id = ?2",
        "DELETE FROM appointments WHERE location_key = ?1 AND patient_id = ?2",
        "DELETE FROM deleted_appointments WHERE location_key = ?1 AND patient_id = ?2",
        "DELETE FROM patients WHERE location_key = ?1 AND ivoris_id = ?2",
        "DELETE FROM deleted_patients WHERE location_key = ?1 AND ivoris_id = ?2",
        "DELETE FROM quarantine WHERE location_key = ?1
            AND (record_id = ?2 OR instr(raw, ?2) > 0)",
    ] {
        removed += tx.execute(sql, [location, id])?;
    }
    let keys: BTreeSet<&str> = records.keyed().into_iter().map(|(_, _, k)| k).collect();
    for (kind, _, key) in records.keyed() {
        for table in ["hubspot_records", "outbox"] {
            removed += tx
                .prepare_cached(&format!(
                    "DELETE FROM {table} WHERE kind = ?1 AND record_key = ?2"
                ))?
                .execute(params![kind.as_str(), key])?;
        }
    }
    removed += remove_associations(tx, location, &keys)?;
    Ok(removed)
}

/// The HubSpot duplicate review's rows about the patient: its contact's
/// merges (queued or done), marks on its deals — and the last scan's
/// cache, which may show the contact's name and address side by side with
/// another; the next scan builds it again.
fn remove_review_rows(
    tx: &Transaction<'_>,
    records: &PatientRecords,
) -> Result<usize, LedgerError> {
    let id_of = |kind: OutboxKind, key: &str| -> Result<Option<String>, LedgerError> {
        Ok(tx
            .prepare_cached(
                "SELECT hubspot_id FROM hubspot_records WHERE kind = ?1 AND record_key = ?2",
            )?
            .query_row(params![kind.as_str(), key], |row| row.get(0))
            .optional()?
            .flatten())
    };
    let mut removed = tx.execute("DELETE FROM portal_scans", [])?;
    removed += tx.execute(
        "DELETE FROM contact_merges WHERE record_key = ?1",
        [&records.contact],
    )?;
    if let Some(contact) = id_of(OutboxKind::Contact, &records.contact)? {
        removed += tx.execute(
            "DELETE FROM outbox WHERE kind = 'merge' AND (json_extract(payload, '$.primary') = ?1
                OR json_extract(payload, '$.secondary') = ?1)",
            [&contact],
        )?;
    }
    for deal in &records.deals {
        if let Some(id) = id_of(OutboxKind::Deal, deal)? {
            removed += tx.execute("DELETE FROM deal_marks WHERE deal_id = ?1", [&id])?;
        }
    }
    Ok(removed)
}

/// Association rows (queued or confirmed) with one end among `keys`. Their
/// keys are `<from kind>><to kind>|<from key>><to key>`.
fn remove_associations(
    tx: &Transaction<'_>,
    location: &str,
    keys: &BTreeSet<&str>,
) -> Result<usize, LedgerError> {
    let mut removed = 0;
    for table in ["hubspot_records", "outbox"] {
        let candidates: Vec<String> = {
            let mut statement = tx.prepare(&format!(
                "SELECT record_key FROM {table} WHERE kind = 'association'
                 AND (instr(record_key, '|' || ?1 || ':') > 0 OR instr(record_key, '>' || ?1 || ':') > 0)"
            ))?;
            let rows = statement.query_map([location], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for key in candidates {
            let ends = key
                .split_once('|')
                .map(|(_, ends)| ends)
                .unwrap_or_default();
            let touches = ends.split('>').any(|end| keys.contains(end));
            if touches {
                removed += tx
                    .prepare_cached(&format!(
                        "DELETE FROM {table} WHERE kind = 'association' AND record_key = ?1"
                    ))?
                    .execute([&key])?;
            }
        }
    }
    Ok(removed)
}
