//! The subcommands of the binary, one module each; `main.rs` only parses and
//! dispatches.

pub mod backup;
pub mod duplicates;
pub mod forget;
pub mod gui;
pub mod import;
pub mod kpi;
pub mod mapping;
pub mod retry;
pub mod sandbox;
pub mod status;
pub mod sync;
