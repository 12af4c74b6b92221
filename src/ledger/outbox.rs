//! The outbox and the record of what HubSpot confirmed (DESIGN.md §2, §3.2, §3.5).
//!
//! A write intended for HubSpot is a row here before it is sent, and leaves
//! only when HubSpot confirmed it — in the same transaction that records the
//! HubSpot id and the confirmed content hash in `hubspot_records`. There is
//! at most one row per record (`kind`, `record_key`): a newer change replaces
//! the pending payload, so a record is never sent twice with stale data.
//! A row that keeps failing becomes a dead letter with a readable reason and
//! waits for a person („Erneut versuchen“ / „Verwerfen“).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value;

use super::{Ledger, LedgerError, now};

/// Schema step: id map with confirmed hashes, and the outbox.
pub(super) const OUTBOX_MIGRATION: &str = r#"
CREATE TABLE hubspot_records (
    kind           TEXT NOT NULL,
    record_key     TEXT NOT NULL,
    hubspot_id     TEXT,
    confirmed_hash TEXT,
    confirmed_at   TEXT,
    PRIMARY KEY (kind, record_key)
) STRICT, WITHOUT ROWID;
CREATE INDEX hubspot_records_by_id ON hubspot_records (kind, hubspot_id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    record_key      TEXT NOT NULL,
    location_key    TEXT,
    payload         TEXT NOT NULL CHECK (json_valid(payload)),
    payload_hash    TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (kind, record_key)
) STRICT;
CREATE INDEX outbox_by_state ON outbox (state, kind, record_key);
"#;

/// Schema step: the values HubSpot confirmed for a contact or deal (JSON
/// object of the properties sent), so the scan can tell values changed by
/// hand in HubSpot (`duplicates::drift`). Rows confirmed before this step
/// have none and are not compared until their next write.
pub(super) const CONFIRMED_VALUES_MIGRATION: &str = r#"
ALTER TABLE hubspot_records ADD COLUMN confirmed_values TEXT
    CHECK (confirmed_values IS NULL OR json_valid(confirmed_values));
"#;

/// What an outbox row writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutboxKind {
    /// Erasing a forgotten patient's record (`ledger/erasure.rs`): a GDPR
    /// delete of the contact, an archive of a deal or appointment record.
    Erasure,
    /// A contact upsert keyed by `ivoris_patient_key`.
    Contact,
    /// A deal upsert keyed by `ivoris_case_key`.
    Deal,
    /// An appointment-object upsert keyed by `ivoris_appointment_key`.
    Appointment,
    /// A default association between two records named by their keys.
    Association,
    /// A merge of two contacts decided in the duplicate review, keyed by
    /// the contact merged away; sent before every other kind, so the
    /// writes after it land on the survivor.
    Merge,
}

impl OutboxKind {
    /// All kinds in the order they are sent: erasures first (a patient
    /// forgotten and then lifted is re-created after its old records are
    /// gone; no merge lands on a contact that is to be erased), then the
    /// review's merges, a deal needs its contact, an association needs
    /// both ends.
    pub const PHASES: [OutboxKind; 6] = [
        OutboxKind::Erasure,
        OutboxKind::Merge,
        OutboxKind::Contact,
        OutboxKind::Deal,
        OutboxKind::Appointment,
        OutboxKind::Association,
    ];

    /// The kinds planning queues (not the review's merges, not the
    /// erasures of `forget-patient`): what a plan's summary counts.
    pub const PLANNED: [OutboxKind; 4] = [
        OutboxKind::Contact,
        OutboxKind::Deal,
        OutboxKind::Appointment,
        OutboxKind::Association,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Erasure => "erasure",
            OutboxKind::Contact => "contact",
            OutboxKind::Deal => "deal",
            OutboxKind::Appointment => "appointment",
            OutboxKind::Association => "association",
            OutboxKind::Merge => "merge",
        }
    }

    /// The kind of a stored name.
    pub fn parse(text: &str) -> Option<OutboxKind> {
        OutboxKind::PHASES.into_iter().find(|k| k.as_str() == text)
    }
}

