//! Identity of imported records (DESIGN.md §8, README „Historischer
//! Import“): which mirror row a CSV row or an Ivoris record is.
//!
//! A record with an Ivoris UUID is that UUID. An imported record without
//! one gets a *synthetic* mirror key, a pure function of its identity
//! tuple, prefixed `imp-`:
//! - patient: the practice's patient number (leading zeros ignored, Excel
//!   drops them) → `imp-p-<number>`;
//! - appointment: (patient, start, appointment type) →
//!   `imp-a-<yyyymmddhhmm>-<hash>`;
//! - billing line: (patient, date, catalogue, code, amount, ordinal among
//!   equal lines of that day) → `imp-e-<yyyymmdd>-<hash>`.
//!
//! The day in front keeps the keys of a file (exports run by date) next to
//! each other in the mirror's key order, so an import appends to its tables
//! instead of splitting pages all over them. Ledgers written before carry
//! *undated* keys (`imp-a-<hash>`, `imp-e-<hash>`, see
//! [`undated_appointment_id`]); they stay valid — the appointment's key is
//! part of its case's and HubSpot record's key — and the importer looks
//! them up too.
//!
//! When the API later delivers a record with the same identity, the
//! extractor keeps the imported row and remembers the UUID as an *alias*
//! of it (`id_aliases`): the API record is stored under the synthetic key,
//! and every reference to the UUID (an appointment's patient) is
//! translated. So the HubSpot keys, the case membership and the content
//! hashes stay those of the imported row: no second contact, deal or
//! appointment record. [`resolve`] is that lookup, called by
//! `mirror::upsert` for every batch of every writer; it costs three index
//! probes per batch on a location that never imported anything.

use std::borrow::Cow;

use chrono::{NaiveDate, NaiveDateTime};
use rusqlite::{Connection, OptionalExtension, params};

use super::{LedgerError, now};
use crate::ivoris::wire::{Appointment, DocumentEntry, Patient};

/// Prefix of every synthetic mirror key; Ivoris UUIDs never start so.
pub const SYNTHETIC_PREFIX: &str = "imp-";

/// Schema step: the aliases of imported rows (UUID → synthetic key).
pub(super) const ALIASES_MIGRATION: &str = r#"
CREATE TABLE id_aliases (
    location_key TEXT NOT NULL REFERENCES locations (key),
    kind         TEXT NOT NULL,
    api_id       TEXT NOT NULL,
    mirror_id    TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (location_key, kind, api_id)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX id_aliases_by_mirror ON id_aliases (location_key, kind, mirror_id);
"#;

/// The record kinds that can be imported and aliased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// Patients (`patients`).
    Patient,
    /// Appointments (`appointments`).
    Appointment,
    /// Billing lines (`document_entries`).
    Entry,
}

impl RecordKind {
    /// Stored name.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Patient => "patient",
            RecordKind::Appointment => "appointment",
            RecordKind::Entry => "entry",
        }
    }

    /// Mirror table.
    pub fn table(self) -> &'static str {
        match self {
            RecordKind::Patient => "patients",
            RecordKind::Appointment => "appointments",
            RecordKind::Entry => "document_entries",
        }
    }
}

/// Whether a mirror key is synthetic (an imported record without UUID).
pub fn is_synthetic(id: &str) -> bool {
    id.starts_with(SYNTHETIC_PREFIX)
}

/// The comparable form of a patient number: trimmed, an Excel text marker
/// (`'`) dropped, and leading zeros of a numeric number dropped (Excel
/// turns `010234` into `10234`).
pub fn normalise_patient_number(number: &str) -> String {
    let trimmed = number.trim().trim_start_matches('\'').trim();
    if !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_digit()) {
        let stripped = trimmed.trim_start_matches('0');
        return if stripped.is_empty() { "0" } else { stripped }.to_owned();
    }
    trimmed.to_owned()
}

fn tuple_hash(kind: &str, parts: &[&str]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(kind.as_bytes());
    for part in parts {
        hasher.update(b"\x1f");
        hasher.update(part.as_bytes());
    }
    hasher.finalize().to_hex()[..24].to_owned()
}

/// Synthetic key of a patient known only by its number.
pub fn synthetic_patient_id(number: &str) -> String {
    let number = normalise_patient_number(number);
    if !number.is_empty()
        && number.len() <= 32
        && number
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        format!("{SYNTHETIC_PREFIX}p-{number}")
    } else {
        format!("{SYNTHETIC_PREFIX}p-h{}", tuple_hash("p", &[&number]))
    }
}

