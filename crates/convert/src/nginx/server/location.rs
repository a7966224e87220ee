//! `location` blocks that proxy → routes.
//!
//! nginx picks a server by Host, then a location by path: `=` exact first, then the longest
//! prefix (`^~` stops there), then regular expressions in order, then the longest prefix.
//! Zentinel tries routes by priority, so both choices are encoded in it: the host band
//! (exact names above wildcards above the default server) plus the location band.

use super::ServerInfo;
use super::listen::{self, Bind};
use super::rate::Zones;
use crate::model::{PathMatch, Route};
use crate::nginx::directives;
use crate::nginx::scope::{Level, Scope, is_scoped};
use crate::nginx::upstream::{ProxyUrl, Upstreams, proxy_url};
use crate::nginx::{Cx, Node};
use crate::rules;

mod headers;
mod upstream_settings;

/// How a location matches the path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LocKind {
    Exact(String),
    Prefix(String),
    /// `^~`: a prefix that stops the regex search.
    PrefixStop(String),
    Regex {
        re: String,
        case_insensitive: bool,
    },
}

fn kind(n: &Node<'_>) -> Result<LocKind, String> {
    let args: Vec<&str> = n.d.args.iter().map(|a| a.text.as_str()).collect();
    let (m, uri) = match args.as_slice() {
        [m @ ("=" | "~" | "~*" | "^~"), uri] => (*m, (*uri).to_owned()),
        [one] if one.starts_with('@') => {
            return Err("a named location is only reached by internal redirects, which Zentinel does not have".to_owned());
        }
        [one] => {
            let split = ["^~", "~*", "=", "~"].into_iter().find_map(|m| {
                one.strip_prefix(m)
                    .filter(|r| !r.is_empty())
                    .map(|r| (m, r))
            });
            match split {
                Some((m, r)) => (m, r.to_owned()),
                None => ("", (*one).to_owned()),
            }
        }
        _ => return Err("expected `location [modifier] uri`".to_owned()),
    };
    Ok(match m {
        "=" => LocKind::Exact(uri),
        "^~" => LocKind::PrefixStop(uri),
        "~" => LocKind::Regex {
            re: uri,
            case_insensitive: false,
        },
        "~*" => LocKind::Regex {
            re: uri,
            case_insensitive: true,
        },
        _ => LocKind::Prefix(uri),
    })
}

/// The location band of the priority.
fn location_band(k: &LocKind) -> i64 {
    let len = |s: &str| i64::try_from(s.len().min(999)).unwrap_or(999);
    match k {
        LocKind::Exact(_) => 9000,
        LocKind::PrefixStop(p) => 7000 + len(p),
        LocKind::Regex { .. } => 6000,
        LocKind::Prefix(p) => 1000 + len(p),
    }
}

/// The host groups of a server: (priority band, hosts). Exact names rank above wildcards,
/// longer wildcards above shorter, and the default server (no host condition) lowest.
fn host_groups(cx: &mut Cx<'_>, s: &ServerInfo<'_, '_>, binds: &[Bind]) -> Vec<(i64, Vec<String>)> {
    if s.default {
        if let Some(id) = s.server_name
            && !s.hosts.is_empty()
        {
            let addrs: Vec<String> = s
                .binds
                .iter()
                .map(|b| binds[listen::resolve(binds, *b)].addr.to_string())
                .collect();
            cx.ledger.caveat(
                id,
                format!(
                    "this is the default server of {} (nginx sends it every request with an unknown Host), so its routes match any host at the lowest priority",
                    addrs.join(", ")
                ),
            );
        }
        return vec![(0, Vec::new())];
    }
    let mut groups: Vec<(i64, Vec<String>)> = Vec::new();
    for h in &s.hosts {
        let band = match h.strip_prefix("*.") {
            None => 600_000,
            Some(suffix) => {
                let labels = i64::try_from(suffix.split('.').count().min(50)).unwrap_or(50);
                10_000 * (1 + labels)
            }
        };
        match groups.iter_mut().find(|(b, _)| *b == band) {
            Some((_, hs)) => hs.push(h.clone()),
            None => groups.push((band, vec![h.clone()])),
        }
    }
    groups.sort_by_key(|(b, _)| -b);
    groups
}