/// One pending or dead write.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// Row id, stable while the row exists.
    pub id: i64,
    pub kind: OutboxKind,
    /// The unique key value (for associations: `from -> to` keys).
    pub record_key: String,
    /// Location the record belongs to, for filters and per-location counts.
    pub location_key: Option<String>,
    /// What to send: properties, or the ends of an association.
    pub payload: Value,
    /// Content hash of the payload; becomes the confirmed hash on success.
    pub payload_hash: String,
    /// Whether it waits for sending or for a person.
    pub dead: bool,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Last failure in plain words (German / English).
    pub last_error: Option<String>,
}

/// What `enqueue` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new row.
    Added,
    /// A pending row got the newer payload.
    Replaced,
    /// The same payload was already waiting.
    Unchanged,
    /// The payload equals what HubSpot confirmed: nothing to send (a pending
    /// row with an older payload was removed).
    AlreadyConfirmed,
}

/// Counts by kind and state for the queue view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// `(kind, pending, dead)` for every kind with rows.
    pub by_kind: Vec<(OutboxKind, u64, u64)>,
}

impl OutboxCounts {
    /// All pending rows.
    pub fn pending(&self) -> u64 {
        self.by_kind.iter().map(|(_, p, _)| p).sum()
    }

    /// All dead letters.
    pub fn dead(&self) -> u64 {
        self.by_kind.iter().map(|(_, _, d)| d).sum()
    }
}

/// Which rows the queue view shows; every field narrows, `None` / empty
/// does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxFilter {
    /// `Some(true)`: only dead letters; `Some(false)`: only pending rows.
    pub dead: Option<bool>,
    /// Only rows of this kind.
    pub kind: Option<OutboxKind>,
    /// Only rows of this location.
    pub location: Option<String>,
    /// Only rows whose key or last error contains this text.
    pub text: String,
}

/// Records HubSpot confirmed for one location, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfirmedCounts {
    /// Location key (the prefix of every record key).
    pub location_key: String,
    /// Contacts with a HubSpot id.
    pub contacts: u64,
    /// Deals with a HubSpot id.
    pub deals: u64,
    /// Appointment records with a HubSpot id.
    pub appointments: u64,
}

/// HubSpot's confirmation of one outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The outbox row (removed unless a newer payload replaced it).
    pub row: i64,
    /// The record's key.
    pub record_key: String,
    /// The payload hash sent: becomes the confirmed hash.
    pub hash: String,
    /// HubSpot's id of the record.
    pub hubspot_id: String,
    /// The properties HubSpot took, as sent; kept for contacts and deals so
    /// a scan can tell values changed by hand. `None` where the record does
    /// not hold them as ours alone (a patient linked to another patient's
    /// contact) or the row is no record (an association).
    pub values: Option<BTreeMap<String, String>>,
}

/// What HubSpot last confirmed for a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    /// HubSpot's object id.
    pub hubspot_id: Option<String>,
    /// Hash of the payload HubSpot confirmed.
    pub hash: Option<String>,
}

