//! Revenue of a case per treatment category, in integer cents
//! (DESIGN.md §5). Each billing line counts by its entry type: revenue (in
//! the total and its category), separate (`umsatz_separat`) or ignored. The
//! category is the entry type's fixed one (material, lab) or the first
//! matching row of the category table. An entry type missing from the
//! mapping is ignored and reported, never guessed.

use std::collections::{BTreeMap, BTreeSet};

use super::facts::EntryFacts;
use crate::mapping::{Category, Counting, Mapping};

/// Aggregated revenue of a set of billing lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RevenueByCategory {
    /// Sum of revenue lines (`amount`).
    pub total_cents: i64,
    /// Sum of separate lines (`umsatz_separat`), not in the total.
    pub separate_cents: i64,
    /// Sum of ignored lines, for the reconciliation view only.
    pub ignored_cents: i64,
    /// Revenue per category; every category is present, zero included.
    pub per_category: BTreeMap<Category, i64>,
    /// Entry types the mapping does not know (their lines were ignored).
    pub unmapped_entry_types: BTreeSet<String>,
}

impl RevenueByCategory {
    /// Revenue of one category.
    pub fn category_cents(&self, category: Category) -> i64 {
        self.per_category.get(&category).copied().unwrap_or(0)
    }

    /// The category with the most revenue, shown as `behandlungskategorie`.
    /// Material/Labor are pass-through costs and do not characterise a
    /// treatment, so they are dominant only when nothing else has revenue.
    /// Ties go to the category listed first in [`Category::ALL`]; `None`
    /// without positive revenue.
    pub fn dominant_category(&self) -> Option<Category> {
        let best = |candidates: &mut dyn Iterator<Item = Category>| {
            let mut best: Option<(Category, i64)> = None;
            for category in candidates {
                let cents = self.category_cents(category);
                if cents > 0 && best.is_none_or(|(_, top)| cents > top) {
                    best = Some((category, cents));
                }
            }
            best.map(|(category, _)| category)
        };
        best(
            &mut Category::ALL
                .into_iter()
                .filter(|c| *c != Category::MaterialLabor),
        )
        .or_else(|| best(&mut std::iter::once(Category::MaterialLabor)))
    }
}

/// Sums billing lines by how they count and by category.
pub fn revenue(entries: &[EntryFacts], mapping: &Mapping) -> RevenueByCategory {
    let mut result = RevenueByCategory {
        per_category: Category::ALL.into_iter().map(|c| (c, 0)).collect(),
        ..RevenueByCategory::default()
    };
    for entry in entries {
        let Some(rule) = mapping.entry_type(&entry.entry_type) else {
            result
                .unmapped_entry_types
                .insert(entry.entry_type.trim().to_owned());
            result.ignored_cents = result.ignored_cents.saturating_add(entry.amount_cents);
            continue;
        };
        match rule.counting {
            Counting::Revenue => {
                let category = rule.category.unwrap_or_else(|| {
                    mapping.category(entry.catalogue.as_deref(), entry.code.as_deref())
                });
                result.total_cents = result.total_cents.saturating_add(entry.amount_cents);
                let slot = result.per_category.entry(category).or_insert(0);
                *slot = slot.saturating_add(entry.amount_cents);
            }
            Counting::Separate => {
                result.separate_cents = result.separate_cents.saturating_add(entry.amount_cents);
            }
            Counting::Ignored => {
                result.ignored_cents = result.ignored_cents.saturating_add(entry.amount_cents);
            }
        }
    }
    result
}

/// Cents as HubSpot's number string: `17150` → `"171.50"`, `-5` → `"-0.05"`.
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}
