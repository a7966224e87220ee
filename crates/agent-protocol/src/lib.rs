//! Zentinel's agent protocol, version 2: the contract between the proxy and the external
//! processes ("agents") that inspect its traffic and return decisions.
//!
//! The wire format is specified in `docs/agent-protocol.md`; the test vectors in `vectors/`
//! pin every message byte for byte, in JSON and MessagePack.
//!
//! - [`frame`]: the sans-IO frame codec (`length: u32 BE | type: u8 | payload`).
//! - [`encoding`]: JSON and MessagePack payloads, and [`Body`] (base64 in JSON).
//! - [`message`]: one type per message, and [`Message`], which converts frames to values.
//! - [`error`]: [`ProtocolError`], the one error of this layer.
//! - `client` (feature `client`): `AgentClient`, the proxy's multiplexed connections to one
//!   agent.
//! - `sdk` and `server` (feature `server`): the Rust agent SDK — implement `Agent`, call
//!   `serve_path`.
//! - Feature `grpc` adds the gRPC transport (`proto/zentinel_agent.proto`) to both: the
//!   client's `Endpoint::Grpc` and the SDK's `serve_grpc`. It carries the same frames, so
//!   every rule of the protocol is the same code as over the Unix socket. Plain-text HTTP/2
//!   only: TLS for gRPC agents is not built yet.
//!
//! Without features the crate has no async runtime and does no I/O.
//!
//! # Writing an agent
//!
//! An agent that refuses `/admin` with 403 and tags every other request:
//!
//! ```no_run
//! # #[cfg(feature = "server")]
//! # mod example {
//! use std::sync::Arc;
//!
//! use zentinel_agent_protocol::{
//!     Agent, AgentResponse, Capabilities, HeaderOp, RequestHeaders, event_kind, serve_path,
//!     until_shutdown,
//! };
//!
//! struct AdminGate;
//!
//! impl Agent for AdminGate {
//!     fn capabilities(&self) -> Capabilities {
//!         Capabilities::new("admin-gate", [event_kind::REQUEST_HEADERS])
//!     }
//!
//!     async fn on_request_headers(&self, event: RequestHeaders) -> AgentResponse {
//!         if event.uri == "/admin" || event.uri.starts_with("/admin/") {
//!             AgentResponse::block(event.correlation_id, 403, "Forbidden")
//!         } else {
//!             AgentResponse::allow(event.correlation_id)
//!                 .with_request_header(HeaderOp::set("x-admin-gate", "passed"))
//!         }
//!     }
//! }
//!
//! #[tokio::main]
//! pub async fn main() -> std::io::Result<()> {
//!     // Serves until SIGTERM or SIGINT, then removes the socket file.
//!     let socket = std::path::Path::new("/run/zentinel/admin-gate.sock");
//!     until_shutdown(socket, serve_path(socket, Arc::new(AdminGate))).await
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! Point the proxy at it with `agents { agent "admin-gate" { transport { unix-socket
//! "/run/zentinel/admin-gate.sock" } events "request-headers" } }` and list it in a route's
//! `filters`.

#[cfg(feature = "client")]
pub mod client;
pub mod encoding;
pub mod error;
pub mod frame;
pub mod message;
#[cfg(feature = "server")]
pub mod sdk;
#[cfg(feature = "server")]
pub mod server;
#[cfg(any(feature = "client", feature = "server"))]
mod transport;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 2;

pub use encoding::{Body, Encoding};
pub use error::ProtocolError;
pub use frame::{DEFAULT_MAX_FRAME, Frame, FrameDecoder, MessageType, encode_frame};
pub use message::Message;
pub use message::control::{
    Cancel, CancelReason, ConfigUpdateRequest, FlowAction, FlowControl, HealthState, HealthStatus,
    MetricsReport, Ping,
};
pub use message::decision::{AgentResponse, AuditMetadata, BodyMutation, Decision, HeaderOp};
pub use message::event::{
    Configure, Event, GuardrailInspect, Headers, RequestBodyChunk, RequestComplete, RequestHeaders,
    RequestMetadata, ResponseBodyChunk, ResponseHeaders, WebSocketFrame,
};
pub use message::handshake::{
    Capabilities, Features, HandshakeRequest, HandshakeResponse, Limits, event_kind,
};

#[cfg(feature = "client")]
pub use client::{AgentClient, CallError, ClientConfig, ClientStats, Endpoint};
#[cfg(feature = "server")]
pub use sdk::{Agent, ServeOptions};
#[cfg(feature = "server")]
pub use server::{bind, serve, serve_path, serve_with, until_shutdown};
#[cfg(all(feature = "server", feature = "grpc"))]
pub use server::{serve_grpc, serve_grpc_with};
