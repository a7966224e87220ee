//! Slow clients past the request head: request bodies held to a gap deadline and a minimum
//! average rate, and writes to the client held to a send deadline. (Slow headers are cut by
//! [`crate::header_deadline`] before a request exists.)
//!
//! Both use Pingora's own per-session timeouts, set for each request in `request_filter`:
//!
//! - `body-read-timeout-ms` is the session's read timeout, which Pingora applies to every read
//!   of the request body (and to draining what is left of it before a connection is reused):
//!   on HTTP/1 a read of the socket, on HTTP/2 the wait for the stream's next DATA frame
//!   (Pingora 0.9.1 has no read timeout on HTTP/2; Zentinel's patched copy adds it, see
//!   `vendor/README.md`);
//! - `min-body-rate-bytes-per-sec` with `body-rate-grace-ms` gives the body a deadline that
//!   moves with what has arrived: `grace + bytes / rate` after its first bytes arrived (time
//!   the proxy spends before it reads the body — agents, connecting upstream — is not the
//!   client's). After each chunk the read timeout is shortened to that deadline when it is
//!   nearer than the gap, so a client sending one byte just before each read would time out
//!   is cut all the same. Only a read that has to wait is cut: bytes already received are
//!   taken, and a retry replaying the body reads nothing from the client;
//! - `send-timeout-ms` is the session's write timeout: one write of a response chunk (Pingora
//!   reads upstream bodies in chunks of at most 64 KiB and queues at most a few of them) that
//!   the client's connection does not take within it fails, and the connection is closed.
//!
//! A body cut this way ends the request with a downstream `ReadTimedout`: 408 when no
//! response has started (`errors::status_of`), else the connection is closed. Either way the
//! upstream connection, which may have the head and part of the body, is closed and never
//! reused. Each cut writes an audit line.

use std::time::{Duration, Instant};

use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};
use zentinel_config::model::Listener;

use crate::audit::Rejection;
use crate::proxy::Ctx;

/// Audit reason: no body bytes within `body-read-timeout-ms`.
pub(crate) const BODY_READ_TIMEOUT: &str = "body-read-timeout";
/// Audit reason: the body fell below `min-body-rate-bytes-per-sec` after the grace period.
pub(crate) const BODY_TOO_SLOW: &str = "body-too-slow";
/// Audit reason: a write to the client took longer than `send-timeout-ms`.
pub(crate) const SEND_TIMEOUT: &str = "send-timeout";

/// When a body that has sent `received` bytes must be complete by at the latest (for the rate
/// check), counted from `started`; `None` when the rate check is off.
fn rate_deadline(l: &Listener, started: Instant, received: u64) -> Option<Instant> {
    if l.min_body_rate == 0 {
        return None;
    }
    // Whole milliseconds; saturating so a huge body cannot overflow.
    let earned_ms = received.saturating_mul(1000) / l.min_body_rate;
    Some(started + l.body_rate_grace + Duration::from_millis(earned_ms))
}

/// The shortest read timeout set: Pingora polls the read before the timer, so bytes already
/// received are still taken; a read that has to wait fails at once.
const AT_ONCE: Duration = Duration::from_millis(1);

/// The read timeout for the next body read: the gap deadline, or the rate deadline when that
/// is nearer ([`AT_ONCE`] when it has passed).
fn next_read_timeout(l: &Listener, started: Instant, received: u64, now: Instant) -> Duration {
    match rate_deadline(l, started, received) {
        None => l.body_read_timeout,
        Some(d) => l
            .body_read_timeout
            .min(d.saturating_duration_since(now))
            .max(AT_ONCE),
    }
}

/// Sets the request's client timeouts from its listener (at the start of `request_filter`).
/// WebSocket upgrades keep Pingora's own read timeout: after the 101 their "body" is the
/// WebSocket stream, which may be quiet for long.
pub(crate) fn arm(session: &mut Session, l: &Listener) {
    session.set_write_timeout(Some(l.send_timeout));
    if session.is_upgrade_req() {
        return;
    }
    // The first body bytes are held to the gap; the rate counts from their arrival.
    session.set_read_timeout(Some(l.body_read_timeout));
    session.set_total_drain_timeout(Some(l.body_read_timeout));
}

/// After a body chunk that is not the last: the next read's timeout. `started` is when the
/// body's first bytes arrived. HTTP/1 and HTTP/2 alike (on HTTP/2 the timeout bounds the wait
/// for the stream's next DATA frame: Zentinel's patched Pingora, `vendor/README.md`).
/// Upgraded connections are not timed here (see [`arm`]).
pub(crate) fn on_body_chunk(session: &mut Session, l: &Listener, started: Instant, received: u64) {
    if session.was_upgraded() || session.is_upgrade_req() {
        return;
    }
    let t = next_read_timeout(l, started, received, Instant::now());
    session.set_read_timeout(Some(t));
}

