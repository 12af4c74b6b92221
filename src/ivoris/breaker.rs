//! Circuit breaker of one Ivoris installation.
//!
//! An Ivoris server that fails request after request (even after retries)
//! is usually down or overloaded; hammering it makes it worse and makes the
//! sync hang for minutes. After a number of consecutive failed requests the
//! breaker opens: calls fail at once until a cool-down has passed, then one
//! trial request decides whether it closes again or stays open.

use std::time::Duration;

use tokio::time::Instant;

/// What the breaker currently lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests go through.
    Closed,
    /// Requests fail at once until the instant has passed.
    Open {
        /// End of the cool-down.
        until: Instant,
    },
    /// The cool-down has passed; the next request is a trial.
    HalfOpen,
}

/// Counts consecutive failures and opens after `threshold` of them.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    /// Consecutive failed requests that open the breaker.
    threshold: u32,
    /// How long an open breaker refuses requests.
    cool_down: Duration,
    /// Failed requests since the last success.
    consecutive_failures: u32,
    /// End of the current cool-down, while open.
    open_until: Option<Instant>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(threshold: u32, cool_down: Duration) -> CircuitBreaker {
        CircuitBreaker {
            threshold: threshold.max(1),
            cool_down,
            consecutive_failures: 0,
            open_until: None,
        }
    }

    /// The state at `now`.
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.open_until {
            Some(until) if now < until => BreakerState::Open { until },
            Some(_) => BreakerState::HalfOpen,
            None => BreakerState::Closed,
        }
    }

    /// Records a successful request: the breaker closes.
    pub fn success(&mut self) {
        self.consecutive_failures = 0;
        self.open_until = None;
    }

    /// Records a failed request; returns the end of the cool-down when this
    /// failure opened (or re-opened) the breaker.
    pub fn failure(&mut self, now: Instant) -> Option<Instant> {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let trial_failed = self.open_until.is_some();
        if trial_failed || self.consecutive_failures >= self.threshold {
            let until = now + self.cool_down;
            self.open_until = Some(until);
            Some(until)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_half_opens_after_the_cool_down() {
        let start = Instant::now();
        let mut breaker = CircuitBreaker::new(3, Duration::from_secs(60));
        assert_eq!(breaker.failure(start), None);
        assert_eq!(breaker.failure(start), None);
        let until = breaker.failure(start);
        assert_eq!(until, Some(start + Duration::from_secs(60)));
        assert!(matches!(breaker.state(start), BreakerState::Open { .. }));
        let later = start + Duration::from_secs(61);
        assert_eq!(breaker.state(later), BreakerState::HalfOpen);
        assert!(breaker.failure(later).is_some(), "a failed trial re-opens");
        breaker.success();
        assert_eq!(breaker.state(later), BreakerState::Closed);
    }

    #[test]
    fn a_success_resets_the_count() {
        let now = Instant::now();
        let mut breaker = CircuitBreaker::new(2, Duration::from_secs(1));
        assert_eq!(breaker.failure(now), None);
        breaker.success();
        assert_eq!(breaker.failure(now), None);
        assert_eq!(breaker.state(now), BreakerState::Closed);
    }
}
