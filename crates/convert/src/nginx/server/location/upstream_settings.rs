//! Location directives that Zentinel sets per upstream: `proxy_*_timeout` and the
//! `proxy_ssl_*` family. The first location that proxies to an upstream sets them; a later
//! one with other values gets a caveat.

use crate::model::Upstream;
use crate::nginx::scope::Scope;
use crate::nginx::upstream::{ProxyUrl, Upstreams};
use crate::nginx::{Cx, Node};
use crate::quantity;
use crate::rules;

/// Applies one setting, reporting conflicts with an earlier location.
#[expect(
    clippy::too_many_arguments,
    reason = "the setting, its source and how to write it"
)]
fn set(
    cx: &mut Cx<'_>,
    ups: &mut Upstreams,
    up: usize,
    n: &Node<'_>,
    key: &'static str,
    value: &str,
    write: impl FnOnce(&mut Upstream),
    caveat: Option<String>,
) {
    match ups.setting(up, key, value, n.d.line) {
        Ok(first) => {
            if first && let Some(u) = cx.draft.upstreams.get_mut(up) {
                write(u);
            }
            match caveat {
                Some(c) => cx.ledger.caveat(n.id, c),
                None => cx.ledger.mapped(n.id),
            }
        }
        Err(line) => cx.ledger.caveat(
            n.id,
            format!("not applied: Zentinel sets `{key}` once per upstream, and the location at line {line} set another value"),
        ),
    }
}

#[expect(clippy::too_many_arguments, reason = "one call per timeout kind")]
fn timeout(
    cx: &mut Cx<'_>,
    scope: &Scope<'_, '_>,
    ups: &mut Upstreams,
    up: usize,
    name: &str,
    key: &'static str,
    max: u64,
    write: fn(&mut Upstream, u64),
) {
    let Some(at) = scope.scalar(name) else { return };
    let Some(ms) = at.node.arg(0).and_then(quantity::nginx_time_ms) else {
        cx.ledger
            .not_mapped(at.node.id, "not a time nginx accepts (like 60s, 500ms)");
        return;
    };
    let (v, why) = rules::clamp(ms, 1, max, "the timeout");
    let caveat = match (why, name) {
        (Some(w), _) => Some(w),
        (None, "proxy_read_timeout") => None,
        (None, "proxy_send_timeout") => None,
        _ => None,
    };
    set(
        cx,
        ups,
        up,
        at.node,
        key,
        &v.to_string(),
        |u| write(u, v),
        caveat,
    );
}

pub(crate) fn apply(
    cx: &mut Cx<'_>,
    scope: &Scope<'_, '_>,
    ups: &mut Upstreams,
    up: usize,
    url: &ProxyUrl,
    pp: &Node<'_>,
) {
    timeout(
        cx,
        scope,
        ups,
        up,
        "proxy_connect_timeout",
        "connect-ms",
        600_000,
        |u, v| u.connect_ms = Some(v),
    );
    timeout(
        cx,
        scope,
        ups,
        up,
        "proxy_read_timeout",
        "read-ms",
        3_600_000,
        |u, v| u.read_ms = Some(v),
    );
    timeout(
        cx,
        scope,
        ups,
        up,
        "proxy_send_timeout",
        "write-ms",
        3_600_000,
        |u, v| u.write_ms = Some(v),
    );
    if let Some(at) = scope.scalar("proxy_http_version") {
        match at.node.arg(0) {
            Some("1.1") => cx.ledger.caveat(
                at.node.id,
                "Zentinel speaks HTTP/1.1 with keep-alive to clear-text upstreams by default",
            ),
            _ => cx
                .ledger
                .not_mapped(at.node.id, "only HTTP/1.1 upstreams are supported"),
        }
    }
    if url.tls {
        tls(cx, scope, ups, up, pp);
    } else {
        for name in [
            "proxy_ssl_verify",
            "proxy_ssl_trusted_certificate",
            "proxy_ssl_name",
            "proxy_ssl_server_name",
            "proxy_ssl_certificate",
            "proxy_ssl_certificate_key",
            "proxy_ssl_protocols",
        ] {
            if let Some(at) = scope.scalar(name) {
                cx.ledger.fallback(at.node.id, "the upstream is not https");
            }
        }
    }
}

#[expect(clippy::too_many_lines, reason = "one block per proxy_ssl_* directive")]
fn tls(cx: &mut Cx<'_>, scope: &Scope<'_, '_>, ups: &mut Upstreams, up: usize, pp: &Node<'_>) {
    match scope.scalar("proxy_ssl_verify").and_then(|a| a.node.arg(0).map(|v| (a.node, v))) {
        Some((n, "on")) => set(cx, ups, up, n, "verify", "on", |_| {}, None),
        Some((n, _)) => set(
            cx,
            ups,
            up,
            n,
            "verify",
            "off",
            |u| {
                if let Some(t) = &mut u.tls {
                    t.verify = false;
                }
            },
            Some("`verify #false`, as in nginx; Zentinel documents it as for tests only".to_owned()),
        ),
        None => match ups.setting(up, "verify", "on", pp.d.line) {
            Ok(_) => cx.ledger.caveat(
                pp.id,
                "Zentinel verifies the upstream's certificate (nginx does not unless `proxy_ssl_verify on`)",
            ),
            Err(line) => cx.ledger.caveat(
                pp.id,
                format!("the TLS settings of the location at line {line} apply: Zentinel sets them per upstream"),
            ),
        },
    }
    if let Some(at) = scope.scalar("proxy_ssl_trusted_certificate")
        && let Some(path) = at.node.arg(0)
    {
        let p = path.to_owned();
        set(
            cx,
            ups,
            up,
            at.node,
            "ca-file",
            path,
            |u| {
                if let Some(t) = &mut u.tls {
                    t.ca_file = Some(p);
                }
            },
            None,
        );
    }
    if let Some(at) = scope.scalar("proxy_ssl_name")
        && let Some(name) = at.node.arg(0)
    {
        if name.contains('$') {
            cx.ledger
                .not_mapped(at.node.id, "the value uses nginx variables");
        } else {
            let n = name.to_owned();
            set(
                cx,
                ups,
                up,
                at.node,
                "sni",
                name,
                |u| {
                    if let Some(t) = &mut u.tls {
                        t.sni = Some(n);
                    }
                },
                None,
            );
        }
    }
    if let Some(at) = scope.scalar("proxy_ssl_server_name") {
        match at.node.arg(0) {
            Some("on") => cx.ledger.mapped(at.node.id),
            _ => cx
                .ledger
                .caveat(at.node.id, "Zentinel always sends SNI to TLS upstreams"),
        }
    }
    if let Some(at) = scope.scalar("proxy_ssl_protocols") {
        cx.ledger.not_mapped(
            at.node.id,
            "TLS versions to upstreams are rustls' defaults (1.2 and 1.3)",
        );
    }
    let cert = scope.scalar("proxy_ssl_certificate");
    let key = scope.scalar("proxy_ssl_certificate_key");
    if let (Some(c), Some(k)) = (cert, key)
        && let (Some(cp), Some(kp)) = (c.node.arg(0), k.node.arg(0))
    {
        let (cp2, kp2) = (cp.to_owned(), kp.to_owned());
        set(
            cx,
            ups,
            up,
            c.node,
            "cert-file",
            cp,
            |u| {
                if let Some(t) = &mut u.tls {
                    t.cert_file = Some(cp2);
                    t.key_file = Some(kp2);
                }
            },
            None,
        );
        cx.ledger.mapped(k.node.id);
    }
}
