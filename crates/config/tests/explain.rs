//! The explanation engine on realistic configurations: listener choice, priorities and
//! shadowing, wildcard hosts, conditions, 404s with near misses, failure modes, limits the
//! request already breaks, and a property test that the route it reports is always the one
//! `RouteMatcher::find` picks.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use proptest::prelude::*;
use zentinel_config::Config;
use zentinel_config::explain::{
    ExplainError, Explanation, FailureModeSource, FilterStep, ListenerReason, MatchedBy, OnFailure,
    Outcome, RequestDescription, RequestError, Scheme, explain,
};
use zentinel_config::matcher::{Request, RouteMatcher};
use zentinel_config::model::{FailureMode, RetryOn};

fn load(text: &str) -> Config {
    zentinel_config::load_str("test.kdl", text)
        .unwrap_or_else(|d| panic!("test configuration does not load:\n{d}\n--- text ---\n{text}"))
}

fn request(method: &str, url: &str, headers: &[&str]) -> RequestDescription {
    let mut r = RequestDescription::from_url(method, url).unwrap_or_else(|e| panic!("{url}: {e}"));
    for h in headers {
        r.header_line(h).unwrap_or_else(|e| panic!("{h}: {e}"));
    }
    r
}

fn ex(config: &Config, method: &str, url: &str, headers: &[&str]) -> Explanation {
    explain(config, None, &request(method, url, headers)).unwrap_or_else(|e| panic!("{e}"))
}

fn matched(e: &Explanation) -> Option<&str> {
    e.routing.matched.as_ref().map(|m| m.id.as_str())
}

fn status(e: &Explanation) -> Option<u16> {
    match &e.outcome {
        Outcome::Refuse(r) => Some(r.status),
        _ => None,
    }
}

fn production() -> Config {
    load(include_str!("../../../examples/production.kdl"))
}

/// One `http` listener, upstream `u`, and the given routes (and extra top-level blocks).
fn simple(routes: &str, extra: &str) -> Config {
    load(&format!(
        r#"
listeners {{ listener "web" {{ address "127.0.0.1:8080"; protocol "http"; }} }}
upstreams {{ upstream "u" {{ target "127.0.0.1:3000"; }} }}
routes {{
{routes}
}}
{extra}
"#
    ))
}

// Routing

#[test]
fn the_highest_priority_wins_and_lower_matching_routes_are_shadowed() {
    let c = simple(
        r#"
route "catch-all" { priority -10; upstream "u"; }
route "api" { priority 100; matches { path-prefix "/api/"; }; upstream "u"; }
route "api-v1" { priority 50; matches { path-prefix "/api/v1/"; }; upstream "u"; }
route "same-as-api" { priority 100; matches { path-prefix "/api"; }; upstream "u"; }
"#,
        "",
    );
    let e = ex(&c, "GET", "http://x.test/api/v1/users", &[]);
    let m = e.routing.matched.as_ref().unwrap();
    assert_eq!((m.id.as_str(), m.priority, m.rank), ("api", 100, 1));
    assert_eq!(m.by, MatchedBy::Conditions);
    assert_eq!(m.conditions.len(), 1);
    assert_eq!(m.conditions[0].key, "path-prefix");
    assert_eq!(m.conditions[0].expected, "/api/");
    assert_eq!(m.conditions[0].found.as_deref(), Some("/api/v1/users"));
    assert!(m.conditions[0].holds);
    // Equal priority keeps definition order: "same-as-api" ranks second and is shadowed too.
    let shadowed: Vec<(&str, usize)> = e
        .routing
        .shadowed
        .iter()
        .map(|s| (s.id.as_str(), s.rank))
        .collect();
    assert_eq!(
        shadowed,
        [("same-as-api", 2), ("api-v1", 3), ("catch-all", 4)]
    );
    assert!(e.routing.near_misses.is_empty());
    assert_eq!(e.routing.candidates, 4);
    assert_eq!(
        e.outcome,
        Outcome::Forward {
            upstream: zentinel_config::model::UpstreamId::new("u")
        }
    );
}

