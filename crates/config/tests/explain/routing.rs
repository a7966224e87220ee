//! Routing and listeners: priorities and shadowing, hosts, conditions, 404s, default routes, listener choice.

use super::*;

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
