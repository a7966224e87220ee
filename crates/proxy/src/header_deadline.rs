//! The header-read deadline (`header-read-timeout-ms`): a client must send the complete
//! request headers within this time, or the connection is closed. It bounds slow-header
//! ("slowloris") clients, which a per-read timeout cannot: such a client sends one byte just
//! before each read would time out.
//!
//! The deadline wraps the connection's byte stream (after TLS, so it sees plain HTTP). For
//! the first request it is armed when the connection is handed over (the end of the TLS
//! handshake); it is disarmed when the end of the header block (`CRLF CRLF`) has been read.
//! The HTTP/2 connection preface ends the same way, so an HTTP/2 connection disarms at once
//! and is never armed again. When an HTTP/1 request of a kept-alive connection ends
//! ([`HeaderDeadline::rearm`], from the proxy's `logging` phase), the deadline waits for the
//! next request's first byte and counts from there, so an idle keep-alive connection is
//! bounded by `idle-timeout-ms` alone.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    ALPN, GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    Stream, TimingDigest, UniqueID, UniqueIDType,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A stream whose reads fail with `TimedOut` once the deadline passes before the end of the
/// first request's headers.
#[derive(Debug)]
pub(crate) struct HeaderDeadline {
    inner: Stream,
    timeout: Duration,
    /// `Some` while armed.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Arms at the next byte read (a kept-alive connection waiting for its next request).
    on_next_byte: AtomicBool,
    /// The last three bytes read, to find `CRLF CRLF` across reads.
    tail: [u8; 3],
}

impl HeaderDeadline {
    /// Wraps `inner`, armed for `timeout` from now.
    pub(crate) fn new(inner: Stream, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            sleep: Some(Box::pin(tokio::time::sleep_until(Instant::now() + timeout))),
            on_next_byte: AtomicBool::new(false),
            tail: [0; 3],
        }
    }

    /// Holds the connection's next request to the deadline, counted from its first byte.
    pub(crate) fn rearm(&self) {
        self.on_next_byte.store(true, Ordering::Relaxed);
    }

    /// [`Self::rearm`] for the connection under `stream`, when it is one of these (an HTTP/1
    /// connection; HTTP/2 sessions have no stream of their own).
    pub(crate) fn rearm_stream(stream: &Stream) {
        if let Some(d) = stream.as_any().downcast_ref::<Self>() {
            d.rearm();
        }
    }

    /// Whether the header block ended within `read`; keeps the last three bytes, since the
    /// terminator may straddle two reads. Never allocates.
    fn ends_header(&mut self, read: &[u8]) -> bool {
        const END: &[u8] = b"\r\n\r\n";
        let k = read.len().min(3);
        let mut joint = [0u8; 6];
        joint[..3].copy_from_slice(&self.tail);
        joint[3..3 + k].copy_from_slice(&read[..k]);
        let found =
            joint[..3 + k].windows(4).any(|w| w == END) || read.windows(4).any(|w| w == END);
        if read.len() >= 3 {
            self.tail.copy_from_slice(&read[read.len() - 3..]);
        } else {
            // Shift the old tail left by the few new bytes.
            let keep = 3 - read.len();
            self.tail.copy_within(3 - keep.., 0);
            self.tail[keep..].copy_from_slice(read);
        }
        found
    }
}

impl AsyncRead for HeaderDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(sleep) = this.sleep.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request headers not complete within the header-read deadline",
            )));
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            let got = buf.filled().len() > before;
            if got && *this.on_next_byte.get_mut() {
                // The next request's first byte: its headers are due within the deadline.
                *this.on_next_byte.get_mut() = false;
                this.tail = [0; 3];
                let due = Instant::now() + this.timeout;
                this.sleep = Some(Box::pin(tokio::time::sleep_until(due)));
            }
            if got && this.sleep.is_some() && this.ends_header(&buf.filled()[before..]) {
                this.sleep = None;
            }
        }
        res
    }
}

impl AsyncWrite for HeaderDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for HeaderDeadline {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for HeaderDeadline {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeaderDeadline {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeaderDeadline {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeaderDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for HeaderDeadline {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for HeaderDeadline {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(timeout: Duration) -> (HeaderDeadline, tokio::io::DuplexStream) {
        let (a, b) = tokio::io::duplex(1024);
        (HeaderDeadline::new(Box::new(a), timeout), b)
    }

    #[tokio::test]
    async fn the_terminator_is_found_across_reads_of_any_size() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for split in 1..req.len() {
            let (mut s, _c) = wrapped(Duration::from_secs(1));
            let found = req.chunks(split).any(|c| s.ends_header(c));
            assert!(found, "chunks of {split}");
            let (mut s, _c) = wrapped(Duration::from_secs(1));
            let partial = &req[..req.len() - 1];
            assert!(
                !partial.chunks(split).any(|c| s.ends_header(c)),
                "no early end at {split}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_header_is_cut_at_the_deadline() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, mut client) = wrapped(Duration::from_secs(1));
        let writer = tokio::spawn(async move {
            for b in b"GET / HTTP/1.1\r\nHost: x\r\n" {
                let _ = client.write_all(&[*b]).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            client
        });
        let mut buf = [0u8; 64];
        let started = Instant::now();
        let err = loop {
            match s.read(&mut buf).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        writer.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_alive_connection_holds_its_next_request_to_the_deadline_from_its_first_byte() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, mut client) = wrapped(Duration::from_secs(1));
        let mut buf = [0u8; 64];
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let _ = s.read(&mut buf).await.unwrap();
        s.rearm();
        // Idle between requests is not the header deadline's business.
        tokio::time::sleep(Duration::from_secs(5)).await;
        client.write_all(b"GET /next HTTP/1.1\r\n").await.unwrap();
        let started = Instant::now();
        assert!(s.read(&mut buf).await.unwrap() > 0);
        let err = s.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(1),
            "from the first byte"
        );
        // A next request that completes in time disarms it again.
        let (mut s, mut client) = wrapped(Duration::from_secs(1));
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let _ = s.read(&mut buf).await.unwrap();
        s.rearm();
        client.write_all(b"GET /n HTTP/1.1\r\n\r\n").await.unwrap();
        let _ = s.read(&mut buf).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        client.write_all(b"body").await.unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_header_disarms_the_deadline() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, mut client) = wrapped(Duration::from_secs(1));
        // The terminator split across two writes.
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).await.unwrap();
        client.write_all(b"\n").await.unwrap();
        let _ = s.read(&mut buf).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        client.write_all(b"body").await.unwrap();
        assert_eq!(
            s.read(&mut buf).await.unwrap(),
            4,
            "reads work long after the deadline"
        );
    }
}
