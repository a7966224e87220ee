//! The `rate-limit` filter on a shared Redis backend, end to end against a real
//! `redis-server` (one per test, loopback, see `support/redis.rs`): two proxies share one
//! limit; a hung, a dead and a restarted server under each `on-backend-failure`, within
//! `timeout-ms`, counted in `/metrics`; the headers and delay mode through Redis.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::redis::Redis;
use support::{MockUpstream, Proxy, Response, free_addr, get, metrics, value, wait_until};

/// A proxy with `filters` and `routes`, the admin API at `admin`.
fn config(
    addr: SocketAddr,
    admin: SocketAddr,
    up: SocketAddr,
    filters: &str,
    routes: &str,
) -> String {
    format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; audit-log {{ destination "file"; path "audit.log"; }}; error-log {{ level "info"; }} }}
admin {{ address "{admin}"; }}
upstreams {{ upstream "backend" {{ target "{up}"; }} }}
filters {{ {filters} }}
routes {{ {routes} }}"#
    )
}

struct Running {
    proxy: Proxy,
    addr: SocketAddr,
    admin: SocketAddr,
}

fn start(up: &MockUpstream, filters: &str, routes: &str) -> Running {
    let (addr, admin) = (free_addr(), free_addr());
    let proxy = Proxy::start(
        &config(addr, admin, up.addr(), filters, routes),
        &[addr, admin],
    );
    let r = Running { proxy, addr, admin };
    wait_connected(&r, filters.matches("backend \"redis\"").count());
    r
}

/// Waits until every shared filter has its two connections up.
fn wait_connected(r: &Running, filters: usize) {
    wait_until(Duration::from_secs(10), "backend connections", || {
        let m = metrics(r.admin);
        m.lines()
            .filter(|l| l.starts_with("zentinel_rate_limit_backend_connections{"))
            .filter(|l| l.ends_with(" 2"))
            .count()
            == filters
    });
}

