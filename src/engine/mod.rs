//! Orchestration of a sync: extraction of each location into the ledger,
//! planning into the outbox, loading into HubSpot, and the run around them.

pub mod dashboard;
pub mod duplicates;
pub mod extract;
pub mod handle;
pub mod load;
pub mod mapping_ops;
pub mod planner;
pub mod reapply;
pub mod reconcile;
pub mod run;
