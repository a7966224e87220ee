//! Decoding of agents and built-in filters.

use super::headers::header_name;
use super::invalid;
use crate::diagnostic::{Code, Problem};
use crate::freeform;
use crate::model::{
    Agent, AgentEvent, AgentId, AgentTransport, CircuitBreaker, Filter, FilterId, FilterKind,
    FilterType, OnLimit, RateLimit, RateLimitKey,
};
use crate::reader::{Cx, Reader, Spanned};

pub(super) fn agent(r: &Reader<'_>, id: &Spanned<String>) -> Option<Agent> {
    let cx = r.cx();
    let transport = r.block("transport").and_then(|b| transport(&b));
    let events = r.enum_list::<AgentEvent>("events");
    let timeout = r.ms("timeout-ms");
    let max_calls = r.uint("max-concurrent-calls");
    let queue_timeout = r.ms("queue-timeout-ms");
    let failure_mode = r.enumeration("failure-mode");
    let breaker = r.block("circuit-breaker").and_then(|b| {
        let failure_threshold = b.uint("failure-threshold");
        let success_threshold = b.uint("success-threshold");
        let timeout = b.secs("timeout-seconds");
        Some(CircuitBreaker {
            failure_threshold: failure_threshold?,
            success_threshold: success_threshold?,
            timeout: timeout?,
        })
    });
    let max_req_body = r.uint("max-request-body-bytes");
    let req_mode = r.enumeration("request-body-mode");
    let max_resp_body = r.uint("max-response-body-bytes");
    let resp_mode = r.enumeration("response-body-mode");
    let connections = r.uint("connections");
    let max_frame = r.uint("max-frame-bytes");
    let handshake = r.ms("handshake-timeout-ms");
    let config = match r.nodes("config").first() {
        Some((file, node)) => freeform::to_json(cx, *file, node),
        None => Some(serde_json::Value::Null),
    };

    if let Some(ev) = &events {
        if !ev.contains(&AgentEvent::RequestBody) {
            r.no_effect(
                "max-request-body-bytes",
                "the agent does not receive the `request-body` event",
            );
            r.no_effect(
                "request-body-mode",
                "the agent does not receive the `request-body` event",
            );
        }
        if !ev.contains(&AgentEvent::ResponseBody) {
            r.no_effect(
                "max-response-body-bytes",
                "the agent does not receive the `response-body` event",
            );
            r.no_effect(
                "response-body-mode",
                "the agent does not receive the `response-body` event",
            );
        }
    }
    if let (Some(q), Some(t)) = (queue_timeout, timeout)
        && !q.is_zero()
        && q >= t
    {
        cx.report(Problem::new(Code::Conflict, r.written("queue-timeout-ms"),
                format!("`queue-timeout-ms` ({} ms) must be below `timeout-ms` ({} ms): the permit wait is part of the call's deadline",
                    q.as_millis(), t.as_millis())));
        return None;
    }
    Some(Agent {
        id: AgentId::new(id.value.clone()),
        transport: transport?,
        events: events?,
        timeout: timeout?,
        max_concurrent_calls: max_calls?,
        queue_timeout: queue_timeout?,
        failure_mode: failure_mode?,
        circuit_breaker: breaker?,
        max_request_body_bytes: max_req_body?,
        request_body_mode: req_mode?,
        max_response_body_bytes: max_resp_body?,
        response_body_mode: resp_mode?,
        connections: connections?,
        max_frame_bytes: max_frame?,
        handshake_timeout: handshake?,
        config: config?,
    })
}

fn transport(r: &Reader<'_>) -> Option<AgentTransport> {
    let cx = r.cx();
    let uds = r.path("unix-socket");
    let grpc = r.nonempty("grpc");
    match (r.written("unix-socket"), r.written("grpc")) {
        (Some(_), Some(second)) => {
            cx.report(
                Problem::new(
                    Code::Conflict,
                    Some(second),
                    "an agent transport is either `unix-socket` or `grpc`, not both",
                )
                .help("keep one of them"),
            );
            None
        }
        (None, None) => {
            cx.report(
                Problem::new(
                    Code::MissingKey,
                    r.span(),
                    "`transport` needs `unix-socket` or `grpc`",
                )
                .help(r#"for example: transport { unix-socket "/var/run/zentinel-waf.sock"; }"#),
            );
            None
        }
        (Some(_), None) => uds.map(AgentTransport::UnixSocket),
        (None, Some(_)) => {
            let g = grpc?;
            let ok = g.value.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p != 0)
            });
            if !ok {
                invalid(
                    cx,
                    g.span,
                    format!("`grpc` must be host:port, found \"{}\"", g.value),
                    Some(
                        "for example \"waf.internal:50051\" or \"127.0.0.1:50051\" (no scheme)"
                            .to_owned(),
                    ),
                );
                return None;
            }
            Some(AgentTransport::Grpc(g.value))
        }
    }
}

pub(super) fn filter(r: &Reader<'_>, id: &Spanned<String>) -> Option<Filter> {
    let cx = r.cx();
    let ty = r.enumeration::<FilterType>("type");
    let rps = r.uint::<u32>("requests-per-second");
    let burst = r.uint::<u32>("burst");
    let keys = r.string_list("key");
    let on_limit = r.enumeration::<OnLimit>("on-limit");
    let max_delay = r.ms("max-delay-ms");
    let max_keys = r.uint("max-keys");
    if on_limit == Some(OnLimit::Reject) {
        r.no_effect("max-delay-ms", "`on-limit \"reject\"` never waits");
    }
    let key = keys.and_then(|ks| key_parts(cx, &ks));
    let kind = match ty? {
        FilterType::RateLimit => {
            let rps = rps?;
            FilterKind::RateLimit(RateLimit {
                requests_per_second: rps,
                burst: burst.unwrap_or(rps),
                key: key?,
                on_limit: on_limit?,
                max_delay: max_delay?,
                max_keys: max_keys?,
            })
        }
    };
    Some(Filter {
        id: FilterId::new(id.value.clone()),
        kind,
    })
}

/// The parts of a `key` list (`client-ip`, `route`, `header:<name>`, `cookie:<name>`), each
/// at most once; shared by `rate-limit` filters and `inference` blocks.
pub(super) fn key_parts(cx: &Cx<'_>, ks: &[Spanned<String>]) -> Option<Vec<RateLimitKey>> {
    let mut out: Vec<RateLimitKey> = Vec::new();
    let mut ok = true;
    for k in ks {
        let parsed = match k.value.split_once(':') {
            None if k.value == "client-ip" => Some(RateLimitKey::ClientIp),
            None if k.value == "route" => Some(RateLimitKey::Route),
            Some(("header", name)) => header_name(
                cx,
                &Spanned {
                    value: name.to_owned(),
                    span: k.span,
                },
            )
            .map(RateLimitKey::Header),
            Some(("cookie", name)) if !name.is_empty() => {
                Some(RateLimitKey::Cookie(name.to_owned()))
            }
            _ => {
                invalid(
                    cx,
                    k.span,
                    format!("\"{}\" is not a key part", k.value),
                    Some(
                        "use \"client-ip\", \"route\", \"header:<name>\" or \"cookie:<name>\""
                            .to_owned(),
                    ),
                );
                None
            }
        };
        match parsed {
            Some(p) if out.contains(&p) => {
                invalid(
                    cx,
                    k.span,
                    format!("key part \"{}\" is listed twice", k.value),
                    None,
                );
                ok = false;
            }
            Some(p) => out.push(p),
            None => ok = false,
        }
    }
    ok.then_some(out)
}
