//! The `inference` block of a route: defaults, every key's value, and what is refused.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use zentinel_config::diagnostic::Code;
use zentinel_config::model::{
    BudgetMode, BudgetPeriod, Inference, Provider, RateLimitKey, Tokenizer,
};
use zentinel_config::{Diagnostics, load_str};

fn config(block: &str) -> String {
    format!(
        r#"
listeners {{ listener "web" {{ address "127.0.0.1:8080"; }} }}
upstreams {{ upstream "llm" {{ target "127.0.0.1:3000"; }} }}
routes {{
    route "chat" {{
        upstream "llm"
        {block}
    }}
}}
"#
    )
}

fn inference(block: &str) -> Inference {
    let c = load_str("test.kdl", &config(block)).unwrap_or_else(|d| panic!("{d}"));
    c.routes[0].inference.clone().expect("an inference block")
}

fn problems(block: &str) -> Diagnostics {
    match load_str("test.kdl", &config(block)) {
        Ok(_) => panic!("accepted: {block}"),
        Err(d) => d,
    }
}

/// The only problem of `block`: (code, line:col, message, help).
fn one(block: &str) -> (Code, String, String, String) {
    let d = problems(block);
    assert_eq!(d.problems().len(), 1, "{d}");
    let p = &d.problems()[0];
    let at = p.span.map(|s| d.location(s)).unwrap_or_default();
    (
        p.code,
        at.trim_start_matches("test.kdl:").to_owned(),
        p.message.clone(),
        p.help.clone().unwrap_or_default(),
    )
}

#[test]
fn defaults() {
    let i = inference(r#"inference { provider "openai"; }"#);
    assert_eq!(i.provider, Provider::OpenAi);
    assert_eq!(i.key, [RateLimitKey::ClientIp]);
    assert_eq!(i.tokens_per_minute, None);
    assert_eq!(i.requests_per_minute, None);
    assert!(i.budgets.is_empty());
    assert_eq!(i.tokenizer, Tokenizer::Auto);
    assert_eq!(i.max_keys, 100_000);
    let c = load_str("t.kdl", &config("")).unwrap_or_else(|d| panic!("{d}"));
    assert!(c.routes[0].inference.is_none(), "absent block, no limits");
}

#[test]
fn every_key_is_read() {
    let i = inference(
        r#"inference {
            provider "anthropic"
            key "header:x-api-key" "client-ip"
            tokens-per-minute 40000
            requests-per-minute 50
            budget "hourly" { limit 100000; }
            budget "monthly" { limit 9000000; mode "alert-only"; }
            tokenizer "cl100k-base"
            max-keys 10
        }"#,
    );
    assert_eq!(i.provider, Provider::Anthropic);
    assert_eq!(
        i.key,
        [
            RateLimitKey::Header("x-api-key".into()),
            RateLimitKey::ClientIp
        ]
    );
    assert_eq!(i.tokens_per_minute, Some(40_000));
    assert_eq!(i.requests_per_minute, Some(50));
    assert_eq!(i.tokenizer, Tokenizer::Cl100kBase);
    assert_eq!(i.max_keys, 10);
    let b: Vec<_> = i
        .budgets
        .iter()
        .map(|b| (b.period, b.limit, b.mode))
        .collect();
    assert_eq!(
        b,
        [
            (BudgetPeriod::Hourly, 100_000, BudgetMode::Enforce),
            (BudgetPeriod::Monthly, 9_000_000, BudgetMode::AlertOnly),
        ]
    );
}

#[test]
fn provider_is_required_and_checked() {
    let (code, _, msg, _) = one("inference { tokens-per-minute 10; }");
    assert_eq!(code, Code::MissingKey, "{msg}");
    let (code, at, _, help) = one(r#"inference { provider "openia"; }"#);
    assert_eq!(code, Code::UnknownValue);
    assert_eq!(at, "7:30");
    assert_eq!(help, "did you mean `openai`?");
}

#[test]
fn budgets_name_a_known_period_once() {
    let (code, _, msg, help) =
        one(r#"inference { provider "openai"; budget "dayly" { limit 5; }; }"#);
    assert_eq!(code, Code::UnknownValue, "{msg}");
    assert_eq!(help, "did you mean `daily`?");
    let (code, _, msg, _) = one(
        r#"inference { provider "openai"; budget "daily" { limit 5; }; budget "daily" { limit 6; }; }"#,
    );
    assert_eq!(code, Code::Conflict);
    assert!(msg.contains("`daily` budget is given twice"), "{msg}");
    let (code, _, msg, _) = one(r#"inference { provider "openai"; budget "daily" { }; }"#);
    assert_eq!(code, Code::MissingKey, "{msg}");
    let (code, _, _, help) =
        one(r#"inference { provider "openai"; budget "daily" { limit 5; mode "warn"; }; }"#);
    assert_eq!(code, Code::UnknownValue, "{help}");
}

#[test]
fn limits_and_keys_are_checked() {
    let (code, _, msg, _) = one(r#"inference { provider "openai"; tokens-per-minute 0; }"#);
    assert_eq!(code, Code::Range, "{msg}");
    let (code, _, msg, _) = one(r#"inference { provider "openai"; key "api-key"; }"#);
    assert_eq!(code, Code::InvalidValue);
    assert!(msg.contains("\"api-key\" is not a key part"), "{msg}");
    let (code, _, msg, _) = one(r#"inference { provider "openai"; tokenizer "gpt2"; }"#);
    assert_eq!(code, Code::UnknownValue, "{msg}");
    let (code, _, msg, help) = one(r#"inference { provider "openai"; tokens-per-minut 5; }"#);
    assert_eq!(code, Code::UnknownKey, "{msg}");
    assert_eq!(help, "did you mean `tokens-per-minute`?");
}
