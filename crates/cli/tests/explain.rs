//! `zentinel explain`: text and JSON on the production example and on small configurations,
//! exit codes, and agreement with the library and with the proxy's own refusals.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use zentinel_proxy::errors::{Refusal, RefusedMethod};

fn zentinel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zentinel"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run zentinel")
}

fn production() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/production.kdl")
        .to_string_lossy()
        .into_owned()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `explain` and returns stdout, failing on a non-zero exit.
fn explain_ok(args: &[&str]) -> String {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    let out = zentinel(&all);
    assert!(
        out.status.success(),
        "{args:?}: {:?}\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&explain_ok(&all)).expect("JSON")
}

/// A temporary configuration file.
struct Temp {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Temp {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zentinel.kdl");
        std::fs::write(&path, text).expect("write");
        Self { _dir: dir, path }
    }

    fn arg(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

const SMALL: &str = r#"
listeners { listener "web" { address "127.0.0.1:8080"; protocol "http"; } }
upstreams {
    upstream "app" { target "127.0.0.1:3000" weight=3; target "127.0.0.1:3001"; }
}
routes {
    route "api" { priority 10; matches { path-prefix "/api/"; method "GET"; }; upstream "app"; }
    route "chat" { matches { path "/chat"; }; upstream "app"; websocket #true; }
    route "upload" { matches { path "/upload"; }; upstream "app"; limits { max-body-bytes 1000; } }
}
limits { max-uri-bytes 64; }
"#;

#[test]
fn production_text_names_listener_route_upstream_agents_and_limits() {
    let p = production();
    let out = explain_ok(&[
        "-c",
        &p,
        "GET",
        "https://api.example.com/v1/users",
        "-H",
        "x-api-key: abc",
    ]);
    for want in [
        "GET https://api.example.com/v1/users",
        "Outcome            forwarded to upstream \"api\" once \"auth\", \"waf\" allow it",
        "Listener           \"https\" (https on 0.0.0.0:8443)",
        "Route              \"api\" (priority 100, rank 4 of 8): every condition holds",
        "✓ host         api.example.com",
        "✓ path-prefix  /v1/",
        "near miss        \"api-canary\" (priority 110, rank 3) misses by one condition:",
        "✗ header  x-canary: 1  request: (none)",
        "Upstream           \"api\" (least-connections)",
        "10.0.1.12:8080  weight 1",
        "first try        connect 1000 ms, read 5000 ms, write 5000 ms",
        "2. agent \"auth\"",
        "failure mode  closed (the route's failure-mode; the agent's own is closed)",
        "→ 504 on timeout, 503 when unreachable",
        "request body  buffer, up to 131072 bytes",
        "route: remove x-internal-user; set x-edge: zentinel",
        "request target bytes",
        "route \"api\" limits.max-body-bytes",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // Its rate-limit filter is carried out now: nothing to refuse.
    assert!(!out.contains("refuses to start"), "{out}");
}

#[test]
fn production_json_is_the_libraries_explanation_byte_for_byte() {
    let p = production();
    let args = [
        "-c",
        &p,
        "--client-ip",
        "10.0.0.5",
        "-H",
        "x-forwarded-for: 198.51.100.7",
        "GET",
        "https://api.example.com/v1/users",
        "-H",
        "upgrade: websocket",
    ];
    let mut all = vec!["explain", "--format", "json"];
    all.extend_from_slice(&args);
    let out = zentinel(&all);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["routing"]["matched"]["id"], "api");
    assert_eq!(v["routing"]["shadowed"][0]["id"], "plain-http");
    assert_eq!(v["outcome"]["action"], "refuse");
    assert_eq!(v["outcome"]["status"], 403);
    assert_eq!(v["request"]["client"]["client_ip"], "198.51.100.7");
    assert_eq!(v["route"]["filters"][1]["failure_mode_from"], "route");

    let config = zentinel_config::loader::load_file(Path::new(&p)).unwrap();
    let mut r = zentinel_config::explain::RequestDescription::from_url(
        "GET",
        "https://api.example.com/v1/users",
    )
    .unwrap();
    r.header_line("x-forwarded-for: 198.51.100.7").unwrap();
    r.header_line("upgrade: websocket").unwrap();
    r.client_ip = Some("10.0.0.5".parse().unwrap());
    let e = zentinel_config::explain::explain(&config, None, &r).unwrap();
    assert_eq!(
        text(&out.stdout),
        serde_json::to_string_pretty(&e).unwrap() + "\n"
    );
}

#[test]
fn a_request_no_route_takes_is_a_404_with_near_misses() {
    let c = Temp::new(SMALL);
    let out = explain_ok(&["-c", &c.arg(), "POST", "http://h.test/api/users"]);
    assert!(
        out.contains("Outcome            404 Not Found: no route matches this request"),
        "{out}"
    );
    assert!(
        out.contains("Route              none of the listener's 3 routes matches"),
        "{out}"
    );
    assert!(out.contains("\"api\" (priority 10, rank 1) misses by one condition:"));
    assert!(out.contains("✗ method  GET  request: POST"), "{out}");
    let v = json(&["-c", &c.arg(), "POST", "http://h.test/api/users"]);
    assert_eq!(v["outcome"]["status"], 404);
    assert!(v["route"].is_null());
}

#[test]
fn requests_that_break_a_limit_get_the_proxys_status() {
    let c = Temp::new(SMALL);
    let long = format!("http://h.test/api/{}", "a".repeat(64));
    let v = json(&["-c", &c.arg(), "GET", &long]);
    assert_eq!(v["outcome"]["status"], 414);
    let v = json(&[
        "-c",
        &c.arg(),
        "POST",
        "http://h.test/upload",
        "-H",
        "content-length: 1001",
    ]);
    assert_eq!(v["outcome"]["status"], 413);
    let out = explain_ok(&[
        "-c",
        &c.arg(),
        "GET",
        "http://h.test/api/x",
        "-H",
        "upgrade: websocket",
    ]);
    assert!(
        out.contains("403 Forbidden: protocol upgrades are not allowed on this route"),
        "{out}"
    );
    let v = json(&[
        "-c",
        &c.arg(),
        "GET",
        "http://h.test/chat",
        "-H",
        "upgrade: websocket",
    ]);
    assert_eq!(v["outcome"]["action"], "forward");
    // Text lists the limit with the request's value.
    let out = explain_ok(&["-c", &c.arg(), "GET", &long]);
    assert!(out.contains("✗ request target bytes"), "{out}");
    assert!(out.contains("69 > 64"), "{out}");
}

#[test]
fn statuses_and_reasons_are_the_proxys_own() {
    let c = Temp::new(SMALL);
    let cases = [
        (vec!["GET", "http://h.test/nothing"], Refusal::NoRoute),
        (
            vec![
                "GET",
                "http://h.test/api/0123456789012345678901234567890123456789012345678901234567890",
            ],
            Refusal::UriTooLong,
        ),
        (
            vec!["POST", "http://h.test/upload", "-H", "content-length: 5000"],
            Refusal::BodyTooLarge,
        ),
        (
            vec!["GET", "http://h.test/api/x", "-H", "upgrade: websocket"],
            Refusal::UpgradeNotAllowed,
        ),
        (
            vec!["TRACE", "http://h.test/api/x"],
            Refusal::Method(RefusedMethod::Trace),
        ),
        (
            vec!["CONNECT", "http://h.test/api/x"],
            Refusal::Method(RefusedMethod::Connect),
        ),
    ];
    for (args, refusal) in cases {
        let mut all = vec!["-c", c.path.to_str().unwrap()];
        all.extend(args);
        let v = json(&all);
        assert_eq!(v["outcome"]["status"], refusal.status(), "{refusal:?}");
        assert_eq!(v["outcome"]["reason"], refusal.reason(), "{refusal:?}");
    }
    // Any upgrade but WebSocket is dropped, not refused: the request is forwarded.
    let v = json(&[
        "-c",
        c.path.to_str().unwrap(),
        "GET",
        "http://h.test/api/x",
        "-H",
        "upgrade: h2c",
    ]);
    assert_eq!(v["outcome"]["action"], "forward", "{v}");
    let many: Vec<String> = (0..101).map(|i| format!("x-{i}: v")).collect();
    let mut all = vec![
        "-c".to_owned(),
        c.arg(),
        "GET".to_owned(),
        "http://h.test/api/x".to_owned(),
    ];
    for h in &many {
        all.push("-H".to_owned());
        all.push(h.clone());
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let v = json(&all);
    assert_eq!(v["outcome"]["status"], Refusal::HeadersTooLarge.status());
    assert_eq!(v["outcome"]["reason"], Refusal::HeadersTooLarge.reason());
}

#[test]
fn bad_requests_exit_2_with_a_clear_message() {
    let c = Temp::new(SMALL);
    let cases: [(&[&str], &str); 6] = [
        (&["GET", "h.test/api"], "is not an http:// or https:// URL"),
        (&["GET", "http://h.test/a b"], "must be percent-encoded"),
        (&["GET", "http://h.test:99999/"], "port \"99999\""),
        (
            &["GET", "http://h.test/", "-H", "no colon"],
            "is not written 'name: value'",
        ),
        (
            &["--listener", "wbe", "GET", "http://h.test/"],
            "did you mean \"web\"?",
        ),
        (
            &["GET", "https://h.test/"],
            "no listener serves https:// requests",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["explain", "-c", c.path.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = zentinel(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.starts_with("zentinel explain: "), "{err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
    // clap's own usage errors are 2 as well.
    assert_eq!(zentinel(&["explain", "GET"]).status.code(), Some(2));
    let out = zentinel(&["explain", "--client-ip", "1.2.3", "GET", "http://h.test/"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_invalid_configuration_prints_what_validate_prints_and_exits_1() {
    let c = Temp::new("listeners { listener \"web\" { adress \"127.0.0.1:80\"; } }\n");
    let validate = zentinel(&["validate", &c.arg()]);
    let out = zentinel(&["explain", "-c", &c.arg(), "GET", "http://h.test/"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), text(&validate.stderr));
    assert!(text(&out.stderr).contains("did you mean `address`?"));
    assert!(out.stdout.is_empty());
}

#[test]
fn llm_gateway_shows_the_inference_block_and_the_shared_rate_limit() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/llm-gateway.kdl")
        .to_string_lossy()
        .into_owned();
    let out = explain_ok(&[
        "-c",
        &p,
        "POST",
        "http://localhost:8080/v1/chat/completions",
        "-H",
        "authorization: Bearer k",
    ]);
    for want in [
        "Route              \"chat\"",
        "inference        openai per header:authorization: 200000 tokens/min, 600 requests/min, daily budget 5000000 (enforce), monthly budget 100000000 (alert-only); prompts counted by auto",
        "shared        on redis 127.0.0.1:6379/0 (each call ≤ 20 ms); if it cannot answer: counted in this proxy (100000 keys kept)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let j = json(&[
        "-c",
        &p,
        "POST",
        "http://localhost:8080/v1/messages",
        "-H",
        "x-api-key: k",
    ]);
    let inf = &j["route"]["inference"];
    assert_eq!(inf["provider"], "anthropic", "{j}");
    assert_eq!(inf["tokens_per_minute"], 80_000);
    assert_eq!(inf["budgets"][0]["period"], "hourly");
}
