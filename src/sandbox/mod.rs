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

/// How the simulated HubSpot answers a batch upsert or update some of whose
/// inputs fail. HubSpot documents per-input results (207) only for batch
/// *create* with a distinct `objectWriteTraceId` per input; for the other
/// batch calls a real portal may refuse the whole call instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BatchFailures {
    /// Trace ids are honoured: good inputs are written, failures come back
    /// per input in a 207.
    #[default]
    MultiStatus,
    /// Trace ids are ignored: the first bad input refuses the whole call and
    /// nothing is written — for an e-mail clash HubSpot's 409 `CONFLICT`
    /// "Contact already exists. Existing ID: N", naming only the first
    /// contact in the way and not the input.
    WholeCall,
}

/// What the simulated HubSpot portal holds before the first sync, besides
/// HubSpot's own properties and the default pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PortalSeed {
    /// Nothing: a portal that never saw an integration.
    #[default]
    Empty,
    /// The portal the previous integration left, contacts only: per
    /// location, in patient order, every second patient with an e-mail
    /// address (the first, third, fifth … of them) is a contact with that
    /// `email` as Ivoris has it and its `firstname` / `lastname` where
    /// Ivoris has them — no patient key and no other property. A patient
    /// whose address (compared without case and surrounding spaces) an
    /// earlier seeded contact already has is skipped, as HubSpot keeps
    /// e-mail addresses unique. Contacts are created in that order, so
    /// their ids rise with it. See `hubspot::HubSpotSim::seed_portal`.
    PreviousContacts,
    /// The portal the previous integration left, whole: contacts keyed by
    /// `ivoris_patient_id` (bare Ivoris id), some without e-mail, some
    /// twice (one with a typo in the name); one deal per appointment keyed
    /// by `ivoris_appointment_id` in the old pipeline with stages by label
    /// and amounts, associated with the contact; duplicate deals of one
    /// appointment, some closed lost „Duplikat“; contacts and deals made by
    /// hand without any id. Exactly which: `hubspot::seed` (the tests read
    /// [`hubspot::seed::records`]).
    Legacy,
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
    /// How long every simulated HubSpot answer takes (HubSpot's batch
    /// calls take a few hundred milliseconds; zero answers at once).
    pub hubspot_latency: Duration,
    /// Whether the simulated Ivoris is fragile: 504s rise with the request
    /// rate per installation (`ivoris::faults::overload_share`).
    pub ivoris_fragile: bool,
    /// How batch upserts and updates answer failed inputs (per input, or
    /// the whole call refused), to test both behaviours a portal may show.
    pub batch_failures: BatchFailures,
    /// What the portal holds before the first sync (the previous
    /// integration's contacts or its whole portal, for the switch-over).
    pub portal: PortalSeed,
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
            hubspot_latency: Duration::ZERO,
            ivoris_fragile: false,
            batch_failures: BatchFailures::MultiStatus,
            portal: PortalSeed::Empty,
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
        hubspot
            .seed_portal(options.portal, &world)
            .map_err(|error| std::io::Error::other(error.message))?;
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
