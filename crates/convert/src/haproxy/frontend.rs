//! `frontend` / `listen` → listeners (from `bind`) and routes (from `use_backend` rules in
//! order, then `default_backend`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::acl::{self, Acls};
use super::backend::{BackendRoute, Backends};
use super::parse::{Line, Section};
use super::{Cx, Proxy, http_rules};
use crate::model::{
    ClientAuthMode, HeaderEdits, Listener, ListenerTls, Protocol, Route, TlsVersion,
};
use crate::rules;

/// `ssl-default-bind-options ssl-min-ver …` of `global`.
pub(crate) fn global_min_version(g: &Section) -> Option<(TlsVersion, &Line)> {
    let l = g
        .lines
        .iter()
        .find(|l| l.keyword() == "ssl-default-bind-options")?;
    let i = l.words.iter().position(|w| w == "ssl-min-ver")?;
    let v = match l.word(i + 1)? {
        "TLSv1.3" => TlsVersion::V13,
        _ => TlsVersion::V12,
    };
    Some((v, l))
}

/// The listeners and routes of one frontend, to restrict listeners at the end.
#[derive(Debug, Default)]
pub(crate) struct Group {
    listeners: Vec<usize>,
    routes: Vec<String>,
}

#[expect(
    clippy::too_many_lines,
    reason = "the steps of one frontend in order; to be split"
)]
pub(crate) fn proxy(
    cx: &mut Cx<'_>,
    p: Proxy<'_>,
    backends: &mut Backends<'_>,
    global: Option<&Section>,
    tls_min: Option<(TlsVersion, &Line)>,
) {
    let (mode, mode_line) = p.mode();
    if mode != "http" {
        let why = format!("mode {mode}: Zentinel proxies HTTP only");
        cx.ledger.not_mapped(p.section.head.id, why.clone());
        for l in &p.section.lines {
            cx.ledger.not_mapped(l.id, why.clone());
        }
        return;
    }
    let mut acls = Acls::default();
    for l in p.own("acl") {
        if !acls.add(l) {
            cx.ledger
                .not_mapped(l.id, "expected `acl NAME FETCH VALUES…`");
        } else {
            cx.ledger.fallback(
                l.id,
                "no `use_backend` rule that could be converted uses this ACL",
            );
        }
    }
    let mut front_req = HeaderEdits::default();
    let mut front_resp = HeaderEdits::default();
    let open = http_rules::apply(cx, p.section, &mut front_req, &mut front_resp);
    let routes = routes(cx, p, &acls, backends, &front_req, &front_resp);
    if routes.is_empty() {
        let why = "the frontend has no `use_backend` or `default_backend` that could be converted";
        cx.ledger.not_mapped(p.section.head.id, why);
        for l in p.own("bind") {
            cx.ledger.not_mapped(l.id, why);
        }
        return;
    }
    match http_rules::open_caveat(&open) {
        Some(c) => cx.ledger.caveat(p.section.head.id, c),
        None => cx.ledger.mapped(p.section.head.id),
    }
    if let Some(l) = mode_line {
        cx.ledger.mapped(l.id);
    }
    let mut group = Group {
        listeners: Vec::new(),
        routes,
    };
    for l in p.own("bind") {
        binds(cx, p, l, global, tls_min, &mut group);
    }
    if group.listeners.is_empty() {
        let why = "no `bind` of this frontend could be converted";
        cx.draft.routes.retain(|r| !group.routes.contains(&r.id));
        cx.ledger.not_mapped(p.section.head.id, why);
        for l in p.own("use_backend").chain(p.own("default_backend")) {
            cx.ledger.not_mapped(l.id, why);
        }
        return;
    }
    listener_timeouts(cx, p, &group);
    if let Some(l) = p.find("maxconn", None) {
        match l.word(1).and_then(|v| v.parse::<u64>().ok()) {
            Some(n)
                if (1..=10_000_000).contains(&n) && cx.draft.limits.max_connections.is_none() =>
            {
                cx.draft.limits.max_connections = Some(n);
                cx.ledger.caveat(
                    l.id,
                    "limits { max-connections }: one cap for all listeners",
                );
            }
            Some(_) if cx.draft.limits.max_connections.is_some() => {
                cx.ledger.caveat(l.id, "Zentinel has one connection cap for all listeners: the first `maxconn` applies");
            }
            _ => cx
                .ledger
                .not_mapped(l.id, "not a connection count in 1..=10000000"),
        }
    }
    if let Some(l) = p.find("option", Some("forwardfor")) {
        cx.ledger.caveat(
            l.id,
            "the proxy always sets X-Forwarded-For (and Forwarded) itself",
        );
    }
    cx.groups.push(group);
}

