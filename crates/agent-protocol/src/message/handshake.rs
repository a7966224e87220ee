//! The handshake (always JSON): the proxy offers versions, encodings and the agent's
//! configuration; the agent answers with its capabilities and the encoding to use.
//!
//! Readers are tolerant: unknown fields are ignored, missing `features`/`limits` sub-fields
//! default to `false`/`0`, and encodings a reader does not know are skipped.

use serde::{Deserialize, Serialize};

use crate::PROTOCOL_VERSION;
use crate::encoding::{Encoding, known_encodings};

/// Proxy → agent, the first frame on a connection (0x01).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HandshakeRequest {
    /// Protocol versions the proxy speaks (this crate: `[2]`).
    pub supported_versions: Vec<u32>,
    /// Who is connecting (e.g. `"zentinel"`).
    pub proxy_id: String,
    /// The proxy's version.
    pub proxy_version: String,
    /// The agent's `config {}` block as JSON, or `null` when it has none.
    pub config: serde_json::Value,
    /// Encodings the proxy accepts, most preferred first. Unknown names are skipped.
    #[serde(deserialize_with = "known_encodings")]
    pub supported_encodings: Vec<Encoding>,
}

impl Default for HandshakeRequest {
    fn default() -> Self {
        Self {
            supported_versions: vec![PROTOCOL_VERSION],
            proxy_id: "zentinel".to_owned(),
            proxy_version: String::new(),
            config: serde_json::Value::Null,
            supported_encodings: vec![Encoding::Json],
        }
    }
}

/// Agent → proxy, the answer to the handshake (0x02).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandshakeResponse {
    /// The version the agent chose; must be one of `supported_versions`.
    pub protocol_version: u32,
    /// What the agent is and does.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// `false`: the agent refuses this proxy or its configuration; the proxy treats it as down.
    pub success: bool,
    /// Why the agent refused, when `success` is false.
    #[serde(default)]
    pub error: Option<String>,
    /// The encoding for every later frame; one of the offered ones. Absent → JSON.
    #[serde(default)]
    pub encoding: Option<Encoding>,
}

impl HandshakeResponse {
    /// A successful answer for protocol version [`PROTOCOL_VERSION`].
    pub fn accept(capabilities: Capabilities, encoding: Encoding) -> Self {
        Self {
            protocol_version: PROTOCOL_VERSION,
            capabilities,
            success: true,
            error: None,
            encoding: Some(encoding),
        }
    }

    /// A refusal carrying `error`.
    pub fn reject(capabilities: Capabilities, error: impl Into<String>) -> Self {
        Self {
            protocol_version: PROTOCOL_VERSION,
            capabilities,
            success: false,
            error: Some(error.into()),
            encoding: None,
        }
    }

    /// The encoding the agent chose (absent means JSON).
    pub fn chosen_encoding(&self) -> Encoding {
        self.encoding.unwrap_or(Encoding::Json)
    }
}

/// Event kinds an agent subscribes to, as listed in `supported_events`.
pub mod event_kind {
    /// Request headers (0x10).
    pub const REQUEST_HEADERS: u8 = 1;
    /// Request body chunks (0x11).
    pub const REQUEST_BODY: u8 = 2;
    /// Response headers (0x12).
    pub const RESPONSE_HEADERS: u8 = 3;
    /// Response body chunks (0x13).
    pub const RESPONSE_BODY: u8 = 4;
    /// Request complete (0x14).
    pub const REQUEST_COMPLETE: u8 = 5;
    /// WebSocket frames (0x15).
    pub const WEBSOCKET_FRAME: u8 = 6;
    /// Guardrail inspection (0x16).
    pub const GUARDRAIL_INSPECT: u8 = 7;
    /// Configure (0x17).
    pub const CONFIGURE: u8 = 8;
}

/// What an agent is and what it supports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Capabilities {
    /// Stable identifier of the agent.
    pub agent_id: String,
    /// Human-readable name.
    pub name: String,
    /// The agent's version.
    pub version: String,
    /// Subscribed event kinds (see [`event_kind`]).
    pub supported_events: Vec<u8>,
    /// Optional protocol features.
    pub features: Features,
    /// Limits the proxy should respect.
    pub limits: Limits,
}

impl Capabilities {
    /// Capabilities of agent `agent_id` (also its name) subscribing to `events`
    /// (see [`event_kind`]); every feature off, no limits, version empty.
    pub fn new(agent_id: impl Into<String>, events: impl IntoIterator<Item = u8>) -> Self {
        let agent_id = agent_id.into();
        Self {
            name: agent_id.clone(),
            agent_id,
            version: String::new(),
            supported_events: events.into_iter().collect(),
            features: Features::default(),
            limits: Limits::default(),
        }
    }
}

/// Optional protocol features an agent supports. Missing fields read as `false`/`0`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Features {
    /// Accepts body chunks as they arrive (rather than one buffered body).
    pub streaming_body: bool,
    /// Inspects WebSocket frames.
    pub websocket: bool,
    /// Handles guardrail inspection.
    pub guardrails: bool,
    /// Accepts `Configure` after the handshake.
    pub config_push: bool,
    /// Sends `MetricsReport`.
    pub metrics_export: bool,
    /// How many calls it handles concurrently on one connection (0 = unspecified).
    pub concurrent_requests: u32,
    /// Wants `Cancel` for abandoned calls.
    pub cancellation: bool,
    /// Sends `FlowControl`.
    pub flow_control: bool,
    /// Sends `HealthStatus`.
    pub health_reporting: bool,
}

/// Limits an agent asks the proxy to respect. `0` means "no limit stated".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Limits {
    /// Largest body the agent wants to see, in bytes.
    pub max_body_size: u64,
    /// Largest number of concurrent calls across connections.
    pub max_concurrency: u32,
    /// Preferred body chunk size, in bytes.
    pub preferred_chunk_size: u64,
}
