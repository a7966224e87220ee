//! Route matching, compiled once per configuration (and per listener).
//!
//! Routes are ranked by priority (higher first), then definition order. At build time every
//! distinct host the configuration names gets its own precomputed candidate list (routes for
//! that exact host, wildcard routes that cover it, and host-less routes, in rank order), and so
//! does every wildcard suffix. A request costs one hash lookup for its host (or one per label
//! for wildcard hosts) and a walk over that list until the first route whose remaining
//! conditions hold. [`RouteMatcher::find`] never allocates.
//!
//! [`RouteMatcher::trace`] runs the same lookup and the same condition tests for every route
//! and reports each result: what `zentinel explain` and the playground show. It allocates and
//! is never on the request path.

use std::collections::HashMap;

use crate::model::{
    Config, HeaderMatch, HostPattern, Listener, Matches, PathMatch, QueryMatch, RouteId,
};

/// Read access to request headers, implemented by the proxy for its header map.
pub trait Headers {
    /// Whether some value of header `name` (lower case) satisfies `pred`.
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool;
}

impl Headers for [(&str, &str)] {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && pred(v.as_bytes()))
    }
}

impl<const N: usize> Headers for [(&str, &str); N] {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.as_slice().any_value(name, pred)
    }
}

impl Headers for Vec<(String, String)> {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && pred(v.as_bytes()))
    }
}

/// What the matcher looks at in a request.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// Method, as sent.
    pub method: &'a str,
    /// `Host` (or `:authority`), possibly with a port; `None` when absent.
    pub host: Option<&'a str>,
    /// Path, without the query.
    pub path: &'a str,
    /// Raw query string, without `?`.
    pub query: Option<&'a str>,
    /// Headers.
    pub headers: &'a dyn Headers,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

/// The outcome of matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteMatch<'m> {
    /// The route's ID.
    pub id: &'m RouteId,
    /// Its position in [`Config::routes`].
    pub index: usize,
    /// Whether it was chosen as the listener's `default-route` because nothing matched.
    pub fallback: bool,
}

#[derive(Debug)]
struct Compiled {
    id: RouteId,
    index: usize,
    matches: Matches,
}

/// A compiled set of routes.
#[derive(Debug)]
pub struct RouteMatcher {
    routes: Vec<Compiled>,
    exact: HashMap<Box<str>, Box<[u32]>>,
    wildcard: HashMap<Box<str>, Box<[u32]>>,
    any_host: Box<[u32]>,
    fallback: Option<u32>,
}

/// Longest host name looked up (DNS names are at most 253 bytes).
const MAX_HOST: usize = 253;

impl RouteMatcher {
    /// A matcher over every route of the configuration, without fallback.
    pub fn new(config: &Config) -> Self {
        Self::build(config, |_| true, None)
    }

    /// A matcher over the routes `listener` serves, with its default route.
    pub fn for_listener(config: &Config, listener: &Listener) -> Self {
        let allowed = |id: &RouteId| {
            listener
                .routes
                .as_ref()
                .is_none_or(|list| list.contains(id))
        };
        Self::build(config, allowed, listener.default_route.as_ref())
    }

    fn build(
        config: &Config,
        allowed: impl Fn(&RouteId) -> bool,
        fallback: Option<&RouteId>,
    ) -> Self {
        let mut ranked: Vec<(usize, &crate::model::Route)> = config
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| allowed(&r.id))
            .collect();
        // Stable sort: equal priorities keep definition order.
        ranked.sort_by_key(|(_, r)| std::cmp::Reverse(r.priority));
        let routes: Vec<Compiled> = ranked
            .iter()
            .map(|(i, r)| Compiled {
                id: r.id.clone(),
                index: *i,
                matches: r.matches.clone(),
            })
            .collect();