#[test]
fn a_route_without_conditions_matches_everything_with_no_conditions_listed() {
    let c = simple(r#"route "all" { upstream "u"; }"#, "");
    let e = ex(&c, "DELETE", "http://anything.test/x?y", &[]);
    let m = e.routing.matched.as_ref().unwrap();
    assert_eq!(m.id.as_str(), "all");
    assert!(m.conditions.is_empty());
}

#[test]
fn wildcard_hosts_cover_subdomains_but_not_the_apex() {
    let c = simple(
        r#"
route "exact" { matches { host "api.example.com"; }; upstream "u"; }
route "wild" { matches { host "*.example.com"; }; upstream "u"; }
route "deep" { matches { host "*.eu.example.com"; path-prefix "/eu/"; }; upstream "u"; }
"#,
        "",
    );
    assert_eq!(
        matched(&ex(&c, "GET", "http://API.Example.com:8080/", &[])),
        Some("exact")
    );
    let e = ex(&c, "GET", "http://a.b.example.com/", &[]);
    assert_eq!(matched(&e), Some("wild"));
    let host = &e.routing.matched.as_ref().unwrap().conditions[0];
    assert_eq!(
        (host.key, host.expected.as_str()),
        ("host", "*.example.com")
    );
    assert_eq!(host.found.as_deref(), Some("a.b.example.com"));
    // The more specific wildcard's list also holds the general one: "deep" misses on the
    // path, "wild" takes it.
    let e = ex(&c, "GET", "http://x.eu.example.com/us/", &[]);
    assert_eq!(matched(&e), Some("wild"));
    let near: Vec<&str> = e
        .routing
        .near_misses
        .iter()
        .map(|n| n.route.id.as_str())
        .collect();
    assert_eq!(
        near,
        ["exact"],
        "exact misses by host; deep ranks below wild"
    );
    // The apex matches nothing: every route misses by its host alone.
    let e = ex(&c, "GET", "http://example.com/", &[]);
    assert_eq!(matched(&e), None);
    assert_eq!(status(&e), Some(404));
    let near: Vec<&str> = e
        .routing
        .near_misses
        .iter()
        .map(|n| n.route.id.as_str())
        .collect();
    assert_eq!(near, ["exact", "wild"]);
    let failed = e.routing.near_misses[1]
        .conditions
        .iter()
        .find(|c| !c.holds)
        .unwrap();
    assert_eq!(
        (failed.key, failed.found.as_deref()),
        ("host", Some("example.com"))
    );
}

#[test]
fn header_query_and_method_conditions_report_what_the_request_had() {
    let c = simple(
        r#"
route "tenant-debug" {
    priority 10
    matches {
        method "POST" "PUT"
        header "x-tenant" "acme"
        header "x-debug"
        query-param "trace" "on now"
    }
    upstream "u"
}
route "rest" { upstream "u"; }
"#,
        "",
    );
    let e = ex(
        &c,
        "PUT",
        "http://h.test/p?a=1&trace=on+now",
        &["X-Tenant: other", "x-tenant: acme", "x-debug: 1"],
    );
    assert_eq!(matched(&e), Some("tenant-debug"));
    let conds: Vec<(&str, &str, Option<&str>, bool)> = e
        .routing
        .matched
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .map(|c| (c.key, c.expected.as_str(), c.found.as_deref(), c.holds))
        .collect();
    assert_eq!(
        conds,
        [
            ("method", "POST, PUT", Some("PUT"), true),
            (
                "header",
                "x-tenant: acme",
                Some("x-tenant: other, acme"),
                true
            ),
            ("header", "x-debug (any value)", Some("x-debug: 1"), true),
            ("query-param", "trace=on now", Some("trace=on+now"), true),
        ]
    );
    assert_eq!(e.routing.shadowed.len(), 1);

    // Without the query parameter: one condition short, so a near miss, and "rest" takes it.
    let e = ex(
        &c,
        "POST",
        "http://h.test/p",
        &["x-tenant: acme", "x-debug: 1"],
    );
    assert_eq!(matched(&e), Some("rest"));
    let miss = &e.routing.near_misses[0];
    assert_eq!(miss.route.id.as_str(), "tenant-debug");
    let failed: Vec<_> = miss.conditions.iter().filter(|c| !c.holds).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].key, failed[0].found.as_deref()),
        ("query-param", None)
    );

    // Two conditions short: not a near miss.
    let e = ex(
        &c,
        "GET",
        "http://h.test/p",
        &["x-tenant: acme", "x-debug: 1"],
    );
    assert!(e.routing.near_misses.is_empty());
}

#[test]
fn no_match_is_a_404_with_near_misses_and_routes_of_other_listeners() {
    let c = production();
    let e = explain(
        &c,
        Some("partners"),
        &request("GET", "https://partners.example.com:9443/v1/users", &[]),
    )
    .unwrap();
    assert_eq!(e.listener.reason, ListenerReason::Given);
    assert!(e.route.is_none());
    let Outcome::Refuse(r) = &e.outcome else {
        panic!("{:?}", e.outcome)
    };
    assert_eq!((r.status, r.reason), (404, "no route matches this request"));
    assert_eq!(e.refusals.len(), 1);
    let near = &e.routing.near_misses[0];
    assert_eq!(near.route.id.as_str(), "partner-api");
    assert_eq!(near.conditions[0].key, "path-prefix");
    // "plain-http" has no conditions; the partners listener does not serve it.
    let other: Vec<&str> = e
        .routing
        .not_on_listener
        .iter()
        .map(|r| r.as_str())
        .collect();
    assert_eq!(other, ["plain-http"]);
    // Body limits of a route do not apply without a route.
    assert!(!e.limits.iter().any(|l| l.what == "body bytes"));
}

