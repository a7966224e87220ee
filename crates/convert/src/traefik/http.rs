//! `http.routers` → routes, with their services and middlewares; entry points → listeners;
//! `tls` → the listeners' certificates.

mod middleware;
mod service;

use std::collections::HashMap;
use std::net::SocketAddr;

use super::tree::Node;
use super::{Cx, entry_address, rule};
use crate::ConvertOptions;
use crate::model::{ClientAuthMode, Listener, ListenerTls, Protocol, Route, TlsVersion};

/// One entry point routers use, with its routes.
#[derive(Debug, Default)]
struct Entry {
    name: String,
    routes: Vec<String>,
    tls: bool,
    /// Routers that name it.
    users: Vec<String>,
}

pub(crate) fn convert(cx: &mut Cx<'_>, root: &Node, options: &ConvertOptions) {
    let http = root.get("http");
    let routers = http.and_then(|h| h.get("routers"));
    let services = http.and_then(|h| h.get("services"));
    let middlewares = http.and_then(|h| h.get("middlewares"));
    if http.is_some() {
        cx.mapped("http");
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut upstreams: HashMap<String, Result<String, String>> = HashMap::new();
    let mut filters = middleware::Filters::new();
    let known: Vec<String> = root
        .get("entryPoints")
        .map(|e| e.entries().iter().map(|(k, _)| k.name.clone()).collect())
        .unwrap_or_default();
    if let Some(rs) = routers {
        cx.mapped("http.routers");
        for (k, r) in rs.entries() {
            let mut ups = |cx: &mut Cx<'_>, name: &str| {
                upstreams
                    .entry(name.to_owned())
                    .or_insert_with(|| service::upstream(cx, services, name))
                    .clone()
            };
            router(
                cx,
                &k.name,
                r,
                &mut ups,
                middlewares,
                &mut filters,
                &mut entries,
                &known,
            );
        }
    }
    cx.fallback_under("http.services", "no router uses this service");
    cx.fallback_under("http.middlewares", "no router uses this middleware");
    let tls = certificates(cx, root);
    listeners(cx, root, options, &entries, tls);
}

