//! End to end: HTTP/1 request framing and header bytes. Every ambiguous or malformed request
//! is answered with a proper status line, the connection is closed, and the upstream never
//! sees it; the well-formed neighbours of each rule still pass. What each rule refuses, and
//! why, is in `docs/security.md`.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{MockUpstream, Proxy, RawConn, Response, free_addr};

/// Bound on connecting and reading one answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a refused connection may stay open after its answer.
const CLOSE_WITHIN: Duration = Duration::from_secs(3);

/// One raw request and what the proxy must do with it.
struct Case {
    name: &'static str,
    raw: &'static [u8],
    /// The status expected; 200 means the request must reach the upstream.
    status: u16,
}

const fn case(name: &'static str, raw: &'static [u8], status: u16) -> Case {
    Case { name, raw, status }
}

/// A proxy with one catch-all route to `up`.
fn start(up: &MockUpstream) -> (Proxy, SocketAddr) {
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; error-log {{ level "warn"; }} }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "all" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    (Proxy::start(&config, &[addr]), addr)
}

/// Sends `raw` on a fresh connection and reads one answer.
fn exchange(addr: SocketAddr, raw: &[u8]) -> (RawConn, std::io::Result<Response>) {
    let mut conn = RawConn::connect_with_timeout(addr, TIMEOUT).expect("connect");
    conn.send(raw).expect("send");
    let resp = conn.read_response();
    (conn, resp)
}

/// Runs every case on its own connection. A refused case must get its status on an HTTP/1.1
/// status line, have its connection closed, and leave the upstream untouched — no
/// connection at all when `no_upstream_connection`, else no complete request (a body
/// framing error is found while the body streams, after the head went upstream). An
/// accepted case must reach the upstream.
fn run(addr: SocketAddr, up: &MockUpstream, cases: &[Case], no_upstream_connection: bool) {
    let mut failures = Vec::new();
    for c in cases {
        up.reset();
        let (mut conn, resp) = exchange(addr, c.raw);
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: no answer ({e})", c.name));
                continue;
            }
        };
        if resp.status != c.status {
            failures.push(format!(
                "{}: status {} (want {}), body {:?}",
                c.name,
                resp.status,
                c.status,
                resp.text()
            ));
            continue;
        }
        if resp.version != "HTTP/1.1" {
            failures.push(format!("{}: status line version {}", c.name, resp.version));
        }
        if c.status == 200 {
            if up.hits() != 1 {
                failures.push(format!("{}: upstream saw {} requests", c.name, up.hits()));
            }
            continue;
        }
        if !conn.closed_by_peer(CLOSE_WITHIN) {
            failures.push(format!(
                "{}: connection left open after {}",
                c.name, c.status
            ));
        }
        if up.hits() != 0 {
            failures.push(format!("{}: upstream saw {:?}", c.name, up.requests()));
        }
        if no_upstream_connection && up.connections() != 0 {
            failures.push(format!("{}: upstream was connected to", c.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn content_length_must_be_one_decimal_number() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    run(
        addr,
        &up,
        &[
            case(
                "valid",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2\r\n\r\nab",
                200,
            ),
            case(
                "zero",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 0\r\n\r\n",
                200,
            ),
            case(
                "two lines, different values",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                400,
            ),
            case(
                "two lines, same value",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
                400,
            ),
            case(
                "list of different values",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1, 2\r\n\r\nab",
                400,
            ),
            case(
                "list of the same value",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2, 2\r\n\r\nab",
                400,
            ),
            case(
                "plus sign",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: +2\r\n\r\nab",
                400,
            ),
            case(
                "negative",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: -1\r\n\r\nab",
                400,
            ),
            case(
                "hexadecimal",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 0x2\r\n\r\nab",
                400,
            ),
            case(
                "trailing junk",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2x\r\n\r\nab",
                400,
            ),
            case(
                "space inside",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1 2\r\n\r\nab",
                400,
            ),
            case(
                "empty",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: \r\n\r\nab",
                400,
            ),
            case(
                "over u64",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 99999999999999999999999\r\n\r\nab",
                400,
            ),
        ],
        true,
    );
}

#[test]
fn transfer_encoding_must_be_a_lone_chunked() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    run(
        addr,
        &up,
        &[
            case(
                "chunked",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                200,
            ),
            case(
                "chunked, any case",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                200,
            ),
            case(
                "Content-Length then Transfer-Encoding",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "Transfer-Encoding then Content-Length",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "chunked not last",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "another coding before chunked",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "identity",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: identity\r\n\r\nab",
                400,
            ),
            case(
                "xchunked",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: xchunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "chunked with junk",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked x\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "empty",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: \r\n\r\n2\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "chunked twice in one line",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "two Transfer-Encoding lines",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "gzip line then chunked line",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "on HTTP/1.0",
                b"POST / HTTP/1.0\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                400,
            ),
        ],
        true,
    );
}

#[test]
fn chunk_framing_errors_end_the_request() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    // Found while the body streams: the head may already be upstream, but never a whole
    // request, and that upstream connection is dropped.
    run(
        addr,
        &up,
        &[
            case(
                "chunk extension",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nab\r\n0\r\n\r\n",
                200,
            ),
            case(
                "size not hexadecimal",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "size with junk",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n2x\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "negative size",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "size over 64 bits",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "bare LF after the size",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n",
                400,
            ),
            case(
                "bare LF after the data",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\n0\r\n\r\n",
                400,
            ),
            case(
                "data longer than its size",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
                400,
            ),
            case(
                "bare LF after the last chunk",
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\n\n",
                400,
            ),
        ],
        false,
    );
}

