//! Strict request heads: what Pingora's HTTP/1 parser lets through but a proxy must refuse,
//! because the upstream (or anything between) could frame or route the request differently.
//!
//! Pingora already refuses malformed lines, control bytes, unknown versions, bad or
//! conflicting `Content-Length` values, a final coding other than `chunked`, `Transfer-Encoding`
//! on HTTP/1.0, two `Host`s, userinfo and a `Host` that differs from an absolute-form target.
//! This module refuses the rest (`docs/security.md` lists both, with the RFC sections), and
//! the methods no route may forward. Pure functions over the parsed head and its raw bytes;
//! they never panic on client input.

use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, UPGRADE};
use std::borrow::Cow;

use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Uri, Version};
use pingora::http::RequestHeader;
use zentinel_config::path::PathError;

use crate::errors::{Malformed, RefusedMethod};

/// At most this many `Connection` options: each one costs a header removal.
pub(crate) const MAX_CONNECTION_OPTIONS: usize = 16;

/// Checks a request head. `raw` is the head as received (request line through the empty
/// line) for HTTP/1 requests; `None` for HTTP/2, which has no such bytes.
pub(crate) fn check(req: &RequestHeader, raw: Option<&[u8]>) -> Option<Malformed> {
    if raw.is_some_and(has_bare_line_feed) {
        return Some(Malformed::BareLineFeed);
    }
    framing(&req.headers, raw)
        .err()
        .or_else(|| host(req).err())
        .or_else(|| connection(&req.headers).err())
}

/// Rewrites the request target to the normalised path (`zentinel_config::path`) and its
/// query, in origin form, whenever what would be forwarded differs from it: a path that
/// normalises differently, an absolute-form target, or bytes Pingora kept verbatim. After it,
/// the path routes are matched on is byte for byte the path the upstream receives.
/// `refuse_parameters`: the listener's `path-parameters "refuse"`.
pub(crate) fn normalize_target(
    req: &mut RequestHeader,
    refuse_parameters: bool,
) -> Result<(), PathError> {
    if !req.raw_path_is_utf8() || !req.raw_path().is_ascii() {
        // The parsed URI holds a lossy rendering: refuse rather than forward a guess.
        return Err(PathError::NonAscii);
    }
    // Origin form, asterisk form, or absolute form (`http://` or `https://`, any case);
    // anything else (`GET foo`) Pingora would root at `/`, a path the client never sent.
    let target = req.raw_path();
    let absolute = |scheme: &[u8]| {
        target
            .get(..scheme.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(scheme))
    };
    if !matches!(target.first(), Some(b'/' | b'*'))
        && !absolute(b"http://")
        && !absolute(b"https://")
    {
        return Err(PathError::NotAbsolute);
    }
    let raw = req.uri.path();
    let raw = if raw.is_empty() { "/" } else { raw };
    let path = zentinel_config::path::normalize_on(raw, refuse_parameters)?;
    let target_len = path.len() + req.uri.query().map_or(0, |q| q.len() + 1);
    let same = matches!(path, Cow::Borrowed(_))
        && req.raw_path_is_utf8()
        && req.raw_path().len() == target_len
        && req.raw_path().starts_with(path.as_bytes());
    if same {
        return Ok(());
    }
    let mut target = String::with_capacity(target_len);
    target.push_str(&path);
    if let Some(q) = req.uri.query() {
        target.push('?');
        target.push_str(q);
    }
    let mut parts = req.uri.clone().into_parts();
    parts.path_and_query =
        Some(PathAndQuery::try_from(target).map_err(|_| PathError::NotAbsolute)?);
    let uri = Uri::from_parts(parts).map_err(|_| PathError::NotAbsolute)?;
    req.set_uri(uri);
    Ok(())
}

/// The methods refused whatever the route: `CONNECT` (the proxy does not tunnel) and `TRACE`
/// (it would reflect the request, with what the proxy adds, back to the client).
pub(crate) fn refused_method(req: &RequestHeader) -> Option<RefusedMethod> {
    match req.method {
        Method::CONNECT => Some(RefusedMethod::Connect),
        Method::TRACE => Some(RefusedMethod::Trace),
        _ => None,
    }
}

/// Whether an HTTP/1 request asks to switch to WebSocket: some `Upgrade` element names it
/// (any version suffix, any case). Other upgrades (`h2c`, ...) are not followed: Pingora
/// drops their `Upgrade`, `Connection` and `HTTP2-Settings` fields and the request is
/// served as it is (RFC 9110 §7.8 lets a server ignore `Upgrade`).
pub(crate) fn asks_websocket(req: &RequestHeader) -> bool {
    req.headers
        .get_all(UPGRADE)
        .iter()
        .any(|v| zentinel_config::explain::names_websocket(v.as_bytes()))
}

