//! The built-in `rate-limit` filter end to end: the issue's `per-ip` filter on route "api"
//! (a burst of 12 gives 10 answers and two 429s with `Retry-After` and `RateLimit-*`, and a
//! token comes back after 1/rps), a header key limiting each value on its own, `delay` mode
//! spreading requests within `max-delay-ms`, the audit lines and the `/metrics` counters, and
//! buckets kept over a reload that does not change the filter.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use support::{MockUpstream, Proxy, Response, free_addr, get, metrics, request, value, wait_until};

const HUP: i32 = 1;

/// The issue's filter and route, plus `extra_filters` and `extra_routes`, with the audit log
/// in `audit.log` and the admin API at `admin`.
fn config(
    addr: SocketAddr,
    admin: SocketAddr,
    backend: SocketAddr,
    extra_filters: &str,
    extra_routes: &str,
) -> String {
    format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; audit-log {{ destination "file"; path "audit.log"; }}; error-log {{ level "info"; }} }}
admin {{ address "{admin}"; }}
upstreams {{ upstream "backend" {{ target "{backend}"; }} }}
filters {{
    filter "per-ip" {{ type "rate-limit"; requests-per-second 5; burst 10; key "client-ip"; on-limit "reject"; }}
    {extra_filters}
}}
routes {{
    route "api" {{ matches {{ path-prefix "/api/"; }}; upstream "backend"; filters "per-ip"; }}
    {extra_routes}
}}"#
    )
}

fn start(extra_filters: &str, extra_routes: &str) -> (Proxy, SocketAddr, SocketAddr, MockUpstream) {
    let up = MockUpstream::start("backend");
    let (addr, admin) = (free_addr(), free_addr());
    let text = config(addr, admin, up.addr(), extra_filters, extra_routes);
    let p = Proxy::start(&text, &[addr, admin]);
    (p, addr, admin, up)
}