#[test]
fn header_lines_have_one_shape() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    run(
        addr,
        &up,
        &[
            case(
                "plain",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: 1\r\n\r\n",
                200,
            ),
            case(
                "no space after the colon",
                b"GET / HTTP/1.1\r\nHost:a.example\r\nX-A:1\r\n\r\n",
                200,
            ),
            case(
                "space before the colon",
                b"GET / HTTP/1.1\r\nHost : a.example\r\n\r\n",
                400,
            ),
            case(
                "tab before the colon",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A\t: 1\r\n\r\n",
                400,
            ),
            case(
                "obs-fold with a space",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: 1\r\n 2\r\n\r\n",
                400,
            ),
            case(
                "obs-fold with a tab",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: 1\r\n\t2\r\n\r\n",
                400,
            ),
            case(
                "first header line folded",
                b"GET / HTTP/1.1\r\n Host: a.example\r\n\r\n",
                400,
            ),
            case(
                "no colon",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A 1\r\n\r\n",
                400,
            ),
            case(
                "empty name",
                b"GET / HTTP/1.1\r\nHost: a.example\r\n: 1\r\n\r\n",
                400,
            ),
            case(
                "bare LF line endings",
                b"GET / HTTP/1.1\nHost: a.example\nX-A: 1\n\n",
                400,
            ),
            case(
                "one bare LF between headers",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: 1\nX-B: 2\r\n\r\n",
                400,
            ),
            case(
                "bare LF ending the head",
                b"GET / HTTP/1.1\r\nHost: a.example\r\n\n",
                400,
            ),
        ],
        true,
    );
}