/// The audit reason for an error that ended a request, when it is one of these cuts.
fn reason(
    e: &Error,
    l: &Listener,
    started: Instant,
    received: u64,
    now: Instant,
) -> Option<&'static str> {
    if e.esource() != &ErrorSource::Downstream {
        return None;
    }
    match e.etype() {
        ErrorType::WriteTimedout => Some(SEND_TIMEOUT),
        ErrorType::ReadTimedout => {
            // The rate deadline when it has passed (a read timeout shortened to it fires at
            // it, give or take the timer's resolution), else the gap.
            let slack = Duration::from_millis(20);
            match rate_deadline(l, started, received) {
                Some(d) if d <= now + slack => Some(BODY_TOO_SLOW),
                _ => Some(BODY_READ_TIMEOUT),
            }
        }
        _ => None,
    }
}

/// Writes the audit line of a slow-client cut (from `fail_to_proxy`); `answered` is the
/// status sent, `None` when the connection was only closed.
pub(crate) fn audit(e: &Error, ctx: &Ctx, l: &Listener, answered: Option<u16>) {
    let started = ctx.body_started.unwrap_or_else(Instant::now);
    if let Some(reason) = reason(e, l, started, ctx.body_bytes, Instant::now()) {
        ctx.rt.audit_log.rejection(&Rejection {
            request_id: Some(&ctx.request_id),
            route: ctx.route.map(|i| ctx.rt.config.routes[i].id.as_str()),
            client: ctx.forwarding.as_ref().and_then(|f| f.client_ip),
            reason,
            status: answered,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(extra: &str) -> Listener {
        let text = format!(
            "listeners {{ listener \"w\" {{ address \"127.0.0.1:1\"; {extra} }} }}\nupstreams {{ upstream \"u\" {{ target \"127.0.0.1:2\"; }} }}\nroutes {{ route \"r\" {{ upstream \"u\"; }} }}"
        );
        let mut c = zentinel_config::load_str("t.kdl", &text).unwrap_or_else(|d| panic!("{d}"));
        c.listeners.remove(0)
    }

    #[test]
    fn the_rate_deadline_moves_with_the_bytes_received() {
        let l = listener(
            "min-body-rate-bytes-per-sec 1000; body-rate-grace-ms 2000; body-read-timeout-ms 5000;",
        );
        let t0 = Instant::now();
        assert_eq!(rate_deadline(&l, t0, 0), Some(t0 + Duration::from_secs(2)));
        assert_eq!(
            rate_deadline(&l, t0, 3000),
            Some(t0 + Duration::from_secs(5))
        );
        // Nearer than the gap: the read timeout is shortened to it.
        assert_eq!(next_read_timeout(&l, t0, 0, t0), Duration::from_secs(2));
        // Farther than the gap: the gap.
        assert_eq!(
            next_read_timeout(&l, t0, 10_000, t0),
            Duration::from_secs(5)
        );
        // Past it: the next read must find bytes already received, or it is cut.
        assert_eq!(
            next_read_timeout(&l, t0, 10, t0 + Duration::from_secs(3)),
            AT_ONCE
        );
        assert_eq!(rate_deadline(&l, t0, u64::MAX).map(|d| d > t0), Some(true));
    }

    #[test]
    fn without_a_rate_only_the_gap_counts() {
        let l = listener("min-body-rate-bytes-per-sec 0; body-read-timeout-ms 700;");
        let t0 = Instant::now();
        assert_eq!(rate_deadline(&l, t0, 0), None);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(
            next_read_timeout(&l, t0, 1, later),
            Duration::from_millis(700)
        );
    }

    #[test]
    fn reasons_name_the_bound_that_fired() {
        let l = listener("min-body-rate-bytes-per-sec 1000; body-rate-grace-ms 2000;");
        let t0 = Instant::now();
        let read = Error::new(ErrorType::ReadTimedout).into_down();
        assert_eq!(
            reason(&read, &l, t0, 0, t0 + Duration::from_secs(1)),
            Some(BODY_READ_TIMEOUT)
        );
        assert_eq!(
            reason(&read, &l, t0, 0, t0 + Duration::from_secs(2)),
            Some(BODY_TOO_SLOW)
        );
        let write = Error::new(ErrorType::WriteTimedout).into_down();
        assert_eq!(reason(&write, &l, t0, 0, t0), Some(SEND_TIMEOUT));
        let upstream = Error::new(ErrorType::ReadTimedout).into_up();
        assert_eq!(reason(&upstream, &l, t0, 0, t0), None);
        let closed = Error::new(ErrorType::ConnectionClosed).into_down();
        assert_eq!(reason(&closed, &l, t0, 0, t0), None);
    }
}
