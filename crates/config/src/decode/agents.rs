//! Decoding of agents and built-in filters.

use super::headers::header_name;
use super::invalid;
use crate::diagnostic::{Code, Problem};
use crate::freeform;
use crate::model::{
    Agent, AgentEvent, AgentId, AgentTransport, BackendKind, CircuitBreaker, Filter, FilterId,
    FilterKind, FilterType, OnBackendFailure, OnLimit, RateLimit, RateLimitBackend, RateLimitKey,
    RedisBackend, RedisEndpoint, Secret,
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
    let ty = r.enumeration::<FilterType>("type");
    let rps = r.uint::<u32>("requests-per-second");
    let burst = r.uint::<u32>("burst");
    let keys = r.string_list("key");
    let on_limit = r.enumeration::<OnLimit>("on-limit");
    let max_delay = r.ms("max-delay-ms");
    let max_keys = r.uint("max-keys");
    let backends = r.named("backend");
    if on_limit == Some(OnLimit::Reject) {
        r.no_effect("max-delay-ms", "`on-limit \"reject\"` never waits");
    }
    let key = keys.and_then(|ks| key_parts(r.cx(), &ks));
    let mut backend = Some(None);
    for (kind, b) in &backends {
        backend = rate_limit_backend(r, kind, b).map(Some);
    }
    if let Some(Some(RateLimitBackend::Redis(redis))) = &backend
        && redis.on_backend_failure != OnBackendFailure::Local
    {
        r.no_effect(
            "max-keys",
            "with a shared backend it only bounds the local store of `on-backend-failure \"local\"`",
        );
    }
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
                backend: backend?,
            })
        }
    };
    Some(Filter {
        id: FilterId::new(id.value.clone()),
        kind,
    })
}

/// A `backend "<kind>" { … }` block.
fn rate_limit_backend(
    r: &Reader<'_>,
    kind: &Spanned<String>,
    b: &Reader<'_>,
) -> Option<RateLimitBackend> {
    let url = b.string("url");
    let pool_size = b.uint("pool-size");
    let timeout = b.ms("timeout-ms");
    let on_failure = b.enumeration("on-backend-failure");
    let key_prefix = b.string("key-prefix");
    let endpoint = url.and_then(|u| match redis_url(&u.value) {
        Ok(e) => Some(e),
        Err((message, help)) => {
            invalid(b.cx(), u.span, message, help);
            None
        }
    });
    let BackendKind::Redis = r.to_enum::<BackendKind>("backend", &kind.value, kind.span)?;
    Some(RateLimitBackend::Redis(RedisBackend {
        endpoint: endpoint?,
        pool_size: pool_size?,
        timeout: timeout?,
        on_backend_failure: on_failure?,
        key_prefix: key_prefix?.value,
    }))
}

/// A URL with its password masked, for messages.
fn masked(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `%XX` escapes of a URL's user name or password, decoded.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

type UrlError = (String, Option<String>);

/// Parses `redis://[user:password@]host[:port][/db]`; the error never shows the password.
pub(crate) fn redis_url(url: &str) -> Result<RedisEndpoint, UrlError> {
    let bad = |what: &str| {
        (
            format!("`url` \"{}\": {what}", masked(url)),
            Some(
                "for example \"redis://10.0.0.5:6379/0\" or \"redis://:password@redis.internal\""
                    .to_owned(),
            ),
        )
    };
    let rest = match url.split_once("://") {
        Some(("redis", rest)) => rest,
        Some(("rediss", _)) => {
            return Err((
                format!("`url` \"{}\": TLS to Redis (`rediss://`) is not built in this version", masked(url)),
                Some("use `redis://` to a server on a trusted network, or a local TLS tunnel (stunnel, spiped) to a remote one".to_owned()),
            ));
        }
        Some((scheme, _)) => {
            return Err(bad(&format!(
                "the scheme must be `redis://`, found `{scheme}://`"
            )));
        }
        None => return Err(bad("must start with `redis://`")),
    };
    if rest.contains(['?', '#']) {
        return Err(bad("query parameters and fragments are not supported"));
    }
    let (userinfo, hostpart) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let user =
                percent_decode(user).ok_or_else(|| bad("the user name has a bad %-escape"))?;
            let pass =
                percent_decode(pass).ok_or_else(|| bad("the password has a bad %-escape"))?;
            (
                (!user.is_empty()).then_some(user),
                (!pass.is_empty()).then(|| Secret::new(pass)),
            )
        }
    };
    let (authority, db) = match hostpart.split_once('/') {
        None => (hostpart, 0),
        Some((a, "")) => (a, 0),
        Some((a, d)) => (
            a,
            d.parse::<u32>()
                .map_err(|_| bad(&format!("the database must be a number, found \"{d}\"")))?,
        ),
    };
    let (host, port) = host_port(authority).map_err(|m| bad(&m))?;
    Ok(RedisEndpoint {
        host,
        port,
        db,
        username,
        password,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; the port is 6379 when absent.
fn host_port(authority: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address needs its closing `]`")?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("\"{h}\" is not an IPv6 address"));
        }
        match after {
            "" => (h, None),
            p => (
                h,
                Some(p.strip_prefix(':').ok_or("expected `:port` after `]`")?),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let ok_name = |h: &str| {
        h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    };
    if host.is_empty() || !ok_name(host) {
        return Err(format!("\"{host}\" is not a host name or address"));
    }
    let port = match port {
        None => 6379,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("the port must be 1-65535, found \"{p}\""))?,
    };
    Ok((host.to_owned(), port))
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
