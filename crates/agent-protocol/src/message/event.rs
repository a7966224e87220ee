//! Events, proxy → agent: what happened to a request, one message per phase.
//!
//! Every event carries a top-level `correlation_id`. Readers are tolerant: unknown fields are
//! ignored and every field has a default, so an agent built for an older version still reads
//! events from a newer proxy. Event structs are plain data built by the proxy and are *not*
//! `#[non_exhaustive]` on purpose: a new field must be filled in by every producer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::encoding::Body;
use crate::frame::MessageType;
use crate::message::Message;

/// Request or response headers: lowercase names, each with all its values in order.
pub type Headers = BTreeMap<String, Vec<String>>;

/// Facts about a request that do not come from its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestMetadata {
    /// Same as the event's `correlation_id`.
    pub correlation_id: String,
    /// The request ID the proxy forwards upstream.
    pub request_id: String,
    /// The trusted client address (after X-Forwarded-For / PROXY protocol), without port.
    pub client_ip: String,
    /// The client's source port.
    pub client_port: u16,
    /// The address of the socket peer (may be a load balancer in front of the proxy).
    pub peer_ip: String,
    /// TLS SNI, when the connection is TLS and sent one.
    pub server_name: Option<String>,
    /// `"HTTP/1.1"`, `"HTTP/2"`, ...
    pub protocol: String,
    /// `"TLSv1.3"`, ... when the connection is TLS.
    pub tls_version: Option<String>,
    /// The negotiated cipher suite when the connection is TLS.
    pub tls_cipher: Option<String>,
    /// The matched route.
    pub route_id: String,
    /// The route's upstream, when it has one.
    pub upstream_id: Option<String>,
    /// When the request arrived, RFC 3339 UTC.
    pub timestamp: String,
    /// W3C trace context of the request, when there is one.
    pub traceparent: Option<String>,
}

/// Request headers (0x10).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestHeaders {
    /// Matches the call to its [`AgentResponse`](crate::AgentResponse).
    pub correlation_id: String,
    /// Facts about the request.
    pub metadata: RequestMetadata,
    /// `"GET"`, `"POST"`, ...
    pub method: String,
    /// Path and query as received (`/api/users?id=1`).
    pub uri: String,
    /// The request headers.
    pub headers: Headers,
}

/// A chunk of the request body (0x11).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestBodyChunk {
    /// The request's correlation ID (with the proxy's per-call suffix).
    pub correlation_id: String,
    /// The chunk.
    pub data: Body,
    /// Whether this is the last chunk.
    pub is_last: bool,
    /// The whole body's size, when known (Content-Length).
    pub total_size: Option<u64>,
    /// 0 for the first chunk.
    pub chunk_index: u64,
    /// Body bytes received so far, this chunk included.
    pub bytes_received: u64,
}

/// A chunk of the response body (0x13).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResponseBodyChunk {
    /// The request's correlation ID (with the proxy's per-call suffix).
    pub correlation_id: String,
    /// The chunk.
    pub data: Body,
    /// Whether this is the last chunk.
    pub is_last: bool,
    /// The whole body's size, when known (Content-Length).
    pub total_size: Option<u64>,
    /// 0 for the first chunk.
    pub chunk_index: u64,
    /// Body bytes sent so far, this chunk included.
    pub bytes_sent: u64,
}

/// The upstream's response headers (0x12).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResponseHeaders {
    /// The request's correlation ID (with the proxy's per-call suffix).
    pub correlation_id: String,
    /// The response status.
    pub status: u16,
    /// The response headers.
    pub headers: Headers,
}

/// The request is finished (0x14). No reply is expected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestComplete {
    /// The request's correlation ID.
    pub correlation_id: String,
    /// The status sent to the client.
    pub status: u16,
    /// Time from the request's arrival to the end of the response.
    pub duration_ms: u64,
    /// Request body bytes received.
    pub request_body_size: u64,
    /// Response body bytes sent.
    pub response_body_size: u64,
    /// Upstream tries (0 when the upstream was never contacted).
    pub upstream_attempts: u32,
    /// What went wrong, when something did.
    pub error: Option<String>,
}

/// One WebSocket frame (0x15), after the upgrade.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebSocketFrame {
    /// The upgraded request's correlation ID.
    pub correlation_id: String,
    /// RFC 6455 opcode: 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong.
    pub opcode: u8,
    /// The unmasked frame payload.
    pub data: Body,
    /// `true` client → server, `false` server → client.
    pub client_to_server: bool,
    /// 0 for the first frame of the connection, counted per direction.
    pub frame_index: u64,
    /// The FIN bit.
    pub fin: bool,
}

