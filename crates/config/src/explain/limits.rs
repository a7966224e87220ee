//! The limits that apply to the request, and every reason the proxy would answer it itself,
//! in the order the proxy checks them: method (501 for CONNECT and TRACE), request target
//! (414), header count and size (431), in-flight caps (503), route (404), WebSocket upgrade
//! (403), declared body (413), and an agent's body limit on a fail-closed route (413).
//! Statuses and reasons are the proxy's own.

use serde::Serialize;

use super::{FilterStep, OnFailure, RequestFacts, RouteHandling};
use crate::model::{Config, Route, RouteId, UpstreamId};

/// One limit and how the request measures against it.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct LimitCheck {
    /// What is limited.
    pub what: &'static str,
    /// The setting that sets it, as written (`limits.max-uri-bytes`, or the route's).
    pub setting: String,
    /// The limit.
    pub max: u64,
    /// The request's value; `None` when it is not known ahead (load, a body without
    /// `Content-Length`).
    pub request: Option<u64>,
    /// Whether the request is over the limit.
    pub exceeded: bool,
    /// The status answered beyond it; `None` when the connection is closed without one.
    pub status: Option<u16>,
}

/// A reason the proxy answers the request itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Refusal {
    /// The status.
    pub status: u16,
    /// The explanation in the proxy's response body.
    pub reason: &'static str,
    /// Why, in terms of the request and the configuration.
    pub cause: String,
}

/// What happens to the request, as far as the configuration decides it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// Sent to the upstream, once the route's agents allow it.
    Forward {
        /// The pool.
        upstream: UpstreamId,
    },
    /// Answered by the proxy.
    Refuse(Refusal),
}

fn check(
    what: &'static str,
    setting: String,
    max: u64,
    request: Option<u64>,
    status: Option<u16>,
) -> LimitCheck {
    LimitCheck {
        what,
        setting,
        max,
        request,
        exceeded: request.is_some_and(|n| n > max),
        status,
    }
}

pub(super) fn checks(
    config: &Config,
    route: Option<&Route>,
    req: &RequestFacts,
) -> Vec<LimitCheck> {
    let l = &config.limits;
    let global = |key: &str| format!("limits.{key}");
    let mut out = vec![
        check(
            "open connections",
            global("max-connections"),
            l.max_connections.into(),
            None,
            None,
        ),
        check(
            "connections from one client",
            global("max-connections-per-client"),
            l.max_connections_per_client.into(),
            None,
            None,
        ),
        check(
            "request target bytes",
            global("max-uri-bytes"),
            l.max_uri_bytes,
            Some(req.target_bytes),
            Some(414),
        ),
        check(
            "header lines",
            global("max-header-count"),
            l.max_header_count.into(),
            Some(req.header_count),
            Some(431),
        ),
        check(
            "header bytes",
            global("max-header-bytes"),
            l.max_header_bytes,
            Some(req.header_bytes),
            Some(431),
        ),
        check(
            "requests in flight",
            global("max-in-flight-requests"),
            l.max_in_flight_requests.into(),
            None,
            Some(503),
        ),
    ];
    if let Some(r) = route {
        let (max, setting) = match r.limits.max_body_bytes {
            Some(n) => (n, format!("route \"{}\" limits.max-body-bytes", r.id)),
            None => (l.max_body_bytes, global("max-body-bytes")),
        };
        out.push(check(
            "body bytes",
            setting,
            max,
            req.declared_body_bytes,
            Some(413),
        ));
        if let Some(n) = r.limits.max_in_flight_requests {
            out.push(check(
                "requests in flight on the route",
                format!("route \"{}\" limits.max-in-flight-requests", r.id),
                n.into(),
                None,
                Some(503),
            ));
        }
    }
    out
}

/// The 404 the proxy answers when no route takes a request.
pub(super) fn no_route() -> Refusal {
    Refusal {
        status: 404,
        reason: "no route matches this request",
        cause: "no route of the listener matches and it has no default-route".to_owned(),
    }
}

fn exceeded(c: &LimitCheck) -> String {
    format!(
        "{} is {}; {} is {}",
        c.what,
        c.request.unwrap_or_default(),
        c.setting,
        c.max
    )
}

