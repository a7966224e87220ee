#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

//! End to end: active health checks take a failing target out of selection and bring it back.
//!
//! Every test uses `interval-ms 100; timeout-ms 50; healthy-threshold 2; unhealthy-threshold 2`,
//! no passive health (so only the active checks can take a target out) and no retries (so a
//! request that meets a broken target fails visibly instead of being retried elsewhere).

pub mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{MockUpstream, Proxy, free_addr, get, wait_until};

/// Probe interval of the tests.
const INTERVAL: Duration = Duration::from_millis(100);
/// Consecutive probes that flip a target, either way.
const THRESHOLD: u32 = 2;
/// How long a target may take to leave or rejoin selection: two probe rounds of the
/// threshold (2 × 100 ms × 2 = 400 ms, covering a probe just missed), plus margin for a busy
/// test machine.
const BOUND: Duration = Duration::from_millis(1500);

/// A proxy on a fresh port with `body` after one listener; the error log at `info`, so the
/// health transitions show on stderr.
fn start(body: &str) -> (Proxy, SocketAddr) {
    let addr = free_addr();
    let config = format!(
        "listeners {{ listener \"web\" {{ address \"{addr}\"; }} }}\nobservability {{ access-log {{ destination \"off\"; }}; error-log {{ level \"info\"; }} }}\n{body}"
    );
    (Proxy::start(&config, &[addr]), addr)
}

/// Upstream "u" with `targets` and a health check probing with `probe` (`tcp` or `http …`).
fn checked(targets: &[SocketAddr], probe: &str) -> String {
    assert!(BOUND > INTERVAL * THRESHOLD * 2);
    let targets: String = targets
        .iter()
        .map(|t| format!("target \"{t}\"; "))
        .collect();
    format!(
        r#"upstreams {{ upstream "u" {{ {targets}
    health-check {{ {probe}; interval-ms {}; timeout-ms 50; healthy-threshold {THRESHOLD}; unhealthy-threshold {THRESHOLD}; }}
    passive-health {{ enabled #false; }} }} }}
routes {{ route "r" {{ upstream "u"; retry {{ max-attempts 1; }} }} }}"#,
        INTERVAL.as_millis()
    )
}

/// `n` requests through the proxy: status and the `x-upstream` that answered, in order.
fn traffic(addr: SocketAddr, n: usize) -> Vec<(u16, String)> {
    (0..n)
        .map(|_| {
            let r = get(addr, "h", "/app");
            (r.status, r.header("x-upstream").unwrap_or("-").to_owned())
        })
        .collect()
}

fn all_from(seen: &[(u16, String)], name: &str) -> bool {
    seen.iter().all(|(s, u)| *s == 200 && u == name)
}

/// Traffic spreads over `a` and `b`; `break_b` makes `b` fail its probes and it leaves
/// selection within the bound, with no failed request afterwards; `fix_b` makes it pass and
/// it gets traffic again within the bound.
fn leaves_and_rejoins(probe: &str, break_b: impl Fn(&MockUpstream), fix_b: impl Fn(&MockUpstream)) {
    let a = MockUpstream::start("a");
    let b = MockUpstream::start("b");
    let (p, addr) = start(&checked(&[a.addr(), b.addr()], probe));
    let seen = traffic(addr, 4);
    assert!(
        seen.iter().all(|(s, _)| *s == 200)
            && seen.iter().filter(|(_, u)| u == "a").count() == 2
            && seen.iter().filter(|(_, u)| u == "b").count() == 2,
        "round robin over both targets: {seen:?}"
    );

    break_b(&b);
    // Round robin alternates, so four requests in a row all answered by `a` mean `b` is out.
    wait_until(BOUND, "b to leave selection", || {
        all_from(&traffic(addr, 4), "a")
    });
    let after = traffic(addr, 20);
    assert!(
        all_from(&after, "a"),
        "no request meets b once it is out: {after:?}"
    );
    p.wait_stderr("target marked down by active health check", BOUND);
    assert!(p.stderr().contains(&b.addr().to_string()), "{}", p.stderr());

    fix_b(&b);
    wait_until(BOUND, "b to get traffic again", || {
        traffic(addr, 4).iter().any(|(s, u)| *s == 200 && u == "b")
    });
    let back = traffic(addr, 4);
    assert!(
        back.iter().all(|(s, _)| *s == 200) && back.iter().filter(|(_, u)| u == "b").count() == 2,
        "both targets in service again: {back:?}"
    );
    p.wait_stderr("target back in service after active health check", BOUND);
}

#[test]
fn http_check_takes_a_stopped_target_out_and_brings_it_back_after_restart() {
    leaves_and_rejoins(
        r#"http "/healthz" { expect-status 200; }"#,
        MockUpstream::stop,
        MockUpstream::restart,
    );
}

#[test]
fn tcp_check_takes_a_stopped_target_out_and_brings_it_back_after_restart() {
    leaves_and_rejoins("tcp", MockUpstream::stop, MockUpstream::restart);
}

#[test]
fn http_check_takes_out_a_target_answering_the_wrong_status() {
    // `set_status` applies to every response, so `b` answers 503 to traffic too until it is
    // out; after that no request sees it.
    leaves_and_rejoins(
        r#"http "/healthz" { expect-status 200; }"#,
        |b| b.set_status(503),
        |b| b.set_status(200),
    );
}

#[test]
fn http_probes_send_the_documented_request() {
    let a = MockUpstream::start("a");
    let (_p, _addr) = start(&checked(&[a.addr()], r#"http "/healthz""#));
    wait_until(BOUND, "two probes", || a.hits() >= 2);
    let probe = a.requests().into_iter().next().expect("a probe");
    assert_eq!(
        (
            probe.method.as_str(),
            probe.path.as_str(),
            probe.version.as_str()
        ),
        ("GET", "/healthz", "HTTP/1.1")
    );
    assert_eq!(probe.header("host"), Some(a.addr().to_string().as_str()));
    assert_eq!(probe.header("connection"), Some("close"));
    assert_eq!(probe.header("user-agent"), Some("zentinel-health-check"));
    assert!(probe.body.is_empty());
}

#[test]
fn a_pool_with_every_target_down_answers_503() {
    let a = MockUpstream::start("a");
    let (_p, addr) = start(&checked(&[a.addr()], "tcp"));
    assert_eq!(get(addr, "h", "/").status, 200);
    a.stop();
    // A stopped target still in selection gives 502 (refused connect); once the check takes
    // it out, the pool has nothing to offer.
    wait_until(BOUND, "the only target to leave selection", || {
        get(addr, "h", "/").status == 503
    });
    let r = get(addr, "h", "/");
    assert_eq!(r.status, 503);
    assert!(
        r.text().contains("no healthy upstream target"),
        "{}",
        r.text()
    );
}
