//! `RouteMatcher::trace`: the per-condition verdicts behind `find`'s answer.

use super::*;

fn trace_of<'m>(m: &'m RouteMatcher, r: Req<'_>) -> super::super::Trace<'m> {
    let hs = Hs(r.headers);
    m.trace(&Request {
        method: r.method,
        host: r.host,
        path: r.path,
        query: r.query,
        headers: &hs,
    })
}

#[test]
fn every_condition_is_reported_in_order_and_find_is_included() {
    let m = matcher(
        &[
            route(
                "full",
                5,
                r#"host "api.example.com"; path-prefix "/v1/"; path-regex "users$"; method "GET" "POST"; header "x-a" "1"; header "x-b"; query-param "q""#,
            ),
            route("rest", 0, ""),
        ]
        .concat(),
    );
    let r = get("/v1/users")
        .host("API.example.com:443")
        .method("PUT")
        .headers(&[("x-a", "1")])
        .query("q=1");
    let t = trace_of(&m, r);
    assert_eq!(t.host.as_deref(), Some("api.example.com"));
    assert_eq!(t.found.map(|f| f.id.as_str()), Some("rest"));
    let full = &t.routes[0];
    assert_eq!(full.id.as_str(), "full");
    assert!(full.host);
    assert_eq!(full.paths, [true, true]);
    assert_eq!(full.method, Some(false));
    assert_eq!(full.headers, [true, false]);
    assert_eq!(full.query_params, [true]);
    assert_eq!(full.failed(), 2);
    assert!(!full.holds());
    let rest = &t.routes[1];
    assert_eq!((rest.method, rest.paths.len()), (None, 0));
    assert!(rest.holds());
}

#[test]
fn host_verdicts_follow_the_candidate_lists() {
    let m = matcher(
        &[
            route("exact", 3, r#"host "a.example.com""#),
            route("wild", 2, r#"host "*.example.com""#),
            route("any", 1, ""),
        ]
        .concat(),
    );
    let hosts = |host: Option<&str>| -> Vec<bool> {
        let mut r = get("/");
        r.host = host;
        trace_of(&m, r).routes.iter().map(|c| c.host).collect()
    };
    assert_eq!(hosts(Some("a.example.com")), [true, true, true]);
    assert_eq!(hosts(Some("b.a.example.com")), [false, true, true]);
    assert_eq!(hosts(Some("example.com")), [false, false, true]);
    assert_eq!(hosts(None), [false, false, true]);
    assert_eq!(hosts(Some("ü.example.com")), [false, false, true]);
}

#[test]
fn the_fallback_is_reported_as_find_reports_it() {
    let c = with_listener(
        r#"default-route "b";"#,
        &[route("a", 1, r#"path "/a""#), route("b", 0, r#"path "/b""#)].concat(),
    );
    let m = RouteMatcher::for_listener(&c, &c.listeners[0]);
    let t = trace_of(&m, get("/c"));
    let found = t.found.expect("fallback");
    assert!(found.fallback);
    assert_eq!(found.id.as_str(), "b");
    assert!(t.routes.iter().all(|c| !c.holds()));
}
