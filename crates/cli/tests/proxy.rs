//! End to end: the `zentinel` binary in front of mock upstreams, on ephemeral loopback ports.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{Behaviour, MockUpstream, Proxy, free_addr, get, request, send_raw, wait_until};

/// A proxy on a fresh port with `body` (routes, upstreams, … ) after one listener.
fn start(body: &str) -> (Proxy, SocketAddr) {
    let addr = free_addr();
    let config = format!(
        "listeners {{ listener \"web\" {{ address \"{addr}\"; }} }}\nobservability {{ access-log {{ destination \"off\"; }}; error-log {{ level \"warn\"; }} }}\n{body}"
    );
    (Proxy::start(&config, &[addr]), addr)
}

#[test]
fn routes_by_host_and_path_and_answers_404_otherwise() {
    let api = MockUpstream::start("api");
    let site = MockUpstream::start("site");
    let (_p, addr) = start(&format!(
        r#"upstreams {{ upstream "api" {{ target "{}"; }}; upstream "site" {{ target "{}"; }} }}
routes {{
    route "api" {{ priority 10; matches {{ path-prefix "/api/"; }}; upstream "api"; }}
    route "site" {{ matches {{ host "example.com" "*.example.com"; }}; upstream "site"; }}
}}"#,
        api.addr(),
        site.addr()
    ));
    assert!(
        get(addr, "example.com", "/api/users")
            .text()
            .contains("upstream=api")
    );
    assert!(
        get(addr, "www.example.com", "/index.html")
            .text()
            .contains("upstream=site")
    );
    let miss = get(addr, "other.org", "/");
    assert_eq!(miss.status, 404);
    let id = miss.header("x-request-id").expect("request id").to_owned();
    assert!(
        miss.text().contains("no route matches") && miss.text().contains(&id),
        "{}",
        miss.text()
    );
    assert_eq!(api.hits() + site.hits(), 2);
}

#[test]
fn default_route_catches_unmatched_requests() {
    let up = MockUpstream::start("fallback");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; default-route "fallback"; }} }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "only-api" {{ matches {{ path-prefix "/api/"; }}; upstream "u"; }}; route "fallback" {{ matches {{ path "/never"; }}; upstream "u"; }} }}"#,
        up.addr()
    );
    let _p = Proxy::start(&config, &[addr]);
    assert_eq!(get(addr, "x", "/elsewhere").status, 200);
}

#[test]
fn forwarding_headers_request_id_and_header_policies() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&format!(
        r#"upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"
    request-headers {{ set "x-env" "prod"; remove "x-secret"; }}
    response-headers {{ add "x-frame-options" "DENY"; remove "x-upstream"; }} }} }}"#,
        up.addr()
    ));
    let resp = request(
        addr,
        "GET",
        "example.com",
        "/p",
        &[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-secret", "s"),
            ("forwarded", "for=6.6.6.6"),
        ],
        b"",
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-frame-options"), Some("DENY"));
    assert_eq!(resp.header("x-upstream"), None);
    let seen = up.last_request().expect("request");
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("127.0.0.1"),
        "client-supplied XFF is replaced"
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("example.com"));
    assert_eq!(
        seen.header("forwarded"),
        Some("for=127.0.0.1;proto=http;host=\"example.com\"")
    );
    assert_eq!(seen.header("x-env"), Some("prod"));
    assert_eq!(seen.header("x-secret"), None);
    let id = seen.header("x-request-id").expect("request id upstream");
    assert_eq!(resp.header("x-request-id"), Some(id), "same id both ways");
    assert_eq!(id.len(), 32);
}

#[test]
fn trusted_proxies_keep_the_chain() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&format!(
        r#"server {{ trusted-proxies "127.0.0.1"; }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    ));
    request(
        addr,
        "GET",
        "h",
        "/",
        &[
            ("x-forwarded-for", "203.0.113.5"),
            ("x-forwarded-proto", "https"),
        ],
        b"",
    );
    let seen = up.last_request().expect("request");
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.5, 127.0.0.1")
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
}

