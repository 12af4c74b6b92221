//! HubSpot's rate limits, enforced before a request leaves: the rolling
//! 10-second window per app, the separate search limiter (about five per
//! second) and the portal's daily budget.
//!
//! [`Limiter`] is a plain struct over `tokio::time::Instant`s handed in by
//! the caller, so it is tested without a clock; the client asks it before
//! every send and sleeps for the wait it returns. Both windows are sliding
//! logs of send times, a little longer than HubSpot's (a safety margin), so
//! that differing network delays never make the server count more requests
//! in its window than the limit.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use tokio::time::Instant;

use super::Tier;

/// HubSpot's rolling window.
pub const TEN_SECONDS: Duration = Duration::from_secs(10);
/// The search limiter's window.
pub const ONE_SECOND: Duration = Duration::from_secs(1);
/// Searches HubSpot allows per second and account.
pub const SEARCHES_PER_SECOND: u32 = 5;

/// Which limiter a request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestClass {
    /// Every endpoint except search: the 10-second window.
    Standard,
    /// `…/search`: the search limiter, not the 10-second window.
    Search,
}

/// The limiter's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send now; the send has been recorded.
    Go,
    /// Ask again after this long.
    Wait(Duration),
    /// Today's budget is used up until this moment.
    DailyExhausted(DateTime<Utc>),
}

/// A sliding log of send times: at most `limit` sends in any `span`.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    /// Sends allowed per span.
    limit: u32,
    /// Length of the window, HubSpot's plus the safety margin.
    span: Duration,
    /// Send times still inside the window, oldest first.
    log: VecDeque<Instant>,
    /// No send before this instant (after a 429 or `Retry-After`).
    blocked_until: Option<Instant>,
}

impl SlidingWindow {
    pub fn new(limit: u32, span: Duration) -> SlidingWindow {
        SlidingWindow {
            limit: limit.max(1),
            span,
            log: VecDeque::new(),
            blocked_until: None,
        }
    }

    fn prune(&mut self, now: Instant) {
        while let Some(first) = self.log.front() {
            if now.saturating_duration_since(*first) >= self.span {
                self.log.pop_front();
            } else {
                break;
            }
        }
    }

    /// How long to wait before a send at `now` is allowed (zero: now).
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.prune(now);
        let blocked = self
            .blocked_until
            .map(|until| until.saturating_duration_since(now))
            .unwrap_or_default();
        let full = if self.log.len() >= self.limit as usize {
            let excess = self.log.len() + 1 - self.limit as usize;
            self.log
                .get(excess - 1)
                .map(|oldest| (*oldest + self.span).saturating_duration_since(now))
                .unwrap_or_default()
        } else {
            Duration::ZERO
        };
        blocked.max(full)
    }

    pub fn record(&mut self, now: Instant) {
        self.log.push_back(now);
    }

    /// Blocks sending until `until` (a 429 or `Retry-After`).
    pub fn block_until(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |old| old.max(until)));
    }

    /// When the oldest logged send leaves the window, or a full span from
    /// now when the log is empty (the server counted sends we did not make).
    pub fn frees_at(&mut self, now: Instant) -> Instant {
        self.prune(now);
        if self.log.len() >= self.limit as usize {
            self.log
                .front()
                .map_or(now + self.span, |oldest| *oldest + self.span)
        } else {
            now + self.span
        }
    }

    /// Takes the server's view into account: when it reports fewer sends
    /// left than the log allows (other traffic, or a smaller maximum),
    /// the log is padded with sends at `now`.
    pub fn tighten(&mut self, now: Instant, remaining: u32, max: Option<u32>) {
        if let Some(max) = max
            && max > 0
            && max < self.limit
        {
            self.limit = max;
        }
        self.prune(now);
        let used_by_server = self.limit.saturating_sub(remaining) as usize;
        while self.log.len() < used_by_server {
            self.log.push_back(now);
        }
    }

    pub fn in_window(&self) -> usize {
        self.log.len()
    }

    /// The logged sends as wall-clock times.
    fn sends_at(&mut self, now: Instant, wall: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        self.prune(now);
        self.log
            .iter()
            .map(|at| {
                let ago = chrono::Duration::from_std(now.saturating_duration_since(*at))
                    .unwrap_or_default();
                wall - ago
            })
            .collect()
    }

    /// Logs sends made elsewhere, given as wall-clock times; a send dated
    /// after `wall` (clocks apart) counts as made now.
    fn recall(&mut self, now: Instant, wall: DateTime<Utc>, sends: &[DateTime<Utc>]) {
        let mut instants: Vec<Instant> = sends
            .iter()
            .filter_map(|sent| {
                let ago = (wall - *sent).to_std().unwrap_or(Duration::ZERO);
                now.checked_sub(ago)
            })
            .collect();
        instants.extend(self.log.drain(..));
        instants.sort();
        self.log.extend(instants);
        self.prune(now);
    }
}

