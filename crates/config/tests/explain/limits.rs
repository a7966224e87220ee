//! Limits the request already breaks, in the order the proxy checks them.

use super::*;

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

// Paths

#[test]
fn the_path_is_normalised_before_routing_and_ambiguous_paths_get_400() {
    let c = simple(
        r#"
route "admin" { matches { path-prefix "/admin/"; }; upstream "u"; }
route "rest" { upstream "u"; }
"#,
        "",
    );
    let e = ex(&c, "GET", "http://h.test/x/%2e%2e//%61dmin/y?q=%2F", &[]);
    assert_eq!(matched(&e), Some("admin"));
    assert_eq!(e.request.path, "/x/%2e%2e//%61dmin/y");
    assert_eq!(e.request.normalized_path.as_deref(), Some("/admin/y"));
    assert_eq!(e.request.path_refused, None);
    assert!(matches!(e.outcome, Outcome::Forward { .. }));

    for (url, reason) in [
        ("http://h.test/admin%2Fy", "encoded slash (%2F) in the path"),
        ("http://h.test/../admin/y", "the path climbs above the root"),
        ("http://h.test/a\\b", "backslash in the path"),
        (
            "http://h.test/x/..;/admin/",
            "dot segment with parameters in the path",
        ),
    ] {
        let e = ex(&c, "GET", url, &[]);
        let Outcome::Refuse(r) = &e.outcome else {
            panic!("{url}: {:?}", e.outcome)
        };
        assert_eq!((r.status, r.reason), (400, reason), "{url}");
        assert_eq!(e.request.normalized_path, None);
        assert_eq!(e.request.path_refused, Some(reason));
    }
    // `;` parameters: kept by default, refused where the listener says so.
    let e = ex(&c, "GET", "http://h.test/admin;x/y", &[]);
    assert_eq!(matched(&e), Some("rest"), "not under /admin/ as sent");
    let strict = load(
        r#"
listeners { listener "web" { address "127.0.0.1:8080"; path-parameters "refuse"; } }
upstreams { upstream "u" { target "127.0.0.1:3000"; } }
routes { route "rest" { upstream "u"; } }
"#,
    );
    let e = ex(&strict, "GET", "http://h.test/admin;x/y", &[]);
    let Outcome::Refuse(r) = &e.outcome else {
        panic!("{:?}", e.outcome)
    };
    assert_eq!(
        (r.status, r.reason),
        (400, "parameters (;) in the path are refused here")
    );
    let e = ex(&strict, "GET", "http://h.test/admin%3Bx/y?a=1;2", &[]);
    assert!(
        matches!(e.outcome, Outcome::Forward { .. }),
        "{:?}",
        e.outcome
    );
    // A URI over its limit is 414 first, as in the proxy.
    let c = simple(
        r#"route "rest" { upstream "u"; }"#,
        "limits { max-uri-bytes 64; }",
    );
    let long = format!("http://h.test/../{}", "a".repeat(64));
    let e = ex(&c, "GET", &long, &[]);
    assert_eq!(status(&e), Some(414));
    assert_eq!(e.refusals[1].status, 400);
}
