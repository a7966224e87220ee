//! Client connection caps: at most `max-connections` open client connections across all
//! listeners, at most `max-connections-per-client` from one IP, with at most
//! `max-tracked-clients` IPs tracked at once. A connection beyond a cap is closed at once,
//! without an answer.
//!
//! The cap wraps the HTTP application of each listener ([`Capped`]): a connection takes its
//! slot when its first request is about to be read (after the TLS handshake on `https`
//! listeners) and gives it back when the connection ends, keep-alive requests included.
//! Tracking is bounded: when `max-tracked-clients` IPs hold connections, connections from
//! new IPs are refused until one of them closes all of its connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use zentinel_config::model::Limits;

use crate::audit::Rejection;
use crate::header_deadline::HeaderDeadline;
use crate::runtime::Shared;

/// The connection counters shared by every listener.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    max_total: usize,
    max_per_client: u32,
    max_tracked: usize,
    total: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, u32>>,
    /// Connections refused, per cap, in [`REFUSALS`] order.
    refused: [AtomicU64; 3],
}

/// The caps a connection can be refused by, as named in metrics.
pub(crate) const REFUSALS: [&str; 3] = [
    "max-connections",
    "max-connections-per-client",
    "max-tracked-clients",
];

/// A connection's slot, given back on drop.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    client: Option<IpAddr>,
}

impl ConnectionLimits {
    pub(crate) fn new(l: &Limits) -> Self {
        Self::with_caps(
            l.max_connections as usize,
            l.max_connections_per_client,
            l.max_tracked_clients as usize,
        )
    }

    /// Caps given directly (for the admin listener).
    pub(crate) fn with_caps(total: usize, per_client: u32, tracked: usize) -> Self {
        Self {
            max_total: total,
            max_per_client: per_client,
            max_tracked: tracked,
            total: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
            refused: [const { AtomicU64::new(0) }; 3],
        }
    }

    fn refuse(&self, cap: usize) -> Result<ConnectionSlot, &'static str> {
        self.refused[cap].fetch_add(1, Ordering::Relaxed);
        Err(REFUSALS[cap])
    }

    /// Takes a slot for a connection from `client`; `Err` names the cap that is reached.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        client: Option<IpAddr>,
    ) -> Result<ConnectionSlot, &'static str> {
        let max = self.max_total;
        let taken = self
            .total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        if taken.is_err() {
            return self.refuse(0);
        }
        // From here on the slot owns one unit of `total`: dropping it gives that back.
        let mut slot = ConnectionSlot {
            limits: self.clone(),
            client: None,
        };
        if let Some(ip) = client {
            let mut map = self
                .per_client
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let tracked = map.len();
            match map.get_mut(&ip) {
                Some(n) if *n >= self.max_per_client => return self.refuse(1),
                Some(n) => *n += 1,
                None if tracked >= self.max_tracked => return self.refuse(2),
                None => {
                    map.insert(ip, 1);
                }
            }
            slot.client = Some(ip);
        }
        Ok(slot)
    }

    /// Open client connections now.
    pub(crate) fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Connections refused since start-up, per cap in [`REFUSALS`] order.
    pub(crate) fn refused(&self) -> [u64; 3] {
        std::array::from_fn(|i| self.refused[i].load(Ordering::Relaxed))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Some(ip) = self.client {
            let mut map = self
                .limits
                .per_client
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
        self.limits.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An HTTP application behind the connection caps.
pub(crate) struct Capped<A> {
    pub(crate) inner: Arc<A>,
    pub(crate) limits: Arc<ConnectionLimits>,
    /// The listener's `header-read-timeout-ms`.
    pub(crate) header_deadline: std::time::Duration,
    /// Where refused connections are audited (the current runtime's audit log); `None` for
    /// the admin listener.
    pub(crate) audit: Option<Arc<Shared>>,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Capped<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let client = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let _slot = match self.limits.acquire(client) {
            Ok(slot) => slot,
            Err(cap) => {
                tracing::debug!(client = ?client, cap, "connection refused: connection cap reached");
                if let Some(shared) = &self.audit {
                    shared.load().audit_log.rejection(&Rejection {
                        request_id: None,
                        route: None,
                        client,
                        reason: cap,
                        status: None,
                    });
                }
                return None;
            }
        };
        let stream: Stream = Box::new(HeaderDeadline::new(stream, self.header_deadline));
        // The slot covers every request of the connection, kept-alive ones included.
        // Pingora serves the connection's kept-alive requests inside `process_new` (the proxy's
        // `logging` re-arms the header deadline for each next one); it hands a stream back
        // only for another application to take over.
        let mut next = self.inner.process_new(stream, shutdown).await;
        while let Some(s) = next {
            next = self.inner.process_new(s, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: u32, per_client: u32, tracked: u32) -> Arc<ConnectionLimits> {
        let text = format!(
            "listeners {{ listener \"w\" {{ address \"127.0.0.1:1\"; }} }}\nupstreams {{ upstream \"u\" {{ target \"127.0.0.1:2\"; }} }}\nroutes {{ route \"r\" {{ upstream \"u\"; }} }}\nlimits {{ max-connections {total}; max-connections-per-client {per_client}; max-tracked-clients {tracked}; }}"
        );
        let c = zentinel_config::load_str("t.kdl", &text).unwrap_or_else(|d| panic!("{d}"));
        Arc::new(ConnectionLimits::new(&c.limits))
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn per_client_and_total_caps() {
        let l = limits(3, 2, 10);
        let a1 = l.acquire(ip(1)).expect("first");
        let _a2 = l.acquire(ip(1)).expect("second from the same client");
        assert_eq!(
            l.acquire(ip(1)).err(),
            Some("max-connections-per-client"),
            "third from the same client"
        );
        let _b1 = l.acquire(ip(2)).expect("another client");
        assert_eq!(l.acquire(ip(3)).err(), Some("max-connections"), "total cap");
        assert_eq!(l.open(), 3);
        drop(a1);
        assert_eq!(l.open(), 2);
        assert!(l.acquire(ip(1)).is_ok(), "a slot came back");
    }

    #[test]
    fn tracking_is_bounded_and_frees_idle_clients() {
        let l = limits(100, 5, 2);
        let a = l.acquire(ip(1)).expect("a");
        let _b = l.acquire(ip(2)).expect("b");
        assert_eq!(
            l.acquire(ip(3)).err(),
            Some("max-tracked-clients"),
            "two clients tracked: a third is refused"
        );
        assert!(l.acquire(ip(1)).is_ok(), "a tracked client may open more");
        drop(a);
        // ip(1) still holds the second connection taken above (dropped at the end of the
        // statement), so it is no longer tracked once both are gone.
        assert!(l.acquire(ip(3)).is_ok(), "tracking space came back");
    }

    #[test]
    fn refused_connections_do_not_leak_slots() {
        let l = limits(10, 1, 10);
        let _a = l.acquire(ip(1)).expect("a");
        for _ in 0..100 {
            assert!(l.acquire(ip(1)).is_err());
        }
        assert_eq!(l.open(), 1);
    }
}
