//! Token-aware limits for LLM traffic end to end, against a mock OpenAI-compatible API and a
//! mock Anthropic one (plain JSON and streamed events): the prompt counted before
//! forwarding, the real usage charged after, 429s with `Retry-After` for each limit (tokens,
//! requests, an enforced budget), a prompt over the limit never reaching the model, alert-only
//! budgets in the audit log, per-key isolation, and the `/metrics` series.

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

use serde_json::json;
use support::llm::MockLlm;
use support::{MockUpstream, Proxy, Response, count, free_addr, metrics, request, wait_until};

struct Setup {
    proxy: Proxy,
    addr: SocketAddr,
    admin: SocketAddr,
    llm: MockLlm,
}

/// Routes `/v1/chat/completions` (OpenAI) and `/v1/messages` (Anthropic), each with the
/// given inference settings after `provider`, keyed per `Authorization`.
fn start(openai: &str, anthropic: &str) -> Setup {
    let llm = MockLlm::start();
    let target = llm.addr();
    start_to(target, llm, openai, anthropic)
}

/// As [`start`], with the routes' upstream at `target` instead of the mock LLM.
fn start_to(target: SocketAddr, llm: MockLlm, openai: &str, anthropic: &str) -> Setup {
    let (addr, admin) = (free_addr(), free_addr());
    let proxy = Proxy::start(
        &config(addr, admin, target, openai, anthropic),
        &[addr, admin],
    );
    Setup {
        proxy,
        addr,
        admin,
        llm,
    }
}

fn config(
    addr: SocketAddr,
    admin: SocketAddr,
    target: SocketAddr,
    openai: &str,
    anthropic: &str,
) -> String {
    format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; audit-log {{ destination "file"; path "audit.log"; }}; error-log {{ level "info"; }} }}
admin {{ address "{admin}"; }}
upstreams {{ upstream "llm" {{ target "{target}"; }} }}
routes {{
    route "openai" {{
        matches {{ path "/v1/chat/completions"; }}
        upstream "llm"
        inference {{ provider "openai"; key "header:authorization"; {openai} }}
    }}
    route "anthropic" {{
        matches {{ path "/v1/messages"; }}
        upstream "llm"
        inference {{ provider "anthropic"; key "header:x-api-key"; {anthropic} }}
    }}
}}"#
    )
}

/// "hello world" as the user message: 2 tokens of text, 3 of framing, 3 for the reply.
const PROMPT_TOKENS: u64 = 8;

fn chat(s: &Setup, key: &str, body: &serde_json::Value, extra: &[(&str, &str)]) -> Response {
    let auth = format!("Bearer {key}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept-Encoding", "gzip, br"),
    ];
    headers.extend_from_slice(extra);
    let bytes = body.to_string();
    request(
        s.addr,
        "POST",
        "llm.test",
        "/v1/chat/completions",
        &headers,
        bytes.as_bytes(),
    )
}

fn openai_body(max_tokens: u64, stream: bool, include_usage: bool) -> serde_json::Value {
    let mut b = json!({
        "model": "gpt-4o",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "hello world"}],
    });
    if stream {
        b["stream"] = json!(true);
    }
    if include_usage {
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}

