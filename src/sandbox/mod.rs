//! The sandbox: in-process simulations of the Ivoris and HubSpot APIs on
//! 127.0.0.1, seeded with deterministic synthetic practices.
//!
//! It is the test bed of the whole suite and the „Demo-Modus“ a new user
//! sees. It follows `reference/` (paths, bodies, errors, limits) and injects
//! faults on request. Both servers are plain axum routers over shared state,
//! so tests bind `127.0.0.1:0` and inspect the state directly or through the
//! `/_sandbox/` endpoints.

pub mod data;
pub mod hubspot;
pub mod ivoris;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::hubspot::Tier;

/// How much synthetic data the sandbox generates per location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// A few dozen patients: unit and integration tests.
    Small,
    /// About 2,000 patients per location: the demo.
    #[default]
    Medium,
    /// 3,000 patients per location: a chain's practices as the switch-over
    /// benchmark reads them.
    Chain,
    /// 10,000 patients, 40,000 appointments, 150,000 entries per location: benchmarks.
    Large,
}

/// Which faults both simulations inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FaultProfile {
    /// Every request succeeds (rate limits still apply on the HubSpot side).
    #[default]
    None,
    /// Occasional failures, as on a normal day.
    Flaky,
    /// Frequent failures of every documented kind.
    Hostile,
}

/// Fixed sandbox credentials. They only open the local simulation and are
/// deliberately unlike real HubSpot tokens.
pub mod credentials {
    pub const HUBSPOT_TOKEN: &str = "sandbox-hubspot-token";
    pub const IVORIS_USER: &str = "sync";
    pub const IVORIS_PASSWORD: &str = "sandbox-password";
    pub const IVORIS_API_KEY: &str = "sandbox-api-key";
    pub const IVORIS_APP: &str = "ivoris-hubspot-sync";
    pub const IVORIS_APP_VERSION: &str = "1.0";
}

/// Everything needed to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Seed of the synthetic data and of the fault dice.
    pub seed: u64,
    pub size: Size,
    pub faults: FaultProfile,
    /// Tier whose rate limits the HubSpot simulation enforces.
    pub tier: Tier,
    /// Whether rate limits are enforced at all (benchmarks switch them off).
    pub rate_limits: bool,
    /// Delay before a HubSpot write becomes visible to search.
    pub search_index_lag: Duration,
    /// Whether the appointments object (0-421) is activated in the portal.
    pub appointments_enabled: bool,
    /// How long every simulated Ivoris answer takes, as over the real relay
    /// (the server answers requests in parallel; the client keeps one in
    /// flight).
    pub ivoris_latency: Duration,
    /// Whether the simulated Ivoris is fragile: 504s rise with the request
    /// rate per installation (`ivoris::faults::overload_share`).
    pub ivoris_fragile: bool,
    pub hubspot_addr: SocketAddr,
    pub ivoris_addr: SocketAddr,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            seed: 1,
            size: Size::Small,
            faults: FaultProfile::None,
            tier: Tier::Professional,
            rate_limits: true,
            search_index_lag: Duration::from_millis(0),
            appointments_enabled: true,
            ivoris_latency: Duration::ZERO,
            ivoris_fragile: false,
            hubspot_addr: loopback,
            ivoris_addr: loopback,
        }
    }
}

/// One simulated practice as a settings file would describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLocation {
    pub key: String,
    pub name: String,
    pub brand: String,
    /// Base URL of this location's Ivoris installation (through the simulated relay).
    pub ivoris_url: String,
    pub profile_id: String,
}

/// A running sandbox: both servers and their shared state.
pub struct Sandbox {
    pub hubspot_url: String,
    /// Root of the simulated Ivoris relay (`/_sandbox/` lives here).
    pub ivoris_root: String,
    pub locations: Vec<SandboxLocation>,
    pub hubspot: Arc<hubspot::HubSpotSim>,
    pub ivoris: Arc<ivoris::IvorisSim>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

impl Sandbox {
    /// Generates the data and starts both servers on the configured addresses.
    pub async fn start(options: SandboxOptions) -> std::io::Result<Sandbox> {
        let world = data::World::generate(options.seed, options.size);
        let hubspot = Arc::new(hubspot::HubSpotSim::new(
            hubspot::HubSpotSimConfig::from_options(&options),
        ));
        let ivoris = Arc::new(ivoris::IvorisSim::new(world, options.faults, options.seed));
        ivoris.update_faults(&ivoris::FaultUpdate {
            latency_ms: Some(u64::try_from(options.ivoris_latency.as_millis()).unwrap_or(u64::MAX)),
            fragile: Some(options.ivoris_fragile),
            ..ivoris::FaultUpdate::default()
        });

        let hubspot_listener = TcpListener::bind(options.hubspot_addr).await?;
        let ivoris_listener = TcpListener::bind(options.ivoris_addr).await?;
        let hubspot_url = format!("http://{}", hubspot_listener.local_addr()?);
        let ivoris_root = format!("http://{}", ivoris_listener.local_addr()?);
        let locations = ivoris.locations(&ivoris_root);

        let (shutdown, _) = watch::channel(false);
        let servers = vec![
            serve(
                hubspot_listener,
                hubspot::router(hubspot.clone()),
                shutdown.subscribe(),
            ),
            serve(
                ivoris_listener,
                ivoris::router(ivoris.clone()),
                shutdown.subscribe(),
            ),
        ];
        tracing::info!(%hubspot_url, %ivoris_root, "sandbox started");
        Ok(Sandbox {
            hubspot_url,
            ivoris_root,
            locations,
            hubspot,
            ivoris,
            shutdown,
            servers,
        })
    }

    /// Stops both servers and waits until they have let go of their ports.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for server in self.servers {
            let _ = server.await;
        }
    }
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "sandbox server stopped");
        }
    })
}
