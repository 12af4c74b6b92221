//! The mirror: Ivoris records stored per location, written only when their
//! content changed.
//!
//! Each record is reduced to what the app uses (free text, tooth numbers and
//! insurance numbers are dropped by `ivoris::minimise`, the rule the
//! quarantine's raw payloads follow too), serialized to JSON — the wire structs
//! serialize their fields in declaration order, so the text is canonical —
//! and hashed with blake3. A record whose hash matches the stored one is not
//! rewritten, which is where "only changes are written" (DESIGN.md §3.5)
//! starts. Each batch is one transaction: a failure leaves nothing written.

use std::borrow::Cow;

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params_from_iter};
use serde::Serialize;

use super::{Ledger, LedgerError, now};
use crate::ivoris::minimise::Minimised;
use crate::ivoris::wire;

/// What one upsert batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MirrorOutcome {
    /// Records not seen before.
    pub inserted: usize,
    /// Records whose stored content changed.
    pub updated: usize,
    /// Records identical to what was stored; not rewritten.
    pub unchanged: usize,
}

impl MirrorOutcome {
    /// Whether the batch changed anything.
    pub fn changed(&self) -> bool {
        self.inserted + self.updated > 0
    }
}

/// A wire type with its mirror table. Sealed: implemented here for the
/// Ivoris record kinds only.
pub trait Mirrored: Serialize + Minimised + Sync + sealed::Sealed {
    /// Table name.
    const TABLE: &'static str;
    /// Typed columns besides the key and bookkeeping, in [`Mirrored::values`] order.
    const COLUMNS: &'static [&'static str];
    fn id(&self) -> &str;
    fn values(&self) -> Vec<Value>;

    /// The batch as the mirror stores it: for the kinds that can be
    /// imported, Ivoris ids of imported rows translated to their keys
    /// (`ledger::identity`); the batch itself for the others.
    fn stored_ids<'r>(
        _conn: &rusqlite::Connection,
        _location: &str,
        records: &'r [Self],
    ) -> Result<Cow<'r, [Self]>, LedgerError>
    where
        Self: Sized,
    {
        Ok(Cow::Borrowed(records))
    }

    /// The patient the record belongs to (itself for a patient): records
    /// of a forgotten patient are never stored (`ledger/erasure.rs`).
    fn patient(&self) -> Option<&str> {
        None
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::ivoris::wire::Patient {}
    impl Sealed for crate::ivoris::wire::Appointment {}
    impl Sealed for crate::ivoris::wire::DocumentEntry {}
    impl Sealed for crate::ivoris::wire::DentistChair {}
    impl Sealed for crate::ivoris::wire::Practitioner {}
    impl Sealed for crate::ivoris::wire::AppointmentTemplate {}
}

fn text(value: &Option<String>) -> Value {
    value.clone().map_or(Value::Null, Value::Text)
}

fn date_time(value: &Option<chrono::NaiveDateTime>) -> Value {
    value.map_or(Value::Null, |v| {
        Value::Text(v.format("%Y-%m-%dT%H:%M:%S").to_string())
    })
}

fn integer(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::Integer)
}

fn real(value: Option<f64>) -> Value {
    value
        .filter(|v| v.is_finite())
        .map_or(Value::Null, Value::Real)
}

impl Mirrored for wire::Patient {
    fn stored_ids<'r>(
        conn: &rusqlite::Connection,
        location: &str,
        records: &'r [Self],
    ) -> Result<Cow<'r, [Self]>, LedgerError> {
        super::identity::resolve(conn, location, records)
    }

    const TABLE: &'static str = "patients";
    const COLUMNS: &'static [&'static str] = &[
        "human_readable_id",
        "firstname",
        "lastname",
        "birthday",
        "gender",
        "email",
        "phone",
        "mobile",
        "zip",
        "city",
        "last_modified",
    ];

    fn id(&self) -> &str {
        &self.id
    }

    fn values(&self) -> Vec<Value> {
        let address = self.address.clone().unwrap_or_default();
        vec![
            text(&self.human_readable_id),
            text(&self.firstname),
            text(&self.lastname),
            self.birthday.map_or(Value::Null, |b| {
                Value::Text(b.date().format("%Y-%m-%d").to_string())
            }),
            text(&self.gender),
            text(&self.email),
            text(&self.phone),
            text(&self.mobile),
            text(&address.zip),
            text(&address.city),
            date_time(&self.last_modified),
        ]
    }

    fn patient(&self) -> Option<&str> {
        Some(&self.id)
    }
}

