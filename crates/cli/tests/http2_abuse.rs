//! End to end: HTTP/2 abuse against an h2c listener, sent by independently written probes
//! (`tests/h2/probes.py`, Python `h2`/`hpack`; install with `scripts/setup.sh`). Each probe
//! prints one JSON line of what it saw; these tests hold the proxy to its guarantees: the
//! abuse ends in a GOAWAY or costs bounded work, reset and malformed streams do not reach the
//! upstream, and a normal client on another connection is served during and after.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use support::{MockUpstream, Proxy, free_addr, get};

/// The stream limit the proxy advertises and enforces (`crates/proxy/src/http2.rs`).
const MAX_CONCURRENT_STREAMS: u64 = 100;
/// Remotely reset streams the `h2` codec tolerates before they are accepted.
const PENDING_RESET_LIMIT: u64 = 20;
/// A probe bounds its own time (about 30 s at most); this is the backstop.
const PROBE_TIMEOUT: Duration = Duration::from_secs(90);
/// How much the proxy's resident memory may grow under one flood.
const RSS_GROWTH_LIMIT_KIB: u64 = 64 * 1024;

/// The Python interpreter that has `h2`: `python3` on PATH, else the system one (a pyenv or
/// virtualenv `python3` does not see Debian's `python3-h2`).
fn python() -> &'static str {
    static FOUND: OnceLock<Option<&'static str>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        ["python3", "/usr/bin/python3"].into_iter().find(|p| {
            Command::new(p)
                .args(["-c", "import h2, hpack"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "the HTTP/2 probes need Python's h2 and hpack (Debian python3-h2): run scripts/setup.sh"
        )
    })
}

fn probes_py() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/h2/probes.py")
}

/// Runs `python3 tests/h2/probes.py <name> <addr>` and returns its JSON line.
fn probe(name: &str, addr: SocketAddr) -> Value {
    let child = Command::new(python())
        .arg(probes_py())
        .arg(name)
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the probe");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx.recv_timeout(PROBE_TIMEOUT).unwrap_or_else(|_| {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!("probe {name} did not finish within {PROBE_TIMEOUT:?}")
    });
    let out = out.expect("probe output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe {name} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("probe {name}: {e}: {stdout}"))
}

/// A proxy with one h2c listener in front of `up`.
fn start(up: &MockUpstream) -> (Proxy, SocketAddr) {
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "h2c" {{ address "{addr}"; protocol "h2c"; }} }}
observability {{ access-log {{ destination "off"; }}; error-log {{ level "error"; }} }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    (Proxy::start(&config, &[addr]), addr)
}

/// Runs probe `name` while a normal HTTP/1.1 client keeps asking on its own connections;
/// asserts every one of those answers, and an HTTP/2 request after the attack, is a 200.
fn under_attack(name: &str, addr: SocketAddr) -> Value {
    let name_owned = name.to_owned();
    let attack = std::thread::spawn(move || probe(&name_owned, addr));
    let mut served = 0;
    while !attack.is_finished() {
        let r = get(addr, "normal.test", "/normal");
        assert_eq!(r.status, 200, "normal client during {name}: {}", r.text());
        served += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = attack.join().expect("probe thread");
    let after = probe("get", addr);
    assert_eq!(after["status"], 200, "HTTP/2 client after {name}: {after}");
    assert!(served > 0, "no normal request ran during {name}");
    seen
}

/// Upstream requests other than the normal clients' and the probes' controls.
fn attack_hits(up: &MockUpstream) -> Vec<String> {
    up.requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| !matches!(p.as_str(), "/normal" | "/control" | "/after-malformed"))
        .collect()
}

fn rss_kib(proxy: &Proxy) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", proxy.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn goaway(seen: &Value) -> (&str, &str) {
    let g = &seen["goaway"];
    assert!(g.is_object(), "expected a GOAWAY: {seen}");
    (g["error"].as_str().unwrap(), g["debug"].as_str().unwrap())
}

#[test]
fn advertises_a_bounded_stream_limit_and_header_list_size() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    let seen = probe("settings", addr);
    assert_eq!(seen["status"], 200, "{seen}");
    assert_eq!(
        seen["max_concurrent_streams"], MAX_CONCURRENT_STREAMS,
        "{seen}"
    );
    let list = seen["max_header_list_size"].as_u64().expect("advertised");
    assert!(list > 0 && list <= 64 * 1024, "{seen}");
}

