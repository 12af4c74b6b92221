//! The faults the simulated Ivoris injects: gateway timeouts and empty 503s
//! from the relay, the generic 500 of the web service, slow answers, a
//! record repeated on two consecutive patient pages, and billing lines
//! missing from windowed asks. Rates come from the fault profile and can be
//! changed per kind at runtime; the dice are seeded, so a run is repeatable.
//!
//! Beside the dice, a load model: every answer may take a fixed latency,
//! and a *fragile* server answers 504 more often the faster one
//! installation (link name) is asked — see [`overload_share`] for the
//! curve. The rate is measured over a sliding window of the sandbox's own
//! (tokio) clock; the server never serialises requests itself, keeping one
//! request in flight is the client's business.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::sandbox::FaultProfile;

/// Slow answers take this long unless configured otherwise: longer than the
/// 20 s integrators use as a timeout, as seen in the field.
pub const DEFAULT_SLOW_DELAY_MS: u64 = 25_000;

/// Requests per second one installation of the fragile server serves
/// without a 504, unless configured otherwise.
pub const DEFAULT_HEALTHY_RATE: f64 = 25.0;

/// How far back the fragile server counts an installation's requests.
pub const LOAD_WINDOW: Duration = Duration::from_secs(1);

/// The share of 504s never rises above this: even an overloaded relay
/// lets some answers through.
pub const MAX_OVERLOAD_SHARE: f64 = 0.95;

/// The share of requests the fragile server answers 504 when one
/// installation is asked `rate` times per second and serves `healthy` per
/// second without trouble: 0 up to the healthy rate, then rising steeply by
/// the excess as a share of the healthy rate — 10 % at 1.1 ×, 50 % at
/// 1.5 × — up to [`MAX_OVERLOAD_SHARE`] from 1.95 ×.
pub fn overload_share(rate: f64, healthy: f64) -> f64 {
    if healthy <= 0.0 || rate.is_nan() || rate <= healthy {
        return 0.0;
    }
    ((rate - healthy) / healthy).min(MAX_OVERLOAD_SHARE)
}

fn default_healthy_rate() -> f64 {
    DEFAULT_HEALTHY_RATE
}

/// Current fault rates; every rate is a probability per request (or per
/// page / per patient where the field says so).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSettings {
    /// Profile the rates started from (informational once rates were changed).
    pub profile: FaultProfile,
    /// 504 with an empty body (the relay gave up waiting).
    pub gateway_timeout_rate: f64,
    /// 503 with an empty body.
    pub unavailable_rate: f64,
    /// 500 with `{"message":"An error has occurred."}`.
    pub server_error_rate: f64,
    /// Answers delayed by `slow_delay_ms` (then served normally).
    pub slow_rate: f64,
    /// Delay of a slow answer.
    pub slow_delay_ms: u64,
    /// Per `AllPatients` page after the first: the last record of the
    /// previous page is repeated at the start.
    pub duplicate_on_page_rate: f64,
    /// Per windowed `DocumentEntries` ask: some lines are left out.
    pub missing_entries_rate: f64,
    /// Every answer (also a failure) takes this long, as a real server
    /// behind the relay does; 0 answers at once. Kept when the profile
    /// changes: it is the server's speed, not a fault.
    #[serde(default)]
    pub latency_ms: u64,
    /// Whether 504s rise with the request rate per installation
    /// ([`overload_share`]), so a client that paces itself by the answers
    /// gets the most through. Kept when the profile changes.
    #[serde(default)]
    pub fragile: bool,
    /// Requests per second one installation serves without a 504 while
    /// `fragile`.
    #[serde(default = "default_healthy_rate")]
    pub fragile_healthy_rate: f64,
}

