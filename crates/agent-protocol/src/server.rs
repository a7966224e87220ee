//! The agent's side of the transport: accept the proxy's connections on a Unix socket (or,
//! with feature `grpc`, a TCP listener serving gRPC — see `serve_grpc`) and run an
//! [`Agent`] for each.
//!
//! Per connection: the handshake (the encoding is the first of the agent's preferences the
//! proxy offers, JSON otherwise), then every event in its own task, at most
//! `max_concurrent_per_connection` at once, answers written as they finish (in any order).
//! `Cancel` aborts the task of that correlation ID, `Ping` is answered with `Pong`,
//! `RequestComplete` gets no answer. A protocol error closes that connection only; dropping
//! the `serve` future closes every connection. The carrier only moves frames: this code is
//! the same for a Unix socket and a gRPC stream.

#[cfg(feature = "grpc")]
mod grpc;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{AbortHandle, JoinError, JoinSet};

use crate::PROTOCOL_VERSION;
use crate::encoding::Encoding;
use crate::error::ProtocolError;
use crate::frame::Frame;
use crate::message::Message;
use crate::message::decision::AgentResponse;
use crate::message::event::{Configure, Event};
use crate::message::handshake::HandshakeResponse;
use crate::sdk::{Agent, ServeOptions};
use crate::transport::{self, ByteSource, FrameSource, ReadError};

#[cfg(feature = "grpc")]
pub use grpc::{serve_grpc, serve_grpc_with};

/// Frames queued for a connection's writer.
const OUT_QUEUE: usize = 256;

/// Serves `agent` on `listener` with [`ServeOptions::default`]. Returns only when accepting
/// fails.
pub async fn serve<A: Agent>(listener: UnixListener, agent: Arc<A>) -> io::Result<()> {
    serve_with(listener, agent, ServeOptions::default()).await
}

/// Binds `path` (see [`bind`]) and serves `agent` there with [`ServeOptions::default`].
pub async fn serve_path<A: Agent>(path: impl AsRef<Path>, agent: Arc<A>) -> io::Result<()> {
    serve(bind(path.as_ref()).await?, agent).await
}

/// The main loop of an agent binary: runs `serving` until SIGTERM or SIGINT (then `Ok`) or
/// until it ends by itself (its result), and removes the socket file at `socket` either way.
/// Dropping `serving` closes every connection it accepted.
pub async fn until_shutdown(
    socket: &Path,
    serving: impl Future<Output = io::Result<()>>,
) -> io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let result = tokio::select! {
        served = serving => served,
        _ = term.recv() => {
            tracing::info!("SIGTERM: stopping");
            Ok(())
        }
        _ = int.recv() => {
            tracing::info!("SIGINT: stopping");
            Ok(())
        }
    };
    if let Err(e) = std::fs::remove_file(socket) {
        tracing::debug!(error = %e, "socket file not removed");
    }
    result
}

/// Binds a Unix listener at `path`, first removing a stale socket left by a previous run.
/// Refuses when another process is listening there or `path` is not a socket.
pub async fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).await.is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by another agent", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

