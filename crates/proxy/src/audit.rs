//! The audit log: one JSON line per security decision — an agent's verdict other than a
//! plain allow, an allow that carries rule IDs or tags, every fail-open or fail-closed
//! fallback with its reason and the failure mode that applied, and every request or
//! connection refused by a limit (size, count, in-flight and connection caps), every request
//! a rate-limit filter delayed or rejected, every request an `inference` block refused and
//! every `alert-only` budget a key crossed (naming the filter or limit and what its key is
//! made of, never the key's value). Lines carry the request's trace ID, so "why was this
//! request blocked?" is one search.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zentinel_agent_protocol::AuditMetadata;
use zentinel_config::model::{FailureMode, LogSink};

use crate::BuildError;
use crate::log_file::Sink;

/// Where audit lines go.
#[derive(Debug)]
pub(crate) struct AuditLog {
    sink: Sink,
}

/// One security decision.
#[derive(Debug)]
pub(crate) struct Decision<'a> {
    /// The request's trace ID.
    pub request_id: &'a str,
    /// The route.
    pub route: &'a str,
    /// The agent that decided (or failed to).
    pub agent: &'a str,
    /// The event the call was about.
    pub event: &'a str,
    /// `allow`, `block`, `redirect`, `challenge`, `fail_open` or `fail_closed`.
    pub decision: &'a str,
    /// Why, for fallbacks: `timeout`, `unreachable`, …
    pub reason: Option<&'a str>,
    /// The failure mode in force for this agent on this route.
    pub failure_mode: FailureMode,
    /// Status sent to the client when the decision answered the request.
    pub status: Option<u16>,
    /// What the agent reported.
    pub audit: Option<&'a AuditMetadata>,
    /// How long the call took.
    pub latency: Duration,
}

/// A request or connection refused by a limit: a security decision of the proxy itself.
#[derive(Debug)]
pub(crate) struct Rejection<'a> {
    /// The request's trace ID (`None` for a refused connection).
    pub request_id: Option<&'a str>,
    /// The route, once known.
    pub route: Option<&'a str>,
    /// The trusted client address.
    pub client: Option<std::net::IpAddr>,
    /// Which limit: `max-connections`, `uri-too-long`, `body-too-large`, …
    pub reason: &'a str,
    /// Status sent (`None` for a refused connection, which gets none).
    pub status: Option<u16>,
}

/// A request a rate-limit filter delayed or rejected (429), or refused (503) because its
/// shared backend failed under `on-backend-failure "closed"`.
#[derive(Debug)]
pub(crate) struct Limited<'a> {
    /// The request's trace ID.
    pub request_id: &'a str,
    /// The route.
    pub route: &'a str,
    /// The trusted client address.
    pub client: Option<std::net::IpAddr>,
    /// The filter.
    pub filter: &'a str,
    /// What the filter's key is made of (`client-ip+header:x-api-key`), never its value:
    /// a header or cookie can be a credential.
    pub key: &'a str,
    /// `Some(wait)` for a delayed request, `None` for a rejected one.
    pub delay: Option<Duration>,
    /// For a request refused with 503 because the filter's shared backend failed under
    /// `on-backend-failure "closed"`: why the backend failed (`timeout`, `unavailable`,
    /// `error`).
    pub backend_failure: Option<&'a str>,
}

/// A request an `inference` block refused, or a key that crossed an `alert-only` budget.
#[derive(Debug)]
pub(crate) struct TokenLimit<'a> {
    /// The request's trace ID.
    pub request_id: &'a str,
    /// The route.
    pub route: &'a str,
    /// The trusted client address.
    pub client: Option<std::net::IpAddr>,
    /// What the key is made of (`header:authorization`), never its value.
    pub key: &'a str,
    /// The limit: `tokens-per-minute`, `requests-per-minute`, `budget-daily`, …
    pub limit: &'a str,
    /// `reject`, or `alert` for an `alert-only` budget.
    pub decision: &'a str,
    /// The prompt's counted tokens, once known.
    pub prompt_tokens: Option<u64>,
    /// For an alert: the budget's limit.
    pub budget: Option<u64>,
}

impl AuditLog {
    /// Writes one rate-limit delay or rejection.
    pub(crate) fn limited(&self, l: &Limited<'_>) {
        if self.sink.is_off() {
            return;
        }
        let (reason, status) = match (l.backend_failure, l.delay) {
            (Some(_), _) => ("rate-limit-backend", Some(503)),
            (None, Some(_)) => ("rate-limit", None),
            (None, None) => ("rate-limit", Some(429)),
        };
        let mut line = serde_json::json!({
            "request_id": l.request_id,
            "route": l.route,
            "client": l.client.map(|ip| ip.to_string()),
            "decision": if l.delay.is_some() { "delay" } else { "reject" },
            "reason": reason,
            "filter": l.filter,
            "key": l.key,
            "status": status,
            "delay_ms": l.delay.map(|d| d.as_secs_f64() * 1000.0),
        });
        if let (Some(f), Some(fields)) = (l.backend_failure, line.as_object_mut()) {
            fields.insert("backend_failure".to_owned(), f.into());
        }
        self.emit(line);
    }

    /// Writes one token-limit refusal or budget alert.
    pub(crate) fn token_limit(&self, t: &TokenLimit<'_>) {
        if self.sink.is_off() {
            return;
        }
        let line = serde_json::json!({
            "request_id": t.request_id,
            "route": t.route,
            "client": t.client.map(|ip| ip.to_string()),
            "decision": t.decision,
            "reason": "inference",
            "limit": t.limit,
            "key": t.key,
            "status": (t.decision == "reject").then_some(429),
            "prompt_tokens": t.prompt_tokens,
            "budget": t.budget,
        });
        self.emit(line);
    }

    /// Writes `line` with the time (`ts_ms`) and `"log": "audit"` added.
    fn emit(&self, mut line: serde_json::Value) {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        if let Some(fields) = line.as_object_mut() {
            fields.insert("ts_ms".to_owned(), ts.into());
            fields.insert("log".to_owned(), "audit".into());
        }
        self.sink.line(&line.to_string());
    }

    /// The audit log described by `sink`; a file is opened now.
    pub(crate) fn new(sink: &LogSink) -> Result<Self, BuildError> {
        Ok(Self {
            sink: Sink::new("audit-log", &sink.destination)?,
        })
    }

    /// Writes one limit rejection.
    pub(crate) fn rejection(&self, r: &Rejection<'_>) {
        if self.sink.is_off() {
            return;
        }
        let line = serde_json::json!({
            "request_id": r.request_id,
            "route": r.route,
            "client": r.client.map(|ip| ip.to_string()),
            "decision": "reject",
            "reason": r.reason,
            "status": r.status,
        });
        self.emit(line);
    }

    /// Writes one decision.
    pub(crate) fn write(&self, d: &Decision<'_>) {
        if self.sink.is_off() {
            return;
        }
        let empty = AuditMetadata::default();
        let a = d.audit.unwrap_or(&empty);
        let line = serde_json::json!({
            "request_id": d.request_id,
            "route": d.route,
            "agent": d.agent,
            "event": d.event,
            "decision": d.decision,
            "reason": d.reason,
            "failure_mode": d.failure_mode.as_str(),
            "status": d.status,
            "rule_ids": a.rule_ids,
            "tags": a.tags,
            "confidence": a.confidence,
            "latency_ms": d.latency.as_secs_f64() * 1000.0,
        });
        self.emit(line);
    }
}
