//! HTTP/2 connections, served with a bound on the work each one can start.
//!
//! Pingora's accept loop hands every stream the `h2` codec accepts to a new task. The codec
//! stops counting a stream against `SETTINGS_MAX_CONCURRENT_STREAMS` as soon as the client
//! resets it, while the task it started keeps running and its request keeps its upstream
//! busy. A client that opens a stream, waits for it to be forwarded and cancels it
//! (CVE-2023-44487, "rapid reset", paced) therefore gets unbounded upstream concurrency
//! from one connection. Here each stream holds one of [`MAX_CONCURRENT_STREAMS`] permits of
//! its connection until its request is finished, reset or not; without a free permit the
//! next stream is not accepted, so the codec keeps it pending, and a client resetting such
//! pending streams meets the codec's own limit (20, then `GOAWAY ENHANCE_YOUR_CALM`).
//!
//! HTTP/1.1 connections are handed to the inner application unchanged. This loop must never
//! stop driving the connection while it waits for a permit: answers of the streams in
//! flight are written only while the connection is polled.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::http::v2::server::{
    H2Accept, H2Options, HttpSession, default_h2_options, handshake,
};
use pingora::protocols::{ALPN, Digest, Stream};
use pingora::server::ShutdownWatch;
use tokio::sync::Semaphore;

/// Streams of one connection in flight at once: advertised as `MAX_CONCURRENT_STREAMS`
/// (RFC 9113 section 6.5.2) and enforced on the work the streams start.
pub(crate) const MAX_CONCURRENT_STREAMS: u32 = 100;

/// Streams of one connection refused while being accepted (bad request target, ambiguous
/// `Content-Length`, …) before the connection is closed with `ENHANCE_YOUR_CALM`: the
/// budget Pingora's own accept loop keeps.
const MAX_REJECTED_STREAMS: usize = 32;

/// How long a closing connection may take to flush its GOAWAY.
const GOAWAY_FLUSH: Duration = Duration::from_secs(1);

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The HTTP/2 settings every listener advertises: Pingora's bounded defaults (64 KiB of
/// decoded header list) with this module's stream limit.
pub(crate) fn options() -> H2Options {
    let mut o = default_h2_options();
    o.max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    o
}

/// An HTTP application whose HTTP/2 connections are served by [`serve_h2`].
#[derive(Debug)]
pub(crate) struct StreamBound<A> {
    pub(crate) inner: Arc<A>,
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for StreamBound<A> {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if !speaks_h2(&mut stream, self.inner.as_ref()).await {
            return self.inner.process_new(stream, shutdown).await;
        }
        serve_h2(self.inner.clone(), stream, shutdown.clone()).await;
        None
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

/// The choice Pingora makes: ALPN `h2` on TLS, or the connection preface on a clear-text
/// listener that allows h2c. Peeking leaves the bytes for whoever reads next.
async fn speaks_h2<A: HttpServerApp>(stream: &mut Stream, app: &A) -> bool {
    if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
        return true;
    }
    let h2c = app
        .server_options()
        .is_some_and(|o| o.h2c && !o.force_custom);
    if !h2c || stream.get_ssl_digest().is_some() {
        return false;
    }
    let mut buf = [0u8; H2_PREFACE.len()];
    matches!(stream.try_peek(&mut buf).await, Ok(true)) && buf == H2_PREFACE
}

/// Serves one HTTP/2 connection: accepts a stream only while it holds a free permit of the
/// connection, and drains on shutdown with a GOAWAY (the codec sends the final one).
async fn serve_h2<A: HttpServerApp + Send + Sync + 'static>(
    app: Arc<A>,
    stream: Stream,
    mut shutdown: ShutdownWatch,
) {
    let digest = Arc::new(Digest {
        ssl_digest: stream.get_ssl_digest(),
        timing_digest: stream.get_timing_digest(),
        proxy_digest: stream.get_proxy_digest(),
        socket_digest: stream.get_socket_digest(),
    });
    let mut conn = match handshake(stream, app.h2_options()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "HTTP/2 handshake failed");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(permit_count(MAX_CONCURRENT_STREAMS)));
    let mut draining = false;
    let mut rejected = 0usize;
    loop {
        // Wait for a permit while still driving the connection (answers, PINGs, SETTINGS).
        let permit = tokio::select! {
            biased;
            _ = shutdown.changed(), if !draining => {
                conn.graceful_shutdown();
                draining = true;
                continue;
            }
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = poll_fn(|cx| conn.poll_closed(cx)) => return,
        };
        let accepted = tokio::select! {
            biased;
            _ = shutdown.changed(), if !draining => {
                conn.graceful_shutdown();
                draining = true;
                continue;
            }
            a = HttpSession::from_h2_conn(&mut conn, digest.clone()) => a,
        };
        match accepted {
            Err(e) => {
                tracing::debug!(error = %e, "HTTP/2 connection ended");
                return;
            }
            Ok(None) => return,
            Ok(Some(H2Accept::Rejected)) => {
                rejected += 1;
                if over_budget(rejected) {
                    conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                    let _ = tokio::time::timeout(GOAWAY_FLUSH, poll_fn(|cx| conn.poll_closed(cx)))
                        .await;
                    return;
                }
            }
            Ok(Some(H2Accept::Session(session))) => {
                let app = app.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    // Held until the request is finished, however the stream ended.
                    let _permit = permit;
                    app.process_new_http(ServerSession::new_http2(session), &shutdown)
                        .await;
                });
            }
        }
    }
}

fn permit_count(streams: u32) -> usize {
    usize::try_from(streams).unwrap_or(usize::MAX).max(1)
}

/// Whether a connection that had `rejected` streams refused on acceptance is closed.
fn over_budget(rejected: usize) -> bool {
    rejected > MAX_REJECTED_STREAMS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_permit_per_advertised_stream_and_never_none() {
        assert_eq!(permit_count(MAX_CONCURRENT_STREAMS), 100);
        assert_eq!(permit_count(0), 1);
    }

    #[test]
    fn rejected_streams_close_the_connection_past_the_budget() {
        assert!(!over_budget(MAX_REJECTED_STREAMS));
        assert!(over_budget(MAX_REJECTED_STREAMS + 1));
    }
}
