//! The proxy's side of the protocol: [`AgentClient`] keeps a few connections to one agent —
//! on its Unix socket, or (feature `grpc`) one gRPC `Session` stream per connection — and
//! multiplexes calls over them. The carrier only moves frames: handshake, dispatch,
//! reconnecting and the counters are the same code for both.
//!
//! It sits on the request path, so it never blocks and never waits without a bound: a call
//! goes out on a connection that is up or fails at once, the queue of pending calls per
//! connection is bounded, and a dead connection fails its pending calls immediately. Timeouts
//! belong to the caller: dropping a call's future abandons it (and sends `Cancel` when the
//! agent asked for it). Connecting, the handshake and reconnecting with backoff happen in
//! background tasks, which end when the last handle is dropped.

mod connection;
mod pending;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, watch};

use crate::encoding::Encoding;
use crate::error::ProtocolError;
use crate::frame::DEFAULT_MAX_FRAME;
use crate::message::Message;
use crate::message::decision::AgentResponse;
use crate::message::event::{Configure, Event, RequestComplete};
use crate::message::handshake::Capabilities;

use pending::{CallGuard, Pending};

/// Where an agent listens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// A Unix domain socket.
    Unix(PathBuf),
    /// A gRPC server (`zentinel.agent.v2.AgentService`): `"host:port"` or
    /// `"http://host:port"`. Plain-text HTTP/2; TLS for gRPC agents is not built yet, and an
    /// `https://` endpoint fails every connection attempt.
    #[cfg(feature = "grpc")]
    Grpc(String),
}

/// How to reach one agent and how much to trust it with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The agent's name in the proxy configuration (for logs).
    pub agent_id: String,
    /// Where the agent listens.
    pub endpoint: Endpoint,
    /// Connections to keep open (at least 1).
    pub connections: usize,
    /// Largest frame sent or accepted (type byte plus payload).
    pub max_frame: u32,
    /// Bound on connect plus handshake (for gRPC: name resolution, TCP, HTTP/2 and the
    /// `Session` call included).
    pub handshake_timeout: Duration,
    /// The agent's `config {}` block, sent in the handshake.
    pub config: serde_json::Value,
    /// The proxy's version, sent in the handshake.
    pub proxy_version: String,
    /// Encodings offered in the handshake, most preferred first.
    pub encodings: Vec<Encoding>,
    /// Calls pending at once on one connection; more fail with [`CallError::Overloaded`].
    pub max_in_flight: usize,
}

impl ClientConfig {
    /// An agent on the Unix socket at `path`, with the defaults of
    /// [`ClientConfig::with_endpoint`].
    pub fn new(agent_id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self::with_endpoint(agent_id, Endpoint::Unix(path.into()))
    }

    /// An agent serving gRPC at `addr` (`"host:port"` or `"http://host:port"`), with the
    /// defaults of [`ClientConfig::with_endpoint`].
    #[cfg(feature = "grpc")]
    pub fn grpc(agent_id: impl Into<String>, addr: impl Into<String>) -> Self {
        Self::with_endpoint(agent_id, Endpoint::Grpc(addr.into()))
    }

    /// Defaults: 1 connection, 16 MiB frames, 1 s handshake timeout (connect included), no
    /// config, MessagePack preferred over JSON, 1024 calls in flight per connection.
    pub fn with_endpoint(agent_id: impl Into<String>, endpoint: Endpoint) -> Self {
        Self {
            agent_id: agent_id.into(),
            endpoint,
            connections: 1,
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Duration::from_secs(1),
            config: serde_json::Value::Null,
            proxy_version: String::new(),
            encodings: vec![Encoding::MsgPack, Encoding::Json],
            max_in_flight: 1024,
        }
    }
}

/// Why a call produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No connection is up, healthy and unpaused right now.
    #[error("agent unavailable")]
    Unavailable,
    /// No connection is up and the agent's last handshake answer was `success:false`.
    #[error("agent rejected the handshake")]
    Rejected,
    /// The connection closed before the answer arrived.
    #[error("agent connection closed")]
    Disconnected,
    /// The connection was closed because the agent broke the protocol.
    #[error("agent protocol error: {0}")]
    Protocol(String),
    /// The connection's queue of pending calls is full.
    #[error("agent overloaded")]
    Overloaded,
    /// The event itself cannot be sent: an empty or already pending correlation ID, or a frame
    /// above the maximum. The caller's fault, not the agent's.
    #[error("invalid call: {0}")]
    Invalid(String),
}

