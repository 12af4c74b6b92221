//! Ivoris → HubSpot sync: library behind the desktop app and the headless CLI.
//!
//! See `ARCHITECTURE.md` for the map of the modules.

pub mod csvio;
pub mod duplicates;
pub mod engine;
pub mod files;
pub mod gui;
pub mod hubspot;
pub mod import;
pub mod ivoris;
pub mod kpi;
pub mod ledger;
pub mod logging;
pub mod mapping;
pub mod plan;
pub mod sandbox;
pub mod secrets;
pub mod settings;

/// The allocator of every binary built on this library. The import and the
/// sync hand records from thread to thread (read → prepared → stored), and
/// mimalloc frees memory allocated on another thread without the lock
/// contention of the system allocator: an import of billing lines runs
/// about a quarter faster with it (`cargo bench --bench import`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
