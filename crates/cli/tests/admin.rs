//! The admin API end to end: the proxy as a child process with an admin listener on an
//! ephemeral port. Health and readiness, metrics moving as traffic and agents drive them
//! (scraped with `curl`), the breaker gauge, reload over HTTP and by SIGHUP with its
//! counters and config hash, the bearer token, redaction in `/config`, target health in
//! `/upstreams`, and the admin endpoints never reachable on a traffic listener.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::thread;
use std::time::Duration;

use support::agent::{MockAgent, Script, THREE_ROUTES, proxy_config};
use support::{
    Behaviour, MockUpstream, Proxy, Response, free_addr, get, request, value, wait_until,
};

const HUP: i32 = 1;
const WAIT: Duration = Duration::from_secs(10);

/// A configuration with listener "web" at `addr`, the admin API at `admin`, the error log
/// at `info` and no access log, then `body`.
fn config(addr: SocketAddr, admin: SocketAddr, admin_extra: &str, body: &str) -> String {
    format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; error-log {{ level "info"; }} }}
admin {{ address "{admin}"; {admin_extra} }}
{body}"#
    )
}

fn upstream_u(targets: &[SocketAddr], extra: &str) -> String {
    let targets: String = targets
        .iter()
        .map(|t| format!("target \"{t}\"; "))
        .collect();
    format!(
        r#"upstreams {{ upstream "u" {{ {targets} {extra} }} }}
routes {{ route "r" {{ matches {{ path-prefix "/app"; }}; upstream "u"; retry {{ max-attempts 1; }} }} }}"#
    )
}

/// `GET path` on the admin API, with a bearer token if given.
fn admin_get(admin: SocketAddr, path: &str, token: Option<&str>) -> Response {
    admin_request(admin, "GET", path, token)
}

fn admin_request(admin: SocketAddr, method: &str, path: &str, token: Option<&str>) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    request(admin, method, "admin", path, &headers, b"")
}

fn scrape(admin: SocketAddr) -> String {
    let r = admin_get(admin, "/metrics", None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// `/metrics` as `curl` sees it.
fn curl_metrics(admin: SocketAddr) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://{admin}/metrics"))
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 exposition")
}

/// The hash of `zentinel_config_info`.
fn config_hash(metrics: &str) -> String {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("zentinel_config_info{hash=\"")?
                .split('"')
                .next()
        })
        .expect("zentinel_config_info")
        .to_owned()
}

fn json(r: &Response) -> serde_json::Value {
    assert_eq!(r.header("content-type"), Some("application/json"));
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

#[test]
fn health_metrics_and_methods_and_nothing_on_the_traffic_listener() {
    let up = MockUpstream::start("u");
    let (addr, admin) = (free_addr(), free_addr());
    let p = Proxy::start(
        &config(addr, admin, "", &upstream_u(&[up.addr()], "")),
        &[addr, admin],
    );
    let r = admin_get(admin, "/health", None);
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = admin_get(admin, "/ready", None);
    assert_eq!((r.status, r.text().as_str()), (200, "ready\n"));

    let ok = r#"zentinel_requests_total{route="r",code="200"}"#;
    assert_eq!(value(&scrape(admin), ok), 0.0);
    for n in 1..=3 {
        assert_eq!(get(addr, "h.test", "/app").status, 200);
        // Counted when the request ends, just after its response left.
        wait_until(WAIT, "the request is counted", || {
            value(&scrape(admin), ok) == f64::from(n)
        });
    }
    let m = scrape(admin);
    assert_eq!(
        value(&m, r#"zentinel_request_duration_seconds_count{route="r"}"#),
        3.0
    );
    assert_eq!(
        value(
            &m,
            r#"zentinel_upstream_duration_seconds_count{upstream="u"}"#
        ),
        3.0
    );
    assert!(m.contains("# TYPE zentinel_request_duration_seconds histogram\n"));

    // The traffic listener routes `/metrics` like any request: no route matches it.
    let r = get(addr, "h.test", "/metrics");
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("zentinel_"), "{}", r.text());
    let r = get(addr, "h.test", "/health");
    assert_eq!(r.status, 404);
    wait_until(WAIT, "the unrouted request is counted", || {
        value(
            &scrape(admin),
            r#"zentinel_requests_total{route="",code="404"}"#,
        ) == 2.0
    });

    assert_eq!(admin_get(admin, "/nope", None).status, 404);
    let r = admin_request(admin, "POST", "/metrics", None);
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    let r = admin_get(admin, "/reload", None);
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    // A body is never read: the answer comes, and the connection closes.
    let r = request(admin, "GET", "admin", "/health", &[], b"ignored");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(up.hits(), 3, "no admin request reached the upstream");
    drop(p);
}

#[test]
fn ready_waits_for_the_first_health_check_of_every_target() {
    let slow = MockUpstream::start("slow");
    // The first probe ends after its 3 s deadline: until then the target is unchecked.
    slow.set_behaviour(Behaviour::Delay(Duration::from_secs(4)));
    let (addr, admin) = (free_addr(), free_addr());
    let check =
        r#"health-check { http "/"; interval-ms 5000; timeout-ms 3000; unhealthy-threshold 2; }"#;
    let _p = Proxy::start(
        &config(addr, admin, "", &upstream_u(&[slow.addr()], check)),
        &[addr, admin],
    );
    let r = admin_get(admin, "/ready", None);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("not health-checked yet"), "{}", r.text());
    assert_eq!(admin_get(admin, "/health", None).status, 200);
    wait_until(WAIT, "ready after the first probe", || {
        admin_get(admin, "/ready", None).status == 200
    });
    let targets = &json(&admin_get(admin, "/upstreams", None))["upstreams"][0]["targets"];
    assert_eq!(targets[0]["probed"], true);
    assert_eq!(
        targets[0]["healthy"], true,
        "one failure is below the threshold"
    );
}

