//! `http.middlewares` → header policies, rate-limit filters and route limits; the security
//! middlewares (auth, IP allow lists) → suggestions.

use std::collections::HashMap;

use super::super::Cx;
use super::super::tree::Node;
use crate::model::{HeaderEdits, RateLimit};
use crate::quantity;
use crate::rules;

const AUTH: &str = "an authentication agent in `agents { … }` (events \"request-headers\"), named in the route's `filters`";
const DENY: &str =
    "the denylist agent (agents/denylist) with `client-ip` rules, named in the route's `filters`";
const SECURITY: &str =
    "a security control: Zentinel runs these as agents, not as proxy middlewares";

/// What a router's middlewares add to its routes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Applied {
    pub(crate) request: HeaderEdits,
    pub(crate) response: HeaderEdits,
    pub(crate) filters: Vec<String>,
    pub(crate) max_body: Option<u64>,
    pub(crate) in_flight: Option<u64>,
    pub(crate) retry: Option<u64>,
    /// Access controls not converted: the routes are open until an agent does them.
    pub(crate) open: Vec<String>,
    /// Middlewares whose effect is missing from the routes.
    pub(crate) skipped: Vec<String>,
}

/// Rate-limit filters made so far, by middleware name.
pub(crate) type Filters = HashMap<String, Result<String, String>>;

pub(crate) fn apply(
    cx: &mut Cx<'_>,
    all: Option<&Node>,
    names: &[String],
    filters: &mut Filters,
) -> Applied {
    let mut a = Applied::default();
    for full in names {
        let name = full.strip_suffix("@file").unwrap_or(full);
        let Some(m) = all
            .and_then(|n| n.get(name))
            .filter(|_| !name.contains('@'))
        else {
            a.skipped.push(format!("{full} (not defined in this file)"));
            continue;
        };
        let base = format!("http.middlewares.{name}");
        cx.mapped(&base);
        for (k, v) in m.entries() {
            let p = format!("{base}.{}", k.name);
            one(cx, &mut a, name, &k.name, v, &p, filters);
        }
    }
    a
}

fn one(
    cx: &mut Cx<'_>,
    a: &mut Applied,
    name: &str,
    kind: &str,
    v: &Node,
    p: &str,
    filters: &mut Filters,
) {
    match kind {
        "headers" => headers(cx, a, v, p),
        "rateLimit" => {
            let r = filters
                .entry(name.to_owned())
                .or_insert_with(|| rate_limit(cx, name, v, p))
                .clone();
            match r {
                Ok(id) => a.filters.push(id),
                Err(_) => a.skipped.push(format!("{name} (rateLimit)")),
            }
        }
        "basicAuth" | "digestAuth" | "forwardAuth" => {
            security(cx, p, AUTH);
            a.open.push(format!("{name} ({kind})"));
        }
        "ipAllowList" | "ipWhiteList" => {
            security(cx, p, DENY);
            a.open.push(format!("{name} ({kind})"));
        }
        "buffering" => match v.get("maxRequestBodyBytes").and_then(Node::uint) {
            Some(b) => {
                a.max_body = Some(b.min(1 << 40));
                cx.mapped(p);
                cx.caveat(
                    &format!("{p}.maxRequestBodyBytes"),
                    "route `limits { max-body-bytes }`; bodies are streamed, not buffered",
                );
                cx.fallback_under(p, "buffer sizes are the proxy's own");
            }
            None => cx.not_mapped(p, "only `maxRequestBodyBytes` maps"),
        },
        "inFlightReq" => match v.get("amount").and_then(Node::uint) {
            Some(n) if (1..=10_000_000).contains(&n) => {
                a.in_flight = Some(n);
                cx.mapped(p);
                cx.caveat(&format!("{p}.amount"), "route `limits { max-in-flight-requests }`: one cap for the whole route, not per client");
                cx.fallback_under(p, "the cap is per route");
            }
            _ => cx.not_mapped(p, "`amount` must be in 1..=10000000"),
        },
        "retry" => match v.get("attempts").and_then(Node::uint) {
            Some(n) if n >= 1 => {
                a.retry = Some(n.min(10));
                cx.mapped(p);
                cx.caveat(&format!("{p}.attempts"), "route `retry { max-attempts }` (at most 10), on connection errors; retries go to another target");
                cx.fallback_under(p, "retry back-off is the proxy's own");
            }
            _ => cx.not_mapped(p, "`attempts` must be at least 1"),
        },
        other => {
            let why = match other {
                "stripPrefix" | "stripPrefixRegex" | "addPrefix" | "replacePath"
                | "replacePathRegex" => {
                    "path rewriting is not supported: requests are forwarded with their path"
                }
                "redirectScheme" | "redirectRegex" => {
                    "Zentinel has no redirect responses: every route proxies"
                }
                "compress" => "response compression: Zentinel passes bodies through unchanged",
                "chain" => "middleware chains are not expanded: list the middlewares on the router",
                "circuitBreaker" => {
                    "upstream health is passive health and active checks on the upstream"
                }
                "errors" => "Zentinel serves its own error responses",
                _ => "this middleware has no Zentinel equivalent",
            };
            cx.not_mapped(p, why);
            cx.fallback_under(p, why);
            a.skipped.push(format!("{name} ({other})"));
        }
    }
}

fn security(cx: &mut Cx<'_>, p: &str, suggestion: &str) {
    cx.not_mapped(p, SECURITY);
    if let Some(id) = cx.id(p) {
        cx.ledger.suggest(id, suggestion);
    }
    cx.fallback_under(
        p,
        "part of a security middleware, which belongs in an agent",
    );
}

