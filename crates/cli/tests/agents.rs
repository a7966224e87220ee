//! Agents end to end: the proxy as a child process, agents on Unix sockets in the test
//! process. Verdicts (block, redirect, challenge, header edits), true metadata, failure
//! modes, saturation, the breaker, an agent dying and coming back, and the audit trail.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use support::agent::{MockAgent, Script, THREE_ROUTES, proxy_config};
use support::{MockUpstream, Proxy, free_addr, get, request, wait_until};
use zentinel_agent_protocol::HeaderOp;

const GUARDED: &str =
    r#"route "guarded" { matches { path-prefix "/"; }; upstream "u"; filters "a"; }"#;

fn start(agent: &MockAgent, extra: &str, routes: &str) -> (Proxy, SocketAddr, MockUpstream) {
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let events = r#""request-headers" "response-headers" "request-complete""#;
    let config = proxy_config(addr, up.addr(), agent.socket(), events, extra, routes);
    let p = Proxy::start(&config, &[addr]);
    (p, addr, up)
}

/// The audit lines (JSON) written so far.
fn audit_lines(p: &Proxy) -> Vec<serde_json::Value> {
    p.stderr()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["log"] == "audit")
        .collect()
}

#[test]
fn verdicts_block_redirect_challenge_and_allow_with_header_edits() {
    let agent = MockAgent::start();
    agent.set_for_path(
        "/blocked",
        Script::Block {
            status: 451,
            body: "not here\n",
            rule: "r-1",
        },
    );
    agent.set_for_path("/login", Script::Redirect("https://login.test/"));
    agent.set_for_path("/prove", Script::Challenge);
    agent.set_request_edits(vec![
        HeaderOp::set("x-user", "42"),
        HeaderOp::remove("cookie"),
    ]);
    agent.set_response_edits(vec![HeaderOp::add("x-checked", "yes")]);
    let (p, addr, up) = start(&agent, "", GUARDED);

    let r = get(addr, "h.test", "/blocked");
    assert_eq!((r.status, r.text().as_str()), (451, "not here\n"));
    assert!(r.header("x-request-id").is_some());
    let r = get(addr, "h.test", "/login");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://login.test/"));
    let r = get(addr, "h.test", "/prove");
    assert_eq!(r.status, 403, "a challenge without a challenge page blocks");
    assert_eq!(up.hits(), 0, "no verdict but allow reaches the upstream");

    let r = request(addr, "GET", "h.test", "/ok", &[("cookie", "s=1")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-checked"), Some("yes"));
    let seen = up.last_request().unwrap();
    assert_eq!(seen.header("x-user"), Some("42"));
    assert_eq!(seen.header("cookie"), None);

    // One audit line for the block, with its rule, the same trace ID as the response.
    let blocked_id = get(addr, "h.test", "/blocked")
        .header("x-request-id")
        .map(str::to_owned)
        .unwrap();
    wait_until(Duration::from_secs(5), "audit line", || {
        audit_lines(&p)
            .iter()
            .any(|l| l["request_id"] == blocked_id.as_str())
    });
    let lines: Vec<_> = audit_lines(&p)
        .into_iter()
        .filter(|l| l["request_id"] == blocked_id.as_str())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["decision"], "block");
    assert_eq!(lines[0]["agent"], "a");
    assert_eq!(lines[0]["rule_ids"][0], "r-1");
    assert_eq!(lines[0]["status"], 451);
    assert!(lines[0]["latency_ms"].as_f64().is_some());
    // The access line of the same request carries the same ID and names the call.
    let access = |p: &Proxy| {
        p.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["request_id"] == blocked_id.as_str())
            .collect::<Vec<_>>()
    };
    wait_until(Duration::from_secs(5), "access line", || {
        !access(&p).is_empty()
    });
    let access = access(&p);
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(access[0]["status"], 451);
    assert_eq!(access[0]["agents"][0]["agent"], "a");
    assert_eq!(access[0]["agents"][0]["outcome"], "block");
    assert!(access[0]["agents"][0]["ms"].as_f64().is_some());
}

