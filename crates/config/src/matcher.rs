//! Route matching, compiled once per configuration (and per listener).
//!
//! Routes are ranked by priority (higher first), then definition order. At build time every
//! distinct host the configuration names gets its own precomputed candidate list (routes for
//! that exact host, wildcard routes that cover it, and host-less routes, in rank order), and so
//! does every wildcard suffix. A request costs one hash lookup for its host (or one per label
//! for wildcard hosts) and a walk over that list until the first route whose remaining
//! conditions hold. Matching never allocates.

use std::collections::HashMap;

use crate::model::{Config, HostPattern, Listener, Matches, RouteId};

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
    m.paths.iter().all(|p| p.matches(req.path))
        && (m.methods.is_empty() || m.methods.iter().any(|x| x == req.method))
        && m.headers.iter().all(|h| {
            req.headers.any_value(&h.name, &mut |v| {
                h.value.as_ref().is_none_or(|want| v == want.as_bytes())
            })
        })
        && m.query_params
            .iter()
            .all(|q| query_has(req.query.unwrap_or(""), &q.name, q.value.as_deref()))
}

/// Whether the query has parameter `name` (with `value`, if given), comparing decoded forms.
fn query_has(query: &str, name: &str, value: Option<&str>) -> bool {
    query.split('&').any(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        decoded_eq(k, name) && value.is_none_or(|want| decoded_eq(v, want))
    })
}

/// Whether percent-decoding `raw` (with `+` as space) gives exactly `want`, without allocating.
fn decoded_eq(raw: &str, want: &str) -> bool {
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