/// `upgrade_elsewhere`: a shadowed route that would have let the upgrade through.
pub(super) fn refusals(
    limits: &[LimitCheck],
    route: Option<&Route>,
    req: &RequestFacts,
    handling: Option<&RouteHandling>,
    upgrade_elsewhere: Option<&RouteId>,
) -> Vec<Refusal> {
    let mut out = before_routing(limits, req);
    let over = |key: &str| {
        limits
            .iter()
            .find(|c| c.exceeded && c.setting.ends_with(key))
    };
    let Some(route) = route else {
        out.push(no_route());
        return out;
    };
    // Only a WebSocket upgrade is followed; any other (`h2c`, …) is dropped and the request
    // served as it is.
    if let Some(upgrade) = req
        .upgrade
        .as_deref()
        .filter(|u| names_websocket(u.as_bytes()))
        && !route.websocket
    {
        out.push(Refusal {
            status: 403,
            reason: "protocol upgrades are not allowed on this route",
            cause: format!(
                "the request asks to upgrade to {upgrade:?}; route \"{}\" has no `websocket #true`{}",
                route.id,
                upgrade_elsewhere
                    .map(|id| format!(" (route \"{id}\" has, but ranks below it)"))
                    .unwrap_or_default()
            ),
        });
    }
    if let Some(c) = over("max-body-bytes") {
        out.push(Refusal {
            status: 413,
            reason: "request body too large",
            cause: exceeded(c),
        });
    }
    let agents = handling.map_or(&[][..], |h| h.filters.as_slice());
    for step in agents {
        let FilterStep::Agent(a) = step else { continue };
        let Some(body) = a.request_body.as_ref().filter(|b| b.over_limit) else {
            continue;
        };
        if matches!(a.on_failure, OnFailure::Refuse { .. }) {
            out.push(Refusal {
                status: 413,
                reason: "the body is larger than a security check accepts",
                cause: format!(
                    "the declared body ({} bytes) is over agent \"{}\" max-request-body-bytes {} and the route fails closed",
                    req.declared_body_bytes.unwrap_or_default(),
                    a.id,
                    body.max_bytes
                ),
            });
        }
    }
    out
}

/// The refusals that come before routing, in the proxy's order: the method, the head limits,
/// then the path normalisation.
fn before_routing(limits: &[LimitCheck], req: &RequestFacts) -> Vec<Refusal> {
    let mut out = Vec::new();
    // Refused on every route, before any limit is looked at.
    if let Some(reason) = refused_method(&req.method) {
        out.push(Refusal {
            status: 501,
            reason,
            cause: format!(
                "{} is never forwarded: the proxy does not tunnel (CONNECT) or reflect requests (TRACE)",
                req.method
            ),
        });
    }
    let over = |key: &str| {
        limits
            .iter()
            .find(|c| c.exceeded && c.setting.ends_with(key))
    };
    let head = [
        ("max-uri-bytes", 414, "request target too long"),
        ("max-header-count", 431, "request headers too large"),
        ("max-header-bytes", 431, "request headers too large"),
    ];
    for (key, status, reason) in head {
        if let Some(c) = over(key) {
            out.push(Refusal {
                status,
                reason,
                cause: exceeded(c),
            });
        }
    }
    // The one path normalisation runs after the head limits, before routing.
    if let Some(reason) = req.path_refused {
        out.push(Refusal {
            status: 400,
            reason,
            cause: format!(
                "the path {:?} is refused by the normalisation every request goes through before routing",
                req.path
            ),
        });
    }
    out
}

/// The methods the proxy refuses on every route, with the explanation it answers with:
/// `CONNECT` (it does not tunnel) and `TRACE` (it would reflect the request back).
pub fn refused_method(method: &str) -> Option<&'static str> {
    match method {
        "CONNECT" => Some("CONNECT is not supported: this proxy does not tunnel"),
        "TRACE" => Some("TRACE is not supported"),
        _ => None,
    }
}

/// Whether an `Upgrade` field value asks for WebSocket: one of its elements is `websocket`
/// (any case, any `/version`). The proxy follows no other upgrade.
pub fn names_websocket(upgrade: &[u8]) -> bool {
    upgrade
        .split(|&b| b == b',')
        .map(|p| {
            p.split(|&b| b == b'/')
                .next()
                .unwrap_or_default()
                .trim_ascii()
        })
        .any(|p| p.eq_ignore_ascii_case(b"websocket"))
}