/// Synthetic key of an appointment: (patient, start, type).
pub fn synthetic_appointment_id(
    patient_id: &str,
    start: NaiveDateTime,
    type_label: Option<&str>,
) -> String {
    format!(
        "{SYNTHETIC_PREFIX}a-{}-{}",
        start.format("%Y%m%d%H%M"),
        appointment_hash(patient_id, start, type_label)
    )
}

/// The key [`synthetic_appointment_id`] gave before keys carried the day.
pub fn undated_appointment_id(
    patient_id: &str,
    start: NaiveDateTime,
    type_label: Option<&str>,
) -> String {
    format!(
        "{SYNTHETIC_PREFIX}a-{}",
        appointment_hash(patient_id, start, type_label)
    )
}

fn appointment_hash(patient_id: &str, start: NaiveDateTime, type_label: Option<&str>) -> String {
    let start = start.format("%Y-%m-%dT%H:%M:%S").to_string();
    let label = type_label.unwrap_or("").trim();
    tuple_hash("a", &[patient_id, &start, label])
}

/// Whether the location holds undated synthetic keys of `kind` (see the
/// module documentation).
pub fn any_undated(
    conn: &Connection,
    location: &str,
    kind: RecordKind,
) -> Result<bool, LedgerError> {
    let prefix = match kind {
        RecordKind::Appointment => "imp-a-",
        RecordKind::Entry => "imp-e-",
        RecordKind::Patient => return Ok(false),
    };
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE location_key = ?1
                          AND ivoris_id > ?2 AND ivoris_id < ?3 AND length(ivoris_id) = ?4
                          AND substr(ivoris_id, ?5, 1) <> '-')",
        kind.table()
    );
    // Dated keys have their day's digits and then a '-' where an undated
    // key's hash goes on.
    let dated_dash = if kind == RecordKind::Appointment {
        13
    } else {
        9
    };
    Ok(conn.query_row(
        &sql,
        params![
            location,
            prefix,
            format!("{}.", &prefix[..prefix.len() - 1]),
            (prefix.len() + 24) as i64,
            (prefix.len() + dated_dash) as i64,
        ],
        |row| row.get(0),
    )?)
}

/// The identity tuple of a billing line, without its ordinal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryIdentity<'a> {
    /// Mirror key of the patient.
    pub patient_id: &'a str,
    /// Day of the line.
    pub date: NaiveDate,
    /// Fee schedule (`BEMA`, `GOZ`, …).
    pub catalogue: Option<&'a str>,
    /// Billing code.
    pub code: Option<&'a str>,
    /// Amount in cents.
    pub amount_cents: i64,
}

impl EntryIdentity<'_> {
    /// A short fixed-size digest, for counting equal lines of a file.
    pub fn digest(&self) -> [u8; 16] {
        let mut hasher = blake3::Hasher::new();
        for part in [
            self.patient_id,
            &self.date.to_string(),
            self.catalogue.unwrap_or(""),
            self.code.unwrap_or(""),
            &self.amount_cents.to_string(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update(b"\x1f");
        }
        let mut digest = [0; 16];
        digest.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        digest
    }

    /// Synthetic key of the `ordinal`-th equal line (0-based, file order).
    pub fn synthetic_id(&self, ordinal: u32) -> String {
        format!(
            "{SYNTHETIC_PREFIX}e-{}-{}",
            self.date.format("%Y%m%d"),
            self.hash(ordinal)
        )
    }

    /// The key [`EntryIdentity::synthetic_id`] gave before keys carried
    /// the day.
    pub fn undated_id(&self, ordinal: u32) -> String {
        format!("{SYNTHETIC_PREFIX}e-{}", self.hash(ordinal))
    }

    fn hash(&self, ordinal: u32) -> String {
        let date = self.date.to_string();
        let amount = self.amount_cents.to_string();
        let ordinal = ordinal.to_string();
        tuple_hash(
            "e",
            &[
                self.patient_id,
                &date,
                self.catalogue.unwrap_or("").trim(),
                self.code.unwrap_or("").trim(),
                &amount,
                &ordinal,
            ],
        )
    }
}