#[test]
fn rapid_reset_ends_in_goaway_and_reset_streams_do_not_reach_the_upstream() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    let seen = under_attack("rapid-reset", addr);
    assert_eq!(goaway(&seen), ("ENHANCE_YOUR_CALM", "too_many_resets"));
    // The streams the server saw before closing: its pending-reset tolerance, plus streams
    // accepted between two resets (each holds one of the connection's permits).
    let last = seen["goaway"]["last_stream_id"].as_u64().unwrap();
    assert!(
        last <= 2 * (PENDING_RESET_LIMIT + MAX_CONCURRENT_STREAMS) + 1,
        "{seen}"
    );
    let hits = attack_hits(&up);
    assert!(hits.len() as u64 <= last.div_ceil(2), "{hits:?} {seen}");
    assert!(
        hits.len() <= 5,
        "reset streams reached the upstream: {hits:?}"
    );
}

#[test]
fn paced_rapid_reset_costs_one_abandoned_upstream_request_per_stream() {
    let up = MockUpstream::start("u");
    up.set_behaviour(support::Behaviour::Delay(Duration::from_secs(2)));
    let (_p, addr) = start(&up);
    let seen = probe("rapid-reset-accepted", addr);
    up.set_behaviour(support::Behaviour::Respond);
    assert_eq!(probe("get", addr)["status"], 200);
    assert_eq!(get(addr, "normal.test", "/normal").status, 200);
    // A stream is cancelled 3 ms after it is opened, by then forwarded: the upstream may see
    // it, but never more requests than streams the client opened.
    let sent = seen["streams_sent"].as_u64().unwrap();
    assert!(attack_hits(&up).len() as u64 <= sent, "{seen}");
}

/// Streams reset while the proxy is still busy with them before the upstream (here: held
/// by a rate limit's `on-limit "delay"`, which does not watch the client) keep their
/// connection's permits until that work ends: at most `MAX_CONCURRENT_STREAMS` of one
/// connection are in flight, the codec keeps the next streams pending, and resetting those
/// ends in GOAWAY. Without the permits every reset stream queued behind the limit and was
/// forwarded when its turn came.
#[test]
fn reset_streams_hold_their_permits_until_their_work_is_done() {
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "h2c" {{ address "{addr}"; protocol "h2c"; }} }}
observability {{ access-log {{ destination "off"; }}; error-log {{ level "error"; }} }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
filters {{ filter "slow" {{ type "rate-limit"; requests-per-second 20; burst 1; on-limit "delay"; max-delay-ms 8000; }} }}
routes {{
    route "slow" {{ priority 10; matches {{ path-prefix "/slow/"; }}; upstream "u"; filters "slow"; }}
    route "r" {{ upstream "u"; }}
}}"#,
        up.addr()
    );
    let _p = Proxy::start(&config, &[addr]);
    let seen = under_attack("rapid-reset-accepted", addr);
    // Let every delayed request of the attack reach its turn.
    std::thread::sleep(Duration::from_secs(6));
    let hits = attack_hits(&up).len() as u64;
    assert_eq!(goaway(&seen), ("ENHANCE_YOUR_CALM", "too_many_resets"));
    // The permits, plus the streams accepted as permits were freed (20 a second here)
    // before the GOAWAY: 109 were measured; without the permits, 207 and no GOAWAY.
    assert!(
        hits <= MAX_CONCURRENT_STREAMS + 20,
        "{hits} forwarded: {seen}"
    );
}

#[test]
fn continuation_floods_end_in_goaway() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    let growing = under_attack("continuation", addr);
    // A header block larger than the advertised 64 KiB list is a connection error.
    assert!(
        matches!(goaway(&growing).0, "PROTOCOL_ERROR" | "ENHANCE_YOUR_CALM"),
        "{growing}"
    );
    let empty = under_attack("continuation-empty", addr);
    assert_eq!(
        goaway(&empty),
        ("ENHANCE_YOUR_CALM", "too_many_continuations")
    );
    assert!(attack_hits(&up).is_empty(), "{:?}", attack_hits(&up));
}

