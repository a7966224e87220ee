//! One connection slot's background task: connect, handshake, serve the connection, and on
//! any failure reconnect with jittered exponential backoff — until the client is dropped.
//!
//! While a connection is up it is published in its slot; whatever ends it (error, end of
//! stream, shutdown) unpublishes it first and then fails its pending calls, so no call can
//! wait on a dead connection. The carrier (Unix socket, gRPC stream) is only a frame source
//! and a writer draining the connection's queue: everything else here is carrier-blind.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio::time::error::Elapsed;

use super::pending::Pending;
use super::{CallError, Endpoint, Live, Shared, bump, lock};
use crate::PROTOCOL_VERSION;
use crate::encoding::Encoding;
use crate::error::ProtocolError;
use crate::frame::Frame;
use crate::message::Message;
use crate::message::control::FlowAction;
use crate::message::handshake::{HandshakeRequest, HandshakeResponse};
use crate::transport::{self, ByteSource, FrameSource, ReadError};

/// Room in a connection's write queue for control frames beyond `max_in_flight` calls.
const CONTROL_ROOM: usize = 64;

/// Runs slot `slot` until `shutdown`'s sender is dropped.
pub(super) async fn run(shared: Arc<Shared>, slot: usize, mut shutdown: watch::Receiver<()>) {
    let mut backoff = Backoff::new();
    let mut first = true;
    loop {
        if !first {
            bump(&shared.counters.reconnects);
        }
        first = false;
        let handshook = tokio::select! {
            _ = shutdown.changed() => return,
            handshook = session(&shared, slot) => handshook,
        };
        if handshook {
            backoff = Backoff::new();
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Exponential backoff from 50 ms to 2 s; each delay is drawn from its upper half.
#[derive(Debug)]
struct Backoff {
    current: Duration,
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(2);

    fn new() -> Self {
        Self { current: Self::MIN }
    }

    fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (base * 2).min(Self::MAX);
        let half = base / 2;
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(rand::random_range(0..=spread))
    }
}

/// Why a connection did not get past the handshake.
#[derive(Debug)]
enum HandshakeError {
    /// Could not connect, or the stream failed or closed: the agent is not there (yet).
    Connect(io::Error),
    /// The agent broke the protocol.
    Protocol(String),
    /// The agent refused, or answered something we cannot use.
    Refused(String),
}

impl From<ReadError> for HandshakeError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Eof => Self::Connect(io::ErrorKind::UnexpectedEof.into()),
            ReadError::Io(e) => Self::Connect(e),
            ReadError::Protocol(e) => Self::Protocol(e.to_string()),
            ReadError::Carrier(why) => Self::Protocol(why),
        }
    }
}

/// One connection from connect to close, over the slot's carrier. Returns whether the
/// handshake succeeded.
async fn session(shared: &Arc<Shared>, slot: usize) -> bool {
    let max_frame = shared.config.max_frame;
    match &shared.config.endpoint {
        Endpoint::Unix(path) => {
            serve(shared, slot, |queue| connect_unix(path, max_frame, queue)).await
        }
        #[cfg(feature = "grpc")]
        Endpoint::Grpc(addr) => {
            serve(shared, slot, |queue| {
                transport::grpc::connect(addr, max_frame, queue)
            })
            .await
        }
    }
}

/// Connects to a Unix socket; the writer drains `queue` into it.
async fn connect_unix(
    path: &Path,
    max_frame: u32,
    queue: mpsc::Receiver<Bytes>,
) -> io::Result<(
    ByteSource<OwnedReadHalf>,
    impl Future<Output = io::Result<()>> + use<>,
)> {
    let (r, w) = UnixStream::connect(path).await?.into_split();
    Ok((
        ByteSource::new(r, max_frame),
        transport::write_frames(w, queue),
    ))
}

