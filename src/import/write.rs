//! Rows into the ledger, exactly as extracted records go: the same mirror
//! tables, content hashes and quarantine (`Batch::mirror`,
//! `Batch::quarantine`).
//!
//! A row that resolves to a record the ledger already holds (an API-read
//! one, or the same row imported before) updates only the fields the file
//! carries; fields the export lacks (the API's template, practitioner,
//! change time …) stay as they are. So the same file imported twice writes
//! nothing, and a corrected file changes exactly the corrected records.

use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::columns::{ColumnAssignment, Field, Target};
use super::prepare::{PreparedRow, StoredRecord};
use crate::csvio::{CsvRow, RowError};
use crate::ivoris::wire::{Address, Appointment, DocumentEntry, Patient};
use crate::ledger::identity::{RecordKind, normalise_patient_number};
use crate::ledger::{Batch, LedgerError, MirrorOutcome, NewQuarantine};

/// Stores one batch of prepared rows; returns what the mirror did.
pub fn write_prepared(
    batch: &mut Batch<'_>,
    location: &str,
    mut rows: Vec<PreparedRow>,
) -> Result<MirrorOutcome, LedgerError> {
    // In key order, each page of the table is visited once per batch
    // instead of once per row: the keys of a file land all over it.
    rows.sort_unstable_by(|a, b| a.record.id().cmp(b.record.id()));
    // Records with, per record, whether the ledger is known not to hold it.
    let mut patients = (Vec::new(), Vec::new());
    let mut appointments = (Vec::new(), Vec::new());
    let mut entries = (Vec::new(), Vec::new());
    for row in rows {
        match row.record {
            StoredRecord::Patient(record) => {
                patients.0.push(record);
                patients.1.push(row.new);
            }
            StoredRecord::Appointment(record) => {
                appointments.0.push(record);
                appointments.1.push(row.new);
            }
            StoredRecord::Entry(record) => {
                entries.0.push(record);
                entries.1.push(row.new);
            }
        }
    }
    let mut outcome = batch.mirror_serialised(location, patients.0, &patients.1)?;
    for other in [
        batch.mirror_serialised(location, appointments.0, &appointments.1)?,
        batch.mirror_serialised(location, entries.0, &entries.1)?,
    ] {
        outcome.inserted += other.inserted;
        outcome.updated += other.updated;
        outcome.unchanged += other.unchanged;
    }
    Ok(outcome)
}

/// The record stored under `id`, as JSON.
pub(super) fn stored_json(
    conn: &Connection,
    location: &str,
    kind: RecordKind,
    id: &str,
) -> Result<Option<String>, LedgerError> {
    let sql = format!(
        "SELECT record FROM {} WHERE location_key = ?1 AND ivoris_id = ?2",
        kind.table()
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([location, id], |row| row.get(0))
        .optional()?)
}

/// `file`'s value where the file carries the field, else `stored`'s.
fn pick<T>(carried: bool, file: T, stored: T) -> T {
    if carried { file } else { stored }
}

pub(super) fn merge_patient(
    stored: Option<Patient>,
    file: Patient,
    carried: &dyn Fn(Field) -> bool,
) -> Patient {
    let Some(stored) = stored else {
        return file;
    };
    // The same number with or without Excel's lost zeros is no change.
    let number = match (&stored.human_readable_id, &file.human_readable_id) {
        (Some(old), Some(new))
            if normalise_patient_number(old) == normalise_patient_number(new) =>
        {
            stored.human_readable_id.clone()
        }
        _ => pick(
            carried(Field::PatientNumber),
            file.human_readable_id,
            stored.human_readable_id.clone(),
        ),
    };
    let old_address = stored.address.clone().unwrap_or_default();
    let new_address = file.address.unwrap_or_default();
    let address = Address {
        street: pick(
            carried(Field::Street),
            new_address.street,
            old_address.street,
        ),
        zip: pick(carried(Field::Zip), new_address.zip, old_address.zip),
        city: pick(carried(Field::City), new_address.city, old_address.city),
        country: pick(
            carried(Field::Country),
            new_address.country,
            old_address.country,
        ),
    };
    Patient {
        id: file.id,
        human_readable_id: number,
        firstname: pick(carried(Field::Firstname), file.firstname, stored.firstname),
        lastname: pick(carried(Field::Lastname), file.lastname, stored.lastname),
        birthday: pick(carried(Field::Birthday), file.birthday, stored.birthday),
        gender: pick(carried(Field::Gender), file.gender, stored.gender),
        email: pick(carried(Field::Email), file.email, stored.email),
        phone: pick(carried(Field::Phone), file.phone, stored.phone),
        mobile: pick(carried(Field::Mobile), file.mobile, stored.mobile),
        address: (address != Address::default()).then_some(address),
        health_insurance: pick(
            carried(Field::HealthInsurance),
            file.health_insurance,
            stored.health_insurance,
        ),
        current_insurance: stored.current_insurance,
        last_modified: stored.last_modified,
    }
}