#[test]
fn header_bytes_exclude_control_characters() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    run(
        addr,
        &up,
        &[
            case(
                "tab inside a value",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: a\tb\r\n\r\n",
                200,
            ),
            case(
                "obs-text in a value",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: caf\xc3\xa9\r\n\r\n",
                200,
            ),
            case(
                "NUL in a value",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: a\0b\r\n\r\n",
                400,
            ),
            case(
                "bare CR in a value",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: a\rb\r\n\r\n",
                400,
            ),
            case(
                "CR at the end of a value",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: a\r\r\n\r\n",
                400,
            ),
            case(
                "SOH in a value",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: a\x01b\r\n\r\n",
                400,
            ),
            case(
                "ESC in a value",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: a\x1bb\r\n\r\n",
                400,
            ),
            case(
                "DEL in a value",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: a\x7fb\r\n\r\n",
                400,
            ),
            case(
                "NUL in a name",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX\0A: b\r\n\r\n",
                400,
            ),
            case(
                "CR in a name",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX\rA: b\r\n\r\n",
                400,
            ),
            case(
                "LF in a name",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX\nA: b\r\n\r\n",
                400,
            ),
            case(
                "control character in a name",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX\x01A: b\r\n\r\n",
                400,
            ),
            case(
                "space in a name",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX A: b\r\n\r\n",
                400,
            ),
            case(
                "non-token byte in a name",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nX(A): b\r\n\r\n",
                400,
            ),
        ],
        true,
    );
}

#[test]
fn http_versions_other_than_1_0_and_1_1_are_refused() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    run(
        addr,
        &up,
        &[
            case("HTTP/1.0", b"GET / HTTP/1.0\r\n\r\n", 200),
            case(
                "HTTP/1.2",
                b"GET / HTTP/1.2\r\nHost: a.example\r\n\r\n",
                400,
            ),
            case(
                "HTTP/2.0",
                b"GET / HTTP/2.0\r\nHost: a.example\r\n\r\n",
                400,
            ),
            case("HTTP/3", b"GET / HTTP/3\r\nHost: a.example\r\n\r\n", 400),
            case(
                "lower case",
                b"GET / http/1.1\r\nHost: a.example\r\n\r\n",
                400,
            ),
            case(
                "junk after",
                b"GET / HTTP/1.1x\r\nHost: a.example\r\n\r\n",
                400,
            ),
            case("no version (HTTP/0.9)", b"GET /\r\n\r\n", 400),
            case("HTTP/0.9, one line", b"GET /\r\n", 400),
            case(
                "space, no version",
                b"GET / \r\nHost: a.example\r\n\r\n",
                400,
            ),
        ],
        true,
    );
}

#[test]
fn host_is_required_unique_and_valid() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    run(
        addr,
        &up,
        &[
            case("name", b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", 200),
            case(
                "name and port",
                b"GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n",
                200,
            ),
            case("IPv4", b"GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n", 200),
            case(
                "IPv6",
                b"GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n",
                200,
            ),
            case("HTTP/1.0 may leave it out", b"GET / HTTP/1.0\r\n\r\n", 200),
            case("missing on HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n", 400),
            case(
                "two lines",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
                400,
            ),
            case(
                "two identical lines",
                b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n",
                400,
            ),
            case("empty", b"GET / HTTP/1.1\r\nHost: \r\n\r\n", 400),
            case(
                "userinfo",
                b"GET / HTTP/1.1\r\nHost: u@a.example\r\n\r\n",
                400,
            ),
            case("space", b"GET / HTTP/1.1\r\nHost: a example\r\n\r\n", 400),
            case(
                "list",
                b"GET / HTTP/1.1\r\nHost: a.example, b.example\r\n\r\n",
                400,
            ),
            case("path", b"GET / HTTP/1.1\r\nHost: a.example/x\r\n\r\n", 400),
            case(
                "port not a number",
                b"GET / HTTP/1.1\r\nHost: a.example:x\r\n\r\n",
                400,
            ),
            case(
                "port over 65535",
                b"GET / HTTP/1.1\r\nHost: a.example:65536\r\n\r\n",
                400,
            ),
            case(
                "empty port",
                b"GET / HTTP/1.1\r\nHost: a.example:\r\n\r\n",
                400,
            ),
            case(
                "unclosed IPv6",
                b"GET / HTTP/1.1\r\nHost: [2001:db8::1\r\n\r\n",
                400,
            ),
            case(
                "IPv6 not bracketed",
                b"GET / HTTP/1.1\r\nHost: 2001:db8::1\r\n\r\n",
                400,
            ),
        ],
        true,
    );
}

