//! Self-test of the end-to-end harness in `support/`: the mock upstream and the raw client
//! against each other, and `Proxy::fail_to_start` on an invalid configuration. No data plane
//! needed.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::io::{ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    Behaviour, MockUpstream, Proxy, RawConn, free_addr, free_port, get, request, send_raw,
    send_raw_with_timeout, wait_until,
};

#[test]
fn free_ports_are_loopback_and_bindable() {
    let a = free_addr();
    assert!(a.ip().is_loopback());
    assert_ne!(free_port(), 0);
    TcpListener::bind(a).expect("free_addr is bindable");
}

#[test]
fn mock_answers_get_and_records_it() {
    let up = MockUpstream::start("alpha");
    let r = get(up.addr(), "example.test", "/a/b?x=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.version, "HTTP/1.1");
    assert_eq!(r.text(), "upstream=alpha path=/a/b?x=1\n");
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    assert_eq!(r.header("x-upstream"), Some("alpha"));
    assert_eq!(r.header("content-length"), Some("29"));
    let req = up.last_request().expect("recorded");
    assert_eq!(
        (req.method.as_str(), req.path.as_str(), req.version.as_str()),
        ("GET", "/a/b?x=1", "HTTP/1.1")
    );
    assert_eq!(req.header("HOST"), Some("example.test"));
    assert_eq!(req.header("connection"), Some("close"));
    assert!(req.body.is_empty());
    assert_eq!((up.hits(), up.connections()), (1, 1));
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let up = MockUpstream::start("ka");
    let mut c = RawConn::connect(up.addr()).unwrap();
    c.send(b"GET /one HTTP/1.1\r\nHost: h\r\nX-Multi: a\r\nX-Multi: b\r\n\r\n")
        .unwrap();
    let r1 = c.read_response().unwrap();
    assert_eq!(r1.text(), "upstream=ka path=/one\n");
    assert_eq!(r1.header("connection"), None);
    assert!(!c.closed_by_peer(Duration::from_millis(50)), "kept alive");
    c.send(b"GET /two HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r2 = c.read_response().unwrap();
    assert_eq!(r2.text(), "upstream=ka path=/two\n");
    assert_eq!(r2.header("connection"), Some("close"));
    assert!(
        c.closed_by_peer(Duration::from_secs(2)),
        "closed after Connection: close"
    );
    assert_eq!((up.hits(), up.connections()), (2, 1));
    let reqs = up.requests();
    assert_eq!(reqs[0].header_all("x-multi"), ["a", "b"]);
    assert_eq!(reqs[1].path, "/two");
}

#[test]
fn pipelined_requests_written_at_once() {
    let up = MockUpstream::start("pipe");
    let mut s = TcpStream::connect(up.addr()).unwrap();
    s.write_all(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    drop(s);
    wait_until(Duration::from_secs(2), "two hits", || up.hits() == 2);
    let mut c = RawConn::connect(up.addr()).unwrap();
    c.send(b"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\nGET /g HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let head = c.read_response_to("HEAD").unwrap();
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("22"));
    assert_eq!(c.read_response().unwrap().text(), "upstream=pipe path=/g\n");
}

#[test]
fn request_bodies_content_length_and_chunked() {
    let up = MockUpstream::start("body");
    let r = request(
        up.addr(),
        "POST",
        "h",
        "/cl",
        &[("X-A", "1")],
        b"hello body",
    );
    assert_eq!(r.status, 200);
    let req = up.last_request().unwrap();
    assert_eq!(req.body, b"hello body");
    assert_eq!(req.header("content-length"), Some("10"));
    assert_eq!(req.header("x-a"), Some("1"));

    let raw = b"POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
5\r\nhello\r\n7;ext=1\r\n, world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
    let r = send_raw(up.addr(), raw).unwrap();
    assert_eq!(r.text(), "upstream=body path=/chunked\n");
    let req = up.last_request().unwrap();
    assert_eq!(req.body, b"hello, world0123456789");
    assert_eq!(req.header("transfer-encoding"), Some("chunked"));
    assert_eq!(up.hits(), 2);
}

#[test]
fn expect_100_continue_gets_interim_response() {
    let up = MockUpstream::start("exp");
    let mut c = RawConn::connect_with_timeout(up.addr(), Duration::from_secs(2)).unwrap();
    c.send(b"PUT /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .unwrap();
    let interim = c.read_next().unwrap();
    assert_eq!(interim.status, 100);
    assert_eq!(up.hits(), 0, "body not sent yet");
    c.send(b"ping").unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 200);
    assert!(r.informational.is_empty());
    assert_eq!(up.last_request().unwrap().body, b"ping");

    // All at once: send_raw skips the interim response and notes it.
    let r = send_raw(
        up.addr(),
        b"PUT /e2 HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    )
    .unwrap();
    assert_eq!((r.status, r.informational.as_slice()), (200, &[100][..]));
}

#[test]
fn status_and_headers_can_change_while_running() {
    let up = MockUpstream::start("st");
    up.set_status(503);
    let r = get(up.addr(), "h", "/x");
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "upstream=st path=/x\n");
    up.set_response_header("X-Extra", "1");
    up.set_response_header("content-type", "application/json");
    up.add_response_header("set-cookie", "a=1");
    up.add_response_header("set-cookie", "b=2");
    up.set_status(200);
    let r = get(up.addr(), "h", "/y");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-extra"), Some("1"));
    assert_eq!(r.header_all("content-type"), ["application/json"]);
    assert_eq!(r.header_all("set-cookie"), ["a=1", "b=2"]);
    up.set_body(Some(b"custom"));
    assert_eq!(get(up.addr(), "h", "/z").text(), "custom");
    up.set_status(204);
    let r = get(up.addr(), "h", "/n");
    assert_eq!((r.status, r.header("content-length")), (204, None));
    assert!(r.body.is_empty());
}

#[test]
fn delay_postpones_the_answer() {
    let up = MockUpstream::start("slow");
    up.set_behaviour(Behaviour::Delay(Duration::from_millis(300)));
    let t = Instant::now();
    let r = get(up.addr(), "h", "/d");
    let took = t.elapsed();
    assert_eq!(r.status, 200);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn close_immediately_is_an_error_for_the_client() {
    let up = MockUpstream::start("rude");
    up.set_behaviour(Behaviour::CloseImmediately);
    let err = send_raw(up.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "{err:?}"
    );
    assert_eq!((up.hits(), up.connections()), (0, 1));
    up.set_behaviour(Behaviour::Respond);
    assert_eq!(get(up.addr(), "h", "/").status, 200);
    assert_eq!((up.hits(), up.connections()), (1, 2));
}

#[test]
fn hang_reads_but_never_answers() {
    let up = MockUpstream::start("hang");
    up.set_behaviour(Behaviour::Hang);
    let t = Instant::now();
    let err = send_raw_with_timeout(
        up.addr(),
        b"GET /h HTTP/1.1\r\nHost: h\r\n\r\n",
        Duration::from_millis(300),
    )
    .unwrap_err();
    let took = t.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err:?}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(up.hits(), 1, "the request was read");

    // stop() does not wait for the hanging connection to time out.
    let mut c = RawConn::connect(up.addr()).unwrap();
    c.send(b"GET /h2 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    wait_until(Duration::from_secs(2), "second hit", || up.hits() == 2);
    let t = Instant::now();
    up.stop();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert!(c.closed_by_peer(Duration::from_secs(1)));
}

#[test]
fn stop_refuses_connections_and_restart_reuses_the_port() {
    let up = MockUpstream::start("bounce");
    let addr = up.addr();
    let mut idle = RawConn::connect(addr).unwrap();
    idle.send(b"GET /k HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(idle.read_response().unwrap().status, 200);

    up.stop();
    assert!(
        idle.closed_by_peer(Duration::from_secs(1)),
        "idle keep-alive closed"
    );
    let err = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err:?}");
    up.stop(); // idempotent

    up.restart();
    assert_eq!(up.addr(), addr);
    let r = get(addr, "h", "/back");
    assert_eq!(r.text(), "upstream=bounce path=/back\n");
    assert_eq!(up.hits(), 2, "counters survive a restart");
    up.reset();
    assert_eq!(
        (up.hits(), up.connections(), up.requests().len()),
        (0, 0, 0)
    );
}

#[test]
fn counters_count_requests_and_connections() {
    let up = MockUpstream::start("count");
    for i in 0..3 {
        get(up.addr(), "h", &format!("/{i}"));
    }
    let mut c = RawConn::connect(up.addr()).unwrap();
    for _ in 0..2 {
        c.send(b"GET /same HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        c.read_response().unwrap();
    }
    assert_eq!((up.hits(), up.connections()), (5, 4));
    let paths: Vec<String> = up.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/0", "/1", "/2", "/same", "/same"]);
}

#[test]
fn bad_requests_get_400() {
    let up = MockUpstream::start("bad");
    let r = send_raw(up.addr(), b"NONSENSE\r\n\r\n").unwrap();
    assert_eq!(r.status, 400);
    let r = send_raw(up.addr(), b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").unwrap();
    assert_eq!(r.status, 400);
    let mut huge = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 70 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let r = send_raw(up.addr(), &huge).unwrap();
    assert_eq!(r.status, 431);
    assert_eq!(up.hits(), 0);
}

/// Serves one canned response on an ad hoc listener, for client parsing tests.
fn canned(response: &'static [u8]) -> std::net::SocketAddr {
    let l = support::bind_loopback();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 1024];
        let _ = std::io::Read::read(&mut s, &mut buf);
        s.write_all(response).unwrap();
    });
    addr
}

#[test]
fn client_decodes_chunked_and_close_delimited_responses() {
    let addr = canned(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    );
    let r = send_raw(addr, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(
        (r.status, r.text().as_str(), r.header("x-a")),
        (200, "abcde", Some("1"))
    );

    let addr = canned(b"HTTP/1.0 502 Bad Gateway\r\nServer: x\r\n\r\nuntil close");
    let r = send_raw(addr, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(
        (r.status, r.version.as_str(), r.text().as_str()),
        (502, "HTTP/1.0", "until close")
    );

    let addr = canned(b"garbage\r\n\r\n");
    let err = send_raw(addr, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err:?}");
}

#[test]
fn wait_until_returns_once_true() {
    let mut n = 0;
    wait_until(Duration::from_secs(1), "third poll", || {
        n += 1;
        n == 3
    });
    assert_eq!(n, 3);
}

#[test]
#[should_panic(expected = "waiting for the impossible")]
fn wait_until_panics_on_timeout() {
    wait_until(Duration::from_millis(50), "the impossible", || false);
}

#[test]
fn fail_to_start_reports_exit_code_and_diagnostics() {
    let (code, stderr) =
        Proxy::fail_to_start("listeners { listener \"web\" { adress \"127.0.0.1:1\"; } }\n");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("unknown key `adress`"), "{stderr}");
    assert!(stderr.contains("did you mean `address`?"), "{stderr}");
    assert!(stderr.contains("not starting"), "{stderr}");
}
