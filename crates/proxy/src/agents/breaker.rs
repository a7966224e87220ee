//! The circuit breaker of one agent: after `failure-threshold` consecutive failures calls fail
//! at once for `timeout-seconds`; then one probe at a time is let through (half-open), and
//! `success-threshold` consecutive successful probes close it again. A failed probe opens it
//! for another `timeout-seconds`.
//!
//! Time is tokio's clock, so tests drive it with paused time.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use zentinel_config::model::CircuitBreaker;

/// State of the breaker, as reported in logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once.
    Open,
    /// One probe at a time goes through.
    HalfOpen,
}

impl BreakerState {
    /// The name used in logs and metrics.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool, successes: u32 },
}

/// One agent's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    failure_threshold: u32,
    success_threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

/// Permission for one call; report its result with [`Breaker::record`]. A ticket dropped
/// without a result (the caller gave up for its own reasons) frees the probe slot.
#[derive(Debug)]
pub(crate) struct Ticket<'a> {
    breaker: &'a Breaker,
    probe: bool,
    recorded: bool,
}

impl Breaker {
    /// A closed breaker with the agent's settings.
    pub(crate) fn new(settings: &CircuitBreaker) -> Self {
        Self {
            failure_threshold: settings.failure_threshold.max(1),
            success_threshold: settings.success_threshold.max(1),
            open_for: settings.timeout,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A ticket for one call, or `None` when the breaker refuses it.
    pub(crate) fn admit(&self) -> Option<Ticket<'_>> {
        let mut state = self.lock();
        let probe = match &mut *state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() >= *until => {
                *state = State::HalfOpen {
                    probing: true,
                    successes: 0,
                };
                true
            }
            State::Open { .. } | State::HalfOpen { probing: true, .. } => return None,
            State::HalfOpen { probing, .. } => {
                *probing = true;
                true
            }
        };
        Some(Ticket {
            breaker: self,
            probe,
            recorded: false,
        })
    }

    /// Records the result of the call `ticket` was issued for; returns the state after it.
    pub(crate) fn record(&self, mut ticket: Ticket<'_>, ok: bool) -> BreakerState {
        ticket.recorded = true;
        let mut state = self.lock();
        match (&mut *state, ticket.probe, ok) {
            (State::Closed { failures }, false, true) => *failures = 0,
            (State::Closed { failures }, false, false) => {
                *failures += 1;
                if *failures >= self.failure_threshold {
                    *state = self.opened();
                }
            }
            (State::HalfOpen { probing, successes }, true, true) => {
                *successes += 1;
                *probing = false;
                if *successes >= self.success_threshold {
                    *state = State::Closed { failures: 0 };
                }
            }
            (State::HalfOpen { .. }, true, false) => *state = self.opened(),
            // Results of calls admitted before the state changed do not move it.
            _ => {}
        }
        Self::name(&state)
    }

    fn opened(&self) -> State {
        State::Open {
            until: Instant::now() + self.open_for,
        }
    }

    fn name(state: &State) -> BreakerState {
        match state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// The current state (an open breaker whose time is up reports open until the next call).
    pub(crate) fn state(&self) -> BreakerState {
        Self::name(&self.lock())
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe && !self.recorded {
            let mut state = self.breaker.lock();
            if let State::HalfOpen { probing, .. } = &mut *state {
                *probing = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, successes: u32, open_secs: u64) -> Breaker {
        let text = format!(
            r#"listeners {{ listener "w" {{ address "127.0.0.1:1"; }} }}
upstreams {{ upstream "u" {{ target "127.0.0.1:2"; }} }}
agents {{ agent "a" {{ transport {{ unix-socket "/tmp/a.sock"; }}; events "request-headers"
    circuit-breaker {{ failure-threshold {failures}; success-threshold {successes}; timeout-seconds {open_secs}; }} }} }}
routes {{ route "r" {{ upstream "u"; filters "a"; }} }}"#
        );
        let config = zentinel_config::load_str("t.kdl", &text).unwrap_or_else(|d| panic!("{d}"));
        Breaker::new(&config.agents[0].circuit_breaker)
    }

    fn fail(b: &Breaker) -> BreakerState {
        let t = b.admit().unwrap_or_else(|| panic!("admitted"));
        b.record(t, false)
    }

    fn succeed(b: &Breaker) -> BreakerState {
        let t = b.admit().unwrap_or_else(|| panic!("admitted"));
        b.record(t, true)
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_only() {
        let b = breaker(3, 2, 10);
        fail(&b);
        fail(&b);
        succeed(&b); // resets the count
        fail(&b);
        fail(&b);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(fail(&b), BreakerState::Open);
        assert!(b.admit().is_none(), "open: calls fail fast");
    }

    #[tokio::test(start_paused = true)]
    async fn one_probe_after_the_timeout_and_success_threshold_closes() {
        let b = breaker(1, 2, 10);
        fail(&b);
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(b.admit().is_none(), "still open just before the timeout");
        tokio::time::advance(Duration::from_millis(1)).await;
        let probe = b
            .admit()
            .unwrap_or_else(|| panic!("a probe after the timeout"));
        assert!(b.admit().is_none(), "only one probe at a time");
        assert_eq!(b.record(probe, true), BreakerState::HalfOpen);
        assert_eq!(succeed(&b), BreakerState::Closed, "second success closes");
        assert!(b.admit().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_again_for_the_full_timeout() {
        let b = breaker(1, 1, 5);
        fail(&b);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(fail(&b), BreakerState::Open);
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert!(b.admit().is_none());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(succeed(&b), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_frees_the_slot() {
        let b = breaker(1, 1, 1);
        fail(&b);
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(b.admit());
        assert!(b.admit().is_some(), "the next call may probe");
    }

    #[tokio::test(start_paused = true)]
    async fn late_results_of_calls_admitted_before_opening_do_not_count() {
        let b = breaker(1, 1, 1);
        let early = b.admit().unwrap_or_else(|| panic!("admitted"));
        fail(&b);
        assert_eq!(b.record(early, true), BreakerState::Open);
    }
}