pub(super) fn merge_appointment(
    stored: Option<Appointment>,
    file: Appointment,
    carried: &dyn Fn(Field) -> bool,
) -> Appointment {
    let Some(stored) = stored else {
        return file;
    };
    Appointment {
        id: file.id,
        profile_id: stored.profile_id,
        patient_id: file.patient_id,
        practitioner_id: pick(
            carried(Field::PractitionerId),
            file.practitioner_id,
            stored.practitioner_id,
        ),
        dentist_chair_id: pick(
            carried(Field::ChairId),
            file.dentist_chair_id,
            stored.dentist_chair_id,
        ),
        template_id: stored.template_id,
        type_label: pick(
            carried(Field::TypeLabel),
            file.type_label,
            stored.type_label,
        ),
        start: file.start,
        duration_minutes: pick(
            carried(Field::DurationMinutes),
            file.duration_minutes,
            stored.duration_minutes,
        ),
        state: pick(carried(Field::State), file.state, stored.state),
        confirmation_state: pick(
            carried(Field::ConfirmationState),
            file.confirmation_state,
            stored.confirmation_state,
        ),
        last_modified: stored.last_modified,
    }
}

pub(super) fn merge_entry(
    stored: Option<DocumentEntry>,
    file: DocumentEntry,
    carried: &dyn Fn(Field) -> bool,
) -> DocumentEntry {
    let Some(stored) = stored else {
        return file;
    };
    DocumentEntry {
        id: file.id,
        profile_id: stored.profile_id,
        patient_id: file.patient_id,
        practitioner_id: pick(
            carried(Field::PractitionerId),
            file.practitioner_id,
            stored.practitioner_id,
        ),
        date: file.date,
        entry_type: pick(
            carried(Field::EntryType),
            file.entry_type,
            stored.entry_type,
        ),
        catalogue: pick(carried(Field::Catalogue), file.catalogue, stored.catalogue),
        code: pick(carried(Field::Code), file.code, stored.code),
        quantity: pick(carried(Field::Quantity), file.quantity, stored.quantity),
        factor: pick(carried(Field::Factor), file.factor, stored.factor),
        amount: file.amount,
        tooth: None,
        text: None,
        last_modified: stored.last_modified,
    }
}

/// Quarantines a row left out, with its reason. The payload keeps only
/// the cells of assigned fields the mirror would keep: ignored columns
/// (free remarks) and tooth, free text and insurance number never reach it.
pub fn quarantine_row(
    batch: &mut Batch<'_>,
    location: &str,
    file_name: &str,
    assignment: &ColumnAssignment,
    row: Option<&CsvRow>,
    error: &RowError,
) -> Result<(), LedgerError> {
    let mut raw = Map::new();
    if let Some(row) = row {
        for (column, cell) in assignment.columns.iter().zip(&row.cells) {
            if let Some(Target::Field(field)) = column.target
                && !field.dropped()
            {
                raw.insert(field.name(), Value::String(cell.clone()));
            }
        }
    }
    batch.quarantine(&NewQuarantine {
        location_key: location.to_owned(),
        source: format!("{file_name}:{}", error.line),
        record_id: None,
        field: error.column.clone(),
        reason_de: error.reason_de.clone(),
        reason_en: error.reason_en.clone(),
        raw: Value::Object(raw).to_string(),
    })?;
    Ok(())
}

/// Notes the billing lines of a batch and their days (temporary tables of
/// the connection, see `Writer::finish`).
pub fn note_lines(conn: &Connection, rows: &[PreparedRow]) -> Result<(), LedgerError> {
    let mut line =
        conn.prepare_cached("INSERT OR IGNORE INTO temp.import_lines (id) VALUES (?1)")?;
    let mut day = conn.prepare_cached(
        "INSERT OR IGNORE INTO temp.import_days (patient_id, date) VALUES (?1, ?2)",
    )?;
    for row in rows {
        if let StoredRecord::Entry(entry) = &row.record {
            let entry = entry.record();
            line.execute([&entry.id])?;
            if let (Some(patient), Some(date)) = (&entry.patient_id, entry.date) {
                day.execute(rusqlite::params![
                    patient,
                    date.format("%Y-%m-%d").to_string()
                ])?;
            }
        }
    }
    Ok(())
}

/// Removes imported billing lines without UUID of the noted days that the
/// file did not have; returns how many.
pub fn remove_vanished_lines(conn: &Connection, location: &str) -> Result<u64, LedgerError> {
    let removed = conn.execute(
        "DELETE FROM document_entries
         WHERE location_key = ?1 AND ivoris_id >= 'imp-e-' AND ivoris_id < 'imp-e.'
           AND EXISTS (SELECT 1 FROM temp.import_days d
                       WHERE d.patient_id = document_entries.patient_id AND d.date = document_entries.date)
           AND NOT EXISTS (SELECT 1 FROM temp.import_lines l WHERE l.id = document_entries.ivoris_id)
           AND NOT EXISTS (SELECT 1 FROM id_aliases a WHERE a.location_key = ?1 AND a.kind = 'entry'
                           AND a.mirror_id = document_entries.ivoris_id)",
        [location],
    )?;
    Ok(removed as u64)
}
