//! External agents and built-in filters: what a route's `filters` list can name.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{AgentId, FailureMode, FilterId, config_enum, ser_ms};

config_enum!(
    /// An event an agent subscribes to. The numbering of the wire protocol follows this order.
    AgentEvent {
        /// Request headers (1).
        RequestHeaders = "request-headers",
        /// Request body chunks (2).
        RequestBody = "request-body",
        /// Response headers (3).
        ResponseHeaders = "response-headers",
        /// Response body chunks (4).
        ResponseBody = "response-body",
        /// The request finished (5); no reply.
        RequestComplete = "request-complete",
        /// WebSocket frames (6).
        WebsocketFrame = "websocket-frame",
        /// Inference guardrail inspection (7).
        GuardrailInspect = "guardrail-inspect",
    }
);

config_enum!(
    /// How a body is handed to an agent.
    BodyMode {
        /// Collected up to the limit, sent as one chunk.
        Buffer = "buffer",
        /// Sent chunk by chunk as it arrives.
        Stream = "stream",
    }
);

/// How the proxy reaches an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "address")]
#[non_exhaustive]
pub enum AgentTransport {
    /// A Unix domain socket at this path.
    UnixSocket(PathBuf),
    /// A gRPC endpoint, `host:port`.
    Grpc(String),
}

/// The `circuit-breaker` block.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CircuitBreaker {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// Consecutive successful probes that close it again.
    pub success_threshold: u32,
    /// How long it stays open before a probe is let through.
    #[serde(serialize_with = "ser_ms")]
    pub timeout: Duration,
}

/// An external agent.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Agent {
    /// Its ID.
    pub id: AgentId,
    /// How it is reached.
    pub transport: AgentTransport,
    /// Events it receives.
    pub events: Vec<AgentEvent>,
    /// Deadline of one call (permit wait, send and answer).
    #[serde(serialize_with = "ser_ms")]
    pub timeout: Duration,
    /// Calls in flight at once.
    pub max_concurrent_calls: u32,
    /// Longest wait for a call permit; zero means no waiting.
    #[serde(serialize_with = "ser_ms")]
    pub queue_timeout: Duration,
    /// What routes do when this agent cannot answer (unless the route overrides it).
    pub failure_mode: FailureMode,
    /// Circuit breaker.
    pub circuit_breaker: CircuitBreaker,
    /// Request body bytes sent to the agent.
    pub max_request_body_bytes: u64,
    /// How the request body is sent.
    pub request_body_mode: BodyMode,
    /// Response body bytes sent to the agent.
    pub max_response_body_bytes: u64,
    /// How the response body is sent.
    pub response_body_mode: BodyMode,
    /// Connections kept open to the agent.
    pub connections: u32,
    /// Largest frame accepted from or sent to the agent.
    pub max_frame_bytes: u64,
    /// Deadline of the connection handshake.
    #[serde(serialize_with = "ser_ms")]
    pub handshake_timeout: Duration,
    /// The `config {}` block as JSON, sent at handshake; `null` when absent.
    pub config: serde_json::Value,
}

config_enum!(
    /// What a rate limiter does with a request over the limit.
    OnLimit {
        /// Answer 429 with `Retry-After`.
        Reject = "reject",
        /// Wait for a token, up to `max-delay-ms`; beyond that, reject.
        Delay = "delay",
    }
);

/// Part of a rate-limit key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
#[non_exhaustive]
pub enum RateLimitKey {
    /// The trusted client IP.
    ClientIp,
    /// The route's ID.
    Route,
    /// A request header (lower case).
    Header(String),
    /// A cookie.
    Cookie(String),
}

impl std::fmt::Display for RateLimitKey {
    /// As written in a `key` list: `client-ip`, `route`, `header:<name>`, `cookie:<name>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClientIp => f.write_str("client-ip"),
            Self::Route => f.write_str("route"),
            Self::Header(h) => write!(f, "header:{h}"),
            Self::Cookie(c) => write!(f, "cookie:{c}"),
        }
    }
}

/// A token-bucket rate limiter.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RateLimit {
    /// Tokens added per second.
    pub requests_per_second: u32,
    /// Bucket size.
    pub burst: u32,
    /// What one bucket is kept per (all parts combined).
    pub key: Vec<RateLimitKey>,
    /// What happens over the limit.
    pub on_limit: OnLimit,
    /// Longest wait with `on-limit "delay"`.
    #[serde(serialize_with = "ser_ms")]
    pub max_delay: Duration,
    /// Buckets kept at once; the least recently used is evicted beyond it.
    pub max_keys: u32,
    /// The shared store of the buckets; `None`: this proxy's memory.
    pub backend: Option<RateLimitBackend>,
}

config_enum!(
    /// Kinds of shared rate-limit store.
    BackendKind {
        /// One Redis server.
        Redis = "redis",
    }
);

config_enum!(
    /// What a shared rate limit does when its store cannot answer in time.
    OnBackendFailure {
        /// Count the same limit in this proxy's memory.
        Local = "local",
        /// Let the request through.
        Open = "open",
        /// Answer 503.
        Closed = "closed",
    }
);

/// A shared store for a rate limit's buckets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
#[non_exhaustive]
pub enum RateLimitBackend {
    /// One Redis server.
    Redis(RedisBackend),
}

/// A password: never shown, neither by `Debug` nor in the serialized configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that needs it (authenticating).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// Where a Redis server is and how to log in, from `redis://[user:password@]host[:port][/db]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RedisEndpoint {
    /// Host name or IP address (an IPv6 address without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database index (`SELECT`).
    pub db: u32,
    /// ACL user name.
    pub username: Option<String>,
    /// Password (`AUTH`).
    pub password: Option<Secret>,
}

impl std::fmt::Display for RedisEndpoint {
    /// `host:port/db`: never the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            write!(f, "{}:{}/{}", self.host, self.port, self.db)
        }
    }
}

/// The `backend "redis" { … }` block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RedisBackend {
    /// The server.
    pub endpoint: RedisEndpoint,
    /// Connections kept open.
    pub pool_size: u32,
    /// Deadline of one call.
    #[serde(serialize_with = "ser_ms")]
    pub timeout: Duration,
    /// What happens when the server cannot answer in time.
    pub on_backend_failure: OnBackendFailure,
    /// Prefix of the keys written.
    pub key_prefix: String,
}

config_enum!(
    /// Types of built-in filter.
    FilterType {
        /// Token-bucket rate limiting.
        RateLimit = "rate-limit",
    }
);

/// What a built-in filter does.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
#[non_exhaustive]
pub enum FilterKind {
    /// Token-bucket rate limiting.
    RateLimit(RateLimit),
}

/// A built-in filter.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Filter {
    /// Its ID.
    pub id: FilterId,
    /// What it does.
    pub kind: FilterKind,
}
