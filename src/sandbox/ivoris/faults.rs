//! The faults the simulated Ivoris injects: gateway timeouts and empty 503s
//! from the relay, the generic 500 of the web service, slow answers, a
//! record repeated on two consecutive patient pages, and billing lines
//! missing from windowed asks. Rates come from the fault profile and can be
//! changed per kind at runtime; the dice are seeded, so a run is repeatable.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::sandbox::FaultProfile;

/// Slow answers take this long unless configured otherwise: longer than the
/// 20 s integrators use as a timeout, as seen in the field.
pub const DEFAULT_SLOW_DELAY_MS: u64 = 25_000;

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
}

impl FaultUpdate {
    /// Applies the update; rates are clamped to 0…1 (NaN counts as 0).
    pub fn apply(&self, settings: &mut FaultSettings) {
        if let Some(profile) = self.profile {
            *settings = FaultSettings::for_profile(profile);
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
}

impl Faults {
    pub(crate) fn new(profile: FaultProfile, seed: u64) -> Faults {
        Faults {
            settings: FaultSettings::for_profile(profile),
            dice: ChaCha8Rng::seed_from_u64(seed ^ 0x6661_756c_7473),
        }
    }

    /// Whether the request fails, and whether it is slow.
    pub(crate) fn roll_request(&mut self) -> (Option<Failure>, Option<Duration>) {
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
