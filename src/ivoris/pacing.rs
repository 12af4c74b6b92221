//! Pacing of one Ivoris installation: how soon the next request may start.
//!
//! A fixed pause between requests is either too slow (an idle server waits
//! for nothing) or too fast (a struggling one is pushed over). The adaptive
//! [`Pacer`] learns the rate instead, as TCP does: it allows a number of
//! requests per second, lowers it multiplicatively when an answer shows
//! overload (502/503/504, a 500, 429, a timeout, a broken connection, or a
//! latency well above the smoothed baseline) and raises it additively while
//! answers come back healthy — faster at first ("slow start": ×1.1
//! per answer, until the first sign of overload), then by
//! [`PacingPolicy::increase_per_second`]. It only raises the rate while the
//! rate is what holds requests back, so a client busy with other work does
//! not talk itself into a rate it never tried. A practice may set a ceiling
//! that is never exceeded.
//!
//! The pacer is pure logic: every call takes `now`, so tests drive it with
//! any clock. The client keeps one request in flight per installation and
//! asks the pacer when the next may start; retries, backoff and the circuit
//! breaker act on top of it.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// How an adaptive pacer behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacingPolicy {
    /// Requests per second before anything is known; the fixed 100 ms
    /// pause of earlier versions allowed about 10.
    pub initial_rate: f64,
    /// Never slower than this, so a struggling server is still asked now
    /// and then (retries and the breaker handle a server that is down).
    pub min_rate: f64,
    /// The practice's ceiling in requests per second (`None`: no ceiling).
    pub ceiling: Option<f64>,
    /// After the first slowdown, healthy answers raise the rate by this
    /// much per second.
    pub increase_per_second: f64,
    /// A slowdown multiplies the rate by this factor (0 < factor < 1).
    pub decrease_factor: f64,
    /// An answer slower than this multiple of the baseline latency…
    pub latency_factor: f64,
    /// …and at least this much slower than the baseline is a sign of
    /// overload; small absolute jitter of a fast server is not.
    pub latency_slack: Duration,
    /// Signs of overload within this time after a slowdown belong to the
    /// same overload (the server is still working off the load that
    /// caused it) and do not slow down again.
    pub calm_down: Duration,
}

impl Default for PacingPolicy {
    fn default() -> Self {
        PacingPolicy {
            initial_rate: 10.0,
            min_rate: 0.5,
            ceiling: None,
            increase_per_second: 2.0,
            decrease_factor: 0.5,
            latency_factor: 3.0,
            latency_slack: Duration::from_millis(200),
            calm_down: Duration::from_secs(1),
        }
    }
}

impl PacingPolicy {
    /// The default policy under a practice's ceiling (requests per second;
    /// `None` or 0: no ceiling), as the settings give it.
    pub fn with_ceiling(ceiling: Option<u32>) -> PacingPolicy {
        PacingPolicy {
            ceiling: ceiling.filter(|c| *c > 0).map(f64::from),
            ..PacingPolicy::default()
        }
    }

    /// `rate` within the floor and the ceiling.
    fn clamp(&self, rate: f64) -> f64 {
        let ceiling = self.ceiling.unwrap_or(f64::INFINITY);
        let floor = self.min_rate.min(ceiling).max(f64::MIN_POSITIVE);
        if rate.is_nan() {
            return floor;
        }
        rate.clamp(floor, ceiling.max(floor))
    }
}

/// How a client spaces the requests to one installation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Learn the rate from the answers (what the sync uses).
    Adaptive(PacingPolicy),
    /// A fixed pause after every answer; zero means as fast as answers
    /// come. For comparisons and tests.
    FixedPause(Duration),
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing::Adaptive(PacingPolicy::default())
    }
}

/// A sign of overload in an answer, or the lack of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered (a refusal like 401 or 404 is an answer too).
    Answered {
        /// From sending the request to the end of the answer.
        latency: Duration,
    },
    /// The server answered with this 5xx or 429 status.
    Status(u16),
    /// No answer within the timeout.
    Timeout,
    /// The connection failed or broke.
    Connection,
}

/// Why the pacer slowed down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A 5xx or 429 answer.
    Status(u16),
    /// No answer within the timeout.
    Timeout,
    /// The connection failed or broke.
    Connection,
    /// An answer far slower than the baseline.
    Latency {
        /// The slow answer's latency.
        latency: Duration,
        /// The smoothed latency before it.
        baseline: Duration,
    },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Status(status) => write!(f, "status {status}"),
            Cause::Timeout => f.write_str("timeout"),
            Cause::Connection => f.write_str("connection"),
            Cause::Latency { latency, baseline } => write!(
                f,
                "latency {} ms over a baseline of {} ms",
                latency.as_millis(),
                baseline.as_millis()
            ),
        }
    }
}

