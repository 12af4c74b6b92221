//! How long the mapping editor's check takes for large category tables.
//!
//! The editor re-checks the whole draft after every edit (parse every row,
//! then validate: duplicates, rows that never match, overlapping rows —
//! the last two compare every row with every earlier one). A practice that
//! adds many single codes from „Nicht zugeordnet“ ends up with hundreds of
//! rows, so the check must stay within a frame while someone types.
//!
//! Run with `cargo bench --bench mapping_check`; it prints the median of
//! several checks per table size with the target (≤ 16 ms at 1,000 rows).

use std::time::{Duration, Instant};

use ivoris_hubspot_sync::mapping::table::{draft_of, mapping_from_draft};
use ivoris_hubspot_sync::mapping::{Category, Mapping, TableName};

/// One frame at 60 Hz.
const TARGET: Duration = Duration::from_millis(16);
/// Rows at which the target applies.
const TARGET_ROWS: usize = 1_000;

fn main() {
    let defaults = Mapping::defaults();
    let mut draft = draft_of(&defaults);
    let shipped = draft[&TableName::TreatmentCategories].clone();
    let categories = Category::ALL;
    let catalogues = ["GOZ", "BEMA", "GOÄ", "BEL"];
    println!(
        "{:>6}  {:>10}  {:>8}  {:>8}",
        "rows", "median", "errors", "warnings"
    );
    for rows in [200_usize, 500, 1_000, 2_000] {
        // Specific rows first (single codes, short lists, narrow ranges of
        // several catalogues, as „Nicht zugeordnet“ and a spreadsheet add
        // them), the shipped general rows last.
        let mut table: Vec<Vec<String>> = (0..rows.saturating_sub(shipped.len()))
            .map(|i| {
                let catalogue = catalogues[i % catalogues.len()].to_owned();
                let base = 1000 + i * 3;
                let pattern = match i % 4 {
                    0 | 1 => format!("{base}"),
                    2 => format!("{base}a,{base}b"),
                    _ => format!("{base}-{}", base + 1),
                };
                let category = categories[i % categories.len()].label().to_owned();
                vec![catalogue, pattern, category]
            })
            .collect();
        table.extend(shipped.iter().cloned());
        draft.insert(TableName::TreatmentCategories, table);

        let mut times = Vec::new();
        let mut counts = (0, 0);
        for _ in 0..7 {
            let started = Instant::now();
            let parsed = mapping_from_draft(&draft);
            times.push(started.elapsed());
            let errors = parsed.problems.iter().filter(|p| p.is_error()).count();
            counts = (errors, parsed.problems.len() - errors);
        }
        times.sort();
        let parsed = mapping_from_draft(&draft);
        let started = Instant::now();
        let _ =
            ivoris_hubspot_sync::mapping::validate::validate(&parsed.mapping, &Default::default());
        eprintln!("validate alone: {:?}", started.elapsed());
        let median = times[times.len() / 2];
        let verdict = if rows == TARGET_ROWS {
            if median <= TARGET {
                "  PASS (<= 16 ms)"
            } else {
                "  FAIL (<= 16 ms)"
            }
        } else {
            ""
        };
        println!(
            "{rows:>6}  {:>7.2} ms  {:>8}  {:>8}{verdict}",
            median.as_secs_f64() * 1000.0,
            counts.0,
            counts.1
        );
    }
}
