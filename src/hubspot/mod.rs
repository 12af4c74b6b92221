//! The HubSpot side: facts about the API shared by the client and the
//! sandbox (tiers and their limits), and the client the sync writes through.
//!
//! Map: `client` (typed calls, paths, retries, 207 mapping), `limiter`
//! (rate limits enforced before sending), `wire` (request and response
//! bodies), `error` (what went wrong, in German and English), `provision`
//! (idempotent setup of groups, unique key properties and the pipeline).

pub mod client;
pub mod error;
pub mod limiter;
pub mod provision;
pub mod wire;

pub use client::{
    ApiFamily, BatchOutcome, ClientStats, Clock, HubSpotClient, HubSpotClientConfig, InputError,
    InputResult, ListPage, ObjectKind, PortalEndpoint, RetryPolicy, SearchPage, TokioClock,
    UpsertInput, api_path, portal_path,
};
pub use error::ClientError;

use serde::{Deserialize, Serialize};

/// The HubSpot subscription tier, which decides the rate limits
/// (`reference/hubspot.md`, "Rate limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Starter,
    #[default]
    Professional,
    Enterprise,
    /// Enterprise or Professional with the API limit increase pack.
    Increase,
}

impl Tier {
    /// Requests allowed per app in the rolling 10-second window.
    pub fn per_ten_seconds(self) -> u32 {
        match self {
            Tier::Free | Tier::Starter => 100,
            Tier::Professional | Tier::Enterprise => 190,
            Tier::Increase => 250,
        }
    }

    /// Requests allowed per account and day (the lower documented value
    /// where HubSpot's pages disagree).
    pub fn per_day(self) -> u32 {
        match self {
            Tier::Free | Tier::Starter => 250_000,
            Tier::Professional => 625_000,
            Tier::Enterprise => 1_000_000,
            Tier::Increase => 2_000_000,
        }
    }
}
