//! Which mirror row each row of a file is (the rules are documented in
//! `ledger::identity`, ARCHITECTURE.md and the README):
//! - patient: its UUID when the file has one, else its patient number —
//!   the mirrored patient with that number (an API-read one) or the
//!   synthetic key of the number;
//! - appointment: its UUID, else (patient, start, type): the imported row
//!   of that identity, an API-read appointment with it, or a new
//!   synthetic key;
//! - billing line: its UUID, else (patient, date, catalogue, code, amount,
//!   ordinal among equal lines of that day in the file): the imported row,
//!   the ordinal-th API-read equal line, or a new synthetic key.
//!
//! A [`Resolver`] keeps what one pass over a file needs: the location's
//! patients by number and the lines counted so far. It only reads.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::validate::{PatientRef, RowRecord, ValidRow};
use crate::csvio::RowError;
use crate::ledger::LedgerError;
use crate::ledger::identity::{
    EntryIdentity, RecordKind, alias_of, any_undated, exists, is_synthetic,
    normalise_patient_number, synthetic_appointment_id, synthetic_patient_id,
    undated_appointment_id,
};

/// A row with its mirror key decided.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedRow {
    /// Line in the file.
    pub line: usize,
    /// The record with `id` (and `patient_id`) set to mirror keys.
    pub record: RowRecord,
    /// Whether the ledger is known to hold no record under this key (so
    /// nothing needs to be read to merge over).
    pub new: bool,
}

impl ResolvedRow {
    /// The record's mirror key.
    pub fn id(&self) -> &str {
        match &self.record {
            RowRecord::Patient(p) => &p.id,
            RowRecord::Appointment(a, _) => &a.id,
            RowRecord::Entry(e, _) => &e.id,
        }
    }
}

/// Identity state of one pass over one file.
pub struct Resolver {
    /// The location.
    location: String,
    /// Normalised patient number → mirror key, the location's patients and
    /// those of this file so far.
    patients: HashMap<String, String>,
    /// Mirror keys of this file so far (digest) → first line: a second row
    /// of the same record is an error, not a silent overwrite.
    seen: HashMap<[u8; 16], usize>,
    /// Equal billing lines counted so far (digest of the tuple → count).
    ordinals: HashMap<[u8; 16], u32>,
    /// Header of the column that names the patient, for messages.
    patient_column: String,
    /// Whether the location held imported billing lines without UUID when
    /// the pass began (else no synthetic key can exist yet).
    synthetic_entries: bool,
    /// Whether it held billing lines the API delivered.
    api_entries: bool,
    /// Whether it held appointments and billing lines under the undated
    /// synthetic keys of earlier versions.
    undated: (bool, bool),
    /// Set by the last key decision: no stored record has the key.
    last_new: bool,
}

fn digest(text: &str) -> [u8; 16] {
    let mut out = [0; 16];
    out.copy_from_slice(&blake3::hash(text.as_bytes()).as_bytes()[..16]);
    out
}

impl Resolver {
    /// Reads the location's patient numbers; `patient_column` is the
    /// header messages about unknown patients name.
    pub fn load(
        conn: &Connection,
        location: &str,
        patient_column: &str,
    ) -> Result<Resolver, LedgerError> {
        let mut patients = HashMap::new();
        let mut statement = conn.prepare(
            "SELECT ivoris_id, human_readable_id FROM patients
             WHERE location_key = ?1 AND human_readable_id IS NOT NULL",
        )?;
        let rows = statement.query_map([location], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (id, number) = row?;
            let key = normalise_patient_number(&number);
            // An API-read patient wins over an imported one of the same number.
            let keep = patients
                .get(&key)
                .is_some_and(|existing: &String| !is_synthetic(existing));
            if !keep {
                patients.insert(key, id);
            }
        }
        Ok(Resolver {
            location: location.to_owned(),
            patients,
            seen: HashMap::new(),
            ordinals: HashMap::new(),
            patient_column: patient_column.to_owned(),
            synthetic_entries: any_entry(
                conn,
                location,
                "ivoris_id >= 'imp-e-' AND ivoris_id < 'imp-e.'",
            )?,
            api_entries: any_entry(
                conn,
                location,
                "NOT (ivoris_id >= 'imp-' AND ivoris_id < 'imp.')",
            )?,
            undated: (
                any_undated(conn, location, RecordKind::Appointment)?,
                any_undated(conn, location, RecordKind::Entry)?,
            ),
            last_new: false,
        })
    }

