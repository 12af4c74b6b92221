//! The simulated clock and HubSpot's three rate limits: the rolling
//! 10-second window per app, the daily budget per account and the separate
//! search limiter (about five requests per second).
//!
//! Requests refused with a 429 do not consume any budget: the refusal is
//! decided before the request is counted, so a client that backs off
//! correctly gets its full allowance once the window has moved on.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::lock;

/// Tokio's clock plus an offset tests can move forward, so windows and the
/// index lag can be crossed without sleeping (and without pausing tokio's
/// clock, which would also fire the HTTP client's own timers).
#[derive(Debug)]
pub struct Clock {
    /// Tokio instant when the simulation started; wall time is derived from it.
    started: Instant,
    /// Wall time at `started`.
    started_wall: DateTime<Utc>,
    /// Milliseconds added by `advance`.
    offset_ms: AtomicU64,
}

/// Upper bound of `Clock::advance` in total.
const MAX_OFFSET_MS: u64 = 10 * 365 * 24 * 3_600_000;

impl Clock {
    pub fn new() -> Clock {
        Clock {
            started: Instant::now(),
            started_wall: Utc::now(),
            offset_ms: AtomicU64::new(0),
        }
    }

    pub fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Wall time consistent with `now`, for `createdAt` and friends.
    pub fn wall(&self) -> DateTime<Utc> {
        let elapsed = self.now().saturating_duration_since(self.started);
        self.started_wall + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    /// Moves time forward; the total offset is capped (ten years) so
    /// instants and wall times can never overflow.
    pub fn advance(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |offset| {
                Some(offset.saturating_add(millis).min(MAX_OFFSET_MS))
            });
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TenSecondly,
    Daily,
    Search,
}

/// The rate-limit headers of an admitted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `X-HubSpot-RateLimit-Max`: size of the ten-second window.
    pub max: u32,
    /// `X-HubSpot-RateLimit-Remaining` in the current window.
    pub remaining: u32,
    /// `X-HubSpot-RateLimit-Daily`.
    pub daily: u32,
    /// `X-HubSpot-RateLimit-Daily-Remaining`.
    pub daily_remaining: u32,
}

/// The ten-second window is a sliding log: at most `per_ten_seconds`
/// timestamps, so checking it is cheap.
#[derive(Debug)]
struct Windows {
    /// Admission times within the last ten seconds (app-wide).
    ten_seconds: VecDeque<Instant>,
    /// Admission times of search requests within the last second.
    search: VecDeque<Instant>,
    /// Requests counted against today's budget.
    daily_used: u64,
}

/// The limiter shared by all requests.
#[derive(Debug)]
pub struct RateLimiter {
    /// Requests per rolling ten seconds (from the tier).
    per_ten_seconds: u32,
    /// Requests per day (from the tier).
    per_day: u32,
    /// Search requests per second per account.
    search_per_second: u32,
    /// The moving state behind one lock.
    windows: Mutex<Windows>,
}

const TEN_SECONDS: Duration = Duration::from_secs(10);
const ONE_SECOND: Duration = Duration::from_secs(1);

impl RateLimiter {
    pub fn new(per_ten_seconds: u32, per_day: u32) -> RateLimiter {
        RateLimiter {
            per_ten_seconds,
            per_day,
            search_per_second: 5,
            windows: Mutex::new(Windows {
                ten_seconds: VecDeque::new(),
                search: VecDeque::new(),
                daily_used: 0,
            }),
        }
    }

    /// Admits or refuses one request at `now`. Search requests go through
    /// their own limiter and the daily budget, not the ten-second window.
    pub fn admit(&self, now: Instant, search: bool) -> Result<Budget, Refusal> {
        let mut windows = lock(&self.windows);
        if windows.daily_used >= u64::from(self.per_day) {
            return Err(Refusal::Daily);
        }
        prune(&mut windows.ten_seconds, now, TEN_SECONDS);
        prune(&mut windows.search, now, ONE_SECOND);
        if search {
            if windows.search.len() >= self.search_per_second as usize {
                return Err(Refusal::Search);
            }
            windows.search.push_back(now);
        } else {
            if windows.ten_seconds.len() >= self.per_ten_seconds as usize {
                return Err(Refusal::TenSecondly);
            }
            windows.ten_seconds.push_back(now);
        }
        windows.daily_used += 1;
        Ok(self.budget(&windows))
    }

    /// The headers a refused ten-second request still carries.
    pub fn current(&self) -> Budget {
        let windows = lock(&self.windows);
        self.budget(&windows)
    }

    fn budget(&self, windows: &Windows) -> Budget {
        let used = u32::try_from(windows.ten_seconds.len()).unwrap_or(u32::MAX);
        let daily_used = u32::try_from(windows.daily_used).unwrap_or(u32::MAX);
        Budget {
            max: self.per_ten_seconds,
            remaining: self.per_ten_seconds.saturating_sub(used),
            daily: self.per_day,
            daily_remaining: self.per_day.saturating_sub(daily_used),
        }
    }

    /// Sets how many requests are left today (tests exhaust or refill it).
    pub fn set_daily_remaining(&self, remaining: u32) {
        let mut windows = lock(&self.windows);
        windows.daily_used = u64::from(self.per_day.saturating_sub(remaining));
    }

    /// Forgets every window and the daily usage.
    pub fn reset(&self) {
        let mut windows = lock(&self.windows);
        windows.ten_seconds.clear();
        windows.search.clear();
        windows.daily_used = 0;
    }
}

fn prune(log: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while let Some(first) = log.front() {
        if now.saturating_duration_since(*first) >= window {
            log.pop_front();
        } else {
            break;
        }
    }
}
