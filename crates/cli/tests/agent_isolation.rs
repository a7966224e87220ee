//! Isolation under a hung agent, alone in its test binary so that latency is measured
//! without other tests competing for the CPU: routes that do not use the agent keep their
//! latency, routes that do answer as their failure mode says within the call timeout, and
//! the proxy's memory stays bounded.

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
use support::{MockUpstream, Proxy, free_addr, get};

fn timed(addr: SocketAddr, path: &str) -> (u16, Duration) {
    let t = Instant::now();
    let r = get(addr, "h.test", path);
    (r.status, t.elapsed())
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

/// Resident memory of `pid` in KiB, from `/proc`.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_hung_agent_only_affects_its_routes_as_their_failure_mode_says() {
    let agent = MockAgent::start();
    let up = MockUpstream::start("u");
    let addr = free_addr();
    // A breaker that never opens here: every call must wait out the timeout.
    let extra = "timeout-ms 200; circuit-breaker { failure-threshold 10000; }";
    let config = proxy_config(
        addr,
        up.addr(),
        agent.socket(),
        r#""request-headers""#,
        extra,
        THREE_ROUTES,
    );
    let p = Proxy::start(&config, &[addr]);
    for _ in 0..50 {
        timed(addr, "/plain");
        timed(addr, "/closed");
    }
    // Interleaved rounds, so that other load on a shared machine hits both sides alike.
    let rss_before = rss_kib(p.pid());
    let (mut base, mut fault) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        agent.set_default(Script::Allow);
        base.push(p99((0..150).map(|_| timed(addr, "/plain").1).collect()));
        agent.set_default(Script::Hang);
        // Four clients keep calls hanging on the agent while the plain route is measured.
        let hammers: Vec<_> = (0..4)
            .map(|_| {
                thread::spawn(move || (0..5).map(|_| timed(addr, "/closed")).collect::<Vec<_>>())
            })
            .collect();
        let plain = (0..150)
            .map(|_| {
                let (status, t) = timed(addr, "/plain");
                assert_eq!(status, 200);
                t
            })
            .collect();
        fault.push(p99(plain));
        for h in hammers {
            for (status, t) in h.join().unwrap() {
                assert_eq!(status, 504, "fail-closed route, agent timed out");
                assert!(
                    t >= Duration::from_millis(190) && t < Duration::from_millis(700),
                    "answered within timeout-ms plus a margin: {t:?}"
                );
            }
        }
    }
    base.sort();
    fault.sort();
    let (base, fault) = (base[1], fault[1]);
    // Within 10 % of the baseline, plus 1 ms for scheduling noise on a shared machine.
    assert!(
        fault <= base.mul_f64(1.1) + Duration::from_millis(1),
        "plain route p99 (median of 3 rounds) {fault:?} vs baseline {base:?}"
    );
    let (status, t) = timed(addr, "/open");
    assert_eq!(status, 200, "fail-open route answers from the upstream");
    assert!(t < Duration::from_millis(700));
    // 60 abandoned calls later, memory has not grown with them.
    let rss_after = rss_kib(p.pid());
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS {rss_before} KiB -> {rss_after} KiB"
    );
    let lines: Vec<serde_json::Value> = p
        .stderr()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let closed = lines.iter().filter(|l| {
        l["decision"] == "fail_closed" && l["reason"] == "timeout" && l["route"] == "closed"
    });
    assert_eq!(closed.count(), 60, "one audit line per fail-closed request");
    assert!(lines.iter().any(|l| l["decision"] == "fail_open"
        && l["reason"] == "timeout"
        && l["route"] == "open"
        && l["failure_mode"] == "open"));
}