/// Connects with `connect` (given the connection's queue; returns the frame source and the
/// writer draining the queue), handshakes, and serves the connection until it closes.
async fn serve<S, W, C>(
    shared: &Arc<Shared>,
    slot: usize,
    connect: impl FnOnce(mpsc::Receiver<Bytes>) -> C,
) -> bool
where
    S: FrameSource,
    W: Future<Output = io::Result<()>>,
    C: Future<Output = io::Result<(S, W)>>,
{
    let config = &shared.config;
    let agent = config.agent_id.as_str();
    let (tx, rx) = mpsc::channel(config.max_in_flight + CONTROL_ROOM);
    let deadline = Instant::now() + config.handshake_timeout;
    let connected = tokio::time::timeout_at(deadline, connect(rx)).await;
    let Some((mut source, writer)) = report(
        shared,
        connected.map(|c| c.map_err(HandshakeError::Connect)),
    ) else {
        return false;
    };
    let mut writer = std::pin::pin!(writer);
    let answered = tokio::time::timeout_at(
        deadline,
        handshake(shared, &tx, &mut source, writer.as_mut()),
    )
    .await;
    let Some(response) = report(shared, answered) else {
        return false;
    };
    let live = Arc::new(Live {
        tx,
        pending: Pending::new(config.max_in_flight),
        encoding: response.chosen_encoding(),
        cancellation: response.capabilities.features.cancellation,
        healthy: AtomicBool::new(true),
        paused: AtomicBool::new(false),
    });
    *lock(&shared.capabilities) = Some(response.capabilities);
    shared.rejected.store(false, Ordering::Relaxed);
    let published = Published::new(shared, slot, live.clone());
    tracing::debug!(agent, encoding = %live.encoding, "agent connection up");
    let closed = tokio::select! {
        closed = read_loop(shared, &live, &mut source) => closed,
        written = writer => written.map_or_else(ReadError::Io, |()| ReadError::Eof),
    };
    let error = if let Some(why) = closed.violation() {
        bump(&shared.counters.protocol_errors);
        tracing::warn!(agent, error = %why, "agent broke the protocol; reconnecting");
        CallError::Protocol(why)
    } else {
        tracing::debug!(agent, reason = %closed, "agent connection closed");
        CallError::Disconnected
    };
    published.close(&error);
    true
}

/// Counts and logs a failed start; what it produced when it succeeded.
fn report<T>(shared: &Shared, started: Result<Result<T, HandshakeError>, Elapsed>) -> Option<T> {
    let agent = shared.config.agent_id.as_str();
    match started {
        Ok(Ok(up)) => return Some(up),
        Ok(Err(HandshakeError::Connect(e))) => {
            tracing::debug!(agent, error = %e, "agent connection failed");
        }
        Ok(Err(HandshakeError::Protocol(e))) => {
            bump(&shared.counters.protocol_errors);
            tracing::warn!(agent, error = %e, "agent broke the protocol in the handshake");
        }
        Ok(Err(HandshakeError::Refused(why))) => {
            bump(&shared.counters.handshake_failures);
            tracing::warn!(agent, error = %why, "agent handshake failed");
        }
        Err(_) => {
            bump(&shared.counters.handshake_failures);
            let timeout = shared.config.handshake_timeout;
            tracing::warn!(agent, ?timeout, "agent handshake timed out");
        }
    }
    None
}

/// Queues the hello on the fresh connection's queue and reads the answer, while `writer`
/// sends it; the caller bounds it with the handshake timeout.
async fn handshake<W: Future<Output = io::Result<()>>>(
    shared: &Shared,
    tx: &mpsc::Sender<Bytes>,
    source: &mut impl FrameSource,
    writer: Pin<&mut W>,
) -> Result<HandshakeResponse, HandshakeError> {
    let config = &shared.config;
    let hello = Message::HandshakeRequest(HandshakeRequest {
        supported_versions: vec![PROTOCOL_VERSION],
        proxy_id: "zentinel".into(),
        proxy_version: config.proxy_version.clone(),
        config: lock(&shared.agent_config).clone(),
        supported_encodings: config.encodings.clone(),
    });
    let frame = shared
        .encode(&hello, Encoding::Json)
        .map_err(|e| HandshakeError::Refused(e.to_string()))?;
    // The queue is new and empty: the hello always fits.
    tx.try_send(frame)
        .map_err(|_| HandshakeError::Connect(io::ErrorKind::BrokenPipe.into()))?;
    let frame = tokio::select! {
        frame = source.next_frame() => frame?,
        written = writer => {
            let e = written.err().unwrap_or_else(|| io::ErrorKind::UnexpectedEof.into());
            return Err(HandshakeError::Connect(e));
        }
    };
    let response = match Message::decode(&frame, Encoding::Json) {
        Ok(Message::HandshakeResponse(r)) => r,
        Ok(other) => {
            let unexpected = ProtocolError::Unexpected(other.message_type());
            return Err(HandshakeError::Protocol(unexpected.to_string()));
        }
        Err(e) => return Err(HandshakeError::Protocol(e.to_string())),
    };
    check(shared, response)
}