/// The mirror key an Ivoris id is stored under, when it is an alias.
pub fn alias_of(
    conn: &Connection,
    location: &str,
    kind: RecordKind,
    api_id: &str,
) -> Result<Option<String>, LedgerError> {
    Ok(conn
        .prepare_cached(
            "SELECT mirror_id FROM id_aliases WHERE location_key = ?1 AND kind = ?2 AND api_id = ?3",
        )?
        .query_row(params![location, kind.name(), api_id], |row| row.get(0))
        .optional()?)
}

/// The Ivoris id a mirror key stands for: the key itself, the Ivoris id
/// an imported row is an alias of, or `None` for an imported row the API
/// never delivered (Ivoris cannot be asked about it).
pub fn api_id_of(
    conn: &Connection,
    location: &str,
    kind: RecordKind,
    mirror_id: &str,
) -> Result<Option<String>, LedgerError> {
    if !is_synthetic(mirror_id) {
        return Ok(Some(mirror_id.to_owned()));
    }
    Ok(conn
        .prepare_cached(
            "SELECT api_id FROM id_aliases WHERE location_key = ?1 AND kind = ?2 AND mirror_id = ?3",
        )?
        .query_row(params![location, kind.name(), mirror_id], |row| row.get(0))
        .optional()?)
}

fn add_alias(
    conn: &Connection,
    location: &str,
    kind: RecordKind,
    api_id: &str,
    mirror_id: &str,
) -> Result<(), LedgerError> {
    conn.prepare_cached(
        "INSERT INTO id_aliases (location_key, kind, api_id, mirror_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![location, kind.name(), api_id, mirror_id, now()])?;
    Ok(())
}

/// Whether a row with this key is mirrored.
pub fn exists(
    conn: &Connection,
    location: &str,
    kind: RecordKind,
    id: &str,
) -> Result<bool, LedgerError> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE location_key = ?1 AND ivoris_id = ?2)",
        kind.table()
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![location, id], |row| row.get(0))?)
}

fn aliased(
    conn: &Connection,
    location: &str,
    kind: RecordKind,
    mirror_id: &str,
) -> Result<bool, LedgerError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM id_aliases
                            WHERE location_key = ?1 AND kind = ?2 AND mirror_id = ?3)",
        )?
        .query_row(params![location, kind.name(), mirror_id], |row| row.get(0))?)
}

/// Whether the location holds any imported row without UUID; only then
/// can an Ivoris record be an alias.
fn has_synthetic(conn: &Connection, location: &str) -> Result<bool, LedgerError> {
    for kind in [
        RecordKind::Patient,
        RecordKind::Appointment,
        RecordKind::Entry,
    ] {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE location_key = ?1
                            AND ivoris_id >= 'imp-' AND ivoris_id < 'imp.')",
            kind.table()
        );
        let found: bool = conn
            .prepare_cached(&sql)?
            .query_row([location], |row| row.get(0))?;
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A record kind whose Ivoris ids may be aliases of imported rows.
pub trait Identified: Clone {
    /// Translates the batch's ids (and references) to mirror keys, adding
    /// aliases for records that match an imported row; `None` when nothing
    /// changes.
    fn resolve(
        conn: &Connection,
        location: &str,
        records: &[Self],
    ) -> Result<Option<Vec<Self>>, LedgerError>;

    /// Whether the record's id and the patient it names are imported keys
    /// already (an import's rows): nothing of it can be translated.
    fn imported_keys(&self) -> bool;
}

/// The records as the mirror stores them: ids translated where imported
/// rows stand for them (see the module documentation).
pub fn resolve<'r, R: Identified>(
    conn: &Connection,
    location: &str,
    records: &'r [R],
) -> Result<Cow<'r, [R]>, LedgerError> {
    if records.is_empty() || records.iter().all(R::imported_keys) || !has_synthetic(conn, location)?
    {
        return Ok(Cow::Borrowed(records));
    }
    Ok(match R::resolve(conn, location, records)? {
        Some(resolved) => Cow::Owned(resolved),
        None => Cow::Borrowed(records),
    })
}

