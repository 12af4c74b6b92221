//! Quarantine: bad input kept aside with a readable reason.
//!
//! A malformed Ivoris record or CSV row is not mirrored; it is stored here
//! with the reason in German and English and the raw payload (which never
//! leaves the PC) so staff can see what was wrong, while the rest of the sync
//! goes on (DESIGN.md §3.9). Quarantining the same bad record again while it
//! is still open is a no-op.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Ledger, LedgerError, now};
use crate::ivoris::minimise::strip_raw_any;

/// A record to quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuarantine {
    /// Location the record came from.
    pub location_key: String,
    /// Where it was read: an API route or a CSV file name with line.
    pub source: String,
    /// Ivoris id, when the record had a usable one.
    pub record_id: Option<String>,
    /// The offending field, when one field is to blame.
    pub field: Option<String>,
    /// Why, for German-speaking staff.
    pub reason_de: String,
    /// Why, in English.
    pub reason_en: String,
    /// The payload as received, for diagnosis; stays local.
    pub raw: String,
}

/// A quarantined record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineEntry {
    /// Row id, used to mark it resolved.
    pub id: i64,
    /// What was quarantined and why.
    pub item: NewQuarantine,
    /// When it was first quarantined (UTC).
    pub created_at: String,
    /// When staff or a later sync resolved it (UTC), `None` while open.
    pub resolved_at: Option<String>,
}

impl Ledger {
    /// Quarantines a record. Returns its row id, or `None` when the same
    /// record with the same payload is already quarantined and open.
    pub fn quarantine(&mut self, item: &NewQuarantine) -> Result<Option<i64>, LedgerError> {
        insert(&self.conn, item)
    }

