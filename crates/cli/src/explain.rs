//! Text rendering of an [`Explanation`] for `zentinel explain`: one section per concern,
//! labels in one column, the answer first. Every fact comes from the explanation itself
//! (the JSON form prints the same structure); nothing here decides anything.

use std::fmt::Write as _;
use std::time::Duration;

use zentinel_config::explain::{
    AgentStep, ConditionCheck, Explanation, FailureModeSource, FilterStep, LimitCheck, MatchedBy,
    OnFailure, Outcome, RouteHandling, Routing, UpstreamPlan,
};
use zentinel_config::model::{
    AgentTransport, Filter, FilterKind, HashKey, HeaderPolicy, HealthProbe, OnBackendFailure,
    OnLimit, RateLimitBackend,
};

/// Width of the label column under a section title (indented by 2); section titles are as
/// wide as both, so every value starts in the same column.
const LABEL: usize = 17;
/// Width of the label column of a filter's details (indented by 5).
const SUB: usize = LABEL - 3;

/// The whole explanation as text; `source` names the configuration it was read from.
pub(crate) fn render(e: &Explanation, url: &str, source: &str) -> String {
    let mut out = String::new();
    request(&mut out, e, url, source);
    outcome(&mut out, e);
    listener(&mut out, e);
    routing(&mut out, &e.routing);
    if let Some(h) = &e.route {
        upstream(&mut out, &h.upstream);
        timeouts_and_retry(&mut out, h);
        filters(&mut out, h);
        headers(&mut out, h);
    }
    limits(&mut out, &e.limits);
    out
}

fn section(out: &mut String, title: &str, first: &str) {
    let _ = writeln!(out, "\n{title:<w$}{first}", w = LABEL + 2);
}

/// A row of a filter's details.
fn sub(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "     {label:<SUB$}{value}");
}

fn row(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "  {label:<LABEL$}{value}");
}

