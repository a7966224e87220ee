//! `listen` → one listener per address; TLS certificates of the servers sharing an address
//! become the listener's default certificate and its SNI entries.

use std::net::{IpAddr, SocketAddr};

use super::ServerInfo;
use crate::model::{ClientAuthMode, Listener, ListenerTls, Protocol, SniCert, TlsVersion};
use crate::nginx::scope::Scope;
use crate::nginx::{Cx, Node, time_arg};
use crate::report::ItemId;
use crate::rules;

/// One address servers listen on.
#[derive(Debug)]
pub(crate) struct Bind {
    pub(crate) addr: SocketAddr,
    pub(crate) ssl: bool,
    pub(crate) http2: bool,
    /// Server indices, in definition order.
    pub(crate) servers: Vec<usize>,
    /// The server marked `default_server`.
    pub(crate) explicit_default: Option<usize>,
    /// The `listen` directives behind it.
    pub(crate) items: Vec<ItemId>,
    /// Set when merged into an overlapping wildcard bind.
    pub(crate) merged_into: Option<usize>,
    /// Set when it overlaps a wildcard bind it cannot be merged into.
    pub(crate) dropped: bool,
}

/// The server that gets requests for unknown hosts on a bind: `default_server`, else the
/// first.
pub(crate) fn default_of(binds: &[Bind], b: usize) -> Option<usize> {
    let b = &binds[resolve(binds, b)];
    b.explicit_default.or_else(|| b.servers.first().copied())
}

/// Follows merges to the bind that is emitted.
pub(crate) fn resolve(binds: &[Bind], mut b: usize) -> usize {
    let mut hops = 0;
    while let Some(next) = binds[b].merged_into {
        b = next;
        hops += 1;
        if hops > binds.len() {
            break;
        }
    }
    b
}

pub(crate) fn add_bind(
    binds: &mut Vec<Bind>,
    addr: SocketAddr,
    ssl: bool,
    http2: bool,
    server: usize,
    default: bool,
    item: Option<ItemId>,
) -> usize {
    let i = match binds.iter().position(|b| b.addr == addr) {
        Some(i) => i,
        None => {
            binds.push(Bind {
                addr,
                ssl,
                http2,
                servers: Vec::new(),
                explicit_default: None,
                items: Vec::new(),
                merged_into: None,
                dropped: false,
            });
            binds.len() - 1
        }
    };
    let b = &mut binds[i];
    if !b.servers.contains(&server) {
        b.servers.push(server);
    }
    if default && b.explicit_default.is_none() {
        b.explicit_default = Some(server);
    }
    b.http2 |= http2;
    b.items.extend(item);
    i
}

/// The address of a `listen`: `80`, `1.2.3.4`, `1.2.3.4:80`, `*:80`, `[::]:80`.
fn address(a: &str) -> Result<(SocketAddr, Option<String>), String> {
    if a.starts_with("unix:") {
        return Err("Unix-socket listeners are not supported".to_owned());
    }
    if let Ok(port) = a.parse::<u16>() {
        return Ok((SocketAddr::from(([0, 0, 0, 0], port)), None));
    }
    let (host, port) =
        rules::split_host_port(a, Some(80)).ok_or_else(|| format!("\"{a}\" is not an address"))?;
    let ip = match host.as_str() {
        "*" => IpAddr::from([0, 0, 0, 0]),
        "localhost" => {
            return Ok((
                SocketAddr::from(([127, 0, 0, 1], port)),
                Some("localhost → 127.0.0.1 (not ::1)".to_owned()),
            ));
        }
        h => h
            .parse::<IpAddr>()
            .map_err(|_| format!("\"{h}\": Zentinel listens on IP addresses, not host names"))?,
    };
    Ok((SocketAddr::new(ip, port), None))
}