impl CallError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Rejected => "rejected",
            Self::Disconnected => "disconnected",
            Self::Protocol(_) => "protocol",
            Self::Overloaded => "overloaded",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// A snapshot of a client's counters (monotonic since [`AgentClient::start`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Events sent to the agent.
    pub calls: u64,
    /// Connections closed because the agent broke the protocol.
    pub protocol_errors: u64,
    /// Answers dropped because no pending call had their correlation ID.
    pub unknown_correlation: u64,
    /// Connection attempts after the first one of each slot.
    pub reconnects: u64,
    /// Handshakes that failed: `success:false`, timeout, bad version or encoding.
    pub handshake_failures: u64,
    /// Notifications (`RequestComplete`, `Configure`) not sent: no connection or queue full.
    pub notifications_dropped: u64,
    /// `Cancel` frames sent for abandoned calls.
    pub cancels_sent: u64,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    protocol_errors: AtomicU64,
    unknown_correlation: AtomicU64,
    reconnects: AtomicU64,
    handshake_failures: AtomicU64,
    notifications_dropped: AtomicU64,
    cancels_sent: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Locks `m`, ignoring poisoning: every critical section here leaves the data consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection that completed its handshake.
#[derive(Debug)]
struct Live {
    /// Encoded frames for the connection's writer.
    tx: mpsc::Sender<Bytes>,
    pending: Pending,
    encoding: Encoding,
    /// The agent asked for `Cancel` frames.
    cancellation: bool,
    /// Health allows new calls (not draining or unhealthy).
    healthy: AtomicBool,
    /// Flow control paused the connection.
    paused: AtomicBool,
}

impl Live {
    fn ready(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.paused.load(Ordering::Relaxed)
    }
}

/// State shared by the handles and the connection tasks.
#[derive(Debug)]
struct Shared {
    config: ClientConfig,
    /// The configuration sent in handshakes and `Configure` (changed by `reconfigure`).
    agent_config: Mutex<serde_json::Value>,
    slots: Vec<Mutex<Option<Arc<Live>>>>,
    next: AtomicUsize,
    counters: Counters,
    /// The last handshake answer was `success:false`.
    rejected: AtomicBool,
    capabilities: Mutex<Option<Capabilities>>,
    metrics: Mutex<Option<serde_json::Value>>,
}

impl Shared {
    /// A ready connection, round robin.
    fn pick(&self) -> Option<Arc<Live>> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| {
            let slot = lock(&self.slots[(start + i) % n]);
            slot.as_ref().filter(|l| l.ready()).cloned()
        })
    }

    fn live(&self) -> Vec<Arc<Live>> {
        self.slots.iter().filter_map(|s| lock(s).clone()).collect()
    }

    fn unavailable(&self) -> CallError {
        if self.rejected.load(Ordering::Relaxed) {
            CallError::Rejected
        } else {
            CallError::Unavailable
        }
    }

    fn encode(&self, message: &Message, encoding: Encoding) -> Result<Bytes, ProtocolError> {
        let mut out = BytesMut::new();
        message.encode(encoding, self.config.max_frame, &mut out)?;
        Ok(out.freeze())
    }

    fn configure_frame(&self, encoding: Encoding) -> Result<Bytes, ProtocolError> {
        let config = lock(&self.agent_config).clone();
        self.encode(&Message::Configure(Configure(config)), encoding)
    }
}

/// Ends the background tasks when the last [`AgentClient`] clone is dropped.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    _shutdown: watch::Sender<()>,
}

/// Connections to one agent. Cheap to clone; the background tasks stop when the last clone
/// is dropped.
#[derive(Debug, Clone)]
pub struct AgentClient {
    inner: Arc<Handle>,
}

