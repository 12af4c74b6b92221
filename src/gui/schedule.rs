//! The automatic sync while the app is open: every N minutes
//! (`sync.schedule_minutes`), off by default.
//!
//! A due run goes through the same intent as „Jetzt synchronisieren“; when
//! a run is active the turn is skipped politely and the next one is planned.
//! Plain data over an injected `Instant`, so it is tested without waiting.

use std::time::{Duration, Instant};

/// When the next automatic sync is due.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// Time between runs; `None` when switched off.
    every: Option<Duration>,
    /// The next run.
    next: Option<Instant>,
    /// The next run as local time (`HH:MM`), for the top bar.
    next_label: Option<String>,
}

impl Schedule {
    /// A schedule of every `minutes` starting at `now`; `None` is off.
    pub fn new(minutes: Option<u32>, now: Instant) -> Schedule {
        let every = minutes
            .filter(|m| *m > 0)
            .map(|m| Duration::from_secs(u64::from(m) * 60));
        let mut schedule = Schedule {
            every,
            next: None,
            next_label: None,
        };
        schedule.plan_from(now);
        schedule
    }

    /// Whether a run is due at `now`; if so, the next one is planned.
    pub fn due(&mut self, now: Instant) -> bool {
        match self.next {
            Some(next) if next <= now => {
                self.plan_from(now);
                true
            }
            _ => false,
        }
    }

    /// How long until the next run, for the repaint timer.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        self.next.map(|next| next.saturating_duration_since(now))
    }

    /// The next run's local time (`HH:MM`), when switched on.
    pub fn next_label(&self) -> Option<&str> {
        self.next_label.as_deref()
    }

    /// Whether automatic runs are on.
    pub fn is_on(&self) -> bool {
        self.every.is_some()
    }

    fn plan_from(&mut self, now: Instant) {
        self.next = self.every.map(|every| now + every);
        self.next_label = self.every.map(|every| {
            let at = chrono::Utc::now()
                + chrono::Duration::from_std(every).unwrap_or(chrono::Duration::zero());
            at.with_timezone(&chrono_tz::Europe::Berlin)
                .format("%H:%M")
                .to_string()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_is_never_due() {
        let now = Instant::now();
        let mut schedule = Schedule::new(None, now);
        assert!(!schedule.is_on());
        assert!(!schedule.due(now + Duration::from_secs(86_400)));
        assert_eq!(schedule.next_label(), None);
    }

    #[test]
    fn due_after_the_interval_then_planned_again() {
        let now = Instant::now();
        let mut schedule = Schedule::new(Some(15), now);
        assert!(schedule.next_label().is_some());
        assert!(!schedule.due(now + Duration::from_secs(14 * 60)));
        let later = now + Duration::from_secs(15 * 60);
        assert!(schedule.due(later));
        assert!(!schedule.due(later), "only once per turn");
        assert_eq!(schedule.wait(later), Some(Duration::from_secs(15 * 60)));
        assert!(schedule.due(later + Duration::from_secs(15 * 60)));
    }
}