/// Content for an inference guardrail (0x16).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuardrailInspect {
    /// The request's correlation ID.
    pub correlation_id: String,
    /// `"prompt"` (request to the model) or `"response"` (the model's answer).
    pub inspection_type: String,
    /// The text to inspect.
    pub content: String,
    /// The model named by the request, when known.
    pub model: Option<String>,
    /// Categories the route asks to check (e.g. `"pii"`, `"prompt-injection"`); empty = all.
    pub categories: Vec<String>,
}

/// The agent's configuration (0x17): the payload *is* the agent's `config {}` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Configure(pub serde_json::Value);

/// An event that expects an [`AgentResponse`](crate::AgentResponse): what the proxy sends
/// with a call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[expect(
    clippy::large_enum_variant,
    reason = "request headers are the most common event; boxing them costs an allocation per call"
)]
pub enum Event {
    /// See [`RequestHeaders`].
    RequestHeaders(RequestHeaders),
    /// See [`RequestBodyChunk`].
    RequestBodyChunk(RequestBodyChunk),
    /// See [`ResponseHeaders`].
    ResponseHeaders(ResponseHeaders),
    /// See [`ResponseBodyChunk`].
    ResponseBodyChunk(ResponseBodyChunk),
    /// See [`WebSocketFrame`].
    WebSocketFrame(WebSocketFrame),
    /// See [`GuardrailInspect`].
    GuardrailInspect(GuardrailInspect),
}

impl Event {
    /// The correlation ID the answer must carry.
    pub fn correlation_id(&self) -> &str {
        match self {
            Self::RequestHeaders(e) => &e.correlation_id,
            Self::RequestBodyChunk(e) => &e.correlation_id,
            Self::ResponseHeaders(e) => &e.correlation_id,
            Self::ResponseBodyChunk(e) => &e.correlation_id,
            Self::WebSocketFrame(e) => &e.correlation_id,
            Self::GuardrailInspect(e) => &e.correlation_id,
        }
    }

    /// The frame type the event travels in.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::RequestHeaders(_) => MessageType::RequestHeaders,
            Self::RequestBodyChunk(_) => MessageType::RequestBodyChunk,
            Self::ResponseHeaders(_) => MessageType::ResponseHeaders,
            Self::ResponseBodyChunk(_) => MessageType::ResponseBodyChunk,
            Self::WebSocketFrame(_) => MessageType::WebSocketFrame,
            Self::GuardrailInspect(_) => MessageType::GuardrailInspect,
        }
    }
}

impl From<Event> for Message {
    fn from(e: Event) -> Self {
        match e {
            Event::RequestHeaders(e) => Self::RequestHeaders(e),
            Event::RequestBodyChunk(e) => Self::RequestBodyChunk(e),
            Event::ResponseHeaders(e) => Self::ResponseHeaders(e),
            Event::ResponseBodyChunk(e) => Self::ResponseBodyChunk(e),
            Event::WebSocketFrame(e) => Self::WebSocketFrame(e),
            Event::GuardrailInspect(e) => Self::GuardrailInspect(e),
        }
    }
}

impl TryFrom<Message> for Event {
    type Error = Message;

    /// The event inside `m`, or `m` back when it is not an event that expects an answer.
    fn try_from(m: Message) -> Result<Self, Message> {
        match m {
            Message::RequestHeaders(e) => Ok(Self::RequestHeaders(e)),
            Message::RequestBodyChunk(e) => Ok(Self::RequestBodyChunk(e)),
            Message::ResponseHeaders(e) => Ok(Self::ResponseHeaders(e)),
            Message::ResponseBodyChunk(e) => Ok(Self::ResponseBodyChunk(e)),
            Message::WebSocketFrame(e) => Ok(Self::WebSocketFrame(e)),
            Message::GuardrailInspect(e) => Ok(Self::GuardrailInspect(e)),
            other => Err(other),
        }
    }
}

macro_rules! event_from {
    ($($t:ident),*) => {$(
        impl From<$t> for Event {
            fn from(e: $t) -> Self {
                Self::$t(e)
            }
        }
    )*};
}

event_from!(
    RequestHeaders,
    RequestBodyChunk,
    ResponseHeaders,
    ResponseBodyChunk,
    WebSocketFrame,
    GuardrailInspect
);
