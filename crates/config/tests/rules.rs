//! Diagnostics and cross-key rules: what is refused, where it is reported, and the hint.

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

const SEED: &str = include_str!("../../../examples/seed.kdl");

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

#[test]
fn typo_in_agent_key_names_file_line_column_and_suggestion() {
    let text = SEED.replace("timeout-ms 50", "timout-ms 50");
    let line = text
        .lines()
        .position(|l| l.starts_with("timout-ms"))
        .expect("line")
        + 1;
    let (code, loc, msg, help) = one(&text);
    assert_eq!(code, Code::UnknownKey);
    assert_eq!(loc, format!("{line}:1"));
    assert!(
        msg.contains("`timout-ms`") && msg.contains("agent \"waf\""),
        "{msg}"
    );
    assert_eq!(help, "did you mean `timeout-ms`?");
}

#[test]
fn unknown_upstream_points_at_the_reference_and_lists_known_ids() {
    let text = SEED.replace(
        "upstream \"static-backend\"\n",
        "upstream \"static-bakend\"\n",
    );
    let d = err(&text);
    let p = &d.problems()[0];
    assert_eq!(p.code, Code::UnknownReference);
    assert!(
        p.message.contains("route \"marketing\"") && p.message.contains("\"static-bakend\""),
        "{}",
        p.message
    );
    let help = p.help.as_deref().unwrap_or_default();
    assert!(help.contains("did you mean `static-backend`?"), "{help}");
    assert!(
        help.contains("known upstreams: backend, static-backend"),
        "{help}"
    );
    // The route's own span is attached, so the message shows which route holds the reference.
    assert_eq!(p.related.len(), 1);
    assert!(d.location(p.related[0].0).ends_with(&format!(
            ":{}:7",
            text.lines()
                .position(|l| l.contains("route \"marketing\""))
                .unwrap_or(0)
                + 1
        )));
}