    /// Whether the location held imported billing lines without UUID
    /// when the pass began.
    pub fn had_synthetic_entries(&self) -> bool {
        self.synthetic_entries
    }

    /// The error for a record the file already had, noting it otherwise.
    fn twice(&mut self, key: &str, line: usize) -> Option<RowError> {
        let first = *self.seen.entry(digest(key)).or_insert(line);
        (first != line).then(|| {
            RowError::new(
                line,
                format!("derselbe Datensatz steht schon in Zeile {first} – eine der Zeilen korrigieren oder weglassen"),
                format!("the same record is already in line {first} – correct or leave out one of the rows"),
            )
        })
    }

    /// Decides the row's mirror key; a row error when its patient is
    /// unknown or the file already had the same record.
    pub fn resolve(
        &mut self,
        conn: &Connection,
        row: ValidRow,
    ) -> Result<Result<ResolvedRow, RowError>, LedgerError> {
        let line = row.line;
        self.last_new = false;
        let record = match row.record {
            RowRecord::Patient(mut patient) => {
                patient.id =
                    self.patient_key(conn, row.uuid.as_deref(), &patient.human_readable_id)?;
                if let Some(number) = &patient.human_readable_id {
                    self.patients
                        .insert(normalise_patient_number(number), patient.id.clone());
                }
                RowRecord::Patient(patient)
            }
            RowRecord::Appointment(mut appointment, patient) => {
                let Some(patient_id) = self.known_patient(conn, &patient)? else {
                    return Ok(Err(self.unknown_patient(line)));
                };
                appointment.id = match row.uuid {
                    Some(uuid) => own_key(conn, &self.location, RecordKind::Appointment, &uuid)?,
                    None => self.appointment_key(conn, &patient_id, &appointment)?,
                };
                appointment.patient_id = Some(patient_id);
                RowRecord::Appointment(appointment, patient)
            }
            RowRecord::Entry(mut entry, patient) => {
                let Some(patient_id) = self.known_patient(conn, &patient)? else {
                    return Ok(Err(self.unknown_patient(line)));
                };
                entry.id = match row.uuid {
                    Some(uuid) => own_key(conn, &self.location, RecordKind::Entry, &uuid)?,
                    None => self.entry_key(conn, &patient_id, &entry)?,
                };
                entry.patient_id = Some(patient_id);
                RowRecord::Entry(entry, patient)
            }
        };
        let resolved = ResolvedRow {
            line,
            record,
            new: self.last_new,
        };
        // Synthetic billing lines are distinct by their ordinal.
        let distinct =
            matches!(resolved.record, RowRecord::Entry(..)) && is_synthetic(resolved.id());
        if !distinct && let Some(error) = self.twice(resolved.id(), line) {
            return Ok(Err(error));
        }
        Ok(Ok(resolved))
    }

    fn patient_key(
        &mut self,
        conn: &Connection,
        uuid: Option<&str>,
        number: &Option<String>,
    ) -> Result<String, LedgerError> {
        let by_number = number
            .as_deref()
            .and_then(|n| self.patients.get(&normalise_patient_number(n)));
        match uuid {
            Some(uuid) => {
                let own = own_key(conn, &self.location, RecordKind::Patient, uuid)?;
                // A patient imported earlier without UUID is this one.
                if own == uuid
                    && !exists(conn, &self.location, RecordKind::Patient, uuid)?
                    && let Some(imported) = by_number.filter(|id| is_synthetic(id))
                {
                    return Ok(imported.clone());
                }
                Ok(own)
            }
            None => Ok(match (by_number, number) {
                (Some(id), _) => id.clone(),
                (None, Some(number)) => {
                    let id = synthetic_patient_id(number);
                    self.last_new = !exists(conn, &self.location, RecordKind::Patient, &id)?;
                    id
                }
                (None, None) => String::new(),
            }),
        }
    }

    /// The mirror key of the row's patient, `None` when the ledger does not
    /// know it (import the patients first).
    fn known_patient(
        &self,
        conn: &Connection,
        patient: &PatientRef,
    ) -> Result<Option<String>, LedgerError> {
        if let Some(uuid) = &patient.uuid {
            let key = own_key(conn, &self.location, RecordKind::Patient, uuid)?;
            if exists(conn, &self.location, RecordKind::Patient, &key)? {
                return Ok(Some(key));
            }
        }
        Ok(patient
            .number
            .as_deref()
            .and_then(|n| self.patients.get(&normalise_patient_number(n)))
            .cloned())
    }