/// Security headers Traefik writes from flags.
fn flag_headers(v: &Node) -> Vec<(&'static str, String, &'static str)> {
    let mut out = Vec::new();
    if let Some(secs) = v.get("stsSeconds").and_then(Node::uint).filter(|s| *s > 0) {
        let mut val = format!("max-age={secs}");
        if v.get("stsIncludeSubdomains").and_then(Node::boolean) == Some(true) {
            val.push_str("; includeSubDomains");
        }
        if v.get("stsPreload").and_then(Node::boolean) == Some(true) {
            val.push_str("; preload");
        }
        out.push(("strict-transport-security", val, "stsSeconds"));
    }
    let flag = |k: &str| v.get(k).and_then(Node::boolean) == Some(true);
    if let Some(f) = v.get("customFrameOptionsValue").and_then(Node::scalar) {
        out.push(("x-frame-options", f.to_owned(), "customFrameOptionsValue"));
    } else if flag("frameDeny") {
        out.push(("x-frame-options", "DENY".to_owned(), "frameDeny"));
    }
    if flag("contentTypeNosniff") {
        out.push((
            "x-content-type-options",
            "nosniff".to_owned(),
            "contentTypeNosniff",
        ));
    }
    if flag("browserXssFilter") {
        out.push((
            "x-xss-protection",
            "1; mode=block".to_owned(),
            "browserXssFilter",
        ));
    }
    for (k, h) in [
        ("referrerPolicy", "referrer-policy"),
        ("contentSecurityPolicy", "content-security-policy"),
        ("permissionsPolicy", "permissions-policy"),
    ] {
        if let Some(val) = v.get(k).and_then(Node::scalar) {
            out.push((h, val.to_owned(), k));
        }
    }
    out
}

fn headers(cx: &mut Cx<'_>, a: &mut Applied, v: &Node, p: &str) {
    cx.mapped(p);
    for (block, req) in [
        ("customRequestHeaders", true),
        ("customResponseHeaders", false),
    ] {
        let Some(map) = v.get(block) else { continue };
        cx.mapped(&format!("{p}.{block}"));
        for (k, val) in map.entries() {
            let kp = format!("{p}.{block}.{}", k.name);
            let edits = if req { &mut a.request } else { &mut a.response };
            let value = val.scalar().unwrap_or_default();
            let r = rules::editable_header(&k.name).and_then(|n| {
                if value.is_empty() {
                    edits.try_remove(&n).map_err(str::to_owned)
                } else {
                    rules::header_value(value)?;
                    edits.try_set(&n, value).map_err(str::to_owned)
                }
            });
            match r {
                Ok(()) => cx.mapped(&kp),
                Err(why) => cx.not_mapped(&kp, why),
            }
        }
    }
    for (h, val, key) in flag_headers(v) {
        let kp = format!("{p}.{key}");
        match a.response.try_set(h, &val) {
            Ok(()) => cx.caveat(&kp, format!("response header `{h}: {val}`")),
            Err(why) => cx.not_mapped(&kp, why),
        }
    }
    for k in ["stsIncludeSubdomains", "stsPreload", "frameDeny"] {
        cx.mapped(&format!("{p}.{k}"));
    }
    cx.fallback_under(p, "this header option has no Zentinel equivalent (CORS, host checks and redirects are not supported)");
}

fn rate_limit(cx: &mut Cx<'_>, name: &str, v: &Node, p: &str) -> Result<String, String> {
    let average = v.get("average").and_then(Node::uint).unwrap_or(0);
    let period = v
        .get("period")
        .and_then(Node::scalar)
        .map_or(Some(1000), quantity::go_duration_ms);
    let burst = v.get("burst").and_then(Node::uint).unwrap_or(1).max(1);
    let rps = match period {
        Some(ms) if ms > 0 && average > 0 && (average * 1000).is_multiple_of(ms) => {
            average * 1000 / ms
        }
        _ => {
            let why =
                "only a whole number of requests per second maps (average / period)".to_owned();
            cx.not_mapped(p, why.clone());
            cx.fallback_under(p, &why);
            return Err(why);
        }
    };
    let mut key = vec!["client-ip".to_owned()];
    if let Some(sc) = v.get("sourceCriterion") {
        if let Some(h) = sc.get("requestHeaderName").and_then(Node::scalar) {
            key = vec![format!("header:{}", h.to_ascii_lowercase())];
            cx.mapped(&format!("{p}.sourceCriterion.requestHeaderName"));
        } else if sc.get("requestHost").is_some() {
            let why = "buckets per Host are not supported".to_owned();
            cx.not_mapped(p, why.clone());
            cx.fallback_under(p, &why);
            return Err(why);
        }
        cx.caveat(&format!("{p}.sourceCriterion"), "the client address is the peer's, or from X-Forwarded-For of `server { trusted-proxies }`");
        cx.fallback_under(
            &format!("{p}.sourceCriterion"),
            "the client address is worked out from `server { trusted-proxies }`",
        );
    }
    let id = cx.ids.fresh(name);
    cx.draft.filters.push(RateLimit {
        id: id.clone(),
        origin: format!(
            "Traefik: http.middlewares.{name}.rateLimit (line {})",
            v.line
        ),
        requests_per_second: rps.min(10_000_000),
        burst: burst.min(10_000_000),
        key,
        delay: false,
    });
    for k in ["average", "period", "burst"] {
        cx.mapped(&format!("{p}.{k}"));
    }
    cx.caveat(
        p,
        "a rate-limit filter; rejected requests get 429 with Retry-After",
    );
    Ok(id)
}