/// Each `Connection` option is a token (RFC 9110 §7.6.1, §5.6.2), at most
/// [`MAX_CONNECTION_OPTIONS`] of them. A quoted or otherwise decorated option would name a
/// field no one can find, so the field it meant would be forwarded after all.
fn connection(headers: &HeaderMap) -> Result<(), Malformed> {
    let mut count = 0;
    for option in connection_options(headers) {
        count += 1;
        if count > MAX_CONNECTION_OPTIONS || !option.iter().all(|&b| is_tchar(b)) {
            return Err(Malformed::ConnectionOption);
        }
    }
    Ok(())
}

/// The non-empty elements of every `Connection` line, trimmed (RFC 9110 §5.6.1: empty list
/// elements are ignored).
pub(crate) fn connection_options(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|o| !o.is_empty())
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// At most one `Content-Length` value; `Transfer-Encoding` only alone and only `chunked`.
fn framing(headers: &HeaderMap, raw: Option<&[u8]>) -> Result<(), Malformed> {
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    let (first, second) = (lengths.next(), lengths.next());
    if second.is_some() || first.is_some_and(|v| v.as_bytes().contains(&b',')) {
        return Err(Malformed::ContentLength);
    }
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter();
    let Some(coding) = codings.next() else {
        return Ok(());
    };
    // Pingora drops Content-Length from the parsed head when Transfer-Encoding is present,
    // so the raw head is where both can be seen.
    if first.is_some() || raw.is_some_and(|r| has_field(r, b"content-length")) {
        return Err(Malformed::LengthAndEncoding);
    }
    if codings.next().is_some()
        || !coding
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"chunked")
    {
        return Err(Malformed::TransferEncoding);
    }
    Ok(())
}

/// HTTP/1.1 needs a `Host`; any `Host` must be `host[:port]`.
fn host(req: &RequestHeader) -> Result<(), Malformed> {
    match req.headers.get(HOST) {
        Some(v) if valid_host(v.as_bytes()) => Ok(()),
        Some(_) => Err(Malformed::InvalidHost),
        None if req.version == Version::HTTP_11 => Err(Malformed::MissingHost),
        None => Ok(()),
    }
}

/// Whether an LF in `raw` is not preceded by CR: a line ending the upstream might not see.
fn has_bare_line_feed(raw: &[u8]) -> bool {
    raw.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || raw.get(i - 1) != Some(&b'\r')))
}

