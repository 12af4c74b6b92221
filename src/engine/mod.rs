//! Orchestration of a sync: extraction of each location into the ledger.

pub mod extract;
