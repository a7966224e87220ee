//! The `backend` block of `rate-limit` filters: what each key does, and the diagnostics of
//! a bad URL, `rediss://` and an unknown kind. The password is never echoed.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use std::time::Duration;

use zentinel_config::diagnostic::Code;
use zentinel_config::model::{
    FilterKind, OnBackendFailure, RateLimit, RateLimitBackend, RedisBackend,
};
use zentinel_config::{Diagnostics, load_str};

fn text(filter: &str) -> String {
    format!(
        r#"
listeners {{ listener "web" {{ address "127.0.0.1:8080"; }} }}
upstreams {{ upstream "backend" {{ target "127.0.0.1:3000"; }} }}
filters {{ filter "shared" {{ type "rate-limit"; requests-per-second 100; burst 200; {filter} }} }}
routes {{ route "api" {{ upstream "backend"; filters "shared"; }} }}
"#
    )
}

fn limit(filter: &str) -> RateLimit {
    let c = load_str("test.kdl", &text(filter)).unwrap_or_else(|d| panic!("{d}"));
    let FilterKind::RateLimit(rl) = &c.filters[0].kind else {
        panic!("rate limit")
    };
    rl.clone()
}

fn redis(filter: &str) -> RedisBackend {
    match limit(filter).backend {
        Some(RateLimitBackend::Redis(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn err(filter: &str) -> Diagnostics {
    match load_str("test.kdl", &text(filter)) {
        Ok(_) => panic!("accepted: {filter}"),
        Err(d) => d,
    }
}

/// The single problem: (code, message, help).
fn one(filter: &str) -> (Code, String, String) {
    let d = err(filter);
    assert_eq!(d.problems().len(), 1, "expected one problem, got:\n{d}");
    let p = &d.problems()[0];
    (
        p.code,
        p.message.clone(),
        p.help.clone().unwrap_or_default(),
    )
}

#[test]
fn absent_backend_is_local() {
    assert!(limit("").backend.is_none());
}

#[test]
fn defaults_of_a_redis_backend() {
    let r = redis(r#"backend "redis" { url "redis://127.0.0.1"; }"#);
    assert_eq!(r.endpoint.host, "127.0.0.1");
    assert_eq!((r.endpoint.port, r.endpoint.db), (6379, 0));
    assert_eq!(
        (
            r.endpoint.username.as_deref(),
            r.endpoint.password.is_none()
        ),
        (None, true)
    );
    assert_eq!(r.pool_size, 2);
    assert_eq!(r.timeout, Duration::from_millis(50));
    assert_eq!(r.on_backend_failure, OnBackendFailure::Local);
    assert_eq!(r.key_prefix, "zentinel:rl:");
}

#[test]
fn every_key_of_the_backend_takes_effect() {
    let r = redis(
        r#"backend "redis" { url "redis://app:p%40ss@redis.internal:6380/3"; pool-size 4; timeout-ms 20; on-backend-failure "closed"; key-prefix "eu:"; }"#,
    );
    assert_eq!(r.endpoint.host, "redis.internal");
    assert_eq!((r.endpoint.port, r.endpoint.db), (6380, 3));
    assert_eq!(r.endpoint.username.as_deref(), Some("app"));
    assert_eq!(
        r.endpoint.password.as_ref().map(|p| p.expose()),
        Some("p@ss")
    );
    assert_eq!(r.pool_size, 4);
    assert_eq!(r.timeout, Duration::from_millis(20));
    assert_eq!(r.on_backend_failure, OnBackendFailure::Closed);
    assert_eq!(r.key_prefix, "eu:");
    let open = redis(r#"backend "redis" { url "redis://h"; on-backend-failure "open"; }"#);
    assert_eq!(open.on_backend_failure, OnBackendFailure::Open);
}

#[test]
fn url_forms() {
    let r = redis(r#"backend "redis" { url "redis://:only-password@[::1]:7000/"; }"#);
    assert_eq!(
        (r.endpoint.host.as_str(), r.endpoint.port, r.endpoint.db),
        ("::1", 7000, 0)
    );
    assert!(r.endpoint.username.is_none());
    assert_eq!(
        r.endpoint.password.as_ref().map(|p| p.expose()),
        Some("only-password")
    );
    assert_eq!(r.endpoint.to_string(), "[::1]:7000/0");
    let r = redis(r#"backend "redis" { url "redis://user@h:1/15"; }"#);
    assert_eq!(r.endpoint.username.as_deref(), Some("user"));
    assert!(r.endpoint.password.is_none());
    assert_eq!(r.endpoint.to_string(), "h:1/15");
}

#[test]
fn the_password_is_never_shown() {
    let c = load_str(
        "test.kdl",
        &text(r#"backend "redis" { url "redis://u:hunter2@h"; }"#),
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let json = c.to_json().to_string();
    assert!(!json.contains("hunter2"), "{json}");
    assert!(json.contains("[redacted]"), "{json}");
    assert!(!format!("{c:?}").contains("hunter2"));
    let (_, m, _) = one(r#"backend "redis" { url "redis://u:hunter2@h:notaport"; }"#);
    assert!(!m.contains("hunter2"), "{m}");
    assert!(m.contains("redis://u:***@h:notaport"), "{m}");
}

#[test]
fn rediss_is_refused_because_tls_is_not_built() {
    let (c, m, h) = one(r#"backend "redis" { url "rediss://redis.internal:6380"; }"#);
    assert_eq!(c, Code::InvalidValue);
    assert!(m.contains("TLS to Redis (`rediss://`) is not built"), "{m}");
    assert!(h.contains("tunnel"), "{h}");
}

#[test]
fn bad_urls_say_what_is_wrong() {
    let cases = [
        ("10.0.0.5:6379", "must start with `redis://`"),
        (
            "http://10.0.0.5",
            "the scheme must be `redis://`, found `http://`",
        ),
        ("redis://", "\"\" is not a host name or address"),
        ("redis://h:0", "the port must be 1-65535, found \"0\""),
        (
            "redis://h:99999",
            "the port must be 1-65535, found \"99999\"",
        ),
        (
            "redis://h/zero",
            "the database must be a number, found \"zero\"",
        ),
        ("redis://h?protocol=resp3", "query parameters"),
        ("redis://[::1", "closing `]`"),
        ("redis://[nope]:1", "\"nope\" is not an IPv6 address"),
        ("redis://bad host", "\"bad host\" is not a host name"),
        ("redis://u:%zz@h", "the password has a bad %-escape"),
    ];
    for (url, want) in cases {
        let (c, m, h) = one(&format!(r#"backend "redis" {{ url "{url}"; }}"#));
        assert_eq!(c, Code::InvalidValue, "{url}");
        assert!(m.contains(want), "{url}: {m}");
        assert!(h.contains("redis://10.0.0.5:6379/0"), "{url}: {h}");
    }
}

#[test]
fn only_redis_is_a_backend_kind() {
    let (c, m, h) = one(r#"backend "memcached" { url "redis://h"; }"#);
    assert_eq!(c, Code::UnknownValue);
    assert_eq!(m, "`backend` does not accept \"memcached\"");
    assert!(h.contains("redis"), "{h}");
    let (c, _, h) = one(r#"backend "rediss" { url "redis://h"; }"#);
    assert_eq!(c, Code::UnknownValue);
    assert_eq!(h, "did you mean `redis`?");
}

#[test]
fn url_is_required_and_ranges_are_checked() {
    let (c, m, _) = one(r#"backend "redis" { pool-size 2; }"#);
    assert_eq!(c, Code::MissingKey);
    assert!(m.contains("needs `url`"), "{m}");
    let (c, _, _) = one(r#"backend "redis" { url "redis://h"; pool-size 0; }"#);
    assert_eq!(c, Code::Range);
    let (c, _, _) = one(r#"backend "redis" { url "redis://h"; timeout-ms 0; }"#);
    assert_eq!(c, Code::Range);
    let (c, _, h) = one(r#"backend "redis" { url "redis://h"; on-backend-failure "lokal"; }"#);
    assert_eq!(c, Code::UnknownValue);
    assert_eq!(h, "did you mean `local`?");
    let (c, m, _) = one(r#"backend "redis" { url "redis://h"; colour "red"; }"#);
    assert_eq!(c, Code::UnknownKey, "{m}");
    let (c, _, _) =
        one(r#"backend "redis" { url "redis://h"; }; backend "redis" { url "redis://i"; }"#);
    assert_eq!(c, Code::DuplicateKey);
}

#[test]
fn max_keys_needs_the_local_fallback_with_a_backend() {
    let r = limit(r#"max-keys 10; backend "redis" { url "redis://h"; }"#);
    assert_eq!(r.max_keys, 10);
    let (c, m, _) =
        one(r#"max-keys 10; backend "redis" { url "redis://h"; on-backend-failure "open"; }"#);
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("`max-keys` has no effect"), "{m}");
}