impl Mirrored for wire::Appointment {
    fn stored_ids<'r>(
        conn: &rusqlite::Connection,
        location: &str,
        records: &'r [Self],
    ) -> Result<Cow<'r, [Self]>, LedgerError> {
        super::identity::resolve(conn, location, records)
    }

    const TABLE: &'static str = "appointments";
    const COLUMNS: &'static [&'static str] = &[
        "patient_id",
        "profile_id",
        "practitioner_id",
        "chair_id",
        "template_id",
        "type_label",
        "start",
        "duration_minutes",
        "state",
        "confirmation_state",
        "last_modified",
    ];

    fn id(&self) -> &str {
        &self.id
    }

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.patient_id),
            text(&self.profile_id),
            text(&self.practitioner_id),
            text(&self.dentist_chair_id),
            text(&self.template_id),
            text(&self.type_label),
            date_time(&self.start),
            integer(self.duration_minutes.map(i64::from)),
            text(&self.state),
            text(&self.confirmation_state),
            date_time(&self.last_modified),
        ]
    }

    fn patient(&self) -> Option<&str> {
        self.patient_id.as_deref()
    }
}

impl Mirrored for wire::DocumentEntry {
    fn stored_ids<'r>(
        conn: &rusqlite::Connection,
        location: &str,
        records: &'r [Self],
    ) -> Result<Cow<'r, [Self]>, LedgerError> {
        super::identity::resolve(conn, location, records)
    }

    const TABLE: &'static str = "document_entries";
    const COLUMNS: &'static [&'static str] = &[
        "patient_id",
        "profile_id",
        "practitioner_id",
        "date",
        "entry_type",
        "catalogue",
        "code",
        "amount_cents",
        "quantity",
        "factor",
        "last_modified",
    ];

    fn id(&self) -> &str {
        &self.id
    }

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.patient_id),
            text(&self.profile_id),
            text(&self.practitioner_id),
            self.date.map_or(Value::Null, |d| {
                Value::Text(d.format("%Y-%m-%d").to_string())
            }),
            text(&self.entry_type),
            text(&self.catalogue),
            text(&self.code),
            integer(self.amount_cents()),
            real(self.quantity),
            real(self.factor),
            date_time(&self.last_modified),
        ]
    }

    fn patient(&self) -> Option<&str> {
        self.patient_id.as_deref()
    }
}

impl Mirrored for wire::DentistChair {
    const TABLE: &'static str = "chairs";
    const COLUMNS: &'static [&'static str] = &["name"];

    fn id(&self) -> &str {
        &self.id
    }

    fn values(&self) -> Vec<Value> {
        vec![text(&self.name)]
    }
}

impl Mirrored for wire::Practitioner {
    const TABLE: &'static str = "practitioners";
    const COLUMNS: &'static [&'static str] = &["abbreviation", "firstname", "lastname"];

    fn id(&self) -> &str {
        &self.id
    }

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.abbreviation),
            text(&self.firstname),
            text(&self.lastname),
        ]
    }
}

impl Mirrored for wire::AppointmentTemplate {
    const TABLE: &'static str = "appointment_templates";
    const COLUMNS: &'static [&'static str] = &["name", "duration_minutes"];

    fn id(&self) -> &str {
        &self.id
    }

    fn values(&self) -> Vec<Value> {
        vec![
            text(&self.name),
            integer(self.duration_minutes.map(i64::from)),
        ]
    }
}

/// blake3 of the canonical JSON, hex.
fn content_hash(json: &str) -> String {
    blake3::hash(json.as_bytes()).to_hex().to_string()
}

/// A record as the mirror stores it: the typed columns, the minimised
/// record's JSON and that JSON's hash.
struct StoredForm {
    values: Vec<Value>,
    json: String,
    hash: String,
}

fn stored_form<R: Mirrored>(record: &R) -> Result<StoredForm, LedgerError> {
    let reduced = record.minimised();
    // Room for a typical record: growing the buffer step by step costs
    // more than serialising.
    let mut buffer = Vec::with_capacity(512);
    serde_json::to_writer(&mut buffer, &reduced)?;
    // serde_json writes valid UTF-8 only.
    let json = String::from_utf8(buffer)
        .map_err(|error| <serde_json::Error as serde::ser::Error>::custom(error.to_string()))?;
    Ok(StoredForm {
        values: reduced.values(),
        hash: content_hash(&json),
        json,
    })
}

