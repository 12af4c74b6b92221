//! The duplicate review's data (DESIGN.md §6): the mirrored patients of
//! every known location grouped by [`crate::duplicates::find_groups`],
//! without the groups staff dismissed, with each record's cases and how
//! many of them are confirmed duplicates. Read-only; the decisions are
//! written by the ledger (`ledger::reviews`).

use crate::duplicates::{DuplicateGroup, find_groups};
use crate::ledger::{Ledger, LedgerError};
use crate::settings::Settings;

use super::known_locations;
use super::planner::load_patients;

/// One group as the review shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewGroup {
    /// The records and why they belong together.
    pub group: DuplicateGroup,
    /// Per member (in the group's order): its cases, and how many of them
    /// are marked duplicate.
    pub cases: Vec<(u64, u64)>,
}

/// Every open group, same-practice groups first.
pub fn review(ledger: &Ledger, settings: &Settings) -> Result<Vec<ReviewGroup>, LedgerError> {
    let mut patients = Vec::new();
    for (key, _, _) in known_locations(ledger, settings)? {
        patients.extend(load_patients(ledger.connection(), &key)?);
    }
    let dismissed = ledger.dismissed_duplicates()?;
    let marks = ledger.case_marks()?;
    Ok(find_groups(&patients, &dismissed)
        .into_iter()
        .map(|group| {
            let cases = group
                .members
                .iter()
                .map(|m| {
                    marks
                        .get(&(m.location.clone(), m.id.clone()))
                        .copied()
                        .unwrap_or((0, 0))
                })
                .collect();
            ReviewGroup { group, cases }
        })
        .collect())
}