        let mut exact_names: Vec<&str> = Vec::new();
        let mut suffixes: Vec<&str> = Vec::new();
        for r in &routes {
            for h in &r.matches.hosts {
                match h {
                    HostPattern::Exact(n) => exact_names.push(n),
                    HostPattern::Wildcard(s) => suffixes.push(s),
                }
            }
        }
        let rank = |pred: &dyn Fn(&Compiled) -> bool| -> Box<[u32]> {
            routes
                .iter()
                .enumerate()
                .filter(|(_, r)| pred(r))
                .map(|(i, _)| i as u32)
                .collect()
        };
        let exact = exact_names
            .iter()
            .map(|name| {
                let list = rank(&|r: &Compiled| {
                    r.matches.hosts.is_empty() || r.matches.hosts.iter().any(|h| h.matches(name))
                });
                (Box::<str>::from(*name), list)
            })
            .collect();
        let wildcard = suffixes
            .iter()
            .map(|suffix| {
                let covers = |h: &HostPattern| match h {
                    HostPattern::Wildcard(t) => {
                        t == suffix
                            || (suffix.len() > t.len()
                                && suffix.ends_with(t.as_str())
                                && suffix.as_bytes()[suffix.len() - t.len() - 1] == b'.')
                    }
                    HostPattern::Exact(_) => false,
                };
                let list = rank(&|r: &Compiled| {
                    r.matches.hosts.is_empty() || r.matches.hosts.iter().any(covers)
                });
                (Box::<str>::from(*suffix), list)
            })
            .collect();
        let any_host = rank(&|r: &Compiled| r.matches.hosts.is_empty());
        let fallback = fallback
            .and_then(|id| routes.iter().position(|r| &r.id == id))
            .map(|i| i as u32);
        Self {
            routes,
            exact,
            wildcard,
            any_host,
            fallback,
        }
    }

    /// The route for `req`: the first candidate, in rank order, whose conditions all hold;
    /// else the default route, if any.
    pub fn find(&self, req: &Request<'_>) -> Option<RouteMatch<'_>> {
        let mut buf = [0u8; MAX_HOST];
        let candidates = match req.host.and_then(|h| normalize_host(h, &mut buf)) {
            Some(host) => self.candidates_for(host),
            None => &self.any_host,
        };
        let hit = candidates
            .iter()
            .map(|&i| (i, &self.routes[i as usize]))
            .find(|(_, r)| conditions_hold(&r.matches, req));
        match hit {
            Some((_, r)) => Some(RouteMatch {
                id: &r.id,
                index: r.index,
                fallback: false,
            }),
            None => self.fallback.map(|i| {
                let r = &self.routes[i as usize];
                RouteMatch {
                    id: &r.id,
                    index: r.index,
                    fallback: true,
                }
            }),
        }
    }

    fn candidates_for(&self, host: &str) -> &[u32] {
        if let Some(list) = self.exact.get(host) {
            return list;
        }
        // Longest wildcard suffix first: strip one label at a time. A wildcard needs at least
        // one character before the suffix's dot (".example.com" is not a subdomain).
        let mut rest = host;
        while let Some(dot) = rest.find('.') {
            rest = &rest[dot + 1..];
            if rest.len() + 1 < host.len()
                && let Some(list) = self.wildcard.get(rest)
            {
                return list;
            }
        }
        &self.any_host
    }

    /// Route IDs in rank order.
    pub fn ranked(&self) -> impl Iterator<Item = &RouteId> {
        self.routes.iter().map(|r| &r.id)
    }

    /// Every route, in rank order, checked condition by condition against `req`, with what
    /// [`find`](Self::find) answers. It uses the same host lookup and the same condition
    /// tests as `find`, so the first route whose checks all hold is the route `find` returns.
    /// Allocates: for explanations, never the request path.
    pub fn trace(&self, req: &Request<'_>) -> Trace<'_> {
        let mut buf = [0u8; MAX_HOST];
        let host = req.host.and_then(|h| normalize_host(h, &mut buf));
        let candidates = match host {
            Some(h) => self.candidates_for(h),
            None => &self.any_host,
        };
        let routes = self
            .routes
            .iter()
            .enumerate()
            .map(|(rank, r)| {
                let m = &r.matches;
                RouteCheck {
                    id: &r.id,
                    index: r.index,
                    host: u32::try_from(rank).is_ok_and(|rank| candidates.contains(&rank)),
                    paths: m.paths.iter().map(|p| path_holds(p, req)).collect(),
                    method: (!m.methods.is_empty()).then(|| method_holds(m, req)),
                    headers: m.headers.iter().map(|h| header_holds(h, req)).collect(),
                    query_params: m.query_params.iter().map(|q| query_holds(q, req)).collect(),
                }
            })
            .collect();
        Trace {
            host: host.map(str::to_owned),
            found: self.find(req),
            routes,
        }
    }
}

/// Every route of a matcher checked against one request; see [`RouteMatcher::trace`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Trace<'m> {
    /// The host that was looked up: lower case, without port or trailing dot; `None` when the
    /// request has none or it cannot match a configured name (too long, not ASCII).
    pub host: Option<String>,
    /// What [`RouteMatcher::find`] answers for the request.
    pub found: Option<RouteMatch<'m>>,
    /// Every route of the matcher, in rank order.
    pub routes: Vec<RouteCheck<'m>>,
}

