//! End to end: a misbehaving HTTP/1 origin. A response whose head is malformed or whose
//! framing is ambiguous becomes a `502`; a response that goes wrong after its head left is
//! cut by closing the client connection; and the upstream connection such a response came on
//! is never used again — the next request arrives on a new connection and gets its own
//! answer. What each rule refuses, and why, is in `docs/security.md` ("Responses from
//! upstreams").
//!
//! The origin is a raw scripted server (`support::scripted`): each request's path names the
//! bytes it answers with, and it records the connection each request arrived on.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::scripted::{BodyRead, Exchange, Reply, ScriptedUpstream};
use support::{Proxy, RawConn, Response, free_addr};

/// Bound on connecting and reading one answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may stay open after the proxy decided to close it.
const CLOSE_WITHIN: Duration = Duration::from_secs(3);
/// Time for the proxy to return a finished upstream connection to its pool, so that a
/// reusable one would be reused by the next request.
const SETTLE: Duration = Duration::from_millis(150);

/// One misbehaving answer: the origin sends `reply` to `GET /case/<name>`.
struct Case {
    name: &'static str,
    reply: Reply,
}

fn case(name: &'static str, raw: &[u8]) -> Case {
    Case {
        name,
        reply: Reply::raw(raw.to_vec()),
    }
}

/// An origin answering `/case/<name>` from `cases` and anything else with `200 ok <path>`.
fn origin(cases: Vec<Case>) -> ScriptedUpstream {
    ScriptedUpstream::start(move |ex: &Exchange| {
        let path = ex.path();
        path.strip_prefix("/case/")
            .and_then(|name| cases.iter().find(|c| c.name == name))
            .map_or_else(|| Reply::ok(&format!("ok {path}")), |c| c.reply.clone())
    })
}

/// A proxy with one catch-all route to `up`; upstream reads bounded so no test can hang.
fn start(up: &ScriptedUpstream) -> (Proxy, SocketAddr) {
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; error-log {{ level "warn"; }} }}
upstreams {{ upstream "u" {{ target "{}"; timeouts {{ read-ms 3000; }} }} }}
routes {{ route "all" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    (Proxy::start(&config, &[addr]), addr)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: origin.test\r\n\r\n").into_bytes()
}

/// Sends `raw` on a fresh keep-alive connection and reads one answer.
fn exchange(addr: SocketAddr, raw: &[u8]) -> (RawConn, std::io::Result<Response>) {
    let mut conn = RawConn::connect_with_timeout(addr, TIMEOUT).expect("connect to the proxy");
    conn.send(raw).expect("send");
    let resp = conn.read_response();
    (conn, resp)
}

/// A fresh follow-up request: it must get its own answer (never bytes the previous
/// response left behind), on another upstream connection than `not_on`, and no connection
/// may have carried leftover bytes into a request head. Returns the connection it used.
fn follow_up(
    addr: SocketAddr,
    up: &ScriptedUpstream,
    not_on: Option<usize>,
    what: &str,
) -> Result<usize, String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::thread::sleep(SETTLE);
    let path = format!("/next/{}", N.fetch_add(1, Ordering::Relaxed));
    let (_conn, resp) = exchange(addr, &get(&path));
    let resp = resp.map_err(|e| format!("{what}: follow-up got no answer ({e})"))?;
    let want = format!("ok {path}");
    if resp.status != 200 || resp.text() != want {
        return Err(format!(
            "{what}: follow-up answered {} {:?}, want 200 {want:?} (answers mixed up)",
            resp.status,
            resp.text()
        ));
    }
    let seen = up
        .last(&path)
        .ok_or_else(|| format!("{what}: the origin never saw {path}"))?;
    if Some(seen.conn) == not_on {
        return Err(format!(
            "{what}: the follow-up reused upstream connection {}",
            seen.conn
        ));
    }
    let desyncs = up.desyncs();
    if !desyncs.is_empty() {
        return Err(format!(
            "{what}: leftover bytes read as a request: {desyncs:?}"
        ));
    }
    Ok(seen.conn)
}