    /// Drops the fields the mirror drops (`ivoris::minimise`) from raw
    /// payloads quarantined by earlier versions, which kept them whole.
    /// Returns how many rows changed; cheap when none mention such a field.
    pub fn minimise_quarantine(&mut self) -> Result<usize, LedgerError> {
        let tx = self.conn.transaction()?;
        let mut changed = 0;
        {
            let mut rows = tx.prepare(
                "SELECT id, raw FROM quarantine
                 WHERE raw LIKE '%tooth%' OR raw LIKE '%text%' OR raw LIKE '%insurancenumber%'",
            )?;
            let found: Vec<(i64, String)> = rows
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut update = tx.prepare("UPDATE quarantine SET raw = ?2 WHERE id = ?1")?;
            for (id, raw) in found {
                let Ok(original) = serde_json::from_str::<serde_json::Value>(&raw) else {
                    continue;
                };
                let mut value = original.clone();
                strip_raw_any(&mut value);
                if value != original {
                    update.execute(params![id, serde_json::to_string(&value)?])?;
                    changed += 1;
                }
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Open quarantine entries, oldest first, of one location or all.
    pub fn quarantined(&self, location: Option<&str>) -> Result<Vec<QuarantineEntry>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT id, location_key, source, record_id, field, reason_de, reason_en, raw,
                    created_at, resolved_at
             FROM quarantine
             WHERE resolved_at IS NULL AND (?1 IS NULL OR location_key = ?1)
             ORDER BY id",
        )?;
        let rows = statement.query_map([location], |row| {
            Ok(QuarantineEntry {
                id: row.get(0)?,
                item: NewQuarantine {
                    location_key: row.get(1)?,
                    source: row.get(2)?,
                    record_id: row.get(3)?,
                    field: row.get(4)?,
                    reason_de: row.get(5)?,
                    reason_en: row.get(6)?,
                    raw: row.get(7)?,
                },
                created_at: row.get(8)?,
                resolved_at: row.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks an entry resolved; `false` if it does not exist or was already
    /// resolved.
    pub fn resolve_quarantined(&mut self, id: i64) -> Result<bool, LedgerError> {
        let changed = self
            .conn
            .query_row(
                "UPDATE quarantine SET resolved_at = ?2 WHERE id = ?1 AND resolved_at IS NULL
                 RETURNING id",
                params![id, now()],
                |row| row.get::<_, i64>(0),
            )
            .optional()?;
        Ok(changed.is_some())
    }
}

/// Source prefix of the entries the planner makes (records that are stored
/// but cannot be planned); all other sources are where a record was read.
pub const PLAN_SOURCE_PREFIX: &str = "ledger:";

/// Resolves open entries of records that were read again and stored fine
/// (a corrected record in Ivoris). Cheap when nothing is quarantined.
pub(super) fn resolve_read_again<'a>(
    conn: &Connection,
    location: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<(), LedgerError> {
    let open: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM quarantine WHERE resolved_at IS NULL AND location_key = ?1
                            AND record_id IS NOT NULL AND source NOT LIKE 'ledger:%')",
        )?
        .query_row([location], |row| row.get(0))?;
    if !open {
        return Ok(());
    }
    let ids = serde_json::to_string(&ids.collect::<Vec<_>>())?;
    conn.prepare_cached(
        "UPDATE quarantine SET resolved_at = ?3
         WHERE resolved_at IS NULL AND location_key = ?1 AND source NOT LIKE 'ledger:%'
           AND record_id IN (SELECT value FROM json_each(?2))",
    )?
    .execute(params![location, ids, now()])?;
    Ok(())
}

impl Ledger {
    /// Resolves the open entries an earlier import of the file `file_name`
    /// left out and this complete import did not leave out again (the
    /// file was corrected). `still` are the sources (`<file>:<line>`) left
    /// out this time.
    pub fn resolve_imported_again(
        &mut self,
        location: &str,
        file_name: &str,
        still: &[String],
    ) -> Result<usize, LedgerError> {
        let still = serde_json::to_string(still)?;
        let prefix = format!("{file_name}:");
        Ok(self.conn.execute(
            "UPDATE quarantine SET resolved_at = ?4
             WHERE resolved_at IS NULL AND location_key = ?1
               AND substr(source, 1, length(?2)) = ?2
               AND source NOT IN (SELECT value FROM json_each(?3))",
            params![location, prefix, still, now()],
        )?)
    }

    /// Resolves the planner's open entries of a location that its latest
    /// plan no longer raised (the mapping learned a state, a record was
    /// corrected). `still` names the records the plan rejected again.
    pub fn resolve_planned_again(
        &mut self,
        location: &str,
        still: &[&str],
    ) -> Result<usize, LedgerError> {
        let still = serde_json::to_string(still)?;
        Ok(self.conn.execute(
            "UPDATE quarantine SET resolved_at = ?3
             WHERE resolved_at IS NULL AND location_key = ?1 AND source LIKE 'ledger:%'
               AND (record_id IS NULL OR record_id NOT IN (SELECT value FROM json_each(?2)))",
            params![location, still, now()],
        )?)
    }
}

/// Inserts a quarantine entry on `conn` (the ledger's connection or an open
/// transaction); `None` when the same open entry exists.
pub(super) fn insert(conn: &Connection, item: &NewQuarantine) -> Result<Option<i64>, LedgerError> {
    Ledger::require_location(conn, &item.location_key)?;
    // A malformed record of a forgotten patient is not kept either.
    if super::erasure::mentions_forgotten(
        conn,
        &item.location_key,
        item.record_id.as_deref(),
        &item.raw,
    )? {
        return Ok(None);
    }
    let raw_hash = blake3::hash(item.raw.as_bytes()).to_hex().to_string();
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO quarantine
            (location_key, source, record_id, field, reason_de, reason_en, raw, raw_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            item.location_key,
            item.source,
            item.record_id,
            item.field,
            item.reason_de,
            item.reason_en,
            item.raw,
            raw_hash,
            now(),
        ],
    )?;
    // Zero rows: the unique index on open entries ignored a repeat.
    Ok((inserted > 0).then(|| conn.last_insert_rowid()))
}
