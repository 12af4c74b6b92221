//! The duplicates found in HubSpot (DESIGN.md §6) and the actions taken on
//! them: the last scan's findings (a cache: the review reads them without
//! asking HubSpot again), merges waiting in the outbox, contacts merged
//! into a contact that carries another patient key, and marks on deals.
//!
//! Every action commits with its audit entry (keys and HubSpot ids only,
//! no names) and, where HubSpot is to be changed, with its outbox row:
//! the intent is stored before anything is sent (invariant 2).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::json;

use super::audit::{NewAuditEntry, insert};
use super::outbox::{OutboxKind, enqueue};
use super::{Ledger, LedgerError, now};
use crate::duplicates::drift::{Believed, Drift, DriftKind};
use crate::duplicates::portal::{DUPLICATE_REASON, PortalFindings};

/// Schema step: the scan's cache, merged contacts.
pub(super) const PORTAL_MIGRATION: &str = r#"
CREATE TABLE portal_scans (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    finished_at TEXT NOT NULL,
    contacts    INTEGER NOT NULL,
    deals       INTEGER NOT NULL,
    calls       INTEGER NOT NULL,
    findings    TEXT NOT NULL CHECK (json_valid(findings))
) STRICT;

CREATE TABLE deal_marks (
    deal_id         TEXT PRIMARY KEY NOT NULL,
    previous_stage  TEXT NOT NULL,
    previous_reason TEXT NOT NULL,
    marked          INTEGER NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE contact_merges (
    record_key TEXT PRIMARY KEY NOT NULL,
    hubspot_id TEXT NOT NULL,
    merged_at  TEXT NOT NULL
) STRICT, WITHOUT ROWID;
"#;

/// The last scan: when, how much it read, and what it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortalScan {
    /// When it finished (UTC, RFC 3339).
    pub finished_at: String,
    /// Contacts listed.
    pub contacts: u64,
    /// Deals listed.
    pub deals: u64,
    /// HubSpot calls it took.
    pub calls: u64,
    /// Groups and the „Verloren-Liste“.
    pub findings: PortalFindings,
}

/// A merge of two contacts, as queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeRequest {
    /// The contact that survives.
    pub primary: String,
    /// The contact merged into it.
    pub secondary: String,
    /// The group the merge resolves (for the audit log).
    pub group: String,
}

/// A deal without our key to set lost „Duplikat“ (or back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealMark {
    /// HubSpot id.
    pub deal: String,
    /// The pipeline's lost stage (used when marking).
    pub lost_stage: String,
    /// The deal's stage as the scan saw it (kept for the undo).
    pub stage: String,
    /// Its `verlustgrund` as the scan saw it (kept for the undo).
    pub reason: String,
    /// Mark (`true`) or undo.
    pub duplicate: bool,
}

/// A deal marked in the review: what it was before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedDeal {
    /// Stage before the mark.
    pub previous_stage: String,
    /// `verlustgrund` before the mark.
    pub previous_reason: String,
    /// Whether the mark stands (else it was undone).
    pub marked: bool,
}

/// The outbox key of a merge.
pub fn merge_key(secondary: &str) -> String {
    format!("merge:contacts:{secondary}")
}

/// The outbox key of a merge of two deals.
pub fn deal_merge_key(secondary: &str) -> String {
    format!("merge:deals:{secondary}")
}

