//! What the proxy will do with one request, read from a validated [`Config`]: the listener,
//! the route and why (and the routes it shadows or nearly matched), the upstream, every
//! filter in order with its effective failure mode, header policies, timeouts, retries and
//! limits, and whether the proxy itself answers (404, 414, 431, 413, 403) before any upstream
//! is involved.
//!
//! Routing goes through [`RouteMatcher::for_listener`] and [`RouteMatcher::trace`], the
//! matcher and lookup the proxy uses, so an explanation cannot disagree with the proxy about
//! the route. Every other value is the validated model's, defaults already filled in. This
//! module must never match routes itself, read files or depend on anything the wasm build
//! cannot have: `zentinel explain` prints this structure and the playground shows the same
//! JSON.

mod handling;
mod limits;
mod request;
mod routing;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Serialize;

use crate::diagnostic::closest;
use crate::matcher::{Request, RouteMatcher};
use crate::model::{
    ClientAuth, Config, HostPattern, Listener, ListenerId, ListenerProtocol, ListenerTls, RouteId,
    TlsVersion,
};

pub use handling::{
    AgentStep, BodyInspection, FailureModeSource, FilterStep, OnFailure, ProxyHeaders,
    RETRY_BUFFER_BYTES, RetryPlan, RouteHandling, TimeoutPlan, TryDeadlines, UpstreamPlan,
};
pub use limits::{LimitCheck, Outcome, Refusal, names_websocket, refused_method};
pub use request::{RequestDescription, RequestError, Scheme};
pub use routing::{ConditionCheck, MatchedBy, MatchedRoute, NearMiss, RankedRoute, Routing};

/// Everything the configuration decides about one request.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Explanation {
    /// The request as the proxy sees it.
    pub request: RequestFacts,
    /// The listener that receives it, and why that one.
    pub listener: ListenerChoice,
    /// Which route takes it and why; the routes it shadows and those that nearly matched.
    pub routing: Routing,
    /// What happens: forwarded upstream, or answered by the proxy (the first refusal).
    pub outcome: Outcome,
    /// Every reason the proxy would answer itself, in the order it checks them.
    pub refusals: Vec<Refusal>,
    /// The limits that apply, in the order the proxy checks them.
    pub limits: Vec<LimitCheck>,
    /// How the route handles the request; `None` when no route takes it.
    pub route: Option<RouteHandling>,
}

/// The request, measured the way the proxy measures it.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RequestFacts {
    /// Method, as sent.
    pub method: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// The `Host` routed on (a `Host` header given, else the URL's host and port).
    pub host: String,
    /// The host name looked up by the matcher: lower case, without port or trailing dot;
    /// `None` when it can match no configured name.
    pub lookup_host: Option<String>,
    /// Path, as sent.
    pub path: String,
    /// The path routed on and forwarded, after the proxy's one normalisation (escapes of
    /// unreserved characters decoded, dot segments removed, `//` merged); `None` when the
    /// path is refused.
    pub normalized_path: Option<String>,
    /// Why the path is refused (400), when it is: an encoded slash, a backslash, a control
    /// byte, a malformed escape, `..` above the root or a dot segment with parameters.
    pub path_refused: Option<&'static str>,
    /// Query, without `?`.
    pub query: Option<String>,
    /// Bytes of the request target (path and query): what `max-uri-bytes` limits.
    pub target_bytes: u64,
    /// Header lines, `Host` included: what `max-header-count` limits.
    pub header_count: u64,
    /// Header bytes as `name: value\r\n`: what `max-header-bytes` limits.
    pub header_bytes: u64,
    /// Body size announced by `Content-Length`; `None` when absent or not a number.
    pub declared_body_bytes: Option<u64>,
    /// The `Upgrade` header (a WebSocket handshake sends `websocket`).
    pub upgrade: Option<String>,
    /// The client, when its address was given.
    pub client: Option<ClientFacts>,
}

