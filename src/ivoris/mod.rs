//! The Ivoris side: wire types, lenient parsing, the API client and its
//! pacing.
//!
//! Everything assumed about the Ivoris API lives in this module so it can be
//! corrected against an installation's own OpenAPI document without touching
//! the engine.

pub mod breaker;
pub mod client;
pub mod minimise;
pub mod pacing;
pub mod parse;
pub mod wire;
