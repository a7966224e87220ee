//! `proxy_set_header` → request header policy; `add_header` / `proxy_hide_header` →
//! response header policy. Headers the proxy already sets (Host, X-Forwarded-*, Forwarded)
//! and the WebSocket upgrade pair are recognised.

use crate::model::Route;
use crate::nginx::Cx;
use crate::nginx::scope::Scope;
use crate::rules;

/// What one `proxy_set_header NAME VALUE` becomes.
enum RequestHeader {
    /// Already done by the proxy: the caveat says how.
    Handled(&'static str),
    /// Part of the WebSocket upgrade: `websocket #true`.
    WebSocket,
    Set(String, String),
    Remove(String),
    Refused(String),
}

fn classify(name: &str, value: &str) -> RequestHeader {
    let lower = name.to_ascii_lowercase();
    match (lower.as_str(), value) {
        ("host", "$host" | "$http_host") => RequestHeader::Handled(
            "the proxy forwards the client's Host header unchanged",
        ),
        ("host", _) => RequestHeader::Refused(
            "the proxy manages Host: it forwards the client's, and policies cannot change it".to_owned(),
        ),
        ("x-forwarded-for", v) if v.contains("$proxy_add_x_forwarded_for") || v == "$remote_addr" => {
            RequestHeader::Handled(
                "the proxy sets X-Forwarded-For itself: it appends the peer address, keeping earlier hops only from `server { trusted-proxies }`",
            )
        }
        ("x-forwarded-proto", "$scheme") | ("x-forwarded-host", "$host" | "$http_host") | ("forwarded", _) => {
            RequestHeader::Handled("the proxy sets X-Forwarded-Proto, X-Forwarded-Host and Forwarded itself")
        }
        ("x-real-ip", _) => RequestHeader::Refused(
            "values cannot hold variables; the proxy sends the client address in X-Forwarded-For and Forwarded".to_owned(),
        ),
        ("upgrade", "$http_upgrade") => RequestHeader::WebSocket,
        ("connection", v) if v.eq_ignore_ascii_case("upgrade") || v == "$connection_upgrade" => {
            RequestHeader::WebSocket
        }
        ("connection", "" | "close" | "keep-alive") => RequestHeader::Handled(
            "the proxy manages Connection itself (connections to upstreams are kept alive)",
        ),
        (_, v) if v.contains('$') => RequestHeader::Refused(
            "the value uses nginx variables, which Zentinel cannot evaluate".to_owned(),
        ),
        (_, "") => match rules::editable_header(name) {
            Ok(n) => RequestHeader::Remove(n),
            Err(e) => RequestHeader::Refused(e),
        },
        (_, v) => match rules::editable_header(name).and_then(|n| rules::header_value(v).map(|()| n)) {
            Ok(n) => RequestHeader::Set(n, v.to_owned()),
            Err(e) => RequestHeader::Refused(e),
        },
    }
}

/// The request header policy of a route from the `proxy_set_header`s in scope.
pub(super) fn request(cx: &mut Cx<'_>, scope: &Scope<'_, '_>, r: &mut Route, line: usize) {
    for at in scope.array("proxy_set_header") {
        let n = at.node;
        let (Some(name), Some(value)) = (n.arg(0), n.arg(1)) else {
            cx.ledger
                .not_mapped(n.id, "expected a header name and a value");
            continue;
        };
        let applied = match classify(name, value) {
            RequestHeader::Handled(why) => {
                cx.ledger.caveat(n.id, why);
                continue;
            }
            RequestHeader::WebSocket => {
                r.websocket = true;
                cx.ledger.caveat(
                    n.id,
                    "WebSocket upgrade → `websocket #true`; the proxy manages Upgrade and Connection itself",
                );
                continue;
            }
            RequestHeader::Refused(why) => {
                cx.ledger.not_mapped(n.id, why);
                continue;
            }
            RequestHeader::Set(h, v) => r.request_headers.try_set(&h, &v),
            RequestHeader::Remove(h) => r.request_headers.try_remove(&h),
        };
        match applied {
            Ok(()) => cx.ledger.mapped(n.id),
            Err(why) => cx.ledger.caveat(
                n.id,
                format!("not applied in the location at line {line}: {why}"),
            ),
        }
    }
}

/// The response header policy of a route from `add_header` and `proxy_hide_header`.
pub(super) fn response(cx: &mut Cx<'_>, scope: &Scope<'_, '_>, r: &mut Route, line: usize) {
    for at in scope.array("proxy_hide_header") {
        let n = at.node;
        let Some(name) = n.arg(0) else {
            cx.ledger.not_mapped(n.id, "expected a header name");
            continue;
        };
        match rules::editable_header(name) {
            Ok(h) => match r.response_headers.try_remove(&h) {
                Ok(()) => cx.ledger.mapped(n.id),
                Err(why) => cx.ledger.caveat(
                    n.id,
                    format!("not applied in the location at line {line}: {why}"),
                ),
            },
            Err(why) => cx.ledger.not_mapped(n.id, why),
        }
    }
    for at in scope.array("add_header") {
        let n = at.node;
        let (Some(name), Some(value)) = (n.arg(0), n.arg(1)) else {
            cx.ledger
                .not_mapped(n.id, "expected a header name and a value");
            continue;
        };
        if value.contains('$') {
            cx.ledger.not_mapped(
                n.id,
                "the value uses nginx variables, which Zentinel cannot evaluate",
            );
            continue;
        }
        let checked =
            rules::editable_header(name).and_then(|h| rules::header_value(value).map(|()| h));
        let h = match checked {
            Ok(h) => h,
            Err(why) => {
                cx.ledger.not_mapped(n.id, why);
                continue;
            }
        };
        if value.is_empty() {
            cx.ledger.not_mapped(n.id, "an empty value adds nothing");
            continue;
        }
        match r.response_headers.try_add(&h, value) {
            Ok(()) if n.arg(2) == Some("always") => cx.ledger.mapped(n.id),
            Ok(()) => cx.ledger.caveat(
                n.id,
                "added to every response; nginx adds it only to 2xx and 3xx responses unless `always`",
            ),
            Err(why) => cx.ledger.caveat(n.id, format!("not applied in the location at line {line}: {why}")),
        }
    }
}
