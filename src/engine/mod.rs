//! Orchestration of a sync: extraction of each location into the ledger,
//! planning into the outbox, loading into HubSpot, and the run around them.

pub mod adopt;
pub mod dashboard;
pub mod decisions;
pub mod duplicates;
pub mod extract;
pub mod forget;
pub mod handle;
pub mod import;
pub mod import_ops;
pub mod kept_provisioning;
pub mod kept_window;
pub mod load;
pub mod mapping_ops;
pub mod planner;
pub mod portal_review;
pub mod privacy_ops;
pub mod reapply;
pub mod reconcile;
pub mod run;
pub mod scan;

use crate::ledger::{Ledger, LedgerError};
use crate::mapping::store::load_current;
use crate::settings::Settings;

/// The locations to show: the settings' first, then any other the ledger
/// holds, with the display name and brand of the latest saved location
/// table where it has them.
pub fn known_locations(
    ledger: &Ledger,
    settings: &Settings,
) -> Result<Vec<(String, String, Option<String>)>, LedgerError> {
    let mut known: Vec<(String, String, Option<String>)> = settings
        .locations
        .iter()
        .map(|l| (l.key.clone(), l.name.clone(), l.brand.clone()))
        .collect();
    for row in ledger.locations()? {
        if !known.iter().any(|(key, _, _)| *key == row.key) {
            known.push((row.key, row.name, row.brand));
        }
    }
    // An unreadable mapping leaves the settings' names; the mapping panel
    // reports the problem itself.
    if let Ok(mapping) = load_current(ledger) {
        for (key, name, brand) in &mut known {
            if let Some(named) = mapping.location_name(key) {
                *name = named.to_owned();
            }
            if let Some(branded) = mapping.location_brand(key) {
                *brand = Some(branded.to_owned());
            }
        }
    }
    Ok(known)
}
