//! Routes: what requests they match and how those requests are handled.

use std::time::Duration;

use serde::{Serialize, Serializer};

use super::{AgentId, FilterId, Inference, RouteId, UpstreamId, config_enum, ser_ms, ser_opt_ms};

config_enum!(
    /// What happens to a request when an agent it needs cannot give a verdict.
    FailureMode {
        /// Continue to the upstream; the gap is logged and counted.
        Open = "open",
        /// Deny the request (504 on agent timeout, 503 otherwise).
        Closed = "closed",
    }
);

config_enum!(
    /// A failure after which a request may be retried.
    RetryOn {
        /// The upstream connection could not be established (nothing was sent).
        ConnectError = "connect-error",
        /// The upstream answered 502.
        Status502 = "502",
        /// The upstream answered 503.
        Status503 = "503",
        /// The upstream answered 504.
        Status504 = "504",
    }
);

/// A host pattern: an exact name or `*.` followed by a suffix. Stored lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Matches this name only.
    Exact(String),
    /// Matches any name ending in `.suffix` (at least one more label), not the suffix itself.
    Wildcard(String),
}

impl HostPattern {
    /// Whether `host` (lower case, without port) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => h == host,
            Self::Wildcard(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix.as_str())
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(h) => f.write_str(h),
            Self::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A path condition.
#[derive(Clone, Debug)]
pub enum PathMatch {
    /// The path equals this.
    Exact(String),
    /// The path starts with this (plain string prefix).
    Prefix(String),
    /// The path matches this regular expression.
    Regex(regex::Regex),
}

impl PathMatch {
    /// Whether `path` (without query) matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => p == path,
            Self::Prefix(p) => path.starts_with(p.as_str()),
            Self::Regex(r) => r.is_match(path),
        }
    }
}

impl Serialize for PathMatch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match self {
            Self::Exact(p) => m.serialize_entry("path", p)?,
            Self::Prefix(p) => m.serialize_entry("path-prefix", p)?,
            Self::Regex(r) => m.serialize_entry("path-regex", r.as_str())?,
        }
        m.end()
    }
}

/// A header condition: present, or present with exactly this value.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct HeaderMatch {
    /// Header name, lower case.
    pub name: String,
    /// Required value; `None` means any value.
    pub value: Option<String>,
}

/// A query-parameter condition: present, or present with exactly this (decoded) value.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct QueryMatch {
    /// Parameter name (decoded).
    pub name: String,
    /// Required value (decoded); `None` means any value.
    pub value: Option<String>,
}

/// The `matches` block: every condition given must hold; list values match any of them.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct Matches {
    /// Host names (any of them); empty means any host.
    pub hosts: Vec<HostPattern>,
    /// Path conditions (all of them).
    pub paths: Vec<PathMatch>,
    /// Methods (any of them); empty means any method.
    pub methods: Vec<String>,
    /// Header conditions (all of them).
    pub headers: Vec<HeaderMatch>,
    /// Query-parameter conditions (all of them).
    pub query_params: Vec<QueryMatch>,
}

/// An entry of a route's `filters` list, resolved to what it names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "id")]
pub enum FilterRef {
    /// An external agent.
    Agent(AgentId),
    /// A built-in filter.
    Builtin(FilterId),
}

/// Header edits, applied in the order: rename, remove, set, add.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct HeaderPolicy {
    /// `(from, to)` renames; names lower case.
    pub rename: Vec<(String, String)>,
    /// Names to remove, lower case.
    pub remove: Vec<String>,
    /// `(name, value)`: replace every existing value.
    pub set: Vec<(String, String)>,
    /// `(name, value)`: append a value.
    pub add: Vec<(String, String)>,
}

impl HeaderPolicy {
    /// Whether the policy changes nothing.
    pub fn is_empty(&self) -> bool {
        self.rename.is_empty()
            && self.remove.is_empty()
            && self.set.is_empty()
            && self.add.is_empty()
    }
}

/// The `retry` block.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Total tries including the first (1 = never retry).
    pub max_attempts: u32,
    /// Failures that may be retried.
    pub retry_on: Vec<RetryOn>,
    /// Whether non-idempotent methods (POST, PATCH…) may be retried.
    pub non_idempotent: bool,
    /// Deadline for each try; `None` means only the route's total deadline applies.
    #[serde(serialize_with = "ser_opt_ms")]
    pub per_try_timeout: Option<Duration>,
    /// Retries may be at most this share (percent) of requests.
    pub budget_percent: u32,
    /// Retries always allowed per second regardless of the share.
    pub min_retries_per_second: u32,
}

/// A route's own limits, overriding the global ones.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct RouteLimits {
    /// Request body size for this route; `None` uses `limits.max-body-bytes`.
    pub max_body_bytes: Option<u64>,
    /// Requests in flight on this route at once; `None` means only the global cap.
    pub max_in_flight_requests: Option<u32>,
}

/// A route.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Route {
    /// Its ID.
    pub id: RouteId,
    /// Higher wins; equal priorities keep definition order.
    pub priority: i32,
    /// What the route matches.
    pub matches: Matches,
    /// Pool requests are sent to.
    pub upstream: UpstreamId,
    /// Agents and built-in filters consulted, in order.
    pub filters: Vec<FilterRef>,
    /// Overrides the failure mode of every agent on this route.
    pub failure_mode: Option<FailureMode>,
    /// Edits of the request sent upstream.
    pub request_headers: HeaderPolicy,
    /// Edits of the response sent to the client.
    pub response_headers: HeaderPolicy,
    /// Deadline for the whole request, retries included.
    #[serde(serialize_with = "ser_ms")]
    pub total_timeout: Duration,
    /// Route-level limits.
    pub limits: RouteLimits,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Whether WebSocket upgrades are passed through.
    pub websocket: bool,
    /// Token-aware limits for LLM traffic, when configured.
    pub inference: Option<Inference>,
}

impl Route {
    /// The agents this route consults, in order.
    pub fn agents(&self) -> impl Iterator<Item = &AgentId> {
        self.filters.iter().filter_map(|f| match f {
            FilterRef::Agent(a) => Some(a),
            FilterRef::Builtin(_) => None,
        })
    }
}