#[expect(
    clippy::too_many_arguments,
    reason = "one router with the shared mapping state"
)]
#[expect(
    clippy::too_many_lines,
    reason = "one router: rule, service, middlewares, entry points; to be split"
)]
fn router(
    cx: &mut Cx<'_>,
    name: &str,
    r: &Node,
    upstream: &mut dyn FnMut(&mut Cx<'_>, &str) -> Result<String, String>,
    middlewares: Option<&Node>,
    filters: &mut middleware::Filters,
    entries: &mut Vec<Entry>,
    known: &[String],
) {
    let p = format!("http.routers.{name}");
    let rule_text = r.get("rule").and_then(Node::scalar).unwrap_or_default();
    let alts = match rule::parse(rule_text) {
        Ok(a) => a,
        Err(why) => {
            cx.not_mapped(&format!("{p}.rule"), why.clone());
            if rule_text.contains("ClientIP")
                && let Some(id) = cx.id(&format!("{p}.rule"))
            {
                {
                    cx.ledger.suggest(id, "the denylist agent (agents/denylist) with `client-ip` rules, named in the route's `filters`");
                }
            }
            cx.not_mapped(&p, format!("its rule cannot be converted: {why}"));
            cx.fallback_under(&p, "the router is not converted");
            return;
        }
    };
    let svc = r.get("service").and_then(Node::scalar).unwrap_or_default();
    let svc_name = svc.strip_suffix("@file").unwrap_or(svc);
    let up = if svc_name.contains('@') {
        Err(format!("service \"{svc}\" comes from another provider"))
    } else {
        upstream(cx, svc_name)
    };
    let up = match up {
        Ok(u) => u,
        Err(why) => {
            cx.not_mapped(&format!("{p}.service"), why.clone());
            cx.not_mapped(&p, format!("its service cannot be converted: {why}"));
            cx.fallback_under(&p, "the router is not converted");
            return;
        }
    };
    let names = r.get("middlewares").map(Node::strings).unwrap_or_default();
    let applied = middleware::apply(cx, middlewares, &names, filters);
    let tls = r.get("tls").is_some();
    let eps = r
        .get("entryPoints")
        .map(Node::strings)
        .filter(|e| !e.is_empty());
    let eps = eps.unwrap_or_else(|| {
        if known.is_empty() {
            vec!["(default)".to_owned()]
        } else {
            known.to_vec()
        }
    });
    let priority = match r.get("priority").and_then(Node::uint) {
        Some(p) => i64::try_from(p.min(1_000_000)).unwrap_or(1_000_000),
        None => i64::try_from(rule_text.len()).unwrap_or(0),
    };
    let mut ids = Vec::new();
    for (i, m) in alts.iter().enumerate() {
        let route = Route {
            id: cx.ids.fresh(name),
            origin: format!(
                "Traefik: http.routers.{name} (line {}){}",
                r.line,
                if alts.len() > 1 {
                    format!(", alternative {}", i + 1)
                } else {
                    String::new()
                }
            ),
            priority,
            hosts: m.hosts.clone(),
            path: m.path.clone(),
            methods: m.methods.clone(),
            headers: m.headers.clone(),
            query: m.query.clone(),
            upstream: up.clone(),
            filters: applied.filters.clone(),
            request_headers: applied.request.clone(),
            response_headers: applied.response.clone(),
            max_body_bytes: applied.max_body,
            max_in_flight: applied.in_flight,
            retry_attempts: applied.retry,
            ..Route::default()
        };
        ids.push(route.id.clone());
        cx.draft.routes.push(route);
    }
    for ep in &eps {
        let e = match entries.iter_mut().find(|e| e.name == *ep) {
            Some(e) => e,
            None => {
                entries.push(Entry {
                    name: ep.clone(),
                    ..Entry::default()
                });
                let last = entries.len() - 1;
                &mut entries[last]
            }
        };
        e.routes.extend(ids.iter().cloned());
        e.tls |= tls;
        e.users.push(p.clone());
    }
    report_router(cx, &p, r, &alts, &applied);
}

fn report_router(
    cx: &mut Cx<'_>,
    p: &str,
    r: &Node,
    alts: &[rule::Match],
    a: &middleware::Applied,
) {
    let mut notes = Vec::new();
    if !a.open.is_empty() {
        notes.push(format!("its access control is NOT converted, so the routes are open until an agent enforces it: {}", a.open.join(", ")));
    }
    if !a.skipped.is_empty() {
        notes.push(format!("middlewares not applied: {}", a.skipped.join(", ")));
    }
    match notes.is_empty() {
        true => cx.mapped(p),
        false => cx.caveat(p, notes.join("; ")),
    }
    if alts.len() > 1 {
        cx.caveat(
            &format!("{p}.rule"),
            format!("one route per alternative ({})", alts.len()),
        );
    } else {
        cx.mapped(&format!("{p}.rule"));
    }
    for k in ["service", "middlewares", "entryPoints"] {
        cx.mapped(&format!("{p}.{k}"));
    }
    cx.fallback_under(&format!("{p}.middlewares"), "listed on the router");
    cx.fallback_under(&format!("{p}.entryPoints"), "listed on the router");
    match r.get("priority") {
        Some(v) if v.uint().is_some_and(|n| n > 1_000_000) => cx.caveat(
            &format!("{p}.priority"),
            "lowered to Zentinel's maximum 1000000",
        ),
        Some(_) => cx.mapped(&format!("{p}.priority")),
        None => {}
    }
    if r.get("tls").is_some() {
        cx.mapped(&format!("{p}.tls"));
        cx.fallback_under(
            &format!("{p}.tls"),
            "certificates come from the `tls` section (no ACME resolvers, no per-router domains)",
        );
    }
}

/// The default certificate, TLS versions and client authentication of the `tls` section.
fn certificates(cx: &mut Cx<'_>, root: &Node) -> Option<ListenerTls> {
    let tls = root.get("tls")?;
    let mut t: Option<ListenerTls> = None;
    let default = tls
        .get("stores")
        .and_then(|s| s.get("default"))
        .and_then(|d| d.get("defaultCertificate"));
    let mut candidates: Vec<(String, &Node)> = Vec::new();
    if let Some(d) = default {
        candidates.push(("tls.stores.default.defaultCertificate".to_owned(), d));
    }
    for (i, c) in tls
        .get("certificates")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        candidates.push((format!("tls.certificates[{i}]"), c));
    }
    for (path, c) in candidates {
        let (Some(cert), Some(key)) = (
            c.get("certFile").and_then(Node::scalar),
            c.get("keyFile").and_then(Node::scalar),
        ) else {
            cx.fallback_under(&path, "a certificate needs `certFile` and `keyFile`");
            continue;
        };
        if t.is_some() {
            cx.fallback_under(&path, "Zentinel needs the host name of each extra certificate: add it as `sni \"host\" { … }` by hand");
            continue;
        }
        t = Some(ListenerTls {
            cert_file: cert.to_owned(),
            key_file: key.to_owned(),
            ..ListenerTls::default()
        });
        for k in ["certFile", "keyFile"] {
            cx.mapped(&format!("{path}.{k}"));
        }
        cx.mapped(&path);
    }
    let opts = tls.get("options").and_then(|o| o.get("default"));
    if let (Some(t), Some(o)) = (t.as_mut(), opts) {
        tls_options(cx, t, o);
    }
    t
}