/// The routes of a frontend, in rule order.
#[expect(
    clippy::too_many_lines,
    reason = "use_backend rules and the default backend share their reporting; to be split"
)]
fn routes(
    cx: &mut Cx<'_>,
    p: Proxy<'_>,
    acls: &Acls<'_>,
    backends: &mut Backends<'_>,
    req: &HeaderEdits,
    resp: &HeaderEdits,
) -> Vec<String> {
    let rules_lines: Vec<&Line> = p.own("use_backend").collect();
    let count = i64::try_from(rules_lines.len()).unwrap_or(0);
    let mut out = Vec::new();
    for (i, l) in rules_lines.iter().enumerate() {
        let Some(name) = l.word(1) else {
            cx.ledger.not_mapped(l.id, "no backend named");
            continue;
        };
        if name.contains('%') {
            cx.ledger
                .not_mapped(l.id, "dynamic backend names (log-format) are not supported");
            continue;
        }
        let mut used = Vec::new();
        let alts = if l.words.len() > 2 {
            acl::condition(&l.words[2..], acls, &mut used)
        } else {
            Ok(vec![acl::Match::default()])
        };
        let alts = match alts {
            Ok(a) => a,
            Err(why) => {
                cx.ledger.not_mapped(l.id, why);
                continue;
            }
        };
        let be = match backends.get(cx, name) {
            Ok(b) => b,
            Err(why) => {
                cx.ledger.not_mapped(l.id, why);
                continue;
            }
        };
        for u in used {
            cx.ledger.mapped(u.id);
        }
        let priority = (count - i64::try_from(i).unwrap_or(0)) * 10;
        let origin = format!(
            "HAProxy: {} {}, {} (line {})",
            p.section.head.keyword(),
            p.name(),
            l.words.join(" "),
            l.line
        );
        let notes = add_routes(
            cx,
            &alts,
            &be,
            req,
            resp,
            priority,
            &format!("{}-{name}", p.name()),
            &origin,
            &mut out,
        );
        note(cx, l, alts.len(), notes);
    }
    let default = p
        .own("default_backend")
        .last()
        .map(|l| (l.word(1).map(str::to_owned), Some(l)));
    let default = default.or_else(|| {
        (p.section.head.keyword() == "listen" && p.own("server").next().is_some())
            .then(|| (Some(p.name().to_owned()), None))
    });
    if let Some((Some(name), line)) = default {
        match backends.get(cx, &name) {
            Ok(be) => {
                let origin = match line {
                    Some(l) => format!(
                        "HAProxy: {} {}, default_backend {name} (line {})",
                        p.section.head.keyword(),
                        p.name(),
                        l.line
                    ),
                    None => format!(
                        "HAProxy: listen {} (line {})",
                        p.name(),
                        p.section.head.line
                    ),
                };
                let notes = add_routes(
                    cx,
                    &[acl::Match::default()],
                    &be,
                    req,
                    resp,
                    0,
                    &format!("{}-default", p.name()),
                    &origin,
                    &mut out,
                );
                if let Some(l) = line {
                    note(cx, l, 1, notes);
                }
            }
            Err(why) => {
                if let Some(l) = line {
                    cx.ledger.not_mapped(l.id, why);
                }
            }
        }
    }
    out
}