fn header_u64(r: &Response, name: &str) -> u64 {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} in {r:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn audit(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The audit lines once `n` of them are written (the log's writer thread is asynchronous).
fn audit_lines(dir: &Path, n: usize) -> Vec<serde_json::Value> {
    wait_until(Duration::from_secs(5), "the audit lines", || {
        audit(dir).len() >= n
    });
    audit(dir)
}

/// Waits until the settle of the last exchange shows in `/metrics` (it runs as the
/// exchange's log line is written, just after the client has its answer).
fn settled(s: &Setup, series: &str, want: u64) {
    wait_until(Duration::from_secs(5), series, || {
        count(&metrics(s.admin), series) == want
    });
}

#[test]
fn openai_json_is_counted_before_and_charged_its_usage_after() {
    let s = start("tokens-per-minute 6000;", "");
    let r = chat(&s, "a", &openai_body(30, false, false), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    // The headers were written before the usage was known: the prompt's estimate is charged.
    assert_eq!(
        header_u64(&r, "x-inference-tokens-remaining"),
        6000 - PROMPT_TOKENS
    );
    assert!(header_u64(&r, "x-inference-tokens-reset") <= 1);
    let got = &s.llm.requests()[0];
    assert_eq!(
        got.body["messages"][0]["content"], "hello world",
        "forwarded as sent"
    );
    assert!(
        !got.headers.iter().any(|(n, _)| n == "accept-encoding"),
        "the answer is asked for uncompressed: {:?}",
        got.headers
    );
    settled(
        &s,
        r#"zentinel_inference_tokens_total{route="openai",kind="completion",source="usage"}"#,
        30,
    );
    let m = metrics(s.admin);
    let prompt = r#"zentinel_inference_tokens_total{route="openai",kind="prompt",source="usage"}"#;
    assert_eq!(count(&m, prompt), 10, "the mock's own prompt count");
    let estimated = r#"zentinel_inference_estimated_prompt_tokens_total{route="openai"}"#;
    assert_eq!(count(&m, estimated), PROMPT_TOKENS);
    // 40 used in all: the next answer shows 6000 - 40 - 8, plus what a few ms refilled.
    let r = chat(&s, "a", &openai_body(1, false, false), &[]);
    let left = header_u64(&r, "x-inference-tokens-remaining");
    assert!((5952..=5962).contains(&left), "{left}");
    assert_eq!(
        count(
            &metrics(s.admin),
            r#"zentinel_inference_keys{route="openai"}"#
        ),
        1
    );
}

#[test]
fn a_prompt_over_the_limit_is_answered_429_and_never_reaches_the_model() {
    let s = start("tokens-per-minute 20;", "");
    let long = "lorem ipsum dolor sit amet ".repeat(10);
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": long}]});
    let r = chat(&s, "a", &body, &[]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.text().contains("the prompt alone is over"),
        "{}",
        r.text()
    );
    assert!(r.header("retry-after").is_none(), "waiting cannot help");
    assert!(
        r.text()
            .contains(&r.header("x-request-id").unwrap_or("?").to_owned())
    );
    assert!(
        s.llm.requests().is_empty(),
        "the model never got the prompt"
    );
    let is_inference = |l: &serde_json::Value| l["reason"] == "inference";
    wait_until(Duration::from_secs(5), "the inference audit line", || {
        audit(s.proxy.dir()).iter().any(is_inference)
    });
    let a = audit(s.proxy.dir());
    let line = a.iter().find(|l| is_inference(l)).expect("audit line");
    assert_eq!(line["limit"], "tokens-per-minute");
    assert_eq!(line["decision"], "reject");
    assert_eq!(line["key"], "header:authorization");
    assert!(line["prompt_tokens"].as_u64().unwrap() > 20);
    assert!(
        !line.to_string().contains("Bearer"),
        "the key's value is never logged"
    );
    let m = metrics(s.admin);
    assert_eq!(
        count(
            &m,
            r#"zentinel_inference_requests_total{route="openai",outcome="tokens-per-minute"}"#
        ),
        1
    );
    // A short prompt still passes: 8 of 20. The answer used 10 + 5.
    let r = chat(&s, "a", &openai_body(5, false, false), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let allowed = r#"zentinel_inference_requests_total{route="openai",outcome="allowed"}"#;
    settled(&s, allowed, 1);
    // 5 left: the next prompt (8) passes the first gate but not its count, and is told
    // when 3 more tokens are back (20 a minute: 9 s).
    let r = chat(&s, "a", &openai_body(1, false, false), &[]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.text().contains("token rate limit exceeded"),
        "{}",
        r.text()
    );
    let wait = header_u64(&r, "retry-after");
    assert!((8..=9).contains(&wait), "{wait}");
    assert_eq!(header_u64(&r, "x-inference-tokens-remaining"), 5);
    assert_eq!(
        s.llm.requests().len(),
        1,
        "the refused prompt never reached the model"
    );
}

#[test]
fn usage_beyond_the_estimate_is_debt_that_the_next_request_waits_for() {
    let s = start("tokens-per-minute 600;", "");
    // Charged 8 up front; the answer used 10 + 700.
    let r = chat(&s, "a", &openai_body(700, false, false), &[]);
    assert_eq!(r.status, 200);
    settled(
        &s,
        r#"zentinel_inference_tokens_total{route="openai",kind="completion",source="usage"}"#,
        700,
    );
    let r = chat(&s, "a", &openai_body(1, false, false), &[]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(header_u64(&r, "x-inference-tokens-remaining"), 0);
    // 110 of debt and one token to pass, at 10 a second: about 11 s.
    let wait = header_u64(&r, "retry-after");
    assert!((10..=12).contains(&wait), "{wait}");
    // Another key has its own tokens.
    assert_eq!(
        chat(&s, "b", &openai_body(1, false, false), &[]).status,
        200
    );
}

#[test]
fn openai_streams_charge_the_final_usage_or_else_the_deltas() {
    let s = start("tokens-per-minute 100000;", "");
    let r = chat(
        &s,
        "a",
        &openai_body(20, true, true),
        &[("x-mock-prompt-tokens", "7")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        r.text().matches("\" hi\"").count(),
        20,
        "streamed through unchanged"
    );
    settled(
        &s,
        r#"zentinel_inference_tokens_total{route="openai",kind="completion",source="usage"}"#,
        20,
    );
    let m = metrics(s.admin);
    assert_eq!(
        count(
            &m,
            r#"zentinel_inference_tokens_total{route="openai",kind="prompt",source="usage"}"#
        ),
        7
    );
    // Without `include_usage`, the streamed deltas are counted and the prompt's estimate
    // stands for the prompt.
    let r = chat(&s, "a", &openai_body(15, true, false), &[]);
    assert_eq!(r.status, 200);
    settled(
        &s,
        r#"zentinel_inference_tokens_total{route="openai",kind="completion",source="deltas"}"#,
        15,
    );
    assert_eq!(
        count(
            &metrics(s.admin),
            r#"zentinel_inference_tokens_total{route="openai",kind="prompt",source="deltas"}"#
        ),
        PROMPT_TOKENS
    );
}

fn messages(s: &Setup, key: &str, max_tokens: u64, stream: bool) -> Response {
    let body = json!({
        "model": "claude-sonnet-4",
        "max_tokens": max_tokens,
        "stream": stream,
        "system": "hello world",
        "messages": [{"role": "user", "content": "hello world"}],
    })
    .to_string();
    request(
        s.addr,
        "POST",
        "llm.test",
        "/v1/messages",
        &[
            ("x-api-key", key),
            ("content-type", "application/json"),
            ("x-mock-prompt-tokens", "12"),
        ],
        body.as_bytes(),
    )
}

#[test]
fn anthropic_json_and_streams_charge_input_and_output_tokens() {
    let s = start("", "tokens-per-minute 1000; requests-per-minute 100;");
    let r = messages(&s, "k1", 40, false);
    assert_eq!(r.status, 200, "{}", r.text());
    // system + message: 2 + 2 tokens, 3 of framing for the message and 3 for the reply.
    assert_eq!(header_u64(&r, "x-inference-tokens-remaining"), 1000 - 10);
    assert_eq!(header_u64(&r, "x-inference-requests-remaining"), 99);
    let r = messages(&s, "k1", 25, true);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("message_delta"), "{}", r.text());
    settled(
        &s,
        r#"zentinel_inference_tokens_total{route="anthropic",kind="completion",source="usage"}"#,
        65,
    );
    assert_eq!(
        count(
            &metrics(s.admin),
            r#"zentinel_inference_tokens_total{route="anthropic",kind="prompt",source="usage"}"#
        ),
        24
    );
    // 1000 - (12 + 40) - (12 + 25) - this request's 10, plus a little refill.
    let r = messages(&s, "k1", 1, false);
    let left = header_u64(&r, "x-inference-tokens-remaining");
    assert!((901..=910).contains(&left), "{left}");
}

#[test]
fn requests_per_minute_refuses_before_the_body_is_read() {
    let s = start("requests-per-minute 2;", "");
    for left in [1, 0] {
        let r = chat(&s, "a", &openai_body(1, false, false), &[]);
        assert_eq!(r.status, 200);
        assert_eq!(header_u64(&r, "x-inference-requests-remaining"), left);
    }
    let r = chat(&s, "a", &openai_body(1, false, false), &[]);
    assert_eq!(r.status, 429);
    assert!(
        r.text().contains("request rate limit exceeded"),
        "{}",
        r.text()
    );
    // One request every 30 s.
    let wait = header_u64(&r, "retry-after");
    assert!((29..=30).contains(&wait), "{wait}");
    assert_eq!(s.llm.requests().len(), 2);
    assert_eq!(
        chat(&s, "other", &openai_body(1, false, false), &[]).status,
        200
    );
    let series =
        |o: &str| format!(r#"zentinel_inference_requests_total{{route="openai",outcome="{o}"}}"#);
    settled(&s, &series("allowed"), 3);
    assert_eq!(count(&metrics(s.admin), &series("requests-per-minute")), 1);
}

#[test]
fn an_enforced_budget_refuses_until_the_period_ends_and_alert_only_logs_once() {
    let s = start(
        r#"budget "hourly" { limit 100; }; budget "daily" { limit 50; mode "alert-only"; }"#,
        "",
    );
    let r = chat(&s, "a", &openai_body(60, false, false), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        header_u64(&r, "x-inference-budget-remaining"),
        50 - PROMPT_TOKENS,
        "the tighter budget, the prompt's estimate reserved"
    );
    settled(
        &s,
        r#"zentinel_inference_budget_alerts_total{route="openai",period="daily"}"#,
        1,
    );
    // 70 used: the daily alert fired once; the hourly budget still has 30.
    let r = chat(&s, "a", &openai_body(30, false, false), &[]);
    assert_eq!(r.status, 200);
    wait_until(Duration::from_secs(5), "budget used up", || {
        chat(&s, "a", &openai_body(1, false, false), &[]).status == 429
    });
    let r = chat(&s, "a", &openai_body(1, false, false), &[]);
    assert_eq!(r.status, 429);
    assert!(r.text().contains("token budget used up"), "{}", r.text());
    let wait = header_u64(&r, "retry-after");
    assert!((1..=3600).contains(&wait), "until the hour ends: {wait}");
    // The alert, and at least two refusals (the waiting loop's and the last one).
    let a = audit_lines(s.proxy.dir(), 3);
    let alerts: Vec<_> = a.iter().filter(|l| l["decision"] == "alert").collect();
    assert_eq!(alerts.len(), 1, "{a:?}");
    assert_eq!(alerts[0]["limit"], "budget-daily");
    assert_eq!(alerts[0]["budget"], 50);
    assert!(
        a.iter()
            .any(|l| l["limit"] == "budget-hourly" && l["status"] == 429)
    );
    assert_eq!(
        count(
            &metrics(s.admin),
            r#"zentinel_inference_budget_alerts_total{route="openai",period="daily"}"#
        ),
        1
    );
}

#[test]
fn an_error_answer_without_usage_keeps_the_estimate_charged() {
    let origin = MockUpstream::start("llm");
    origin.set_status(502);
    origin.set_response_header("content-type", "application/json");
    origin.set_body(Some(br#"{"error":{"message":"bad gateway"}}"#));
    let s = start_to(origin.addr(), MockLlm::start(), "tokens-per-minute 20;", "");
    // Each prompt is charged 8 of 20 before it is forwarded. The upstream received it (the
    // model may have run) and reported no usage: the estimate stays charged.
    let series =
        |o: &str| format!(r#"zentinel_inference_requests_total{{route="openai",outcome="{o}"}}"#);
    for (i, left) in [(1, 12), (2, 4)] {
        let r = chat(&s, "a", &openai_body(1, false, false), &[]);
        assert_eq!(r.status, 502, "{}", r.text());
        assert!(r.text().contains("bad gateway"), "the origin's own answer");
        assert_eq!(header_u64(&r, "x-inference-tokens-remaining"), left);
        settled(&s, &series("allowed"), i);
    }
    let r = chat(&s, "a", &openai_body(1, false, false), &[]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(origin.hits(), 2);
    let estimate =
        r#"zentinel_inference_tokens_total{route="openai",kind="prompt",source="estimate"}"#;
    assert_eq!(count(&metrics(s.admin), estimate), 2 * PROMPT_TOKENS);
}

#[test]
fn a_client_that_leaves_after_the_upstream_received_the_prompt_is_charged() {
    let origin = MockUpstream::start("llm");
    origin.set_behaviour(support::Behaviour::Hang);
    let s = start_to(origin.addr(), MockLlm::start(), "tokens-per-minute 20;", "");
    let body = openai_body(1, false, false).to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: llm.test\r\nAuthorization: Bearer a\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut c = support::RawConn::connect(s.addr).expect("connect");
    c.send(format!("{head}{body}").as_bytes()).expect("send");
    wait_until(
        Duration::from_secs(5),
        "the upstream to get the prompt",
        || origin.hits() == 1,
    );
    // Gone before any answer.
    drop(c);
    let estimate =
        r#"zentinel_inference_tokens_total{route="openai",kind="prompt",source="estimate"}"#;
    settled(&s, estimate, PROMPT_TOKENS);
    // 8 of 20 charged: the same prompt fits once more, not twice.
    origin.set_behaviour(support::Behaviour::Respond);
    origin.set_response_header("content-type", "application/json");
    origin.set_body(Some(
        br#"{"usage":{"prompt_tokens":8,"completion_tokens":0}}"#,
    ));
    let r = chat(&s, "a", &openai_body(1, false, false), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header_u64(&r, "x-inference-tokens-remaining"), 4);
    let r = chat(&s, "a", &openai_body(1, false, false), &[]);
    assert_eq!(r.status, 429, "{}", r.text());
}

#[test]
fn a_prompt_over_what_is_left_of_an_enforced_budget_is_refused_and_budgets_are_metrics() {
    let s = start(
        r#"budget "hourly" { limit 40; }; budget "daily" { limit 25; mode "alert-only"; }"#,
        "",
    );
    let m = metrics(s.admin);
    let series = |name: &str, period: &str| {
        format!(r#"zentinel_inference_{name}{{route="openai",period="{period}"}}"#)
    };
    let (tokens, reached) = ("budget_tokens_total", "budget_keys_reached");
    for p in ["hourly", "daily"] {
        assert!(m.contains(&format!("{} 0\n", series(tokens, p))), "{m}");
        assert!(m.contains(&format!("{} 0\n", series(reached, p))), "{m}");
    }
    assert!(
        !m.contains(&series(tokens, "monthly")),
        "only configured periods"
    );
    // 10 (the mock's prompt count) + 10 charged to each budget.
    assert_eq!(
        chat(&s, "a", &openai_body(10, false, false), &[]).status,
        200
    );
    settled(&s, &series(tokens, "hourly"), 20);
    assert_eq!(count(&metrics(s.admin), &series(reached, "hourly")), 0);
    // 20 left of the hourly budget: a prompt counted at more is refused before it is sent,
    // until the hour ends.
    let long = "lorem ipsum dolor sit amet ".repeat(4);
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": long}]});
    let r = chat(&s, "a", &body, &[]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.text().contains("over what is left of the token budget"),
        "{}",
        r.text()
    );
    let wait = header_u64(&r, "retry-after");
    assert!((1..=3600).contains(&wait), "until the hour ends: {wait}");
    assert_eq!(s.llm.requests().len(), 1, "the model never got it");
    let lines = audit_lines(s.proxy.dir(), 1);
    let refusal = lines.iter().find(|l| l["status"] == 429).expect("refusal");
    assert_eq!(refusal["limit"], "budget-hourly");
    let counted = refusal["prompt_tokens"].as_u64().unwrap();
    assert!((21..=40).contains(&counted), "{counted}");
    // A short prompt fits: 20 + 10 + 1 used, the daily alert-only budget reached.
    assert_eq!(
        chat(&s, "a", &openai_body(1, false, false), &[]).status,
        200
    );
    settled(&s, &series(reached, "daily"), 1);
    // 9 left: 8 fit, and 10 + 20 used reach the hourly budget too.
    assert_eq!(
        chat(&s, "a", &openai_body(20, false, false), &[]).status,
        200
    );
    settled(&s, &series(reached, "hourly"), 1);
    let m = metrics(s.admin);
    assert_eq!(count(&m, &series(tokens, "hourly")), 61, "{m}");
    assert_eq!(count(&m, &series(tokens, "daily")), 61, "{m}");
    assert_eq!(
        count(
            &m,
            r#"zentinel_inference_requests_total{route="openai",outcome="budget-hourly"}"#
        ),
        1
    );
    // Another key: a prompt over the whole budget can never pass.
    let longer = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "lorem ipsum dolor sit amet ".repeat(10)}]});
    let r = chat(&s, "b", &longer, &[]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.text()
            .contains("the prompt alone is over the route's token budget"),
        "{}",
        r.text()
    );
    assert!(r.header("retry-after").is_none(), "waiting cannot help");
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
fn a_reload_keeps_the_usage_of_an_unchanged_block_and_a_changed_one_starts_afresh() {
    let llm = MockLlm::start();
    let (addr, admin) = (free_addr(), free_addr());
    let target = llm.addr();
    let text = |openai: &str, anthropic: &str| config(addr, admin, target, openai, anthropic);
    let proxy = Proxy::start(&text("requests-per-minute 3;", ""), &[addr, admin]);
    let s = Setup {
        proxy,
        addr,
        admin,
        llm,
    };
    for _ in 0..2 {
        assert_eq!(
            chat(&s, "a", &openai_body(1, false, false), &[]).status,
            200
        );
    }
    // Another route's block changes; this one's does not: its usage is kept.
    reload(
        &s.proxy,
        &text("requests-per-minute 3;", "tokens-per-minute 5;"),
    );
    let r = chat(&s, "a", &openai_body(1, false, false), &[]);
    assert_eq!(header_u64(&r, "x-inference-requests-remaining"), 0);
    assert_eq!(
        chat(&s, "a", &openai_body(1, false, false), &[]).status,
        429
    );
    // A changed block starts with full buckets.
    reload(
        &s.proxy,
        &text("requests-per-minute 4;", "tokens-per-minute 5;"),
    );
    let r = chat(&s, "a", &openai_body(1, false, false), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(header_u64(&r, "x-inference-requests-remaining"), 3);
}

/// An origin answering every request `200` with `body` as `content_type`.
fn origin(content_type: &str, body: &[u8]) -> MockUpstream {
    let origin = MockUpstream::start("llm");
    origin.set_response_header("content-type", content_type);
    origin.set_body(Some(body));
    origin
}

#[test]
fn huge_reported_usage_saturates_and_is_charged_as_a_minute_of_debt() {
    let max = u64::MAX;
    let usage = format!(r#"{{"usage":{{"prompt_tokens":{max},"completion_tokens":{max}}}}}"#);
    let o = origin("application/json", usage.as_bytes());
    let s = start_to(o.addr(), MockLlm::start(), "tokens-per-minute 600;", "");
    let r = chat(&s, "a", &openai_body(1, false, false), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let allowed = r#"zentinel_inference_requests_total{route="openai",outcome="allowed"}"#;
    settled(&s, allowed, 1);
    // The prompt and completion sum saturates; the key owes a minute's worth (the most debt
    // kept) and waits for it — rather than the settle overflowing and charging nothing.
    let r = chat(&s, "a", &openai_body(1, false, false), &[]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(header_u64(&r, "x-inference-tokens-remaining"), 0);
    let wait = header_u64(&r, "retry-after");
    assert!(
        (60..=61).contains(&wait),
        "a minute of debt and one token: {wait}"
    );
    assert_eq!(
        chat(&s, "b", &openai_body(1, false, false), &[]).status,
        200,
        "the proxy serves on"
    );
}

#[test]
fn a_streamed_delta_the_tokenizer_cannot_split_is_counted_by_the_estimate() {
    // A million spaces before a word make tiktoken-rs panic (its regex gives up and the
    // error is unwrapped); the delta is counted as a quarter of its bytes instead.
    let text = format!("{}x", " ".repeat(1_000_000));
    let chunk = json!({"choices": [{"delta": {"content": text}}]});
    let body = format!("data: {chunk}\n\ndata: [DONE]\n\n");
    let o = origin("text/event-stream", body.as_bytes());
    let s = start_to(
        o.addr(),
        MockLlm::start(),
        "tokens-per-minute 10000000;",
        "",
    );
    let r = chat(&s, "a", &openai_body(1, true, false), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body.len(),
        body.len(),
        "the answer streamed through whole"
    );
    settled(
        &s,
        r#"zentinel_inference_tokens_total{route="openai",kind="completion",source="deltas"}"#,
        250_001,
    );
}

/// A `generic` route at `/g/` keyed per `X-Tenant`, and an `openai` route at `/ip/` keyed
/// per client IP, behind a trusted loopback peer (its `X-Forwarded-For` names the client).
fn start_generic_and_ip() -> Setup {
    let llm = MockLlm::start();
    let (addr, admin) = (free_addr(), free_addr());
    let text = format!(
        r#"server {{ trusted-proxies "127.0.0.1"; }}
listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; audit-log {{ destination "file"; path "audit.log"; }} }}
admin {{ address "{admin}"; }}
upstreams {{ upstream "llm" {{ target "{}"; }} }}
routes {{
    route "generic" {{
        matches {{ path-prefix "/g/"; }}
        upstream "llm"
        inference {{ provider "generic"; key "header:x-tenant"; tokens-per-minute 1000; }}
    }}
    route "ip" {{
        matches {{ path-prefix "/ip/"; }}
        upstream "llm"
        inference {{ provider "openai"; key "client-ip"; requests-per-minute 1; }}
    }}
}}"#,
        llm.addr()
    );
    let proxy = Proxy::start(&text, &[addr, admin]);
    Setup {
        proxy,
        addr,
        admin,
        llm,
    }
}

fn post(s: &Setup, path: &str, headers: &[(&str, &str)], body: &serde_json::Value) -> Response {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    request(
        s.addr,
        "POST",
        "llm.test",
        path,
        &h,
        body.to_string().as_bytes(),
    )
}

#[test]
fn a_generic_route_counts_openai_and_anthropic_shapes_and_charges_either_usage() {
    let s = start_generic_and_ip();
    let t = [("x-tenant", "t1"), ("x-mock-prompt-tokens", "12")];
    // OpenAI chat: 2 + 3 + 3 (see PROMPT_TOKENS).
    let r = post(
        &s,
        "/g/v1/chat/completions",
        &t,
        &openai_body(5, false, false),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header_u64(&r, "x-inference-tokens-remaining"), 1000 - 8);
    let prompt = r#"zentinel_inference_tokens_total{route="generic",kind="prompt",source="usage"}"#;
    settled(&s, prompt, 12);
    // Anthropic: `system` is read too — 2 + 2 + 3 + 3.
    let anthropic = json!({
        "model": "claude-sonnet-4", "max_tokens": 7, "system": "hello world",
        "messages": [{"role": "user", "content": "hello world"}],
    });
    let r = post(&s, "/g/v1/messages", &t, &anthropic);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("msg_mock"), "the Anthropic-shaped answer");
    // 1000 - (12 + 5) charged for the first, 10 estimated for this one (plus a little refill).
    let left = header_u64(&r, "x-inference-tokens-remaining");
    assert!((973..=976).contains(&left), "{left}");
    settled(&s, prompt, 24);
    // OpenAI responses: `input`, no framing.
    let responses = json!({"model": "gpt-4o", "input": "hello world", "max_tokens": 1});
    let r = post(&s, "/g/v1/responses", &t, &responses);
    assert_eq!(r.status, 200, "{}", r.text());
    let completion =
        r#"zentinel_inference_tokens_total{route="generic",kind="completion",source="usage"}"#;
    settled(&s, completion, 13);
    let m = metrics(s.admin);
    assert_eq!(
        count(
            &m,
            r#"zentinel_inference_estimated_prompt_tokens_total{route="generic"}"#
        ),
        8 + 10 + 2
    );
    // Another tenant has its own tokens.
    let r = post(
        &s,
        "/g/v1/chat/completions",
        &[("x-tenant", "t2")],
        &openai_body(1, false, false),
    );
    assert_eq!(header_u64(&r, "x-inference-tokens-remaining"), 1000 - 8);
}

#[test]
fn a_client_ip_key_behind_a_trusted_proxy_limits_each_forwarded_client() {
    let s = start_generic_and_ip();
    let from = |ip| [("x-forwarded-for", ip)];
    let body = openai_body(1, false, false);
    let path = "/ip/v1/chat/completions";
    let a = from("203.0.113.1");
    assert_eq!(post(&s, path, &a, &body).status, 200);
    let r = post(&s, path, &a, &body);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.text().contains("request rate limit exceeded"),
        "{}",
        r.text()
    );
    // Another client behind the same proxy has its own minute.
    assert_eq!(post(&s, path, &from("203.0.113.2"), &body).status, 200);
    assert_eq!(
        count(&metrics(s.admin), r#"zentinel_inference_keys{route="ip"}"#),
        2
    );
    let lines = audit_lines(s.proxy.dir(), 1);
    assert_eq!(lines[0]["client"], "203.0.113.1", "{lines:?}");
    assert_eq!(lines[0]["key"], "client-ip");
    assert_eq!(s.llm.requests().len(), 2);
}
