//! Shared set-up of the engine tests: a sandbox in-process and a sync
//! environment pointing at it with short timeouts and backoff.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::run::{
    Credentials, SyncEnvironment, SyncRequest, SyncSummary, sync,
};
use ivoris_hubspot_sync::sandbox::{FaultProfile, Sandbox, SandboxOptions, Size, credentials};
use ivoris_hubspot_sync::secrets::{IvorisSecrets, Secret};
use ivoris_hubspot_sync::settings::Settings;

pub struct Bed {
    pub sandbox: Sandbox,
    pub env: SyncEnvironment,
    pub dir: tempfile::TempDir,
}

pub fn options(seed: u64) -> SandboxOptions {
    SandboxOptions {
        seed,
        size: Size::Small,
        faults: FaultProfile::None,
        rate_limits: false,
        ..SandboxOptions::default()
    }
}

pub async fn bed(options: SandboxOptions) -> Bed {
    let sandbox = Sandbox::start(options).await.expect("sandbox");
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger_path: PathBuf = dir.path().join("ledger.sqlite");
    let settings = Settings::for_sandbox(
        &sandbox.hubspot_url,
        &sandbox.locations,
        Some(ledger_path.clone()),
    );
    let ivoris: BTreeMap<String, IvorisSecrets> = sandbox
        .locations
        .iter()
        .map(|l| {
            (
                l.key.clone(),
                IvorisSecrets {
                    password: Secret::new(credentials::IVORIS_PASSWORD),
                    api_key: Secret::new(credentials::IVORIS_API_KEY),
                },
            )
        })
        .collect();
    let sim = sandbox.ivoris.clone();
    let env = SyncEnvironment {
        settings,
        ledger_path,
        credentials: Credentials {
            hubspot_token: Secret::new(credentials::HUBSPOT_TOKEN),
            ivoris,
        },
        clock: Arc::new(move || sim.now()),
        tune_ivoris: Some(Arc::new(|config| {
            config.timeout = Duration::from_secs(2);
            config.retry.base_delay = Duration::from_millis(5);
            config.retry.max_delay = Duration::from_millis(50);
            config.pause_between_requests = Duration::ZERO;
        })),
        tune_hubspot: Some(Arc::new(|config| {
            config.timeout = Duration::from_secs(5);
            config.retry.base = Duration::from_millis(5);
            config.retry.cap = Duration::from_millis(50);
        })),
    };
    Bed { sandbox, env, dir }
}

pub async fn run(env: &SyncEnvironment) -> SyncSummary {
    let request = SyncRequest {
        trigger: "test".into(),
        ..SyncRequest::default()
    };
    sync(env, &request, &|_| {}, &CancelFlag::new())
        .await
        .expect("sync runs")
}
