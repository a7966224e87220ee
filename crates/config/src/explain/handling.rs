//! How the matched route handles the request: the upstream and its policy, every filter in
//! order (agents with their effective failure mode), header policies, timeouts and retries,
//! each as the proxy applies it.

use std::time::Duration;

use serde::Serialize;

use super::{RequestDescription, RequestFacts, request::is_idempotent};
use crate::model::{
    Agent, AgentEvent, AgentId, AgentTransport, BodyMode, CircuitBreaker, Config, ConnectionPool,
    FailureMode, Filter, FilterRef, HashKey, HeaderPolicy, HealthCheck, Inference, LoadBalancing,
    PassiveHealth, RetryOn, RetryPolicy, Route, Target, Upstream, UpstreamId, UpstreamTls, ser_ms,
    ser_opt_ms,
};

/// Request body bytes the proxy keeps to resend on a retry after an upstream status
/// (Pingora's retry buffer); a longer body is only retried after a connect error.
pub const RETRY_BUFFER_BYTES: u64 = 64 * 1024;

/// What the route does with the request.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RouteHandling {
    /// The upstream pool.
    pub upstream: UpstreamPlan,
    /// Agents and built-in filters, in the route's `filters` order.
    pub filters: Vec<FilterStep>,
    /// The route's edits of the request sent upstream (rename, remove, set, add).
    pub request_headers: HeaderPolicy,
    /// The route's edits of the response sent to the client.
    pub response_headers: HeaderPolicy,
    /// Headers the proxy writes itself, before the route's policies.
    pub proxy_headers: ProxyHeaders,
    /// Deadlines.
    pub timeouts: TimeoutPlan,
    /// Retries.
    pub retry: RetryPlan,
    /// Whether WebSocket upgrades are passed through (403 otherwise).
    pub websocket: bool,
    /// Token-aware limits, when the route has an `inference` block.
    pub inference: Option<Inference>,
}

/// The pool the request goes to.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct UpstreamPlan {
    /// Its ID.
    pub id: UpstreamId,
    /// How a target is picked (every algorithm honours weights).
    pub load_balancing: LoadBalancing,
    /// What consistent hashing hashes.
    pub hash_on: Option<HashKey>,
    /// This request's value of that key; `None` when it has none (hashed as empty, so every
    /// such request goes to the same target).
    pub hash_value: Option<String>,
    /// Targets and weights.
    pub targets: Vec<Target>,
    /// Active health check; `None` means targets are judged by traffic only.
    pub health_check: Option<HealthCheck>,
    /// Passive ejection.
    pub passive_health: PassiveHealth,
    /// TLS to the targets; `None` means clear text.
    pub tls: Option<UpstreamTls>,
    /// Connection reuse.
    pub connection_pool: ConnectionPool,
}

/// One entry of the route's `filters` list.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "filter", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FilterStep {
    /// An external agent.
    Agent(AgentStep),
    /// A built-in filter, with its settings.
    Builtin(Filter),
}

/// Where a route's effective failure mode comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureModeSource {
    /// The route's `failure-mode`, which overrides every agent's.
    Route,
    /// The agent's own `failure-mode` (the route sets none).
    Agent,
}

/// What the request does when the agent gives no verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OnFailure {
    /// It goes on to the upstream; the gap is logged in the audit log.
    Continue,
    /// The proxy answers.
    Refuse {
        /// Status when the agent does not answer within `timeout-ms`.
        timeout_status: u16,
        /// Status when it is unreachable, saturated, its breaker is open or it breaks the
        /// protocol.
        failure_status: u16,
        /// Status when the body is larger than the agent accepts (body events only).
        body_over_limit_status: Option<u16>,
    },
}