/// Serves `agent` on `listener` with `options`. Returns only when accepting fails; dropping
/// the future closes every connection it accepted.
pub async fn serve_with<A: Agent>(
    listener: UnixListener,
    agent: Arc<A>,
    options: ServeOptions,
) -> io::Result<()> {
    let options = Arc::new(options);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let (r, w) = stream.into_split();
                let (tx, rx) = mpsc::channel(OUT_QUEUE);
                let source = ByteSource::new(r, options.max_frame);
                let writer = transport::write_frames(w, rx);
                connections.spawn(connection(source, tx, writer, agent.clone(), options.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Runs one connection of any carrier: frames from `source`; frames for the proxy go on
/// `tx`, which `writer` drains (it resolves when the carrier fails or closes).
async fn connection<A, S, W>(
    source: S,
    tx: mpsc::Sender<Bytes>,
    writer: W,
    agent: Arc<A>,
    options: Arc<ServeOptions>,
) where
    A: Agent,
    S: FrameSource,
    W: Future<Output = io::Result<()>> + Send,
{
    match run_connection(source, tx, writer, agent, &options).await {
        Ok(()) | Err(ReadError::Eof) => tracing::debug!("proxy connection closed"),
        Err(e) => tracing::warn!(error = %e, "closing proxy connection"),
    }
}

async fn run_connection<A, S, W>(
    mut source: S,
    tx: mpsc::Sender<Bytes>,
    writer: W,
    agent: Arc<A>,
    options: &ServeOptions,
) -> Result<(), ReadError>
where
    A: Agent,
    S: FrameSource,
    W: Future<Output = io::Result<()>> + Send,
{
    let hello = tokio::time::timeout(options.handshake_timeout, source.next_frame())
        .await
        .map_err(|_| ReadError::Io(io::ErrorKind::TimedOut.into()))??;
    let (answer, encoding) = handshake(&*agent, options, &hello)?;
    tx.send(answer).await.map_err(|_| ReadError::Eof)?;
    let Some(encoding) = encoding else {
        // Let the writer deliver the refusal, then close.
        drop(tx);
        return match tokio::time::timeout(options.handshake_timeout, writer).await {
            Ok(written) => written.map_err(ReadError::Io),
            Err(_) => Ok(()),
        };
    };
    let mut conn = Connection {
        agent,
        encoding,
        max_frame: options.max_frame,
        tx,
        permits: Arc::new(Semaphore::new(options.max_concurrent_per_connection.max(1))),
        tasks: JoinSet::new(),
        running: HashMap::new(),
    };
    tokio::select! {
        read = conn.read_loop(&mut source) => read,
        written = writer => written.map_err(ReadError::Io),
    }
}

/// Answers the handshake in `frame`: the encoded answer, and the connection's encoding or
/// `None` when refused.
fn handshake<A: Agent>(
    agent: &A,
    options: &ServeOptions,
    frame: &Frame,
) -> Result<(Bytes, Option<Encoding>), ReadError> {
    let request = match Message::decode(frame, Encoding::Json)? {
        Message::HandshakeRequest(r) => r,
        other => return Err(ProtocolError::Unexpected(other.message_type()).into()),
    };
    let encoding = options
        .encodings
        .iter()
        .copied()
        .find(|e| request.supported_encodings.contains(e))
        .unwrap_or(Encoding::Json);
    let capabilities = agent.capabilities();
    let response = if !request.supported_versions.contains(&PROTOCOL_VERSION) {
        let why = format!("protocol version {PROTOCOL_VERSION} not offered");
        HandshakeResponse::reject(capabilities, why)
    } else {
        match agent.on_configure(request.config) {
            Ok(()) => HandshakeResponse::accept(capabilities, encoding),
            Err(why) => HandshakeResponse::reject(capabilities, why),
        }
    };
    let accepted = response.success;
    if let Some(why) = &response.error {
        tracing::warn!(error = %why, "refusing the proxy's handshake");
    }
    let mut out = BytesMut::new();
    Message::HandshakeResponse(response).encode(Encoding::Json, options.max_frame, &mut out)?;
    Ok((out.freeze(), accepted.then_some(encoding)))
}

/// One accepted connection after its handshake.
struct Connection<A> {
    agent: Arc<A>,
    encoding: Encoding,
    max_frame: u32,
    tx: mpsc::Sender<Bytes>,
    permits: Arc<Semaphore>,
    /// Every handler task; dropping the set (connection closed) aborts them.
    tasks: JoinSet<String>,
    /// Tasks answering an event, by correlation ID, for `Cancel`.
    running: HashMap<String, AbortHandle>,
}

impl<A: Agent> Connection<A> {
    async fn read_loop(&mut self, source: &mut impl FrameSource) -> Result<(), ReadError> {
        loop {
            tokio::select! {
                frame = source.next_frame() => self.dispatch(&frame?)?,
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.reap(done);
                }
            }
        }
    }

    fn dispatch(&mut self, frame: &Frame) -> Result<(), ProtocolError> {
        let message = match Event::try_from(Message::decode(frame, self.encoding)?) {
            Ok(event) => {
                self.spawn_answer(event);
                return Ok(());
            }
            Err(message) => message,
        };
        match message {
            Message::RequestComplete(event) => {
                let (agent, permits) = (self.agent.clone(), self.permits.clone());
                self.tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    agent.on_request_complete(event).await;
                    String::new()
                });
            }
            Message::Cancel(cancel) => {
                if let Some(task) = self.running.remove(&cancel.correlation_id) {
                    task.abort();
                }
            }
            Message::Ping(ping) => {
                let mut out = BytesMut::new();
                Message::Pong(ping).encode(self.encoding, self.max_frame, &mut out)?;
                // Best effort: a full queue means the connection is busy, not dead.
                let _ = self.tx.try_send(out.freeze());
            }
            Message::Pong(_) => {}
            Message::Configure(Configure(config)) => {
                if let Err(why) = self.agent.on_configure(config) {
                    tracing::warn!(error = %why, "configuration refused");
                }
            }
            other => return Err(ProtocolError::Unexpected(other.message_type())),
        }
        Ok(())
    }

    fn spawn_answer(&mut self, event: Event) {
        let id = event.correlation_id().to_owned();
        let (agent, permits, tx) = (self.agent.clone(), self.permits.clone(), self.tx.clone());
        let (encoding, max_frame, task_id) = (self.encoding, self.max_frame, id.clone());
        let task = self.tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return task_id;
            };
            let mut response = answer(&*agent, event).await;
            if response.correlation_id.is_empty() {
                response.correlation_id.clone_from(&task_id);
            }
            let mut out = BytesMut::new();
            match Message::AgentResponse(response).encode(encoding, max_frame, &mut out) {
                Ok(()) => {
                    let _ = tx.send(out.freeze()).await;
                }
                Err(e) => {
                    tracing::warn!(correlation_id = %task_id, error = %e, "cannot send answer")
                }
            }
            task_id
        });
        if let Some(older) = self.running.insert(id, task) {
            older.abort();
        }
    }

    fn reap(&mut self, done: Result<(tokio::task::Id, String), JoinError>) {
        match done {
            Ok((task, id)) => {
                if self.running.get(&id).is_some_and(|t| t.id() == task) {
                    self.running.remove(&id);
                }
            }
            Err(e) => {
                let task = e.id();
                self.running.retain(|_, t| t.id() != task);
                if e.is_panic() {
                    tracing::error!("agent handler panicked");
                }
            }
        }
    }
}

async fn answer<A: Agent>(agent: &A, event: Event) -> AgentResponse {
    match event {
        Event::RequestHeaders(e) => agent.on_request_headers(e).await,
        Event::RequestBodyChunk(e) => agent.on_request_body(e).await,
        Event::ResponseHeaders(e) => agent.on_response_headers(e).await,
        Event::ResponseBodyChunk(e) => agent.on_response_body(e).await,
        Event::WebSocketFrame(e) => agent.on_websocket_frame(e).await,
        Event::GuardrailInspect(e) => agent.on_guardrail_inspect(e).await,
    }
}