/// Batches at least this large are serialised on two threads.
const PARALLEL_FORMS: usize = 1_024;

/// The stored forms of `records`, in order. A large batch (an import's, a
/// full page of billing lines) is split in two halves serialised at the
/// same time: the writing thread's SQLite work is the bottleneck, and the
/// JSON and hashes need no connection.
fn stored_forms<R: Mirrored>(records: &[R]) -> Result<Vec<StoredForm>, LedgerError> {
    if records.len() < PARALLEL_FORMS {
        return records.iter().map(stored_form).collect();
    }
    let (first, second) = records.split_at(records.len() / 2);
    let serialise = |half: &[R]| half.iter().map(stored_form).collect::<Result<Vec<_>, _>>();
    let (forms, rest) = std::thread::scope(|scope| {
        let other = scope.spawn(|| serialise(second));
        let forms = serialise(first);
        (forms, other.join())
    });
    // Serialising these records cannot panic; should it, the batch fails
    // like one that cannot be serialised.
    let rest = rest.map_err(|_| {
        <serde_json::Error as serde::ser::Error>::custom("serialising thread stopped")
    })?;
    let mut forms = forms?;
    forms.extend(rest?);
    Ok(forms)
}

/// A record with its stored form computed ahead, e.g. on an import's
/// preparing thread, so the writing thread only stores it.
pub struct Serialised<R> {
    record: R,
    form: StoredForm,
}

impl<R: Mirrored> Serialised<R> {
    /// Serialises `record` as the mirror stores it.
    pub fn new(record: R) -> Result<Serialised<R>, LedgerError> {
        let form = stored_form(&record)?;
        Ok(Serialised { record, form })
    }

    /// The record.
    pub fn record(&self) -> &R {
        &self.record
    }
}

/// Inserts, updates or leaves each record; `absent[i]` says the ledger is
/// known not to hold `records[i]` (see [`super::Batch::mirror_known`]).
pub(super) fn upsert<R: Mirrored>(
    tx: &Transaction<'_>,
    location: &str,
    records: &[R],
    absent: &[bool],
) -> Result<MirrorOutcome, LedgerError> {
    store(tx, location, records, None, absent)
}

/// [`upsert`] of records serialised ahead.
pub(super) fn upsert_serialised<R: Mirrored>(
    tx: &Transaction<'_>,
    location: &str,
    serialised: Vec<Serialised<R>>,
    absent: &[bool],
) -> Result<MirrorOutcome, LedgerError> {
    let (records, forms): (Vec<R>, Vec<StoredForm>) =
        serialised.into_iter().map(|s| (s.record, s.form)).unzip();
    store(tx, location, &records, Some(forms), absent)
}