/// Accepts a handshake answer only if it succeeded with a version and encoding we offered.
fn check(
    shared: &Shared,
    response: HandshakeResponse,
) -> Result<HandshakeResponse, HandshakeError> {
    if !response.success {
        shared.rejected.store(true, Ordering::Relaxed);
        let why = response.error.unwrap_or_else(|| "no reason given".into());
        return Err(HandshakeError::Refused(format!("agent refused: {why}")));
    }
    if response.protocol_version != PROTOCOL_VERSION {
        return Err(HandshakeError::Refused(format!(
            "agent chose protocol version {}, not offered",
            response.protocol_version
        )));
    }
    let encoding = response.chosen_encoding();
    if encoding != Encoding::Json && !shared.config.encodings.contains(&encoding) {
        return Err(HandshakeError::Refused(format!(
            "agent chose encoding {encoding}, not offered"
        )));
    }
    Ok(response)
}

/// Reads and handles frames until the connection fails.
async fn read_loop(shared: &Shared, live: &Live, source: &mut impl FrameSource) -> ReadError {
    loop {
        let frame = match source.next_frame().await {
            Ok(frame) => frame,
            Err(e) => return e,
        };
        if let Err(e) = handle(shared, live, &frame) {
            return ReadError::Protocol(e);
        }
    }
}

/// Handles one frame from the agent.
fn handle(shared: &Shared, live: &Live, frame: &Frame) -> Result<(), ProtocolError> {
    match Message::decode(frame, live.encoding)? {
        Message::AgentResponse(response) => {
            let id = response.correlation().map(str::to_owned);
            if !id.is_some_and(|id| live.pending.complete(&id, response)) {
                bump(&shared.counters.unknown_correlation);
            }
        }
        Message::Ping(ping) => {
            // Best effort: a full queue means the connection is busy, not dead.
            if let Ok(pong) = shared.encode(&Message::Pong(ping), live.encoding) {
                let _ = live.tx.try_send(pong);
            }
        }
        Message::Pong(_) => {}
        Message::HealthStatus(h) => live
            .healthy
            .store(h.state.accepts_new_calls(), Ordering::Relaxed),
        Message::FlowControl(f) => live
            .paused
            .store(f.action == FlowAction::Pause, Ordering::Relaxed),
        Message::ConfigUpdateRequest(_) => {
            let sent = shared
                .configure_frame(live.encoding)
                .is_ok_and(|frame| live.tx.try_send(frame).is_ok());
            if !sent {
                bump(&shared.counters.notifications_dropped);
            }
        }
        Message::MetricsReport(m) => *lock(&shared.metrics) = Some(m.0),
        other => return Err(ProtocolError::Unexpected(other.message_type())),
    }
    Ok(())
}

/// A live connection published in its slot. Closing it (or dropping it, when the session is
/// cut short by shutdown) unpublishes it, then fails its pending calls.
struct Published<'a> {
    shared: &'a Shared,
    slot: usize,
    live: Arc<Live>,
}

impl<'a> Published<'a> {
    fn new(shared: &'a Shared, slot: usize, live: Arc<Live>) -> Self {
        *lock(&shared.slots[slot]) = Some(live.clone());
        Self { shared, slot, live }
    }

    fn close(&self, error: &CallError) {
        let mut slot = lock(&self.shared.slots[self.slot]);
        if slot.as_ref().is_some_and(|l| Arc::ptr_eq(l, &self.live)) {
            *slot = None;
        }
        drop(slot);
        self.live.pending.close(error);
    }
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        self.close(&CallError::Disconnected);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_two_seconds_with_jitter_in_the_upper_half() {
        let mut b = Backoff::new();
        let mut base = Duration::from_millis(50);
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(
                d >= base / 2 && d <= base,
                "{d:?} outside [{:?}, {base:?}]",
                base / 2
            );
            base = (base * 2).min(Duration::from_secs(2));
        }
        assert_eq!(b.current, Duration::from_secs(2));
    }
}
