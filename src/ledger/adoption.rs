//! The switch-over from the previous integration (DESIGN.md §6): which
//! locations have adopted what the portal already held, and the records a
//! plan adopts.
//!
//! An adopted record is a row of `hubspot_records` with the HubSpot id of
//! the existing record and no confirmed hash yet: the load then sends the
//! record's first write by that id — our key written onto it — and every
//! later one as an upsert by key that lands there (invariant 1). Markers
//! say per location and kind that the adoption ran, so it runs once; they
//! are written in the planning transaction that adopted, together with
//! the adoptions, their audit entries and the outbox rows.

use rusqlite::{OptionalExtension, Transaction, params};

use super::audit::{NewAuditEntry, insert};
use super::{Ledger, LedgerError, OutboxKind, now};

/// Schema step: per location and kind, when the adoption ran.
pub(super) const ADOPTION_MIGRATION: &str = r#"
CREATE TABLE legacy_adoption (
    location_key TEXT NOT NULL,
    kind         TEXT NOT NULL,
    adopted_at   TEXT NOT NULL,
    PRIMARY KEY (location_key, kind)
) STRICT, WITHOUT ROWID;
"#;

/// The kinds whose records a location adopts at its first plan.
pub const ADOPTED_KINDS: [OutboxKind; 2] = [OutboxKind::Contact, OutboxKind::Deal];

/// What marks the record key of a legacy deal's closure
/// (`<location>:altdeal:<HubSpot id>`): a deal row of the ledger that is
/// not a case's deal.
pub const CLOSURE_MARK: &str = ":altdeal:";

impl Ledger {
    /// The kinds whose adoption has not run yet for `location`.
    pub fn adoption_pending(&self, location: &str) -> Result<Vec<OutboxKind>, LedgerError> {
        let mut pending = Vec::new();
        for kind in ADOPTED_KINDS {
            if !adopted(&self.conn, location, kind)? {
                pending.push(kind);
            }
        }
        Ok(pending)
    }

    /// The key of the record that adopted the HubSpot record `hubspot_id`
    /// and has not written our key onto it yet, if any: HubSpot still
    /// shows that record without a key, but it is taken.
    pub fn adopted_by(
        &self,
        kind: OutboxKind,
        hubspot_id: &str,
    ) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT record_key FROM hubspot_records
                 WHERE kind = ?1 AND hubspot_id = ?2 AND confirmed_hash IS NULL LIMIT 1",
            )?
            .query_row(params![kind.as_str(), hubspot_id], |row| row.get(0))
            .optional()?)
    }
}

/// Whether the adoption of `kind` ran for `location`.
pub fn adopted(
    conn: &rusqlite::Connection,
    location: &str,
    kind: OutboxKind,
) -> Result<bool, LedgerError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM legacy_adoption WHERE location_key = ?1 AND kind = ?2")?
        .query_row(params![location, kind.as_str()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Notes that the adoption of `kind` ran for `location`.
pub fn mark_adopted(
    tx: &Transaction<'_>,
    location: &str,
    kind: OutboxKind,
) -> Result<(), LedgerError> {
    tx.prepare_cached(
        "INSERT INTO legacy_adoption (location_key, kind, adopted_at) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![location, kind.as_str(), now()])?;
    Ok(())
}

/// The HubSpot id recorded for a record, if any.
pub fn hubspot_id(
    tx: &Transaction<'_>,
    kind: OutboxKind,
    record_key: &str,
) -> Result<Option<String>, LedgerError> {
    Ok(tx
        .prepare_cached(
            "SELECT hubspot_id FROM hubspot_records WHERE kind = ?1 AND record_key = ?2",
        )?
        .query_row(params![kind.as_str(), record_key], |row| {
            row.get::<_, Option<String>>(0)
        })
        .optional()?
        .flatten())
}

/// Whether some record already stands for the HubSpot record `hubspot_id`.
pub fn hubspot_id_taken(
    tx: &Transaction<'_>,
    kind: OutboxKind,
    hubspot_id: &str,
) -> Result<bool, LedgerError> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM hubspot_records WHERE kind = ?1 AND hubspot_id = ?2")?
        .query_row(params![kind.as_str(), hubspot_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Adopts the HubSpot record `hubspot_id` for `record_key` (no confirmed
/// hash: the next write goes by id) and audits it. Returns `false` when
/// the key already has a HubSpot record.
pub fn adopt(
    tx: &Transaction<'_>,
    kind: OutboxKind,
    record_key: &str,
    hubspot_id: &str,
    audit: &NewAuditEntry,
) -> Result<bool, LedgerError> {
    let added = tx
        .prepare_cached(
            "INSERT INTO hubspot_records (kind, record_key, hubspot_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, record_key) DO NOTHING",
        )?
        .execute(params![kind.as_str(), record_key, hubspot_id])?;
    if added == 0 {
        return Ok(false);
    }
    insert(tx, audit)?;
    Ok(true)
}

/// Records of `kind` of `location` queued in the outbox that have no
/// HubSpot record: what the load will create.
pub fn queued_without_record(
    tx: &Transaction<'_>,
    location: &str,
    kind: OutboxKind,
) -> Result<u64, LedgerError> {
    let count: i64 = tx
        .prepare_cached(
            "SELECT count(*) FROM outbox o
             WHERE o.location_key = ?1 AND o.kind = ?2 AND NOT EXISTS (
                 SELECT 1 FROM hubspot_records h
                 WHERE h.kind = o.kind AND h.record_key = o.record_key AND h.hubspot_id IS NOT NULL)",
        )?
        .query_row(params![location, kind.as_str()], |row| row.get(0))?;
    Ok(count.max(0) as u64)
}