/// For each case on its own client connection: the answer is a 502 from the proxy (with its
/// request ID, nothing of the origin's answer), the upstream connection is closed and the
/// next request arrives on a new one.
fn expect_502(addr: SocketAddr, up: &ScriptedUpstream, cases: &[&str]) {
    let mut failures = Vec::new();
    for name in cases {
        let path = format!("/case/{name}");
        let (_conn, resp) = exchange(addr, &get(&path));
        let on = up.last(&path).map(|s| s.conn);
        match resp {
            Ok(r) if r.status == 502 && r.header("x-request-id").is_some() => {}
            Ok(r) => failures.push(format!(
                "{name}: status {} (want 502), headers {:?}, body {:?}",
                r.status,
                r.headers,
                r.text()
            )),
            Err(e) => failures.push(format!("{name}: no answer ({e})")),
        }
        let Some(on) = on else {
            failures.push(format!("{name}: never reached the origin"));
            continue;
        };
        if let Err(e) = follow_up(addr, up, Some(on), name) {
            failures.push(e);
        }
        let deadline = Instant::now() + CLOSE_WITHIN;
        while !up.closed_by_peer(on) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !up.closed_by_peer(on) {
            failures.push(format!(
                "{name}: upstream connection {on} still open after {CLOSE_WITHIN:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The baseline every other test relies on: a well-behaved answer leaves its upstream
/// connection to be reused, so "arrived on a new connection" below means "not reused".
#[test]
fn a_clean_answer_leaves_its_connection_reusable() {
    let up = origin(Vec::new());
    let (_proxy, addr) = start(&up);
    let (_c, first) = exchange(addr, &get("/first"));
    assert_eq!(first.expect("first answer").text(), "ok /first");
    let first_conn = up.last("/first").expect("origin saw /first").conn;
    std::thread::sleep(SETTLE);
    let (_c, second) = exchange(addr, &get("/second"));
    assert_eq!(second.expect("second answer").text(), "ok /second");
    let second_conn = up.last("/second").expect("origin saw /second").conn;
    assert_eq!(
        first_conn, second_conn,
        "a clean keep-alive answer must leave its connection reusable"
    );
    assert_eq!(up.connections(), 1);
}

/// RFC 9112 §6.3 (items 3 and 5), RFC 9110 §8.6.
#[test]
fn ambiguous_content_length_is_502_and_the_connection_is_not_reused() {
    let up = origin(vec![
        case(
            "cl-twice-same",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        ),
        case(
            "cl-list-same",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
        ),
        case(
            "cl-twice-different",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        case(
            "cl-list-different",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
        ),
        case(
            "cl-not-a-number",
            b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
        ),
    ]);
    let (_proxy, addr) = start(&up);
    expect_502(
        addr,
        &up,
        &[
            "cl-twice-same",
            "cl-list-same",
            "cl-twice-different",
            "cl-list-different",
            "cl-not-a-number",
        ],
    );
}

/// Malformed response heads: each must be a 502.
const MALFORMED: &[(&str, &[u8])] = &[
    (
        "status-4-digits",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "status-2-digits",
        b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "status-letters",
        b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "version-1.2",
        b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
    ),
    ("version-2", b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ("not-http", b"ICY 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ("http-0.9", b"hello world\r\n\r\n"),
    (
        "nul-in-value",
        b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "cr-in-value",
        b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "ctl-in-value",
        b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "del-in-value",
        b"HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "nul-in-name",
        b"HTTP/1.1 200 OK\r\nX-\x00A: 1\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "space-in-name",
        b"HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "paren-in-name",
        b"HTTP/1.1 200 OK\r\nX(A): 1\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "no-colon",
        b"HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "empty-name",
        b"HTTP/1.1 200 OK\r\n: 1\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "lf-then-no-colon",
        b"HTTP/1.1 200 OK\r\nX-A: a\nb\r\nContent-Length: 0\r\n\r\n",
    ),
];

/// RFC 9112 §4 (status line), §5 (field lines), RFC 9110 §5.1, §5.5.
#[test]
fn malformed_status_line_or_header_bytes_are_502_and_the_connection_is_not_reused() {
    let up = origin(MALFORMED.iter().map(|(n, raw)| case(n, raw)).collect());
    let (_proxy, addr) = start(&up);
    let names: Vec<&str> = MALFORMED.iter().map(|(n, _)| *n).collect();
    expect_502(addr, &up, &names);
}

/// RFC 9110 §15.2.2: a server sends 101 only to a request that asked to upgrade. The
/// upstream request of `Upgrade: h2c` has no `Upgrade` (the proxy drops it), so a 101 to it is
/// unsolicited too.
#[test]
fn an_unsolicited_101_is_502_and_the_connection_is_not_reused() {
    let switch = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw bytes of another protocol";
    let up = origin(vec![case("switch", switch), case("switch-h2c", switch)]);
    let (_proxy, addr) = start(&up);
    expect_502(addr, &up, &["switch"]);

    let raw = b"GET /case/switch-h2c HTTP/1.1\r\nHost: origin.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";
    let (_conn, resp) = exchange(addr, raw);
    let resp = resp.expect("an answer to the h2c upgrade request");
    assert_eq!(resp.status, 502, "body {:?}", resp.text());
    let seen = up.last("/case/switch-h2c").expect("origin saw the request");
    follow_up(addr, &up, Some(seen.conn), "switch-h2c").unwrap_or_else(|e| panic!("{e}"));
}

/// RFC 9112 §6.3 (item 6), §9.3: bytes after the announced body are not a response to
/// anything; they must never be read as the answer to the next request.
#[test]
fn bytes_after_the_announced_body_are_never_read_as_the_next_answer() {
    let smuggled: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED";
    let mut together = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    together.extend_from_slice(smuggled);
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    let up = origin(vec![
        case("together", &together),
        Case {
            name: "later",
            reply: Reply::raw(head.clone()).then(Duration::from_millis(50), smuggled),
        },
        Case {
            name: "chunked-later",
            reply: Reply::raw(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..])
                .then(Duration::from_millis(50), smuggled),
        },
    ]);
    let (_proxy, addr) = start(&up);
    let mut failures = Vec::new();
    for name in ["together", "later", "chunked-later"] {
        let path = format!("/case/{name}");
        let (_conn, resp) = exchange(addr, &get(&path));
        match resp {
            // The announced body is a complete answer and is passed on.
            Ok(r) if r.status == 200 && r.text() == "hello" => {}
            Ok(r) => failures.push(format!(
                "{name}: {} {:?}, want 200 \"hello\"",
                r.status,
                r.text()
            )),
            Err(e) => failures.push(format!("{name}: no answer ({e})")),
        }
        let on = up.last(&path).map(|s| s.conn);
        if let Err(e) = follow_up(addr, &up, on, name) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Once the head has left, a body that ends early or breaks its framing cannot become a 502:
/// the client connection is closed without a complete message, so the truncation is visible,
/// and the upstream connection is not reused.
#[test]
fn a_body_that_breaks_after_the_head_closes_the_client_connection() {
    let up = origin(vec![
        Case {
            name: "short-body",
            reply: Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"[..]).close(),
        },
        case(
            "bad-chunk-size",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n",
        ),
        Case {
            name: "chunked-cut",
            reply: Reply::raw(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"[..])
                .close(),
        },
    ]);
    let (_proxy, addr) = start(&up);
    let mut failures = Vec::new();
    for name in ["short-body", "bad-chunk-size", "chunked-cut"] {
        let path = format!("/case/{name}");
        let (_conn, resp) = exchange(addr, &get(&path));
        match resp {
            // The client must not see a complete message.
            Ok(r) => failures.push(format!(
                "{name}: a complete answer {} {:?} (want a cut connection)",
                r.status,
                r.text()
            )),
            // Closed in the middle of the message, not left hanging until the timeout.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(e) => failures.push(format!("{name}: connection not closed ({e})")),
        }
        let on = up.last(&path).map(|s| s.conn);
        if let Err(e) = follow_up(addr, &up, on, name) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An answer before the request body was sent (a 413 while the client is still uploading,
/// RFC 9110 §15.5.14): the client gets it, and the upstream connection is never used again,
/// even when the rest of the body did follow and the origin read it — when it answered, the
/// origin had not read the body, and the proxy cannot know that it would (vendor/README.md).
#[test]
fn an_answer_before_the_whole_body_was_sent_is_not_followed_on_its_connection() {
    let up = origin(vec![Case {
        name: "drains",
        reply: Reply::raw(
            &b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big\n"[..],
        )
        .body(BodyRead::After),
    }]);
    let (_proxy, addr) = start(&up);
    let mut failures = Vec::new();
    // The client is still uploading when the 413 comes, then sends the rest of its body. The
    // proxy forwards all of it, and the origin (which drains bodies it answered early) reads
    // all of it.
    const LEN: usize = 100_000;
    let head =
        format!("POST /case/drains HTTP/1.1\r\nHost: origin.test\r\nContent-Length: {LEN}\r\n\r\n");
    let mut conn = RawConn::connect_with_timeout(addr, TIMEOUT).expect("connect");
    conn.send(head.as_bytes()).expect("send head");
    conn.send(&[b'x'; 1000]).expect("send some body");
    match conn.read_response() {
        Ok(r) if r.status == 413 => {}
        Ok(r) => failures.push(format!(
            "uploading: got {} (want the origin's 413)",
            r.status
        )),
        Err(e) => failures.push(format!("uploading: no answer ({e})")),
    }
    // The rest of the body, after the answer; the proxy may already have stopped reading.
    let _ = conn.send(&[b'x'; LEN - 1000]);
    let deadline = Instant::now() + CLOSE_WITHIN;
    let drained = loop {
        let seen = up.last("/case/drains");
        if seen.as_ref().is_some_and(|s| s.body.is_some()) || Instant::now() >= deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = drained.as_ref().and_then(|s| s.body.as_ref()).map(Vec::len);
    if read != Some(LEN) {
        failures.push(format!(
            "uploading: the origin read {read:?} body bytes, want all {LEN} (the proxy forwards the whole body)"
        ));
    }
    drop(conn);
    let on = drained.map(|s| s.conn);
    if let Err(e) = follow_up(addr, &up, on, "uploading") {
        failures.push(e);
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An answer before the request body was read, to a body the client sent whole: the client
/// gets it, and the next request gets its own answer whatever the origin does with the body.
#[test]
fn an_early_answer_leaves_no_request_bytes_on_a_reused_connection() {
    let early = |when| {
        Reply::raw(&b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big\n"[..])
            .body(when)
    };
    let up = origin(vec![
        Case {
            name: "drains",
            reply: early(BodyRead::After),
        },
        Case {
            name: "never-reads",
            reply: early(BodyRead::Never),
        },
    ]);
    let (_proxy, addr) = start(&up);
    let mut failures = Vec::new();

    // 1. A complete small body, answered before it was read, by an origin that drains it.
    // The connection is at a message boundary again and may be reused.
    let small =
        b"POST /case/drains HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 10\r\n\r\n0123456789";
    let (_c, resp) = exchange(addr, small);
    match resp {
        Ok(r) if r.status == 413 => {}
        Ok(r) => failures.push(format!("drained: got {} (want 413)", r.status)),
        Err(e) => failures.push(format!("drained: no answer ({e})")),
    }
    let drained = up.last("/case/drains");
    if drained.as_ref().and_then(|s| s.body.as_deref()) != Some(b"0123456789") {
        failures.push(format!(
            "drained: the origin read {:?}, want the whole body",
            drained.as_ref().and_then(|s| s.body.clone())
        ));
    }
    if let Err(e) = follow_up(addr, &up, None, "drained") {
        failures.push(e);
    }

    // 2. Answered before the body, by an origin that never reads it nor closes: the body's
    // bytes stay unread on that connection, which the origin breaks (RFC 9112 §9.3: read the
    // body or close). When the body was all written before the answer ended (as here, sent
    // with the head), the proxy cannot see that. What it guarantees: it sends the whole body
    // it announced, so whatever the origin reads next starts on the body's first byte and the
    // next request follows exactly after it; and the follow-up still gets its own answer.
    let small = b"POST /case/never-reads HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 10\r\n\r\n0123456789";
    let (_c, resp) = exchange(addr, small);
    match resp {
        Ok(r) if r.status == 413 => {}
        Ok(r) => failures.push(format!("never-reads: got {} (want 413)", r.status)),
        Err(e) => failures.push(format!("never-reads: no answer ({e})")),
    }
    std::thread::sleep(SETTLE);
    let (_c, resp) = exchange(addr, &get("/after-never-reads"));
    match resp {
        Ok(r) if r.status == 200 && r.text() == "ok /after-never-reads" => {}
        Ok(r) => failures.push(format!(
            "never-reads: follow-up answered {} {:?} (answers mixed up)",
            r.status,
            r.text()
        )),
        Err(e) => failures.push(format!("never-reads: follow-up got no answer ({e})")),
    }
    for (conn, line) in up.desyncs() {
        if line != "0123456789GET /after-never-reads HTTP/1.1" {
            failures.push(format!(
                "never-reads: connection {conn} carried {line:?}, not the whole body then the next request"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `Content-Length` with `Transfer-Encoding` in a response, in either order: RFC 9112 §6.3
/// says it "ought to be handled as an error". Pingora's client would drop the
/// `Content-Length` and reuse the connection; Zentinel's patched copy refuses the head
/// (vendor/README.md): a 502, and the next request on a new connection.
#[test]
fn content_length_with_transfer_encoding_is_502_and_the_connection_is_not_reused() {
    let up = origin(vec![
        case(
            "cl-then-te",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        case(
            "te-then-cl",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 22\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        case(
            "cl-and-te-identity",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        ),
    ]);
    let (_proxy, addr) = start(&up);
    expect_502(
        addr,
        &up,
        &["cl-then-te", "te-then-cl", "cl-and-te-identity"],
    );
}

/// What RFC 9112 lets a recipient accept in a response, the proxy accepts and forwards in a
/// single, canonical form: whitespace before a colon removed (§5.1: "MUST remove"), an
/// obs-fold replaced by a space (§5.2), bare LF line endings (§2.2) re-written with CRLF.
#[test]
fn tolerated_response_quirks_reach_the_client_in_canonical_form() {
    let up = origin(vec![
        case(
            "space-before-colon",
            b"HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 2\r\n\r\nok",
        ),
        case(
            "obs-fold",
            b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok",
        ),
        case(
            "bare-lf",
            b"HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 2\n\nok",
        ),
    ]);
    let (_proxy, addr) = start(&up);
    let mut failures = Vec::new();
    for (name, want) in [
        ("space-before-colon", "1"),
        ("obs-fold", "one two"),
        ("bare-lf", "1"),
    ] {
        let path = format!("/case/{name}");
        let (_conn, resp) = exchange(addr, &get(&path));
        match resp {
            // The raw client splits lines on CRLF only: a value with a CR or LF left in it,
            // or a bare LF line ending, would not parse back into these headers.
            Ok(r) if r.status == 200 && r.text() == "ok" && r.header_all("x-a") == [want] => {}
            Ok(r) => failures.push(format!(
                "{name}: {} {:?} {:?}, want 200 \"ok\" with x-a {want:?}",
                r.status,
                r.headers,
                r.text()
            )),
            Err(e) => failures.push(format!("{name}: no answer ({e})")),
        }
        if let Err(e) = follow_up(addr, &up, None, name) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