/// A slowdown, for the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slowdown {
    /// Requests per second allowed before.
    pub from: f64,
    /// Requests per second allowed now.
    pub to: f64,
    /// What showed the overload.
    pub cause: Cause,
}

/// What the pacer allows now, for the engine to show or log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceReport {
    /// Requests per second allowed now; `None` under a fixed pause.
    pub requests_per_second: Option<f64>,
    /// Slowdowns so far.
    pub slowdowns: u64,
    /// Smoothed latency of healthy answers, once one came.
    pub latency_baseline: Option<Duration>,
}

/// Growth of the rate per healthy answer during the slow start (×1.1).
const SLOW_START_GROWTH: f64 = 0.1;

/// Weight of a new latency in the smoothed baseline (as TCP's SRTT).
const BASELINE_WEIGHT: f64 = 0.125;

/// The adaptive state: additive increase, multiplicative decrease.
#[derive(Debug, Clone)]
struct Aimd {
    /// The rules it follows.
    policy: PacingPolicy,
    /// Requests per second allowed now.
    rate: f64,
    /// Until the first slowdown the rate grows by one per answer.
    slow_start: bool,
    /// Start of the latest request: the next starts one interval later.
    last_start: Option<Instant>,
    /// Whether the latest request had to wait for its start, i.e. the rate
    /// is what limits the client; only then may the rate grow.
    held_back: bool,
    /// Smoothed latency of healthy answers.
    baseline: Option<Duration>,
    /// Signs of overload before this belong to the latest slowdown.
    calm_until: Option<Instant>,
    /// Slowdowns so far.
    slowdowns: u64,
}

impl Aimd {
    fn new(policy: PacingPolicy) -> Aimd {
        Aimd {
            rate: policy.clamp(policy.initial_rate),
            policy,
            slow_start: true,
            last_start: None,
            held_back: false,
            baseline: None,
            calm_until: None,
            slowdowns: 0,
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate)
    }

    fn reserve(&mut self, now: Instant) -> Instant {
        let start = self
            .last_start
            .map_or(now, |last| (last + self.interval()).max(now));
        self.held_back = start > now;
        self.last_start = Some(start);
        start
    }

    fn answered(&mut self, now: Instant, outcome: Outcome) -> Option<Slowdown> {
        let cause = match outcome {
            Outcome::Answered { latency } => match self.latency_risen(latency) {
                Some(cause) => cause,
                None => {
                    self.speed_up();
                    return None;
                }
            },
            Outcome::Status(status) => Cause::Status(status),
            Outcome::Timeout => Cause::Timeout,
            Outcome::Connection => Cause::Connection,
        };
        self.slow_down(now, cause)
    }

    /// Folds `latency` into the baseline; the cause when it rose too far.
    fn latency_risen(&mut self, latency: Duration) -> Option<Cause> {
        let Some(baseline) = self.baseline else {
            self.baseline = Some(latency);
            return None;
        };
        let smoothed = baseline.as_secs_f64()
            + BASELINE_WEIGHT * (latency.as_secs_f64() - baseline.as_secs_f64());
        self.baseline = Some(Duration::from_secs_f64(smoothed.max(0.0)));
        let risen = latency > baseline.mul_f64(self.policy.latency_factor)
            && latency > baseline + self.policy.latency_slack;
        risen.then_some(Cause::Latency { latency, baseline })
    }

    fn speed_up(&mut self) {
        if !self.held_back {
            return;
        }
        let step = if self.slow_start {
            // Exponential until the first sign of overload: the rate
            // doubles about every seven answers, so even a short run (a
            // re-sync of a few hundred asks) reaches an idle server's pace
            // within its first second.
            self.rate * SLOW_START_GROWTH
        } else {
            // Per answer at `rate` answers per second: `increase` per second.
            self.policy.increase_per_second / self.rate
        };
        self.rate = self.policy.clamp(self.rate + step);
    }

    fn slow_down(&mut self, now: Instant, cause: Cause) -> Option<Slowdown> {
        self.slow_start = false;
        if self.calm_until.is_some_and(|until| now < until) {
            return None;
        }
        let from = self.rate;
        self.rate = self.policy.clamp(from * self.policy.decrease_factor);
        self.calm_until = Some(now + self.policy.calm_down);
        self.slowdowns += 1;
        Some(Slowdown {
            from,
            to: self.rate,
            cause,
        })
    }
}

/// The pacing state of one installation.
#[derive(Debug, Clone)]
enum State {
    /// Learns the rate.
    Adaptive(Aimd),
    /// Waits a fixed pause after every answer.
    Fixed {
        /// The pause.
        pause: Duration,
        /// End of the latest answer.
        last_answer: Option<Instant>,
    },
}

