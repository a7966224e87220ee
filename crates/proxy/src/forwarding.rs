//! What the proxy says about the client to the upstream: the trusted client address,
//! `X-Forwarded-*` and `Forwarded`, the request ID, and the route's header policies; and
//! the hop-by-hop fields it removes in both directions (RFC 9110 §7.6.1).
//!
//! Client-supplied forwarding headers are believed only from configured trusted proxies;
//! from anyone else they are replaced, never passed on. A `Connection` option never removes
//! a field the proxy routes or frames by or writes itself.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use ipnet_like::contains;
use zentinel_config::model::{HeaderPolicy, Server};

/// Header editing over Pingora's case-preserving headers (and plain maps, in tests).
pub(crate) trait HeaderEdit {
    /// The headers.
    fn map(&self) -> &HeaderMap;
    /// Removes every value of `name`.
    fn remove(&mut self, name: &str);
    /// Replaces every value of `name` with `value`.
    fn insert(&mut self, name: &str, value: HeaderValue);
    /// Adds a value of `name`.
    fn append(&mut self, name: &str, value: HeaderValue);
    /// [`Self::insert`] for a name known at compile time, which needs no copy of it.
    fn insert_static(&mut self, name: &'static str, value: HeaderValue) {
        self.insert(name, value);
    }
}

impl HeaderEdit for HeaderMap {
    fn map(&self) -> &HeaderMap {
        self
    }
    fn remove(&mut self, name: &str) {
        HeaderMap::remove(self, name);
    }
    fn insert(&mut self, name: &str, value: HeaderValue) {
        if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
            HeaderMap::insert(self, n, value);
        }
    }
    fn append(&mut self, name: &str, value: HeaderValue) {
        if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
            HeaderMap::append(self, n, value);
        }
    }
}

macro_rules! pingora_header_edit {
    ($t:ty) => {
        impl HeaderEdit for $t {
            fn map(&self) -> &HeaderMap {
                &self.headers
            }
            fn remove(&mut self, name: &str) {
                self.remove_header(name);
            }
            fn insert(&mut self, name: &str, value: HeaderValue) {
                // Names come from the validated configuration or are constants.
                let _ = self.insert_header(name.to_owned(), value);
            }
            fn append(&mut self, name: &str, value: HeaderValue) {
                let _ = self.append_header(name.to_owned(), value);
            }
            fn insert_static(&mut self, name: &'static str, value: HeaderValue) {
                let _ = self.insert_header(name, value);
            }
        }
    };
}

pingora_header_edit!(pingora::http::RequestHeader);
pingora_header_edit!(pingora::http::ResponseHeader);

/// Forwarding facts of one request, computed once in `request_filter`.
#[derive(Debug, Clone)]
pub(crate) struct Forwarding {
    /// The client as the proxy believes it: the socket peer, or, behind trusted proxies, the
    /// first untrusted address in `X-Forwarded-For` (right to left).
    pub client_ip: Option<IpAddr>,
    /// The socket peer.
    pub peer_ip: Option<IpAddr>,
    /// Whether the peer is a trusted proxy.
    pub trusted_peer: bool,
}

mod ipnet_like {
    use std::net::IpAddr;

    use ipnet::IpNet;

    pub(super) fn contains(nets: &[IpNet], ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        nets.iter().any(|n| n.contains(&ip))
    }
}

impl Forwarding {
    /// Works out the client from the peer address and, if the peer is trusted, the
    /// `X-Forwarded-For` chain.
    pub(crate) fn new(server: &Server, peer: Option<IpAddr>, headers: &HeaderMap) -> Self {
        let trusted = |ip: IpAddr| contains(&server.trusted_proxies, ip);
        let trusted_peer = peer.is_some_and(trusted);
        let mut client_ip = peer;
        if trusted_peer {
            let chain = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .collect::<Vec<_>>();
            // Walk from the nearest hop outwards; the first address we do not trust is the client.
            if let Some(first_untrusted) = chain.iter().rev().find(|ip| !trusted(**ip)) {
                client_ip = Some(*first_untrusted);
            } else if let Some(farthest) = chain.first() {
                client_ip = Some(*farthest);
            }
        }
        Self {
            client_ip,
            peer_ip: peer,
            trusted_peer,
        }
    }