/// Stores `records` with their `forms` (computed here when `None`).
fn store<R: Mirrored>(
    tx: &Transaction<'_>,
    location: &str,
    records: &[R],
    forms: Option<Vec<StoredForm>>,
    absent: &[bool],
) -> Result<MirrorOutcome, LedgerError> {
    if let Some(position) = records.iter().position(|r| r.id().trim().is_empty()) {
        return Err(LedgerError::EmptyId {
            table: R::TABLE,
            position: position + 1,
        });
    }
    Ledger::require_location(tx, location)?;
    let given = records;
    let records = R::stored_ids(tx, location, records)?;
    let records = records.as_ref();
    // Known absent only under the key it was known by.
    let known_absent = |i: usize| {
        absent.get(i).copied().unwrap_or(false)
            && given.get(i).map(Mirrored::id) == records.get(i).map(Mirrored::id)
    };
    // A record that was quarantined when it came in broken is fine now.
    super::quarantine::resolve_read_again(tx, location, records.iter().map(Mirrored::id))?;

    let table = R::TABLE;
    let columns = R::COLUMNS.join(", ");
    // ?1 location, ?2 id, ?3.. typed columns, then record, hash, time.
    let first = 3;
    let placeholders: Vec<String> = (0..R::COLUMNS.len() + 3)
        .map(|i| format!("?{}", first + i))
        .collect();
    let tail = R::COLUMNS.len() + first;
    let insert = format!(
        "INSERT INTO {table} (location_key, ivoris_id, {columns}, record, content_hash, first_seen, updated_at)
         VALUES (?1, ?2, {}, ?{})",
        placeholders.join(", "),
        tail + 2,
    );
    let assignments: Vec<String> = R::COLUMNS
        .iter()
        .enumerate()
        .map(|(i, column)| format!("{column} = ?{}", first + i))
        .collect();
    let update = format!(
        "UPDATE {table} SET {}, record = ?{}, content_hash = ?{}, updated_at = ?{}
         WHERE location_key = ?1 AND ivoris_id = ?2",
        assignments.join(", "),
        tail,
        tail + 1,
        tail + 2,
    );
    let select =
        format!("SELECT content_hash FROM {table} WHERE location_key = ?1 AND ivoris_id = ?2");

    let now = now();
    let mut outcome = MirrorOutcome::default();
    let screen = super::erasure::any_forgotten(tx, location)?;
    let mut find = tx.prepare_cached(&select)?;
    let mut insert = tx.prepare_cached(&insert)?;
    let mut update = tx.prepare_cached(&update)?;
    let forms = match forms {
        // A record stored under another key than it came with is
        // serialised again under that key.
        Some(mut forms) => {
            for (i, record) in records.iter().enumerate() {
                if given.get(i).map(Mirrored::id) != Some(record.id())
                    && let Some(form) = forms.get_mut(i)
                {
                    *form = stored_form(record)?;
                }
            }
            forms
        }
        None => stored_forms(records)?,
    };
    for (i, (record, form)) in records.iter().zip(forms).enumerate() {
        // A forgotten patient's records stay out (its tombstone).
        if screen
            && let Some(patient) = record.patient()
            && super::erasure::forgotten(tx, location, patient)?
        {
            continue;
        }
        let StoredForm {
            values: typed,
            json,
            hash,
        } = form;
        let stored: Option<String> = if known_absent(i) {
            None
        } else {
            find.query_row([location, record.id()], |row| row.get(0))
                .optional()?
        };
        if stored.as_deref() == Some(hash.as_str()) {
            outcome.unchanged += 1;
            continue;
        }
        let mut values = vec![
            Value::Text(location.to_owned()),
            Value::Text(record.id().to_owned()),
        ];
        values.extend(typed);
        values.extend([
            Value::Text(json),
            Value::Text(hash),
            Value::Text(now.clone()),
        ]);
        if stored.is_some() {
            update.execute(params_from_iter(values))?;
            outcome.updated += 1;
        } else {
            insert.execute(params_from_iter(values))?;
            outcome.inserted += 1;
        }
    }
    Ok(outcome)
}

impl Ledger {
    /// Mirrors records of one kind (patients, appointments, entries, chairs,
    /// practitioners, appointment types) of one location in one transaction:
    /// new records are inserted, changed ones updated, unchanged ones (same
    /// content hash) left alone.
    pub fn mirror<R: Mirrored>(
        &mut self,
        location: &str,
        records: &[R],
    ) -> Result<MirrorOutcome, LedgerError> {
        let tx = self.conn.transaction()?;
        let outcome = upsert(&tx, location, records, &[])?;
        tx.commit()?;
        Ok(outcome)
    }

    /// A mirrored patient as stored (the reduced record).
    pub fn patient(&self, location: &str, id: &str) -> Result<Option<wire::Patient>, LedgerError> {
        self.stored_record("patients", location, id)
    }

    /// A mirrored appointment as stored.
    pub fn appointment(
        &self,
        location: &str,
        id: &str,
    ) -> Result<Option<wire::Appointment>, LedgerError> {
        self.stored_record("appointments", location, id)
    }

    /// A mirrored document entry as stored (without tooth and free text).
    pub fn document_entry(
        &self,
        location: &str,
        id: &str,
    ) -> Result<Option<wire::DocumentEntry>, LedgerError> {
        self.stored_record("document_entries", location, id)
    }

    fn stored_record<R: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        location: &str,
        id: &str,
    ) -> Result<Option<R>, LedgerError> {
        let sql = format!("SELECT record FROM {table} WHERE location_key = ?1 AND ivoris_id = ?2");
        let json: Option<String> = self
            .conn
            .query_row(&sql, [location, id], |row| row.get(0))
            .optional()?;
        json.map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(LedgerError::from)
    }
}