/// Decides when the next request to one installation may start. The
/// caller keeps one request in flight: [`Pacer::reserve`] before it,
/// [`Pacer::answered`] after it.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Adaptive or fixed, with its state.
    state: State,
}

impl Pacer {
    /// A pacer that knows nothing yet.
    pub fn new(pacing: Pacing) -> Pacer {
        let state = match pacing {
            Pacing::Adaptive(policy) => State::Adaptive(Aimd::new(policy)),
            Pacing::FixedPause(pause) => State::Fixed {
                pause,
                last_answer: None,
            },
        };
        Pacer { state }
    }

    /// Reserves the start of the next request: returns when it may start
    /// (`now` or later); the request is then taken to start at that instant.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        match &mut self.state {
            State::Adaptive(aimd) => aimd.reserve(now),
            State::Fixed { pause, last_answer } => {
                last_answer.map_or(now, |last| (last + *pause).max(now))
            }
        }
    }

    /// Records how the request went, at `now` (the end of the answer);
    /// returns the slowdown when this answer caused one.
    pub fn answered(&mut self, now: Instant, outcome: Outcome) -> Option<Slowdown> {
        match &mut self.state {
            State::Adaptive(aimd) => aimd.answered(now, outcome),
            State::Fixed { last_answer, .. } => {
                *last_answer = Some(now);
                None
            }
        }
    }

    /// What the pacer allows now.
    pub fn report(&self) -> PaceReport {
        match &self.state {
            State::Adaptive(aimd) => PaceReport {
                requests_per_second: Some(aimd.rate),
                slowdowns: aimd.slowdowns,
                latency_baseline: aimd.baseline,
            },
            State::Fixed { .. } => PaceReport {
                requests_per_second: None,
                slowdowns: 0,
                latency_baseline: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A client that sends request after request with answers taking
    /// `latency`, on a clock of its own.
    struct Drive {
        pacer: Pacer,
        now: Instant,
    }

    impl Drive {
        fn new(policy: PacingPolicy) -> Drive {
            Drive {
                pacer: Pacer::new(Pacing::Adaptive(policy)),
                now: Instant::now(),
            }
        }

        /// One request: wait for its start, then the outcome after `latency`.
        fn request(&mut self, latency: Duration, outcome: Outcome) -> Option<Slowdown> {
            self.now = self.pacer.reserve(self.now);
            self.now += latency;
            self.pacer.answered(self.now, outcome)
        }

        fn healthy(&mut self, latency: Duration, count: usize) {
            for _ in 0..count {
                self.request(latency, Outcome::Answered { latency });
            }
        }

        fn rate(&self) -> f64 {
            self.pacer.report().requests_per_second.unwrap_or(f64::NAN)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn starts_at_the_initial_rate_and_spaces_starts_by_the_interval() {
        let mut pacer = Pacer::new(Pacing::default());
        let start = Instant::now();
        assert_eq!(
            pacer.reserve(start),
            start,
            "the first request goes at once"
        );
        let next = pacer.reserve(start + MS);
        assert_eq!(next, start + Duration::from_millis(100), "10 requests/s");
        tokio::time::sleep_until(next).await;
        assert_eq!(
            Instant::now(),
            next,
            "paused time reaches the start exactly"
        );
    }

    #[test]
    fn slow_start_doubles_within_about_a_second_of_healthy_answers() {
        let mut drive = Drive::new(PacingPolicy::default());
        let started = drive.now;
        drive.healthy(5 * MS, 20);
        assert!(drive.rate() >= 29.0, "{}", drive.rate());
        assert!(drive.now - started < Duration::from_secs(2));
    }

    #[test]
    fn backs_off_multiplicatively_on_each_overload_outside_the_calm_down() {
        let mut drive = Drive::new(PacingPolicy {
            initial_rate: 40.0,
            ..PacingPolicy::default()
        });
        for outcome in [Outcome::Status(504), Outcome::Timeout, Outcome::Connection] {
            let before = drive.rate();
            let slowdown = drive.request(5 * MS, outcome).expect("slows down");
            assert_eq!(slowdown.from, before);
            assert_eq!(drive.rate(), before / 2.0, "{outcome:?}");
            drive.now += Duration::from_secs(1);
        }
        assert_eq!(drive.rate(), 5.0);
        assert_eq!(drive.pacer.report().slowdowns, 3);
    }

    #[test]
    fn overloads_within_the_calm_down_count_once() {
        let mut drive = Drive::new(PacingPolicy {
            initial_rate: 40.0,
            ..PacingPolicy::default()
        });
        assert!(drive.request(5 * MS, Outcome::Status(504)).is_some());
        assert!(drive.request(5 * MS, Outcome::Status(503)).is_none());
        assert!(drive.request(5 * MS, Outcome::Status(500)).is_none());
        assert_eq!(drive.rate(), 20.0);
        drive.now += Duration::from_secs(1);
        assert!(drive.request(5 * MS, Outcome::Status(504)).is_some());
        assert_eq!(drive.rate(), 10.0);
    }

    #[test]
    fn never_slower_than_the_floor() {
        let mut drive = Drive::new(PacingPolicy::default());
        for _ in 0..20 {
            drive.request(5 * MS, Outcome::Status(504));
            drive.now += Duration::from_secs(2);
        }
        assert_eq!(drive.rate(), PacingPolicy::default().min_rate);
    }

    #[test]
    fn recovers_additively_after_a_slowdown() {
        let mut drive = Drive::new(PacingPolicy {
            initial_rate: 40.0,
            ..PacingPolicy::default()
        });
        drive.request(5 * MS, Outcome::Status(504));
        assert_eq!(drive.rate(), 20.0);
        let from = drive.now;
        drive.healthy(5 * MS, 200);
        let seconds = (drive.now - from).as_secs_f64();
        let gained = drive.rate() - 20.0;
        // About `increase_per_second` per second of healthy answers: linear,
        // not the doubling of the slow start.
        let expected = PacingPolicy::default().increase_per_second * seconds;
        assert!(
            (gained - expected).abs() < 0.15 * expected,
            "gained {gained:.2} in {seconds:.2} s, expected about {expected:.2}"
        );
        assert!(drive.rate() < 40.0, "{}", drive.rate());
    }

    #[test]
    fn does_not_grow_while_something_else_limits_the_client() {
        let mut drive = Drive::new(PacingPolicy::default());
        for _ in 0..100 {
            // The caller spends 500 ms on each answer before asking again:
            // slower than the 10/s allowed, so the rate never held it back.
            drive.request(5 * MS, Outcome::Answered { latency: 5 * MS });
            drive.now += Duration::from_millis(500);
        }
        assert_eq!(drive.rate(), 10.0);
    }

    #[test]
    fn never_exceeds_the_ceiling() {
        let mut drive = Drive::new(PacingPolicy::with_ceiling(Some(4)));
        assert_eq!(drive.rate(), 4.0, "the initial rate is capped too");
        let from = drive.now;
        let mut starts = Vec::new();
        for _ in 0..400 {
            drive.request(MS, Outcome::Answered { latency: MS });
            starts.push(drive.now - MS);
        }
        assert_eq!(drive.rate(), 4.0);
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(250));
        }
        let ten_seconds = from + Duration::from_secs(10);
        let counted = starts.iter().filter(|s| **s < ten_seconds).count();
        assert_eq!(counted, 40, "4 per second over ten simulated seconds");
    }

    #[test]
    fn a_zero_ceiling_means_none() {
        assert_eq!(PacingPolicy::with_ceiling(Some(0)).ceiling, None);
        assert_eq!(PacingPolicy::with_ceiling(None).ceiling, None);
    }

    #[test]
    fn reacts_to_a_latency_well_above_the_baseline() {
        let mut drive = Drive::new(PacingPolicy {
            initial_rate: 4.0,
            ..PacingPolicy::default()
        });
        drive.healthy(100 * MS, 30);
        let baseline = drive.pacer.report().latency_baseline.expect("baseline");
        assert_eq!(baseline, 100 * MS);
        let before = drive.rate();
        // Twice as slow is jitter; five times as slow is overload.
        let latency = 200 * MS;
        assert!(
            drive
                .request(latency, Outcome::Answered { latency })
                .is_none()
        );
        drive.healthy(100 * MS, 30);
        let before_spike = drive.rate();
        assert!(before_spike >= before);
        let latency = 500 * MS;
        let slowdown = drive
            .request(latency, Outcome::Answered { latency })
            .expect("slows down");
        assert!(matches!(slowdown.cause, Cause::Latency { .. }));
        assert_eq!(drive.rate(), before_spike / 2.0);
        assert!(slowdown.cause.to_string().contains("latency 500 ms"));
    }

    #[test]
    fn a_few_milliseconds_of_jitter_on_a_fast_server_are_no_overload() {
        let mut drive = Drive::new(PacingPolicy::default());
        drive.healthy(2 * MS, 50);
        let latency = 40 * MS;
        assert!(
            drive
                .request(latency, Outcome::Answered { latency })
                .is_none()
        );
    }

    #[test]
    fn a_fixed_pause_waits_after_every_answer() {
        let mut pacer = Pacer::new(Pacing::FixedPause(Duration::from_millis(100)));
        let start = Instant::now();
        assert_eq!(pacer.reserve(start), start);
        let answered = start + Duration::from_millis(30);
        pacer.answered(answered, Outcome::Status(504));
        assert_eq!(
            pacer.reserve(answered),
            answered + Duration::from_millis(100)
        );
        assert_eq!(pacer.report().requests_per_second, None);
    }
}