/// The routes of one server; their IDs.
pub(crate) fn server_routes(
    cx: &mut Cx<'_>,
    s: &ServerInfo<'_, '_>,
    binds: &[Bind],
    ups: &mut Upstreams,
    zones: &mut Zones,
) -> Vec<String> {
    let first = cx.ledger.next_id();
    let reachable = s.binds.iter().any(|b| listen::usable(binds, *b));
    let groups = if reachable {
        host_groups(cx, s, binds)
    } else {
        Vec::new()
    };
    let why_none = if !reachable {
        "none of the server's `listen`s can be converted"
    } else {
        "the server has no `server_name` Zentinel can match and is not a default server"
    };
    let mut out = Vec::new();
    for c in &s.children {
        match c.name() {
            "location" if !groups.is_empty() => {
                location(cx, s, &groups, &s.scope, c, ups, zones, &mut out)
            }
            "location" => {
                cx.ledger.not_mapped(c.id, why_none);
                directives::inside_unmapped(cx.ledger, &c.children, "location");
            }
            "limit_conn" => super::rate::limit_conn(cx, c),
            "include" => directives::include(cx.ledger, c),
            _ => {}
        }
    }
    let _ = first;
    if out.is_empty() {
        let why = if groups.is_empty() {
            why_none
        } else {
            "no location of this server proxies (`proxy_pass`)"
        };
        cx.ledger.not_mapped(s.node.id, why);
        for c in &s.children {
            if matches!(c.name(), "listen" | "server_name") || is_scoped(c.name()) {
                cx.ledger.fallback(c.id, why);
                if c.name() == "server_name" || c.name() == "listen" {
                    cx.ledger.not_mapped(c.id, why);
                }
            }
        }
    }
    for c in &s.children {
        if is_scoped(c.name()) {
            cx.ledger
                .fallback(c.id, "no proxied location of this server uses it");
        }
    }
    directives::leftovers(cx.ledger, &s.children, "no Zentinel equivalent in a server");
    out
}

/// The path condition of a location, checked.
fn path_match(k: &LocKind) -> Result<PathMatch, String> {
    match k {
        LocKind::Exact(p) | LocKind::Prefix(p) | LocKind::PrefixStop(p) => {
            if !rules::path(p) {
                return Err(format!("the path \"{p}\" does not start with '/'"));
            }
            Ok(match k {
                LocKind::Exact(_) => PathMatch::Exact(p.clone()),
                _ => PathMatch::Prefix(p.clone()),
            })
        }
        LocKind::Regex {
            re,
            case_insensitive,
        } => {
            let re = if *case_insensitive {
                format!("(?i){re}")
            } else {
                re.clone()
            };
            rules::regex(&re).map_err(|e| {
                format!("the regular expression is not valid in Zentinel's (Rust) syntax: {e}")
            })?;
            Ok(PathMatch::Regex(re))
        }
    }
}

/// How `proxy_pass`'s URI part changes the path, as a caveat.
fn rewrite_caveat(k: &LocKind, url: &ProxyUrl) -> Result<Option<String>, String> {
    let Some(uri) = &url.uri else { return Ok(None) };
    match k {
        LocKind::Regex { .. } => {
            Err("nginx refuses a URI part in `proxy_pass` inside a regex location".to_owned())
        }
        LocKind::Prefix(p) | LocKind::PrefixStop(p) | LocKind::Exact(p) if p == uri => Ok(None),
        LocKind::Prefix(p) | LocKind::PrefixStop(p) | LocKind::Exact(p) => Ok(Some(format!(
            "path rewriting is not supported: nginx replaces \"{p}\" with \"{uri}\", Zentinel forwards the original path"
        ))),
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the mapping state of one location, passed down as is"
)]
fn location<'n, 'a>(
    cx: &mut Cx<'_>,
    s: &ServerInfo<'n, 'a>,
    groups: &[(i64, Vec<String>)],
    parent: &Scope<'n, 'a>,
    n: &'n Node<'a>,
    ups: &mut Upstreams,
    zones: &mut Zones,
    out: &mut Vec<String>,
) {
    let children: Vec<&Node<'_>> = n.children.iter().collect();
    let scope = parent.enter(&children, Level::Location);
    let proxied = match kind(n) {
        Err(why) => {
            cx.ledger.not_mapped(n.id, why.clone());
            directives::leftovers(cx.ledger, &children, &why);
            false
        }
        Ok(k) => route(cx, s, groups, &scope, n, &k, ups, zones, out),
    };
    for c in &children {
        if c.name() == "location" {
            location(cx, s, groups, &scope, c, ups, zones, out);
        }
    }
    let why = if proxied {
        "no Zentinel equivalent in a location"
    } else {
        "the location does not proxy, so it has no route"
    };
    for c in &children {
        if is_scoped(c.name()) {
            cx.ledger.fallback(c.id, why);
        }
    }
    directives::leftovers(cx.ledger, &children, why);
}

