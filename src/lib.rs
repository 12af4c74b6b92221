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
