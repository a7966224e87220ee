//! Where problems are reported and how they read: positions, suggestions, all problems of a file, syntax, types and ranges, duplicates, IDs, defaults.

use super::*;

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