/// `n` requests sent at once (one thread and connection each), in the order they return.
fn burst(addr: SocketAddr, path: &str, headers: &[(&str, &str)], n: usize) -> Vec<Response> {
    let owned: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (path, owned) = (path.to_owned(), owned.clone());
            thread::spawn(move || {
                let h: Vec<(&str, &str)> = owned
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                request(addr, "GET", "h.test", &path, &h, b"")
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn count(responses: &[Response], status: u16) -> usize {
    responses.iter().filter(|r| r.status == status).count()
}

fn audit(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("audit.log")).unwrap_or_default()
}

#[test]
fn per_ip_burst_of_12_gives_10_answers_and_2_429s_then_a_token_comes_back() {
    let (p, addr, admin, up) = start("", "");
    let all = burst(addr, "/api/x", &[], 12);
    assert_eq!(count(&all, 200), 10, "{all:?}");
    assert_eq!(count(&all, 429), 2, "{all:?}");
    assert_eq!(up.hits(), 10);
    let mut remaining: Vec<u32> = all
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| {
            assert_eq!(r.header("ratelimit-limit"), Some("10"));
            assert!(r.header("ratelimit-reset").is_some());
            r.header("ratelimit-remaining").unwrap().parse().unwrap()
        })
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..10).collect::<Vec<_>>());
    for r in all.iter().filter(|r| r.status == 429) {
        assert_eq!(r.header("retry-after"), Some("1"), "0.2 s rounded up");
        assert_eq!(r.header("ratelimit-limit"), Some("10"));
        assert_eq!(r.header("ratelimit-remaining"), Some("0"));
        assert_eq!(r.header("ratelimit-reset"), Some("2"));
        let id = r.header("x-request-id").unwrap();
        let body = r.text();
        assert!(
            body.starts_with("429 Too Many Requests: rate limit exceeded\n"),
            "{body}"
        );
        assert!(body.contains("route: api\n") && body.contains(id), "{body}");
    }
    // One token every 200 ms.
    thread::sleep(Duration::from_millis(250));
    assert_eq!(get(addr, "h.test", "/api/x").status, 200);
    assert_eq!(get(addr, "h.test", "/api/x").status, 429);
    let dir = p.dir().to_owned();
    wait_until(Duration::from_secs(5), "three audit lines", || {
        audit(&dir).lines().count() == 3
    });
    for line in audit(&dir).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["decision"], "reject", "{line}");
        assert_eq!(v["reason"], "rate-limit");
        assert_eq!(v["filter"], "per-ip");
        assert_eq!(v["key"], "client-ip");
        assert_eq!(v["route"], "api");
        assert_eq!(v["client"], "127.0.0.1");
        assert_eq!(v["status"], 429);
    }
    let m = metrics(admin);
    let series = |o: &str| {
        format!(r#"zentinel_rate_limit_total{{route="api",filter="per-ip",outcome="{o}"}}"#)
    };
    assert_eq!(value(&m, &series("allowed")), 11.0, "{m}");
    assert_eq!(value(&m, &series("rejected")), 3.0);
    assert_eq!(value(&m, &series("delayed")), 0.0);
    assert_eq!(
        value(&m, r#"zentinel_rate_limit_keys{filter="per-ip"}"#),
        1.0
    );
    // Counted when the request's log step runs, just after the answer left.
    wait_until(Duration::from_secs(5), "three 429s counted", || {
        value(
            &metrics(admin),
            r#"zentinel_requests_total{route="api",code="429"}"#,
        ) == 3.0
    });
}

#[test]
fn a_header_key_limits_each_value_on_its_own_and_never_logs_it() {
    let (p, addr, admin, _up) = start(
        r#"filter "per-key" { type "rate-limit"; requests-per-second 1; burst 2; key "header:x-api-key"; }"#,
        r#"route "keyed" { matches { path-prefix "/keyed/"; }; upstream "backend"; filters "per-key"; }"#,
    );
    for key in ["secret-a", "secret-b"] {
        let h = [("x-api-key", key)];
        let all = burst(addr, "/keyed/x", &h, 3);
        assert_eq!(count(&all, 200), 2, "{key}: {all:?}");
        assert_eq!(count(&all, 429), 1, "{key}: {all:?}");
    }
    // No key at all is one more bucket ("absent"), apart from every value.
    let all = burst(addr, "/keyed/x", &[], 3);
    assert_eq!(count(&all, 200), 2, "{all:?}");
    let m = metrics(admin);
    assert_eq!(
        value(&m, r#"zentinel_rate_limit_keys{filter="per-key"}"#),
        3.0
    );
    let dir = p.dir().to_owned();
    wait_until(Duration::from_secs(5), "three audit lines", || {
        audit(&dir).lines().count() == 3
    });
    let log = audit(&dir);
    assert!(log.contains(r#""key":"header:x-api-key""#), "{log}");
    assert!(
        !log.contains("secret-"),
        "the key's value is never logged: {log}"
    );
}

#[test]
fn delay_mode_spreads_requests_within_max_delay_and_rejects_beyond() {
    let (p, addr, admin, _up) = start(
        r#"filter "smooth" { type "rate-limit"; requests-per-second 10; burst 1; on-limit "delay"; max-delay-ms 1000; }
    filter "tight" { type "rate-limit"; requests-per-second 10; burst 1; on-limit "delay"; max-delay-ms 250; }"#,
        r#"route "smooth" { matches { path-prefix "/smooth/"; }; upstream "backend"; filters "smooth"; }
    route "tight" { matches { path-prefix "/tight/"; }; upstream "backend"; filters "tight"; }"#,
    );
    let started = Instant::now();
    let all = burst(addr, "/smooth/x", &[], 5);
    let took = started.elapsed();
    assert_eq!(count(&all, 200), 5, "{all:?}");
    // One every 100 ms: the fifth no sooner than ~400 ms after the first.
    assert!(took >= Duration::from_millis(350), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let m = metrics(admin);
    let series = |r: &str, o: &str| {
        format!(r#"zentinel_rate_limit_total{{route="{r}",filter="{r}",outcome="{o}"}}"#)
    };
    let delayed = value(&m, &series("smooth", "delayed"));
    assert_eq!(
        delayed + value(&m, &series("smooth", "allowed")),
        5.0,
        "{m}"
    );
    assert!(delayed >= 3.0, "{m}");
    // Waits of 100, 200, … ms: beyond 250 ms they are rejected instead.
    let started = Instant::now();
    let all = burst(addr, "/tight/x", &[], 10);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(count(&all, 429) >= 3, "{all:?}");
    assert!(count(&all, 200) >= 2, "{all:?}");
    assert_eq!(count(&all, 200) + count(&all, 429), 10, "{all:?}");
    let dir = p.dir().to_owned();
    wait_until(Duration::from_secs(5), "delay audit lines", || {
        audit(&dir).contains(r#""decision":"delay""#)
    });
    let line = audit(&dir)
        .lines()
        .find(|l| l.contains(r#""decision":"delay""#))
        .unwrap()
        .to_owned();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["filter"], "smooth");
    assert!(v["delay_ms"].as_f64().unwrap() > 0.0, "{line}");
    assert!(v["status"].is_null(), "{line}");
}

/// Sends SIGHUP and waits for the outcome line.
fn reload(p: &Proxy) {
    let done = |p: &Proxy| p.stderr().matches("configuration reloaded").count();
    let before = done(p);
    p.signal(HUP);
    wait_until(Duration::from_secs(10), "the reload", || done(p) > before);
}

#[test]
fn a_reload_keeps_the_buckets_of_an_unchanged_filter_and_a_changed_one_starts_full() {
    let up = MockUpstream::start("backend");
    let (addr, admin) = (free_addr(), free_addr());
    let slow = |burst: u32| {
        config(
            addr,
            admin,
            up.addr(),
            &format!(
                r#"filter "slow" {{ type "rate-limit"; requests-per-second 1; burst {burst}; }}"#
            ),
            r#"route "slow" { matches { path-prefix "/slow/"; }; upstream "backend"; filters "slow"; }"#,
        )
    };
    let p = Proxy::start(&slow(10), &[addr, admin]);
    let all = burst(addr, "/slow/x", &[], 11);
    assert_eq!(count(&all, 200), 10, "{all:?}");
    // The same filter, in a configuration that otherwise changed.
    p.write_file("zentinel.kdl", &format!("// edited\n{}", slow(10)));
    reload(&p);
    // A fresh bucket would let 10 through; the kept one only what refilled meanwhile.
    let after = burst(addr, "/slow/x", &[], 10);
    assert!(
        count(&after, 429) >= 6,
        "still limited after the reload: {after:?}"
    );
    // A changed filter starts with full buckets.
    p.write_file("zentinel.kdl", &slow(12));
    reload(&p);
    let fresh = burst(addr, "/slow/x", &[], 12);
    assert_eq!(count(&fresh, 200), 12, "{fresh:?}");
}

/// A proxy whose loopback peer is a trusted proxy (its `X-Forwarded-For` names the client)
/// when `trusted`, with `filters` and `routes` only.
fn start_trusted(
    trusted: bool,
    filters: &str,
    routes: &str,
) -> (Proxy, SocketAddr, SocketAddr, MockUpstream) {
    let up = MockUpstream::start("backend");
    let (addr, admin) = (free_addr(), free_addr());
    let peers = if trusted { "127.0.0.1" } else { "10.0.0.0/8" };
    let text = format!(
        r#"server {{ trusted-proxies "{peers}"; }}
listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; audit-log {{ destination "file"; path "audit.log"; }} }}
admin {{ address "{admin}"; }}
upstreams {{ upstream "backend" {{ target "{}"; }} }}
filters {{ {filters} }}
routes {{ {routes} }}"#,
        up.addr()
    );
    let p = Proxy::start(&text, &[addr, admin]);
    (p, addr, admin, up)
}

/// Statuses of one request per entry of `each`, in order, each with its headers.
fn statuses(addr: SocketAddr, path: &str, each: &[&[(&str, &str)]]) -> Vec<u16> {
    each.iter()
        .map(|h| request(addr, "GET", "h.test", path, h, b"").status)
        .collect()
}

fn audit_lines(dir: &Path, n: usize) -> Vec<serde_json::Value> {
    wait_until(Duration::from_secs(5), "the audit lines", || {
        audit(dir).lines().count() >= n
    });
    audit(dir)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_route_key_gives_all_clients_of_a_route_one_bucket() {
    let (_p, addr, admin, _up) = start_trusted(
        true,
        r#"filter "per-route" { type "rate-limit"; requests-per-second 1; burst 3; key "route"; }"#,
        r#"route "a" { matches { path-prefix "/a/"; }; upstream "backend"; filters "per-route"; }
    route "b" { matches { path-prefix "/b/"; }; upstream "backend"; filters "per-route"; }"#,
    );
    // Four different clients, keys and cookies: one bucket of 3.
    let clients = [
        ("203.0.113.1", "1"),
        ("203.0.113.2", "2"),
        ("198.51.100.7", "3"),
        ("2001:db8::1", "4"),
    ]
    .map(|(ip, key)| {
        [
            ("x-forwarded-for", ip),
            ("x-api-key", key),
            ("cookie", "s=1"),
        ]
    });
    let each: Vec<&[(&str, &str)]> = clients.iter().map(|c| &c[..]).collect();
    assert_eq!(statuses(addr, "/a/x", &each), [200, 200, 200, 429]);
    // The other route has its own bucket.
    assert_eq!(statuses(addr, "/b/x", &each[..1]), [200]);
    let m = metrics(admin);
    assert_eq!(
        value(&m, r#"zentinel_rate_limit_keys{filter="per-route"}"#),
        2.0,
        "{m}"
    );
}

#[test]
fn client_ip_behind_a_trusted_proxy_is_the_forwarded_client_and_from_anyone_else_the_peer() {
    let filters =
        r#"filter "ip" { type "rate-limit"; requests-per-second 1; burst 2; key "client-ip"; }"#;
    let routes = r#"route "api" { upstream "backend"; filters "ip"; }"#;
    let xff = |ip| [("x-forwarded-for", ip)];
    let (a, b) = (xff("203.0.113.1"), xff("203.0.113.2"));
    // Through the trusted peer, each forwarded client has its own bucket.
    let (p, addr, admin, _up) = start_trusted(true, filters, routes);
    assert_eq!(statuses(addr, "/x", &[&a, &a, &a]), [200, 200, 429]);
    assert_eq!(statuses(addr, "/x", &[&b, &b]), [200, 200]);
    assert_eq!(
        value(&metrics(admin), r#"zentinel_rate_limit_keys{filter="ip"}"#),
        2.0
    );
    let lines = audit_lines(p.dir(), 1);
    assert_eq!(lines[0]["client"], "203.0.113.1", "{lines:?}");
    // From a peer that is not trusted, the header is ignored: one bucket, the peer's.
    let (p, addr, admin, _up) = start_trusted(false, filters, routes);
    let c = xff("203.0.113.3");
    assert_eq!(statuses(addr, "/x", &[&a, &b, &c]), [200, 200, 429]);
    assert_eq!(
        value(&metrics(admin), r#"zentinel_rate_limit_keys{filter="ip"}"#),
        1.0
    );
    let lines = audit_lines(p.dir(), 1);
    assert_eq!(lines[0]["client"], "127.0.0.1", "{lines:?}");
}

#[test]
fn cookie_and_combined_keys_limit_each_value_on_its_own() {
    let (p, addr, _admin, _up) = start_trusted(
        true,
        r#"filter "session" { type "rate-limit"; requests-per-second 1; burst 1; key "cookie:session"; }
    filter "combo" { type "rate-limit"; requests-per-second 1; burst 1; key "client-ip" "header:x-api-key"; }"#,
        r#"route "s" { matches { path-prefix "/s/"; }; upstream "backend"; filters "session"; }
    route "c" { matches { path-prefix "/c/"; }; upstream "backend"; filters "combo"; }"#,
    );
    let cookie = |v| [("cookie", v)];
    let (a, a_again, b) = (
        cookie("session=a"),
        cookie("theme=dark; session=a"),
        cookie("session=b"),
    );
    // Another cookie beside it changes nothing: the same session, the same bucket.
    assert_eq!(statuses(addr, "/s/x", &[&a, &a_again, &b]), [200, 429, 200]);
    // No session cookie at all is one more bucket ("absent").
    assert_eq!(
        statuses(addr, "/s/x", &[&[], &cookie("theme=dark")]),
        [200, 429]
    );
    let who = |ip, key| [("x-forwarded-for", ip), ("x-api-key", key)];
    let (ip1_k1, ip1_k2, ip2_k1) = (
        who("203.0.113.1", "k1"),
        who("203.0.113.1", "k2"),
        who("203.0.113.2", "k1"),
    );
    // Both parts make the key: a change of either is another bucket.
    assert_eq!(
        statuses(addr, "/c/x", &[&ip1_k1, &ip1_k1, &ip1_k2, &ip2_k1]),
        [200, 429, 200, 200]
    );
    let lines = audit_lines(p.dir(), 3);
    let keys: Vec<_> = lines
        .iter()
        .map(|l| l["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys.iter().filter(|k| *k == "cookie:session").count(),
        2,
        "{keys:?}"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| *k == "client-ip+header:x-api-key")
            .count(),
        1,
        "{keys:?}"
    );
    let log = audit(p.dir());
    assert!(
        !log.contains("session=a") && !log.contains("k1"),
        "values never logged: {log}"
    );
}

#[test]
fn max_keys_from_the_config_evicts_the_least_recently_used_bucket() {
    let (_p, addr, admin, _up) = start_trusted(
        false,
        r#"filter "tiny" { type "rate-limit"; requests-per-second 1; burst 1; key "header:x-k"; max-keys 2; }"#,
        r#"route "api" { upstream "backend"; filters "tiny"; }"#,
    );
    let k = |v| [("x-k", v)];
    let (a, b, c) = (k("a"), k("b"), k("c"));
    let keys = || {
        value(
            &metrics(admin),
            r#"zentinel_rate_limit_keys{filter="tiny"}"#,
        )
    };
    // a and b fill the store; a is used again, so b is the least recently used.
    assert_eq!(statuses(addr, "/x", &[&a, &b, &a]), [200, 200, 429]);
    assert_eq!(keys(), 2.0);
    // c evicts b, whose emptied bucket is forgotten: b starts full again (evicting a) ...
    assert_eq!(statuses(addr, "/x", &[&c, &b]), [200, 200]);
    assert_eq!(keys(), 2.0, "never more than max-keys");
    // ... while c, kept, is still limited, and a, evicted, is full again.
    assert_eq!(statuses(addr, "/x", &[&c, &a]), [429, 200]);
}