    /// Writes `X-Forwarded-For/-Proto/-Host` and `Forwarded` on the upstream request.
    pub(crate) fn apply(
        &self,
        headers: &mut impl HeaderEdit,
        proto: &'static str,
        host: Option<&str>,
    ) {
        use std::fmt::Write as _;
        let keep = self.trusted_peer;
        // A trusted peer's list is kept and the peer added to it; anyone else's is replaced.
        let prev = |name| keep.then(|| header_str(headers.map(), name)).flatten();
        let xff = self.peer_ip.map(|p| {
            let mut v = prev("x-forwarded-for").map_or_else(String::new, |l| l + ", ");
            let _ = write!(v, "{p}");
            v
        });
        set_or_remove(headers, "x-forwarded-for", xff.and_then(value));
        if !(keep && headers.map().contains_key("x-forwarded-proto")) {
            set_or_remove(
                headers,
                "x-forwarded-proto",
                Some(HeaderValue::from_static(proto)),
            );
        }
        if !(keep && headers.map().contains_key("x-forwarded-host")) {
            let h = host.and_then(|h| HeaderValue::from_str(h).ok());
            set_or_remove(headers, "x-forwarded-host", h);
        }
        let mut forwarded = keep
            .then(|| header_str(headers.map(), "forwarded"))
            .flatten()
            .map_or_else(|| String::with_capacity(64), |l| l + ", ");
        let _ = match self.peer_ip {
            Some(IpAddr::V4(v4)) => write!(forwarded, "for={v4}"),
            Some(IpAddr::V6(v6)) => write!(forwarded, "for=\"[{v6}]\""),
            None => Ok(()),
        };
        let _ = write!(forwarded, ";proto={proto}");
        if let Some(h) = host.filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            let _ = write!(forwarded, ";host=\"{h}\"");
        }
        set_or_remove(headers, "forwarded", value(forwarded));
    }
}

/// The first value of `name` as text, copied (the map is edited next).
fn header_str(map: &HeaderMap, name: &str) -> Option<String> {
    map.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A header value made of `s` without copying it, if it is a valid one.
fn value(s: String) -> Option<HeaderValue> {
    HeaderValue::try_from(s).ok()
}

/// Sets `name` to `value` (replacing every value it had), or removes it.
fn set_or_remove(headers: &mut impl HeaderEdit, name: &'static str, value: Option<HeaderValue>) {
    match value {
        Some(v) => headers.insert_static(name, v),
        None => remove_present(headers, |n| n == name),
    }
}

/// Removes every field whose (lower-case) name `doomed` accepts. One pass over the names the
/// message has — usually a handful — instead of a lookup per candidate name, each of which
/// would parse and hash that name; allocates only when there is something to remove.
pub(crate) fn remove_present(headers: &mut impl HeaderEdit, doomed: impl Fn(&str) -> bool) {
    let names: Vec<HeaderName> = headers
        .map()
        .keys()
        .filter(|n| doomed(n.as_str()))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name.as_str());
    }
}

/// Fields a `Connection` option cannot remove: what the request was routed and framed by,
/// what carries the upgrade, and what the proxy writes itself (the request ID header, which
/// is configurable, is passed separately). Lower case.
const NOT_NOMINATABLE: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "traceparent",
];

/// Hop-by-hop request fields (RFC 9110 §7.6.1), removed whether or not `Connection` names
/// them. `TE` goes whatever its value: upstreams speak HTTP/1.1 only, where it is a
/// property of this hop (an HTTP/2 upstream would need `te: trailers` for gRPC). Pingora removes them too; this keeps the rule when it does not. `Proxy-Authorization`
/// holds credentials for a proxy that asked for them, which this one never does (§11.7.2):
/// they must not reach the origin. `Connection` and `Upgrade` are left to Pingora, which
/// writes them again for a WebSocket handshake.
const REQUEST_HOP_BY_HOP: &[&str] = &[
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "proxy-authorization",
    "http2-settings",
];

/// Hop-by-hop response fields. `Connection` is written by the proxy for its own connection
/// with the client; `Upgrade` belongs to the connection unless the answer is the 101 that
/// switches it. `Proxy-Authenticate` answers a `Proxy-Authorization` that never reaches
/// the upstream.
const RESPONSE_HOP_BY_HOP: &[&str] = &[
    "keep-alive",
    "proxy-connection",
    "te",
    "proxy-authenticate",
    "http2-settings",
];

