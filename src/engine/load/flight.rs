//! HubSpot calls of one pass that are on their way at the same time.
//!
//! HubSpot answers a batch call of 100 records in a few hundred
//! milliseconds. One call at a time would reach a fraction of the rate
//! limit (Professional allows 19 calls a second, which needs about
//! 19 × answer time in flight), so a pass keeps up to [`CALLS_IN_FLIGHT`]
//! calls going. The limiter still admits every send, and the answers are
//! taken in the order the calls were made: the ledger records them in the
//! same sequence as with one call at a time, and a row leaves the outbox
//! only once its answer is recorded (DESIGN.md §3.2).

use std::future::Future;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;

/// Calls of one pass on their way at once: enough to fill the
/// Professional window at answers of up to about 400 ms.
pub const CALLS_IN_FLIGHT: usize = 8;

/// Calls on their way, answered in the order they were made.
pub struct Flight<F: Future> {
    calls: FuturesOrdered<F>,
    /// Calls allowed on their way at once.
    capacity: usize,
}

impl<F: Future> Flight<F> {
    pub fn new() -> Flight<F> {
        Flight::with_capacity(CALLS_IN_FLIGHT)
    }

    /// A flight of at most `capacity` calls (at least one).
    pub fn with_capacity(capacity: usize) -> Flight<F> {
        Flight {
            calls: FuturesOrdered::new(),
            capacity: capacity.max(1),
        }
    }

    /// From now on up to [`CALLS_IN_FLIGHT`] calls.
    pub fn widen(&mut self) {
        self.capacity = CALLS_IN_FLIGHT;
    }

    /// Adds a call. When the flight is full, waits for the oldest call's
    /// answer and returns it.
    pub async fn push(&mut self, call: F) -> Option<F::Output> {
        self.calls.push_back(call);
        if self.calls.len() >= self.capacity {
            self.calls.next().await
        } else {
            None
        }
    }

    /// The oldest call's answer; `None` once every answer was taken.
    pub async fn next(&mut self) -> Option<F::Output> {
        self.calls.next().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A call that counts how many calls are running while it runs.
    async fn call(
        number: usize,
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        takes: Duration,
    ) -> usize {
        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(takes).await;
        running.fetch_sub(1, Ordering::SeqCst);
        number
    }

    #[tokio::test(start_paused = true)]
    async fn answers_come_in_call_order_with_at_most_the_flight_running() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut flight = Flight::new();
        let mut answers = Vec::new();
        for number in 0..20 {
            // Later calls answer sooner: the order must still hold.
            let takes = Duration::from_millis(100 - number as u64 * 3);
            let pushed = flight.push(call(number, running.clone(), most.clone(), takes));
            answers.extend(pushed.await);
        }
        while let Some(answer) = flight.next().await {
            answers.push(answer);
        }
        assert_eq!(answers, (0..20).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), CALLS_IN_FLIGHT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flight_of_one_waits_for_each_answer_until_widened() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let takes = Duration::from_millis(10);
        let mut flight = Flight::with_capacity(1);
        for number in 0..3 {
            let answer = flight
                .push(call(number, running.clone(), most.clone(), takes))
                .await;
            assert_eq!(answer, Some(number), "answered before the next call");
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        flight.widen();
        for number in 3..6 {
            let answer = flight
                .push(call(number, running.clone(), most.clone(), takes))
                .await;
            assert_eq!(answer, None, "room for more calls");
        }
        let mut rest = Vec::new();
        while let Some(answer) = flight.next().await {
            rest.push(answer);
        }
        assert_eq!(rest, vec![3, 4, 5]);
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}
