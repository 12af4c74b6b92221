//! Decisions of the duplicate review (DESIGN.md §6): groups staff said are
//! not duplicates (never shown again), and patients whose cases are
//! confirmed duplicates (their deals become lost „Duplikat“ with the next
//! sync; undoable). Every decision is written to the audit log in the same
//! transaction, with keys only — no names.

use std::collections::{HashMap, HashSet};

use rusqlite::params;

use super::audit::NewAuditEntry;
use super::{Ledger, LedgerError, now};

/// Schema step: the groups dismissed in the review.
pub(super) const REVIEWS_MIGRATION: &str = r#"
CREATE TABLE duplicate_reviews (
    group_key  TEXT PRIMARY KEY NOT NULL,
    decision   TEXT NOT NULL CHECK (decision IN ('not_duplicate')),
    actor      TEXT NOT NULL,
    decided_at TEXT NOT NULL
) STRICT;
"#;

/// Cases and duplicate-marked cases per `(location, patient id)`.
pub type CaseMarks = HashMap<(String, String), (u64, u64)>;

impl Ledger {
    /// The keys of the groups dismissed as „kein Duplikat“.
    pub fn dismissed_duplicates(&self) -> Result<HashSet<String>, LedgerError> {
        let mut statement = self
            .conn
            .prepare("SELECT group_key FROM duplicate_reviews WHERE decision = 'not_duplicate'")?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Remembers that the group `key` is not a duplicate.
    pub fn dismiss_duplicate(&mut self, key: &str, actor: &str) -> Result<(), LedgerError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO duplicate_reviews (group_key, decision, actor, decided_at)
             VALUES (?1, 'not_duplicate', ?2, ?3)
             ON CONFLICT (group_key) DO NOTHING",
            params![key, actor, now()],
        )?;
        super::audit::insert(
            &tx,
            &NewAuditEntry {
                actor: actor.to_owned(),
                action: "duplicate.not_duplicate".into(),
                subject: key.to_owned(),
                details: serde_json::json!({}),
            },
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Marks (or unmarks) every case of one patient record as a confirmed
    /// duplicate; returns how many cases changed.
    pub fn mark_patient_duplicate(
        &mut self,
        location: &str,
        patient_id: &str,
        duplicate: bool,
        actor: &str,
    ) -> Result<u64, LedgerError> {
        let tx = self.conn.transaction()?;
        let changed = tx.execute(
            "UPDATE cases SET duplicate = ?3
             WHERE location_key = ?1 AND patient_id = ?2 AND duplicate <> ?3",
            params![location, patient_id, duplicate],
        )?;
        super::audit::insert(
            &tx,
            &NewAuditEntry {
                actor: actor.to_owned(),
                action: if duplicate {
                    "duplicate.mark_lost"
                } else {
                    "duplicate.unmark"
                }
                .into(),
                subject: format!("{location}:{patient_id}"),
                details: serde_json::json!({ "cases": changed }),
            },
        )?;
        tx.commit()?;
        Ok(changed as u64)
    }

    /// Per patient `(location, patient id)`: its cases and how many of them
    /// are marked duplicate.
    pub fn case_marks(&self) -> Result<CaseMarks, LedgerError> {
        let mut statement = self.conn.prepare(
            "SELECT location_key, patient_id, count(*), sum(duplicate) FROM cases
             GROUP BY location_key, patient_id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                (row.get::<_, String>(0)?, row.get::<_, String>(1)?),
                (row.get::<_, i64>(2)?, row.get::<_, i64>(3)?),
            ))
        })?;
        let mut marks = HashMap::new();
        for row in rows {
            let (patient, (cases, marked)) = row?;
            marks.insert(
                patient,
                (
                    u64::try_from(cases).unwrap_or(0),
                    u64::try_from(marked).unwrap_or(0),
                ),
            );
        }
        Ok(marks)
    }
}