#[test]
fn the_default_route_takes_what_nothing_matches() {
    let c = production();
    let e = ex(&c, "GET", "http://example.com/healthz", &[]);
    assert_eq!(e.listener.id.as_str(), "http");
    assert_eq!(matched(&e), Some("health"));
    // "plain-http" has no conditions, so it matches by them, before being the fallback.
    let e = ex(&c, "DELETE", "http://example.com/healthz", &[]);
    assert_eq!(matched(&e), Some("plain-http"));
    assert_eq!(
        e.routing.matched.as_ref().unwrap().by,
        MatchedBy::Conditions
    );

    let c = load(
        r#"
listeners { listener "web" { address "127.0.0.1:8080"; routes "api" "fallback"; default-route "fallback"; } }
upstreams { upstream "u" { target "127.0.0.1:3000"; } }
routes {
    route "api" { matches { path-prefix "/api/"; }; upstream "u"; }
    route "fallback" { matches { path "/nothing"; }; upstream "u"; }
}
"#,
    );
    let e = ex(&c, "GET", "http://h.test/other", &[]);
    let m = e.routing.matched.as_ref().unwrap();
    assert_eq!((m.id.as_str(), m.by), ("fallback", MatchedBy::DefaultRoute));
    assert!(!m.conditions[0].holds);
    assert!(matches!(e.outcome, Outcome::Forward { .. }));
    // The fallback is not listed again as a near miss.
    let near: Vec<&str> = e
        .routing
        .near_misses
        .iter()
        .map(|n| n.route.id.as_str())
        .collect();
    assert_eq!(near, ["api"]);
}

// Listeners

#[test]
fn the_listener_follows_the_scheme_and_prefers_the_urls_port() {
    let c = load(
        r#"
listeners {
    listener "plain" { address "0.0.0.0:8080"; protocol "h2c"; }
    listener "tls" { address "0.0.0.0:8443"; protocol "https"; tls { cert-file "a.crt"; key-file "a.key"; sni "*.example.com" { cert-file "w.crt"; key-file "w.key"; }; sni "api.example.com" { cert-file "api.crt"; key-file "api.key"; }; } }
    listener "tls2" { address "0.0.0.0:443"; protocol "https"; tls { cert-file "b.crt"; key-file "b.key"; } }
}
upstreams { upstream "u" { target "127.0.0.1:3000"; } }
routes { route "r" { upstream "u"; } }
"#,
    );
    let e = ex(&c, "GET", "http://h.test/", &[]);
    assert_eq!(e.listener.id.as_str(), "plain");
    assert_eq!(e.listener.reason, ListenerReason::Scheme);
    assert!(e.listener.why.contains("port 80"), "{}", e.listener.why);
    let e = ex(&c, "GET", "https://api.example.com/", &[]);
    assert_eq!(e.listener.id.as_str(), "tls2");
    assert_eq!(e.listener.reason, ListenerReason::SchemeAndPort);
    let e = ex(&c, "GET", "https://api.example.com:8443/", &[]);
    assert_eq!(e.listener.id.as_str(), "tls");
    let tls = e.listener.tls.as_ref().unwrap();
    // An exact SNI name beats a wildcard, whatever the order they are written in.
    assert!(tls.cert_file.ends_with("api.crt"), "{tls:?}");
    assert_eq!(tls.cert_chosen_by, "sni api.example.com");
    let e = ex(&c, "GET", "https://www.example.com:8443/", &[]);
    assert!(
        e.listener
            .tls
            .as_ref()
            .unwrap()
            .cert_file
            .ends_with("w.crt")
    );
    let e = ex(
        &c,
        "GET",
        "https://127.0.0.1:8443/",
        &["host: api.example.com"],
    );
    let tls = e.listener.tls.as_ref().unwrap();
    assert_eq!(tls.server_name, None, "no SNI for an IP address");
    assert_eq!(tls.cert_chosen_by, "default");

    // Named explicitly even when it does not fit: explained, with a note.
    let e = explain(&c, Some("tls"), &request("GET", "http://h.test/", &[])).unwrap();
    assert_eq!(e.listener.id.as_str(), "tls");
    assert_eq!(e.listener.notes.len(), 2, "{:?}", e.listener.notes);

    let err = explain(&c, Some("tsl"), &request("GET", "http://h.test/", &[])).unwrap_err();
    assert!(matches!(err, ExplainError::UnknownListener { .. }));
    assert!(err.to_string().contains("did you mean \"tls\"?"), "{err}");
}

