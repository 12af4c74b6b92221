//! Simulated Ivoris web service (placeholder).

use std::sync::Arc;

use super::data::World;
use super::{FaultProfile, SandboxLocation};

pub struct IvorisSim {}

impl IvorisSim {
    pub fn new(_world: World, _faults: FaultProfile, _seed: u64) -> IvorisSim {
        IvorisSim {}
    }

    pub fn locations(&self, _root: &str) -> Vec<SandboxLocation> {
        Vec::new()
    }
}

pub fn router(sim: Arc<IvorisSim>) -> axum::Router {
    axum::Router::new().with_state(sim)
}