/// The portal's requests for today, counted down locally and corrected
/// from `X-HubSpot-RateLimit-Daily-Remaining`.
#[derive(Debug, Clone)]
pub struct DailyBudget {
    /// Requests per day of the tier.
    per_day: u32,
    /// Requests left until `resets_at`.
    remaining: u32,
    /// Next midnight in the portal's time zone.
    resets_at: DateTime<Utc>,
    /// The portal's time zone.
    time_zone: Tz,
}

impl DailyBudget {
    pub fn new(per_day: u32, time_zone: Tz, wall: DateTime<Utc>) -> DailyBudget {
        DailyBudget {
            per_day,
            remaining: per_day,
            resets_at: next_midnight(wall, time_zone),
            time_zone,
        }
    }

    fn roll_over(&mut self, wall: DateTime<Utc>) {
        if wall >= self.resets_at {
            self.remaining = self.per_day;
            self.resets_at = next_midnight(wall, self.time_zone);
        }
    }

    /// Takes one request from the budget, or says when it resets.
    pub fn take(&mut self, wall: DateTime<Utc>) -> Result<(), DateTime<Utc>> {
        self.roll_over(wall);
        if self.remaining == 0 {
            return Err(self.resets_at);
        }
        self.remaining -= 1;
        Ok(())
    }

    /// Gives back a request that was never sent.
    pub fn refund(&mut self) {
        self.remaining = self.remaining.saturating_add(1).min(self.per_day);
    }

    /// The server's count wins: the budget is shared with the portal's other integrations.
    pub fn sync(&mut self, remaining: u32, wall: DateTime<Utc>) {
        self.roll_over(wall);
        self.remaining = remaining;
    }

    /// A DAILY 429: nothing more until the reset.
    pub fn exhaust(&mut self, wall: DateTime<Utc>) -> DateTime<Utc> {
        self.roll_over(wall);
        self.remaining = 0;
        self.resets_at
    }

    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    pub fn resets_at(&self) -> DateTime<Utc> {
        self.resets_at
    }
}

/// The next midnight after `wall` in `time_zone`, in UTC. On a day whose
/// midnight does not exist locally, the first valid instant after it.
pub fn next_midnight(wall: DateTime<Utc>, time_zone: Tz) -> DateTime<Utc> {
    let local = wall.with_timezone(&time_zone).date_naive();
    let tomorrow = local.checked_add_days(Days::new(1)).unwrap_or(local);
    let mut midnight = tomorrow.and_time(NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(at) = time_zone.from_local_datetime(&midnight).earliest() {
            return at.with_timezone(&Utc);
        }
        midnight += chrono::Duration::minutes(30);
    }
    wall + chrono::Duration::days(1)
}

/// Sizes of the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    /// Requests per rolling 10 seconds.
    pub per_ten_seconds: u32,
    /// Searches per second.
    pub searches_per_second: u32,
    /// Requests per day.
    pub per_day: u32,
    /// Added to both windows so differing network delays stay inside the limit.
    pub margin: Duration,
    /// Where the portal's day ends.
    pub time_zone: Tz,
}

impl LimiterConfig {
    pub fn for_tier(tier: Tier, time_zone: Tz) -> LimiterConfig {
        LimiterConfig {
            per_ten_seconds: tier.per_ten_seconds(),
            searches_per_second: SEARCHES_PER_SECOND,
            per_day: tier.per_day(),
            margin: Duration::from_millis(250),
            time_zone,
        }
    }
}

/// All three limits together.
#[derive(Debug, Clone)]
pub struct Limiter {
    /// The 10-second window of standard requests.
    standard: SlidingWindow,
    /// The one-second window of searches.
    search: SlidingWindow,
    /// Today's budget, counting both kinds.
    daily: DailyBudget,
    /// Standard requests sent and not answered yet, by send order.
    in_flight: BTreeSet<u64>,
    /// Number of the next standard request sent.
    next_send: u64,
}

