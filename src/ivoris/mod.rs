//! The Ivoris side: wire types now, the API client in a later step.
//!
//! Everything assumed about the Ivoris API lives in this module so it can be
//! corrected against an installation's own OpenAPI document without touching
//! the engine.

pub mod wire;
