//! Treatment cases as the ledger remembers them: which appointment opened
//! which case and which case every appointment joined.
//!
//! Membership is sticky (DESIGN.md §3.4): a row here is written once, when
//! the plan decides, and never changed; the stage is not stored at all — it
//! is derived again from the members on every run.

use rusqlite::{Connection, Transaction, params};

use super::{Ledger, LedgerError, now};

/// Schema step: cases and their members.
pub(super) const CASES_MIGRATION: &str = r#"
CREATE TABLE cases (
    case_key               TEXT PRIMARY KEY NOT NULL,
    location_key           TEXT NOT NULL REFERENCES locations (key),
    patient_id             TEXT NOT NULL,
    opening_appointment_id TEXT NOT NULL,
    opened_at              TEXT NOT NULL,
    duplicate              INTEGER NOT NULL DEFAULT 0,
    created_at             TEXT NOT NULL
) STRICT;
CREATE INDEX cases_by_patient ON cases (location_key, patient_id, opened_at);

CREATE TABLE case_members (
    location_key   TEXT NOT NULL REFERENCES locations (key),
    appointment_id TEXT NOT NULL,
    patient_id     TEXT NOT NULL,
    case_key       TEXT REFERENCES cases (case_key),
    decided_at     TEXT NOT NULL,
    PRIMARY KEY (location_key, appointment_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX case_members_by_case ON case_members (case_key);
"#;

/// A case as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRow {
    /// `<location>:<opening appointment Id>`.
    pub case_key: String,
    /// Ivoris patient Id.
    pub patient_id: String,
    /// The appointment that opened it.
    pub opening_appointment_id: String,
    /// Its start (local time, ISO-8601), the beginning of the case's span.
    pub opened_at: String,
    /// Confirmed duplicate from the review.
    pub duplicate: bool,
}

/// One decided appointment; `case_key` is `None` for appointments that
/// belong to no case (ignored types, no open case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// Ivoris appointment Id.
    pub appointment_id: String,
    /// Ivoris patient Id.
    pub patient_id: String,
    /// The case it joined or opened.
    pub case_key: Option<String>,
}

impl Ledger {
    /// All cases of a location, in the order they were opened per patient.
    ///
    /// That is the order of the decisions (`created_at`, then insertion
    /// order within one planning transaction), not of `opened_at`: an
    /// appointment booked into the past after a later case was closed
    /// opens a case whose start lies before that one's, and it is still
    /// the latest case — the one new appointments join and the only one
    /// that may stay open (`plan::stage::derive_stages`).
    pub fn cases(&self, location: &str) -> Result<Vec<CaseRow>, LedgerError> {
        cases(&self.conn, location)
    }

    /// Every decided appointment of a location.
    pub fn case_members(&self, location: &str) -> Result<Vec<MemberRow>, LedgerError> {
        case_members(&self.conn, location)
    }
}

/// [`Ledger::cases`] on `conn` (also inside a transaction).
pub fn cases(conn: &Connection, location: &str) -> Result<Vec<CaseRow>, LedgerError> {
    let mut statement = conn.prepare_cached(
        "SELECT case_key, patient_id, opening_appointment_id, opened_at, duplicate
             FROM cases WHERE location_key = ?1 ORDER BY patient_id, created_at, rowid",
    )?;
    let rows = statement.query_map([location], |row| {
        Ok(CaseRow {
            case_key: row.get(0)?,
            patient_id: row.get(1)?,
            opening_appointment_id: row.get(2)?,
            opened_at: row.get(3)?,
            duplicate: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// [`Ledger::case_members`] on `conn` (also inside a transaction).
pub fn case_members(conn: &Connection, location: &str) -> Result<Vec<MemberRow>, LedgerError> {
    let mut statement = conn.prepare_cached(
        "SELECT appointment_id, patient_id, case_key FROM case_members WHERE location_key = ?1",
    )?;
    let rows = statement.query_map([location], |row| {
        Ok(MemberRow {
            appointment_id: row.get(0)?,
            patient_id: row.get(1)?,
            case_key: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records a newly opened case inside the planning transaction.
pub fn open_case(tx: &Transaction<'_>, location: &str, case: &CaseRow) -> Result<(), LedgerError> {
    tx.prepare_cached(
        "INSERT INTO cases (case_key, location_key, patient_id, opening_appointment_id, opened_at, duplicate, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
            case.case_key,
            location,
            case.patient_id,
            case.opening_appointment_id,
            case.opened_at,
            case.duplicate,
            now()
        ],
    )?;
    Ok(())
}

/// Records the decision for an appointment inside the planning transaction.
/// A decision already recorded is kept (membership is sticky).
pub fn decide(tx: &Transaction<'_>, location: &str, member: &MemberRow) -> Result<(), LedgerError> {
    tx.prepare_cached(
        "INSERT INTO case_members (location_key, appointment_id, patient_id, case_key, decided_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (location_key, appointment_id) DO NOTHING",
    )?
    .execute(params![
        location,
        member.appointment_id,
        member.patient_id,
        member.case_key,
        now()
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::LocationRow;

    fn ledger() -> Ledger {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        ledger
            .upsert_location(&LocationRow {
                key: "mag".into(),
                name: "Magdeburg".into(),
                brand: None,
                ivoris_url: "http://127.0.0.1/api".into(),
                profile_id: None,
            })
            .expect("location");
        ledger
    }

    #[test]
    fn decisions_are_sticky() {
        let mut ledger = ledger();
        let case = CaseRow {
            case_key: "mag:a1".into(),
            patient_id: "p1".into(),
            opening_appointment_id: "a1".into(),
            opened_at: "2026-01-05T09:00:00".into(),
            duplicate: false,
        };
        let member = |id: &str, case: Option<&str>| MemberRow {
            appointment_id: id.into(),
            patient_id: "p1".into(),
            case_key: case.map(Into::into),
        };
        ledger
            .transaction(|tx| {
                open_case(tx, "mag", &case)?;
                decide(tx, "mag", &member("a1", Some("mag:a1")))?;
                decide(tx, "mag", &member("a2", None))
            })
            .expect("plan");
        // A later run trying to move a2 into the case changes nothing.
        ledger
            .transaction(|tx| decide(tx, "mag", &member("a2", Some("mag:a1"))))
            .expect("again");
        assert_eq!(ledger.cases("mag").expect("cases"), vec![case]);
        let mut members = ledger.case_members("mag").expect("members");
        members.sort_by(|a, b| a.appointment_id.cmp(&b.appointment_id));
        assert_eq!(
            members,
            vec![member("a1", Some("mag:a1")), member("a2", None)]
        );
    }
}