/// One `listen` directive: the bind it adds the server to.
pub(crate) fn listen(
    cx: &mut Cx<'_>,
    l: &Node<'_>,
    legacy_ssl: bool,
    scope: &Scope<'_, '_>,
    server: usize,
    binds: &mut Vec<Bind>,
) -> Option<usize> {
    let Some(a) = l.arg(0) else {
        cx.ledger.not_mapped(l.id, "no address");
        return None;
    };
    let (addr, note) = match address(a) {
        Ok(v) => v,
        Err(why) => {
            cx.ledger.not_mapped(l.id, why);
            return None;
        }
    };
    let mut caveats: Vec<String> = note.into_iter().collect();
    let (mut ssl, mut http2, mut default) = (legacy_ssl, scope.value("http2") == Some("on"), false);
    for p in l.d.args.iter().skip(1).map(|a| a.text.as_str()) {
        match p {
            "ssl" => ssl = true,
            "http2" => http2 = true,
            "default_server" | "default" => default = true,
            "proxy_protocol" => {
                cx.ledger
                    .not_mapped(l.id, "the PROXY protocol is not supported on listeners");
                return None;
            }
            "quic" | "http3" => {
                cx.ledger
                    .not_mapped(l.id, "HTTP/3 (QUIC) is not supported; listeners are TCP");
                return None;
            }
            other => caveats.push(format!("`{other}` is ignored")),
        }
    }
    if let Some(existing) = binds.iter().find(|b| b.addr == addr)
        && existing.ssl != ssl
    {
        cx.ledger.not_mapped(
            l.id,
            format!(
                "{addr} is already a listener with{} TLS",
                if existing.ssl { "" } else { "out" }
            ),
        );
        return None;
    }
    if http2 && !ssl {
        caveats.push(
            "clear-text HTTP/2 → protocol \"h2c\" (HTTP/1.1 and HTTP/2 with prior knowledge)"
                .to_owned(),
        );
    }
    if caveats.is_empty() {
        cx.ledger.mapped(l.id);
    } else {
        cx.ledger.caveat(l.id, caveats.join("; "));
    }
    Some(add_bind(
        binds,
        addr,
        ssl,
        http2,
        server,
        default,
        Some(l.id),
    ))
}

/// A specific address and the wildcard of its family on the same port cannot both be
/// listeners in Zentinel: the specific one is served by the wildcard one.
pub(crate) fn merge_overlaps(cx: &mut Cx<'_>, binds: &mut [Bind]) {
    for i in 0..binds.len() {
        let a = binds[i].addr;
        if a.ip().is_unspecified() {
            continue;
        }
        let wildcard = binds.iter().position(|b| {
            b.addr.port() == a.port()
                && b.addr.is_ipv4() == a.is_ipv4()
                && b.addr.ip().is_unspecified()
        });
        let Some(w) = wildcard else { continue };
        if binds[w].ssl != binds[i].ssl {
            for id in binds[i].items.clone() {
                cx.ledger.not_mapped(
                    id,
                    format!(
                        "{a} overlaps the listener on {} with different TLS",
                        binds[w].addr
                    ),
                );
            }
            binds[i].dropped = true;
            continue;
        }
        for id in binds[i].items.clone() {
            cx.ledger.caveat(
                id,
                format!("served by the listener on {}: Zentinel cannot bind an address and the wildcard on the same port", binds[w].addr),
            );
        }
        let servers = binds[i].servers.clone();
        for s in servers {
            if !binds[w].servers.contains(&s) {
                binds[w].servers.push(s);
            }
        }
        binds[i].merged_into = Some(w);
    }
}

/// Emits a listener for each bind that has routes.
pub(crate) fn emit(
    cx: &mut Cx<'_>,
    binds: &mut [Bind],
    servers: &[ServerInfo<'_, '_>],
    routes_of: &[Vec<String>],
) {
    let all: Vec<String> = routes_of.iter().flatten().cloned().collect();
    let mut planned: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, b) in binds.iter().enumerate() {
        if b.merged_into.is_some() || b.dropped {
            continue;
        }
        let routes: Vec<String> = b
            .servers
            .iter()
            .flat_map(|s| routes_of[*s].iter().cloned())
            .collect();
        if routes.is_empty() {
            for id in &b.items {
                cx.ledger.not_mapped(
                    *id,
                    format!("no location of the servers on {} proxies, so nothing would be served there", b.addr),
                );
            }
            continue;
        }
        planned.push((i, routes));
    }
    let restrict = planned.iter().any(|(_, r)| r.len() != all.len());
    for (i, routes) in planned {
        let b = &binds[i];
        let Some(def) = default_of(binds, i) else {
            continue;
        };
        let server = &servers[def];
        let tls = if b.ssl {
            match tls(cx, b, servers, def) {
                Some(t) => Some(t),
                None => {
                    for id in &b.items {
                        cx.ledger.not_mapped(
                            *id,
                            "TLS without a usable `ssl_certificate` and `ssl_certificate_key`",
                        );
                    }
                    continue;
                }
            }
        } else {
            None
        };
        let protocol = match (b.ssl, b.http2) {
            (true, _) => Protocol::Https,
            (false, true) => Protocol::H2c,
            (false, false) => Protocol::Http,
        };
        let name = match (b.ssl, b.addr.ip().is_unspecified(), b.addr.is_ipv6()) {
            (true, true, false) => format!("https-{}", b.addr.port()),
            (false, true, false) => format!("http-{}", b.addr.port()),
            (s, true, true) => format!("{}-v6-{}", if s { "https" } else { "http" }, b.addr.port()),
            (_, false, _) => b.addr.to_string(),
        };
        let mut listener = Listener {
            id: cx.ids.fresh(&name),
            origin: format!(
                "nginx: listen {} (servers: {})",
                b.addr,
                servers_label(b, servers)
            ),
            address: b.addr,
            protocol,
            tls,
            routes: restrict.then_some(routes),
            header_read_timeout_ms: None,
            idle_timeout_ms: None,
        };
        timeouts(cx, &mut listener, server);
        cx.draft.listeners.push(listener);
    }
}