/// An agent consulted on this route.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct AgentStep {
    /// Its ID.
    pub id: AgentId,
    /// How it is reached.
    pub transport: AgentTransport,
    /// Events it receives (request headers: all agents of the route in parallel, verdicts
    /// read in `filters` order).
    pub events: Vec<AgentEvent>,
    /// Deadline of one call (permit wait included).
    #[serde(serialize_with = "ser_ms")]
    pub timeout: Duration,
    /// Calls in flight at once.
    pub max_concurrent_calls: u32,
    /// Longest wait for a call permit; zero means no waiting.
    #[serde(serialize_with = "ser_ms")]
    pub queue_timeout: Duration,
    /// The failure mode that applies on this route.
    pub failure_mode: FailureMode,
    /// Whether it is the route's override or the agent's default.
    pub failure_mode_from: FailureModeSource,
    /// The agent's own failure mode (what applies on routes without an override).
    pub agent_failure_mode: FailureMode,
    /// What a failure does to the request.
    pub on_failure: OnFailure,
    /// How it sees the request body (`request-body` event only).
    pub request_body: Option<BodyInspection>,
    /// How it sees the response body (`response-body` event only).
    pub response_body: Option<BodyInspection>,
    /// Its circuit breaker.
    pub circuit_breaker: CircuitBreaker,
    /// Connections kept open to it.
    pub connections: u32,
}

/// How an agent receives a body.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BodyInspection {
    /// Buffered up to the limit and sent once, or streamed chunk by chunk.
    pub mode: BodyMode,
    /// Bytes the agent accepts; beyond them the failure mode applies.
    pub max_bytes: u64,
    /// Whether this request's declared body is larger than that.
    pub over_limit: bool,
}

/// Headers the proxy writes on every request and response of the route.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ProxyHeaders {
    /// On the request sent upstream.
    pub request: Vec<String>,
    /// On the response sent to the client.
    pub response: Vec<String>,
}

/// The deadlines of the request.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct TimeoutPlan {
    /// The upstream's `connect-ms` (TCP and TLS together).
    #[serde(serialize_with = "ser_ms")]
    pub connect: Duration,
    /// The upstream's `read-ms`.
    #[serde(serialize_with = "ser_ms")]
    pub read: Duration,
    /// The upstream's `write-ms`.
    #[serde(serialize_with = "ser_ms")]
    pub write: Duration,
    /// The route's deadline for the whole request, retries included.
    #[serde(serialize_with = "ser_ms")]
    pub total: Duration,
    /// The route's deadline per try; `None` means only `total` bounds a try.
    #[serde(serialize_with = "ser_opt_ms")]
    pub per_try: Option<Duration>,
    /// What the first try actually gets: each wait capped by the per-try deadline and the
    /// route's total.
    pub first_try: TryDeadlines,
}

/// The deadlines of one try.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct TryDeadlines {
    /// Connect (and TLS handshake).
    #[serde(serialize_with = "ser_ms")]
    pub connect: Duration,
    /// Wait for the next response bytes.
    #[serde(serialize_with = "ser_ms")]
    pub read: Duration,
    /// Wait to write the next request bytes.
    #[serde(serialize_with = "ser_ms")]
    pub write: Duration,
}

/// The route's retry policy and what it means for this request.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RetryPlan {
    /// The route's `retry` block.
    pub policy: RetryPolicy,
    /// Whether the method is idempotent (only those are retried after an upstream status,
    /// unless `non-idempotent` is on).
    pub idempotent: bool,
    /// The failures after which this request may be retried (within the budget).
    pub applies: Vec<RetryOn>,
    /// Why some of `retry-on` does not apply to this request.
    pub limited_by: Option<String>,
}

pub(super) fn explain(
    config: &Config,
    route: &Route,
    req: &RequestDescription,
    facts: &RequestFacts,
) -> Option<RouteHandling> {
    // Every route names a known upstream: the decoder resolved it.
    let u = config.upstream(route.upstream.as_str())?;
    Some(RouteHandling {
        upstream: upstream(u, req, facts),
        filters: route
            .filters
            .iter()
            .filter_map(|f| match f {
                FilterRef::Agent(id) => config
                    .agent(id.as_str())
                    .map(|a| FilterStep::Agent(agent_step(a, route, facts))),
                FilterRef::Builtin(id) => {
                    config.filter(id.as_str()).cloned().map(FilterStep::Builtin)
                }
            })
            .collect(),
        request_headers: route.request_headers.clone(),
        response_headers: route.response_headers.clone(),
        proxy_headers: ProxyHeaders {
            request: [
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-host",
                "forwarded",
                config.server.request_id_header.as_str(),
            ]
            .map(str::to_owned)
            .to_vec(),
            response: vec![config.server.request_id_header.clone()],
        },
        timeouts: timeouts(u, route),
        retry: retry(route, req, facts),
        websocket: route.websocket,
        inference: route.inference.clone(),
    })
}