/// Removes from `req` (the request about to go upstream) the standard hop-by-hop fields and
/// every field `original` (the client's request) names in `Connection`, except those in
/// [`NOT_NOMINATABLE`] and `request_id` (the proxy writes it afterwards either way).
pub(crate) fn strip_request_hop_by_hop(
    original: &HeaderMap,
    req: &mut impl HeaderEdit,
    request_id: &str,
) {
    remove_present(req, |n| REQUEST_HOP_BY_HOP.contains(&n));
    for name in nominated(original, request_id) {
        req.remove(name.as_str());
    }
}

/// Removes from an upstream response the standard hop-by-hop fields and the fields its own
/// `Connection` names; `switching` when it is the 101 of an upgrade, whose `Connection` and
/// `Upgrade` the client needs.
pub(crate) fn strip_response_hop_by_hop(resp: &mut impl HeaderEdit, switching: bool) {
    // The proxy writes the request ID after this, so it is not protected here.
    for name in nominated(resp.map(), "") {
        resp.remove(name.as_str());
    }
    remove_present(resp, |n| {
        RESPONSE_HOP_BY_HOP.contains(&n) || (!switching && (n == "connection" || n == "upgrade"))
    });
}

/// The fields `headers`' `Connection` names, less the protected ones and `also_kept`
/// (lower case). Allocates only when there are some.
fn nominated(headers: &HeaderMap, also_kept: &str) -> Vec<HeaderName> {
    crate::strict::connection_options(headers)
        .filter_map(|o| HeaderName::from_bytes(o).ok())
        .filter(|n| !NOT_NOMINATABLE.contains(&n.as_str()) && n.as_str() != also_kept)
        .collect()
}