fn note(cx: &mut Cx<'_>, l: &Line, alternatives: usize, mut notes: Vec<String>) {
    if alternatives > 1 {
        notes.push(format!(
            "one route per alternative of the condition ({alternatives})"
        ));
    }
    if notes.is_empty() {
        cx.ledger.mapped(l.id);
    } else {
        cx.ledger.caveat(l.id, notes.join("; "));
    }
}

/// Frontend rules first, then the backend's, as HAProxy runs them.
fn merged(front: &HeaderEdits, back: &HeaderEdits, notes: &mut Vec<String>) -> HeaderEdits {
    let mut e = front.clone();
    for n in &back.remove {
        if let Err(why) = e.try_remove(n) {
            notes.push(format!(
                "the backend's removal of `{n}` is not applied: {why}"
            ));
        }
    }
    for (n, v) in &back.set {
        if let Err(why) = e.try_set(n, v) {
            notes.push(format!("the backend's `{n}` is not applied: {why}"));
        }
    }
    for (n, v) in &back.add {
        if let Err(why) = e.try_add(n, v) {
            notes.push(format!("the backend's `{n}` is not applied: {why}"));
        }
    }
    e
}

#[expect(
    clippy::too_many_arguments,
    reason = "one rule's routes from its parts"
)]
fn add_routes(
    cx: &mut Cx<'_>,
    alts: &[acl::Match],
    be: &BackendRoute,
    req: &HeaderEdits,
    resp: &HeaderEdits,
    priority: i64,
    id: &str,
    origin: &str,
    out: &mut Vec<String>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let request_headers = merged(req, &be.request, &mut notes);
    let response_headers = merged(resp, &be.response, &mut notes);
    for m in alts {
        let r = Route {
            id: cx.ids.fresh(id),
            origin: origin.to_owned(),
            priority,
            hosts: m.hosts.clone(),
            path: m.path.clone(),
            methods: m.methods.clone(),
            headers: m.headers.clone(),
            query: m.query.clone(),
            upstream: be.upstream.clone(),
            request_headers: request_headers.clone(),
            response_headers: response_headers.clone(),
            retry_attempts: be.retries,
            ..Route::default()
        };
        out.push(r.id.clone());
        cx.draft.routes.push(r);
    }
    notes.dedup();
    notes
}