/// Translates an id of `kind`: an alias, the id itself when it is stored,
/// or a fresh alias of the imported row `matching` finds.
fn translate(
    conn: &Connection,
    location: &str,
    kind: RecordKind,
    id: &str,
    matching: impl FnOnce() -> Result<Option<String>, LedgerError>,
) -> Result<Option<String>, LedgerError> {
    if is_synthetic(id) {
        return Ok(None);
    }
    if let Some(mirror_id) = alias_of(conn, location, kind, id)? {
        return Ok(Some(mirror_id));
    }
    if exists(conn, location, kind, id)? {
        return Ok(None);
    }
    let Some(mirror_id) = matching()? else {
        return Ok(None);
    };
    add_alias(conn, location, kind, id, &mirror_id)?;
    Ok(Some(mirror_id))
}

impl Identified for Patient {
    fn imported_keys(&self) -> bool {
        is_synthetic(&self.id)
    }

    fn resolve(
        conn: &Connection,
        location: &str,
        records: &[Self],
    ) -> Result<Option<Vec<Self>>, LedgerError> {
        let mut out = records.to_vec();
        let mut changed = false;
        for patient in &mut out {
            let number = patient.human_readable_id.clone();
            let found = translate(conn, location, RecordKind::Patient, &patient.id, || {
                let Some(number) = number.filter(|n| !n.trim().is_empty()) else {
                    return Ok(None);
                };
                let candidate = synthetic_patient_id(&number);
                let free = exists(conn, location, RecordKind::Patient, &candidate)?
                    && !aliased(conn, location, RecordKind::Patient, &candidate)?;
                Ok(free.then_some(candidate))
            })?;
            if let Some(mirror_id) = found {
                patient.id = mirror_id;
                changed = true;
            }
        }
        Ok(changed.then_some(out))
    }
}