#[test]
fn absolute_form_targets_route_and_forward_by_their_authority() {
    let a = MockUpstream::start("a");
    let b = MockUpstream::start("b");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; error-log {{ level "warn"; }} }}
upstreams {{ upstream "a" {{ target "{}"; }}; upstream "b" {{ target "{}"; }} }}
routes {{
    route "a" {{ matches {{ host "a.example"; }}; upstream "a"; }}
    route "b" {{ matches {{ host "b.example"; }}; upstream "b"; }}
}}"#,
        a.addr(),
        b.addr()
    );
    let _p = Proxy::start(&config, &[addr]);

    let (_c, resp) = exchange(
        addr,
        b"GET http://a.example/x?q=1 HTTP/1.1\r\nHost: a.example\r\n\r\n",
    );
    assert_eq!(resp.unwrap().status, 200);
    let seen = a.last_request().expect("route a's upstream got it");
    assert_eq!(seen.header("host"), Some("a.example"));
    assert_eq!(seen.path, "/x?q=1", "sent upstream in origin form");
    assert_eq!(b.hits(), 0);
    a.reset();

    // Every refusal below: nothing reaches either upstream.
    for (name, raw) in [
        (
            "Host differs from the target",
            &b"GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n"[..],
        ),
        (
            "Host differs only by port",
            b"GET http://a.example:80/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
        ),
        (
            "no Host on HTTP/1.1",
            b"GET http://a.example/x HTTP/1.1\r\n\r\n",
        ),
        (
            "userinfo in the target",
            b"GET http://user@a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
        ),
        (
            "userinfo in the target and Host",
            b"GET http://user@a.example/x HTTP/1.1\r\nHost: user@a.example\r\n\r\n",
        ),
        (
            "userinfo with a password",
            b"GET http://u:p@a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
        ),
    ] {
        let (mut conn, resp) = exchange(addr, raw);
        let resp = resp.unwrap_or_else(|e| panic!("{name}: no answer ({e})"));
        assert_eq!(resp.status, 400, "{name}: {}", resp.text());
        assert_eq!(resp.version, "HTTP/1.1", "{name}");
        assert!(conn.closed_by_peer(CLOSE_WITHIN), "{name}: left open");
        assert_eq!(
            a.connections() + b.connections(),
            0,
            "{name}: upstream reached"
        );
    }
}

#[test]
fn a_refused_request_ends_the_connection_even_when_more_follows() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    // An ambiguous request with a second one pipelined behind it: a proxy that kept the
    // connection would frame the second from bytes the first may own.
    let (mut conn, resp) = exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n",
    );
    assert_eq!(resp.unwrap().status, 400);
    assert!(conn.closed_by_peer(CLOSE_WITHIN));
    assert_eq!(up.connections(), 0, "{:?}", up.requests());
}

#[test]
fn refusals_made_by_the_proxy_are_audited() {
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; audit-log {{ destination "file"; path "audit.log"; }} }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "all" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    let p = Proxy::start(&config, &[addr]);
    let (_c, resp) = exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
    let resp = resp.unwrap();
    assert_eq!(resp.status, 400);
    assert!(resp.text().contains("no Host header"), "{}", resp.text());
    let id = resp.header("x-request-id").expect("request id").to_owned();
    let path = p.dir().join("audit.log");
    let line = || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .find(|l| l.contains(&id))
            .map(str::to_owned)
    };
    support::wait_until(Duration::from_secs(5), "the audit line", || {
        line().is_some()
    });
    let v: serde_json::Value = serde_json::from_str(&line().unwrap()).unwrap();
    assert_eq!(v["reason"], "missing-host", "{v}");
    assert_eq!(v["status"], 400, "{v}");
}
