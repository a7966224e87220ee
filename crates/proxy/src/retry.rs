//! Retry budgets: retries may be at most a share of a route's requests over a sliding window,
//! plus a small allowance per second, so a failing upstream cannot multiply the load on it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use zentinel_config::model::{RetryOn, Route};

/// Length of one accounting window.
const WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requests: u64,
    retries: u64,
}

#[derive(Debug)]
struct State {
    started: Instant,
    current: Counts,
    previous: Counts,
}

/// A route's retry budget.
#[derive(Debug)]
pub struct RetryBudget {
    percent: u64,
    min_per_window: u64,
    state: Mutex<State>,
}

impl RetryBudget {
    /// A budget of `percent` of requests plus `min_per_second` retries per second.
    pub fn new(percent: u32, min_per_second: u32) -> Self {
        Self {
            percent: u64::from(percent),
            min_per_window: u64::from(min_per_second) * WINDOW.as_secs(),
            state: Mutex::new(State {
                started: Instant::now(),
                current: Counts::default(),
                previous: Counts::default(),
            }),
        }
    }

    fn with<T>(&self, now: Instant, f: impl FnOnce(&mut State) -> T) -> T {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(s.started);
        if elapsed >= WINDOW * 2 {
            s.previous = Counts::default();
            s.current = Counts::default();
            s.started = now;
        } else if elapsed >= WINDOW {
            s.previous = s.current;
            s.current = Counts::default();
            s.started += WINDOW;
        }
        f(&mut s)
    }

    /// Counts a request.
    pub fn record_request(&self) {
        self.record_request_at(Instant::now());
    }

    fn record_request_at(&self, now: Instant) {
        self.with(now, |s| s.current.requests += 1);
    }

    /// Takes a retry from the budget if one is left.
    pub fn try_retry(&self) -> bool {
        self.try_retry_at(Instant::now())
    }

    fn try_retry_at(&self, now: Instant) -> bool {
        let (percent, min) = (self.percent, self.min_per_window);
        self.with(now, |s| {
            // The previous window counts in proportion to how much of it is still in the
            // sliding window.
            let into =
                now.saturating_duration_since(s.started).as_secs_f64() / WINDOW.as_secs_f64();
            let weight = (1.0 - into).clamp(0.0, 1.0);
            let requests = s.current.requests as f64 + s.previous.requests as f64 * weight;
            let retries = s.current.retries as f64 + s.previous.retries as f64 * weight;
            let allowed = (requests * percent as f64 / 100.0).max(min as f64);
            if retries + 1.0 <= allowed {
                s.current.retries += 1;
                true
            } else {
                false
            }
        })
    }
}

/// The `retry-on` value an upstream status corresponds to.
pub(crate) fn on_status(status: u16) -> Option<RetryOn> {
    match status {
        502 => Some(RetryOn::Status502),
        503 => Some(RetryOn::Status503),
        504 => Some(RetryOn::Status504),
        _ => None,
    }
}

/// Whether a try that failed with `on` may be retried: tries left, the failure listed in
/// `retry-on`, the method allowed (idempotent, or `non-idempotent #true`), the body still
/// replayable, and a retry left in the budget (taken only when everything else allows it).
pub(crate) fn may_retry(
    route: &Route,
    budget: &RetryBudget,
    attempts: u32,
    on: RetryOn,
    idempotent: bool,
    body_replayable: bool,
) -> bool {
    attempts < route.retry.max_attempts
        && route.retry.retry_on.contains(&on)
        && (idempotent || route.retry.non_idempotent || on == RetryOn::ConnectError)
        && body_replayable
        && budget.try_retry()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_capped_at_the_share_of_requests() {
        let b = RetryBudget::new(20, 0);
        let t = Instant::now();
        for _ in 0..100 {
            b.record_request_at(t);
        }
        let granted = (0..100).filter(|_| b.try_retry_at(t)).count();
        assert_eq!(granted, 20);
    }

    #[test]
    fn the_minimum_allows_retries_on_quiet_routes() {
        let b = RetryBudget::new(20, 1);
        let t = Instant::now();
        b.record_request_at(t);
        let granted = (0..100).filter(|_| b.try_retry_at(t)).count();
        assert_eq!(granted, 10, "1 per second over a 10 s window");
    }

    #[test]
    fn the_budget_refills_as_windows_pass() {
        let b = RetryBudget::new(50, 0);
        let t = Instant::now();
        for _ in 0..10 {
            b.record_request_at(t);
        }
        assert_eq!((0..10).filter(|_| b.try_retry_at(t)).count(), 5);
        let later = t + WINDOW * 2;
        for _ in 0..10 {
            b.record_request_at(later);
        }
        assert_eq!((0..10).filter(|_| b.try_retry_at(later)).count(), 5);
    }

    #[test]
    fn zero_percent_and_zero_minimum_never_retry() {
        let b = RetryBudget::new(0, 0);
        b.record_request();
        assert!(!b.try_retry());
    }
}