/// Builds the routes of a location that proxies; false when it does not.
#[expect(
    clippy::too_many_arguments,
    reason = "the mapping state of one location, passed down as is"
)]
#[expect(
    clippy::too_many_lines,
    reason = "the parts of one route from one location, in order; to be split"
)]
fn route<'n, 'a>(
    cx: &mut Cx<'_>,
    s: &ServerInfo<'n, 'a>,
    groups: &[(i64, Vec<String>)],
    scope: &Scope<'n, 'a>,
    n: &'n Node<'a>,
    k: &LocKind,
    ups: &mut Upstreams,
    zones: &mut Zones,
    out: &mut Vec<String>,
) -> bool {
    if let Some(i) = n.children.iter().find(|c| c.name() == "internal") {
        cx.ledger.not_mapped(
            n.id,
            "an internal location (auth subrequests, error pages) is not exposed: it gets no route",
        );
        cx.ledger
            .not_mapped(i.id, "the location is internal: it gets no route");
        return false;
    }
    let Some(pp) = n.children.iter().find(|c| c.name() == "proxy_pass") else {
        let why = if n.children.iter().any(|c| c.name() == "return") {
            "returns a fixed response: Zentinel has no static or redirect routes, every route proxies"
        } else if n
            .children
            .iter()
            .any(|c| matches!(c.name(), "root" | "alias" | "try_files" | "index"))
        {
            "serves files: Zentinel is a proxy and serves no files"
        } else {
            "no `proxy_pass`: nothing to proxy"
        };
        cx.ledger.not_mapped(n.id, why);
        return false;
    };
    let resolved = pp
        .arg(0)
        .ok_or_else(|| "no target".to_owned())
        .and_then(proxy_url)
        .and_then(|url| rewrite_caveat(k, &url).map(|c| (url, c)))
        .and_then(|(url, c)| path_match(k).map(|p| (url, c, p)))
        .and_then(|(url, c, p)| ups.resolve(cx, &url).map(|u| (url, c, p, u)));
    let (url, rewrite, path, up) = match resolved {
        Ok(v) => v,
        Err(why) => {
            cx.ledger.not_mapped(pp.id, why.clone());
            cx.ledger
                .not_mapped(n.id, format!("its proxy_pass cannot be converted: {why}"));
            return false;
        }
    };
    let mut base = Route {
        upstream: cx.draft.upstreams[up].id.clone(),
        path: Some(path),
        ..Route::default()
    };
    match rewrite {
        Some(r) => cx.ledger.caveat(pp.id, r),
        None => cx.ledger.mapped(pp.id),
    }
    security(cx, scope, n);
    headers::request(cx, scope, &mut base, n.d.line);
    headers::response(cx, scope, &mut base, n.d.line);
    body_limit(cx, scope, &mut base);
    for at in scope.array("limit_req") {
        let status = scope.value("limit_req_status");
        if let Some(f) = zones.filter(cx, at.node, status)
            && !base.filters.contains(&f)
        {
            base.filters.push(f);
        }
    }
    if let Some(at) = scope.scalar("limit_req_status")
        && !base.filters.is_empty()
    {
        match at.node.arg(0) {
            Some("429") => cx.ledger.mapped(at.node.id),
            _ => cx.ledger.caveat(at.node.id, "Zentinel rejects with 429"),
        }
    }
    upstream_settings::apply(cx, scope, ups, up, &url, pp);
    let band = location_band(k);
    for (host_band, hosts) in groups {
        let mut r = base.clone();
        let path_label = match k {
            LocKind::Exact(p) | LocKind::Prefix(p) | LocKind::PrefixStop(p) => p.clone(),
            LocKind::Regex { .. } => "regex".to_owned(),
        };
        let host_label = hosts
            .first()
            .map_or(s.label.as_str(), |h| h.trim_start_matches("*."));
        r.id = cx.ids.fresh(&format!("{host_label}-{path_label}"));
        r.origin = format!(
            "nginx: server {} (line {}), {} (line {})",
            s.label,
            s.node.d.line,
            n.d.text(),
            n.d.line
        );
        r.priority = host_band + band;
        r.hosts = hosts.clone();
        out.push(r.id.clone());
        cx.draft.routes.push(r);
    }
    true
}

/// Access controls in force for a proxied location are not converted: the route is open
/// until an agent takes over, which the report must say loudly.
fn security(cx: &mut Cx<'_>, scope: &Scope<'_, '_>, n: &Node<'_>) {
    let mut open = Vec::new();
    for name in crate::nginx::scope::SECURITY {
        let nodes: Vec<&Node<'_>> = match scope.scalar(name) {
            Some(at) => vec![at.node],
            None => scope.array(name).iter().map(|a| a.node).collect(),
        };
        for d in nodes {
            if d.arg(0) == Some("off") {
                cx.ledger.mapped(d.id);
                continue;
            }
            cx.ledger.not_mapped(d.id, directives::SECURITY);
            if let Some(s) = directives::suggestion(name) {
                cx.ledger.suggest(d.id, s);
            }
            open.push(format!("`{}` (line {})", d.d.text(), d.d.line));
        }
    }
    if open.is_empty() {
        cx.ledger.mapped(n.id);
    } else {
        open.dedup();
        cx.ledger.caveat(
            n.id,
            format!(
                "its access control is NOT converted, so the route is open until an agent enforces it: {}",
                open.join(", ")
            ),
        );
    }
}

/// `client_max_body_size` written at the server or location level.
fn body_limit(cx: &mut Cx<'_>, scope: &Scope<'_, '_>, r: &mut Route) {
    let Some(at) = scope.scalar("client_max_body_size") else {
        return;
    };
    if at.level == Level::Http {
        return;
    }
    let Some(b) = at.node.arg(0).and_then(crate::quantity::nginx_size) else {
        cx.ledger
            .not_mapped(at.node.id, "not a size nginx accepts (like 512, 8k, 10m)");
        return;
    };
    let (b, why) = super::body_limit(b);
    r.max_body_bytes = Some(b);
    match why {
        Some(w) => cx.ledger.caveat(at.node.id, w),
        None => cx.ledger.mapped(at.node.id),
    }
}