#[test]
fn agents_receive_true_metadata_response_headers_and_completion() {
    let agent = MockAgent::start();
    let (p, addr, up) = start(&agent, r#"config { mode "strict"; }"#, GUARDED);
    let r = request(
        addr,
        "POST",
        "h.test",
        "/a/b?x=1",
        &[("x-multi", "1")],
        b"hello",
    );
    assert_eq!(r.status, 200);
    let ev = agent.requests().pop().unwrap();
    assert_eq!((ev.method.as_str(), ev.uri.as_str()), ("POST", "/a/b?x=1"));
    let m = &ev.metadata;
    assert_eq!(m.client_ip, "127.0.0.1", "address only, no port");
    assert!(m.client_port > 0);
    assert_eq!(m.peer_ip, "127.0.0.1");
    assert_eq!(m.protocol, "HTTP/1.1");
    assert_eq!(m.route_id, "guarded");
    assert_eq!(m.upstream_id.as_deref(), Some("u"));
    assert_eq!(m.correlation_id, ev.correlation_id);
    assert_eq!(r.header("x-request-id"), Some(m.request_id.as_str()));
    assert_eq!(ev.headers["x-multi"], ["1"]);
    // The access line: the target that answered, the upstream's time, the body sizes.
    let id = m.request_id.clone();
    let line = || {
        p.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["request_id"] == id.as_str())
    };
    wait_until(Duration::from_secs(5), "the access line", || {
        line().is_some()
    });
    let line = line().unwrap();
    assert_eq!(line["target"], up.addr().to_string().as_str(), "{line}");
    assert!(
        line["upstream_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{line}"
    );
    assert_eq!(
        (line["bytes_in"].as_u64(), line["attempts"].as_u64()),
        (Some(5), Some(1))
    );
    assert_eq!(
        agent.configs()[0]["mode"],
        "strict",
        "config {{}} sent at handshake"
    );
    wait_until(
        Duration::from_secs(5),
        "response and completion events",
        || !agent.responses().is_empty() && !agent.completes().is_empty(),
    );
    assert_eq!(agent.responses()[0].status, 200);
    let done = agent.completes().pop().unwrap();
    assert_eq!((done.status, done.request_body_size), (200, 5));
    assert_eq!(done.upstream_attempts, 1);
}

#[test]
fn a_response_verdict_replaces_the_upstream_answer() {
    let agent = MockAgent::start();
    agent.on_response_status(
        500,
        Script::Block {
            status: 502,
            body: "hidden\n",
            rule: "leak",
        },
    );
    let (_p, addr, up) = start(&agent, "", GUARDED);
    up.set_status(500);
    let r = get(addr, "h.test", "/");
    assert_eq!((r.status, r.text().as_str()), (502, "hidden\n"));
    up.set_status(200);
    assert_eq!(get(addr, "h.test", "/").status, 200);
}

fn timed(addr: SocketAddr, path: &str) -> (u16, Duration) {
    let t = Instant::now();
    let r = get(addr, "h.test", path);
    (r.status, t.elapsed())
}

#[test]
fn saturation_gives_the_failure_mode_at_once_instead_of_queueing() {
    let agent = MockAgent::start();
    agent.set_default(Script::Delay(Duration::from_millis(1500)));
    let (p, addr, _up) = start(&agent, "timeout-ms 5000; max-concurrent-calls 4", GUARDED);
    let clients: Vec<_> = (0..20)
        .map(|_| thread::spawn(move || timed(addr, "/")))
        .collect();
    let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 503).collect();
    let served: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!((refused.len(), served.len()), (16, 4), "{results:?}");
    for (_, t) in refused {
        assert!(*t < Duration::from_millis(1000), "refused at once: {t:?}");
    }
    assert!(agent.peak_in_flight() <= 4);
    assert!(
        audit_lines(&p)
            .iter()
            .any(|l| l["reason"] == "saturated" && l["status"] == 503)
    );
}