impl Limiter {
    pub fn new(config: LimiterConfig, wall: DateTime<Utc>) -> Limiter {
        Limiter {
            standard: SlidingWindow::new(config.per_ten_seconds, TEN_SECONDS + config.margin),
            search: SlidingWindow::new(config.searches_per_second, ONE_SECOND + config.margin),
            daily: DailyBudget::new(config.per_day, config.time_zone, wall),
            in_flight: BTreeSet::new(),
            next_send: 0,
        }
    }

    /// A standard request admitted with [`Admission::Go`] is on its way;
    /// returns its number for [`Limiter::observe`] and [`Limiter::answered`].
    pub fn dispatched(&mut self) -> u64 {
        let number = self.next_send;
        self.next_send += 1;
        self.in_flight.insert(number);
        number
    }

    /// The request `number` was answered (or given up).
    pub fn answered(&mut self, number: u64) {
        self.in_flight.remove(&number);
    }

    fn window(&mut self, class: RequestClass) -> &mut SlidingWindow {
        match class {
            RequestClass::Standard => &mut self.standard,
            RequestClass::Search => &mut self.search,
        }
    }

    /// Asks to send one request now; on `Go` the send is recorded.
    pub fn admit(&mut self, class: RequestClass, now: Instant, wall: DateTime<Utc>) -> Admission {
        let wait = self.window(class).wait(now);
        if !wait.is_zero() {
            return Admission::Wait(wait);
        }
        if let Err(resets_at) = self.daily.take(wall) {
            return Admission::DailyExhausted(resets_at);
        }
        self.window(class).record(now);
        Admission::Go
    }

    /// Reads the rate headers of the answer to request `number` (each
    /// optional). Requests sent after it and still on their way reached
    /// the server after its count was taken: they are taken off what it
    /// says remains.
    pub fn observe(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        number: Option<u64>,
        remaining: Option<u32>,
        max: Option<u32>,
        daily_remaining: Option<u32>,
    ) {
        if let Some(remaining) = remaining {
            let later = number.map_or(0, |number| {
                self.in_flight.range(number.saturating_add(1)..).count()
            });
            let later = u32::try_from(later).unwrap_or(u32::MAX);
            self.standard
                .tighten(now, remaining.saturating_sub(later), max);
        }
        if let Some(daily) = daily_remaining {
            self.daily.sync(daily, wall);
        }
    }

    /// A 429 of the 10-second window: no standard request until `Retry-After`
    /// has passed, or until the window frees. Returns the pause.
    pub fn ten_secondly_refused(
        &mut self,
        now: Instant,
        retry_after: Option<Duration>,
    ) -> Duration {
        let until = match retry_after {
            Some(after) => now + after,
            None => self.standard.frees_at(now).max(now + ONE_SECOND),
        };
        self.standard.block_until(until);
        until.saturating_duration_since(now)
    }

    /// A 429 of the search limiter: no search for about a second (or `Retry-After`).
    pub fn search_refused(&mut self, now: Instant, retry_after: Option<Duration>) -> Duration {
        let pause = retry_after.unwrap_or(ONE_SECOND);
        self.search.block_until(now + pause);
        pause
    }

    /// A DAILY 429: returns when the budget resets.
    pub fn daily_refused(&mut self, wall: DateTime<Utc>) -> DateTime<Utc> {
        self.daily.exhaust(wall)
    }

    pub fn daily_remaining(&self) -> u32 {
        self.daily.remaining()
    }

    /// The standard sends still in the 10-second window, as wall-clock
    /// times: what another process of the app needs to know of the window.
    pub fn recent_sends(&mut self, now: Instant, wall: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        self.standard.sends_at(now, wall)
    }

    /// Takes in the sends another process made ([`Limiter::recent_sends`]),
    /// unless this limiter has logged sends of its own (it then knows the
    /// window better).
    pub fn recall_sends(&mut self, now: Instant, wall: DateTime<Utc>, sends: &[DateTime<Utc>]) {
        if self.standard.in_window() == 0 {
            self.standard.recall(now, wall, sends);
        }
    }

    /// Sends currently counted in the 10-second window.
    pub fn standard_in_window(&self) -> usize {
        self.standard.in_window()
    }
}