fn translate_patient(
    conn: &Connection,
    location: &str,
    patient_id: &mut Option<String>,
) -> Result<bool, LedgerError> {
    let Some(id) = patient_id.as_deref().filter(|id| !is_synthetic(id)) else {
        return Ok(false);
    };
    match alias_of(conn, location, RecordKind::Patient, id)? {
        Some(mirror_id) => {
            *patient_id = Some(mirror_id);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The first imported, not yet aliased row of `table` that `filter` (SQL
/// over the row, parameters from ?3, starting with its patient) selects.
fn first_free_synthetic(
    conn: &Connection,
    location: &str,
    kind: RecordKind,
    filter: &str,
    values: &[rusqlite::types::Value],
) -> Result<Option<String>, LedgerError> {
    // The patient's index (every caller filters by patient): the key's
    // range would make SQLite walk every imported row of the location.
    let sql = format!(
        "SELECT ivoris_id FROM {table} t INDEXED BY {table}_by_patient
         WHERE location_key = ?1 AND ivoris_id >= 'imp-' AND ivoris_id < 'imp.' AND {filter}
           AND NOT EXISTS (SELECT 1 FROM id_aliases x WHERE x.location_key = ?1
                           AND x.kind = ?2 AND x.mirror_id = t.ivoris_id)
         ORDER BY ivoris_id LIMIT 1",
        table = kind.table()
    );
    let mut params: Vec<rusqlite::types::Value> = vec![
        rusqlite::types::Value::Text(location.to_owned()),
        rusqlite::types::Value::Text(kind.name().to_owned()),
    ];
    params.extend(values.iter().cloned());
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(params), |row| row.get(0))
        .optional()?)
}

fn text_value(value: Option<&str>) -> rusqlite::types::Value {
    value.map_or(rusqlite::types::Value::Null, |v| {
        rusqlite::types::Value::Text(v.to_owned())
    })
}

impl Identified for Appointment {
    fn imported_keys(&self) -> bool {
        is_synthetic(&self.id) && self.patient_id.as_deref().is_none_or(is_synthetic)
    }

    fn resolve(
        conn: &Connection,
        location: &str,
        records: &[Self],
    ) -> Result<Option<Vec<Self>>, LedgerError> {
        let mut out = records.to_vec();
        let mut changed = false;
        for appointment in &mut out {
            changed |= translate_patient(conn, location, &mut appointment.patient_id)?;
            let (patient, start, label) = (
                appointment.patient_id.clone(),
                appointment.start,
                appointment.type_label.clone(),
            );
            let found = translate(
                conn,
                location,
                RecordKind::Appointment,
                &appointment.id,
                || {
                    let (Some(patient), Some(start)) = (patient, start) else {
                        return Ok(None);
                    };
                    first_free_synthetic(
                        conn,
                        location,
                        RecordKind::Appointment,
                        "patient_id = ?3 AND start = ?4 AND type_label IS ?5",
                        &[
                            text_value(Some(&patient)),
                            text_value(Some(&start.format("%Y-%m-%dT%H:%M:%S").to_string())),
                            text_value(label.as_deref()),
                        ],
                    )
                },
            )?;
            if let Some(mirror_id) = found {
                appointment.id = mirror_id;
                changed = true;
            }
        }
        Ok(changed.then_some(out))
    }
}

impl Identified for DocumentEntry {
    fn imported_keys(&self) -> bool {
        is_synthetic(&self.id) && self.patient_id.as_deref().is_none_or(is_synthetic)
    }

    fn resolve(
        conn: &Connection,
        location: &str,
        records: &[Self],
    ) -> Result<Option<Vec<Self>>, LedgerError> {
        let mut out = records.to_vec();
        let mut changed = false;
        for entry in &mut out {
            changed |= translate_patient(conn, location, &mut entry.patient_id)?;
            let (patient, date, catalogue, code, cents) = (
                entry.patient_id.clone(),
                entry.date,
                entry.catalogue.clone(),
                entry.code.clone(),
                entry.amount_cents(),
            );
            let found = translate(conn, location, RecordKind::Entry, &entry.id, || {
                let (Some(patient), Some(date), Some(cents)) = (patient, date, cents) else {
                    return Ok(None);
                };
                first_free_synthetic(
                    conn,
                    location,
                    RecordKind::Entry,
                    "patient_id = ?3 AND date = ?4 AND catalogue IS ?5 AND code IS ?6
                     AND amount_cents = ?7",
                    &[
                        text_value(Some(&patient)),
                        text_value(Some(&date.format("%Y-%m-%d").to_string())),
                        text_value(catalogue.as_deref()),
                        text_value(code.as_deref()),
                        rusqlite::types::Value::Integer(cents),
                    ],
                )
            })?;
            if let Some(mirror_id) = found {
                entry.id = mirror_id;
                changed = true;
            }
        }
        Ok(changed.then_some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Ledger, LocationRow};

    fn ledger() -> Ledger {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        ledger
            .upsert_location(&LocationRow {
                key: "mag".into(),
                name: "Magdeburg".into(),
                brand: None,
                ivoris_url: "http://127.0.0.1:1".into(),
                profile_id: None,
            })
            .expect("location");
        ledger
    }

    fn at(day: u32, hour: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2025, 3, day)
            .and_then(|d| d.and_hms_opt(hour, 0, 0))
            .expect("valid")
    }

    fn patient(id: &str, number: &str) -> Patient {
        Patient {
            id: id.into(),
            human_readable_id: Some(number.into()),
            firstname: None,
            lastname: Some("Weiß".into()),
            birthday: None,
            gender: None,
            email: None,
            phone: None,
            mobile: None,
            address: None,
            health_insurance: None,
            current_insurance: None,
            last_modified: None,
        }
    }

    fn appointment(id: &str, patient: &str, start: NaiveDateTime) -> Appointment {
        Appointment {
            id: id.into(),
            profile_id: None,
            patient_id: Some(patient.into()),
            practitioner_id: None,
            dentist_chair_id: None,
            template_id: None,
            type_label: Some("PZR".into()),
            start: Some(start),
            duration_minutes: Some(30),
            state: Some("Completed".into()),
            confirmation_state: None,
            last_modified: None,
        }
    }

    fn entry(id: &str, patient: &str, day: u32) -> DocumentEntry {
        DocumentEntry {
            id: id.into(),
            profile_id: None,
            patient_id: Some(patient.into()),
            practitioner_id: None,
            date: NaiveDate::from_ymd_opt(2025, 3, day),
            entry_type: Some("lst".into()),
            catalogue: Some("GOZ".into()),
            code: Some("1040".into()),
            quantity: None,
            factor: None,
            amount: Some(101.36),
            tooth: None,
            text: None,
            last_modified: None,
        }
    }

    #[test]
    fn api_records_land_on_the_imported_rows_of_the_same_identity() {
        let mut ledger = ledger();
        let p = synthetic_patient_id("0815");
        let a = synthetic_appointment_id(&p, at(3, 9), Some("PZR"));
        let identity = EntryIdentity {
            patient_id: &p,
            date: at(3, 9).date(),
            catalogue: Some("GOZ"),
            code: Some("1040"),
            amount_cents: 10136,
        };
        let (e0, e1) = (identity.synthetic_id(0), identity.synthetic_id(1));
        ledger
            .mirror("mag", &[patient(&p, "815")])
            .expect("patient");
        ledger
            .mirror("mag", &[appointment(&a, &p, at(3, 9))])
            .expect("appointment");
        ledger
            .mirror("mag", &[entry(&e0, &p, 3), entry(&e1, &p, 3)])
            .expect("entries");
        let before = ledger.counts(None).expect("counts");

        // The API: the same patient (number with its zero), appointment and
        // two equal lines, plus one appointment that was never imported.
        ledger
            .mirror("mag", &[patient("u-p", "0815")])
            .expect("patient");
        let outcome = ledger
            .mirror(
                "mag",
                &[
                    appointment("u-a", "u-p", at(3, 9)),
                    appointment("u-b", "u-p", at(4, 9)),
                ],
            )
            .expect("appointments");
        // u-a is the imported appointment, as imported: unchanged.
        assert_eq!(
            (outcome.inserted, outcome.updated, outcome.unchanged),
            (1, 0, 1)
        );
        ledger
            .mirror("mag", &[entry("u-e1", "u-p", 3), entry("u-e2", "u-p", 3)])
            .expect("entries");
        let after = ledger.counts(None).expect("counts");
        assert_eq!(after.patients, before.patients);
        assert_eq!(after.appointments, before.appointments + 1);
        assert_eq!(after.document_entries, before.document_entries);
        let conn = ledger.connection();
        assert_eq!(
            alias_of(conn, "mag", RecordKind::Patient, "u-p").expect("alias"),
            Some(p.clone())
        );
        assert_eq!(
            alias_of(conn, "mag", RecordKind::Appointment, "u-a").expect("alias"),
            Some(a)
        );
        let lines: Vec<Option<String>> = ["u-e1", "u-e2"]
            .iter()
            .map(|id| alias_of(conn, "mag", RecordKind::Entry, id).expect("alias"))
            .collect();
        assert_eq!(lines.iter().flatten().count(), 2);
        assert_ne!(lines[0], lines[1], "equal lines land on distinct rows");
        // The new appointment refers to the imported patient's key, and the
        // sweep asks Ivoris by the Ivoris id.
        let stored = ledger
            .appointment("mag", "u-b")
            .expect("read")
            .expect("stored");
        assert_eq!(stored.patient_id.as_deref(), Some(p.as_str()));
        assert_eq!(
            ledger.patient_ids_after("mag", "").expect("ids"),
            vec!["u-p".to_owned()]
        );
        // Read again: nothing changes.
        let again = ledger
            .mirror("mag", &[patient("u-p", "0815")])
            .expect("patient");
        assert_eq!((again.inserted, again.updated), (0, 0));
    }

    #[test]
    fn patient_numbers_compare_without_excels_damage() {
        for (text, expected) in [
            ("010234", "10234"),
            ("'010234", "10234"),
            (" 10234 ", "10234"),
            ("000", "0"),
            ("A-17", "A-17"),
        ] {
            assert_eq!(normalise_patient_number(text), expected, "{text}");
        }
        assert_eq!(synthetic_patient_id("0815"), "imp-p-815");
        assert!(synthetic_patient_id("a b").starts_with("imp-p-h"));
    }

    #[test]
    fn synthetic_keys_are_pure_functions_of_the_tuple() {
        let start = NaiveDate::from_ymd_opt(2025, 3, 1)
            .and_then(|d| d.and_hms_opt(9, 30, 0))
            .expect("valid");
        let a = synthetic_appointment_id("imp-p-1", start, Some("PZR"));
        assert_eq!(a, synthetic_appointment_id("imp-p-1", start, Some(" PZR ")));
        assert_ne!(
            a,
            synthetic_appointment_id("imp-p-1", start, Some("Kontrolle"))
        );
        let entry = EntryIdentity {
            patient_id: "imp-p-1",
            date: start.date(),
            catalogue: Some("GOZ"),
            code: Some("1040"),
            amount_cents: 10136,
        };
        assert_eq!(entry.synthetic_id(0), entry.clone().synthetic_id(0));
        assert_ne!(entry.synthetic_id(0), entry.synthetic_id(1));
        assert!(is_synthetic(&entry.synthetic_id(0)));
    }
}