impl FaultSettings {
    /// The rates of a profile.
    pub fn for_profile(profile: FaultProfile) -> FaultSettings {
        let (gateway, unavailable, server, slow, duplicate, missing) = match profile {
            FaultProfile::None => (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            FaultProfile::Flaky => (0.01, 0.01, 0.01, 0.02, 0.05, 0.05),
            FaultProfile::Hostile => (0.09, 0.08, 0.08, 0.05, 0.3, 0.3),
        };
        FaultSettings {
            profile,
            gateway_timeout_rate: gateway,
            unavailable_rate: unavailable,
            server_error_rate: server,
            slow_rate: slow,
            slow_delay_ms: DEFAULT_SLOW_DELAY_MS,
            duplicate_on_page_rate: duplicate,
            missing_entries_rate: missing,
            latency_ms: 0,
            fragile: false,
            fragile_healthy_rate: DEFAULT_HEALTHY_RATE,
        }
    }
}

/// A change of the fault settings (`POST /_sandbox/faults`): a profile to
/// start from, then single rates to override. Omitted fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultUpdate {
    /// Start from this profile's rates before applying the fields below.
    pub profile: Option<FaultProfile>,
    /// See [`FaultSettings::gateway_timeout_rate`].
    pub gateway_timeout_rate: Option<f64>,
    /// See [`FaultSettings::unavailable_rate`].
    pub unavailable_rate: Option<f64>,
    /// See [`FaultSettings::server_error_rate`].
    pub server_error_rate: Option<f64>,
    /// See [`FaultSettings::slow_rate`].
    pub slow_rate: Option<f64>,
    /// See [`FaultSettings::slow_delay_ms`].
    pub slow_delay_ms: Option<u64>,
    /// See [`FaultSettings::duplicate_on_page_rate`].
    pub duplicate_on_page_rate: Option<f64>,
    /// See [`FaultSettings::missing_entries_rate`].
    pub missing_entries_rate: Option<f64>,
    /// See [`FaultSettings::latency_ms`].
    pub latency_ms: Option<u64>,
    /// See [`FaultSettings::fragile`].
    pub fragile: Option<bool>,
    /// See [`FaultSettings::fragile_healthy_rate`] (at least 0.1).
    pub fragile_healthy_rate: Option<f64>,
}

impl FaultUpdate {
    /// Applies the update; rates are clamped to 0…1 (NaN counts as 0). A
    /// profile resets the dice's rates but keeps the load model.
    pub fn apply(&self, settings: &mut FaultSettings) {
        if let Some(profile) = self.profile {
            *settings = FaultSettings {
                latency_ms: settings.latency_ms,
                fragile: settings.fragile,
                fragile_healthy_rate: settings.fragile_healthy_rate,
                ..FaultSettings::for_profile(profile)
            };
        }
        let rate = |value: f64| {
            if value.is_nan() {
                0.0
            } else {
                value.clamp(0.0, 1.0)
            }
        };
        let fields = [
            (
                self.gateway_timeout_rate,
                &mut settings.gateway_timeout_rate,
            ),
            (self.unavailable_rate, &mut settings.unavailable_rate),
            (self.server_error_rate, &mut settings.server_error_rate),
            (self.slow_rate, &mut settings.slow_rate),
            (
                self.duplicate_on_page_rate,
                &mut settings.duplicate_on_page_rate,
            ),
            (
                self.missing_entries_rate,
                &mut settings.missing_entries_rate,
            ),
        ];
        for (value, field) in fields {
            if let Some(value) = value {
                *field = rate(value);
            }
        }
        if let Some(delay) = self.slow_delay_ms {
            settings.slow_delay_ms = delay;
        }
        self.apply_load(settings);
    }

    fn apply_load(&self, settings: &mut FaultSettings) {
        if let Some(latency) = self.latency_ms {
            settings.latency_ms = latency;
        }
        if let Some(fragile) = self.fragile {
            settings.fragile = fragile;
        }
        if let Some(healthy) = self.fragile_healthy_rate {
            settings.fragile_healthy_rate = if healthy.is_nan() {
                DEFAULT_HEALTHY_RATE
            } else {
                healthy.max(0.1)
            };
        }
    }
}

/// What a request suffers before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 504, empty body.
    GatewayTimeout,
    /// 503, empty body.
    Unavailable,
    /// 500 with the web service's generic JSON message.
    ServerError,
}

/// Fault settings and the seeded dice.
pub(crate) struct Faults {
    /// The rates in force.
    pub(crate) settings: FaultSettings,
    /// Seeded from the sandbox seed so a run's faults repeat.
    dice: ChaCha8Rng,
    /// Arrival instants per link name within [`LOAD_WINDOW`], while fragile:
    /// the request rate each installation sees.
    arrivals: HashMap<String, VecDeque<Instant>>,
}

/// What the dice decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Roll {
    /// The failure it answers with, if any.
    pub(crate) failure: Option<Failure>,
    /// How long the answer takes (latency, plus the slow delay if slow).
    pub(crate) delay: Duration,
}

impl Faults {
    pub(crate) fn new(profile: FaultProfile, seed: u64) -> Faults {
        Faults {
            settings: FaultSettings::for_profile(profile),
            dice: ChaCha8Rng::seed_from_u64(seed ^ 0x6661_756c_7473),
            arrivals: HashMap::new(),
        }
    }