/// Who the proxy believes the client is.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ClientFacts {
    /// The address the connection comes from.
    pub peer: IpAddr,
    /// Whether `peer` is in `server.trusted-proxies` (then `X-Forwarded-For` is believed).
    pub trusted_proxy: bool,
    /// The client address used for hashing, rate-limit keys and logs.
    pub client_ip: IpAddr,
    /// Whether `client_ip` was taken from `X-Forwarded-For`.
    pub from_forwarded_for: bool,
}

/// Why a listener was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListenerReason {
    /// The caller named it.
    Given,
    /// The first listener whose protocol fits the scheme and whose port is the URL's.
    SchemeAndPort,
    /// The first listener whose protocol fits the scheme (none has the URL's port).
    Scheme,
}

/// The listener that receives the request.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ListenerChoice {
    /// Its ID.
    pub id: ListenerId,
    /// Address it binds.
    pub address: SocketAddr,
    /// Protocol it speaks.
    pub protocol: ListenerProtocol,
    /// Why this one.
    pub reason: ListenerReason,
    /// The reason as a sentence.
    pub why: String,
    /// Routes it serves; `None` means every route.
    pub routes: Option<Vec<RouteId>>,
    /// Route taken when none matches; `None` answers 404.
    pub default_route: Option<RouteId>,
    /// Certificate and client authentication, for `https` listeners.
    pub tls: Option<TlsFacts>,
    /// Things the reader should know (a protocol or port that does not fit the URL).
    pub notes: Vec<String>,
}

/// What the TLS handshake of the request involves.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct TlsFacts {
    /// Server name the client sends (SNI); `None` for an IP address.
    pub server_name: Option<String>,
    /// Certificate served.
    pub cert_file: PathBuf,
    /// Why that certificate: `sni` with the pattern that chose it, or `default`.
    pub cert_chosen_by: String,
    /// Lowest TLS version accepted.
    pub min_version: TlsVersion,
    /// Client certificate verification; `None` when clients need none.
    pub client_auth: Option<ClientAuth>,
}

/// Why no explanation could be given.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExplainError {
    /// No listener has this ID.
    UnknownListener {
        /// The ID asked for.
        id: String,
        /// The listeners there are.
        known: Vec<ListenerId>,
    },
    /// No listener speaks the request's scheme.
    NoListenerForScheme {
        /// The scheme.
        scheme: Scheme,
        /// The listeners there are, with their protocols.
        listeners: Vec<(ListenerId, ListenerProtocol)>,
    },
}