#[test]
fn hpack_bomb_and_oversized_header_lists_are_refused_without_expanding() {
    let up = MockUpstream::start("u");
    let (p, addr) = start(&up);
    let before = rss_kib(&p);
    let bomb = under_attack("hpack-bomb", addr);
    // 20 KB on the wire that would decode to 64 MB: closed once the decoded list passes
    // the limit, not after expanding it.
    assert_eq!(
        goaway(&bomb),
        ("ENHANCE_YOUR_CALM", "header_list_way_too_large")
    );
    let big = under_attack("big-headers", addr);
    assert!(
        big["status"] == 431 || big["stream_reset"].is_string() || big["goaway"].is_object(),
        "{big}"
    );
    assert!(rss_kib(&p) < before + RSS_GROWTH_LIMIT_KIB);
    assert!(attack_hits(&up).is_empty(), "{:?}", attack_hits(&up));
}

#[test]
fn ping_and_settings_floods_cost_one_answer_each_and_bounded_memory() {
    let up = MockUpstream::start("u");
    let (p, addr) = start(&up);
    let before = rss_kib(&p);
    for (name, sent, acks) in [
        ("ping-flood", "pings_sent", "ping_acks"),
        ("settings-flood", "settings_sent", "settings_acks"),
    ] {
        let seen = under_attack(name, addr);
        // Never more answers than frames (plus the handshake's SETTINGS ACK).
        assert!(
            seen[acks].as_u64() <= seen[sent].as_u64().map(|n| n + 1),
            "{seen}"
        );
    }
    // A client that never reads: the server answers one frame at a time and stops reading
    // once its answers back up, so its memory stays flat.
    for name in ["ping-flood-unread", "settings-flood-unread"] {
        let seen = under_attack(name, addr);
        assert!(
            seen["send_blocked"] == true || seen["closed"] == true,
            "the server kept reading while its answers were not read: {seen}"
        );
    }
    let grown = rss_kib(&p).saturating_sub(before);
    assert!(grown < RSS_GROWTH_LIMIT_KIB, "RSS grew by {grown} KiB");
}

#[test]
fn empty_data_flood_ends_in_goaway_and_no_request_completes_upstream() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    let seen = under_attack("data-flood", addr);
    assert_eq!(goaway(&seen), ("ENHANCE_YOUR_CALM", "too_many_data_frames"));
    assert!(attack_hits(&up).is_empty(), "{:?}", attack_hits(&up));
}

#[test]
fn malformed_requests_are_reset_and_never_forwarded() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    for kind in [
        "connection-header",
        "keep-alive-header",
        "transfer-encoding",
        "te-gzip",
        "uppercase-name",
        "missing-path",
        "empty-path",
        "duplicate-method",
        "unknown-pseudo",
        "pseudo-after-regular",
        "response-pseudo",
        "content-length-short",
        "content-length-long",
    ] {
        let seen = probe(kind, addr);
        assert!(seen["status"].is_null(), "{kind} was answered: {seen}");
        if seen["goaway"].is_object() {
            // The codec treats a few as connection errors (RFC 9113 section 5.4.1).
            assert_eq!(goaway(&seen).0, "PROTOCOL_ERROR", "{kind}: {seen}");
        } else {
            assert_eq!(seen["stream_reset"], "PROTOCOL_ERROR", "{kind}: {seen}");
            assert_eq!(seen["next_request_status"], 200, "{kind}: {seen}");
        }
        assert!(
            attack_hits(&up).is_empty(),
            "{kind} forwarded: {:?}",
            attack_hits(&up)
        );
    }
    assert_eq!(get(addr, "normal.test", "/normal").status, 200);
}

#[test]
fn connect_and_trace_are_refused_over_http2_and_never_forwarded() {
    let up = MockUpstream::start("u");
    let (_p, addr) = start(&up);
    let seen = probe("methods", addr);
    assert_eq!(seen["connect"], 501, "{seen}");
    assert_eq!(seen["trace"], 501, "{seen}");
    assert_eq!(seen["next_request_status"], 200, "{seen}");
    let paths: Vec<_> = up.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/after-methods"], "{seen}");
}