    /// The dice for a request to installation `link` arriving at `now`:
    /// whether it fails and how long its answer takes.
    pub(crate) fn roll_request(&mut self, link: &str, now: Instant) -> Roll {
        let overloaded = self.settings.fragile && self.roll_overload(link, now);
        let (failure, slow) = self.roll_dice();
        let latency = Duration::from_millis(self.settings.latency_ms);
        Roll {
            failure: if overloaded {
                Some(Failure::GatewayTimeout)
            } else {
                failure
            },
            delay: latency + slow.unwrap_or_default(),
        }
    }

    /// Counts the arrival and rolls whether the load makes it a 504.
    fn roll_overload(&mut self, link: &str, now: Instant) -> bool {
        let rate = self.arrival_rate(link, now);
        let share = overload_share(rate, self.settings.fragile_healthy_rate);
        share > 0.0 && self.dice.random::<f64>() < share
    }

    /// Records an arrival at `link` and returns the requests per second
    /// over the window that ends with it.
    fn arrival_rate(&mut self, link: &str, now: Instant) -> f64 {
        let arrivals = self.arrivals.entry(link.to_owned()).or_default();
        while arrivals
            .front()
            .is_some_and(|first| now.saturating_duration_since(*first) >= LOAD_WINDOW)
        {
            arrivals.pop_front();
        }
        arrivals.push_back(now);
        arrivals.len() as f64 / LOAD_WINDOW.as_secs_f64()
    }

    /// Whether the request fails, and whether it is slow.
    fn roll_dice(&mut self) -> (Option<Failure>, Option<Duration>) {
        let s = &self.settings;
        let roll: f64 = self.dice.random();
        let failure = if roll < s.gateway_timeout_rate {
            Some(Failure::GatewayTimeout)
        } else if roll < s.gateway_timeout_rate + s.unavailable_rate {
            Some(Failure::Unavailable)
        } else if roll < s.gateway_timeout_rate + s.unavailable_rate + s.server_error_rate {
            Some(Failure::ServerError)
        } else {
            None
        };
        let slow_roll: f64 = self.dice.random();
        let slow = (slow_roll < self.settings.slow_rate)
            .then(|| Duration::from_millis(self.settings.slow_delay_ms));
        (failure, slow)
    }

    /// Whether this page repeats the last record of the previous one.
    pub(crate) fn roll_duplicate(&mut self) -> bool {
        let roll: f64 = self.dice.random();
        roll < self.settings.duplicate_on_page_rate
    }