#[test]
fn no_listener_for_the_scheme_is_an_error_naming_the_listeners() {
    let c = simple(r#"route "r" { upstream "u"; }"#, "");
    let err = explain(&c, None, &request("GET", "https://h.test/", &[])).unwrap_err();
    assert!(matches!(
        err,
        ExplainError::NoListenerForScheme {
            scheme: Scheme::Https,
            ..
        }
    ));
    assert!(err.to_string().contains("\"web\" (http)"), "{err}");
}

// Agents and filters

#[test]
fn the_effective_failure_mode_is_the_routes_override_or_the_agents_default() {
    let c = simple(
        r#"
route "strict" { matches { path-prefix "/strict/"; }; upstream "u"; filters "lenient-agent" "strict-agent"; failure-mode "closed"; }
route "default" { upstream "u"; filters "lenient-agent" "strict-agent"; }
"#,
        r#"
agents {
    agent "lenient-agent" { transport { unix-socket "/run/a.sock"; }; events "request-headers"; failure-mode "open"; timeout-ms 20; max-concurrent-calls 7; queue-timeout-ms 3; }
    agent "strict-agent" { transport { unix-socket "/run/b.sock"; }; events "request-headers" "request-body"; max-request-body-bytes 1000; request-body-mode "stream"; }
}
"#,
    );
    let agents = |e: &Explanation| -> Vec<_> {
        e.route
            .as_ref()
            .unwrap()
            .filters
            .iter()
            .map(|f| match f {
                FilterStep::Agent(a) => a.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let e = ex(&c, "GET", "http://h.test/strict/x", &[]);
    let a = agents(&e);
    assert_eq!(a[0].id.as_str(), "lenient-agent");
    assert_eq!(
        (
            a[0].failure_mode,
            a[0].failure_mode_from,
            a[0].agent_failure_mode
        ),
        (
            FailureMode::Closed,
            FailureModeSource::Route,
            FailureMode::Open
        )
    );
    assert_eq!(
        a[0].on_failure,
        OnFailure::Refuse {
            timeout_status: 504,
            failure_status: 503,
            body_over_limit_status: None
        }
    );
    assert_eq!(a[0].timeout.as_millis(), 20);
    assert_eq!(a[0].max_concurrent_calls, 7);
    assert_eq!(a[0].queue_timeout.as_millis(), 3);
    assert!(a[0].request_body.is_none());

    let e = ex(&c, "GET", "http://h.test/other", &[]);
    let a = agents(&e);
    assert_eq!(
        (a[0].failure_mode, a[0].failure_mode_from),
        (FailureMode::Open, FailureModeSource::Agent)
    );
    assert_eq!(a[0].on_failure, OnFailure::Continue);
    // The schema's default failure mode is closed; body events add the 413.
    assert_eq!(
        (a[1].failure_mode, a[1].failure_mode_from),
        (FailureMode::Closed, FailureModeSource::Agent)
    );
    assert!(matches!(
        a[1].on_failure,
        OnFailure::Refuse {
            body_over_limit_status: Some(413),
            ..
        }
    ));
    let body = a[1].request_body.as_ref().unwrap();
    assert_eq!((body.max_bytes, body.over_limit), (1000, false));
    // Defaults are the validated model's.
    assert_eq!(a[1].timeout, c.agent("strict-agent").unwrap().timeout);
    assert_eq!(
        a[1].circuit_breaker.failure_threshold,
        c.agent("strict-agent")
            .unwrap()
            .circuit_breaker
            .failure_threshold
    );
}

#[test]
fn a_body_over_a_fail_closed_agents_limit_is_refused_with_413_and_fail_open_lets_it_through() {
    let agents = r#"
agents { agent "waf" { transport { unix-socket "/run/waf.sock"; }; events "request-headers" "request-body"; max-request-body-bytes 100; } }
"#;
    let closed = simple(r#"route "r" { upstream "u"; filters "waf"; }"#, agents);
    let e = ex(&closed, "POST", "http://h.test/", &["content-length: 101"]);
    let Outcome::Refuse(r) = &e.outcome else {
        panic!("{:?}", e.outcome)
    };
    assert_eq!(r.status, 413);
    assert_eq!(r.reason, "the body is larger than a security check accepts");
    assert!(r.cause.contains("\"waf\""), "{}", r.cause);
    assert_eq!(
        status(&ex(
            &closed,
            "POST",
            "http://h.test/",
            &["content-length: 100"]
        )),
        None
    );

    let open = simple(
        r#"route "r" { upstream "u"; filters "waf"; failure-mode "open"; }"#,
        agents,
    );
    let e = ex(&open, "POST", "http://h.test/", &["content-length: 101"]);
    assert!(matches!(e.outcome, Outcome::Forward { .. }));
    let Some(FilterStep::Agent(a)) = e.route.as_ref().unwrap().filters.first() else {
        panic!()
    };
    assert!(a.request_body.as_ref().unwrap().over_limit);
}

#[test]
fn built_in_filters_appear_in_order_with_their_settings() {
    let c = production();
    let e = ex(
        &c,
        "GET",
        "https://api.example.com/v1/users",
        &["x-api-key: abc"],
    );
    assert_eq!(matched(&e), Some("api"));
    let steps: Vec<String> = e
        .route
        .as_ref()
        .unwrap()
        .filters
        .iter()
        .map(|f| match f {
            FilterStep::Builtin(b) => format!("builtin {}", b.id),
            FilterStep::Agent(a) => format!("agent {}", a.id),
            _ => "other".to_owned(),
        })
        .collect();
    assert_eq!(steps, ["builtin per-ip", "agent auth", "agent waf"]);
    let json = serde_json::to_value(&e).unwrap();
    let per_ip = &json["route"]["filters"][0];
    assert_eq!(per_ip["filter"], "builtin");
    assert_eq!(per_ip["kind"]["type"], "rate-limit");
    assert_eq!(per_ip["kind"]["requests_per_second"], 50);
    assert_eq!(json["route"]["filters"][2]["failure_mode"], "closed");
    assert_eq!(json["route"]["filters"][2]["failure_mode_from"], "route");
}

// Upstream, timeouts, retries, headers

#[test]
fn upstream_timeouts_and_retries_are_the_models_values_as_the_proxy_applies_them() {
    let c = production();
    let e = ex(&c, "GET", "https://api.example.com/v1/users", &[]);
    let h = e.route.as_ref().unwrap();
    let u = &h.upstream;
    assert_eq!(u.id.as_str(), "api");
    assert_eq!(u.load_balancing.as_str(), "least-connections");
    let weights: Vec<u32> = u.targets.iter().map(|t| t.weight).collect();
    assert_eq!(weights, [3, 3, 1]);
    assert_eq!(u.health_check.as_ref().unwrap().unhealthy_threshold, 3);
    let t = &h.timeouts;
    assert_eq!(
        [t.connect, t.read, t.write, t.total].map(|d| d.as_millis()),
        [1000, 30000, 30000, 15000]
    );
    assert_eq!(t.per_try.map(|d| d.as_millis()), Some(5000));
    // Each wait of a try is capped by the per-try deadline.
    assert_eq!(
        [t.first_try.connect, t.first_try.read, t.first_try.write].map(|d| d.as_millis()),
        [1000, 5000, 5000]
    );
    assert_eq!(h.retry.policy.max_attempts, 3);
    assert_eq!(h.retry.applies, [RetryOn::ConnectError, RetryOn::Status503]);
    assert!(h.retry.limited_by.is_none());
    assert_eq!(h.retry.policy.budget_percent, 10);
    assert_eq!(
        h.request_headers.set,
        [("x-edge".to_owned(), "zentinel".to_owned())]
    );
    assert_eq!(h.response_headers.remove, ["server", "x-powered-by"]);
    assert!(h.proxy_headers.request.contains(&"x-request-id".to_owned()));

    // A POST is only retried after connect errors; so is a body the proxy cannot replay.
    let e = ex(&c, "POST", "https://api.example.com/v1/users", &[]);
    let r = &e.route.as_ref().unwrap().retry;
    assert_eq!(r.applies, [RetryOn::ConnectError]);
    assert!(r.limited_by.as_ref().unwrap().contains("not idempotent"));
    let e = ex(
        &c,
        "PUT",
        "https://api.example.com/v1/users",
        &["content-length: 70000"],
    );
    let r = &e.route.as_ref().unwrap().retry;
    assert_eq!(r.applies, [RetryOn::ConnectError]);
    assert!(r.limited_by.as_ref().unwrap().contains("65536"));
}

#[test]
fn the_hash_key_and_the_client_are_read_as_the_proxy_reads_them() {
    let c = production();
    let mut r = request(
        "GET",
        "http://example.com/",
        &[
            "cookie: a=1; session=s3",
            "x-forwarded-for: 198.51.100.7, 10.0.0.9",
        ],
    );
    r.client_ip = Some("10.0.0.1".parse().unwrap());
    let e = explain(&c, None, &r).unwrap();
    assert_eq!(
        e.route.as_ref().unwrap().upstream.hash_value.as_deref(),
        Some("s3")
    );
    let client = e.request.client.as_ref().unwrap();
    assert!(client.trusted_proxy);
    // The nearest untrusted hop: 10.0.0.9 is a trusted proxy too.
    assert_eq!(client.client_ip.to_string(), "198.51.100.7");
    assert!(client.from_forwarded_for);

    r.client_ip = Some("203.0.113.1".parse().unwrap());
    let e = explain(&c, None, &r).unwrap();
    let client = e.request.client.as_ref().unwrap();
    assert!(!client.trusted_proxy);
    assert_eq!(client.client_ip.to_string(), "203.0.113.1");
    let e = ex(&c, "GET", "http://example.com/", &[]);
    assert_eq!(e.route.as_ref().unwrap().upstream.hash_value, None);
}

// Limits

/// A configuration with tight global limits and a route with its own.
fn limited() -> Config {
    simple(
        r#"
route "upload" { matches { path-prefix "/upload"; }; upstream "u"; limits { max-body-bytes 1000; max-in-flight-requests 5; }; }
route "ws" { matches { path "/ws"; }; upstream "u"; websocket #true; }
route "plain" { matches { path-prefix "/"; }; upstream "u"; }
"#,
        "limits { max-uri-bytes 64; max-header-count 3; max-header-bytes 1024; max-body-bytes 5000; }",
    )
}

#[test]
fn a_request_target_or_headers_over_the_limits_get_414_and_431() {
    let c = limited();
    let long = format!("http://h.test/{}", "a".repeat(64));
    let e = ex(&c, "GET", &long, &[]);
    assert_eq!(status(&e), Some(414));
    let uri = e
        .limits
        .iter()
        .find(|l| l.setting == "limits.max-uri-bytes")
        .unwrap();
    assert_eq!((uri.request, uri.max, uri.exceeded), (Some(65), 64, true));

    // Host counts as a header line.
    let e = ex(&c, "GET", "http://h.test/", &["a: 1", "b: 2", "c: 3"]);
    assert_eq!(status(&e), Some(431));
    let e = ex(
        &c,
        "GET",
        "http://h.test/",
        &[&format!("big: {}", "v".repeat(1020))],
    );
    let Outcome::Refuse(r) = &e.outcome else {
        panic!()
    };
    assert_eq!((r.status, r.reason), (431, "request headers too large"));
    assert!(
        r.cause.contains("limits.max-header-bytes is 1024"),
        "{}",
        r.cause
    );
}

#[test]
fn a_declared_body_over_the_routes_or_the_global_limit_gets_413() {
    let c = limited();
    // The route's own body limit, and the global one elsewhere.
    let e = ex(
        &c,
        "POST",
        "http://h.test/upload",
        &["content-length: 1001"],
    );
    let Outcome::Refuse(r) = &e.outcome else {
        panic!()
    };
    assert_eq!((r.status, r.reason), (413, "request body too large"));
    assert!(
        r.cause.contains("route \"upload\" limits.max-body-bytes"),
        "{}",
        r.cause
    );
    assert!(
        e.limits
            .iter()
            .any(|l| l.setting == "route \"upload\" limits.max-in-flight-requests" && l.max == 5)
    );
    assert_eq!(
        status(&ex(
            &c,
            "POST",
            "http://h.test/other",
            &["content-length: 1001"]
        )),
        None
    );
    assert_eq!(
        status(&ex(
            &c,
            "POST",
            "http://h.test/other",
            &["content-length: 5001"]
        )),
        Some(413)
    );
}

#[test]
fn upgrades_are_refused_where_the_route_does_not_allow_them_and_refusals_keep_their_order() {
    let c = limited();
    let long = format!("http://h.test/{}", "a".repeat(64));
    // WebSocket upgrades: only where the route allows them.
    let up = ["upgrade: websocket", "connection: upgrade"];
    let e = ex(&c, "GET", "http://h.test/chat", &up);
    let Outcome::Refuse(r) = &e.outcome else {
        panic!()
    };
    assert_eq!(
        (r.status, r.reason),
        (403, "protocol upgrades are not allowed on this route")
    );
    assert_eq!(status(&ex(&c, "GET", "http://h.test/ws", &up)), None);
    assert!(
        ex(&c, "GET", "http://h.test/ws", &up)
            .route
            .unwrap()
            .websocket
    );

    // Everything at once: the first in the proxy's order decides, the rest are listed.
    let e = ex(
        &c,
        "GET",
        &format!("{long}/upload"),
        &["upgrade: websocket", "content-length: 99999"],
    );
    let statuses: Vec<u16> = e.refusals.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [414, 403, 413]);
    assert_eq!(status(&e), Some(414));
}

#[test]
fn limits_before_routing_come_before_the_404() {
    let c = simple(
        r#"route "r" { matches { path "/only"; }; upstream "u"; }"#,
        "limits { max-uri-bytes 64; }",
    );
    let e = ex(&c, "GET", &format!("http://h.test/{}", "x".repeat(64)), &[]);
    let statuses: Vec<u16> = e.refusals.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [414, 404]);
}

// Requests

#[test]
fn urls_and_headers_are_parsed_strictly() {
    let r = request(
        "GET",
        "HTTPS://API.example.com:8443/v1/a%20b?x=1&y#frag",
        &["X-Api-Key:  abc "],
    );
    assert_eq!(r.scheme, Scheme::Https);
    assert_eq!(r.authority, "API.example.com:8443");
    assert_eq!(r.path, "/v1/a%20b");
    assert_eq!(r.query.as_deref(), Some("x=1&y"));
    assert_eq!(r.headers, [("x-api-key".to_owned(), "abc".to_owned())]);
    assert_eq!(request("GET", "http://h.test", &[]).path, "/");
    assert_eq!(request("GET", "http://h.test?q", &[]).path, "/");
    assert_eq!(
        request("GET", "http://[::1]:8080/", &[]).authority,
        "[::1]:8080"
    );
    // A Host header replaces the URL's for routing.
    assert_eq!(
        request("GET", "http://a.test/", &["host: b.test"]).host(),
        "b.test"
    );

    let err = |method: &str, url: &str| RequestDescription::from_url(method, url).unwrap_err();
    assert!(matches!(
        err("GET", "api.example.com/v1"),
        RequestError::Scheme(_)
    ));
    assert!(matches!(err("GET", "ftp://h/"), RequestError::Scheme(_)));
    assert!(matches!(err("GET", "http:///x"), RequestError::NoHost));
    assert!(matches!(
        err("GET", "http://u:p@h/"),
        RequestError::Credentials
    ));
    assert!(matches!(err("GET", "http://h:0/"), RequestError::Port(_)));
    assert!(matches!(
        err("GET", "http://h:99999/"),
        RequestError::Port(_)
    ));
    assert!(matches!(err("GET", "http://h:/"), RequestError::Port(_)));
    assert!(matches!(err("GET", "http://h st/"), RequestError::Host(_)));
    assert!(matches!(err("GET", "http://[zz]/"), RequestError::Host(_)));
    assert!(matches!(
        err("GET", "http://h/a b"),
        RequestError::Character(' ')
    ));
    assert!(matches!(
        err("GET", "http://h/é"),
        RequestError::Character('é')
    ));
    assert!(matches!(err("GE T", "http://h/"), RequestError::Method(_)));
    assert!(matches!(err("", "http://h/"), RequestError::Method(_)));
    assert!(
        err("GET", "api.example.com/v1")
            .to_string()
            .contains("https://api.example.com/v1")
    );

    let mut r = request("GET", "http://h/", &[]);
    assert!(matches!(
        r.header_line("no colon"),
        Err(RequestError::HeaderLine(_))
    ));
    assert!(matches!(
        r.header_line("bad name: v"),
        Err(RequestError::HeaderName(_))
    ));
    assert!(matches!(
        r.header_line(": v"),
        Err(RequestError::HeaderName(_))
    ));
    assert!(matches!(
        r.header_line("x: a\r\nb: c"),
        Err(RequestError::HeaderValue(_))
    ));
    r.header_line("empty:").unwrap();
    assert_eq!(r.headers, [("empty".to_owned(), String::new())]);
}

#[test]
fn the_explanation_and_the_effective_config_serialize_fully() {
    let c = production();
    let e = ex(
        &c,
        "GET",
        "https://api.example.com/v1/users",
        &["upgrade: websocket"],
    );
    let json = serde_json::to_value(&e).unwrap();
    for key in [
        "request", "listener", "routing", "outcome", "refusals", "limits", "route",
    ] {
        assert!(json.get(key).is_some(), "{key} missing: {json}");
    }
    assert_eq!(json["outcome"]["action"], "refuse");
    assert_eq!(json["outcome"]["status"], 403);
    assert!(
        json["outcome"]["cause"]
            .as_str()
            .unwrap()
            .ends_with("route \"api\" has no `websocket #true`"),
        "{}",
        json["outcome"]
    );
    assert_eq!(json["routing"]["matched"]["id"], "api");
    // "ws" allows WebSockets, for /v1/stream only: here it is a near miss.
    assert_eq!(json["routing"]["near_misses"][1]["id"], "ws");
    assert_eq!(json["route"]["timeouts"]["first_try"]["read"], 5000);
    assert_eq!(json["route"]["upstream"]["targets"][2]["weight"], 1);
    assert_eq!(json["limits"][2]["setting"], "limits.max-uri-bytes");
    // The normalised configuration: every default present.
    let cfg = c.to_json();
    assert_eq!(cfg["agents"][1]["queue_timeout"], 0);
    assert!(cfg["routes"][0]["retry"]["max_attempts"].is_u64());
    assert!(cfg["listeners"][0]["idle_timeout"].is_u64());
    assert!(cfg["upstreams"][2]["timeouts"]["connect"].is_u64());
}

// The route is always the matcher's

const HOSTS: &[&str] = &["a.test", "b.a.test", "*.a.test", "*.test", "c.test"];
const PREFIXES: &[&str] = &["/", "/api", "/api/v1/", "/static/"];
const METHODS: &[&str] = &["GET", "POST", "DELETE"];

#[derive(Clone, Debug)]
struct RouteSpec {
    priority: i32,
    host: Option<&'static str>,
    prefix: Option<&'static str>,
    method: Option<&'static str>,
    header: Option<(&'static str, Option<&'static str>)>,
    query: Option<&'static str>,
}

fn route_spec() -> impl Strategy<Value = RouteSpec> {
    (
        -2..3i32,
        prop::option::of(prop::sample::select(HOSTS)),
        prop::option::of(prop::sample::select(PREFIXES)),
        prop::option::weighted(0.3, prop::sample::select(METHODS)),
        prop::option::weighted(
            0.3,
            (
                prop::sample::select(&["x-a", "x-b"][..]),
                prop::option::of(Just("1")),
            ),
        ),
        prop::option::weighted(0.2, prop::sample::select(&["q", "debug"][..])),
    )
        .prop_map(
            |(priority, host, prefix, method, header, query)| RouteSpec {
                priority,
                host,
                prefix,
                method,
                header,
                query,
            },
        )
}

#[derive(Clone, Debug)]
struct ReqSpec {
    method: &'static str,
    host: &'static str,
    port: Option<u16>,
    host_header: Option<&'static str>,
    path: &'static str,
    query: Option<&'static str>,
    headers: Vec<(&'static str, &'static str)>,
}

fn req_spec() -> impl Strategy<Value = ReqSpec> {
    let hosts = &[
        "a.test",
        "B.A.test",
        "x.b.a.test",
        "c.test",
        "test",
        "other",
    ][..];
    (
        prop::sample::select(METHODS),
        prop::sample::select(hosts),
        prop::option::of(prop::sample::select(&[80u16, 8080][..])),
        prop::option::weighted(0.2, prop::sample::select(hosts)),
        prop::sample::select(&["/", "/api", "/api/v1/x", "/static/a.css", "/other"][..]),
        prop::option::of(prop::sample::select(&["q=1", "debug", "a=b&q", "x"][..])),
        prop::collection::vec(
            (
                prop::sample::select(&["x-a", "x-b", "x-c"][..]),
                prop::sample::select(&["1", "2"][..]),
            ),
            0..3,
        ),
    )
        .prop_map(
            |(method, host, port, host_header, path, query, headers)| ReqSpec {
                method,
                host,
                port,
                host_header,
                path,
                query,
                headers,
            },
        )
}

fn scenario_config(routes: &[RouteSpec], default: Option<usize>) -> Config {
    let mut body = String::new();
    for (i, r) in routes.iter().enumerate() {
        let mut m = String::new();
        if let Some(h) = r.host {
            m += &format!("host \"{h}\"; ");
        }
        if let Some(p) = r.prefix {
            m += &format!("path-prefix \"{p}\"; ");
        }
        if let Some(x) = r.method {
            m += &format!("method \"{x}\"; ");
        }
        match r.header {
            Some((n, Some(v))) => m += &format!("header \"{n}\" \"{v}\"; "),
            Some((n, None)) => m += &format!("header \"{n}\"; "),
            None => {}
        }
        if let Some(q) = r.query {
            m += &format!("query-param \"{q}\"; ");
        }
        let matches = if m.is_empty() {
            String::new()
        } else {
            format!("matches {{ {m}}}; ")
        };
        body += &format!(
            "route \"r{i}\" {{ priority {}; {matches}upstream \"u\"; }}\n",
            r.priority
        );
    }
    let default = default
        .filter(|d| *d < routes.len())
        .map(|d| format!("default-route \"r{d}\"; "))
        .unwrap_or_default();
    load(&format!(
        r#"
listeners {{ listener "l" {{ address "127.0.0.1:8080"; protocol "http"; {default}}} }}
upstreams {{ upstream "u" {{ target "127.0.0.1:3000"; }} }}
routes {{
{body}}}
"#
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn explain_reports_the_route_find_picks(
        routes in prop::collection::vec(route_spec(), 1..8),
        default in prop::option::weighted(0.3, 0..8usize),
        requests in prop::collection::vec(req_spec(), 1..8),
    ) {
        let config = scenario_config(&routes, default);
        let matcher = RouteMatcher::for_listener(&config, &config.listeners[0]);
        for spec in &requests {
            let authority = match spec.port {
                Some(p) => format!("{}:{p}", spec.host),
                None => spec.host.to_owned(),
            };
            let url = match spec.query {
                Some(q) => format!("http://{authority}{}?{q}", spec.path),
                None => format!("http://{authority}{}", spec.path),
            };
            let mut r = RequestDescription::from_url(spec.method, &url).unwrap();
            if let Some(h) = spec.host_header {
                r.push_header("Host", h).unwrap();
            }
            for (n, v) in &spec.headers {
                r.push_header(n, v).unwrap();
            }
            let e = explain(&config, None, &r).unwrap();

            // What the proxy does: its header map has Host; it routes on the Host header.
            let mut headers: Vec<(String, String)> = r.headers.clone();
            if spec.host_header.is_none() {
                headers.push(("host".to_owned(), authority.clone()));
            }
            let host = spec.host_header.map_or(authority.clone(), str::to_owned);
            let found = matcher.find(&Request {
                method: spec.method,
                host: Some(&host),
                path: spec.path,
                query: spec.query,
                headers: &headers,
            });
            let got = e.routing.matched.as_ref().map(|m| (m.id.as_str(), m.by == MatchedBy::DefaultRoute));
            let want = found.map(|f| (f.id.as_str(), f.fallback));
            prop_assert_eq!(got, want, "{} with {:?}", url, r.headers);

            // The reasons agree with the verdict.
            if let Some(m) = &e.routing.matched {
                if m.by == MatchedBy::Conditions {
                    prop_assert!(m.conditions.iter().all(|c| c.holds));
                }
                prop_assert!(e.routing.shadowed.iter().all(|s| s.rank > m.rank));
                let forwarded = matches!(e.outcome, Outcome::Forward { .. });
                prop_assert!(forwarded);
            } else {
                prop_assert_eq!(status(&e), Some(404));
            }
            for n in &e.routing.near_misses {
                prop_assert_eq!(n.conditions.iter().filter(|c| !c.holds).count(), 1);
            }
        }
    }
}