/// Queues a write unless HubSpot already has exactly this content; inside
/// the caller's transaction so planning state and outbox move together.
pub fn enqueue(
    tx: &Transaction<'_>,
    kind: OutboxKind,
    record_key: &str,
    location_key: Option<&str>,
    payload: &Value,
    payload_hash: &str,
) -> Result<Enqueued, LedgerError> {
    let confirmed: Option<Option<String>> = tx
        .prepare_cached(
            "SELECT confirmed_hash FROM hubspot_records WHERE kind = ?1 AND record_key = ?2",
        )?
        .query_row(params![kind.as_str(), record_key], |row| row.get(0))
        .optional()?;
    if confirmed.flatten().as_deref() == Some(payload_hash) {
        tx.prepare_cached(
            "DELETE FROM outbox WHERE kind = ?1 AND record_key = ?2 AND state = 'pending'",
        )?
        .execute(params![kind.as_str(), record_key])?;
        return Ok(Enqueued::AlreadyConfirmed);
    }
    let existing: Option<(String, String)> = tx
        .prepare_cached(
            "SELECT payload_hash, state FROM outbox WHERE kind = ?1 AND record_key = ?2",
        )?
        .query_row(params![kind.as_str(), record_key], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let now = now();
    let payload_text = serde_json::to_string(payload)?;
    match existing {
        Some((hash, _)) if hash == payload_hash => Ok(Enqueued::Unchanged),
        Some(_) => {
            // A newer change supersedes the old payload, also a dead one:
            // the new content deserves fresh attempts.
            tx.prepare_cached("UPDATE outbox SET payload = ?3, payload_hash = ?4, location_key = ?5, state = 'pending',
                        attempts = 0, last_error = NULL, next_attempt_at = NULL, updated_at = ?6
                 WHERE kind = ?1 AND record_key = ?2")?
            .execute(params![kind.as_str(), record_key, payload_text, payload_hash, location_key, now])?;
            Ok(Enqueued::Replaced)
        }
        None => {
            tx.prepare_cached("INSERT INTO outbox (kind, record_key, location_key, payload, payload_hash, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)")?
            .execute(params![kind.as_str(), record_key, location_key, payload_text, payload_hash, now])?;
            Ok(Enqueued::Added)
        }
    }
}

const ITEM_COLUMNS: &str =
    "id, kind, record_key, location_key, payload, payload_hash, state, attempts, last_error";

fn item(row: &rusqlite::Row<'_>) -> rusqlite::Result<(OutboxItem, String)> {
    let kind: String = row.get(1)?;
    let payload: String = row.get(4)?;
    let state: String = row.get(6)?;
    Ok((
        OutboxItem {
            id: row.get(0)?,
            kind: OutboxKind::parse(&kind).unwrap_or(OutboxKind::Association),
            record_key: row.get(2)?,
            location_key: row.get(3)?,
            payload: Value::Null,
            payload_hash: row.get(5)?,
            dead: state == "dead",
            attempts: row.get::<_, i64>(7)?.try_into().unwrap_or(u32::MAX),
            last_error: row.get(8)?,
        },
        payload,
    ))
}

fn with_payload((mut item, payload): (OutboxItem, String)) -> Result<OutboxItem, LedgerError> {
    item.payload = serde_json::from_str(&payload)?;
    Ok(item)
}

/// Every hash HubSpot confirmed, on `conn` (also inside a transaction).
pub fn confirmed_hashes(
    conn: &Connection,
) -> Result<Vec<(OutboxKind, String, String)>, LedgerError> {
    hashes(
        conn,
        "SELECT kind, record_key, confirmed_hash FROM hubspot_records WHERE confirmed_hash IS NOT NULL",
    )
}

/// Every payload hash waiting in the outbox (pending or dead), on `conn`.
pub fn queued_hashes(conn: &Connection) -> Result<Vec<(OutboxKind, String, String)>, LedgerError> {
    hashes(conn, "SELECT kind, record_key, payload_hash FROM outbox")
}

fn hashes(conn: &Connection, sql: &str) -> Result<Vec<(OutboxKind, String, String)>, LedgerError> {
    let mut statement = conn.prepare(sql)?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    let mut hashes = Vec::new();
    for row in rows {
        let (kind, key, hash) = row?;
        if let Some(kind) = OutboxKind::parse(&kind) {
            hashes.push((kind, key, hash));
        }
    }
    Ok(hashes)
}

impl Ledger {
    /// Runs `body` in one transaction (planning writes cases and outbox rows
    /// together).
    pub fn transaction<R>(
        &mut self,
        body: impl FnOnce(&Transaction<'_>) -> Result<R, LedgerError>,
    ) -> Result<R, LedgerError> {
        let tx = self.conn.transaction()?;
        let result = body(&tx)?;
        tx.commit()?;
        Ok(result)
    }

    /// Runs `body` in a transaction that is rolled back afterwards: a dry
    /// run sees what it would change without changing anything.
    pub fn rehearse<R>(
        &mut self,
        body: impl FnOnce(&Transaction<'_>) -> Result<R, LedgerError>,
    ) -> Result<R, LedgerError> {
        let tx = self.conn.transaction()?;
        let result = body(&tx)?;
        tx.rollback()?;
        Ok(result)
    }

    /// Pending rows of one kind that are due at `now` (ISO-8601 UTC), in key
    /// order (which groups associations by kind pair), at most `limit`.
    pub fn due(
        &self,
        kind: OutboxKind,
        now: &str,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, LedgerError> {
        self.due_after(kind, now, "", limit)
    }

    /// Like [`Ledger::due`], but only rows whose key sorts after `after`:
    /// one pass over the queue visits each row once, so a row that has to
    /// wait (an association whose record is not in HubSpot yet) is passed
    /// over without marking it.
    pub fn due_after(
        &self,
        kind: OutboxKind,
        now: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, LedgerError> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM outbox
             WHERE state = 'pending' AND kind = ?1 AND (next_attempt_at IS NULL OR next_attempt_at <= ?2)
               AND record_key > ?3
             ORDER BY record_key LIMIT ?4"
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        let rows = statement.query_map(params![kind.as_str(), now, after, limit as i64], item)?;
        rows.map(|row| with_payload(row?)).collect()
    }

    /// One page of rows for the queue view, optionally only dead letters.
    pub fn outbox_page(
        &self,
        dead_only: bool,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, LedgerError> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM outbox WHERE (?1 = 0 OR state = 'dead') ORDER BY id LIMIT ?2 OFFSET ?3"
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        let rows = statement.query_map(params![dead_only, limit as i64, offset as i64], item)?;
        rows.map(|row| with_payload(row?)).collect()
    }

    /// One page of the rows `filter` selects, in id order, and how many
    /// rows it selects in all (for the scroll range of the queue view).
    pub fn outbox_filtered(
        &self,
        filter: &OutboxFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<OutboxItem>, u64), LedgerError> {
        const WHERE: &str = "(?1 IS NULL OR state = ?1) AND (?2 IS NULL OR kind = ?2)
             AND (?3 IS NULL OR location_key = ?3)
             AND (?4 = '' OR instr(lower(record_key), lower(?4)) > 0
                  OR instr(lower(coalesce(last_error, '')), lower(?4)) > 0)";
        let state = filter
            .dead
            .map(|dead| if dead { "dead" } else { "pending" });
        let kind = filter.kind.map(OutboxKind::as_str);
        let text = filter.text.trim();
        let total: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM outbox WHERE {WHERE}"),
            params![state, kind, filter.location, text],
            |row| row.get(0),
        )?;
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM outbox WHERE {WHERE} ORDER BY id LIMIT ?5 OFFSET ?6"
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        let rows = statement.query_map(
            params![
                state,
                kind,
                filter.location,
                text,
                limit as i64,
                offset as i64
            ],
            item,
        )?;
        let items = rows
            .map(|row| with_payload(row?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, total.max(0) as u64))
    }

    /// Records HubSpot confirmed with an id, per location (the part of the
    /// record key before the first `:`); associations and the closures of
    /// the previous integration's deals (not a case's deal) are not counted.
    pub fn confirmed_counts(&self) -> Result<Vec<ConfirmedCounts>, LedgerError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT substr(record_key, 1, instr(record_key, ':') - 1) AS location, kind, count(*)
             FROM hubspot_records
             WHERE hubspot_id IS NOT NULL AND kind != 'association' AND instr(record_key, ':') > 0
               AND instr(record_key, ?1) = 0
             GROUP BY location, kind ORDER BY location",
        )?;
        let rows = statement.query_map([super::adoption::CLOSURE_MARK], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        let mut counts: Vec<ConfirmedCounts> = Vec::new();
        for row in rows {
            let (location, kind, count) = row?;
            if counts.last().is_none_or(|c| c.location_key != location) {
                counts.push(ConfirmedCounts {
                    location_key: location,
                    ..ConfirmedCounts::default()
                });
            }
            if let Some(entry) = counts.last_mut() {
                let count = count.max(0) as u64;
                match OutboxKind::parse(&kind) {
                    Some(OutboxKind::Contact) => entry.contacts = count,
                    Some(OutboxKind::Deal) => entry.deals = count,
                    Some(OutboxKind::Appointment) => entry.appointments = count,
                    _ => {}
                }
            }
        }
        Ok(counts)
    }

    /// HubSpot confirmed these rows: record id, hash and — for contacts and
    /// deals — the values sent, and remove each row unless a newer payload
    /// replaced it meanwhile. One transaction.
    pub fn confirm(
        &mut self,
        kind: OutboxKind,
        confirmed: &[Confirmation],
    ) -> Result<(), LedgerError> {
        let now = now();
        let keeps_values = matches!(kind, OutboxKind::Contact | OutboxKind::Deal);
        self.transaction(|tx| {
            for confirmation in confirmed {
                let values = match confirmation.values.as_ref().filter(|_| keeps_values) {
                    Some(values) => Some(serde_json::to_string(values)?),
                    None => None,
                };
                tx.prepare_cached("INSERT INTO hubspot_records (kind, record_key, hubspot_id, confirmed_hash, confirmed_at, confirmed_values)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (kind, record_key) DO UPDATE SET
                        hubspot_id = excluded.hubspot_id, confirmed_hash = excluded.confirmed_hash,
                        confirmed_at = excluded.confirmed_at, confirmed_values = excluded.confirmed_values")?
                .execute(params![
                    kind.as_str(),
                    confirmation.record_key,
                    confirmation.hubspot_id,
                    confirmation.hash,
                    now,
                    values
                ])?;
                tx.prepare_cached("DELETE FROM outbox WHERE id = ?1 AND payload_hash = ?2")?
                    .execute(params![confirmation.row, confirmation.hash])?;
            }
            Ok(())
        })
    }

    /// Records a failed attempt; after `max_attempts` the row becomes a dead
    /// letter, otherwise it is due again at `retry_at`.
    pub fn fail(
        &mut self,
        row: i64,
        reason: &str,
        retry_at: &str,
        max_attempts: u32,
    ) -> Result<bool, LedgerError> {
        let now = now();
        self.transaction(|tx| {
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3,
                        state = CASE WHEN attempts + 1 >= ?4 THEN 'dead' ELSE 'pending' END, updated_at = ?5
                 WHERE id = ?1",
                params![row, reason, retry_at, max_attempts, now],
            )?;
            let dead: Option<String> = tx
                .query_row("SELECT state FROM outbox WHERE id = ?1", [row], |r| r.get(0))
                .optional()?;
            Ok(dead.as_deref() == Some("dead"))
        })
    }

    /// Makes dead letters pending again (all when `rows` is empty).
    pub fn retry_dead(&mut self, rows: &[i64]) -> Result<usize, LedgerError> {
        let now = now();
        self.transaction(|tx| {
            if rows.is_empty() {
                return Ok(tx.execute(
                    "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = ?1
                     WHERE state = 'dead'",
                    [&now],
                )?);
            }
            let mut changed = 0;
            for row in rows {
                changed += tx.execute(
                    "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = ?2
                     WHERE id = ?1 AND state = 'dead'",
                    params![row, now],
                )?;
            }
            Ok(changed)
        })
    }

    /// Removes a dead letter on a person's decision („Verwerfen“).
    pub fn discard_dead(&mut self, row: i64) -> Result<bool, LedgerError> {
        Ok(self
            .conn
            .execute("DELETE FROM outbox WHERE id = ?1 AND state = 'dead'", [row])?
            == 1)
    }

    /// Counts by kind and state.
    pub fn outbox_counts(&self) -> Result<OutboxCounts, LedgerError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT kind, sum(state = 'pending'), sum(state = 'dead') FROM outbox GROUP BY kind ORDER BY kind",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        let mut counts = OutboxCounts::default();
        for row in rows {
            let (kind, pending, dead) = row?;
            if let Some(kind) = OutboxKind::parse(&kind) {
                counts
                    .by_kind
                    .push((kind, pending.max(0) as u64, dead.max(0) as u64));
            }
        }
        counts.by_kind.sort_by_key(|(kind, _, _)| *kind);
        Ok(counts)
    }

    /// Every confirmed content hash: (kind, record key, hash).
    pub fn confirmed_hashes(&self) -> Result<Vec<(OutboxKind, String, String)>, LedgerError> {
        confirmed_hashes(&self.conn)
    }

    /// Every payload hash waiting in the outbox (pending or dead).
    pub fn queued_hashes(&self) -> Result<Vec<(OutboxKind, String, String)>, LedgerError> {
        queued_hashes(&self.conn)
    }

    /// Patients with an e-mail address whose contact HubSpot has not
    /// confirmed yet: how many contacts a load may still have to check
    /// against the portal's addresses. (A patient's contact key is
    /// `<location>:<Ivoris id>`, as `plan::properties::patient_key` forms it.)
    pub fn patients_without_contact(&self) -> Result<u64, LedgerError> {
        let count: i64 = self.conn.query_row(
            "SELECT count(*) FROM patients p
             WHERE p.email IS NOT NULL AND trim(p.email) <> ''
               AND NOT EXISTS (
                   SELECT 1 FROM hubspot_records h
                   WHERE h.kind = ?1
                     AND h.record_key = p.location_key || ':' || p.ivoris_id
                     AND h.hubspot_id IS NOT NULL)",
            [OutboxKind::Contact.as_str()],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// What HubSpot last confirmed for a record, if anything.
    pub fn confirmed(
        &self,
        kind: OutboxKind,
        record_key: &str,
    ) -> Result<Option<Confirmed>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT hubspot_id, confirmed_hash FROM hubspot_records WHERE kind = ?1 AND record_key = ?2",
                params![kind.as_str(), record_key],
                |row| Ok(Confirmed { hubspot_id: row.get(0)?, hash: row.get(1)? }),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn confirmation(row: i64, key: &str, hash: &str, id: &str) -> Confirmation {
        Confirmation {
            row,
            record_key: key.into(),
            hash: hash.into(),
            hubspot_id: id.into(),
            values: None,
        }
    }

    fn queue(ledger: &mut Ledger, key: &str, payload: Value, hash: &str) -> Enqueued {
        ledger
            .transaction(|tx| {
                enqueue(
                    tx,
                    OutboxKind::Contact,
                    key,
                    Some("magdeburg"),
                    &payload,
                    hash,
                )
            })
            .expect("enqueue")
    }

    #[test]
    fn a_newer_change_replaces_the_pending_payload() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        assert_eq!(
            queue(&mut ledger, "m:1", json!({"a": "1"}), "h1"),
            Enqueued::Added
        );
        assert_eq!(
            queue(&mut ledger, "m:1", json!({"a": "1"}), "h1"),
            Enqueued::Unchanged
        );
        assert_eq!(
            queue(&mut ledger, "m:1", json!({"a": "2"}), "h2"),
            Enqueued::Replaced
        );
        let due = ledger.due(OutboxKind::Contact, "9999", 10).expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].payload, json!({"a": "2"}));
    }

    #[test]
    fn confirmed_content_is_not_queued_again() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        queue(&mut ledger, "m:1", json!({"a": "1"}), "h1");
        let row = ledger.due(OutboxKind::Contact, "9999", 10).expect("due")[0].id;
        ledger
            .confirm(
                OutboxKind::Contact,
                &[confirmation(row, "m:1", "h1", "501")],
            )
            .expect("confirm");
        assert_eq!(ledger.outbox_counts().expect("counts").pending(), 0);
        assert_eq!(
            queue(&mut ledger, "m:1", json!({"a": "1"}), "h1"),
            Enqueued::AlreadyConfirmed
        );
        assert_eq!(ledger.outbox_counts().expect("counts").pending(), 0);
        let confirmed = ledger
            .confirmed(OutboxKind::Contact, "m:1")
            .expect("read")
            .expect("row");
        assert_eq!(
            confirmed,
            Confirmed {
                hubspot_id: Some("501".into()),
                hash: Some("h1".into())
            }
        );
    }

    #[test]
    fn a_confirmation_of_an_older_payload_keeps_the_newer_one_pending() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        queue(&mut ledger, "m:1", json!({"a": "1"}), "h1");
        let row = ledger.due(OutboxKind::Contact, "9999", 10).expect("due")[0].id;
        queue(&mut ledger, "m:1", json!({"a": "2"}), "h2");
        ledger
            .confirm(
                OutboxKind::Contact,
                &[confirmation(row, "m:1", "h1", "501")],
            )
            .expect("confirm");
        let due = ledger.due(OutboxKind::Contact, "9999", 10).expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].payload_hash, "h2");
    }

    #[test]
    fn repeated_failures_make_a_dead_letter_that_can_be_retried_or_discarded() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        queue(&mut ledger, "m:1", json!({"a": "1"}), "h1");
        let row = ledger.due(OutboxKind::Contact, "9999", 10).expect("due")[0].id;
        assert!(!ledger.fail(row, "HubSpot 503", "2000", 3).expect("fail 1"));
        assert!(!ledger.fail(row, "HubSpot 503", "2000", 3).expect("fail 2"));
        assert!(ledger.fail(row, "HubSpot 503", "2000", 3).expect("fail 3"));
        assert_eq!(ledger.outbox_counts().expect("counts").dead(), 1);
        assert!(
            ledger
                .due(OutboxKind::Contact, "9999", 10)
                .expect("due")
                .is_empty()
        );
        let dead = ledger.outbox_page(true, 0, 10).expect("page");
        assert_eq!(dead[0].last_error.as_deref(), Some("HubSpot 503"));
        assert_eq!(ledger.retry_dead(&[]).expect("retry"), 1);
        assert_eq!(
            ledger
                .due(OutboxKind::Contact, "9999", 10)
                .expect("due")
                .len(),
            1
        );
        for _ in 0..3 {
            ledger.fail(row, "HubSpot 503", "2000", 3).expect("fail");
        }
        assert!(ledger.discard_dead(row).expect("discard"));
        assert_eq!(
            ledger.outbox_counts().expect("counts"),
            OutboxCounts::default()
        );
    }

    #[test]
    fn a_retry_waits_until_it_is_due() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        queue(&mut ledger, "m:1", json!({"a": "1"}), "h1");
        let row = ledger
            .due(OutboxKind::Contact, "2026-01-01T00:00:00Z", 10)
            .expect("due")[0]
            .id;
        ledger
            .fail(row, "timeout", "2026-01-01T00:05:00Z", 5)
            .expect("fail");
        assert!(
            ledger
                .due(OutboxKind::Contact, "2026-01-01T00:04:59Z", 10)
                .expect("due")
                .is_empty()
        );
        assert_eq!(
            ledger
                .due(OutboxKind::Contact, "2026-01-01T00:05:00Z", 10)
                .expect("due")
                .len(),
            1
        );
    }

    #[test]
    fn the_queue_view_filters_by_state_kind_location_and_text_and_counts_all() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        for n in 0..5 {
            queue(
                &mut ledger,
                &format!("magdeburg:{n}"),
                json!({"n": n}),
                &format!("h{n}"),
            );
        }
        ledger
            .transaction(|tx| {
                enqueue(
                    tx,
                    OutboxKind::Deal,
                    "leipzig:9",
                    Some("leipzig"),
                    &json!({}),
                    "d",
                )
            })
            .expect("enqueue");
        let row = ledger.outbox_page(false, 1, 1).expect("page")[0].id;
        ledger
            .fail(row, "HubSpot lehnt ab / refused", "2026-01-01T00:00:00Z", 1)
            .expect("fail");

        let all = OutboxFilter::default();
        let (page, total) = ledger.outbox_filtered(&all, 2, 2).expect("page");
        assert_eq!(total, 6);
        assert_eq!(page.len(), 2);
        let dead = OutboxFilter {
            dead: Some(true),
            ..OutboxFilter::default()
        };
        let (rows, total) = ledger.outbox_filtered(&dead, 0, 10).expect("dead");
        assert_eq!((rows.len(), total), (1, 1));
        assert_eq!(rows[0].id, row);
        let deals = OutboxFilter {
            kind: Some(OutboxKind::Deal),
            location: Some("leipzig".into()),
            ..OutboxFilter::default()
        };
        assert_eq!(ledger.outbox_filtered(&deals, 0, 10).expect("deals").1, 1);
        let text = OutboxFilter {
            text: "LEHNT".into(),
            ..OutboxFilter::default()
        };
        assert_eq!(ledger.outbox_filtered(&text, 0, 10).expect("text").1, 1);
        let key = OutboxFilter {
            text: "magdeburg:3".into(),
            ..OutboxFilter::default()
        };
        assert_eq!(ledger.outbox_filtered(&key, 0, 10).expect("key").1, 1);
    }

    #[test]
    fn confirmed_records_are_counted_per_location_and_kind() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        queue(&mut ledger, "magdeburg:1", json!({"a": 1}), "h1");
        queue(&mut ledger, "magdeburg:2", json!({"a": 2}), "h2");
        let rows = ledger.outbox_page(false, 0, 10).expect("page");
        let confirmed: Vec<_> = rows
            .iter()
            .map(|r| {
                confirmation(
                    r.id,
                    &r.record_key,
                    &r.payload_hash,
                    &format!("{}", r.id + 100),
                )
            })
            .collect();
        ledger
            .confirm(OutboxKind::Contact, &confirmed)
            .expect("confirm");
        let counts = ledger.confirmed_counts().expect("counts");
        assert_eq!(
            counts,
            vec![ConfirmedCounts {
                location_key: "magdeburg".into(),
                contacts: 2,
                deals: 0,
                appointments: 0,
            }]
        );
    }
}
