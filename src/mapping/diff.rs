//! What changed between two mapping versions, per table: rows added,
//! removed and changed (matched by their key columns), and whether the
//! order changed — which matters for the first-match category table.
//!
//! Rows are compared as the CSV cells they are exported as
//! ([`super::table::table_rows`]), so the diff reads like the spreadsheet.

use std::collections::HashMap;

use super::Mapping;
use super::table::table_rows;
use super::validate::TableName;

/// One row's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowChange {
    /// Only in the newer version.
    Added(Vec<String>),
    /// Only in the older version.
    Removed(Vec<String>),
    /// Same key, other cells.
    Changed {
        /// The older row.
        before: Vec<String>,
        /// The newer row.
        after: Vec<String>,
    },
}

/// The changes of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDiff {
    /// Which table.
    pub table: TableName,
    /// Changed rows, in the newer version's order (removed rows last).
    pub changes: Vec<RowChange>,
    /// Rows present in both kept their keys but not their order.
    pub reordered: bool,
}

/// How many leading columns identify a row of the table.
fn key_columns(table: TableName) -> usize {
    match table {
        TableName::TreatmentCategories => 2,
        _ => 1,
    }
}

/// The key of a row; the occurrence number keeps repeated keys (an invalid
/// but possible table) apart.
fn keys(table: TableName, rows: &[Vec<String>]) -> Vec<(String, usize)> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    rows.iter()
        .map(|row| {
            let key = row
                .iter()
                .take(key_columns(table))
                .map(|c| c.trim().to_lowercase())
                .collect::<Vec<_>>()
                .join("\u{1f}");
            let n = seen.entry(key.clone()).or_default();
            *n += 1;
            (key, *n)
        })
        .collect()
}

/// The differences of one table.
pub fn diff_table(before: &Mapping, after: &Mapping, table: TableName) -> TableDiff {
    let old_rows = table_rows(before, table);
    let new_rows = table_rows(after, table);
    let old_keys = keys(table, &old_rows);
    let new_keys = keys(table, &new_rows);
    let old_index: HashMap<&(String, usize), usize> =
        old_keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut changes = Vec::new();
    let mut common_old_positions = Vec::new();
    for (key, row) in new_keys.iter().zip(&new_rows) {
        match old_index.get(key) {
            None => changes.push(RowChange::Added(row.clone())),
            Some(&i) => {
                common_old_positions.push(i);
                if old_rows[i] != *row {
                    changes.push(RowChange::Changed {
                        before: old_rows[i].clone(),
                        after: row.clone(),
                    });
                }
            }
        }
    }
    let new_set: std::collections::HashSet<&(String, usize)> = new_keys.iter().collect();
    for (key, row) in old_keys.iter().zip(&old_rows) {
        if !new_set.contains(key) {
            changes.push(RowChange::Removed(row.clone()));
        }
    }
    let reordered = common_old_positions.windows(2).any(|w| w[0] > w[1]);
    TableDiff {
        table,
        changes,
        reordered,
    }
}

/// Every table that differs between two versions.
pub fn diff(before: &Mapping, after: &Mapping) -> Vec<TableDiff> {
    TableName::ALL
        .into_iter()
        .map(|table| diff_table(before, after, table))
        .filter(|d| !d.changes.is_empty() || d.reordered)
        .collect()
}
