//! The `http` context: global limits and logs, `server` blocks and their `listen`s →
//! listeners (one per address, with SNI certificates for the servers sharing it).

mod listen;
mod location;
mod rate;

use std::net::SocketAddr;

use super::scope::{Level, Scope, is_scoped};
use super::upstream::Upstreams;
use super::{Cx, Node, directives, size_arg};
use crate::model::{LogDestination, LogTarget};
use crate::report::ItemId;
use crate::rules;
use listen::Bind;

/// One `server` block after the first pass.
#[derive(Debug)]
pub(crate) struct ServerInfo<'n, 'a> {
    pub(crate) node: &'n Node<'a>,
    pub(crate) children: Vec<&'n Node<'a>>,
    pub(crate) scope: Scope<'n, 'a>,
    /// Used in route IDs.
    pub(crate) label: String,
    /// Host patterns Zentinel can match, with the `server_name` they come from.
    pub(crate) hosts: Vec<String>,
    pub(crate) server_name: Option<ItemId>,
    /// Indices into the binds.
    pub(crate) binds: Vec<usize>,
    /// Whether it is the default server of one of its binds.
    pub(crate) default: bool,
}

/// Maps the directives of the `http` context.
pub(crate) fn http(cx: &mut Cx<'_>, children: &[&Node<'_>]) {
    let scope = Scope::default().enter(children, Level::Http);
    let mut ups = Upstreams::collect(cx, children);
    let mut zones = rate::Zones::collect(cx, children);
    for n in children {
        http_directive(cx, n);
    }
    let server_nodes: Vec<&Node<'_>> = children
        .iter()
        .copied()
        .filter(|n| n.name() == "server" && n.d.block.is_some())
        .collect();
    let mut binds: Vec<Bind> = Vec::new();
    let mut servers: Vec<ServerInfo<'_, '_>> = server_nodes
        .iter()
        .enumerate()
        .map(|(i, n)| first_pass(cx, n, &scope, i, &mut binds))
        .collect();
    listen::merge_overlaps(cx, &mut binds);
    for (i, s) in servers.iter_mut().enumerate() {
        s.default = s
            .binds
            .iter()
            .any(|b| listen::default_of(&binds, *b) == Some(i));
    }
    listen::check_tls(cx, &mut binds, &servers);
    let mut routes_of: Vec<Vec<String>> = vec![Vec::new(); servers.len()];
    for (i, s) in servers.iter().enumerate() {
        routes_of[i] = location::server_routes(cx, s, &binds, &mut ups, &mut zones);
    }
    listen::emit(cx, &mut binds, &servers, &routes_of);
    ups.finish(cx);
    zones.finish(cx);
    for n in children {
        if n.name() == "location" {
            cx.ledger
                .not_mapped(n.id, "`location` belongs in a `server` block");
            directives::inside_unmapped(cx.ledger, &n.children, "location");
        }
    }
    let unused = "no location that proxies inherits it";
    for n in children {
        if is_scoped(n.name()) {
            cx.ledger.fallback(n.id, unused);
        }
    }
    directives::leftovers(cx.ledger, children, "no Zentinel equivalent");
}

/// The `http`-level directives that are global in Zentinel.
fn http_directive(cx: &mut Cx<'_>, n: &Node<'_>) {
    match n.name() {
        "client_max_body_size" => {
            if let Some(b) = size_arg(cx.ledger, n, 0) {
                let (b, why) = body_limit(b);
                cx.draft.limits.max_body_bytes = Some(b);
                match why {
                    Some(w) => cx.ledger.caveat(n.id, w),
                    None => cx.ledger.mapped(n.id),
                }
            }
        }
        "large_client_header_buffers" => header_buffers(cx, n),
        "set_real_ip_from" => match n.arg(0) {
            Some(net) if net.parse::<std::net::IpAddr>().is_ok() || is_cidr(net) => {
                cx.draft.server.trusted_proxies.push(net.to_owned());
                cx.ledger.caveat(
                    n.id,
                    "server { trusted-proxies }: Zentinel believes X-Forwarded-For, Forwarded and traceparent from these peers",
                );
            }
            _ => cx
                .ledger
                .not_mapped(n.id, "only addresses and CIDRs are supported (not unix:)"),
        },
        "access_log" => access_log(cx, n),
        "limit_conn_zone" => match n.arg(0) {
            Some("$binary_remote_addr" | "$remote_addr") => cx.ledger.caveat(
                n.id,
                "Zentinel tracks connections per client address itself (`limits { max-tracked-clients }`)",
            ),
            _ => cx.ledger.not_mapped(
                n.id,
                "Zentinel counts connections per client address only",
            ),
        },
        "limit_conn" => rate::limit_conn(cx, n),
        "include" => directives::include(cx.ledger, n),
        _ => {}
    }
}

/// Zentinel's body limit for an nginx size (0 = unlimited).
pub(crate) fn body_limit(b: u64) -> (u64, Option<String>) {
    const MAX: u64 = 1 << 40;
    match b {
        0 => (
            MAX,
            Some("nginx's 0 (no limit) → Zentinel's largest limit, 1 TiB".to_owned()),
        ),
        b if b > MAX => (MAX, Some("lowered to Zentinel's maximum, 1 TiB".to_owned())),
        b => (b, None),
    }
}

