//! Routes, filters and agents: match conditions, normalised paths, retries, header policies, built-in filters, agent transports and settings.

use super::*;

#[test]
fn transport_grpc() {
    let agent = |t: &str| {
        base(
            "",
            "",
            "filters \"a\"",
            &format!(
                "agents {{ agent \"a\" {{ transport {{ {t} }}; events \"request-headers\"; }} }}"
            ),
        )
    };
    let c = ok(&agent(r#"grpc "waf.internal:50051""#));
    assert_eq!(
        c.agents[0].transport,
        AgentTransport::Grpc("waf.internal:50051".into())
    );
    let (c, _, _, h) = one(&agent(r#"grpc "http://waf:50051""#));
    assert_eq!(c, Code::InvalidValue);
    assert!(h.contains("no scheme"), "{h}");
    let (c, _, m, _) = one(&agent(r#"grpc "a:1"; unix-socket "/a""#));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("not both"), "{m}");
    let (c, _, _, _) = one(&agent(""));
    assert_eq!(c, Code::MissingKey);
}

#[test]
fn filter_type() {
    let c = ok(&base(
        "",
        "",
        "filters \"per-ip\"",
        r#"filters { filter "per-ip" { type "rate-limit"; requests-per-second 5; burst 10; key "client-ip"; on-limit "reject"; } }"#,
    ));
    let FilterKind::RateLimit(rl) = &c.filters[0].kind else {
        panic!("rate limit")
    };
    assert_eq!((rl.requests_per_second, rl.burst), (5, 10));
    let (c, _, _, h) = one(&base(
        "",
        "",
        "",
        r#"filters { filter "f" { type "rate-limt"; requests-per-second 5; } }"#,
    ));
    assert_eq!(c, Code::UnknownValue);
    assert_eq!(h, "did you mean `rate-limit`?");
    let (c, _, _, _) = one(&base(
        "",
        "",
        "",
        r#"filters { filter "f" { requests-per-second 5; } }"#,
    ));
    assert_eq!(c, Code::MissingKey);
    let (c, _, _, _) = one(&base(
        "",
        "",
        "",
        r#"filters { filter "f" { type "rate-limit"; requests-per-second 5; key "header:"; } }"#,
    ));
    assert_eq!(c, Code::InvalidValue);
}

#[test]
fn rate_limit_delay() {
    let c = ok(&base(
        "",
        "",
        "",
        r#"filters { filter "f" { type "rate-limit"; requests-per-second 5; on-limit "delay"; max-delay-ms 250; } }"#,
    ));
    let FilterKind::RateLimit(rl) = &c.filters[0].kind else {
        panic!("rate limit")
    };
    assert_eq!(rl.on_limit, OnLimit::Delay);
    assert_eq!(rl.max_delay.as_millis(), 250);
    assert_eq!(rl.burst, 5, "burst defaults to the rate");
    let (c, _, m, _) = one(&base(
        "",
        "",
        "",
        r#"filters { filter "f" { type "rate-limit"; requests-per-second 5; max-delay-ms 250; } }"#,
    ));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("never waits"), "{m}");
}

#[test]
fn route_filters_and_failure_mode() {
    let (c, _, m, h) = one(&base(
        "",
        "",
        r#"filters "wfa""#,
        r#"agents { agent "waf" { transport { unix-socket "/w"; }; events "request-headers"; } }"#,
    ));
    assert_eq!(c, Code::UnknownReference);
    assert!(m.contains("neither an agent nor a filter"), "{m}");
    assert_eq!(h, "did you mean `waf`?");
    let (c, _, m, _) = one(&base("", "", r#"failure-mode "open""#, ""));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("consults no agent"), "{m}");
    let (c, _, _, _) = one(&base(
        "",
        "",
        r#"filters "waf" "waf""#,
        r#"agents { agent "waf" { transport { unix-socket "/w"; }; events "request-headers"; } }"#,
    ));
    assert_eq!(c, Code::InvalidValue);
}

#[test]
fn agent_body_settings_need_their_events() {
    let agent = |body: &str| {
        base(
            "",
            "",
            "",
            &format!(
                "agents {{ agent \"a\" {{ transport {{ unix-socket \"/a\"; }}; events \"request-headers\"; {body} }} }}"
            ),
        )
    };
    let (c, _, m, _) = one(&agent(r#"request-body-mode "stream""#));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("`request-body` event"), "{m}");
    let (c, _, _, _) = one(&agent("max-response-body-bytes 10"));
    assert_eq!(c, Code::Conflict);
    let (c, _, m, _) = one(&agent("timeout-ms 50; queue-timeout-ms 50"));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("below `timeout-ms`"), "{m}");
    let (c, _, _, _) = one(&agent(r#"events "request-headers""#));
    assert_eq!(c, Code::DuplicateKey);
}

#[test]
fn response_body_agents_need_work_stealing() {
    let text = |server: &str| {
        base(
            "",
            "",
            "",
            &format!(
                "{server}\nagents {{ agent \"a\" {{ transport {{ unix-socket \"/a\"; }}; events \"request-headers\" \"response-body\"; }} }}"
            ),
        )
    };
    let (c, loc, m, h) = one(&text(""));
    assert_eq!(c, Code::Conflict);
    assert_eq!(loc, "6:10", "reported at the agent");
    assert!(
        m.contains("agent `a`") && m.contains("`response-body`"),
        "{m}"
    );
    assert_eq!(h, "set `server { work-stealing #true; }`");
    assert!(
        !ok(&base("", "", "", "")).server.work_stealing,
        "off by default"
    );
    let c = ok(&text("server { work-stealing #true; }"));
    assert!(c.server.work_stealing);
    // Other events do not need it.
    ok(&base(
        "",
        "",
        "",
        r#"agents { agent "a" { transport { unix-socket "/a"; }; events "request-headers" "request-body"; } }"#,
    ));
}

#[test]
fn agent_config_block_becomes_json() {
    let c = ok(&base(
        "",
        "",
        "",
        r#"agents { agent "a" { transport { unix-socket "/a"; }; events "request-headers";
        config { paranoia-level 2; exclude-rules 942100 942200; mode "block"; rule "a"; rule "b"; nested { on; ratio 0.5; none #null; } } } }"#,
    ));
    assert_eq!(
        c.agents[0].config,
        serde_json::json!({"paranoia-level": 2, "exclude-rules": [942100, 942200], "mode": "block", "rule": ["a", "b"],
            "nested": {"on": true, "ratio": 0.5, "none": null}})
    );
    let (c, _, _, _) = one(&base(
        "",
        "",
        "",
        r#"agents { agent "a" { transport { unix-socket "/a"; }; events "request-headers"; config { x limit=1; } } }"#,
    ));
    assert_eq!(c, Code::Type);
}

#[test]
fn header_policies() {
    let c = ok(&base(
        "",
        "",
        r#"request-headers { set "X-Env" "prod"; add "via" "zentinel"; remove "x-debug" "x-trace"; rename "x-a" "x-b"; }"#,
        "",
    ));
    let p = &c.routes[0].request_headers;
    assert_eq!(p.set, vec![("x-env".to_owned(), "prod".to_owned())]);
    assert_eq!(p.remove, vec!["x-debug".to_owned(), "x-trace".to_owned()]);
    assert_eq!(p.rename, vec![("x-a".to_owned(), "x-b".to_owned())]);
    let (c, _, m, _) = one(&base(
        "",
        "",
        r#"request-headers { remove "x-a"; set "x-a" "1"; }"#,
        "",
    ));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("conflicting edits"), "{m}");
    let (c, _, _, _) = one(&base(
        "",
        "",
        r#"response-headers { set "content-length" "1"; }"#,
        "",
    ));
    assert_eq!(c, Code::Conflict);
    let (c, _, _, _) = one(&base(
        "",
        "",
        "response-headers { set \"x-a\" \"a\\nb\"; }",
        "",
    ));
    assert_eq!(c, Code::InvalidValue);
    let (c, _, _, _) = one(&base(
        "",
        "",
        r#"response-headers { set "bad name" "v"; }"#,
        "",
    ));
    assert_eq!(c, Code::InvalidValue);
    let (c, _, _, _) = one(&base("", "", r#"response-headers { set "x-only"; }"#, ""));
    assert_eq!(c, Code::Type);
}

#[test]
fn matches_validation() {
    let c = ok(&base(
        "",
        "",
        r#"matches { host "API.Example.com" "*.example.com"; path-prefix "/api/"; path-regex "^/api/v[0-9]+"; method "GET" "POST"; header "x-env"; query-param "debug" "1"; }"#,
        "",
    ));
    let m = &c.routes[0].matches;
    assert_eq!(m.hosts.len(), 2);
    assert_eq!(m.paths.len(), 2);
    assert_eq!(m.methods, vec!["GET".to_owned(), "POST".to_owned()]);
    let (c, _, _, h) = one(&base("", "", r#"matches { method "get"; }"#, ""));
    assert_eq!(c, Code::InvalidValue);
    assert_eq!(h, "write \"GET\"");
    let (c, _, m, _) = one(&base("", "", r#"matches { path-regex "(unclosed"; }"#, ""));
    assert_eq!(c, Code::InvalidValue);
    assert!(m.contains("not a valid regular expression"), "{m}");
    let (c, _, _, h) = one(&base(
        "",
        "",
        r#"matches { host "api.example.com:443"; }"#,
        "",
    ));
    assert_eq!(c, Code::InvalidValue);
    assert!(h.contains("without the port"), "{h}");
    let (c, _, _, _) = one(&base("", "", r#"matches { host "a.*.com"; }"#, ""));
    assert_eq!(c, Code::InvalidValue);
    let (c, _, _, _) = one(&base("", "", r#"matches { path-prefix "api/"; }"#, ""));
    assert_eq!(c, Code::InvalidValue);
}

/// Requests are routed on their normalised path, so a path condition that is not normal
/// could never match: refused, with the normal spelling as the hint.
#[test]
fn path_conditions_are_written_normalised() {
    for (cond, hint) in [
        (r#"path "/a/./b""#, r#"write "/a/b""#),
        (r#"path "/%7Euser""#, r#"write "/~user""#),
        (r#"path-prefix "/api//v1/""#, r#"write "/api/v1/""#),
        (r#"path-prefix "/x/../api/""#, r#"write "/api/""#),
        (r#"path-prefix "/a%3a""#, r#"write "/a%3A""#),
    ] {
        let (c, loc, m, h) = one(&base("", "", &format!("matches {{ {cond}; }}"), ""));
        assert_eq!(c, Code::InvalidValue, "{cond}");
        assert!(m.contains("would never match"), "{cond}: {m}");
        assert_eq!(h, hint, "{cond}");
        assert!(loc.starts_with("4:"), "{cond}: {loc}");
    }
    for cond in [
        r#"path "/a%2Fb""#,
        r#"path-prefix "/../x""#,
        r#"path-prefix "/a\\b""#,
    ] {
        let (c, _, m, _) = one(&base("", "", &format!("matches {{ {cond}; }}"), ""));
        assert_eq!(c, Code::InvalidValue, "{cond}");
        assert!(m.contains("refuses such paths with 400"), "{cond}: {m}");
    }
    // Normal spellings, and prefixes whose last segment may continue, are accepted.
    let c = ok(&base(
        "",
        "",
        r#"matches { path "/a%3Ab/"; path-prefix "/.well"; }"#,
        "",
    ));
    assert_eq!(c.routes[0].matches.paths.len(), 2);
    ok(&base("", "", r#"matches { path-prefix "/v1/."; }"#, ""));
    ok(&base("", "", r#"matches { path-prefix "/v1/.."; }"#, ""));
}

#[test]
fn retry_rules() {
    let c = ok(&base(
        "",
        "",
        r#"retry { max-attempts 3; retry-on "connect-error" "503"; per-try-timeout-ms 1000; }; timeouts { total-ms 5000; }"#,
        "",
    ));
    assert_eq!(c.routes[0].retry.retry_on.len(), 2);
    let (c, _, m, _) = one(&base(
        "",
        "",
        r#"retry { max-attempts 1; retry-on "503"; }"#,
        "",
    ));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("disables retries"), "{m}");
    let (c, _, m, _) = one(&base(
        "",
        "",
        "retry { per-try-timeout-ms 5000; }; timeouts { total-ms 5000; }",
        "",
    ));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("no retry could ever start"), "{m}");
    let (c, _, _, _) = one(&base("", "", r#"retry { retry-on "500"; }"#, ""));
    assert_eq!(c, Code::UnknownValue);
}
