//! Faults on demand: which ones are switched on, and the seeded dice that
//! decide, request by request, whether one strikes.
//!
//! Rates are fractions of eligible requests (`0.0..=1.0`). Faults never hit
//! the `/_sandbox/` endpoints. "Committed but lost" only strikes writes (a
//! lost read is just a 502).

use std::sync::Mutex;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::lock;
use crate::sandbox::FaultProfile;

/// The fault switches, settable at runtime (`HubSpotSim::set_faults`,
/// `POST /_sandbox/faults`). Every field is optional in JSON; missing ones
/// keep their default (off).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FaultSettings {
    /// Share of requests answered with a 429 although the window has room
    /// (HubSpot's limits are shared with other apps): the ten-secondly body,
    /// or the search limiter's body on searches.
    pub rate_limit_rate: f64,
    /// Share answered with a 500/502/503/504 without doing anything.
    pub server_error_rate: f64,
    /// Share whose connection is dropped before a response is complete,
    /// without doing anything.
    pub drop_connection_rate: f64,
    /// Share of writes that are applied, after which the client gets a 502
    /// or a dropped connection.
    pub committed_but_lost_rate: f64,
    /// Share answered only after `slow_delay_ms`.
    pub slow_rate: f64,
    /// Delay of a slow response.
    pub slow_delay_ms: u64,
    /// Restricts the random faults above to write requests.
    pub writes_only: bool,
    /// Every write answers 500 or 503 and changes nothing (dead letters).
    pub fail_every_write: bool,
}

impl FaultSettings {
    /// The defaults of each profile of `SandboxOptions::faults`.
    pub fn for_profile(profile: FaultProfile) -> FaultSettings {
        match profile {
            FaultProfile::None => FaultSettings::default(),
            FaultProfile::Flaky => FaultSettings {
                rate_limit_rate: 0.01,
                server_error_rate: 0.02,
                drop_connection_rate: 0.005,
                committed_but_lost_rate: 0.01,
                slow_rate: 0.02,
                slow_delay_ms: 300,
                writes_only: false,
                fail_every_write: false,
            },
            FaultProfile::Hostile => FaultSettings {
                rate_limit_rate: 0.10,
                server_error_rate: 0.05,
                drop_connection_rate: 0.02,
                committed_but_lost_rate: 0.05,
                slow_rate: 0.05,
                slow_delay_ms: 1_000,
                writes_only: false,
                fail_every_write: false,
            },
        }
    }
}

/// What the dice decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    RateLimit,
    /// Status code and whether the body is empty.
    ServerError(u16, bool),
    DropConnection,
    /// Apply the write, then answer 502 (`false`) or drop the connection (`true`).
    CommittedButLost(bool),
    Slow(Duration),
    /// `fail_every_write`: status code 500 or 503.
    FailWrite(u16),
}

/// The switches and the seeded random source behind one lock.
#[derive(Debug)]
pub struct FaultDice {
    /// Current switches.
    settings: Mutex<(FaultSettings, ChaCha8Rng)>,
}

impl FaultDice {
    pub fn new(settings: FaultSettings, seed: u64) -> FaultDice {
        FaultDice {
            settings: Mutex::new((settings, ChaCha8Rng::seed_from_u64(seed ^ 0x4855_4253))),
        }
    }

    pub fn settings(&self) -> FaultSettings {
        lock(&self.settings).0.clone()
    }

    pub fn set(&self, settings: FaultSettings) {
        lock(&self.settings).0 = settings;
    }

    /// Rolls once for a request; `None` means it is served normally.
    pub fn roll(&self, is_write: bool) -> Option<Fault> {
        let mut guard = lock(&self.settings);
        let (settings, rng) = &mut *guard;
        if settings.fail_every_write && is_write {
            let status = if rng.random_bool(0.5) { 500 } else { 503 };
            return Some(Fault::FailWrite(status));
        }
        if settings.writes_only && !is_write {
            return None;
        }
        let roll: f64 = rng.random();
        let mut threshold = settings.rate_limit_rate;
        if roll < threshold {
            return Some(Fault::RateLimit);
        }
        threshold += settings.server_error_rate;
        if roll < threshold {
            let status = [500, 502, 503, 504][rng.random_range(0..4usize)];
            return Some(Fault::ServerError(status, rng.random_bool(0.3)));
        }
        threshold += settings.drop_connection_rate;
        if roll < threshold {
            return Some(Fault::DropConnection);
        }
        if is_write {
            threshold += settings.committed_but_lost_rate;
            if roll < threshold {
                return Some(Fault::CommittedButLost(rng.random_bool(0.5)));
            }
        }
        threshold += settings.slow_rate;
        if roll < threshold {
            return Some(Fault::Slow(Duration::from_millis(settings.slow_delay_ms)));
        }
        None
    }
}