/// How one route fares against a request, condition by condition.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteCheck<'m> {
    /// The route's ID.
    pub id: &'m RouteId,
    /// Its position in [`Config::routes`].
    pub index: usize,
    /// Whether the route is a candidate for the request's host: it has no `host` condition,
    /// or one of its patterns covers the host.
    pub host: bool,
    /// Each of its path conditions, in order.
    pub paths: Vec<bool>,
    /// Its `method` condition; `None` when it has none.
    pub method: Option<bool>,
    /// Each of its header conditions, in order.
    pub headers: Vec<bool>,
    /// Each of its query-parameter conditions, in order.
    pub query_params: Vec<bool>,
}

impl RouteCheck<'_> {
    /// Whether every condition holds.
    pub fn holds(&self) -> bool {
        self.failed() == 0
    }

    /// How many conditions do not hold (the host and the method count as one each).
    pub fn failed(&self) -> usize {
        let failed = |v: &[bool]| v.iter().filter(|ok| !**ok).count();
        usize::from(!self.host)
            + failed(&self.paths)
            + usize::from(self.method == Some(false))
            + failed(&self.headers)
            + failed(&self.query_params)
    }
}

/// Lower-cases `host` into `buf` without its port and trailing dot. `None` when it does not
/// fit or is not ASCII (such a host can match no configured name).
fn normalize_host<'b>(host: &str, buf: &'b mut [u8; MAX_HOST]) -> Option<&'b str> {
    let host = if let Some(v6) = host.strip_prefix('[') {
        // "[::1]:8080" → "[::1]"; IPv6 literals keep their brackets out of the name.
        return v6
            .split(']')
            .next()
            .filter(|h| h.len() <= MAX_HOST)
            .and_then(|h| copy_lower(h, buf));
    } else {
        host.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
    };
    copy_lower(host.strip_suffix('.').unwrap_or(host), buf)
}

fn copy_lower<'b>(s: &str, buf: &'b mut [u8; MAX_HOST]) -> Option<&'b str> {
    if s.len() > MAX_HOST || !s.is_ascii() {
        return None;
    }
    let out = &mut buf[..s.len()];
    out.copy_from_slice(s.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

/// Every condition other than the host (already settled by the candidate list).
fn conditions_hold(m: &Matches, req: &Request<'_>) -> bool {
    m.paths.iter().all(|p| path_holds(p, req))
        && (m.methods.is_empty() || method_holds(m, req))
        && m.headers.iter().all(|h| header_holds(h, req))
        && m.query_params.iter().all(|q| query_holds(q, req))
}

fn path_holds(p: &PathMatch, req: &Request<'_>) -> bool {
    p.matches(req.path)
}

/// Whether the method is one of the route's (which are not empty).
fn method_holds(m: &Matches, req: &Request<'_>) -> bool {
    m.methods.iter().any(|x| x == req.method)
}

fn header_holds(h: &HeaderMatch, req: &Request<'_>) -> bool {
    req.headers.any_value(&h.name, &mut |v| {
        h.value.as_ref().is_none_or(|want| v == want.as_bytes())
    })
}

fn query_holds(q: &QueryMatch, req: &Request<'_>) -> bool {
    query_has(req.query.unwrap_or(""), &q.name, q.value.as_deref())
}

/// Whether the query has parameter `name` (with `value`, if given), comparing decoded forms.
fn query_has(query: &str, name: &str, value: Option<&str>) -> bool {
    query.split('&').any(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        decoded_eq(k, name) && value.is_none_or(|want| decoded_eq(v, want))
    })
}

/// Whether percent-decoding `raw` (with `+` as space) gives exactly `want`, without allocating.
pub(crate) fn decoded_eq(raw: &str, want: &str) -> bool {
    let (raw, want) = (raw.as_bytes(), want.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < raw.len() {
        let byte = match raw[i] {
            b'%' if i + 2 < raw.len() => match (hex(raw[i + 1]), hex(raw[i + 2])) {
                (Some(h), Some(l)) => {
                    i += 3;
                    h << 4 | l
                }
                _ => {
                    i += 1;
                    b'%'
                }
            },
            b'+' => {
                i += 1;
                b' '
            }
            b => {
                i += 1;
                b
            }
        };
        if want.get(j) != Some(&byte) {
            return false;
        }
        j += 1;
    }
    j == want.len()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