fn upstream(u: &Upstream, req: &RequestDescription, facts: &RequestFacts) -> UpstreamPlan {
    let hash_value = u.hash_on.as_ref().and_then(|k| match k {
        HashKey::ClientIp => facts.client.as_ref().map(|c| c.client_ip.to_string()),
        HashKey::Header(name) => req.values(name).next().map(str::to_owned),
        HashKey::Cookie(name) => cookie(req, name),
    });
    UpstreamPlan {
        id: u.id.clone(),
        load_balancing: u.load_balancing,
        hash_on: u.hash_on.clone(),
        hash_value,
        targets: u.targets.clone(),
        health_check: u.health_check.clone(),
        passive_health: u.passive_health.clone(),
        tls: u.tls.clone(),
        connection_pool: u.connection_pool.clone(),
    }
}

/// The value of cookie `name`, read as the proxy reads it.
fn cookie(req: &RequestDescription, name: &str) -> Option<String> {
    req.values("cookie")
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn agent_step(a: &Agent, route: &Route, facts: &RequestFacts) -> AgentStep {
    let (failure_mode, failure_mode_from) = match route.failure_mode {
        Some(m) => (m, FailureModeSource::Route),
        None => (a.failure_mode, FailureModeSource::Agent),
    };
    let wants = |e| a.events.contains(&e);
    let has_body = wants(AgentEvent::RequestBody) || wants(AgentEvent::ResponseBody);
    let on_failure = match failure_mode {
        FailureMode::Open => OnFailure::Continue,
        FailureMode::Closed => OnFailure::Refuse {
            timeout_status: 504,
            failure_status: 503,
            body_over_limit_status: has_body.then_some(413),
        },
    };
    AgentStep {
        id: a.id.clone(),
        transport: a.transport.clone(),
        events: a.events.clone(),
        timeout: a.timeout,
        max_concurrent_calls: a.max_concurrent_calls,
        queue_timeout: a.queue_timeout,
        failure_mode,
        failure_mode_from,
        agent_failure_mode: a.failure_mode,
        on_failure,
        request_body: wants(AgentEvent::RequestBody).then(|| BodyInspection {
            mode: a.request_body_mode,
            max_bytes: a.max_request_body_bytes,
            over_limit: facts
                .declared_body_bytes
                .is_some_and(|n| n > a.max_request_body_bytes),
        }),
        response_body: wants(AgentEvent::ResponseBody).then_some(BodyInspection {
            mode: a.response_body_mode,
            max_bytes: a.max_response_body_bytes,
            over_limit: false,
        }),
        circuit_breaker: a.circuit_breaker.clone(),
        connections: a.connections,
    }
}

fn timeouts(u: &Upstream, route: &Route) -> TimeoutPlan {
    let t = &u.timeouts;
    let (connect, read, write) = (t.connect, t.read, t.write);
    let per_try = route.retry.per_try_timeout;
    let left = per_try.map_or(route.total_timeout, |p| p.min(route.total_timeout));
    TimeoutPlan {
        connect,
        read,
        write,
        total: route.total_timeout,
        per_try,
        first_try: TryDeadlines {
            connect: connect.min(left),
            read: read.min(left),
            write: write.min(left),
        },
    }
}

fn retry(route: &Route, req: &RequestDescription, facts: &RequestFacts) -> RetryPlan {
    let policy = &route.retry;
    let idempotent = is_idempotent(&req.method);
    let body_too_long = facts
        .declared_body_bytes
        .is_some_and(|n| n > RETRY_BUFFER_BYTES);
    let mut limited_by = None;
    let applies = if policy.max_attempts <= 1 {
        Vec::new()
    } else {
        let statuses_allowed = (idempotent || policy.non_idempotent) && !body_too_long;
        let has_statuses = policy.retry_on.iter().any(|o| *o != RetryOn::ConnectError);
        if has_statuses && !statuses_allowed {
            limited_by = Some(if body_too_long {
                format!(
                    "the body is over {RETRY_BUFFER_BYTES} bytes and cannot be replayed: only connect errors are retried"
                )
            } else {
                format!(
                    "{} is not idempotent and `non-idempotent` is off: only connect errors are retried",
                    req.method
                )
            });
        }
        policy
            .retry_on
            .iter()
            .copied()
            .filter(|o| *o == RetryOn::ConnectError || statuses_allowed)
            .collect()
    };
    RetryPlan {
        policy: policy.clone(),
        idempotent,
        applies,
        limited_by,
    }
}