/// Applies a route's header policy, in the documented order: rename, remove, set, add.
/// Names and values were validated when the configuration was loaded.
pub(crate) fn apply_policy(policy: &HeaderPolicy, headers: &mut impl HeaderEdit) {
    for (from, to) in &policy.rename {
        let values: Vec<HeaderValue> = headers
            .map()
            .get_all(from.as_str())
            .iter()
            .cloned()
            .collect();
        if values.is_empty() {
            continue;
        }
        headers.remove(from);
        for v in values {
            headers.append(to, v);
        }
    }
    for name in &policy.remove {
        headers.remove(name);
    }
    for (name, value) in &policy.set {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    }
    for (name, value) in &policy.add {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.append(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(trusted: &[&str]) -> Server {
        let text = format!(
            "server {{ trusted-proxies {} }}\nlisteners {{ listener \"w\" {{ address \"127.0.0.1:1\"; }} }}\nupstreams {{ upstream \"u\" {{ target \"127.0.0.1:2\"; }} }}\nroutes {{ route \"r\" {{ upstream \"u\"; }} }}",
            trusted
                .iter()
                .map(|t| format!("\"{t}\""))
                .collect::<Vec<_>>()
                .join(" ")
        );
        zentinel_config::load_str("t.kdl", &text)
            .map(|c| c.server)
            .unwrap_or_else(|d| panic!("{d}"))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn untrusted_peers_cannot_forge_forwarding_headers() {
        let s = server(&["10.0.0.0/8"]);
        let mut h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        let f = Forwarding::new(&s, Some("203.0.113.9".parse().unwrap()), &h);
        assert_eq!(f.client_ip, Some("203.0.113.9".parse().unwrap()));
        f.apply(&mut h, "http", Some("example.com"));
        assert_eq!(h["x-forwarded-for"], "203.0.113.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "example.com");
        assert_eq!(
            h["forwarded"],
            "for=203.0.113.9;proto=http;host=\"example.com\""
        );
    }

    #[test]
    fn trusted_proxies_extend_the_chain_and_name_the_client() {
        let s = server(&["10.0.0.0/8"]);
        let mut h = headers(&[
            ("x-forwarded-for", "198.51.100.7, 10.1.1.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let f = Forwarding::new(&s, Some("10.0.0.2".parse().unwrap()), &h);
        assert_eq!(f.client_ip, Some("198.51.100.7".parse().unwrap()));
        f.apply(&mut h, "http", Some("example.com"));
        assert_eq!(h["x-forwarded-for"], "198.51.100.7, 10.1.1.1, 10.0.0.2");
        assert_eq!(
            h["x-forwarded-proto"], "https",
            "kept from the trusted proxy"
        );
    }

    #[test]
    fn forwarded_elements_chain_from_trusted_peers_and_quote_ipv6() {
        let s = server(&["10.0.0.0/8"]);
        let mut h = headers(&[("forwarded", "for=198.51.100.7")]);
        let f = Forwarding::new(&s, Some("10.0.0.2".parse().unwrap()), &h);
        f.apply(&mut h, "http", Some("example.com"));
        assert_eq!(
            h["forwarded"],
            "for=198.51.100.7, for=10.0.0.2;proto=http;host=\"example.com\""
        );
        let mut h = headers(&[("x-forwarded-host", "forged")]);
        let f = Forwarding::new(&s, Some("2001:db8::1".parse().unwrap()), &h);
        f.apply(&mut h, "https", Some("bad\"host"));
        assert_eq!(
            h["forwarded"], "for=\"[2001:db8::1]\";proto=https",
            "no unsafe host"
        );
        assert_eq!(h["x-forwarded-for"], "2001:db8::1");
        assert_eq!(h["x-forwarded-host"], "bad\"host");
        let mut h = headers(&[("x-forwarded-host", "forged")]);
        f.apply(&mut h, "https", None);
        assert!(
            h.get("x-forwarded-host").is_none(),
            "no host: removed, not kept"
        );
    }

    #[test]
    fn connection_nominated_and_hop_by_hop_request_fields_are_removed() {
        let original = headers(&[
            ("connection", "close, X-Secret"),
            (
                "connection",
                "x-forwarded-for, Forwarded, traceparent, x-request-id",
            ),
            (
                "connection",
                "host, content-length, upgrade, x-forwarded-host",
            ),
        ]);
        let mut h = headers(&[
            ("host", "a.example"),
            ("content-length", "5"),
            ("x-secret", "1"),
            ("x-kept", "2"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-t"),
            ("proxy-authorization", "Basic dTpw"),
            ("http2-settings", "AAMAAABk"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-host", "b.example"),
            ("forwarded", "for=10.0.0.1"),
            ("traceparent", "00-1-2-01"),
            ("x-request-id", "abc"),
            ("upgrade", "websocket"),
        ]);
        strip_request_hop_by_hop(&original, &mut h, "x-request-id");
        let mut left: Vec<_> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(
            left,
            [
                "content-length",
                "forwarded",
                "host",
                "traceparent",
                "upgrade",
                "x-forwarded-for",
                "x-forwarded-host",
                "x-kept",
                "x-request-id",
            ]
        );
        // A request ID header of another name is not protected under `x-request-id`.
        let mut h = headers(&[("x-request-id", "abc"), ("x-trace", "1")]);
        let original = headers(&[("connection", "x-request-id, x-trace")]);
        strip_request_hop_by_hop(&original, &mut h, "x-trace");
        assert_eq!(
            h.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["x-trace"]
        );
    }

    #[test]
    fn hop_by_hop_response_fields_are_removed_except_on_a_101() {
        let upstream = [
            ("connection", "x-internal, Upgrade"),
            ("x-internal", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authenticate", "Basic"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("content-length", "3"),
            ("x-public", "yes"),
        ];
        let mut h = headers(&upstream);
        strip_response_hop_by_hop(&mut h, false);
        let mut left: Vec<_> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-length", "x-public"]);
        let mut h = headers(&upstream);
        strip_response_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "x-internal, Upgrade");
        assert_eq!(h["upgrade"], "h2c");
        assert!(h.get("x-internal").is_none());
    }

    #[test]
    fn policy_order_is_rename_remove_set_add() {
        let text = r#"listeners { listener "w" { address "127.0.0.1:1"; } }
upstreams { upstream "u" { target "127.0.0.1:2"; } }
routes { route "r" { upstream "u"; request-headers { rename "x-a" "x-b"; remove "x-c"; set "x-d" "new"; add "x-e" "2"; } } }"#;
        let c = zentinel_config::load_str("t.kdl", text).unwrap_or_else(|d| panic!("{d}"));
        let mut h = headers(&[
            ("x-a", "1"),
            ("x-c", "gone"),
            ("x-d", "old"),
            ("x-d", "older"),
            ("x-e", "1"),
        ]);
        apply_policy(&c.routes[0].request_headers, &mut h);
        assert!(h.get("x-a").is_none());
        assert_eq!(h["x-b"], "1");
        assert!(h.get("x-c").is_none());
        assert_eq!(h.get_all("x-d").iter().collect::<Vec<_>>(), ["new"]);
        assert_eq!(h.get_all("x-e").iter().collect::<Vec<_>>(), ["1", "2"]);
    }
}