/// Whether a header line of `raw` (a CRLF-delimited head) has field `name` (lower case).
fn has_field(raw: &[u8], name: &[u8]) -> bool {
    raw.split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| line.iter().position(|&b| b == b':').map(|i| &line[..i]))
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// `uri-host [ ":" port ]` (RFC 9110 §7.2), narrowed: a reg-name of letters, digits and
/// `-._~` (no percent-encoding, no sub-delims, so never a list), an IPv4 address, or a
/// bracketed IPv6 address; a port of 1 to 5 digits up to 65535.
fn valid_host(v: &[u8]) -> bool {
    let (name, port) = if let Some(rest) = v.strip_prefix(b"[") {
        let Some(end) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = std::str::from_utf8(&rest[..end]).ok();
        if literal
            .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
            .is_none()
        {
            return false;
        }
        (None, &rest[end + 1..])
    } else {
        let end = v.iter().position(|&b| b == b':').unwrap_or(v.len());
        (Some(&v[..end]), &v[end..])
    };
    let name_ok = name.is_none_or(|n| {
        !n.is_empty()
            && n.iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    });
    let port_ok = match port.strip_prefix(b":") {
        None => port.is_empty(),
        Some(p) => {
            (1..=5).contains(&p.len())
                && p.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(p)
                    .ok()
                    .and_then(|s| s.parse::<u16>().ok())
                    .is_some()
        }
    };
    name_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, headers: &[(&str, &[u8])]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/", None).unwrap();
        r.set_version(version);
        for (n, v) in headers {
            r.append_header(n.to_string(), http::HeaderValue::from_bytes(v).unwrap())
                .unwrap();
        }
        r
    }

    fn h11(headers: &[(&str, &[u8])]) -> RequestHeader {
        let mut all = vec![("host", &b"a.example"[..])];
        all.extend_from_slice(headers);
        req(Version::HTTP_11, &all)
    }

    #[test]
    fn content_length_once_and_alone() {
        assert_eq!(check(&h11(&[("content-length", b"5")]), None), None);
        let twice = h11(&[("content-length", b"5"), ("content-length", b"5")]);
        assert_eq!(check(&twice, None), Some(Malformed::ContentLength));
        let list = h11(&[("content-length", b"5, 5")]);
        assert_eq!(check(&list, None), Some(Malformed::ContentLength));
        let both = h11(&[("content-length", b"5"), ("transfer-encoding", b"chunked")]);
        assert_eq!(check(&both, None), Some(Malformed::LengthAndEncoding));
    }

    #[test]
    fn content_length_removed_by_the_parser_is_found_in_the_raw_head() {
        let parsed = h11(&[("transfer-encoding", b"chunked")]);
        let raw = b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            check(&parsed, Some(raw)),
            Some(Malformed::LengthAndEncoding)
        );
        let raw = b"POST / HTTP/1.1\r\nHost: a.example\r\nX-Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(check(&parsed, Some(raw)), None);
    }

    #[test]
    fn transfer_encoding_is_one_chunked() {
        for ok in [&b"chunked"[..], b"Chunked", b"CHUNKED"] {
            assert_eq!(check(&h11(&[("transfer-encoding", ok)]), None), None);
        }
        for bad in [
            &b"gzip, chunked"[..],
            b"chunked, chunked",
            b"identity",
            b"",
            b"chunked;q=1",
        ] {
            let r = h11(&[("transfer-encoding", bad)]);
            assert_eq!(
                check(&r, None),
                Some(Malformed::TransferEncoding),
                "{bad:?}"
            );
        }
        let two = h11(&[
            ("transfer-encoding", b"gzip"),
            ("transfer-encoding", b"chunked"),
        ]);
        assert_eq!(check(&two, None), Some(Malformed::TransferEncoding));
    }

    #[test]
    fn bare_line_feeds_anywhere_in_the_head() {
        let r = h11(&[]);
        assert_eq!(check(&r, Some(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")), None);
        for raw in [
            &b"GET / HTTP/1.1\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
            b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: 1\nY: 2\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(
                check(&r, Some(raw)),
                Some(Malformed::BareLineFeed),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn host_required_on_http_1_1_only() {
        assert_eq!(
            check(&req(Version::HTTP_11, &[]), None),
            Some(Malformed::MissingHost)
        );
        assert_eq!(check(&req(Version::HTTP_10, &[]), None), None);
        // HTTP/2 carries the authority in `:authority`.
        assert_eq!(check(&req(Version::HTTP_2, &[]), None), None);
    }

    #[test]
    fn host_values() {
        for ok in [
            "a.example",
            "A.Example:8080",
            "192.0.2.1",
            "localhost:1",
            "[2001:db8::1]",
            "[::1]:65535",
            "xn--bcher-kva.example",
            "under_score.example",
        ] {
            assert!(valid_host(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "a.example:",
            "a.example:x",
            "a.example:65536",
            "a.example:000080",
            "a.example:-1",
            "u@a.example",
            "a example",
            "a.example, b.example",
            "a.example/x",
            "a%2eexample",
            "[2001:db8::1",
            "2001:db8::1",
            "[not-v6]",
            "[::1]x",
            "[::1]:",
            "a.example:80:80",
            "caf\u{e9}.example",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad}");
        }
        let r = req(Version::HTTP_11, &[("host", b"a b")]);
        assert_eq!(check(&r, None), Some(Malformed::InvalidHost));
    }

    #[test]
    fn connect_and_trace_are_refused() {
        let with = |m: &str| RequestHeader::build(m, b"/", None).unwrap();
        assert_eq!(
            refused_method(&with("CONNECT")),
            Some(RefusedMethod::Connect)
        );
        assert_eq!(refused_method(&with("TRACE")), Some(RefusedMethod::Trace));
        for ok in ["GET", "POST", "OPTIONS", "PATCH", "PROPFIND", "connect"] {
            assert_eq!(refused_method(&with(ok)), None, "{ok}");
        }
    }

    #[test]
    fn websocket_upgrades_are_told_from_others() {
        for yes in [
            &b"websocket"[..],
            b"WebSocket",
            b"h2c, websocket",
            b"websocket/13",
        ] {
            assert!(asks_websocket(&h11(&[("upgrade", yes)])), "{yes:?}");
        }
        for no in [&b"h2c"[..], b"TLS/1.2", b"websockets", b""] {
            assert!(!asks_websocket(&h11(&[("upgrade", no)])), "{no:?}");
        }
        assert!(!asks_websocket(&h11(&[])));
    }

    #[test]
    fn connection_options_are_tokens_and_bounded() {
        for ok in [
            &b"close"[..],
            b"Upgrade, HTTP2-Settings",
            b"keep-alive, , x-a",
            b"",
        ] {
            assert_eq!(check(&h11(&[("connection", ok)]), None), None, "{ok:?}");
        }
        for bad in [
            &b"\"x-forwarded-for\""[..],
            b":authority",
            b"x-a;x-b",
            b"a b",
            b"x/y",
        ] {
            assert_eq!(
                check(&h11(&[("connection", bad)]), None),
                Some(Malformed::ConnectionOption),
                "{bad:?}"
            );
        }
        let limit = vec!["x"; MAX_CONNECTION_OPTIONS].join(", ");
        let r = h11(&[("connection", limit.as_bytes()), ("connection", b",")]);
        assert_eq!(check(&r, None), None);
        let r = h11(&[("connection", limit.as_bytes()), ("connection", b"y")]);
        assert_eq!(check(&r, None), Some(Malformed::ConnectionOption));
        let two = h11(&[("connection", b" a ,b"), ("connection", b"c")]);
        let options: Vec<_> = connection_options(&two.headers).collect();
        assert_eq!(options, [&b"a"[..], b"b", b"c"]);
    }
}
