//! Shared by the HubSpot client tests: a simulated portal on 127.0.0.1:0
//! and a client pointed at it, whose waits move the simulation's clock
//! instead of sleeping, so rate windows pass in no real time.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ivoris_hubspot_sync::hubspot::{Clock, HubSpotClient, HubSpotClientConfig, Tier};
use ivoris_hubspot_sync::sandbox::hubspot::{HubSpotSim, HubSpotSimConfig, router};
use ivoris_hubspot_sync::sandbox::{SandboxOptions, credentials};
use ivoris_hubspot_sync::secrets::Secret;
use ivoris_hubspot_sync::settings::ApiVersion;
use tokio::time::Instant;

/// A clock shared by the client and the simulation: sleeping advances both.
pub struct SimClock {
    /// The simulation whose clock moves along.
    pub sim: Arc<HubSpotSim>,
    /// Milliseconds slept so far.
    offset_ms: AtomicU64,
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }

    fn wall(&self) -> DateTime<Utc> {
        let offset = i64::try_from(self.offset_ms.load(Ordering::SeqCst)).unwrap_or(i64::MAX);
        Utc::now() + chrono::Duration::milliseconds(offset)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let millis = u64::try_from(duration.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
        // The simulation first: a concurrent task must never see the client's
        // clock ahead of the server's, or its request would arrive "early".
        self.sim.advance_time(Duration::from_millis(millis));
        self.offset_ms.fetch_add(millis, Ordering::SeqCst);
        Box::pin(tokio::task::yield_now())
    }
}

/// A running simulation.
pub struct Portal {
    pub base: String,
    pub sim: Arc<HubSpotSim>,
}

pub async fn portal(configure: impl FnOnce(&mut SandboxOptions)) -> Portal {
    let mut options = SandboxOptions::default();
    configure(&mut options);
    let sim = Arc::new(HubSpotSim::new(HubSpotSimConfig::from_options(&options)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(sim.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Portal { base, sim }
}

impl Portal {
    pub fn config(&self, version: ApiVersion, tier: Tier) -> HubSpotClientConfig {
        let mut config = HubSpotClientConfig::new(
            self.base.clone(),
            version,
            tier,
            Secret::new(credentials::HUBSPOT_TOKEN),
        );
        config.clock = Arc::new(SimClock {
            sim: self.sim.clone(),
            offset_ms: AtomicU64::new(0),
        });
        config.timeout = Duration::from_secs(5);
        config
    }

    pub fn client(&self) -> HubSpotClient {
        HubSpotClient::new(self.config(ApiVersion::default(), Tier::Professional)).unwrap()
    }
}