#[test]
fn unknown_enum_value_suggests_the_closest() {
    let (code, _, msg, help) = one(&base("", r#"load-balancing "least-conections""#, "", ""));
    assert_eq!(code, Code::UnknownValue);
    assert!(msg.contains("least-conections"));
    assert_eq!(help, "did you mean `least-connections`?");
    let (_, _, _, help) = one(&base("", r#"load-balancing "fastest""#, "", ""));
    assert!(
        help.starts_with("accepted values: round-robin, weighted"),
        "{help}"
    );
}

#[test]
fn all_problems_of_a_file_are_collected_in_reading_order() {
    let text = r#"
listeners { listener "web" { address "nope"; protocl "http"; } }
upstreams { upstream "u" { target "127.0.0.1:3000" weigth=2; } }
routes { route "r" { upstream "x"; priority "high"; } }
"#;
    let d = err(text);
    let codes: Vec<Code> = d.problems().iter().map(|p| p.code).collect();
    assert_eq!(
        codes,
        vec![
            Code::InvalidValue,
            Code::UnknownKey,
            Code::UnknownKey,
            Code::UnknownReference,
            Code::Type
        ],
        "{d}"
    );
}

#[test]
fn syntax_errors_are_reported_with_position() {
    let d = err("listeners {\n  listener \"web\" { address \"127.0.0.1:8080; }\n}\n");
    assert!(d.problems().iter().all(|p| p.code == Code::Syntax), "{d}");
    let unclosed = d
        .problems()
        .iter()
        .find(|p| p.message.contains("quoted string"))
        .expect("string problem");
    assert_eq!(
        d.location(unclosed.span.expect("span")),
        "test.kdl:2:28",
        "{d}"
    );
}

#[test]
fn missing_top_level_blocks_are_reported() {
    let d = err("server { worker-threads 2; }\n");
    let msgs: Vec<&str> = d.problems().iter().map(|p| p.message.as_str()).collect();
    assert_eq!(msgs.len(), 3, "{d}");
    assert!(
        msgs.iter().all(|m| m.starts_with("the top level needs")),
        "{msgs:?}"
    );
}

#[test]
fn types_arity_and_ranges() {
    let (c, _, m, h) = one(&base(
        "",
        "",
        "",
        "agents { agent \"a\" { transport { unix-socket \"/a\"; }; events \"request-headers\"; timeout-ms \"50\"; } }",
    ));
    assert_eq!(c, Code::Type);
    assert!(m.contains("must be an integer"), "{m}");
    assert_eq!(h, "write the number without quotes: timeout-ms 50");
    let (c, _, m, _) = one(&base(
        "",
        "",
        "",
        "agents { agent \"a\" { transport { unix-socket \"/a\"; }; events \"request-headers\"; timeout-ms 0; } }",
    ));
    assert_eq!(c, Code::Range);
    assert!(m.contains("between 1 and 60000 ms"), "{m}");
    let (c, _, m, h) = one(&base("", "", r#"websocket "true""#, ""));
    assert_eq!(c, Code::Type);
    assert!(m.contains("#true or #false"), "{m}");
    assert!(
        h.contains("KDL v2 writes booleans as #true and #false"),
        "{h}"
    );
    let (c, _, m, _) = one(&base("", "", "priority 1 2", ""));
    assert_eq!(c, Code::Type);
    assert!(m.contains("takes one value"), "{m}");
    let (c, _, _, _) = one(&base("", "", "priority (i32)5", ""));
    assert_eq!(c, Code::Type);
    let (c, _, m, _) =
        one(&base("", "", "upstream \"backend\" { }", "").replace("upstream \"backend\"; ", ""));
    assert_eq!(c, Code::Type);
    assert!(m.contains("does not take a block"), "{m}");
}

#[test]
fn duplicate_keys_and_ids() {
    let (c, _, m, _) = one(&base("", "", "priority 1; priority 2", ""));
    assert_eq!(c, Code::DuplicateKey);
    assert!(m.contains("`priority` is set twice"), "{m}");
    let d = err(&base(
        "",
        "",
        "",
        r#"routes { route "api" { upstream "backend"; } }"#,
    ));
    assert_eq!(d.problems()[0].code, Code::DuplicateId);
    assert_eq!(
        d.problems()[0].related.len(),
        1,
        "first definition attached"
    );
    let (c, _, m, _) = one(&base(
        "",
        "",
        "",
        r#"agents { agent "x" { transport { unix-socket "/x"; }; events "request-headers"; } }
filters { filter "x" { type "rate-limit"; requests-per-second 1; } }"#,
    ));
    assert_eq!(c, Code::DuplicateId);
    assert!(m.contains("both an agent and a filter"), "{m}");
    let (c, _, _, _) = one(&base("", "", "", "server { }; server { }"));
    assert_eq!(c, Code::DuplicateKey);
}

#[test]
fn ids_are_restricted() {
    let (c, _, m, _) = one(&base(
        "",
        "",
        "",
        r#"upstreams { upstream "has space" { target "127.0.0.1:1"; } }"#,
    ));
    assert_eq!(c, Code::InvalidValue);
    assert!(m.contains("\"has space\""), "{m}");
}

#[test]
fn https_listener_needs_tls() {
    let (c, _, m, h) = one(&base(r#"protocol "https""#, "", "", ""));
    assert_eq!(c, Code::MissingKey);
    assert!(m.contains("no `tls` block"), "{m}");
    assert!(h.contains("cert-file"));
    let c = ok(&base(
        r#"protocol "https"; tls { cert-file "a.crt"; key-file "a.key"; min-version "1.3"; }"#,
        "",
        "",
        "",
    ));
    assert_eq!(c.listeners[0].protocol, ListenerProtocol::Https);
    assert!(c.listeners[0].tls.is_some());
    let c = ok(&base(r#"protocol "h2c""#, "", "", ""));
    assert_eq!(c.listeners[0].protocol, ListenerProtocol::H2c);
}

#[test]
fn tls_needs_https() {
    let (c, _, m, _) = one(&base(
        r#"tls { cert-file "a.crt"; key-file "a.key"; }"#,
        "",
        "",
        "",
    ));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("would be ignored"), "{m}");
}

#[test]
fn sni_and_client_auth() {
    let c = ok(&base(
        r#"protocol "https"; tls { cert-file "a.crt"; key-file "a.key";
            sni "API.example.com" { cert-file "api.crt"; key-file "api.key"; }
            sni "*.example.com" { cert-file "w.crt"; key-file "w.key"; }
            client-auth "required" { ca-file "ca.crt"; } }"#,
        "",
        "",
        "",
    ));
    let tls = c.listeners[0].tls.as_ref().expect("tls");
    assert_eq!(tls.sni[0].host.to_string(), "api.example.com");
    assert_eq!(tls.sni[1].host.to_string(), "*.example.com");
    assert_eq!(
        tls.client_auth.as_ref().map(|a| a.mode.as_str()),
        Some("required")
    );
    let (c, _, _, h) = one(&base(
        r#"protocol "https"; tls { cert-file "a"; key-file "b"; client-auth "requried" { ca-file "c"; } }"#,
        "",
        "",
        "",
    ));
    assert_eq!(c, Code::UnknownValue);
    assert_eq!(h, "did you mean `required`?");
    let (c, _, _, _) = one(&base(
        r#"protocol "https"; tls { cert-file "a"; key-file "b"; sni "x.com" { cert-file "1"; key-file "2"; }; sni "X.com" { cert-file "1"; key-file "2"; } }"#,
        "",
        "",
        "",
    ));
    assert_eq!(c, Code::DuplicateId);
}

#[test]
fn listener_addresses_may_not_overlap() {
    let text = base(
        "",
        "",
        "",
        r#"listeners { listener "all" { address "0.0.0.0:8080"; } }"#,
    );
    let (c, _, m, _) = one(&text);
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("overlap"), "{m}");
    ok(&base(
        "",
        "",
        "",
        r#"listeners { listener "v6" { address "[::1]:8080"; }; listener "other" { address "127.0.0.2:8080"; } }"#,
    ));
}

#[test]
fn listener_routes_and_default_route_must_exist() {
    let (c, _, m, h) = one(&base(r#"routes "apj""#, "", "", ""));
    assert_eq!(c, Code::UnknownReference);
    assert!(m.contains("listener \"web\""), "{m}");
    assert!(h.contains("did you mean `api`?"), "{h}");
    let c = ok(&base(r#"routes "api"; default-route "api""#, "", "", ""));
    assert_eq!(
        c.listeners[0].default_route.as_ref().map(|r| r.as_str()),
        Some("api")
    );
    let (c, _, m, _) = one(&base(
        r#"routes "api"; default-route "other""#,
        "",
        "",
        r#"routes { route "other" { upstream "backend"; } }"#,
    ));
    assert_eq!(c, Code::InvalidValue);
    assert!(m.contains("not one of this listener's `routes`"), "{m}");
}

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
fn health_check_tcp() {
    let c = ok(&base(
        "",
        "health-check { tcp; interval-ms 1000; timeout-ms 200; }",
        "",
        "",
    ));
    assert!(matches!(
        c.upstreams[0].health_check.as_ref().map(|h| &h.probe),
        Some(HealthProbe::Tcp)
    ));
    let (c, _, m, _) = one(&base("", r#"health-check { tcp; http "/h"; }"#, "", ""));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("either `http` or `tcp`"), "{m}");
    let (c, _, _, _) = one(&base("", "health-check { interval-ms 2000; }", "", ""));
    assert_eq!(c, Code::MissingKey);
    let (c, _, m, _) = one(&base(
        "",
        "health-check { tcp; interval-ms 1000; timeout-ms 1000; }",
        "",
        "",
    ));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("shorter than the interval"), "{m}");
    let (c, _, _, _) = one(&base("", "health-check { tcp 1; }", "", ""));
    assert_eq!(c, Code::Type);
}

#[test]
fn hash_on_needs_consistent_hash() {
    let c = ok(&base(
        "",
        r#"load-balancing "consistent-hash"; hash-on "header" "X-User""#,
        "",
        "",
    ));
    assert_eq!(
        c.upstreams[0].hash_on,
        Some(HashKey::Header("x-user".into()))
    );
    let c = ok(&base("", r#"load-balancing "consistent-hash""#, "", ""));
    assert_eq!(
        c.upstreams[0].hash_on,
        Some(HashKey::ClientIp),
        "client IP by default"
    );
    let c = ok(&base(
        "",
        r#"load-balancing "consistent-hash"; hash-on "cookie" "sid""#,
        "",
        "",
    ));
    assert_eq!(c.upstreams[0].hash_on, Some(HashKey::Cookie("sid".into())));
    let (c, _, m, _) = one(&base("", r#"hash-on "client-ip""#, "", ""));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("only applies to"), "{m}");
    let (c, _, _, _) = one(&base(
        "",
        r#"load-balancing "consistent-hash"; hash-on "header""#,
        "",
        "",
    ));
    assert_eq!(c, Code::InvalidValue);
}

#[test]
fn upstream_client_cert() {
    let c = ok(&base(
        "",
        r#"tls { cert-file "p.crt"; key-file "p.key"; }"#,
        "",
        "",
    ));
    let tls = c.upstreams[0].tls.as_ref().expect("tls");
    assert!(tls.cert_file.is_some() && tls.key_file.is_some() && tls.verify);
    let (c, _, _, _) = one(&base("", r#"tls { cert-file "p.crt"; }"#, "", ""));
    assert_eq!(c, Code::MissingKey);
    let (c, _, _, _) = one(&base(
        "",
        r#"tls { verify #false; ca-file "ca.crt"; }"#,
        "",
        "",
    ));
    assert_eq!(c, Code::Conflict);
}

#[test]
fn targets_accept_names_and_reject_schemes() {
    let c = ok(&base(
        "",
        r#"target "Backend.internal:8080" weight=5"#,
        "",
        "",
    ));
    assert_eq!(
        c.upstreams[0].targets[1].address.to_string(),
        "backend.internal:8080"
    );
    assert_eq!(c.upstreams[0].targets[1].weight, 5);
    let (c, _, _, h) = one(&base("", r#"target "http://b:80""#, "", ""));
    assert_eq!(c, Code::InvalidValue);
    assert!(h.contains("without a scheme"), "{h}");
    let (c, _, _, _) = one(&base("", r#"target "127.0.0.1:3000""#, "", ""));
    assert_eq!(c, Code::InvalidValue, "listed twice");
    let (c, _, _, h) = one(&base("", r#"target "127.0.0.1:3001" wieght=2"#, "", ""));
    assert_eq!(c, Code::UnknownKey);
    assert_eq!(h, "did you mean `weight`?");
}

#[test]
fn log_file_path() {
    let c = ok(&base(
        "",
        "",
        "",
        r#"observability { access-log { destination "file"; path "logs/access.log"; format "text"; } }"#,
    ));
    assert_eq!(
        c.observability.access_log.destination,
        LogDestination::File("logs/access.log".into())
    );
    let (c, _, m, _) = one(&base(
        "",
        "",
        "",
        r#"observability { audit-log { destination "file"; } }"#,
    ));
    assert_eq!(c, Code::MissingKey);
    assert!(m.contains("no `path`"), "{m}");
    let (c, _, m, _) = one(&base(
        "",
        "",
        "",
        r#"observability { error-log { path "e.log"; } }"#,
    ));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("no effect"), "{m}");
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

#[test]
fn admin_on_a_public_address_needs_a_token() {
    let (c, _, m, _) = one(&base("", "", "", r#"admin { address "0.0.0.0:9901"; }"#));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("no `token-file`"), "{m}");
    let c = ok(&base(
        "",
        "",
        "",
        r#"admin { address "0.0.0.0:9901"; token-file "admin.token"; }"#,
    ));
    assert!(c.admin.as_ref().is_some_and(|a| a.token_file.is_some()));
    let (c, _, _, _) = one(&base(
        "",
        "",
        "",
        "observability { metrics { path \"/m\"; } }",
    ));
    assert_eq!(c, Code::Conflict, "metrics without an admin listener");
}

#[test]
fn include_is_refused_for_a_single_text() {
    let (c, _, m, _) = one(&base("", "", "", r#"include "conf.d/*.kdl""#));
    assert_eq!(c, Code::Include);
    assert!(m.contains("single text"), "{m}");
}

#[test]
fn defaults_are_applied() {
    let c = ok(&base("", "", "", ""));
    assert_eq!(c.server.graceful_shutdown_timeout.as_secs(), 30);
    assert!(c.server.worker_threads.is_none());
    assert_eq!(c.limits.max_body_bytes, 10 * 1024 * 1024);
    assert_eq!(c.routes[0].retry.max_attempts, 2);
    assert_eq!(c.upstreams[0].timeouts.connect.as_millis(), 2000);
    assert!(c.upstreams[0].passive_health.enabled);
    assert_eq!(
        c.observability.access_log.destination,
        LogDestination::Stdout
    );
    assert!(c.admin.is_none());
}

#[test]
fn a_key_in_the_wrong_block_says_where_it_belongs() {
    let (c, _, _, h) = one(&base("", "", "connect-ms 1000", ""));
    assert_eq!(c, Code::UnknownKey);
    assert_eq!(h, "`connect-ms` belongs in `upstreams.upstream.timeouts`");
    let (_, _, _, h) = one(&base("", "", "", "server { max-body-bytes 10; }"));
    assert_eq!(
        h,
        "`max-body-bytes` belongs in `routes.route.limits` or `limits`"
    );
}

#[test]
fn health_check_path_and_host_are_sendable() {
    let (c, _, m, _) = one(&base("", r#"health-check { http "/a b"; }"#, "", ""));
    assert_eq!(c, Code::InvalidValue);
    assert!(m.contains("no spaces or control characters"), "{m}");
    let (c, _, _, _) = one(&base(
        "",
        r#"health-check { http "/h" { host "bad host"; } }"#,
        "",
        "",
    ));
    assert_eq!(c, Code::InvalidValue);
    ok(&base(
        "",
        r#"health-check { http "/h?x=1" { host "api.internal:8080"; } }"#,
        "",
        "",
    ));
}

#[test]
fn dns_refresh_needs_a_host_name() {
    let c = ok(&base(
        "",
        r#"target "backend.internal:8080"; dns-refresh-ms 5000"#,
        "",
        "",
    ));
    assert_eq!(c.upstreams[0].dns_refresh.as_millis(), 5000);
    assert_eq!(
        ok(&base("", "", "", "")).upstreams[0].dns_refresh.as_secs(),
        30,
        "default"
    );
    let (c, _, m, _) = one(&base("", "dns-refresh-ms 5000", "", ""));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("every target is an IP address"), "{m}");
}

#[test]
fn slow_client_deadlines_and_the_rate_grace_without_a_rate() {
    let c = ok(&base(
        "body-read-timeout-ms 700; min-body-rate-bytes-per-sec 2048; body-rate-grace-ms 1500; send-timeout-ms 900;",
        "",
        "",
        "",
    ));
    let l = &c.listeners[0];
    assert_eq!(l.body_read_timeout.as_millis(), 700);
    assert_eq!(l.min_body_rate, 2048);
    assert_eq!(l.body_rate_grace.as_millis(), 1500);
    assert_eq!(l.send_timeout.as_millis(), 900);
    // Defaults, written out in the schema.
    let d = &ok(&base("", "", "", "")).listeners[0];
    assert_eq!(
        (
            d.body_read_timeout.as_millis(),
            d.min_body_rate,
            d.body_rate_grace.as_millis(),
            d.send_timeout.as_millis()
        ),
        (10_000, 500, 10_000, 30_000)
    );
    // Rate 0 turns the check off; a grace period then has no effect and is refused.
    assert_eq!(
        ok(&base("min-body-rate-bytes-per-sec 0;", "", "", "")).listeners[0].min_body_rate,
        0
    );
    let (c, _, m, _) = one(&base(
        "min-body-rate-bytes-per-sec 0; body-rate-grace-ms 5000;",
        "",
        "",
        "",
    ));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("`body-rate-grace-ms` has no effect"), "{m}");
}