    /// Which of `count` lines a `DocumentEntries` answer leaves out: a
    /// windowed ask (`begin`/`end`) may omit some, as the server-side
    /// filtering gaps seen in production did, every time the dice say so;
    /// an unwindowed ask for the patient returns every line
    /// (`reference/ivoris.md`).
    pub(crate) fn omitted_entries(&mut self, windowed: bool, count: usize) -> Vec<bool> {
        let mut omitted = vec![false; count];
        if !windowed || count == 0 {
            return omitted;
        }
        let roll: f64 = self.dice.random();
        if roll >= self.settings.missing_entries_rate {
            return omitted;
        }
        for flag in omitted.iter_mut() {
            *flag = self.dice.random_bool(0.4);
        }
        if !omitted.contains(&true) {
            let index = self.dice.random_range(0..count);
            omitted[index] = true;
        }
        omitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_start_from_a_profile_and_clamp_rates() {
        let mut settings = FaultSettings::for_profile(FaultProfile::None);
        let update = FaultUpdate {
            profile: Some(FaultProfile::Hostile),
            server_error_rate: Some(7.0),
            slow_rate: Some(f64::NAN),
            slow_delay_ms: Some(50),
            ..FaultUpdate::default()
        };
        update.apply(&mut settings);
        assert_eq!(settings.server_error_rate, 1.0);
        assert_eq!(settings.slow_rate, 0.0);
        assert_eq!(settings.slow_delay_ms, 50);
        assert_eq!(
            settings.gateway_timeout_rate,
            FaultSettings::for_profile(FaultProfile::Hostile).gateway_timeout_rate
        );
    }

    #[test]
    fn a_profile_keeps_the_load_model() {
        let mut settings = FaultSettings::for_profile(FaultProfile::None);
        FaultUpdate {
            latency_ms: Some(5),
            fragile: Some(true),
            fragile_healthy_rate: Some(0.0),
            ..FaultUpdate::default()
        }
        .apply(&mut settings);
        assert_eq!(settings.fragile_healthy_rate, 0.1, "at least 0.1");
        FaultUpdate {
            profile: Some(FaultProfile::Flaky),
            ..FaultUpdate::default()
        }
        .apply(&mut settings);
        assert!(settings.fragile && settings.latency_ms == 5);
        assert_eq!(settings.server_error_rate, 0.01);
    }

    #[test]
    fn the_overload_curve_is_flat_up_to_the_healthy_rate_then_steep() {
        for (rate, share) in [
            (0.0, 0.0),
            (20.0, 0.0),
            (22.0, 0.1),
            (30.0, 0.5),
            (39.0, 0.95),
            (400.0, 0.95),
        ] {
            let got = overload_share(rate, 20.0);
            assert!((got - share).abs() < 1e-9, "{rate}: {got}");
        }
        assert_eq!(overload_share(f64::NAN, 20.0), 0.0);
    }

    /// The share of 504s when `link` is asked `rate` times per second for
    /// ten simulated seconds.
    fn share_at(faults: &mut Faults, link: &str, rate: f64, start: Instant) -> f64 {
        let requests = (rate * 10.0) as u32;
        let gap = Duration::from_secs_f64(1.0 / rate);
        let failed = (0..requests)
            .filter(|i| {
                let roll = faults.roll_request(link, start + gap * *i);
                roll.failure == Some(Failure::GatewayTimeout)
            })
            .count();
        f64::from(failed as u32) / f64::from(requests)
    }

    #[test]
    fn the_fragile_server_fails_more_the_faster_one_installation_is_asked() {
        let mut faults = Faults::new(FaultProfile::None, 5);
        faults.settings.fragile = true;
        faults.settings.fragile_healthy_rate = 20.0;
        let start = Instant::now();
        let mut shares = Vec::new();
        for (i, rate) in [5.0, 19.0, 22.0, 26.0, 31.0, 38.0].into_iter().enumerate() {
            // Each rate on its own installation, so the windows do not mix.
            shares.push(share_at(&mut faults, &format!("link-{i}"), rate, start));
        }
        assert_eq!(shares[0], 0.0, "{shares:?}");
        assert_eq!(shares[1], 0.0, "{shares:?}");
        for pair in shares[1..].windows(2) {
            assert!(pair[1] > pair[0], "rises with the rate: {shares:?}");
        }
        // Expected 55 % at 31/s and 90 % at 38/s (a little less while the
        // first second fills the window).
        assert!(shares[4] > 0.35 && shares[4] < 0.75, "{shares:?}");
        assert!(shares[5] > 0.75, "{shares:?}");
    }

    #[test]
    fn one_busy_installation_does_not_overload_another() {
        let mut faults = Faults::new(FaultProfile::None, 6);
        faults.settings.fragile = true;
        faults.settings.fragile_healthy_rate = 10.0;
        let start = Instant::now();
        let gap = Duration::from_millis(5);
        let mut quiet_failures = 0;
        for i in 0..2000u32 {
            faults.roll_request("busy", start + gap * i);
            if i % 40 == 0 {
                let roll = faults.roll_request("quiet", start + gap * i);
                quiet_failures += u32::from(roll.failure.is_some());
            }
        }
        assert_eq!(quiet_failures, 0);
    }

    #[test]
    fn latency_delays_every_answer_and_adds_to_a_slow_one() {
        let mut faults = Faults::new(FaultProfile::None, 7);
        faults.settings.latency_ms = 5;
        let now = Instant::now();
        assert_eq!(
            faults.roll_request("l", now).delay,
            Duration::from_millis(5)
        );
        faults.settings.slow_rate = 1.0;
        faults.settings.slow_delay_ms = 100;
        assert_eq!(
            faults.roll_request("l", now).delay,
            Duration::from_millis(105)
        );
    }

    #[test]
    fn entries_are_only_missing_from_windowed_asks() {
        let mut faults = Faults::new(FaultProfile::None, 1);
        faults.settings.missing_entries_rate = 1.0;
        for _ in 0..5 {
            assert!(faults.omitted_entries(true, 5).contains(&true));
            assert!(!faults.omitted_entries(false, 5).contains(&true));
        }
        assert!(faults.omitted_entries(true, 0).is_empty());
        faults.settings.missing_entries_rate = 0.0;
        assert!(!faults.omitted_entries(true, 5).contains(&true));
    }
}