#[test]
fn round_robin_spreads_by_weight_and_hashing_sticks() {
    let a = MockUpstream::start("a");
    let b = MockUpstream::start("b");
    let (_p, addr) = start(&format!(
        r#"upstreams {{
    upstream "rr" {{ target "{a}" weight=2; target "{b}"; }}
    upstream "sticky" {{ target "{a}"; target "{b}"; load-balancing "consistent-hash"; hash-on "header" "x-user"; }}
}}
routes {{ route "rr" {{ matches {{ path-prefix "/rr"; }}; upstream "rr"; }}; route "sticky" {{ upstream "sticky"; }} }}"#,
        a = a.addr(),
        b = b.addr()
    ));
    for _ in 0..6 {
        get(addr, "h", "/rr");
    }
    assert_eq!((a.hits(), b.hits()), (4, 2), "weights 2:1");
    let target_of = |user: &str| {
        request(addr, "GET", "h", "/s", &[("x-user", user)], b"")
            .header("x-upstream")
            .map(str::to_owned)
    };
    for user in ["alice", "bob", "carol"] {
        let first = target_of(user);
        for _ in 0..5 {
            assert_eq!(target_of(user), first, "{user} sticks to one target");
        }
    }
}

#[test]
fn connect_failures_are_retried_on_another_target_within_max_attempts() {
    let up = MockUpstream::start("alive");
    let dead = free_addr();
    let (_p, addr) = start(&format!(
        r#"upstreams {{ upstream "u" {{ target "{dead}"; target "{}"; passive-health {{ enabled #false; }} }} }}
routes {{
    route "retry" {{ matches {{ path "/retry"; }}; upstream "u"; retry {{ max-attempts 2; min-retries-per-second 100; }} }}
    route "once" {{ upstream "u"; retry {{ max-attempts 1; }} }}
}}"#,
        up.addr()
    ));
    for _ in 0..4 {
        assert_eq!(
            get(addr, "h", "/retry").status,
            200,
            "a refused connect is retried elsewhere"
        );
    }
    // Round robin alternates, so without retries every other request meets the dead target.
    let responses: Vec<_> = (0..4).map(|_| get(addr, "h", "/once")).collect();
    let failed: Vec<_> = responses.iter().filter(|r| r.status == 502).collect();
    assert_eq!(
        failed.len(),
        2,
        "{:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let text = failed[0].text();
    assert!(
        text.contains("route: once") && text.contains("request-id:"),
        "{text}"
    );
}

#[test]
fn passive_health_ejects_a_failing_target() {
    let good = MockUpstream::start("good");
    let bad = MockUpstream::start("bad");
    bad.set_status(503);
    let (_p, addr) = start(&format!(
        r#"upstreams {{ upstream "u" {{ target "{}"; target "{}"; passive-health {{ consecutive-failures 2; ejection-time-ms 60000; }} }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        good.addr(),
        bad.addr()
    ));
    for _ in 0..10 {
        get(addr, "h", "/");
    }
    assert_eq!(bad.hits(), 2, "ejected after two consecutive 503s");
    assert_eq!(good.hits(), 8);
}

#[test]
fn upstream_read_timeout_gives_504_and_unreachable_gives_502() {
    let slow = MockUpstream::start("slow");
    slow.set_behaviour(Behaviour::Delay(Duration::from_secs(3)));
    let dead = free_addr();
    let (_p, addr) = start(&format!(
        r#"upstreams {{
    upstream "slow" {{ target "{}"; timeouts {{ read-ms 300; }} }}
    upstream "dead" {{ target "{dead}"; }}
}}
routes {{ route "slow" {{ matches {{ path "/slow"; }}; upstream "slow"; }}; route "dead" {{ upstream "dead"; }} }}"#,
        slow.addr()
    ));
    let t = Instant::now();
    let r = get(addr, "h", "/slow");
    assert_eq!(r.status, 504);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "answered at the read timeout, took {:?}",
        t.elapsed()
    );
    assert_eq!(get(addr, "h", "/").status, 502);
}

