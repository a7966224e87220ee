//! Agents and built-in filters, upstreams, timeouts, retries, hashing and the client.

use super::*;

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