impl AgentClient {
    /// Starts one background task per connection slot on the current Tokio runtime; each
    /// connects, handshakes, serves, and reconnects with backoff. Returns at once: the client
    /// is not ready until a handshake completes (see [`AgentClient::is_ready`]).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, like `tokio::spawn`.
    pub fn start(mut config: ClientConfig) -> Self {
        config.connections = config.connections.max(1);
        config.max_in_flight = config.max_in_flight.max(1);
        let (shutdown, watch) = watch::channel(());
        let shared = Arc::new(Shared {
            agent_config: Mutex::new(config.config.clone()),
            slots: (0..config.connections).map(|_| Mutex::new(None)).collect(),
            config,
            next: AtomicUsize::new(0),
            counters: Counters::default(),
            rejected: AtomicBool::new(false),
            capabilities: Mutex::new(None),
            metrics: Mutex::new(None),
        });
        for slot in 0..shared.slots.len() {
            tokio::spawn(connection::run(shared.clone(), slot, watch.clone()));
        }
        Self {
            inner: Arc::new(Handle {
                shared,
                _shutdown: shutdown,
            }),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// Sends `event` and waits for the agent's answer. Fails at once when no connection is
    /// ready or the connection's queue is full; fails as soon as the connection dies. Has no
    /// timeout of its own: wrap it in the caller's. Cancel-safe: dropping the future forgets
    /// the call and, if the agent advertised `cancellation`, sends `Cancel` with reason 3.
    pub async fn call(&self, event: Event) -> Result<AgentResponse, CallError> {
        let shared = self.shared();
        let id = event.correlation_id().to_owned();
        if id.is_empty() {
            return Err(CallError::Invalid("empty correlation ID".into()));
        }
        let live = shared.pick().ok_or_else(|| shared.unavailable())?;
        let frame = shared
            .encode(&Message::from(event), live.encoding)
            .map_err(|e| CallError::Invalid(e.to_string()))?;
        let answer = live.pending.insert(&id)?;
        let mut guard = CallGuard::new(shared.clone(), live.clone(), id);
        if let Err(e) = live.tx.try_send(frame) {
            guard.forget();
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => CallError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => CallError::Disconnected,
            });
        }
        bump(&shared.counters.calls);
        let result = answer.await.unwrap_or(Err(CallError::Disconnected));
        guard.answered();
        result
    }

    /// Sends `RequestComplete` without waiting; dropped (and counted) when no connection is
    /// ready or its queue is full.
    pub fn notify(&self, event: RequestComplete) {
        let shared = self.shared();
        let sent = shared.pick().is_some_and(|live| {
            shared
                .encode(&Message::RequestComplete(event), live.encoding)
                .is_ok_and(|frame| live.tx.try_send(frame).is_ok())
        });
        if !sent {
            bump(&shared.counters.notifications_dropped);
        }
    }

    /// Replaces the agent's configuration: sent as `Configure` on every live connection now,
    /// and in every later handshake.
    pub fn reconfigure(&self, config: serde_json::Value) {
        let shared = self.shared();
        *lock(&shared.agent_config) = config;
        for live in shared.live() {
            let sent = shared
                .configure_frame(live.encoding)
                .is_ok_and(|frame| live.tx.try_send(frame).is_ok());
            if !sent {
                bump(&shared.counters.notifications_dropped);
            }
        }
    }

    /// Whether a call would find a connection right now.
    pub fn is_ready(&self) -> bool {
        self.shared()
            .slots
            .iter()
            .any(|s| lock(s).as_ref().is_some_and(|l| l.ready()))
    }

    /// The capabilities from the latest successful handshake.
    pub fn capabilities(&self) -> Option<Capabilities> {
        lock(&self.shared().capabilities).clone()
    }

    /// The latest `MetricsReport` payload the agent sent.
    pub fn metrics(&self) -> Option<serde_json::Value> {
        lock(&self.shared().metrics).clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ClientStats {
        let c = &self.shared().counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientStats {
            calls: get(&c.calls),
            protocol_errors: get(&c.protocol_errors),
            unknown_correlation: get(&c.unknown_correlation),
            reconnects: get(&c.reconnects),
            handshake_failures: get(&c.handshake_failures),
            notifications_dropped: get(&c.notifications_dropped),
            cancels_sent: get(&c.cancels_sent),
        }
    }
}