/// Queues, inside the caller's transaction, the merge of a deal of the
/// previous integration (`secondary`) into the deal a case adopted
/// (`primary`); `group` names the case for the audit log. A merge of the
/// same deal already queued stays as it is. The caller audits the
/// decision.
pub fn queue_deal_merge(
    tx: &Transaction<'_>,
    primary: &str,
    secondary: &str,
    group: &str,
    location: &str,
) -> Result<bool, LedgerError> {
    let key = deal_merge_key(secondary);
    let queued = tx
        .query_row(
            "SELECT 1 FROM outbox WHERE kind = 'merge' AND record_key = ?1",
            [&key],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if queued {
        return Ok(false);
    }
    let payload = json!({
        "object": "deals",
        "primary": primary,
        "secondary": secondary,
        "group": group,
    });
    let hash = format!("{secondary}>{primary}@{}", now());
    enqueue(tx, OutboxKind::Merge, &key, Some(location), &payload, &hash)?;
    Ok(true)
}

/// The outbox key of a deal marked in the review.
pub fn deal_mark_key(deal: &str) -> String {
    format!("hubspot:deal:{deal}")
}

impl Ledger {
    /// Replaces the cached scan.
    pub fn store_portal_scan(&mut self, scan: &PortalScan) -> Result<(), LedgerError> {
        let findings = serde_json::to_string(&scan.findings)?;
        self.conn.execute(
            "INSERT INTO portal_scans (id, finished_at, contacts, deals, calls, findings)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at,
                contacts = excluded.contacts, deals = excluded.deals,
                calls = excluded.calls, findings = excluded.findings",
            params![
                scan.finished_at,
                scan.contacts as i64,
                scan.deals as i64,
                scan.calls as i64,
                findings
            ],
        )?;
        Ok(())
    }

    /// The cached scan, if one ran.
    pub fn portal_scan(&self) -> Result<Option<PortalScan>, LedgerError> {
        let row = self
            .conn
            .query_row(
                "SELECT finished_at, contacts, deals, calls, findings FROM portal_scans WHERE id = 1",
                [],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((finished_at, contacts, deals, calls, findings)) = row else {
            return Ok(None);
        };
        Ok(Some(PortalScan {
            finished_at,
            contacts: contacts.max(0) as u64,
            deals: deals.max(0) as u64,
            calls: calls.max(0) as u64,
            findings: serde_json::from_str(&findings)?,
        }))
    }

    /// Queues a merge with its audit entry. A merge of the same contact
    /// already queued is kept as it is (never sent twice).
    pub fn queue_merge(&mut self, merge: &MergeRequest, actor: &str) -> Result<bool, LedgerError> {
        self.transaction(|tx| {
            let key = merge_key(&merge.secondary);
            let queued: bool = tx
                .query_row(
                    "SELECT 1 FROM outbox WHERE kind = 'merge' AND record_key = ?1",
                    [&key],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if queued {
                return Ok(false);
            }
            let payload = json!({
                "primary": merge.primary,
                "secondary": merge.secondary,
                "group": merge.group,
            });
            // A new key per request: a merge confirmed earlier never
            // suppresses a new one (the hash is the payload itself).
            let hash = format!("{}>{}@{}", merge.secondary, merge.primary, now());
            enqueue(tx, OutboxKind::Merge, &key, None, &payload, &hash)?;
            insert(
                tx,
                &NewAuditEntry {
                    actor: actor.to_owned(),
                    action: "duplicate.merge_requested".into(),
                    subject: merge.group.clone(),
                    details: json!({"primary": merge.primary, "merged": merge.secondary}),
                },
            )?;
            Ok(true)
        })
    }

    /// Records a merge HubSpot carried out (or a read showed done): the
    /// outbox row leaves, every patient key that pointed at either contact
    /// points at the survivor, and a key that is not the survivor's own
    /// (`main_key`) is written by id from now on. Their confirmed hashes
    /// are cleared, so the next sync writes our data onto the survivor.
    pub fn confirm_merge(
        &mut self,
        row: i64,
        merge: &MergeRequest,
        survivor: &str,
        main_key: Option<&str>,
        already: bool,
    ) -> Result<Vec<String>, LedgerError> {
        let now = now();
        self.transaction(|tx| {
            tx.execute("DELETE FROM outbox WHERE id = ?1", [row])?;
            let keys = keys_pointing_at(tx, &[&merge.primary, &merge.secondary])?;
            for key in &keys {
                tx.execute(
                    "UPDATE hubspot_records SET hubspot_id = ?2, confirmed_hash = NULL,
                        confirmed_values = NULL
                     WHERE kind = 'contact' AND record_key = ?1",
                    params![key, survivor],
                )?;
                if main_key != Some(key.as_str()) && main_key.is_some() {
                    tx.execute(
                        "INSERT INTO contact_merges (record_key, hubspot_id, merged_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (record_key) DO UPDATE SET hubspot_id = excluded.hubspot_id,
                            merged_at = excluded.merged_at",
                        params![key, survivor, now],
                    )?;
                }
            }
            tx.execute(
                "UPDATE contact_merges SET hubspot_id = ?2 WHERE hubspot_id = ?1",
                params![merge.secondary, survivor],
            )?;
            insert(
                tx,
                &NewAuditEntry {
                    actor: super::audit::os_user(),
                    action: "duplicate.merged".into(),
                    subject: merge.group.clone(),
                    details: json!({
                        "primary": merge.primary,
                        "merged": merge.secondary,
                        "survivor": survivor,
                        "patient_keys": keys,
                        "already_merged": already,
                    }),
                },
            )?;
            Ok(keys)
        })
    }

    /// Records a merge of two deals HubSpot carried out (or a read showed
    /// done): the outbox row leaves, and every ledger row that pointed at
    /// either deal (the case's adopted deal, the merged deal's reservation)
    /// points at the survivor. What HubSpot's merge left in the survivor's
    /// properties was decided there, not written by us: its kept values are
    /// dropped (not compared until the next write). Audited.
    pub fn confirm_deal_merge(
        &mut self,
        row: i64,
        merge: &MergeRequest,
        survivor: &str,
        already: bool,
    ) -> Result<(), LedgerError> {
        self.transaction(|tx| {
            tx.execute("DELETE FROM outbox WHERE id = ?1", [row])?;
            tx.execute(
                "UPDATE hubspot_records SET hubspot_id = ?3, confirmed_values = NULL
                 WHERE kind = 'deal' AND hubspot_id IN (?1, ?2)",
                params![merge.primary, merge.secondary, survivor],
            )?;
            insert(
                tx,
                &NewAuditEntry {
                    actor: super::audit::os_user(),
                    action: "legacy_deal_merged".into(),
                    subject: merge.group.clone(),
                    details: json!({
                        "primary": merge.primary,
                        "merged": merge.secondary,
                        "survivor": survivor,
                        "already_merged": already,
                    }),
                },
            )?;
            Ok(())
        })
    }

    /// The contacts and case deals the ledger believes HubSpot holds, with
    /// the values HubSpot confirmed where the ledger kept them. Left out:
    /// the closures of legacy deals and the review's marks of deals without
    /// our key (decisions on records that are not ours).
    pub fn believed_records(&self) -> Result<Vec<Believed>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT kind, record_key, hubspot_id, confirmed_values FROM hubspot_records
             WHERE kind IN ('contact', 'deal') AND hubspot_id IS NOT NULL
               AND instr(record_key, ?1) = 0 AND record_key NOT LIKE 'hubspot:%'
             ORDER BY kind, record_key",
        )?;
        let rows = statement.query_map([super::adoption::CLOSURE_MARK], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut believed = Vec::new();
        for row in rows {
            let (kind, record_key, hubspot_id, values) = row?;
            // Kept values that do not read are not compared (never a panic).
            let confirmed = values.and_then(|v| serde_json::from_str(&v).ok());
            believed.push(Believed {
                kind,
                record_key,
                hubspot_id,
                confirmed,
            });
        }
        Ok(believed)
    }

    /// The names of the properties whose confirmed values the ledger kept,
    /// per kind (`contact`, `deal`): what a scan lists to compare them.
    pub fn confirmed_property_names(
        &self,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT DISTINCT h.kind, j.key FROM hubspot_records h, json_each(h.confirmed_values) j
             WHERE h.kind IN ('contact', 'deal') AND h.confirmed_values IS NOT NULL",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for row in rows {
            let (kind, name) = row?;
            names.entry(kind).or_default().insert(name);
        }
        Ok(names)
    }

    /// Contacts and deals with a write in the outbox (pending or dead), as
    /// `(kind, record key)`: HubSpot may hold their next values already.
    pub fn queued_records(&self) -> Result<HashSet<(String, String)>, LedgerError> {
        let mut statement = self
            .conn
            .prepare("SELECT kind, record_key FROM outbox WHERE kind IN ('contact', 'deal')")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Patient keys written by id onto a contact that carries another
    /// patient's key (after a merge).
    pub fn merged_patient_keys(&self) -> Result<HashSet<String>, LedgerError> {
        let mut statement = self.conn.prepare("SELECT record_key FROM contact_merges")?;
        let keys = statement
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(keys)
    }

    /// Repairs what a scan found drifted (the caller holds the writer
    /// lock): a record HubSpot no longer lists loses its id and hash (the
    /// next sync creates it again by key); a record that lost our key or
    /// whose values were changed by hand keeps its id and loses its hash
    /// (the next sync writes it by id, our key and our values included,
    /// overwriting the change). Only rows still as the scan saw them are
    /// touched; audited (property names, no values). Returns the rows
    /// repaired.
    pub fn resend_drift(&mut self, drift: &[Drift], actor: &str) -> Result<u64, LedgerError> {
        self.transaction(|tx| {
            let mut repaired = 0;
            for item in drift {
                let sql = match item.problem {
                    DriftKind::Missing => {
                        "UPDATE hubspot_records SET hubspot_id = NULL, confirmed_hash = NULL,
                            confirmed_values = NULL
                         WHERE kind = ?1 AND record_key = ?2 AND hubspot_id = ?3"
                    }
                    DriftKind::KeyChanged { .. } | DriftKind::ValueChanged { .. } => {
                        "UPDATE hubspot_records SET confirmed_hash = NULL, confirmed_values = NULL
                         WHERE kind = ?1 AND record_key = ?2 AND hubspot_id = ?3"
                    }
                };
                let changed =
                    tx.execute(sql, params![item.kind, item.record_key, item.hubspot_id])?;
                // A record made again needs its associations again
                // (`<kinds>|<from key>><to key>`).
                if changed > 0 && item.problem == DriftKind::Missing {
                    tx.execute(
                        "UPDATE hubspot_records SET confirmed_hash = NULL
                         WHERE kind = 'association'
                           AND (record_key LIKE '%|' || ?1 || '>%' OR record_key LIKE '%>' || ?1)",
                        [&item.record_key],
                    )?;
                }
                repaired += changed;
            }
            insert(
                tx,
                &NewAuditEntry {
                    actor: actor.to_owned(),
                    action: "hubspot.resend".into(),
                    subject: "drift".into(),
                    details: json!({
                        "records": drift.iter().map(resend_entry).collect::<Vec<_>>(),
                        "repaired": repaired,
                    }),
                },
            )?;
            Ok(repaired as u64)
        })
    }

    /// The contact a patient key was merged into, when that contact
    /// carries another patient's key: its writes go by id.
    pub fn merged_into(&self, record_key: &str) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn
            .prepare_cached("SELECT hubspot_id FROM contact_merges WHERE record_key = ?1")?
            .query_row([record_key], |row| row.get(0))
            .optional()?)
    }

    /// Queues the mark (or its undo) of a deal without our key, written by
    /// id, with its audit entry.
    pub fn mark_portal_deal(
        &mut self,
        mark: &DealMark,
        group: &str,
        actor: &str,
    ) -> Result<(), LedgerError> {
        self.transaction(|tx| {
            let key = deal_mark_key(&mark.deal);
            let before: Option<(String, String)> = tx
                .query_row(
                    "SELECT previous_stage, previous_reason FROM deal_marks WHERE deal_id = ?1",
                    [&mark.deal],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let (previous_stage, previous_reason) =
                before.unwrap_or_else(|| (mark.stage.clone(), mark.reason.clone()));
            tx.execute(
                "INSERT INTO deal_marks (deal_id, previous_stage, previous_reason, marked, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (deal_id) DO UPDATE SET marked = excluded.marked,
                    updated_at = excluded.updated_at",
                params![mark.deal, previous_stage, previous_reason, mark.duplicate, now()],
            )?;
            let (stage, reason) = if mark.duplicate {
                (mark.lost_stage.clone(), DUPLICATE_REASON.to_owned())
            } else {
                (previous_stage, previous_reason)
            };
            // Written by id: the record keeps its id, its hash is unknown.
            tx.execute(
                "INSERT INTO hubspot_records (kind, record_key, hubspot_id) VALUES ('deal', ?1, ?2)
                 ON CONFLICT (kind, record_key) DO UPDATE SET confirmed_hash = NULL",
                params![key, mark.deal],
            )?;
            let payload = json!({"dealstage": stage, "verlustgrund": reason});
            let hash = blake3::hash(payload.to_string().as_bytes()).to_hex().to_string();
            enqueue(tx, OutboxKind::Deal, &key, None, &payload, &hash)?;
            insert(
                tx,
                &NewAuditEntry {
                    actor: actor.to_owned(),
                    action: if mark.duplicate {
                        "duplicate.deal_lost"
                    } else {
                        "duplicate.deal_unmark"
                    }
                    .into(),
                    subject: group.to_owned(),
                    details: json!({"deal": mark.deal, "reason": DUPLICATE_REASON}),
                },
            )?;
            Ok(())
        })
    }

    /// Marks (or unmarks) one case as a confirmed duplicate; the next sync
    /// sets its deal lost „Duplikat“. Returns whether it changed.
    pub fn mark_case_duplicate(
        &mut self,
        case_key: &str,
        duplicate: bool,
        group: &str,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        self.transaction(|tx| {
            let changed = tx.execute(
                "UPDATE cases SET duplicate = ?2 WHERE case_key = ?1 AND duplicate <> ?2",
                params![case_key, duplicate],
            )?;
            insert(
                tx,
                &NewAuditEntry {
                    actor: actor.to_owned(),
                    action: if duplicate {
                        "duplicate.case_lost"
                    } else {
                        "duplicate.case_unmark"
                    }
                    .into(),
                    subject: group.to_owned(),
                    details: json!({"case": case_key}),
                },
            )?;
            Ok(changed > 0)
        })
    }

    /// Deals marked in the review, by HubSpot id.
    pub fn marked_deals(
        &self,
    ) -> Result<std::collections::HashMap<String, MarkedDeal>, LedgerError> {
        let mut statement = self
            .conn
            .prepare("SELECT deal_id, previous_stage, previous_reason, marked FROM deal_marks")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                MarkedDeal {
                    previous_stage: row.get(1)?,
                    previous_reason: row.get(2)?,
                    marked: row.get(3)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The contacts merged away through the review.
    pub fn merged_contacts(&self) -> Result<std::collections::HashSet<String>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT json_extract(details, '$.merged') FROM audit_log WHERE action = 'duplicate.merged'",
        )?;
        let rows = statement.query_map([], |row| row.get::<_, Option<String>>(0))?;
        let mut ids = std::collections::HashSet::new();
        for id in rows {
            ids.extend(id?);
        }
        Ok(ids)
    }

    /// The contacts whose merge waits in the outbox.
    pub fn queued_merges(&self) -> Result<std::collections::HashSet<String>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT json_extract(payload, '$.secondary') FROM outbox WHERE kind = 'merge'",
        )?;
        let rows = statement.query_map([], |row| row.get::<_, Option<String>>(0))?;
        let mut ids = std::collections::HashSet::new();
        for id in rows {
            ids.extend(id?);
        }
        Ok(ids)
    }

    /// The review's decisions and what the load listed for review
    /// (`email_withheld`), newest first, at most `limit`.
    pub fn decision_log(&self, limit: usize) -> Result<Vec<super::AuditEntry>, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT id, at, actor, action, subject, details FROM audit_log
             WHERE action LIKE 'duplicate.%' OR action = 'email_withheld'
             ORDER BY id DESC LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map([limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (id, at, actor, action, subject, details) = row?;
            entries.push(super::AuditEntry {
                id,
                at,
                entry: NewAuditEntry {
                    actor,
                    action,
                    subject,
                    details: serde_json::from_str(&details)?,
                },
            });
        }
        Ok(entries)
    }

    /// Case keys marked duplicate.
    pub fn marked_cases(&self) -> Result<std::collections::HashSet<String>, LedgerError> {
        let mut statement = self
            .conn
            .prepare("SELECT case_key FROM cases WHERE duplicate <> 0")?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A drifted record in the audit entry of „Erneut senden“: keys, HubSpot
/// id, what was wrong and the names of changed properties — no values.
fn resend_entry(item: &Drift) -> serde_json::Value {
    let mut entry =
        json!({"kind": item.kind, "key": item.record_key, "hubspot_id": item.hubspot_id});
    if let DriftKind::ValueChanged { changes } = &item.problem {
        entry["changed"] = json!(changes.iter().map(|c| &c.property).collect::<Vec<_>>());
    }
    entry
}

/// Patient keys whose contact is one of `ids`.
fn keys_pointing_at(tx: &Transaction<'_>, ids: &[&str]) -> Result<Vec<String>, LedgerError> {
    let mut keys = Vec::new();
    for id in ids {
        let mut statement = tx.prepare_cached(
            "SELECT record_key FROM hubspot_records WHERE kind = 'contact' AND hubspot_id = ?1
             ORDER BY record_key",
        )?;
        let rows = statement.query_map([id], |row| row.get::<_, String>(0))?;
        for key in rows {
            keys.push(key?);
        }
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::duplicates::drift::ValueChange;
    use crate::ledger::outbox::{Confirmation, OutboxKind, enqueue};

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Queues and confirms one row of `kind` as HubSpot id `id`.
    fn confirmed(
        ledger: &mut Ledger,
        kind: OutboxKind,
        key: &str,
        id: &str,
        sent: &[(&str, &str)],
    ) {
        let hash = format!("h-{key}");
        ledger
            .transaction(|tx| enqueue(tx, kind, key, None, &json!({}), &hash))
            .expect("queued");
        let row = ledger.due(kind, "9999", 100).expect("due")[0].id;
        ledger
            .confirm(
                kind,
                &[Confirmation {
                    row,
                    record_key: key.into(),
                    hash,
                    hubspot_id: id.into(),
                    values: Some(values(sent)),
                }],
            )
            .expect("confirmed");
    }

    #[test]
    fn confirmed_values_are_kept_for_contacts_and_deals_and_dropped_by_a_resend() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        confirmed(
            &mut ledger,
            OutboxKind::Contact,
            "a:1",
            "10",
            &[("lastname", "Müller")],
        );
        confirmed(
            &mut ledger,
            OutboxKind::Deal,
            "a:c1",
            "20",
            &[("amount", "1.00")],
        );
        confirmed(
            &mut ledger,
            OutboxKind::Deal,
            "a:altdeal:30",
            "30",
            &[("dealstage", "x")],
        );
        confirmed(
            &mut ledger,
            OutboxKind::Deal,
            "hubspot:deal:31",
            "31",
            &[("dealstage", "x")],
        );
        confirmed(
            &mut ledger,
            OutboxKind::Association,
            "contact|a:1>a:c1",
            "10",
            &[("x", "y")],
        );

        // Closures and marks of deals without our key are decisions, not
        // believed records.
        let (contact, deal) = (
            values(&[("lastname", "Müller")]),
            values(&[("amount", "1.00")]),
        );
        assert_eq!(
            ledger.believed_records().expect("believed"),
            vec![
                Believed {
                    kind: "contact".into(),
                    record_key: "a:1".into(),
                    hubspot_id: "10".into(),
                    confirmed: Some(contact),
                },
                Believed {
                    kind: "deal".into(),
                    record_key: "a:c1".into(),
                    hubspot_id: "20".into(),
                    confirmed: Some(deal),
                },
            ]
        );
        let names = ledger.confirmed_property_names().expect("names");
        assert_eq!(names["contact"], ["lastname".to_owned()].into());
        assert_eq!(
            names["deal"],
            ["amount".to_owned(), "dealstage".to_owned()].into()
        );
        assert!(ledger.queued_records().expect("queued").is_empty());

        let drift = Drift {
            kind: "contact".into(),
            record_key: "a:1".into(),
            hubspot_id: "10".into(),
            problem: DriftKind::ValueChanged {
                changes: vec![ValueChange {
                    property: "lastname".into(),
                    ours: Some("Müller".into()),
                    found: Some("Mueller".into()),
                }],
            },
        };
        assert_eq!(ledger.resend_drift(&[drift], "test").expect("resend"), 1);
        let after = ledger
            .confirmed(OutboxKind::Contact, "a:1")
            .expect("read")
            .expect("row");
        assert_eq!(
            (after.hubspot_id.as_deref(), after.hash),
            (Some("10"), None)
        );
        let believed = ledger.believed_records().expect("believed");
        assert_eq!(believed[0].confirmed, None, "values dropped with the hash");
        // The audit entry names the property, not the values.
        let entry = &ledger.audit_log(None, 10).expect("audit")[0];
        assert_eq!(
            entry.entry.details["records"][0]["changed"],
            json!(["lastname"])
        );
        assert!(!entry.entry.details.to_string().contains("Müller"));
    }
}