fn is_cidr(s: &str) -> bool {
    s.split_once('/').is_some_and(|(ip, len)| {
        ip.parse::<std::net::IpAddr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 128)
    })
}

fn header_buffers(cx: &mut Cx<'_>, n: &Node<'_>) {
    let count = n.arg(0).and_then(|c| c.parse::<u64>().ok());
    let size = n.arg(1).and_then(crate::quantity::nginx_size);
    let (Some(count), Some(size)) = (count, size) else {
        cx.ledger.not_mapped(n.id, "expected a count and a size");
        return;
    };
    let total = count.saturating_mul(size);
    let (v, why) = rules::clamp(total, 1024, 1_048_575, "the header size");
    cx.draft.limits.max_header_bytes = Some(v);
    let mut reason = format!(
        "limits {{ max-header-bytes {v} }}: the total size of the request headers ({count} × {size} bytes); nginx also caps each header line at {size} bytes"
    );
    if let Some(w) = why {
        reason.push_str("; ");
        reason.push_str(&w);
    }
    cx.ledger.caveat(n.id, reason);
}

fn access_log(cx: &mut Cx<'_>, n: &Node<'_>) {
    let target = match n.arg(0) {
        Some("off") => LogTarget {
            destination: LogDestination::Off,
            path: None,
            level: None,
        },
        Some(p) if p.starts_with("syslog:") || p.contains('$') => {
            cx.ledger.not_mapped(
                n.id,
                "Zentinel writes the access log to a file, stdout or stderr (no syslog, no variables)",
            );
            return;
        }
        Some("/dev/stdout") => LogTarget {
            destination: LogDestination::Stdout,
            path: None,
            level: None,
        },
        Some(p) => LogTarget {
            destination: LogDestination::File,
            path: Some(p.to_owned()),
            level: None,
        },
        None => {
            cx.ledger.not_mapped(n.id, "no value");
            return;
        }
    };
    if cx.draft.observability.access_log.is_some() {
        cx.ledger
            .not_mapped(n.id, "Zentinel has one access log; the first one is used");
        return;
    }
    cx.draft.observability.access_log = Some(target);
    cx.ledger.caveat(
        n.id,
        "observability { access-log }: one JSON line per request, not nginx's log_format",
    );
}

/// Server names, listens and certificates of one `server` block.
fn first_pass<'n, 'a>(
    cx: &mut Cx<'_>,
    n: &'n Node<'a>,
    http: &Scope<'n, 'a>,
    index: usize,
    binds: &mut Vec<Bind>,
) -> ServerInfo<'n, 'a> {
    cx.ledger.mapped(n.id);
    let children: Vec<&Node<'_>> = n.children.iter().collect();
    let scope = http.enter(&children, Level::Server);
    let (hosts, server_name) = server_names(cx, &children);
    let label = hosts
        .first()
        .map(|h| h.trim_start_matches("*.").to_owned())
        .unwrap_or_else(|| "default".to_owned());
    let legacy_ssl = scope.value("ssl") == Some("on");
    let mut mine = Vec::new();
    let listens: Vec<&Node<'_>> = children
        .iter()
        .copied()
        .filter(|c| c.name() == "listen")
        .collect();
    for l in &listens {
        if let Some(b) = listen::listen(cx, l, legacy_ssl, &scope, index, binds) {
            mine.push(b);
        }
    }
    if listens.is_empty() {
        let addr = SocketAddr::from(([0, 0, 0, 0], 80));
        let b = listen::add_bind(binds, addr, legacy_ssl, false, index, false, None);
        mine.push(b);
        cx.ledger.caveat(
            n.id,
            "no `listen`: nginx's default, port 80 on every address",
        );
    }
    ServerInfo {
        node: n,
        children,
        scope,
        label,
        hosts,
        server_name,
        binds: mine,
        default: false,
    }
}

/// The host patterns of a server's `server_name`s.
fn server_names(cx: &mut Cx<'_>, children: &[&Node<'_>]) -> (Vec<String>, Option<ItemId>) {
    let mut hosts: Vec<String> = Vec::new();
    let mut first = None;
    for c in children.iter().filter(|c| c.name() == "server_name") {
        first.get_or_insert(c.id);
        let mut dropped = Vec::new();
        for a in &c.d.args {
            let name = a.text.as_str();
            let patterns: Vec<String> = match name {
                "" | "_" => Vec::new(),
                n if n.starts_with('~') => {
                    dropped.push(format!("{n} (regular expressions are not supported)"));
                    Vec::new()
                }
                n if n.starts_with('.') => {
                    let base = &n[1..];
                    [base.to_owned(), format!("*.{base}")]
                        .into_iter()
                        .filter_map(|h| rules::host_pattern(&h))
                        .collect()
                }
                n => match rules::host_pattern(n) {
                    Some(h) => vec![h],
                    None => {
                        dropped.push(format!(
                            "{n} (Zentinel matches exact names and leading `*.` wildcards)"
                        ));
                        Vec::new()
                    }
                },
            };
            for p in patterns {
                if !hosts.contains(&p) {
                    hosts.push(p);
                }
            }
        }
        if dropped.is_empty() {
            cx.ledger.mapped(c.id);
        } else {
            cx.ledger
                .caveat(c.id, format!("not matched: {}", dropped.join(", ")));
        }
    }
    (hosts, first)
}