/// The audit log's lines.
fn audit(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn filter(id: &str, rest: &str, backend: &str) -> String {
    format!(r#"filter "{id}" {{ type "rate-limit"; {rest} backend "redis" {{ {backend} }}; }}"#)
}

#[test]
fn two_proxies_sharing_one_limit_let_through_the_total_not_twice_it() {
    let redis = Redis::start();
    let up = MockUpstream::start("backend");
    let f = filter(
        "shared",
        "requests-per-second 1; burst 10; key \"client-ip\";",
        &format!(r#"url "{}"; on-backend-failure "closed";"#, redis.url()),
    );
    let routes = r#"route "api" { upstream "backend"; filters "shared"; }"#;
    let a = start(&up, &f, routes);
    let b = start(&up, &f, routes);
    let began = Instant::now();
    let all: Vec<Response> = (0..40)
        .map(|i| get(if i % 2 == 0 { a.addr } else { b.addr }, "h.test", "/x"))
        .collect();
    let elapsed = began.elapsed().as_secs();
    let passed = all.iter().filter(|r| r.status == 200).count();
    let refused = all.iter().filter(|r| r.status == 429).count();
    assert!(passed >= 10, "{passed} passed");
    assert!(
        passed <= 10 + elapsed as usize + 1,
        "{passed} passed in {elapsed} s"
    );
    assert_eq!(passed + refused, 40, "{all:?}");
    // The headers come from the shared bucket.
    let first = &all[0];
    assert_eq!(first.header("ratelimit-limit"), Some("10"));
    assert_eq!(first.header("ratelimit-remaining"), Some("9"));
    assert_eq!(first.header("ratelimit-reset"), Some("1"));
    let last = all.iter().rev().find(|r| r.status == 429).unwrap();
    assert_eq!(last.header("retry-after"), Some("1"));
    assert_eq!(last.header("ratelimit-remaining"), Some("0"));
    assert_eq!(last.header("ratelimit-reset"), Some("10"));
    // Stored under a hash, never the address, and with an expiry.
    let keys = redis.command("KEYS *\r\n").unwrap();
    assert!(keys.contains("zentinel:rl:shared:"), "{keys}");
    assert!(!keys.contains("127.0.0.1"), "{keys}");
    let key = keys.lines().find(|l| l.starts_with("zentinel:")).unwrap();
    let ttl = redis.command(&format!("PTTL {key}\r\n")).unwrap();
    let ttl: i64 = ttl.trim_start_matches(':').trim().parse().unwrap();
    assert!(ttl > 0 && ttl <= 10_000, "{ttl}");
    let m = metrics(a.admin);
    assert!(
        value(
            &m,
            r#"zentinel_rate_limit_backend_failures_total{filter="shared",reason="timeout",outcome="closed"}"#
        ) == 0.0
    );
    drop((a, b));
}

/// One proxy, three routes with a filter per failure mode, `timeout-ms 100`.
fn three_modes(redis: &Redis, up: &MockUpstream) -> Running {
    let backend = |mode: &str| {
        format!(
            r#"url "{}"; timeout-ms 100; on-backend-failure "{mode}";"#,
            redis.url()
        )
    };
    let rest = "requests-per-second 1; burst 2; key \"client-ip\";";
    let filters = [
        filter("open", rest, &backend("open")),
        filter("closed", rest, &backend("closed")),
        filter("local", rest, &backend("local")),
    ]
    .join("\n");
    let routes = r#"route "open" { matches { path-prefix "/open"; }; upstream "backend"; filters "open"; }
route "closed" { matches { path-prefix "/closed"; }; upstream "backend"; filters "closed"; }
route "local" { matches { path-prefix "/local"; }; upstream "backend"; filters "local"; }"#;
    start(up, &filters, routes)
}

/// Each mode while the server fails: status codes in order, and the slowest answer.
fn modes_while_failing(r: &Running) -> (Vec<u16>, Vec<u16>, Vec<u16>, Duration) {
    let mut slowest = Duration::ZERO;
    let mut send = |path: &str| {
        let t = Instant::now();
        let resp = get(r.addr, "h.test", path);
        slowest = slowest.max(t.elapsed());
        resp
    };
    let open: Vec<u16> = (0..3).map(|_| send("/open").status).collect();
    let closed_r: Vec<Response> = (0..3).map(|_| send("/closed")).collect();
    let local: Vec<u16> = (0..3).map(|_| send("/local").status).collect();
    for c in &closed_r {
        let id = c.header("x-request-id").unwrap();
        let body = c.text();
        assert!(body.contains("rate limit backend unavailable"), "{body}");
        assert!(
            body.contains("route: closed") && body.contains(id),
            "{body}"
        );
    }
    let closed = closed_r.iter().map(|c| c.status).collect();
    (open, closed, local, slowest)
}

fn failures(r: &Running, filter: &str, reason: &str) -> f64 {
    let m = metrics(r.admin);
    let s = format!(
        r#"zentinel_rate_limit_backend_failures_total{{filter="{filter}",reason="{reason}",outcome="{filter}"}}"#
    );
    value(&m, &s)
}

/// Each 503 of the `closed` filter (`n` so far, all timeouts) is counted on its route and
/// filter, and audited naming the filter, its key and why the backend failed.
fn closed_refusals_are_counted_and_audited(r: &Running, n: u8) {
    let m = metrics(r.admin);
    assert_eq!(
        value(
            &m,
            r#"zentinel_rate_limit_total{route="closed",filter="closed",outcome="failed_closed"}"#
        ),
        f64::from(n),
        "{m}"
    );
    assert_eq!(
        value(
            &m,
            r#"zentinel_rate_limit_total{route="open",filter="open",outcome="failed_closed"}"#
        ),
        0.0
    );
    let refused = |r: &Running| -> Vec<serde_json::Value> {
        audit(r.proxy.dir())
            .into_iter()
            .filter(|l| l["reason"] == "rate-limit-backend")
            .collect()
    };
    wait_until(Duration::from_secs(5), "the 503 audit lines", || {
        refused(r).len() == usize::from(n)
    });
    for l in refused(r) {
        assert_eq!(l["decision"], "reject", "{l}");
        assert_eq!(l["status"], 503, "{l}");
        assert_eq!(l["filter"], "closed", "{l}");
        assert_eq!(l["route"], "closed", "{l}");
        assert_eq!(l["key"], "client-ip", "{l}");
        assert_eq!(l["backend_failure"], "timeout", "{l}");
    }
}

#[test]
fn a_hung_then_dead_server_applies_each_failure_mode_within_the_timeout_then_recovers() {
    let mut redis = Redis::start();
    let up = MockUpstream::start("backend");
    let r = three_modes(&redis, &up);
    // Shared limiting works: burst 2, then 429, on every filter.
    for path in ["/open", "/closed", "/local"] {
        let s: Vec<u16> = (0..3).map(|_| get(r.addr, "h.test", path).status).collect();
        assert_eq!(s, [200, 200, 429], "{path}");
    }

    redis.stop();
    let (open, closed, local, slowest) = modes_while_failing(&r);
    assert_eq!(open, [200, 200, 200], "open lets through");
    assert_eq!(closed, [503, 503, 503], "closed refuses");
    assert_eq!(local, [200, 200, 429], "local counts on its own store");
    assert!(
        slowest < Duration::from_millis(600),
        "{slowest:?} for timeout-ms 100"
    );
    for f in ["open", "closed", "local"] {
        assert!(
            failures(&r, f, "timeout") >= 3.0,
            "{f}: {}",
            metrics(r.admin)
        );
    }
    closed_refusals_are_counted_and_audited(&r, 3);
    // Three timeouts in a row tripped each filter's breaker: calls now fail at once.
    let t = Instant::now();
    assert_eq!(get(r.addr, "h.test", "/closed").status, 503);
    assert!(
        t.elapsed() < Duration::from_millis(80),
        "no wait once tripped: {:?}",
        t.elapsed()
    );
    let stopped = "rate-limit backend stopped answering";
    assert_eq!(
        r.proxy.stderr().matches(stopped).count(),
        3,
        "once per filter"
    );
    redis.resume();
    // A ping (once a second, off the request path) finds the server answering again.
    wait_until(Duration::from_secs(5), "the breakers to close", || {
        r.proxy
            .stderr()
            .matches("rate-limit backend answers again")
            .count()
            == 3
    });

    redis.kill();
    // The first call on a dead connection fails with an error, later ones find none up.
    let (open, closed, local, slowest) = modes_while_failing(&r);
    assert_eq!(open, [200, 200, 200]);
    assert_eq!(closed, [503, 503, 503]);
    assert_eq!(local[2], 429, "{local:?}");
    assert!(
        slowest < Duration::from_millis(300),
        "refused: no waiting ({slowest:?})"
    );
    for f in ["open", "closed", "local"] {
        let n = failures(&r, f, "unavailable") + failures(&r, f, "error");
        assert!(n >= 3.0, "{f}: {}", metrics(r.admin));
    }
    // Logged, but not once per failure.
    let logged = r
        .proxy
        .stderr()
        .matches("rate-limit backend failed")
        .count();
    assert!((1..=12).contains(&logged), "{logged} lines");

    redis.restart();
    wait_connected(&r, 3);
    // The new server is empty: each filter starts again from a full shared bucket.
    let s: Vec<u16> = (0..3)
        .map(|_| get(r.addr, "h.test", "/closed").status)
        .collect();
    assert_eq!(s, [200, 200, 429]);
    let keys = redis.command("KEYS *\r\n").unwrap();
    assert!(keys.contains("zentinel:rl:closed:"), "{keys}");
}

#[test]
fn delay_mode_reserves_slots_in_redis() {
    let redis = Redis::start();
    let up = MockUpstream::start("backend");
    let f = filter(
        "slow",
        "requests-per-second 10; burst 1; on-limit \"delay\"; max-delay-ms 250;",
        &format!(r#"url "{}";"#, redis.url()),
    );
    let r = start(
        &up,
        &f,
        r#"route "api" { upstream "backend"; filters "slow"; }"#,
    );
    let began = Instant::now();
    let threads: Vec<_> = (0..5)
        .map(|_| {
            let addr = r.addr;
            std::thread::spawn(move || get(addr, "h.test", "/x").status)
        })
        .collect();
    let mut statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort_unstable();
    // 0, 100, 200 ms pass; 300 and 400 ms are beyond max-delay-ms.
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert!(
        began.elapsed() >= Duration::from_millis(180),
        "{:?}",
        began.elapsed()
    );
    let m = metrics(r.admin);
    assert_eq!(
        value(
            &m,
            r#"zentinel_rate_limit_total{route="api",filter="slow",outcome="delayed"}"#
        ),
        2.0,
        "{m}"
    );
}

/// The server's count of connections it accepted (this query's own included).
fn accepted(redis: &Redis) -> u64 {
    let info = redis.command("INFO stats\r\n").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no connection count in {info:?}"))
}

/// Sends SIGHUP with `text` as the new configuration and waits for the outcome line.
fn reload(p: &Proxy, text: &str) {
    let done = |p: &Proxy| p.stderr().matches("configuration reloaded").count();
    let before = done(p);
    p.write_file("zentinel.kdl", text);
    p.signal(1);
    wait_until(Duration::from_secs(10), "the reload", || done(p) > before);
}

#[test]
fn a_reload_keeps_an_unchanged_shared_filter_s_connections() {
    let redis = Redis::start();
    let up = MockUpstream::start("backend");
    let f = filter(
        "shared",
        "requests-per-second 100;",
        &format!(r#"url "{}";"#, redis.url()),
    );
    let routes = r#"route "api" { upstream "backend"; filters "shared"; }"#;
    let (addr, admin) = (free_addr(), free_addr());
    let text = |filters: &str, routes: &str| config(addr, admin, up.addr(), filters, routes);
    let proxy = Proxy::start(&text(&f, routes), &[addr, admin]);
    let r = Running { proxy, addr, admin };
    wait_connected(&r, 1);
    let before = accepted(&redis);
    // Another route changes; the filter does not: no new connection to the server.
    let more = format!(
        "{routes}\nroute \"other\" {{ matches {{ path-prefix \"/other\"; }}; upstream \"backend\"; }}"
    );
    reload(&r.proxy, &text(&f, &more));
    assert_eq!(get(r.addr, "h.test", "/x").status, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        accepted(&redis),
        before + 1,
        "only this count's own connection"
    );
    // A changed filter gets a pool of its own.
    let changed = f.replace("requests-per-second 100;", "requests-per-second 200;");
    reload(&r.proxy, &text(&changed, &more));
    wait_until(Duration::from_secs(5), "the new pool", || {
        accepted(&redis) >= before + 2 + 2
    });
}

/// A proxy with `filters` and `routes`, once the shared filter `filter` has `n` connections up.
fn start_with(up: &MockUpstream, filters: &str, routes: &str, filter: &str, n: u32) -> Running {
    let (addr, admin) = (free_addr(), free_addr());
    let proxy = Proxy::start(
        &config(addr, admin, up.addr(), filters, routes),
        &[addr, admin],
    );
    let series = format!(r#"zentinel_rate_limit_backend_connections{{filter="{filter}"}}"#);
    wait_until(Duration::from_secs(10), &series, || {
        value(&metrics(admin), &series) == f64::from(n)
    });
    Running { proxy, addr, admin }
}

fn statuses(r: &Running, path: &str, n: usize) -> Vec<u16> {
    (0..n).map(|_| get(r.addr, "h.test", path).status).collect()
}

#[test]
fn pool_size_is_the_connections_the_server_sees_and_key_prefix_names_its_keys() {
    let redis = Redis::start();
    let up = MockUpstream::start("backend");
    let f = filter(
        "pooled",
        "requests-per-second 1; burst 2; key \"client-ip\";",
        &format!(
            r#"url "{}"; pool-size 3; key-prefix "edge-eu:rl:";"#,
            redis.url()
        ),
    );
    let routes = r#"route "api" { upstream "backend"; filters "pooled"; }"#;
    let r = start_with(&up, &f, routes, "pooled", 3);
    // The server has exactly three clients besides the one asking: the pool.
    let list = redis.command("CLIENT LIST\r\n").unwrap();
    let pool: Vec<&str> = list
        .lines()
        .filter(|l| l.contains("id=") && !l.contains("cmd=client|list"))
        .collect();
    assert_eq!(pool.len(), 3, "{list}");
    assert_eq!(statuses(&r, "/x", 3), [200, 200, 429]);
    let keys = redis.command("KEYS *\r\n").unwrap();
    assert!(keys.contains("edge-eu:rl:pooled:"), "{keys}");
    assert!(
        !keys.contains("zentinel:rl:"),
        "the default prefix is not used: {keys}"
    );
}

#[test]
fn the_url_s_password_and_database_are_used_and_a_wrong_password_fails_as_declared() {
    let redis = Redis::start_with_password("s3cret");
    let up = MockUpstream::start("backend");
    let port = redis.addr().port();
    let rest = "requests-per-second 1; burst 1; key \"client-ip\";";
    let url = |auth: &str| {
        format!(r#"url "redis://:{auth}@127.0.0.1:{port}/3"; on-backend-failure "closed";"#)
    };
    let filters = [
        filter("authed", rest, &url("s3cret")),
        filter("wrong", rest, &url("not-the-password")),
    ]
    .join("\n");
    let routes = r#"route "good" { matches { path-prefix "/good"; }; upstream "backend"; filters "authed"; }
route "bad" { matches { path-prefix "/bad"; }; upstream "backend"; filters "wrong"; }"#;
    let r = start_with(&up, &filters, routes, "authed", 2);
    // Counted on the server, in database 3.
    assert_eq!(statuses(&r, "/good", 2), [200, 429]);
    let in_3 = redis.command_in(3, "KEYS *\r\n").unwrap();
    assert!(in_3.contains("zentinel:rl:authed:"), "{in_3}");
    assert_eq!(
        redis.command("KEYS *\r\n").unwrap(),
        "*0\r\n",
        "nothing in database 0"
    );
    // A wrong password never connects: each call fails at once, as declared.
    let m = metrics(r.admin);
    assert_eq!(
        value(
            &m,
            r#"zentinel_rate_limit_backend_connections{filter="wrong"}"#
        ),
        0.0,
        "{m}"
    );
    assert_eq!(statuses(&r, "/bad", 2), [503, 503]);
    let failed = value(
        &metrics(r.admin),
        r#"zentinel_rate_limit_backend_failures_total{filter="wrong",reason="unavailable",outcome="closed"}"#,
    );
    assert_eq!(failed, 2.0);
    let stderr = r.proxy.stderr();
    assert!(
        stderr.contains("rate-limit backend: connection failed"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret") && !stderr.contains("not-the-password"),
        "passwords are never logged: {stderr}"
    );
}
