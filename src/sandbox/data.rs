//! Deterministic synthetic practices (placeholder until generated).

use super::Size;

/// All simulated locations with their Ivoris records.
#[derive(Debug, Clone, Default)]
pub struct World {}

impl World {
    pub fn generate(_seed: u64, _size: Size) -> World {
        World {}
    }
}