fn servers_label(b: &Bind, servers: &[ServerInfo<'_, '_>]) -> String {
    b.servers
        .iter()
        .map(|s| servers[*s].label.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `client_header_timeout` and `keepalive_timeout` of the default server.
fn timeouts(cx: &mut Cx<'_>, l: &mut Listener, server: &ServerInfo<'_, '_>) {
    if let Some(at) = server.scope.scalar("client_header_timeout")
        && let Some(ms) = time_arg(cx.ledger, at.node, 0)
    {
        let (v, why) = rules::clamp(ms, 1, 600_000, "the timeout");
        l.header_read_timeout_ms = Some(v);
        let mut r = "header-read-timeout-ms: the deadline for the complete headers of a connection's first request".to_owned();
        if let Some(w) = why {
            r = format!("{r}; {w}");
        }
        cx.ledger.caveat(at.node.id, r);
    }
    if let Some(at) = server.scope.scalar("keepalive_timeout")
        && let Some(ms) = time_arg(cx.ledger, at.node, 0)
    {
        if ms == 0 {
            cx.ledger
                .not_mapped(at.node.id, "Zentinel always allows keep-alive");
            return;
        }
        let (v, why) = rules::clamp(ms, 1, 86_400_000, "the timeout");
        l.idle_timeout_ms = Some(v);
        match (why, at.node.nargs() > 1) {
            (Some(w), _) => cx.ledger.caveat(at.node.id, w),
            (None, true) => cx.ledger.caveat(
                at.node.id,
                "the Keep-Alive response header value is not sent",
            ),
            (None, false) => cx.ledger.mapped(at.node.id),
        }
    }
}

/// The certificate settings of one server.
fn server_cert(cx: &mut Cx<'_>, s: &ServerInfo<'_, '_>) -> Option<(String, String)> {
    let cert = s.scope.scalar("ssl_certificate")?;
    let key = s.scope.scalar("ssl_certificate_key")?;
    let (c, k) = (cert.node.arg(0)?, key.node.arg(0)?);
    if c.contains('$') || k.contains('$') || c.starts_with("data:") {
        cx.ledger.not_mapped(
            cert.node.id,
            "certificate paths with variables or inline data are not supported",
        );
        return None;
    }
    for id in [cert.node.id, key.node.id] {
        cx.ledger.mapped(id);
    }
    for c in &s.children {
        if matches!(c.name(), "ssl_certificate" | "ssl_certificate_key")
            && c.id != cert.node.id
            && c.id != key.node.id
        {
            cx.ledger.not_mapped(
                c.id,
                "Zentinel takes one certificate per name: the block's last one is used",
            );
        }
    }
    Some((c.to_owned(), k.to_owned()))
}

fn tls(
    cx: &mut Cx<'_>,
    b: &Bind,
    servers: &[ServerInfo<'_, '_>],
    def: usize,
) -> Option<ListenerTls> {
    let (cert_file, key_file) = server_cert(cx, &servers[def])?;
    let mut t = ListenerTls {
        cert_file,
        key_file,
        ..ListenerTls::default()
    };
    t.min_version = min_version(cx, &servers[def].scope);
    t.client_auth = client_auth(cx, &servers[def].scope);
    for s in b.servers.iter().filter(|s| **s != def) {
        let server = &servers[*s];
        let Some((c, k)) = server_cert(cx, server) else {
            continue;
        };
        if c == t.cert_file && k == t.key_file {
            continue;
        }
        for h in &server.hosts {
            if t.sni.iter().any(|x| x.host == *h) {
                if let Some(id) = server.server_name {
                    cx.ledger
                        .caveat(id, format!("{h} already has a certificate on {}", b.addr));
                }
                continue;
            }
            t.sni.push(SniCert {
                host: h.clone(),
                cert_file: c.clone(),
                key_file: k.clone(),
            });
        }
        if min_version(cx, &server.scope) != t.min_version
            && let Some(at) = server.scope.scalar("ssl_protocols")
        {
            cx.ledger.caveat(
                at.node.id,
                "Zentinel sets the TLS versions per listener: the default server's apply",
            );
        }
        if client_auth(cx, &server.scope) != t.client_auth
            && let Some(at) = server.scope.scalar("ssl_verify_client")
        {
            cx.ledger.caveat(at.node.id, "Zentinel verifies client certificates per listener: the default server's setting applies");
        }
    }
    Some(t)
}

fn min_version(cx: &mut Cx<'_>, scope: &Scope<'_, '_>) -> Option<TlsVersion> {
    let at = scope.scalar("ssl_protocols")?;
    let versions: Vec<&str> = at.node.d.args.iter().map(|a| a.text.as_str()).collect();
    let old = versions
        .iter()
        .any(|v| matches!(*v, "SSLv2" | "SSLv3" | "TLSv1" | "TLSv1.1"));
    let has12 = versions.contains(&"TLSv1.2");
    let has13 = versions.contains(&"TLSv1.3");
    match (old || has12, has13) {
        (true, _) => {
            let mut why = Vec::new();
            if old {
                why.push("Zentinel offers no TLS below 1.2");
            }
            if !has13 {
                why.push("TLS 1.3 is always offered too");
            }
            if why.is_empty() {
                cx.ledger.mapped(at.node.id);
            } else {
                cx.ledger.caveat(
                    at.node.id,
                    format!("min-version \"1.2\": {}", why.join("; ")),
                );
            }
            Some(TlsVersion::V12)
        }
        (false, true) => {
            cx.ledger.mapped(at.node.id);
            Some(TlsVersion::V13)
        }
        (false, false) => {
            cx.ledger
                .not_mapped(at.node.id, "no TLS version Zentinel offers (1.2, 1.3)");
            None
        }
    }
}

fn client_auth(cx: &mut Cx<'_>, scope: &Scope<'_, '_>) -> Option<(ClientAuthMode, String)> {
    let verify = scope.scalar("ssl_verify_client")?;
    let mode = match verify.node.arg(0) {
        Some("on") => ClientAuthMode::Required,
        Some("optional") => ClientAuthMode::Optional,
        Some("off") => {
            cx.ledger.mapped(verify.node.id);
            return None;
        }
        _ => {
            cx.ledger.not_mapped(
                verify.node.id,
                "only `on` and `optional` map (to client-auth \"required\" / \"optional\")",
            );
            return None;
        }
    };
    let Some(ca) = scope.scalar("ssl_client_certificate") else {
        cx.ledger.not_mapped(
            verify.node.id,
            "no `ssl_client_certificate` to verify against",
        );
        return None;
    };
    let path = ca.node.arg(0)?.to_owned();
    cx.ledger.mapped(verify.node.id);
    cx.ledger.mapped(ca.node.id);
    Some((mode, path))
}

/// Whether a server on bind `b` is reachable through an emitted listener.
pub(crate) fn usable(binds: &[Bind], b: usize) -> bool {
    !binds[resolve(binds, b)].dropped
}

/// Drops TLS binds whose default server has no certificate: nothing could be served there.
pub(crate) fn check_tls(cx: &mut Cx<'_>, binds: &mut [Bind], servers: &[ServerInfo<'_, '_>]) {
    for i in 0..binds.len() {
        if binds[i].merged_into.is_some() || binds[i].dropped || !binds[i].ssl {
            continue;
        }
        let Some(def) = default_of(binds, i) else {
            continue;
        };
        let scope = &servers[def].scope;
        let usable = |name: &str| {
            scope
                .value(name)
                .is_some_and(|p| !p.contains('$') && !p.starts_with("data:"))
        };
        if usable("ssl_certificate") && usable("ssl_certificate_key") {
            continue;
        }
        binds[i].dropped = true;
        for id in binds[i].items.clone() {
            cx.ledger.not_mapped(
                id,
                format!(
                    "TLS on {} without a usable `ssl_certificate` and `ssl_certificate_key` in its default server",
                    binds[i].addr
                ),
            );
        }
        for m in binds.iter_mut().filter(|m| m.merged_into == Some(i)) {
            m.dropped = true;
        }
    }
}