/// `:80`, `*:80`, `1.2.3.4:80`, `[::]:80`, `:::80`, `ipv6@:80`.
fn bind_address(a: &str) -> Result<SocketAddr, String> {
    if a.starts_with("unix@")
        || a.starts_with('/')
        || a.starts_with("abns@")
        || a.starts_with("fd@")
        || a.starts_with("sockpair@")
    {
        return Err("only TCP addresses are supported for listeners".to_owned());
    }
    let (v6, a) = match a.strip_prefix("ipv6@") {
        Some(r) => (true, r),
        None => (false, a.strip_prefix("ipv4@").unwrap_or(a)),
    };
    let (host, port) = a
        .rsplit_once(':')
        .ok_or_else(|| format!("\"{a}\" has no port"))?;
    if port.contains('-') {
        return Err("port ranges are not supported".to_owned());
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("\"{port}\" is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "" | "*" if v6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        "" | "*" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "::" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        h => h
            .parse()
            .map_err(|_| format!("\"{h}\": listeners bind IP addresses, not host names"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

fn with_base(base: Option<&Line>, path: &str) -> String {
    match base.and_then(|b| b.word(1)) {
        Some(b) if !path.starts_with('/') => format!("{}/{path}", b.trim_end_matches('/')),
        _ => path.to_owned(),
    }
}

/// The TLS settings of a `bind … ssl crt …`.
fn bind_tls(
    cx: &mut Cx<'_>,
    l: &Line,
    global: Option<&Section>,
    tls_min: Option<(TlsVersion, &Line)>,
    caveats: &mut Vec<String>,
) -> Result<ListenerTls, String> {
    let base = |k: &str| global.and_then(|g| g.lines.iter().find(|x| x.keyword() == k));
    let params: Vec<&str> = l.words.iter().skip(2).map(String::as_str).collect();
    let value = |k: &str| {
        params
            .iter()
            .position(|p| *p == k)
            .and_then(|i| params.get(i + 1))
            .copied()
    };
    let crts: Vec<&str> = params
        .windows(2)
        .filter(|w| w[0] == "crt")
        .map(|w| w[1])
        .collect();
    let Some(first) = crts.first() else {
        return Err(if params.contains(&"crt-list") {
            "`crt-list` is not supported: give the default certificate with `crt`".to_owned()
        } else {
            "`ssl` without `crt`".to_owned()
        });
    };
    let crt_base = base("crt-base");
    let path = with_base(crt_base, first);
    if let Some(b) = crt_base.filter(|_| !first.starts_with('/')) {
        cx.ledger.mapped(b.id);
    }
    caveats.push("`crt` holds the certificate and key in one PEM: it is both `cert-file` and `key-file` (a directory of certificates is not supported)".to_owned());
    if crts.len() > 1 {
        caveats.push(
            "only the first `crt` is used: give the others as `sni` entries with their host names"
                .to_owned(),
        );
    }
    let mut t = ListenerTls {
        cert_file: path.clone(),
        key_file: path,
        ..ListenerTls::default()
    };
    let own_min = value("ssl-min-ver").map(|v| {
        if v == "TLSv1.3" {
            TlsVersion::V13
        } else {
            TlsVersion::V12
        }
    });
    t.min_version = own_min.or_else(|| {
        tls_min.map(|(v, line)| {
            cx.ledger.caveat(line.id, "`ssl-min-ver` → the listeners' `min-version`; the other options have no equivalent");
            v
        })
    });
    match (value("verify"), value("ca-file")) {
        (Some("required"), Some(ca)) | (Some("optional"), Some(ca)) => {
            let mode = if value("verify") == Some("required") {
                ClientAuthMode::Required
            } else {
                ClientAuthMode::Optional
            };
            let ca_base = base("ca-base");
            if let Some(b) = ca_base.filter(|_| !ca.starts_with('/')) {
                cx.ledger.mapped(b.id);
            }
            t.client_auth = Some((mode, with_base(ca_base, ca)));
        }
        (Some("required" | "optional"), None) => {
            return Err("`verify` without `ca-file`".to_owned());
        }
        _ => {}
    }
    Ok(t)
}

#[expect(
    clippy::too_many_lines,
    reason = "one bind line: TLS, parameters and each address; to be split"
)]
fn binds(
    cx: &mut Cx<'_>,
    p: Proxy<'_>,
    l: &Line,
    global: Option<&Section>,
    tls_min: Option<(TlsVersion, &Line)>,
    group: &mut Group,
) {
    let Some(addrs) = l.word(1) else {
        cx.ledger.not_mapped(l.id, "no address");
        return;
    };
    let params: Vec<&str> = l.words.iter().skip(2).map(String::as_str).collect();
    if params.contains(&"accept-proxy") {
        cx.ledger
            .not_mapped(l.id, "the PROXY protocol is not supported on listeners");
        return;
    }
    let mut caveats = Vec::new();
    let tls = if params.contains(&"ssl") {
        match bind_tls(cx, l, global, tls_min, &mut caveats) {
            Ok(t) => Some(t),
            Err(why) => {
                cx.ledger.not_mapped(l.id, why);
                return;
            }
        }
    } else {
        None
    };
    let known = [
        "ssl",
        "crt",
        "alpn",
        "verify",
        "ca-file",
        "ssl-min-ver",
        "no-sslv3",
        "no-tlsv10",
        "no-tlsv11",
    ];
    let mut skip = false;
    for (i, w) in params.iter().enumerate() {
        if std::mem::take(&mut skip) {
            continue;
        }
        skip = matches!(
            *w,
            "crt"
                | "alpn"
                | "verify"
                | "ca-file"
                | "ssl-min-ver"
                | "ciphers"
                | "ciphersuites"
                | "name"
                | "maxconn"
                | "backlog"
                | "process"
                | "thread"
                | "interface"
                | "curves"
                | "ecdhe"
                | "npn"
                | "crt-ignore-err"
                | "ca-ignore-err"
                | "ssl-max-ver"
                | "mss"
                | "id"
                | "nice"
                | "tcp-ut"
                | "level"
                | "mode"
                | "user"
                | "group"
                | "uid"
                | "gid"
                | "namespace"
                | "severity-output"
                | "crl-file"
        );
        if !known.contains(w) {
            caveats.push(format!(
                "`{w}{}` is ignored",
                if skip {
                    params
                        .get(i + 1)
                        .map(|v| format!(" {v}"))
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            ));
        }
    }
    let mut added = 0;
    for a in addrs.split(',') {
        let addr = match bind_address(a) {
            Ok(a) => a,
            Err(why) => {
                caveats.push(format!("{a}: {why}"));
                continue;
            }
        };
        let clash = cx.draft.listeners.iter().find(|o| {
            o.address.port() == addr.port()
                && o.address.is_ipv4() == addr.is_ipv4()
                && (o.address.ip() == addr.ip()
                    || o.address.ip().is_unspecified()
                    || addr.ip().is_unspecified())
        });
        if let Some(o) = clash {
            caveats.push(format!("{addr} overlaps listener \"{}\" ({}): Zentinel binds each port once per address family", o.id, o.address));
            continue;
        }
        let id = cx.ids.fresh(p.name());
        cx.draft.listeners.push(Listener {
            id,
            origin: format!(
                "HAProxy: {} {}, bind {a} (line {})",
                p.section.head.keyword(),
                p.name(),
                l.line
            ),
            address: addr,
            protocol: if tls.is_some() {
                Protocol::Https
            } else {
                Protocol::Http
            },
            tls: tls.clone(),
            routes: None,
            header_read_timeout_ms: None,
            idle_timeout_ms: None,
        });
        group.listeners.push(cx.draft.listeners.len() - 1);
        added += 1;
    }
    if added == 0 {
        cx.ledger.not_mapped(l.id, caveats.join("; "));
    } else if caveats.is_empty() {
        cx.ledger.mapped(l.id);
    } else {
        cx.ledger.caveat(l.id, caveats.join("; "));
    }
}

fn listener_timeouts(cx: &mut Cx<'_>, p: Proxy<'_>, group: &Group) {
    if p.timeout("http-keep-alive").is_some()
        && let Some((_, l)) = p.timeout("client")
    {
        cx.ledger.fallback(l.id, "`timeout http-keep-alive` sets the idle timeout; reads within a request are bounded by the upstream timeouts");
    }
    let idle = p.timeout("http-keep-alive").map(|(ms, l)| (ms, l, None)).or_else(|| {
        p.timeout("client").map(|(ms, l)| {
            (ms, l, Some("idle-timeout-ms: how long an idle keep-alive client connection stays open (HAProxy's `timeout client` also bounds reads within a request)"))
        })
    });
    if let Some((ms, l, note)) = idle {
        let (v, why) = rules::clamp(ms, 1, 86_400_000, "the timeout");
        for i in &group.listeners {
            cx.draft.listeners[*i].idle_timeout_ms = Some(v);
        }
        match (why, note) {
            (Some(w), _) => cx.ledger.caveat(l.id, w),
            (None, Some(n)) => cx.ledger.caveat(l.id, n),
            (None, None) => cx.ledger.mapped(l.id),
        }
    }
    if let Some((ms, l)) = p.timeout("http-request") {
        let (v, why) = rules::clamp(ms, 1, 600_000, "the timeout");
        for i in &group.listeners {
            cx.draft.listeners[*i].header_read_timeout_ms = Some(v);
        }
        match why {
            Some(w) => cx.ledger.caveat(l.id, w),
            None => cx.ledger.mapped(l.id),
        }
    }
}

/// Restricts each listener to its frontend's routes when frontends differ.
pub(crate) fn restrict_listeners(cx: &mut Cx<'_>) {
    let groups = std::mem::take(&mut cx.groups);
    let all = cx.draft.routes.len();
    if groups.iter().all(|g| g.routes.len() == all) {
        return;
    }
    for g in &groups {
        for i in &g.listeners {
            cx.draft.listeners[*i].routes = Some(g.routes.clone());
        }
    }
}