#[test]
fn a_stopped_target_shows_unhealthy_in_upstreams_and_metrics() {
    let (a, b) = (MockUpstream::start("a"), MockUpstream::start("b"));
    let (addr, admin) = (free_addr(), free_addr());
    let check = r#"health-check { tcp; interval-ms 100; timeout-ms 50; healthy-threshold 2; unhealthy-threshold 2; }
    passive-health { enabled #false; }"#;
    let _p = Proxy::start(
        &config(addr, admin, "", &upstream_u(&[a.addr(), b.addr()], check)),
        &[addr, admin],
    );
    let healthy =
        |t: SocketAddr| format!(r#"zentinel_upstream_target_healthy{{upstream="u",target="{t}"}}"#);
    wait_until(WAIT, "ready", || {
        admin_get(admin, "/ready", None).status == 200
    });
    assert_eq!(value(&scrape(admin), &healthy(b.addr())), 1.0);
    b.stop();
    wait_until(WAIT, "b marked down", || {
        let v = json(&admin_get(admin, "/upstreams", None));
        let t = &v["upstreams"][0]["targets"][1];
        t["healthy"] == false && t["down"] == true
    });
    let v = json(&admin_get(admin, "/upstreams", None));
    let targets = &v["upstreams"][0]["targets"];
    assert_eq!(targets[1]["address"], b.addr().to_string());
    assert_eq!(targets[1]["ejected"], false);
    assert_eq!(targets[0]["healthy"], true);
    assert_eq!(targets[0]["in_flight"], 0);
    let m = scrape(admin);
    assert_eq!(value(&m, &healthy(b.addr())), 0.0);
    assert_eq!(value(&m, &healthy(a.addr())), 1.0);
    assert!(
        m.contains(&healthy(b.addr())),
        "the series exists with 0: {m}"
    );
}

/// The proxy of the agent tests: [`THREE_ROUTES`] with agent "a" (`extra` settings),
/// access lines on stdout, audit lines on stderr, and the admin API.
fn with_agent(agent: &MockAgent, extra: &str) -> (Proxy, SocketAddr, SocketAddr, MockUpstream) {
    let up = MockUpstream::start("u");
    let (addr, admin) = (free_addr(), free_addr());
    let mut c = proxy_config(
        addr,
        up.addr(),
        agent.socket(),
        r#""request-headers""#,
        extra,
        THREE_ROUTES,
    );
    c.push_str(&format!("\nadmin {{ address \"{admin}\"; }}\n"));
    let p = Proxy::start(&c, &[addr, admin]);
    (p, addr, admin, up)
}

fn calls(agent_route: &str, outcome: &str) -> String {
    format!(r#"zentinel_agent_calls_total{{agent="a",route="{agent_route}",outcome="{outcome}"}}"#)
}

/// Holds both permits of agent "a" with calls it never answers (they time out after 1 s):
/// a third request is refused at once as saturated.
fn saturate(agent: &MockAgent, addr: SocketAddr, admin: SocketAddr) {
    agent.set_for_path("/closed/held", Script::Hang);
    let held: Vec<_> = (0..2)
        .map(|_| thread::spawn(move || get(addr, "h.test", "/closed/held").status))
        .collect();
    wait_until(WAIT, "both permits are held", || {
        agent
            .requests()
            .iter()
            .filter(|r| r.uri == "/closed/held")
            .count()
            == 2
    });
    let m = curl_metrics(admin);
    assert_eq!(
        value(&m, r#"zentinel_agent_permits_in_use{agent="a"}"#),
        2.0
    );
    assert_eq!(get(addr, "h.test", "/closed/now").status, 503);
    let m = curl_metrics(admin);
    assert_eq!(value(&m, &calls("closed", "saturated")), 1.0);
    let saturated =
        r#"zentinel_agent_fail_closed_total{agent="a",route="closed",reason="saturated"}"#;
    assert_eq!(value(&m, saturated), 1.0);
    for h in held {
        assert_eq!(h.join().unwrap(), 504);
    }
}

#[test]
fn curl_sees_the_agent_outcome_counters_move() {
    let agent = MockAgent::start();
    let (_p, addr, admin, _up) = with_agent(
        &agent,
        "timeout-ms 1000; max-concurrent-calls 2; circuit-breaker { failure-threshold 1000; }",
    );
    let m = curl_metrics(admin);
    assert_eq!(value(&m, &calls("closed", "allow")), 0.0);
    assert_eq!(value(&m, r#"zentinel_agent_permits{agent="a"}"#), 2.0);

    // allow
    assert_eq!(get(addr, "h.test", "/closed/ok").status, 200);
    assert_eq!(value(&curl_metrics(admin), &calls("closed", "allow")), 1.0);

    // block
    let rule = "r-7";
    let block = Script::Block {
        status: 451,
        body: "no\n",
        rule,
    };
    agent.set_for_path("/closed/blocked", block);
    assert_eq!(get(addr, "h.test", "/closed/blocked").status, 451);
    assert_eq!(value(&curl_metrics(admin), &calls("closed", "block")), 1.0);

    // timeout, fail-closed and fail-open
    agent.set_for_path("/closed/slow", Script::Delay(Duration::from_secs(3)));
    agent.set_for_path("/open/slow", Script::Delay(Duration::from_secs(3)));
    assert_eq!(get(addr, "h.test", "/closed/slow").status, 504);
    assert_eq!(get(addr, "h.test", "/open/slow").status, 200);
    let m = curl_metrics(admin);
    assert_eq!(value(&m, &calls("closed", "timeout")), 1.0);
    assert_eq!(value(&m, &calls("open", "timeout")), 1.0);
    let closed = r#"zentinel_agent_fail_closed_total{agent="a",route="closed",reason="timeout"}"#;
    let open = r#"zentinel_agent_fail_open_total{agent="a",route="open",reason="timeout"}"#;
    assert_eq!((value(&m, closed), value(&m, open)), (1.0, 1.0));

    saturate(&agent, addr, admin);
    let m = curl_metrics(admin);
    assert_eq!(value(&m, &calls("closed", "timeout")), 3.0);
    assert_eq!(
        value(&m, r#"zentinel_agent_permits_in_use{agent="a"}"#),
        0.0
    );
    // Every call that reached the agent is timed: allow, block and four timeouts.
    assert_eq!(
        value(
            &m,
            r#"zentinel_agent_call_duration_seconds_count{agent="a"}"#
        ),
        6.0
    );
    assert_eq!(value(&m, r#"zentinel_agent_ready{agent="a"}"#), 1.0);
    // The route without the agent is not in the agent's series.
    assert_eq!(get(addr, "h.test", "/plain").status, 200);
    assert!(!curl_metrics(admin).contains(r#"route="plain",outcome"#));

    let v = json(&admin_get(admin, "/agents", None));
    let a = &v["agents"][0];
    assert_eq!(a["id"], "a");
    assert_eq!(a["transport"]["kind"], "unix-socket");
    assert_eq!(
        (a["ready"].clone(), a["breaker"].clone()),
        (true.into(), "closed".into())
    );
    assert_eq!(
        (a["permits"].clone(), a["permits_in_use"].clone()),
        (2.into(), 0.into())
    );
    assert_eq!(a["capabilities"]["agent_id"], "mock");
    assert!(a["client"]["reconnects"].is_u64());
}

#[test]
fn the_breaker_gauge_goes_to_open_and_breaker_open_calls_are_counted() {
    let agent = MockAgent::start();
    agent.set_default(Script::Delay(Duration::from_millis(400)));
    let (_p, addr, admin, _up) = with_agent(
        &agent,
        "timeout-ms 100; circuit-breaker { failure-threshold 2; success-threshold 1; timeout-seconds 30; }",
    );
    let state = r#"zentinel_agent_breaker_state{agent="a"}"#;
    assert_eq!(value(&curl_metrics(admin), state), 0.0);
    assert!(curl_metrics(admin).contains(&format!("{state} 0\n")));
    assert_eq!(get(addr, "h.test", "/closed").status, 504);
    assert_eq!(get(addr, "h.test", "/closed").status, 504);
    assert_eq!(value(&curl_metrics(admin), state), 2.0);
    assert_eq!(get(addr, "h.test", "/closed").status, 503);
    let m = curl_metrics(admin);
    assert_eq!(value(&m, &calls("closed", "breaker-open")), 1.0);
    assert_eq!(value(&m, &calls("closed", "timeout")), 2.0);
    let v = json(&admin_get(admin, "/agents", None));
    assert_eq!(v["agents"][0]["breaker"], "open");
}

/// A configuration whose route tags responses with `name`.
fn tagged(addr: SocketAddr, admin: SocketAddr, name: &str, up: SocketAddr) -> String {
    config(
        addr,
        admin,
        "",
        &format!(
            r#"upstreams {{ upstream "u" {{ target "{up}"; }} }}
routes {{ route "r" {{ upstream "u"; response-headers {{ set "x-config" "{name}"; }} }} }}"#
        ),
    )
}

#[test]
fn reload_over_http_and_by_sighup_is_counted_with_the_config_hash() {
    let up = MockUpstream::start("u");
    let (addr, admin) = (free_addr(), free_addr());
    let p = Proxy::start(&tagged(addr, admin, "one", up.addr()), &[addr, admin]);
    let success = r#"zentinel_reloads_total{result="success"}"#;
    let failure = r#"zentinel_reloads_total{result="failure"}"#;
    let m = scrape(admin);
    assert_eq!((value(&m, success), value(&m, failure)), (0.0, 0.0));
    assert!(value(&m, "zentinel_reload_last_success_timestamp_seconds") > 1.0e9);
    let first = config_hash(&m);

    p.write_file("zentinel.kdl", &tagged(addr, admin, "two", up.addr()));
    let r = admin_request(admin, "POST", "/reload", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let body = json(&r);
    assert_eq!(body["reloaded"], true);
    assert_eq!(get(addr, "h.test", "/").header("x-config"), Some("two"));
    let m = scrape(admin);
    let second = config_hash(&m);
    assert_ne!(first, second, "the hash follows the configuration");
    assert_eq!(body["config_hash"], second.as_str());
    assert_eq!((value(&m, success), value(&m, failure)), (1.0, 0.0));
    assert_eq!(m.matches("zentinel_config_info{").count(), 1, "{m}");

    // Invalid: refused with the validator's text; nothing changes but the failure count.
    let broken =
        tagged(addr, admin, "three", up.addr()).replace("upstream \"u\";", "upstrem \"u\";");
    p.write_file("zentinel.kdl", &broken);
    let r = admin_request(admin, "POST", "/reload", None);
    assert_eq!(r.status, 422, "{}", r.text());
    let body = json(&r);
    assert_eq!(body["reloaded"], false);
    assert!(
        body["reason"].as_str().unwrap().contains("did you mean"),
        "{body}"
    );
    let m = scrape(admin);
    assert_eq!((value(&m, success), value(&m, failure)), (1.0, 1.0));
    assert_eq!(config_hash(&m), second);
    assert_eq!(get(addr, "h.test", "/").header("x-config"), Some("two"));

    // What needs a restart: 409, named.
    p.write_file(
        "zentinel.kdl",
        &tagged(free_addr(), admin, "four", up.addr()),
    );
    let r = admin_request(admin, "POST", "/reload", None);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        json(&r)["reason"]
            .as_str()
            .unwrap()
            .contains("need a restart")
    );
    let moved_admin = tagged(addr, free_addr(), "four", up.addr());
    p.write_file("zentinel.kdl", &moved_admin);
    let r = admin_request(admin, "POST", "/reload", None);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        json(&r)["reason"]
            .as_str()
            .unwrap()
            .contains("admin.address")
    );
    assert_eq!(value(&scrape(admin), failure), 3.0);

    // SIGHUP runs the same reload and counts the same way.
    p.write_file("zentinel.kdl", &tagged(addr, admin, "five", up.addr()));
    p.signal(HUP);
    wait_until(WAIT, "the SIGHUP reload is counted", || {
        value(&scrape(admin), success) == 2.0
    });
    let m = scrape(admin);
    assert_ne!(config_hash(&m), second);
    assert_eq!(get(addr, "h.test", "/").header("x-config"), Some("five"));
}

#[test]
fn a_token_guards_every_endpoint_but_health() {
    let up = MockUpstream::start("u");
    let (addr, admin) = (free_addr(), free_addr());
    let c = config(
        addr,
        admin,
        r#"token-file "admin.token";"#,
        &upstream_u(&[up.addr()], ""),
    );
    let _p = Proxy::start_with_files(&c, &[("admin.token", "s3cret-t0ken\n")], &[addr, admin]);
    assert_eq!(admin_get(admin, "/health", None).status, 200);
    for path in [
        "/metrics",
        "/ready",
        "/config",
        "/upstreams",
        "/agents",
        "/nope",
    ] {
        let r = admin_get(admin, path, None);
        assert_eq!(r.status, 401, "{path}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{path}: {:?}",
            r.headers
        );
        assert_eq!(admin_get(admin, path, Some("wrong")).status, 401, "{path}");
    }
    assert_eq!(admin_request(admin, "POST", "/reload", None).status, 401);
    assert_eq!(
        admin_get(admin, "/metrics", Some("s3cret-t0ken")).status,
        200
    );
    let r = admin_get(admin, "/config", Some("s3cret-t0ken"));
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("s3cret"), "the token is never shown");
    assert_eq!(json(&r)["admin"]["address"], admin.to_string());
    assert_eq!(admin_get(admin, "/nope", Some("s3cret-t0ken")).status, 404);
}

#[test]
fn an_empty_or_missing_token_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let missing = dir.path().join("missing.token");
    for (file, why) in [(&empty, "holds no token"), (&missing, "No such file")] {
        let c = config(
            free_addr(),
            free_addr(),
            &format!("token-file \"{}\";", file.display()),
            &upstream_u(&[free_addr()], ""),
        );
        let (code, err) = Proxy::fail_to_start(&c);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains("admin token-file") && err.contains(why),
            "{err}"
        );
    }
}

#[test]
fn config_shows_defaults_and_redacts_agent_secrets() {
    let agent = MockAgent::start();
    let (_p, _addr, admin, _up) = with_agent(
        &agent,
        r#"config { api-key "k-123"; mode "strict"; nested { db-password "p-456"; depth 2; } }"#,
    );
    let r = admin_get(admin, "/config", None);
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(!text.contains("k-123") && !text.contains("p-456"), "{text}");
    let v = json(&r);
    let c = &v["agents"][0]["config"];
    assert_eq!(c["api-key"], "[redacted]");
    assert_eq!(c["mode"], "strict");
    assert_eq!(c["nested"]["db-password"], "[redacted]");
    assert_eq!(c["nested"]["depth"], 2);
    assert!(
        v["agents"][0]["max_concurrent_calls"].is_u64(),
        "defaults are filled in"
    );
    assert!(v["limits"]["max_body_bytes"].is_u64());
    // The agent itself got the real values.
    assert_eq!(agent.configs()[0]["api-key"], "k-123");
}
