//! Diagnostics and cross-key rules: what is refused, where it is reported, and the hint. One
//! module per part of the configuration; the shared skeleton and helpers are here.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use zentinel_config::diagnostic::Code;
use zentinel_config::model::{
    AgentTransport, FilterKind, HashKey, HealthProbe, ListenerProtocol, LogDestination, OnLimit,
};
use zentinel_config::{Config, Diagnostics, load_str};

mod diagnostics;
mod listeners;
mod routes;
mod upstreams;

/// A valid skeleton; `{}` placeholders are filled by the tests.
fn base(listener_extra: &str, upstream_extra: &str, route_extra: &str, rest: &str) -> String {
    format!(
        r#"
listeners {{ listener "web" {{ address "127.0.0.1:8080"; {listener_extra} }} }}
upstreams {{ upstream "backend" {{ target "127.0.0.1:3000"; {upstream_extra} }} }}
routes {{ route "api" {{ upstream "backend"; {route_extra} }} }}
{rest}
"#
    )
}

fn ok(text: &str) -> Config {
    load_str("test.kdl", text).unwrap_or_else(|d| panic!("expected valid, got:\n{d}"))
}

fn err(text: &str) -> Diagnostics {
    match load_str("test.kdl", text) {
        Ok(_) => panic!("expected problems, config was accepted:\n{text}"),
        Err(d) => d,
    }
}

/// The single problem of `text`, as (code, "line:col", message, help).
fn one(text: &str) -> (Code, String, String, String) {
    let d = err(text);
    assert_eq!(d.problems().len(), 1, "expected one problem, got:\n{d}");
    let p = &d.problems()[0];
    let loc = p.span.map(|s| d.location(s)).unwrap_or_default();
    let loc = loc.trim_start_matches("test.kdl:").to_owned();
    (
        p.code,
        loc,
        p.message.clone(),
        p.help.clone().unwrap_or_default(),
    )
}

const SEED: &str = include_str!("../../../../examples/seed.kdl");

#[test]
fn seed_example_validates_as_written() {
    let c = ok(SEED);
    assert_eq!(c.routes.len(), 2);
    let waf = c.agent("waf").expect("agent");
    assert_eq!(waf.timeout.as_millis(), 50);
    assert_eq!(waf.max_concurrent_calls, 100);
    assert_eq!(waf.circuit_breaker.failure_threshold, 5);
    assert_eq!(waf.circuit_breaker.success_threshold, 3);
    assert_eq!(waf.circuit_breaker.timeout.as_secs(), 30);
    assert_eq!(
        waf.transport,
        AgentTransport::UnixSocket("/var/run/zentinel-waf.sock".into())
    );
    let api = c.route("api").expect("route");
    assert_eq!(api.priority, 100);
    assert_eq!(api.failure_mode.map(|m| m.as_str()), Some("closed"));
    assert_eq!(
        c.route("marketing")
            .and_then(|r| r.failure_mode)
            .map(|m| m.as_str()),
        Some("open")
    );
}