/// Further lines of a row's value, aligned with it.
fn more(out: &mut String, value: impl std::fmt::Display) {
    let _ = writeln!(out, "  {:<LABEL$}{value}", "");
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn quoted<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn request(out: &mut String, e: &Explanation, url: &str, source: &str) {
    let r = &e.request;
    let _ = writeln!(out, "{} {url}", r.method);
    let body = match r.declared_body_bytes {
        Some(n) => format!("body {}", plural(n, "byte", "bytes")),
        None => "no body declared".to_owned(),
    };
    let _ = writeln!(
        out,
        "  host {} · {}, {} · {body}",
        r.host,
        plural(r.header_count, "header", "headers"),
        plural(r.header_bytes, "byte", "bytes")
    );
    if let Some(c) = &r.client {
        let who = if c.from_forwarded_for {
            format!(
                "client {} (from x-forwarded-for; peer {} is a trusted proxy)",
                c.client_ip, c.peer
            )
        } else if c.trusted_proxy {
            format!("client {} (a trusted proxy, no x-forwarded-for)", c.peer)
        } else {
            format!("client {}", c.client_ip)
        };
        let _ = writeln!(out, "  {who}");
    }
    let _ = writeln!(out, "  configuration {source}");
}

fn outcome(out: &mut String, e: &Explanation) {
    match &e.outcome {
        Outcome::Forward { upstream } => {
            let agents: Vec<&str> = e
                .route
                .iter()
                .flat_map(|h| &h.filters)
                .filter_map(|f| match f {
                    FilterStep::Agent(a) => Some(a.id.as_str()),
                    _ => None,
                })
                .collect();
            let when = if agents.is_empty() {
                String::new()
            } else {
                format!(" once {} allow it", quoted(&agents))
            };
            section(
                out,
                "Outcome",
                &format!("forwarded to upstream \"{upstream}\"{when}"),
            );
        }
        Outcome::Refuse(r) => {
            section(
                out,
                "Outcome",
                &format!("{} {}: {}", r.status, reason_phrase(r.status), r.reason),
            );
            more(out, &r.cause);
        }
        _ => section(out, "Outcome", "(not known to this version)"),
    }
    for r in e.refusals.iter().skip(1) {
        row(
            out,
            "also",
            format!("{} {}: {}", r.status, r.reason, r.cause),
        );
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

fn listener(out: &mut String, e: &Explanation) {
    let l = &e.listener;
    section(
        out,
        "Listener",
        &format!("\"{}\" ({} on {}): {}", l.id, l.protocol, l.address, l.why),
    );
    match &l.routes {
        Some(ids) => row(out, "serves", quoted(ids)),
        None => row(out, "serves", "every route"),
    }
    if let Some(d) = &l.default_route {
        row(
            out,
            "default route",
            format!("\"{d}\" when nothing matches"),
        );
    }
    if let Some(t) = &l.tls {
        let name = t.server_name.as_deref().unwrap_or("(none: an IP address)");
        row(out, "sni", name);
        row(
            out,
            "certificate",
            format!("{} ({})", t.cert_file.display(), t.cert_chosen_by),
        );
        let client = match &t.client_auth {
            Some(c) => format!("client certificate {} (CA {})", c.mode, c.ca_file.display()),
            None => "no client certificate asked".to_owned(),
        };
        row(out, "tls", format!("{} or later; {client}", t.min_version));
    }
    for n in &l.notes {
        row(out, "note", n);
    }
}

/// Conditions as aligned rows: mark, key, expected, what the request had.
fn conditions(out: &mut String, list: &[ConditionCheck], only_failed: bool) {
    let shown: Vec<&ConditionCheck> = list.iter().filter(|c| !only_failed || !c.holds).collect();
    let key_w = shown.iter().map(|c| c.key.len()).max().unwrap_or(0);
    let exp_w = shown.iter().map(|c| c.expected.len()).max().unwrap_or(0);
    for c in shown {
        let mark = if c.holds { "✓" } else { "✗" };
        let found = c.found.as_deref().unwrap_or("(none)");
        let _ = writeln!(
            out,
            "    {mark} {:<key_w$}  {:<exp_w$}  request: {found}",
            c.key, c.expected
        );
    }
}

fn routing(out: &mut String, r: &Routing) {
    match &r.matched {
        Some(m) => {
            let how = match m.by {
                MatchedBy::DefaultRoute => "no route matched: the listener's default-route",
                _ if m.conditions.is_empty() => "no conditions: it matches every request",
                _ => "every condition holds",
            };
            section(
                out,
                "Route",
                &format!(
                    "\"{}\" (priority {}, rank {} of {}): {how}",
                    m.id, m.priority, m.rank, r.candidates
                ),
            );
            conditions(out, &m.conditions, false);
        }
        None => section(
            out,
            "Route",
            &format!("none of the listener's {} routes matches", r.candidates),
        ),
    }
    for s in &r.shadowed {
        row(
            out,
            "shadowed",
            format!(
                "\"{}\" (priority {}, rank {}) matches too but never sees this request",
                s.id, s.priority, s.rank
            ),
        );
    }
    for n in &r.near_misses {
        row(
            out,
            "near miss",
            format!(
                "\"{}\" (priority {}, rank {}) misses by one condition:",
                n.route.id, n.route.priority, n.route.rank
            ),
        );
        conditions(out, &n.conditions, true);
    }
    if !r.not_on_listener.is_empty() {
        let them = if r.not_on_listener.len() == 1 {
            "it"
        } else {
            "them"
        };
        row(
            out,
            "not served here",
            format!(
                "{} would match, but this listener's `routes` leaves {them} out",
                quoted(&r.not_on_listener)
            ),
        );
    }
}

fn upstream(out: &mut String, u: &UpstreamPlan) {
    section(
        out,
        "Upstream",
        &format!("\"{}\" ({})", u.id, u.load_balancing),
    );
    if let Some(key) = &u.hash_on {
        let value = u.hash_value.as_deref().map_or(
            "absent: hashed as empty, like every request without it".to_owned(),
            |v| format!("{v:?}"),
        );
        let key = match key {
            HashKey::ClientIp => "client-ip".to_owned(),
            HashKey::Header(h) => format!("header {h}"),
            HashKey::Cookie(c) => format!("cookie {c}"),
            _ => "key".to_owned(),
        };
        row(out, "hash on", format!("{key}: {value}"));
    }
    let total: u64 = u.targets.iter().map(|t| u64::from(t.weight)).sum();
    let addr_w = u
        .targets
        .iter()
        .map(|t| t.address.to_string().len())
        .max()
        .unwrap_or(0);
    for (i, t) in u.targets.iter().enumerate() {
        let share = (u64::from(t.weight) * 100 + total / 2)
            .checked_div(total)
            .unwrap_or(0);
        let line = format!(
            "{:<addr_w$}  weight {:<3} (~{share}%)",
            t.address.to_string(),
            t.weight
        );
        if i == 0 {
            row(out, "targets", line);
        } else {
            more(out, line);
        }
    }
    health(out, u);
}

fn health(out: &mut String, u: &UpstreamPlan) {
    let health = match &u.health_check {
        Some(h) => {
            let probe = match &h.probe {
                HealthProbe::Http {
                    path,
                    expect_status,
                    host,
                } => format!(
                    "GET {path} expecting {expect_status}{}",
                    host.as_ref()
                        .map(|h| format!(" (host {h})"))
                        .unwrap_or_default()
                ),
                HealthProbe::Tcp => "TCP connect".to_owned(),
                _ => "probe".to_owned(),
            };
            row(
                out,
                "health check",
                format!(
                    "{probe}, every {}, timeout {}",
                    ms(h.interval),
                    ms(h.timeout)
                ),
            );
            format!(
                "out after {} failures in a row, back after {} successes",
                h.unhealthy_threshold, h.healthy_threshold
            )
        }
        None => "none: targets are judged by traffic only".to_owned(),
    };
    if u.health_check.is_some() {
        more(out, health);
    } else {
        row(out, "health check", health);
    }
    let p = &u.passive_health;
    if p.enabled {
        row(
            out,
            "passive health",
            format!(
                "out for {} after {} failed requests in a row",
                ms(p.ejection_time),
                p.consecutive_failures
            ),
        );
    } else {
        row(out, "passive health", "off");
    }
    let pool = &u.connection_pool;
    row(
        out,
        "idle connections",
        format!("up to {}, kept {}", pool.max_idle, ms(pool.idle_timeout)),
    );
    let tls = match &u.tls {
        Some(t) => format!(
            "TLS{}{}",
            t.sni
                .as_ref()
                .map(|s| format!(", server name {s}"))
                .unwrap_or_default(),
            if t.verify {
                ", verified"
            } else {
                ", NOT verified"
            }
        ),
        None => "clear text".to_owned(),
    };
    row(out, "to targets", tls);
}

fn timeouts_and_retry(out: &mut String, h: &RouteHandling) {
    let t = &h.timeouts;
    section(
        out,
        "Timeouts",
        &format!(
            "route total {}{}",
            ms(t.total),
            t.per_try
                .map(|p| format!(", per try {}", ms(p)))
                .unwrap_or_default()
        ),
    );
    row(
        out,
        "upstream",
        format!(
            "connect {}, read {}, write {}",
            ms(t.connect),
            ms(t.read),
            ms(t.write)
        ),
    );
    let f = &t.first_try;
    row(
        out,
        "first try",
        format!(
            "connect {}, read {}, write {} (each capped by the try's deadline)",
            ms(f.connect),
            ms(f.read),
            ms(f.write)
        ),
    );
    let r = &h.retry;
    let p = &r.policy;
    let on: Vec<&str> = p.retry_on.iter().map(|o| o.as_str()).collect();
    let policy = if p.max_attempts <= 1 {
        "never retried (max-attempts 1)".to_owned()
    } else {
        format!(
            "up to {} attempts on {}; budget {}% of requests + {}/s{}",
            p.max_attempts,
            on.join(", "),
            p.budget_percent,
            p.min_retries_per_second,
            if p.non_idempotent {
                "; non-idempotent methods too"
            } else {
                ""
            }
        )
    };
    row(out, "retry", policy);
    if let Some(why) = &r.limited_by {
        row(out, "this request", why);
    }
    if h.websocket {
        row(out, "websocket", "upgrades passed through");
    }
    if let Some(i) = &h.inference {
        row(out, "inference", inference(i));
    }
}

/// One line for a route's `inference` block.
fn inference(i: &zentinel_config::model::Inference) -> String {
    let mut limits: Vec<String> = Vec::new();
    if let Some(t) = i.tokens_per_minute {
        limits.push(format!("{t} tokens/min"));
    }
    if let Some(r) = i.requests_per_minute {
        limits.push(format!("{r} requests/min"));
    }
    for b in &i.budgets {
        limits.push(format!("{} budget {} ({})", b.period, b.limit, b.mode));
    }
    if limits.is_empty() {
        limits.push("usage counted, no limit".to_owned());
    }
    let key: Vec<String> = i.key.iter().map(ToString::to_string).collect();
    format!(
        "{} per {}: {}; prompts counted by {}",
        i.provider,
        key.join("+"),
        limits.join(", "),
        i.tokenizer
    )
}

fn filters(out: &mut String, h: &RouteHandling) {
    if h.filters.is_empty() {
        section(out, "Filters", "none");
        return;
    }
    section(
        out,
        "Filters",
        "in this order (request-header agents are called in parallel)",
    );
    for (i, f) in h.filters.iter().enumerate() {
        match f {
            FilterStep::Agent(a) => agent(out, i + 1, a),
            FilterStep::Builtin(b) => builtin(out, i + 1, b),
            _ => {}
        }
    }
}

fn agent(out: &mut String, n: usize, a: &AgentStep) {
    let transport = match &a.transport {
        AgentTransport::UnixSocket(p) => format!("unix socket {}", p.display()),
        AgentTransport::Grpc(addr) => format!("gRPC {addr}"),
        _ => "transport".to_owned(),
    };
    let _ = writeln!(out, "  {n}. agent \"{}\" ({transport})", a.id);
    let events: Vec<&str> = a.events.iter().map(|e| e.as_str()).collect();
    sub(out, "events", events.join(", "));
    let queue = if a.queue_timeout.is_zero() {
        "no waiting for a permit".to_owned()
    } else {
        format!("waits up to {} for a permit", ms(a.queue_timeout))
    };
    sub(
        out,
        "calls",
        format!(
            "timeout {}, at most {} at once, {queue}",
            ms(a.timeout),
            a.max_concurrent_calls
        ),
    );
    let from = match a.failure_mode_from {
        FailureModeSource::Route => format!(
            "the route's failure-mode; the agent's own is {}",
            a.agent_failure_mode
        ),
        _ => "the agent's own; the route sets none".to_owned(),
    };
    let effect = match &a.on_failure {
        OnFailure::Refuse {
            timeout_status,
            failure_status,
            body_over_limit_status,
        } => format!(
            "{timeout_status} on timeout, {failure_status} when unreachable, saturated or breaker open{}",
            body_over_limit_status
                .map(|s| format!(", {s} on a body over its limit"))
                .unwrap_or_default()
        ),
        _ => "the request goes on; the failure is logged in the audit log".to_owned(),
    };
    sub(out, "failure mode", format!("{} ({from})", a.failure_mode));
    more(out, format!("→ {effect}"));
    for (what, body) in [
        ("request body", &a.request_body),
        ("response body", &a.response_body),
    ] {
        if let Some(b) = body {
            let over = if b.over_limit {
                " — this request's declared body is over it"
            } else {
                ""
            };
            sub(
                out,
                what,
                format!("{}, up to {} bytes{over}", b.mode, b.max_bytes),
            );
        }
    }
    let b = &a.circuit_breaker;
    sub(
        out,
        "breaker",
        format!(
            "opens after {} failures in a row, probes after {}, closes after {} successes",
            b.failure_threshold,
            ms(b.timeout),
            b.success_threshold
        ),
    );
}

fn builtin(out: &mut String, n: usize, f: &Filter) {
    match &f.kind {
        FilterKind::RateLimit(r) => {
            let _ = writeln!(out, "  {n}. rate-limit \"{}\"", f.id);
            let key: Vec<String> = r.key.iter().map(ToString::to_string).collect();
            let on_limit = match r.on_limit {
                OnLimit::Delay => format!("delayed up to {}, then 429", ms(r.max_delay)),
                _ => "429 with Retry-After".to_owned(),
            };
            sub(
                out,
                "rate",
                format!(
                    "{}/s, burst {}, per {}",
                    r.requests_per_second,
                    r.burst,
                    key.join(" + ")
                ),
            );
            match &r.backend {
                None => sub(
                    out,
                    "over limit",
                    format!("{on_limit}; {} keys kept", r.max_keys),
                ),
                Some(RateLimitBackend::Redis(b)) => {
                    sub(out, "over limit", on_limit);
                    let failure = match b.on_backend_failure {
                        OnBackendFailure::Local => {
                            format!("counted in this proxy ({} keys kept)", r.max_keys)
                        }
                        OnBackendFailure::Open => "let through".to_owned(),
                        OnBackendFailure::Closed => "answered 503".to_owned(),
                    };
                    sub(
                        out,
                        "shared",
                        format!(
                            "on redis {} (each call ≤ {}); if it cannot answer: {failure}",
                            b.endpoint,
                            ms(b.timeout)
                        ),
                    );
                }
                Some(_) => sub(out, "over limit", on_limit),
            }
        }
        _ => {
            let _ = writeln!(out, "  {n}. filter \"{}\"", f.id);
        }
    }
}

fn policy(p: &HeaderPolicy) -> String {
    if p.is_empty() {
        return "no changes".to_owned();
    }
    let mut parts = Vec::new();
    let pairs = |v: &[(String, String)], sep: &str| -> String {
        v.iter()
            .map(|(a, b)| format!("{a}{sep}{b}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !p.rename.is_empty() {
        parts.push(format!("rename {}", pairs(&p.rename, " → ")));
    }
    if !p.remove.is_empty() {
        parts.push(format!("remove {}", p.remove.join(", ")));
    }
    if !p.set.is_empty() {
        parts.push(format!("set {}", pairs(&p.set, ": ")));
    }
    if !p.add.is_empty() {
        parts.push(format!("add {}", pairs(&p.add, ": ")));
    }
    parts.join("; ")
}

fn headers(out: &mut String, h: &RouteHandling) {
    section(
        out,
        "Headers",
        "the proxy's own, then the route's policy (rename, remove, set, add)",
    );
    row(
        out,
        "to upstream",
        format!("proxy: {}", h.proxy_headers.request.join(", ")),
    );
    more(out, format!("route: {}", policy(&h.request_headers)));
    row(
        out,
        "to client",
        format!("proxy: {}", h.proxy_headers.response.join(", ")),
    );
    more(out, format!("route: {}", policy(&h.response_headers)));
}

fn limits(out: &mut String, list: &[LimitCheck]) {
    section(out, "Limits", "in the order the proxy checks them");
    let what_w = list.iter().map(|c| c.what.len()).max().unwrap_or(0);
    let value = |c: &LimitCheck| match (c.request, c.exceeded) {
        (Some(n), true) => format!("{n} > {}", c.max),
        (Some(n), false) => format!("{n} ≤ {}", c.max),
        (None, _) => format!("≤ {}", c.max),
    };
    let value_w = list
        .iter()
        .map(|c| value(c).chars().count())
        .max()
        .unwrap_or(0);
    let set_w = list.iter().map(|c| c.setting.len()).max().unwrap_or(0);
    for c in list {
        let mark = if c.exceeded { "✗" } else { " " };
        let status = c
            .status
            .map_or("connection closed".to_owned(), |s| s.to_string());
        let _ = writeln!(
            out,
            "  {mark} {:<what_w$}  {:<value_w$}  {:<set_w$}  {status}",
            c.what,
            value(c),
            c.setting
        );
    }
}
