//! The reference agents behind the proxy, and agents that break the rules: protocol abuse
//! (garbage, an oversize frame, an unknown type, a wrong correlation ID), an agent missing at
//! start-up, a handshake refused for a bad `config {}`. Each affects only its own connection
//! and the routes that use the agent, as their failure mode says; the proxy keeps serving.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use support::agent::{InProcess, proxy_config};
use support::{MockUpstream, Proxy, free_addr, get, request, wait_until};
use zentinel_agent_chaos::{Mode, Script};

/// `/plain` without the agent, everything else fail-closed through it.
const ROUTES: &str = r#"
    route "plain" { matches { path-prefix "/plain"; }; upstream "u"; }
    route "guarded" { matches { path-prefix "/"; }; upstream "u"; filters "a"; failure-mode "closed"; }"#;

fn start(sock: &Path, agent_extra: &str) -> (Proxy, SocketAddr, MockUpstream) {
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let extra =
        format!("timeout-ms 300; circuit-breaker {{ failure-threshold 1000; }}; {agent_extra}");
    let config = proxy_config(
        addr,
        up.addr(),
        sock,
        r#""request-headers""#,
        &extra,
        ROUTES,
    );
    let p = Proxy::start(&config, &[addr]);
    (p, addr, up)
}

fn with_mode(addr: SocketAddr, mode: &str) -> u16 {
    request(addr, "GET", "h.test", "/", &[("x-chaos-mode", mode)], b"").status
}

#[test]
fn protocol_abuse_closes_only_that_connection_and_the_proxy_keeps_serving() {
    let agent = InProcess::start(|l| {
        zentinel_agent_chaos::run(l, Script::new(Mode::Allow).with_per_request(true))
    });
    let (mut p, addr, _up) = start(agent.socket(), "");
    assert_eq!(with_mode(addr, "allow"), 200);
    for (mode, status) in [
        ("garbage", 503),
        ("oversize", 503),
        ("unknown-type", 503),
        // The real answer never comes: the call times out.
        ("wrong-correlation", 504),
    ] {
        assert_eq!(with_mode(addr, mode), status, "{mode}");
        assert_eq!(get(addr, "h.test", "/plain").status, 200, "after {mode}");
        wait_until(Duration::from_secs(5), "the agent serves again", || {
            with_mode(addr, "allow") == 200
        });
    }
    assert!(
        p.wait_exit(Duration::ZERO).is_none(),
        "the proxy is still running"
    );
    let err = p.stderr();
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("protocol-error"),
        "counted as protocol errors: {err}"
    );
}

#[test]
fn the_denylist_agent_blocks_by_path_and_by_the_true_client_address() {
    let agent = InProcess::start(|l| {
        zentinel_agent_denylist::run(l, zentinel_agent_denylist::DenylistAgent::default())
    });
    let rules = r#"config {
        rule { id "no-admin"; path-prefix "/admin"; }
        rule { id "loopback-probe"; client-ip "127.0.0.0/8"; header "x-probe"; }
    }"#;
    let (p, addr, up) = start(agent.socket(), rules);
    assert_eq!(get(addr, "h.test", "/admin/users").status, 403);
    let r = request(addr, "GET", "h.test", "/x", &[("x-probe", "1")], b"");
    assert_eq!(r.status, 403, "client-ip comes from the proxy's metadata");
    assert_eq!(get(addr, "h.test", "/x").status, 200);
    assert_eq!(up.hits(), 1);
    wait_until(Duration::from_secs(5), "audit lines with rule IDs", || {
        let err = p.stderr();
        err.contains(r#""rule_ids":["no-admin"]"#)
            && err.contains(r#""rule_ids":["loopback-probe"]"#)
    });
}

#[test]
fn the_echo_agent_adds_headers_from_its_config() {
    let agent = InProcess::start(|l| {
        zentinel_agent_echo::run(l, zentinel_agent_echo::EchoAgent::new("echo"))
    });
    let (_p, addr, up) = start(
        agent.socket(),
        r#"config { request-headers { x-demo "1"; }; response-headers { x-seen-by "echo"; } }"#,
    );
    let r = get(addr, "h.test", "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-seen-by"), Some("echo"));
    let seen = up.last_request().unwrap();
    assert_eq!(seen.header("x-demo"), Some("1"));
    assert_eq!(seen.header("x-echo-agent"), Some("echo"));
    assert_eq!(seen.header("x-echo-client-ip"), Some("127.0.0.1"));
}

#[test]
fn an_agent_missing_at_start_up_is_waited_for_then_reached_when_it_appears() {
    let mut agent = InProcess::unstarted();
    let (p, addr, _up) = start(agent.socket(), "handshake-timeout-ms 200");
    p.wait_stderr("agent not reachable at start-up", Duration::from_secs(5));
    assert_eq!(
        get(addr, "h.test", "/").status,
        503,
        "fail-closed while it is missing"
    );
    assert_eq!(get(addr, "h.test", "/plain").status, 200);
    agent.serve(|l| zentinel_agent_chaos::run(l, Script::new(Mode::Allow)));
    wait_until(Duration::from_secs(5), "the proxy connects", || {
        get(addr, "h.test", "/").status == 200
    });
}

#[test]
fn a_handshake_refused_for_a_bad_config_makes_the_agent_unavailable() {
    let agent = InProcess::start(|l| {
        zentinel_agent_denylist::run(l, zentinel_agent_denylist::DenylistAgent::default())
    });
    let (p, addr, _up) = start(
        agent.socket(),
        r#"handshake-timeout-ms 300; config { rule { id "bad"; client-ip "not-an-address"; } }"#,
    );
    assert_eq!(get(addr, "h.test", "/").status, 503);
    assert_eq!(get(addr, "h.test", "/plain").status, 200);
    wait_until(Duration::from_secs(5), "the refusal is logged", || {
        p.stderr().contains("not-an-address")
    });
}

#[test]
fn a_grpc_agent_decides_like_a_unix_socket_one_and_is_reconnected() {
    let agent = support::agent::MockAgent::start_grpc();
    agent.set_for_path(
        "/blocked",
        support::agent::Script::Block {
            status: 403,
            body: "no\n",
            rule: "g-1",
        },
    );
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; audit-log {{ destination "stderr"; }} }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
agents {{ agent "a" {{ transport {{ grpc "{}"; }}; events "request-headers"; timeout-ms 300
    circuit-breaker {{ failure-threshold 1000; }} }} }}
routes {{ {ROUTES} }}"#,
        up.addr(),
        agent.grpc_addr()
    );
    let _p = Proxy::start(&config, &[addr]);
    assert_eq!(get(addr, "h.test", "/").status, 200);
    assert_eq!(get(addr, "h.test", "/blocked").status, 403);
    let m = agent.requests().pop().unwrap().metadata;
    assert_eq!(m.route_id, "guarded");
    agent.stop();
    assert_eq!(
        get(addr, "h.test", "/").status,
        503,
        "unreachable, fail-closed"
    );
    assert_eq!(get(addr, "h.test", "/plain").status, 200);
    agent.restart();
    wait_until(
        Duration::from_secs(5),
        "the proxy reconnects over gRPC",
        || get(addr, "h.test", "/").status == 200,
    );
}
