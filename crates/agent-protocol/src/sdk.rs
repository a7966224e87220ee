//! The Rust agent SDK: implement [`Agent`] and hand it to [`serve_path`](crate::server::serve_path)
//! (or, with feature `grpc`, to `serve_grpc`).
//!
//! Every event method has a default that allows, so an agent implements only what it
//! inspects. Methods may be written as `async fn`. The SDK handles framing, the handshake,
//! encodings, concurrency, cancellation and ping; see [`crate::server`].

use std::future::Future;
use std::time::Duration;

use crate::encoding::Encoding;
use crate::frame::DEFAULT_MAX_FRAME;
use crate::message::decision::AgentResponse;
use crate::message::event::{
    GuardrailInspect, RequestBodyChunk, RequestComplete, RequestHeaders, ResponseBodyChunk,
    ResponseHeaders, WebSocketFrame,
};
use crate::message::handshake::Capabilities;

/// An agent: what it is, and what it decides for each event.
///
/// One value serves every connection, concurrently; keep per-request state keyed by
/// correlation ID if you need it. The SDK fills in an empty `correlation_id` in the answers.
pub trait Agent: Send + Sync + 'static {
    /// What the agent announces in the handshake (see [`Capabilities::new`]).
    fn capabilities(&self) -> Capabilities;

    /// Called with the handshake's `config` (an `Err` refuses the handshake with that error)
    /// and with every later `Configure` (an `Err` is logged).
    fn on_configure(&self, config: serde_json::Value) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Request headers (0x10). Default: allow.
    fn on_request_headers(
        &self,
        event: RequestHeaders,
    ) -> impl Future<Output = AgentResponse> + Send {
        std::future::ready(AgentResponse::allow(event.correlation_id))
    }

    /// A request body chunk (0x11). Default: allow.
    fn on_request_body(
        &self,
        event: RequestBodyChunk,
    ) -> impl Future<Output = AgentResponse> + Send {
        std::future::ready(AgentResponse::allow(event.correlation_id))
    }

    /// Response headers (0x12). Default: allow.
    fn on_response_headers(
        &self,
        event: ResponseHeaders,
    ) -> impl Future<Output = AgentResponse> + Send {
        std::future::ready(AgentResponse::allow(event.correlation_id))
    }

    /// A response body chunk (0x13). Default: allow.
    fn on_response_body(
        &self,
        event: ResponseBodyChunk,
    ) -> impl Future<Output = AgentResponse> + Send {
        std::future::ready(AgentResponse::allow(event.correlation_id))
    }

    /// The request is finished (0x14); nothing is answered. Default: nothing.
    fn on_request_complete(&self, event: RequestComplete) -> impl Future<Output = ()> + Send {
        let _ = event;
        std::future::ready(())
    }

    /// A WebSocket frame (0x15). Default: allow.
    fn on_websocket_frame(
        &self,
        event: WebSocketFrame,
    ) -> impl Future<Output = AgentResponse> + Send {
        std::future::ready(AgentResponse::allow(event.correlation_id))
    }

    /// Content for a guardrail (0x16). Default: allow.
    fn on_guardrail_inspect(
        &self,
        event: GuardrailInspect,
    ) -> impl Future<Output = AgentResponse> + Send {
        std::future::ready(AgentResponse::allow(event.correlation_id))
    }
}

/// How [`serve_with`](crate::server::serve_with) runs connections.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Encodings the agent accepts, most preferred first; the first one the proxy offers is
    /// chosen, JSON when none is.
    pub encodings: Vec<Encoding>,
    /// Largest frame accepted or sent (type byte plus payload).
    pub max_frame: u32,
    /// Events handled at once on one connection; later ones wait for a slot.
    pub max_concurrent_per_connection: usize,
    /// How long a new connection may take to send its handshake.
    pub handshake_timeout: Duration,
}

impl Default for ServeOptions {
    /// MessagePack preferred, 16 MiB frames, 64 concurrent events per connection, 10 s to
    /// handshake.
    fn default() -> Self {
        Self {
            encodings: vec![Encoding::MsgPack, Encoding::Json],
            max_frame: DEFAULT_MAX_FRAME,
            max_concurrent_per_connection: 64,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}
