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
//!
//! The core has no async runtime and does no I/O.

pub mod encoding;
pub mod error;
pub mod frame;
pub mod message;

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