/// The limiter of one portal window, shared by every client of the process
/// that names the same `key`: HubSpot counts an app's requests in one
/// window, so the app's sync, its scan and a re-sync started right after a
/// sync must count together. A fresh limiter would learn of the used
/// window only from the first answer's headers, and then has to assume the
/// whole window was used just now. A changed configuration (another tier)
/// starts a fresh limiter.
pub fn shared(key: &str, config: LimiterConfig, wall: DateTime<Utc>) -> Arc<Mutex<Limiter>> {
    type Registry = Mutex<HashMap<String, (LimiterConfig, Arc<Mutex<Limiter>>)>>;
    static WINDOWS: OnceLock<Registry> = OnceLock::new();
    let mut windows = WINDOWS
        .get_or_init(Registry::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match windows.get(key) {
        Some((known, limiter)) if *known == config => limiter.clone(),
        _ => {
            let limiter = Arc::new(Mutex::new(Limiter::new(config, wall)));
            windows.insert(key.to_owned(), (config, limiter.clone()));
            limiter
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn wall() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn limiter(per_ten: u32, margin: Duration) -> Limiter {
        Limiter::new(
            LimiterConfig {
                per_ten_seconds: per_ten,
                searches_per_second: 5,
                per_day: 1_000,
                margin,
                time_zone: chrono_tz::Europe::Berlin,
            },
            wall(),
        )
    }

    /// Feeds `(offset from start, class)` requests and compares the waits
    /// the limiter asks for (zero when admitted) with `expected`.
    fn check(mut limiter: Limiter, sequence: &[(u64, RequestClass)], expected: &[u64]) {
        let start = Instant::now();
        let waits: Vec<u64> = sequence
            .iter()
            .map(
                |(at, class)| match limiter.admit(*class, start + MS(*at), wall()) {
                    Admission::Go => 0,
                    Admission::Wait(wait) => u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    Admission::DailyExhausted(_) => u64::MAX,
                },
            )
            .collect();
        assert_eq!(waits, expected);
    }

    use RequestClass::{Search, Standard};

    #[test]
    fn one_key_and_configuration_share_one_limiter() {
        let config = LimiterConfig::for_tier(Tier::Free, chrono_tz::Europe::Berlin);
        let key = "test://portal-a";
        let first = shared(key, config, wall());
        let second = shared(key, config, wall());
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!Arc::ptr_eq(
            &first,
            &shared("test://portal-b", config, wall())
        ));
        let professional = LimiterConfig::for_tier(Tier::Professional, config.time_zone);
        let changed = shared(key, professional, wall());
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(Arc::ptr_eq(&changed, &shared(key, professional, wall())));
    }

    #[test]
    fn the_window_admits_the_limit_then_waits_for_the_oldest_to_leave() {
        check(
            limiter(3, MS(0)),
            &[
                (0, Standard),
                (100, Standard),
                (200, Standard),
                (300, Standard),
                (10_000, Standard),
                (10_050, Standard),
            ],
            &[0, 0, 0, 9_700, 0, 50],
        );
    }

    #[test]
    fn the_margin_lengthens_the_window() {
        check(
            limiter(1, MS(250)),
            &[(0, Standard), (10_000, Standard), (10_250, Standard)],
            &[0, 250, 0],
        );
    }

    #[test]
    fn searches_have_their_own_window_outside_the_ten_second_one() {
        let sequence: Vec<(u64, RequestClass)> = (0..6)
            .map(|_| (0, Search))
            .chain([(0, Standard), (1_000, Search)])
            .collect();
        check(limiter(1, MS(0)), &sequence, &[0, 0, 0, 0, 0, 1_000, 0, 0]);
    }

    #[test]
    fn server_headers_tighten_the_window() {
        let mut limiter = limiter(10, MS(0));
        let start = Instant::now();
        limiter.observe(start, wall(), None, Some(1), None, None);
        assert_eq!(limiter.admit(Standard, start, wall()), Admission::Go);
        assert!(matches!(
            limiter.admit(Standard, start, wall()),
            Admission::Wait(_)
        ));
    }

    #[test]
    fn requests_sent_after_an_answered_one_count_against_what_remains() {
        let mut limiter = limiter(10, MS(0));
        let start = Instant::now();
        let mut numbers = Vec::new();
        for _ in 0..4 {
            assert_eq!(limiter.admit(Standard, start, wall()), Admission::Go);
            numbers.push(limiter.dispatched());
        }
        // Answering the first, the server says 4 remain (other traffic
        // used some); the three sent after it are still on their way and
        // were not counted yet: one more send fits, not four.
        limiter.observe(start, wall(), Some(numbers[0]), Some(4), None, None);
        limiter.answered(numbers[0]);
        assert_eq!(limiter.admit(Standard, start, wall()), Admission::Go);
        assert!(matches!(
            limiter.admit(Standard, start, wall()),
            Admission::Wait(_)
        ));
    }

    #[test]
    fn sends_recalled_from_another_process_fill_the_window_until_they_age_out() {
        let mut earlier = limiter(3, MS(0));
        let start = Instant::now();
        for at in [0, 4_000, 8_000] {
            assert_eq!(
                earlier.admit(Standard, start + MS(at), wall()),
                Admission::Go
            );
        }
        // The other process ends at 9 s; this one starts then.
        let then = start + MS(9_000);
        let wall_then = wall() + chrono::Duration::seconds(9);
        let sends = earlier.recent_sends(then, wall_then);
        assert_eq!(sends.len(), 3);
        let mut later = limiter(3, MS(0));
        later.recall_sends(then, wall_then, &sends);
        // Full until the first send (at 0 s) leaves the window at 10 s.
        assert_eq!(
            later.admit(Standard, then, wall()),
            Admission::Wait(MS(1_000))
        );
        assert_eq!(
            later.admit(Standard, start + MS(10_000), wall()),
            Admission::Go
        );
    }

    #[test]
    fn a_ten_secondly_429_blocks_until_the_window_frees_or_retry_after() {
        let mut limiter = limiter(10, MS(0));
        let start = Instant::now();
        assert_eq!(limiter.ten_secondly_refused(start, None), TEN_SECONDS);
        assert_eq!(
            limiter.admit(Standard, start + MS(9_999), wall()),
            Admission::Wait(MS(1))
        );
        assert_eq!(
            limiter.admit(Standard, start + TEN_SECONDS, wall()),
            Admission::Go
        );
        assert_eq!(
            limiter.ten_secondly_refused(start + TEN_SECONDS, Some(MS(2_000))),
            MS(2_000)
        );
    }

    #[test]
    fn the_daily_budget_stops_at_zero_and_names_the_berlin_midnight() {
        let mut limiter = limiter(100, MS(0));
        let start = Instant::now();
        limiter.observe(start, wall(), None, None, None, Some(1));
        assert_eq!(limiter.admit(Standard, start, wall()), Admission::Go);
        let expected = Utc
            .with_ymd_and_hms(2026, 3, 10, 23, 0, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(
            limiter.admit(Standard, start, wall()),
            Admission::DailyExhausted(expected)
        );
        let next_day = expected + chrono::Duration::seconds(1);
        assert_eq!(limiter.admit(Standard, start, next_day), Admission::Go);
    }

    #[test]
    fn midnight_follows_summer_time() {
        let summer = Utc
            .with_ymd_and_hms(2026, 7, 1, 21, 59, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(
            next_midnight(summer, chrono_tz::Europe::Berlin),
            Utc.with_ymd_and_hms(2026, 7, 1, 22, 0, 0)
                .single()
                .unwrap_or_default()
        );
        assert_eq!(
            next_midnight(summer, chrono_tz::UTC),
            Utc.with_ymd_and_hms(2026, 7, 2, 0, 0, 0)
                .single()
                .unwrap_or_default()
        );
    }

    /// The client's loop over the limiter, with tokio's paused clock: 25
    /// requests at 10 per 10 s take two full windows of virtual time.
    #[tokio::test(start_paused = true)]
    async fn paused_clock_drives_the_waits() {
        let mut limiter = limiter(10, MS(0));
        let start = Instant::now();
        let mut sent = Vec::new();
        while sent.len() < 25 {
            match limiter.admit(Standard, Instant::now(), wall()) {
                Admission::Go => sent.push(Instant::now() - start),
                Admission::Wait(wait) => tokio::time::sleep(wait).await,
                Admission::DailyExhausted(_) => break,
            }
        }
        assert_eq!(sent.len(), 25);
        assert_eq!(sent[9], Duration::ZERO);
        assert_eq!(sent[10], TEN_SECONDS);
        assert_eq!(sent[24], 2 * TEN_SECONDS);
        for (i, at) in sent.iter().enumerate().skip(10) {
            assert!(*at - sent[i - 10] >= TEN_SECONDS);
        }
    }
}
