//! Decoding of listeners and their TLS settings.

use std::collections::HashMap;

use super::routes::host_pattern;
use super::{Ids, invalid};
use crate::diagnostic::{Code, Problem, Span};
use crate::model::{
    ClientAuth, ClientAuthMode, Listener, ListenerId, ListenerProtocol, ListenerTls, RouteId,
    SniCert,
};
use crate::reader::{Cx, Reader, Spanned};

pub(super) fn listener(r: &Reader<'_>, id: &Spanned<String>, routes: &Ids) -> Option<Listener> {
    let cx = r.cx();
    let address = r.socket_addr("address");
    let protocol = r.enumeration::<ListenerProtocol>("protocol");
    let tls = if r.has("tls") {
        r.block("tls").map(|b| tls(&b))
    } else {
        None
    };
    let route_list = r.string_list("routes");
    let default_route = r.string("default-route");
    let header_read_timeout = r.ms("header-read-timeout-ms");
    let idle_timeout = r.ms("idle-timeout-ms");
    let context = format!("listener \"{}\"", id.value);

    let tls = match (protocol, tls) {
        (Some(ListenerProtocol::Https), None) => {
            cx.report(
                Problem::new(
                    Code::MissingKey,
                    r.written("protocol"),
                    format!("{context} speaks https but has no `tls` block"),
                )
                .help(r#"add tls { cert-file "certs/site.crt"; key-file "certs/site.key"; }"#),
            );
            return None;
        }
        (Some(p @ (ListenerProtocol::Http | ListenerProtocol::H2c)), Some(_)) => {
            let span = r.written("tls");
            cx.report(
                Problem::new(
                    Code::Conflict,
                    span,
                    format!("{context} has a `tls` block but speaks {p}, so it would be ignored"),
                )
                .help(r#"set `protocol "https"`, or remove the `tls` block"#),
            );
            return None;
        }
        (_, t) => t.flatten(),
    };
    let mut restricted: Option<Vec<RouteId>> = None;
    if let Some(list) = route_list
        && r.written("routes").is_some()
    {
        let mut seen = Vec::new();
        let mut ok = true;
        for item in &list {
            ok &= routes.resolve(cx, "route", item, &context, id.span);
            if seen.contains(&item.value) {
                invalid(
                    cx,
                    item.span,
                    format!("route \"{}\" is listed twice", item.value),
                    None,
                );
                ok = false;
            }
            seen.push(item.value.clone());
        }
        if !ok {
            return None;
        }
        restricted = Some(seen.into_iter().map(RouteId::new).collect());
    }
    let default_route = match default_route {
        Some(d) => {
            if !routes.resolve(
                cx,
                "route",
                &d,
                &format!("{context} `default-route`"),
                id.span,
            ) {
                return None;
            }
            if let Some(list) = &restricted
                && !list.iter().any(|r| r.as_str() == d.value)
            {
                invalid(
                    cx,
                    d.span,
                    format!(
                        "default route \"{}\" is not one of this listener's `routes`",
                        d.value
                    ),
                    Some("add it to `routes`, or pick one of them".to_owned()),
                );
                return None;
            }
            Some(RouteId::new(d.value))
        }
        None => None,
    };
    Some(Listener {
        id: ListenerId::new(id.value.clone()),
        address: address?,
        protocol: protocol?,
        tls,
        routes: restricted,
        default_route,
        header_read_timeout: header_read_timeout?,
        idle_timeout: idle_timeout?,
    })
}

fn tls(r: &Reader<'_>) -> Option<ListenerTls> {
    let cx = r.cx();
    let cert_file = r.path("cert-file");
    let key_file = r.path("key-file");
    let min_version = r.enumeration("min-version");
    let mut sni = Vec::new();
    let mut ok = true;
    let mut hosts: HashMap<String, Option<Span>> = HashMap::new();
    for (host, b) in r.named("sni") {
        let pattern = host_pattern(cx, &host);
        let cert = b.path("cert-file");
        let key = b.path("key-file");
        match (pattern, cert, key) {
            (Some(p), Some(c), Some(k)) => {
                let key_text = p.to_string();
                if let Some(first) = hosts.get(&key_text) {
                    let mut pr = Problem::new(
                        Code::DuplicateId,
                        host.span,
                        format!("SNI name \"{key_text}\" has two certificates"),
                    );
                    if let Some(f) = first {
                        pr = pr.related(*f, "first certificate for it");
                    }
                    cx.report(pr);
                    ok = false;
                }
                hosts.insert(key_text, host.span);
                sni.push(SniCert {
                    host: p,
                    cert_file: c,
                    key_file: k,
                });
            }
            _ => ok = false,
        }
    }
    let mut client_auth = None;
    for (mode, b) in r.named("client-auth") {
        let mode_value = r.to_enum::<ClientAuthMode>("client-auth", &mode.value, mode.span);
        let ca = b.path("ca-file");
        match (mode_value, ca) {
            (Some(m), Some(ca_file)) => client_auth = Some(ClientAuth { mode: m, ca_file }),
            _ => ok = false,
        }
    }
    if !ok {
        return None;
    }
    Some(ListenerTls {
        cert_file: cert_file?,
        key_file: key_file?,
        sni,
        client_auth,
        min_version: min_version?,
    })
}

/// Two listeners cannot bind the same address (a wildcard address overlaps every address of
/// its family on the same port).
pub(super) fn check_addresses(cx: &Cx<'_>, listeners: &[Listener], spans: &[Option<Span>]) {
    for (i, l) in listeners.iter().enumerate() {
        let clash = listeners[..i].iter().enumerate().find(|(_, o)| {
            o.address.port() == l.address.port()
                && o.address.is_ipv4() == l.address.is_ipv4()
                && (o.address.ip() == l.address.ip()
                    || o.address.ip().is_unspecified()
                    || l.address.ip().is_unspecified())
        });
        if let Some((j, other)) = clash {
            let mut p = Problem::new(
                Code::Conflict,
                spans.get(i).copied().flatten(),
                format!(
                    "listeners \"{}\" ({}) and \"{}\" ({}) overlap",
                    other.id, other.address, l.id, l.address
                ),
            )
            .help("give each listener its own port, or bind them to distinct addresses");
            if let Some(s) = spans.get(j).copied().flatten() {
                p = p.related(s, "first bound here");
            }
            cx.report(p);
        }
    }
}