impl std::fmt::Display for ExplainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownListener { id, known } => {
                let list: Vec<String> = known.iter().map(|k| format!("\"{k}\"")).collect();
                write!(f, "no listener \"{id}\" (listeners: {})", list.join(", "))?;
                if let Some(close) = closest(id, known.iter().map(ListenerId::as_str)) {
                    write!(f, "; did you mean \"{close}\"?")?;
                }
                Ok(())
            }
            Self::NoListenerForScheme { scheme, listeners } => {
                let list: Vec<String> = listeners
                    .iter()
                    .map(|(id, p)| format!("\"{id}\" ({p})"))
                    .collect();
                write!(
                    f,
                    "no listener serves {scheme}:// requests (listeners: {}); name one to explain the request as if it reached it",
                    list.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for ExplainError {}

/// Explains what the proxy does with `request` arriving on `listener` (by ID), or, without
/// one, on the listener a client of that URL reaches: the first whose protocol fits the
/// scheme (`https` ↔ `https`; `http` ↔ `http`, `h2c`), preferring one on the URL's port.
pub fn explain(
    config: &Config,
    listener: Option<&str>,
    request: &RequestDescription,
) -> Result<Explanation, ExplainError> {
    let (l, choice) = choose_listener(config, listener, request)?;
    let wire = request.wire_headers();
    // The proxy routes on (and forwards) the normalised path; a refused path is answered
    // 400 before routing, and is shown routed as sent.
    let normal = crate::path::normalize_on(
        &request.path,
        l.path_parameters == crate::model::PathParameters::Refuse,
    );
    let routed = match &normal {
        Ok(p) if *p != request.path => {
            let mut r = request.clone();
            r.path = p.clone().into_owned();
            std::borrow::Cow::Owned(r)
        }
        _ => std::borrow::Cow::Borrowed(request),
    };
    let sent = request;
    let request = routed.as_ref();
    let view = Request {
        method: &request.method,
        host: Some(request.host()),
        path: &request.path,
        query: request.query.as_deref(),
        headers: &wire,
    };
    let matcher = RouteMatcher::for_listener(config, l);
    let trace = matcher.trace(&view);
    // Routes that would match if the listener served every route: why a request 404s here.
    let all = l.routes.is_some().then(|| RouteMatcher::new(config));
    let everywhere = all.as_ref().map(|m| m.trace(&view));
    let mut facts = facts(config, sent, &wire, trace.host.clone());
    facts.normalized_path = normal.as_ref().ok().map(|p| p.clone().into_owned());
    facts.path_refused = normal.as_ref().err().map(|e| e.detail());
    let routing = routing::explain(config, &trace, everywhere.as_ref(), &wire, request);
    let route = trace.found.map(|f| &config.routes[f.index]);
    let handling = route.and_then(|r| handling::explain(config, r, request, &facts));
    let limits = limits::checks(config, route, &facts);
    let upgrade_elsewhere = routing
        .shadowed
        .iter()
        .map(|s| &s.id)
        .find(|id| config.route(id.as_str()).is_some_and(|r| r.websocket));
    let refusals = limits::refusals(&limits, route, &facts, handling.as_ref(), upgrade_elsewhere);
    let outcome = match (refusals.first(), route) {
        (Some(r), _) => Outcome::Refuse(r.clone()),
        (None, Some(r)) => Outcome::Forward {
            upstream: r.upstream.clone(),
        },
        // Without a route there is always the 404 refusal.
        (None, None) => Outcome::Refuse(limits::no_route()),
    };
    Ok(Explanation {
        request: facts,
        listener: choice,
        routing,
        outcome,
        refusals,
        limits,
        route: handling,
    })
}

fn fits(protocol: ListenerProtocol, scheme: Scheme) -> bool {
    match scheme {
        Scheme::Https => protocol == ListenerProtocol::Https,
        Scheme::Http => matches!(protocol, ListenerProtocol::Http | ListenerProtocol::H2c),
    }
}

fn choose_listener<'c>(
    config: &'c Config,
    id: Option<&str>,
    req: &RequestDescription,
) -> Result<(&'c Listener, ListenerChoice), ExplainError> {
    let port = req.port();
    let (l, reason, why) = match id {
        Some(id) => {
            let l = config
                .listeners
                .iter()
                .find(|l| l.id.as_str() == id)
                .ok_or_else(|| ExplainError::UnknownListener {
                    id: id.to_owned(),
                    known: config.listeners.iter().map(|l| l.id.clone()).collect(),
                })?;
            (l, ListenerReason::Given, "named explicitly".to_owned())
        }
        None => {
            let mut fitting = config
                .listeners
                .iter()
                .filter(|l| fits(l.protocol, req.scheme));
            let first =
                fitting
                    .clone()
                    .next()
                    .ok_or_else(|| ExplainError::NoListenerForScheme {
                        scheme: req.scheme,
                        listeners: config
                            .listeners
                            .iter()
                            .map(|l| (l.id.clone(), l.protocol))
                            .collect(),
                    })?;
            match fitting.find(|l| l.address.port() == port) {
                Some(l) => (
                    l,
                    ListenerReason::SchemeAndPort,
                    format!("the first {} listener on port {port}", l.protocol),
                ),
                None => (
                    first,
                    ListenerReason::Scheme,
                    format!(
                        "the first listener for {}:// (none listens on port {port})",
                        req.scheme
                    ),
                ),
            }
        }
    };
    let mut notes = Vec::new();
    if !fits(l.protocol, req.scheme) {
        notes.push(format!(
            "this listener speaks {}, not {}://: explained as if the request reached it",
            l.protocol, req.scheme
        ));
    }
    if l.address.port() != port && reason == ListenerReason::Given {
        notes.push(format!(
            "this listener is on port {}, the URL's port is {port}",
            l.address.port()
        ));
    }
    let choice = ListenerChoice {
        id: l.id.clone(),
        address: l.address,
        protocol: l.protocol,
        reason,
        why,
        routes: l.routes.clone(),
        default_route: l.default_route.clone(),
        tls: l.tls.as_ref().map(|t| tls_facts(t, req.server_name())),
        notes,
    };
    Ok((l, choice))
}

/// The certificate chosen as the proxy chooses it: an exact SNI name, then the most specific
/// wildcard, then the default.
fn tls_facts(tls: &ListenerTls, server_name: Option<String>) -> TlsFacts {
    let exact = server_name.as_deref().and_then(|name| {
        tls.sni
            .iter()
            .find(|s| matches!(&s.host, HostPattern::Exact(h) if h == name))
    });
    let wildcard = || {
        let name = server_name.as_deref()?;
        tls.sni
            .iter()
            .filter(|s| matches!(s.host, HostPattern::Wildcard(_)) && s.host.matches(name))
            .max_by_key(|s| match &s.host {
                HostPattern::Wildcard(suffix) => suffix.len(),
                HostPattern::Exact(_) => 0,
            })
    };
    let (cert_file, cert_chosen_by) = match exact.or_else(wildcard) {
        Some(s) => (s.cert_file.clone(), format!("sni {}", s.host)),
        None => (tls.cert_file.clone(), "default".to_owned()),
    };
    TlsFacts {
        server_name,
        cert_file,
        cert_chosen_by,
        min_version: tls.min_version,
        client_auth: tls.client_auth.clone(),
    }
}

fn facts(
    config: &Config,
    req: &RequestDescription,
    wire: &[(String, String)],
    lookup_host: Option<String>,
) -> RequestFacts {
    let first = |name: &str| wire.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    RequestFacts {
        method: req.method.clone(),
        scheme: req.scheme,
        host: req.host().to_owned(),
        lookup_host,
        path: req.path.clone(),
        normalized_path: None,
        path_refused: None,
        query: req.query.clone(),
        target_bytes: req.target_len() as u64,
        header_count: wire.len() as u64,
        header_bytes: wire
            .iter()
            .map(|(n, v)| (n.len() + v.len() + 4) as u64)
            .sum(),
        declared_body_bytes: first("content-length").and_then(|v| v.trim().parse().ok()),
        upgrade: first("upgrade"),
        client: req
            .client_ip
            .map(|peer| client(&config.server.trusted_proxies, peer, wire)),
    }
}

/// The client as the proxy works it out: the peer, or, when the peer is a trusted proxy,
/// the nearest untrusted address of `X-Forwarded-For` (the farthest when all are trusted).
fn client(trusted: &[IpNet], peer: IpAddr, wire: &[(String, String)]) -> ClientFacts {
    let is_trusted = |ip: IpAddr| {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        trusted.iter().any(|n| n.contains(&ip))
    };
    let trusted_proxy = is_trusted(peer);
    let mut client_ip = peer;
    if trusted_proxy {
        let chain: Vec<IpAddr> = wire
            .iter()
            .filter(|(n, _)| n == "x-forwarded-for")
            .flat_map(|(_, v)| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        if let Some(ip) = chain.iter().rev().find(|ip| !is_trusted(**ip)) {
            client_ip = *ip;
        } else if let Some(ip) = chain.first() {
            client_ip = *ip;
        }
    }
    ClientFacts {
        peer,
        trusted_proxy,
        client_ip,
        from_forwarded_for: client_ip != peer,
    }
}