#[test]
fn request_limits_give_414_431_and_413() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&format!(
        r#"limits {{ max-uri-bytes 100; max-header-count 10; max-body-bytes 1000; }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }}; route "small" {{ priority 1; matches {{ path "/small"; }}; upstream "u"; limits {{ max-body-bytes 10; }} }} }}"#,
        up.addr()
    ));
    assert_eq!(get(addr, "h", &format!("/{}", "a".repeat(120))).status, 414);
    let many: Vec<(String, String)> = (0..12)
        .map(|i| (format!("x-h{i}"), "v".to_owned()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(request(addr, "GET", "h", "/", &many, b"").status, 431);
    assert_eq!(
        request(addr, "POST", "h", "/", &[], &[b'x'; 1001]).status,
        413
    );
    assert_eq!(
        request(addr, "POST", "h", "/", &[], &[b'x'; 1000]).status,
        200
    );
    assert_eq!(
        request(addr, "POST", "h", "/small", &[], &[b'x'; 11]).status,
        413,
        "route override"
    );
    let before = up.hits();
    let chunked = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3e8\r\n"
        .iter()
        .copied()
        .chain([b'y'; 1000])
        .chain(*b"\r\n3e8\r\n")
        .chain([b'y'; 1000])
        .chain(*b"\r\n0\r\n\r\n")
        .collect::<Vec<u8>>();
    let r = send_raw(addr, &chunked);
    assert!(
        matches!(r.as_ref().map(|r| r.status), Ok(413) | Err(_)),
        "chunked body over the limit is cut: {:?}",
        r.map(|r| r.status)
    );
    assert_eq!(
        up.requests()
            .iter()
            .skip(before)
            .filter(|r| r.body.len() > 1000)
            .count(),
        0,
        "never forwarded whole"
    );
}

#[test]
fn route_in_flight_cap_refuses_with_503() {
    let up = MockUpstream::start("slow");
    up.set_behaviour(Behaviour::Delay(Duration::from_millis(800)));
    let (_p, addr) = start(&format!(
        r#"upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; limits {{ max-in-flight-requests 1; }} }} }}"#,
        up.addr()
    ));
    let first = std::thread::spawn(move || get(addr, "h", "/").status);
    wait_until(
        Duration::from_secs(5),
        "first request reaches the upstream",
        || up.connections() > 0,
    );
    std::thread::sleep(Duration::from_millis(100));
    let second = get(addr, "h", "/");
    assert_eq!(second.status, 503);
    assert!(second.text().contains("too many requests in flight"));
    assert_eq!(first.join().unwrap(), 200);
}

#[test]
fn websocket_upgrades_are_refused_unless_the_route_allows_them() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&format!(
        r#"upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    ));
    let r = request(
        addr,
        "GET",
        "h",
        "/ws",
        &[
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ],
        b"",
    );
    assert_eq!(r.status, 403);
    assert_eq!(up.hits(), 0);
}

#[test]
fn settings_this_build_cannot_carry_out_are_refused_at_start() {
    let (code, err) = Proxy::fail_to_start(
        r#"listeners { listener "web" { address "127.0.0.1:1"; } }
upstreams { upstream "u" { target "127.0.0.1:2"; } }
agents { agent "waf" { transport { unix-socket "/run/waf.sock"; }; events "request-headers" "websocket-frame"; } }
filters { filter "per-ip" { type "rate-limit"; requests-per-second 5; } }
routes { route "r" { upstream "u"; filters "per-ip" "waf"; } }"#,
    );
    assert_eq!(code, Some(1));
    // Built-in filters are carried out: only the agent's event is listed.
    let listed = err.contains("agent \"waf\": the `websocket-frame` event")
        && !err.contains("built-in filters");
    assert!(err.contains("cannot carry out yet") && listed, "{err}");
}

#[test]
fn a_taken_address_is_reported_by_listener() {
    let taken = support::bind_loopback();
    let addr = taken.local_addr().unwrap();
    let (code, err) = Proxy::fail_to_start(&format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
upstreams {{ upstream "u" {{ target "127.0.0.1:2"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#
    ));
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!("listener \"web\" cannot bind {addr}")),
        "{err}"
    );
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let up = MockUpstream::start("slow");
    up.set_behaviour(Behaviour::Delay(Duration::from_millis(1500)));
    let (mut p, addr) = start(&format!(
        r#"server {{ graceful-shutdown-timeout-secs 10; }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    ));
    let inflight = std::thread::spawn(move || get(addr, "h", "/long"));
    wait_until(
        Duration::from_secs(5),
        "request reaches the upstream",
        || up.connections() > 0,
    );
    p.signal(15);
    std::thread::sleep(Duration::from_millis(200));
    // A new request during the drain is refused, not queued.
    if let Ok(r) = send_raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    ) {
        assert_eq!(r.status, 503);
    }
    let resp = inflight.join().unwrap();
    assert_eq!(resp.status, 200, "the in-flight request completes");
    let status = p
        .wait_exit(Duration::from_secs(10))
        .expect("exits after the drain");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sighup_does_not_kill_the_process() {
    let up = MockUpstream::start("u");
    let (p, addr) = start(&format!(
        r#"upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    ));
    // SIGHUP reloads (tests/reload.rs); here the file is unchanged, and the process must
    // simply keep serving.
    for _ in 0..3 {
        p.signal(1);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(get(addr, "h", "/").status, 200);
    }
    assert!(!p.stderr().contains("reload refused"), "{}", p.stderr());
}

#[test]
fn the_built_in_demo_answers_with_what_went_through() {
    let listen = free_addr();
    let upstream = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zentinel"))
        .arg("run")
        .current_dir(dir.path())
        .env("ZENTINEL_DEMO_LISTEN", listen.to_string())
        .env("ZENTINEL_DEMO_UPSTREAM", upstream.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "demo listens", || {
        std::net::TcpStream::connect(listen).is_ok()
    });
    let r = get(listen, "localhost", "/hello");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-zentinel-route"), Some("demo"));
    let id = r.header("x-request-id").expect("id");
    assert!(
        r.text().contains("Zentinel demo upstream") && r.text().contains(id),
        "{}",
        r.text()
    );
}

#[test]
fn h2c_listener_speaks_http2_with_prior_knowledge_and_http1() {
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "h2c" {{ address "{addr}"; protocol "h2c"; }} }}
observability {{ access-log {{ destination "off"; }} }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    let _p = Proxy::start(&config, &[addr]);
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
        ])
        .arg(format!("http://{addr}/x"))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200 2",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        get(addr, "h", "/y").status,
        200,
        "HTTP/1.1 on the same listener"
    );
}

/// A one-connection WebSocket "server": answers the upgrade with 101, then echoes bytes.
fn websocket_echo() -> SocketAddr {
    use std::io::{Read, Write};
    let listener = support::bind_loopback();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        // A real upstream takes a moment to answer. A 101 that arrives within the same
        // instant as the end of the (empty) request body loses a race inside Pingora 0.9's
        // HTTP/1 proxy loop (the upstream body pipe is closed as the upgrade happens), so
        // the upgraded bytes have nowhere to go: a known gap, see ARCHITECTURE.md.
        std::thread::sleep(Duration::from_millis(100));
        // RFC 6455's sample key and its accept value.
        let _ = s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
        let mut buf = [0u8; 64];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    addr
}

#[test]
fn websocket_upgrades_pass_through_on_routes_that_allow_them() {
    use std::io::{Read, Write};
    let ws = websocket_echo();
    let (p, addr) = start(&format!(
        r#"upstreams {{ upstream "ws" {{ target "{ws}"; }} }}
routes {{ route "ws" {{ upstream "ws"; websocket #true; }} }}"#
    ));
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            c.read(&mut byte).unwrap(),
            1,
            "connection closed during the handshake"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    c.write_all(b"ping-frame").unwrap();
    let mut echo = [0u8; 10];
    c.read_exact(&mut echo)
        .unwrap_or_else(|e| panic!("{e}; proxy stderr:\n{}", p.stderr()));
    assert_eq!(
        &echo, b"ping-frame",
        "bytes flow both ways after the upgrade"
    );
}

#[test]
fn the_route_deadline_bounds_the_whole_request() {
    let slow = MockUpstream::start("slow");
    slow.set_behaviour(Behaviour::Delay(Duration::from_secs(3)));
    let (_p, addr) = start(&format!(
        r#"upstreams {{ upstream "u" {{ target "{}"; timeouts {{ read-ms 30000; }} }} }}
routes {{ route "r" {{ upstream "u"; timeouts {{ total-ms 400; }} }} }}"#,
        slow.addr()
    ));
    let t = Instant::now();
    assert_eq!(get(addr, "h", "/").status, 504);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_millis(1500),
        "took {took:?}"
    );
}

#[test]
fn client_side_failures_do_not_eject_the_target() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&format!(
        r#"limits {{ max-body-bytes 100; }}
upstreams {{ upstream "u" {{ target "{}"; passive-health {{ consecutive-failures 1; ejection-time-ms 60000; }} }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    ));
    let chunked = [&b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nc8\r\n"[..], &[b'z'; 200], b"\r\n0\r\n\r\n"].concat();
    let _ = send_raw(addr, &chunked);
    assert_eq!(
        get(addr, "h", "/").status,
        200,
        "a too-large body is the client's fault, not the target's"
    );
}

#[test]
fn connection_caps_close_connections_beyond_them() {
    use support::RawConn;
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&format!(
        r#"limits {{ max-connections 3; max-connections-per-client 2; }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    ));
    // The harness's readiness probe connected once; wait until that slot is given back.
    std::thread::sleep(Duration::from_millis(200));
    let keep = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let open = |n: usize| -> Vec<RawConn> {
        (0..n)
            .map(|_| {
                let mut c = RawConn::connect(addr).unwrap();
                c.send(keep).unwrap();
                assert_eq!(c.read_response().unwrap().status, 200);
                c
            })
            .collect()
    };
    let held = open(2);
    let mut third = RawConn::connect(addr).unwrap();
    let _ = third.send(keep);
    assert!(
        third.closed_by_peer(Duration::from_secs(5)),
        "a third connection from one client is closed"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let again = open(2);
    assert_eq!(again.len(), 2, "slots come back when connections close");
}

#[test]
fn host_name_targets_are_resolved() {
    let up = MockUpstream::start("named");
    let (_p, addr) = start(&format!(
        r#"upstreams {{ upstream "u" {{ target "localhost:{}"; dns-refresh-ms 1000; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr().port()
    ));
    assert!(get(addr, "h", "/").text().contains("upstream=named"));
}

#[test]
fn slow_headers_are_cut_at_the_header_read_deadline() {
    use std::io::Write;
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; header-read-timeout-ms 800; }} }}
observability {{ access-log {{ destination "off"; }} }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    let _p = Proxy::start(&config, &[addr]);
    // A client trickling its headers, a byte every 200 ms: a per-read timeout would never fire.
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    let mut cut = None;
    for b in b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n".iter() {
        if slow.write_all(&[*b]).is_err() {
            cut = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let cut = cut.expect("the slow client is cut off");
    assert!(cut < Duration::from_millis(2500), "cut after {cut:?}");
    assert_eq!(up.hits(), 0);
    // A normal client is not affected, even on a connection kept open longer than the deadline.
    let mut c = support::RawConn::connect(addr).unwrap();
    c.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(c.read_response().unwrap().status, 200);
    std::thread::sleep(Duration::from_millis(1000));
    c.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(
        c.read_response().unwrap().status,
        200,
        "keep-alive after the deadline"
    );
    // A later request of a kept-alive connection is held to the deadline too, from its first
    // byte: a trickled third request is cut.
    let started = Instant::now();
    let mut cut = None;
    for b in b"GET /third HTTP/1.1\r\nHost: h\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n".iter() {
        if c.send(&[*b]).is_err() {
            cut = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let cut = cut.expect("the slow keep-alive request is cut off");
    assert!(cut < Duration::from_millis(2500), "cut after {cut:?}");
    assert_eq!(up.hits(), 2);
}

#[test]
fn upstream_statuses_listed_in_retry_on_are_retried_on_another_target() {
    let good = MockUpstream::start("good");
    let bad = MockUpstream::start("bad");
    bad.set_status(503);
    let (_p, addr) = start(&format!(
        r#"upstreams {{ upstream "u" {{ target "{}"; target "{}"; passive-health {{ enabled #false; }} }} }}
routes {{
    route "retry" {{ matches {{ path-prefix "/retry"; }}; upstream "u"; retry {{ max-attempts 2; retry-on "503"; min-retries-per-second 100; }} }}
    route "post" {{ matches {{ path-prefix "/post"; }}; upstream "u"; retry {{ max-attempts 2; retry-on "503"; min-retries-per-second 100; non-idempotent #true; }} }}
    route "plain" {{ upstream "u"; retry {{ max-attempts 2; retry-on "502"; }} }}
}}"#,
        good.addr(),
        bad.addr()
    ));
    for _ in 0..6 {
        let r = get(addr, "h", "/retry");
        assert_eq!(r.status, 200, "a 503 is retried on the other target");
        assert_eq!(r.header("x-upstream"), Some("good"));
    }
    assert!(
        bad.hits() >= 3,
        "the failing target was tried: {}",
        bad.hits()
    );
    // Only the listed statuses are retried: a 503 on a route that retries 502 reaches the client.
    let statuses: Vec<u16> = (0..4).map(|_| get(addr, "h", "/plain").status).collect();
    assert!(statuses.contains(&503), "{statuses:?}");
    // A POST is not retried unless the route says `non-idempotent #true`; its body is resent whole.
    let posts: Vec<u16> = (0..4)
        .map(|_| request(addr, "POST", "h", "/retry", &[], b"payload").status)
        .collect();
    assert!(
        posts.contains(&503),
        "POST not retried by default: {posts:?}"
    );
    for _ in 0..4 {
        assert_eq!(
            request(addr, "POST", "h", "/post", &[], b"payload").status,
            200
        );
    }
    assert!(
        good.requests()
            .iter()
            .filter(|r| r.path == "/post")
            .all(|r| r.body == b"payload"),
        "the retried body arrives intact"
    );
}

/// A retry replays the body from Pingora's retry buffer through the body filters: those bytes
/// were counted already, so a body over half the route's limit is not refused as too large
/// on its second try.
#[test]
fn a_retried_body_is_counted_once_against_the_limit() {
    let good = MockUpstream::start("good");
    let bad = MockUpstream::start("bad");
    bad.set_status(503);
    let (_p, addr) = start(&format!(
        r#"upstreams {{ upstream "u" {{ target "{}"; target "{}"; passive-health {{ enabled #false; }} }} }}
routes {{
    route "post" {{ upstream "u"; limits {{ max-body-bytes 50000; }}; retry {{ max-attempts 2; retry-on "503"; min-retries-per-second 100; non-idempotent #true; }} }}
}}"#,
        good.addr(),
        bad.addr()
    ));
    let body = vec![b'x'; 40_000];
    for _ in 0..4 {
        let r = request(addr, "POST", "h", "/post", &[], &body);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(bad.hits() >= 1, "the failing target was tried");
    assert!(good.requests().iter().all(|r| r.body == body));
    // Over the limit is still refused, retried or not.
    let r = request(addr, "POST", "h", "/post", &[], &vec![b'x'; 50_001]);
    assert_eq!(r.status, 413);
    // Found while the body streamed upstream: the answer still names no upstream address.
    let chunked = [("Transfer-Encoding", "chunked")];
    let mut body = format!("{:x}\r\n", 50_001).into_bytes();
    body.extend(vec![b'x'; 50_001]);
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = request(addr, "POST", "h", "/post", &chunked, &body);
    assert_eq!(r.status, 413);
    assert!(r.text().contains("request body too large"), "{}", r.text());
    for up in [&good, &bad] {
        let port = up.addr().port().to_string();
        assert!(!r.text().contains(&port), "{}", r.text());
    }
}

#[test]
fn a_try_past_its_per_try_timeout_is_retried_when_504_is_listed() {
    let slow = MockUpstream::start("slow");
    slow.set_behaviour(Behaviour::Delay(Duration::from_secs(3)));
    let good = MockUpstream::start("good");
    let (_p, addr) = start(&format!(
        r#"upstreams {{ upstream "u" {{ target "{}"; target "{}"; passive-health {{ enabled #false; }} }} }}
routes {{ route "r" {{ upstream "u"; timeouts {{ total-ms 5000; }}
    retry {{ max-attempts 2; retry-on "504"; per-try-timeout-ms 300; min-retries-per-second 100; }} }} }}"#,
        slow.addr(),
        good.addr()
    ));
    for _ in 0..4 {
        let t = Instant::now();
        let r = get(addr, "h", "/");
        assert_eq!(r.status, 200);
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "took {:?}",
            t.elapsed()
        );
    }
    assert!(slow.connections() >= 2, "the slow target was tried");
}

#[test]
fn a_trace_is_continued_only_from_a_trusted_proxy() {
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let headers = [("traceparent", incoming), ("tracestate", "vendor=1")];
    for trusted in [false, true] {
        let up = MockUpstream::start("u");
        let server = if trusted {
            r#"server { trusted-proxies "127.0.0.1/32"; }"#
        } else {
            ""
        };
        let (_p, addr) = start(&format!(
            r#"{server}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
            up.addr()
        ));
        let r = request(addr, "GET", "h", "/", &headers, b"");
        let seen = up.last_request().unwrap();
        let sent = seen.header("traceparent").unwrap().to_owned();
        let trace_id = sent.split('-').nth(1).unwrap().to_owned();
        assert_eq!(sent.len(), 55, "{sent}");
        assert_ne!(sent, incoming, "this hop has its own span");
        assert_eq!(
            r.header("x-request-id"),
            Some(trace_id.as_str()),
            "the trace ID"
        );
        assert_eq!(seen.header("x-request-id"), Some(trace_id.as_str()));
        if trusted {
            assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "continued");
            assert_eq!(seen.header("tracestate"), Some("vendor=1"));
        } else {
            assert_ne!(
                trace_id, "4bf92f3577b34da6a3ce929d0e0e4736",
                "not from a client"
            );
            assert_eq!(seen.header("tracestate"), None);
        }
    }
}
