//! The agent's side of the gRPC carrier: serve HTTP/2 on one accepted TCP connection and turn
//! each `Session` stream into a protocol connection.
//!
//! Every session runs in a task owned by its HTTP/2 connection's task, so dropping that task
//! (or the connection ending) ends its sessions; nothing outlives the `serve_grpc` future.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tonic::body::Body;
use tonic::server::StreamingService;
use tonic::{Status, Streaming};

use super::{FrameCodec, GrpcSource, Outbound, Received, SESSION_PATH, StreamClosed};

/// Sessions accepted but not yet started, per HTTP/2 connection.
const SESSION_BACKLOG: usize = 16;

/// One `Session` stream: the proxy's frames, the queue for the agent's frames, and the
/// carrier's writer.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) source: GrpcSource,
    pub(crate) queue: mpsc::Sender<Bytes>,
    pub(crate) closed: StreamClosed,
}

/// How one HTTP/2 connection is served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) max_frame: u32,
    /// Capacity of each session's queue of outgoing frames.
    pub(crate) queue: usize,
    /// How long a new connection may take to open its first `Session`.
    pub(crate) first_session: Duration,
}

/// Serves HTTP/2 on `tcp` until the proxy closes it, running `handle` for every `Session`
/// stream. A connection that opens no session in time is closed, like a Unix-socket
/// connection that sends no handshake.
pub(crate) async fn serve_connection<F, Fut>(tcp: TcpStream, settings: Settings, handle: F)
where
    F: Fn(Session) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, mut accepted) = mpsc::channel(SESSION_BACKLOG);
    let sessions = Accept {
        sessions: tx,
        max_frame: settings.max_frame,
        queue: settings.queue,
    };
    let service = hyper::service::service_fn(move |request| {
        let sessions = sessions.clone();
        async move { Ok::<_, Infallible>(route(request, sessions).await) }
    });
    let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tcp), service);
    let mut connection = std::pin::pin!(connection);
    let mut running = JoinSet::new();
    let first_session = tokio::time::sleep(settings.first_session);
    let mut first_session = std::pin::pin!(first_session);
    let mut opened = false;
    loop {
        tokio::select! {
            done = &mut connection => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "proxy HTTP/2 connection failed");
                }
                return;
            }
            Some(session) = accepted.recv() => {
                opened = true;
                running.spawn(handle(session));
            }
            () = &mut first_session, if !opened => {
                tracing::warn!("closing a gRPC connection that opened no session in time");
                return;
            }
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
}

/// Answers one HTTP/2 request: a `Session` call, or `UNIMPLEMENTED`.
async fn route(request: http::Request<Incoming>, sessions: Accept) -> http::Response<Body> {
    if request.uri().path() != SESSION_PATH {
        let why = format!("no method {}", request.uri().path());
        return Status::unimplemented(why).into_http();
    }
    let limit = super::message_limit(sessions.max_frame);
    tonic::server::Grpc::new(FrameCodec)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit)
        .streaming(sessions, request)
        .await
}

/// Hands each new `Session` stream to the connection's task.
#[derive(Debug, Clone)]
struct Accept {
    sessions: mpsc::Sender<Session>,
    max_frame: u32,
    queue: usize,
}

impl StreamingService<Received> for Accept {
    type Response = Bytes;
    type ResponseStream = Replies;
    type Future = std::future::Ready<Result<tonic::Response<Replies>, Status>>;

    fn call(&mut self, request: tonic::Request<Streaming<Received>>) -> Self::Future {
        let (queue, rx) = mpsc::channel(self.queue);
        let (outbound, closed) = super::outbound(rx);
        let session = Session {
            source: GrpcSource::open(request.into_inner(), self.max_frame),
            queue,
            closed,
        };
        std::future::ready(match self.sessions.try_send(session) {
            Ok(()) => Ok(tonic::Response::new(Replies(outbound))),
            Err(_) => Err(Status::resource_exhausted("too many sessions being opened")),
        })
    }
}

/// The agent's frames as the response stream.
#[derive(Debug)]
pub(crate) struct Replies(Outbound);

impl Stream for Replies {
    type Item = Result<Bytes, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|frame| frame.map(Ok))
    }
}