#[test]
fn the_breaker_fails_fast_then_probes_and_closes() {
    let agent = MockAgent::start();
    agent.set_default(Script::Delay(Duration::from_millis(400)));
    let (p, addr, _up) = start(
        &agent,
        "timeout-ms 100; circuit-breaker { failure-threshold 2; success-threshold 1; timeout-seconds 1; }",
        GUARDED,
    );
    assert_eq!(timed(addr, "/").0, 504);
    assert_eq!(timed(addr, "/").0, 504);
    // Open: no call reaches the agent, the answer is immediate.
    let seen = agent.requests().len();
    let (status, t) = timed(addr, "/");
    assert_eq!(status, 503);
    assert!(t < Duration::from_millis(90), "fails fast: {t:?}");
    assert_eq!(agent.requests().len(), seen);
    assert!(
        audit_lines(&p)
            .iter()
            .any(|l| l["reason"] == "breaker-open")
    );
    // After timeout-seconds one probe goes through; its success closes the breaker.
    agent.set_default(Script::Allow);
    thread::sleep(Duration::from_millis(1100));
    assert_eq!(timed(addr, "/").0, 200);
    assert_eq!(timed(addr, "/").0, 200);
}

#[test]
fn an_agent_that_dies_and_comes_back_is_reconnected_without_failing_other_routes() {
    let agent = MockAgent::start();
    let no_breaker = "timeout-ms 200; circuit-breaker { failure-threshold 1000; }";
    let (_p, addr, _up) = start(&agent, no_breaker, THREE_ROUTES);
    assert_eq!(timed(addr, "/closed").0, 200);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut statuses = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
                statuses.push(timed(addr, "/plain").0);
                thread::sleep(Duration::from_millis(5));
            }
            statuses
        })
    };
    agent.stop();
    let (status, t) = timed(addr, "/closed");
    assert_eq!(status, 503, "unreachable agent, fail-closed route");
    assert!(t < Duration::from_millis(300));
    assert_eq!(timed(addr, "/open").0, 200);
    agent.restart();
    wait_until(Duration::from_secs(5), "the proxy reconnects", || {
        timed(addr, "/closed").0 == 200
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let statuses = traffic.join().unwrap();
    assert!(!statuses.is_empty());
    assert!(
        statuses.iter().all(|s| *s == 200),
        "the route without the agent never failed: {statuses:?}"
    );
}

#[test]
fn a_client_that_goes_away_cancels_its_calls_at_the_agent() {
    let agent = MockAgent::start();
    agent.set_default(Script::Hang);
    let (_p, addr, up) = start(&agent, "timeout-ms 10000", GUARDED);
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut c, b"GET / HTTP/1.1\r\nHost: h.test\r\n\r\n").unwrap();
    wait_until(Duration::from_secs(5), "the call reaches the agent", || {
        agent.in_flight() == 1
    });
    drop(c);
    // Long before the call's own 10 s deadline, the agent has been told to stop.
    wait_until(Duration::from_secs(3), "the call is cancelled", || {
        agent.in_flight() == 0
    });
    assert_eq!(up.hits(), 0);
}

#[test]
fn error_log_lines_of_a_request_carry_its_trace_id_and_route() {
    let agent = MockAgent::start();
    // A block with a 3xx status breaks the protocol: the proxy logs it, within the request.
    agent.set_default(Script::Block {
        status: 302,
        body: "",
        rule: "bad",
    });
    let (p, addr, _up) = start(&agent, "", GUARDED);
    let r = get(addr, "h.test", "/");
    assert_eq!(r.status, 503);
    let id = r.header("x-request-id").unwrap().to_owned();
    wait_until(Duration::from_secs(5), "the warning", || {
        p.stderr().contains("agent answer refused")
    });
    let line = p
        .stderr()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "agent answer refused")
        .unwrap();
    assert_eq!(line["span"]["name"], "request", "{line}");
    assert_eq!(line["span"]["request_id"], id.as_str(), "{line}");
    assert_eq!(line["span"]["route"], "guarded", "{line}");
}
