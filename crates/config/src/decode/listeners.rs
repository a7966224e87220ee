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
    let body_read_timeout = r.ms("body-read-timeout-ms");
    let min_body_rate = r.int("min-body-rate-bytes-per-sec");
    let body_rate_grace = r.ms("body-rate-grace-ms");
    let send_timeout = r.ms("send-timeout-ms");
    let path_parameters = r.enumeration("path-parameters");
    if min_body_rate == Some(0) {
        r.no_effect(
            "body-rate-grace-ms",
            "`min-body-rate-bytes-per-sec 0` turns the rate check off",
        );
    }
    let context = format!("listener \"{}\"", id.value);

    let tls = protocol.and_then(|p| tls_for_protocol(r, &context, p, tls));
    let restricted = route_list.and_then(|list| restriction(r, routes, &context, id, &list));
    let default_route = match (default_route, &restricted) {
        (Some(d), Some(list)) => fallback(r, routes, &context, id, d, list.as_deref()),
        (None, _) => Some(None),
        (Some(_), None) => None,
    };
    Some(Listener {
        id: ListenerId::new(id.value.clone()),
        address: address?,
        protocol: protocol?,
        tls: tls?,
        routes: restricted?,
        default_route: default_route?,
        header_read_timeout: header_read_timeout?,
        idle_timeout: idle_timeout?,
        body_read_timeout: body_read_timeout?,
        min_body_rate: u64::try_from(min_body_rate?).ok()?,
        body_rate_grace: body_rate_grace?,
        send_timeout: send_timeout?,
        path_parameters: path_parameters?,
    })
}

/// TLS settings exactly when the protocol is `https`; `None` after reporting a mismatch.
fn tls_for_protocol(
    r: &Reader<'_>,
    context: &str,
    protocol: ListenerProtocol,
    tls: Option<Option<ListenerTls>>,
) -> Option<Option<ListenerTls>> {
    match (protocol, tls) {
        (ListenerProtocol::Https, None) => {
            r.cx().report(
                Problem::new(
                    Code::MissingKey,
                    r.written("protocol"),
                    format!("{context} speaks https but has no `tls` block"),
                )
                .help(r#"add tls { cert-file "certs/site.crt"; key-file "certs/site.key"; }"#),
            );
            None
        }
        (p @ (ListenerProtocol::Http | ListenerProtocol::H2c), Some(_)) => {
            r.cx().report(
                Problem::new(
                    Code::Conflict,
                    r.written("tls"),
                    format!("{context} has a `tls` block but speaks {p}, so it would be ignored"),
                )
                .help(r#"set `protocol "https"`, or remove the `tls` block"#),
            );
            None
        }
        (ListenerProtocol::Https, Some(t)) => t.map(Some),
        (_, None) => Some(None),
    }
}

/// The listener's `routes` restriction: `Some(None)` when not written.
fn restriction(
    r: &Reader<'_>,
    routes: &Ids,
    context: &str,
    id: &Spanned<String>,
    list: &[Spanned<String>],
) -> Option<Option<Vec<RouteId>>> {
    if r.written("routes").is_none() {
        return Some(None);
    }
    let cx = r.cx();
    let mut seen: Vec<String> = Vec::new();
    let mut ok = true;
    for item in list {
        ok &= routes.resolve(cx, "route", item, context, id.span);
        if seen.contains(&item.value) {
            let msg = format!("route \"{}\" is listed twice", item.value);
            invalid(cx, item.span, msg, None);
            ok = false;
        }
        seen.push(item.value.clone());
    }
    ok.then(|| Some(seen.into_iter().map(RouteId::new).collect()))
}

/// The `default-route`, which must exist and be one of the listener's routes.
fn fallback(
    r: &Reader<'_>,
    routes: &Ids,
    context: &str,
    id: &Spanned<String>,
    d: Spanned<String>,
    restricted: Option<&[RouteId]>,
) -> Option<Option<RouteId>> {
    let what = format!("{context} `default-route`");
    if !routes.resolve(r.cx(), "route", &d, &what, id.span) {
        return None;
    }
    if let Some(list) = restricted
        && !list.iter().any(|x| x.as_str() == d.value)
    {
        let msg = format!(
            "default route \"{}\" is not one of this listener's `routes`",
            d.value
        );
        invalid(
            r.cx(),
            d.span,
            msg,
            Some("add it to `routes`, or pick one of them".to_owned()),
        );
        return None;
    }
    Some(Some(RouteId::new(d.value)))
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
