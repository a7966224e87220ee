//! Bodies for agents, end to end: buffered whole or streamed chunk by chunk, replaced by an
//! agent, refused by an agent, and over an agent's limit under both failure modes — for the
//! request body (before it reaches the upstream) and the response body.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use support::agent::{BodyScript, MockAgent, proxy_config};
use support::{MockUpstream, Proxy, free_addr, request, wait_until};

fn start(agent: &MockAgent, agent_extra: &str, routes: &str) -> (Proxy, SocketAddr, MockUpstream) {
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let events = r#""request-headers" "request-body" "response-body""#;
    let config = proxy_config(addr, up.addr(), agent.socket(), events, agent_extra, routes);
    let p = Proxy::start(&config, &[addr]);
    (p, addr, up)
}

const GUARDED: &str = r#"route "g" { upstream "u"; filters "a"; }"#;

fn post(addr: SocketAddr, body: &[u8]) -> support::Response {
    request(addr, "POST", "h.test", "/p", &[], body)
}

#[test]
fn a_buffered_request_body_is_inspected_whole_before_the_upstream_gets_it() {
    let agent = MockAgent::start();
    agent.set_request_body(BodyScript {
        block_if_contains: Some("evil"),
        replace: None,
    });
    let (_p, addr, up) = start(&agent, "", GUARDED);
    let r = post(addr, b"hello evil world");
    assert_eq!((r.status, r.text().as_str()), (403, "body refused\n"));
    let r = post(addr, b"hello kind world");
    assert_eq!(r.status, 200);
    let seen = up.last_request().unwrap();
    assert_eq!(seen.body, b"hello kind world");
    let chunks = agent.request_chunks();
    let last = chunks.last().unwrap();
    assert_eq!(
        last.data.as_bytes(),
        b"hello kind world",
        "one chunk, the whole body"
    );
    assert!(last.is_last);
    assert_eq!((last.total_size, last.bytes_received), (Some(16), 16));
    // A request without a body costs no body call.
    let before = agent.request_chunks().len();
    assert_eq!(request(addr, "GET", "h.test", "/", &[], b"").status, 200);
    assert_eq!(agent.request_chunks().len(), before);
}

#[test]
fn a_streamed_request_body_chunk_can_be_replaced() {
    let agent = MockAgent::start();
    agent.set_request_body(BodyScript {
        block_if_contains: None,
        replace: Some(("secret", "[redacted]")),
    });
    let (_p, addr, up) = start(&agent, r#"request-body-mode "stream""#, GUARDED);
    let r = post(addr, b"my secret data");
    assert_eq!(r.status, 200);
    let seen = up.last_request().unwrap();
    assert_eq!(seen.body, b"my [redacted] data");
    assert_eq!(
        seen.header("content-length"),
        None,
        "re-framed: the length changed"
    );
    assert_eq!(seen.header("transfer-encoding"), Some("chunked"));
}

#[test]
fn a_body_over_the_agents_limit_follows_the_failure_mode() {
    let agent = MockAgent::start();
    let routes = r#"
        route "closed" { matches { path-prefix "/c"; }; upstream "u"; filters "a"; failure-mode "closed"; }
        route "open" { matches { path-prefix "/o"; }; upstream "u"; filters "a"; failure-mode "open"; }"#;
    let (p, addr, up) = start(&agent, "max-request-body-bytes 8", routes);
    let body = b"0123456789abcdef";
    let r = request(addr, "POST", "h.test", "/c", &[], body);
    assert_eq!(r.status, 413);
    let r = request(addr, "POST", "h.test", "/o", &[], body);
    assert_eq!(r.status, 200);
    assert_eq!(
        up.last_request().unwrap().body,
        body,
        "fail-open forwards it whole"
    );
    wait_until(Duration::from_secs(5), "audit lines", || {
        p.stderr().contains("fail_open") && p.stderr().contains("fail_closed")
    });
    assert!(p.stderr().contains("body-too-large"));
}

#[test]
fn a_response_body_can_be_replaced_or_cut_off() {
    let agent = MockAgent::start();
    agent.set_response_body(BodyScript {
        block_if_contains: Some("leak"),
        replace: Some(("internal", "[hidden]")),
    });
    let (_p, addr, up) = start(&agent, "", GUARDED);
    up.set_body(Some(b"an internal detail\n"));
    let r = request(addr, "GET", "h.test", "/", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "an [hidden] detail\n"));
    assert_eq!(agent.response_chunks().last().unwrap().bytes_sent, 19);

    // A refused body never reaches the client: the agent's answer replaces the response
    // when its headers have not left yet (they usually travel with the first chunk),
    // otherwise the stream is cut before the refused chunk.
    up.set_body(Some(b"a leak of secrets\n"));
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(!text.contains("leak"), "{text}");
    if text.starts_with("HTTP/1.1 200") {
        assert!(
            !text.ends_with("0\r\n\r\n"),
            "no clean end of the body: {text}"
        );
    } else {
        assert!(text.starts_with("HTTP/1.1 403"), "{text}");
        assert!(text.ends_with("body refused\n"), "{text}");
    }
}

#[test]
fn a_body_judged_by_an_agent_is_never_replayed_by_a_retry() {
    let agent = MockAgent::start();
    let (bad, good) = (MockUpstream::start("bad"), MockUpstream::start("good"));
    bad.set_status(502);
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }} }}
upstreams {{ upstream "u" {{ target "{}"; target "{}"; }} }}
agents {{ agent "a" {{ transport {{ unix-socket "{}"; }}; events "request-body"; }} }}
routes {{ route "g" {{ upstream "u"; filters "a";
    retry {{ max-attempts 2; retry-on "502"; non-idempotent #true; }} }} }}"#,
        bad.addr(),
        good.addr(),
        agent.socket().display()
    );
    let _p = Proxy::start(&config, &[addr]);
    let statuses: Vec<u16> = (0..2).map(|_| post(addr, b"judged body").status).collect();
    // Round robin sends one of the two to the failing target: it is answered as it failed,
    // not replayed with the bytes the agent saw before any replacement.
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [200, 502], "{statuses:?}");
    assert_eq!(bad.hits() + good.hits(), 2, "no retry");
}