fn tls_options(cx: &mut Cx<'_>, t: &mut ListenerTls, o: &Node) {
    let p = "tls.options.default";
    match o.get("minVersion").and_then(Node::scalar) {
        Some("VersionTLS13") => t.min_version = Some(TlsVersion::V13),
        Some("VersionTLS12") => t.min_version = Some(TlsVersion::V12),
        Some(_) => {
            t.min_version = Some(TlsVersion::V12);
            cx.caveat(
                &format!("{p}.minVersion"),
                "Zentinel offers no TLS below 1.2",
            );
        }
        None => {}
    }
    cx.mapped(&format!("{p}.minVersion"));
    if let Some(ca) = o.get("clientAuth") {
        let mode = match ca.get("clientAuthType").and_then(Node::scalar) {
            Some("RequireAndVerifyClientCert") => Some(ClientAuthMode::Required),
            Some("VerifyClientCertIfGiven") => Some(ClientAuthMode::Optional),
            _ => None,
        };
        let file = ca
            .get("caFiles")
            .map(Node::strings)
            .and_then(|f| f.first().cloned());
        if let (Some(mode), Some(file)) = (mode, file) {
            t.client_auth = Some((mode, file));
            cx.mapped(&format!("{p}.clientAuth.clientAuthType"));
            cx.mapped(&format!("{p}.clientAuth.caFiles"));
            cx.mapped(&format!("{p}.clientAuth"));
        }
    }
    cx.mapped(p);
    cx.mapped("tls.options");
    cx.fallback_under(p, "cipher suites, curves and ALPN are rustls' own");
}

fn listeners(
    cx: &mut Cx<'_>,
    root: &Node,
    options: &ConvertOptions,
    entries: &[Entry],
    tls: Option<ListenerTls>,
) {
    let mut addr_of: HashMap<String, SocketAddr> = options.entry_points.iter().cloned().collect();
    if let Some(eps) = root.get("entryPoints") {
        for (k, v) in eps.entries() {
            let p = format!("entryPoints.{}", k.name);
            match v
                .get("address")
                .and_then(Node::scalar)
                .and_then(entry_address)
            {
                Some(a) => {
                    addr_of.entry(k.name.clone()).or_insert(a);
                    cx.mapped(&p);
                    cx.mapped(&format!("{p}.address"));
                }
                None => cx.not_mapped(
                    &format!("{p}.address"),
                    "not a TCP address Zentinel can listen on",
                ),
            }
            cx.fallback_under(
                &p,
                "entry point options other than the address are not converted",
            );
        }
    }
    let all: usize = cx.draft.routes.len();
    let mut planned: Vec<(SocketAddr, String, Vec<String>, bool)> = Vec::new();
    let mut missing = Vec::new();
    for e in entries {
        let Some(addr) = addr_of.get(&e.name).copied().or(options.default_listen) else {
            missing.push(e.name.clone());
            for u in &e.users {
                cx.not_mapped(
                    &format!("{u}.entryPoints"),
                    format!("entry point \"{}\" has no address", e.name),
                );
            }
            continue;
        };
        match planned.iter_mut().find(|p| p.0 == addr) {
            Some(p) => {
                p.2.extend(e.routes.iter().cloned());
                p.3 |= e.tls;
            }
            None => planned.push((addr, e.name.clone(), e.routes.clone(), e.tls)),
        }
    }
    if !missing.is_empty() {
        cx.draft.blockers.push(format!(
            "entry point(s) {} have no address: Traefik defines them in its static configuration; give them with `zentinel convert --listen ADDR` (ConvertOptions::default_listen) or ConvertOptions::entry_points",
            missing.join(", ")
        ));
    }
    let restrict = planned.len() > 1 && planned.iter().any(|p| p.2.len() != all);
    for (addr, name, mut routes, wants_tls) in planned {
        routes.dedup();
        let tls = if wants_tls { tls.clone() } else { None };
        if wants_tls && tls.is_none() {
            cx.draft.blockers.push(format!("routers on entry point \"{name}\" use TLS, but the file has no certificate (`tls.certificates` or `tls.stores.default.defaultCertificate`); ACME resolvers are not supported"));
        }
        cx.draft.listeners.push(Listener {
            id: cx.ids.fresh(&name),
            origin: format!("Traefik: entry point {name}"),
            address: addr,
            protocol: if tls.is_some() {
                Protocol::Https
            } else {
                Protocol::Http
            },
            tls,
            routes: restrict.then_some(routes),
            header_read_timeout_ms: None,
            idle_timeout_ms: None,
        });
    }
}
