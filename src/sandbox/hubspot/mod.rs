//! Simulated HubSpot CRM API (placeholder).

use std::sync::Arc;

use super::SandboxOptions;

pub struct HubSpotSimConfig {}

impl HubSpotSimConfig {
    pub fn from_options(_options: &SandboxOptions) -> HubSpotSimConfig {
        HubSpotSimConfig {}
    }
}

pub struct HubSpotSim {}

impl HubSpotSim {
    pub fn new(_config: HubSpotSimConfig) -> HubSpotSim {
        HubSpotSim {}
    }
}

pub fn router(sim: Arc<HubSpotSim>) -> axum::Router {
    axum::Router::new().with_state(sim)
}