    fn appointment_key(
        &mut self,
        conn: &Connection,
        patient_id: &str,
        appointment: &crate::ivoris::wire::Appointment,
    ) -> Result<String, LedgerError> {
        let Some(start) = appointment.start else {
            return Ok(String::new());
        };
        let label = appointment.type_label.as_deref();
        let synthetic = synthetic_appointment_id(patient_id, start, label);
        if exists(conn, &self.location, RecordKind::Appointment, &synthetic)? {
            return Ok(synthetic);
        }
        if self.undated.0 {
            let undated = undated_appointment_id(patient_id, start, label);
            if exists(conn, &self.location, RecordKind::Appointment, &undated)? {
                return Ok(undated);
            }
        }
        let api: Option<String> = conn
            .prepare_cached(
                // The patient's index: the key's range would make SQLite
                // walk every appointment of the location.
                "SELECT ivoris_id FROM appointments INDEXED BY appointments_by_patient
                 WHERE location_key = ?1 AND patient_id = ?2 AND start = ?3 AND type_label IS ?4
                   AND NOT (ivoris_id >= 'imp-' AND ivoris_id < 'imp.')
                 ORDER BY ivoris_id LIMIT 1",
            )?
            .query_row(
                params![
                    self.location,
                    patient_id,
                    start.format("%Y-%m-%dT%H:%M:%S").to_string(),
                    label.map(str::trim)
                ],
                |row| row.get(0),
            )
            .optional()?;
        self.last_new = api.is_none();
        Ok(api.unwrap_or(synthetic))
    }

    fn entry_key(
        &mut self,
        conn: &Connection,
        patient_id: &str,
        entry: &crate::ivoris::wire::DocumentEntry,
    ) -> Result<String, LedgerError> {
        let (Some(date), Some(cents)) = (entry.date, entry.amount_cents()) else {
            return Ok(String::new());
        };
        let identity = EntryIdentity {
            patient_id,
            date,
            catalogue: entry.catalogue.as_deref(),
            code: entry.code.as_deref(),
            amount_cents: cents,
        };
        let counter = self.ordinals.entry(identity.digest()).or_insert(0);
        let ordinal = *counter;
        *counter += 1;
        let synthetic = identity.synthetic_id(ordinal);
        if self.synthetic_entries && exists(conn, &self.location, RecordKind::Entry, &synthetic)? {
            return Ok(synthetic);
        }
        if self.undated.1 {
            let undated = identity.undated_id(ordinal);
            if exists(conn, &self.location, RecordKind::Entry, &undated)? {
                return Ok(undated);
            }
        }
        if !self.api_entries {
            self.last_new = true;
            return Ok(synthetic);
        }
        let api: Option<String> = conn
            .prepare_cached(
                "SELECT ivoris_id FROM document_entries INDEXED BY document_entries_by_patient
                 WHERE location_key = ?1 AND patient_id = ?2 AND date = ?3 AND catalogue IS ?4
                   AND code IS ?5 AND amount_cents = ?6
                   AND NOT (ivoris_id >= 'imp-' AND ivoris_id < 'imp.')
                 ORDER BY ivoris_id LIMIT 1 OFFSET ?7",
            )?
            .query_row(
                params![
                    self.location,
                    patient_id,
                    date.format("%Y-%m-%d").to_string(),
                    identity.catalogue,
                    identity.code,
                    cents,
                    i64::from(ordinal)
                ],
                |row| row.get(0),
            )
            .optional()?;
        self.last_new = api.is_none();
        Ok(api.unwrap_or(synthetic))
    }
}

/// Whether the location has a billing line whose key matches `filter`.
fn any_entry(conn: &Connection, location: &str, filter: &str) -> Result<bool, LedgerError> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM document_entries WHERE location_key = ?1 AND {filter})"
    );
    Ok(conn.query_row(&sql, [location], |row| row.get(0))?)
}

impl Resolver {
    fn unknown_patient(&self, line: usize) -> RowError {
        RowError::new(
            line,
            "Patient ist für diesen Standort unbekannt – zuerst die Patienten importieren",
            "patient unknown at this location – import the patients first",
        )
        .in_column(&self.patient_column)
    }
}

/// The key a record with this UUID is stored under (an alias or itself).
fn own_key(
    conn: &Connection,
    location: &str,
    kind: RecordKind,
    uuid: &str,
) -> Result<String, LedgerError> {
    Ok(alias_of(conn, location, kind, uuid)?.unwrap_or_else(|| uuid.to_owned()))
}
