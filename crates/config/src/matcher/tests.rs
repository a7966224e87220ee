//! Tests of the route matcher.
//!
//! Configurations are written in KDL and loaded with [`crate::load_str`], so every test also
//! goes through the decoder exactly as a user's configuration would. The last section checks
//! the matcher against a naive reference implementation on random route sets and requests.

use proptest::prelude::*;

use super::{Headers, Request, RouteMatch, RouteMatcher};
use crate::model::{Config, HostPattern, Listener};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Headers of a test request.
///
/// `[(&str, &str)]` implements [`Headers`], but a slice is unsized, so `&[(&str, &str)]` cannot
/// be coerced to the `&dyn Headers` that [`Request::headers`] wants. This wrapper delegates to
/// the slice implementation, so that implementation is what the tests exercise.
struct Hs<'a>(&'a [(&'a str, &'a str)]);

impl Headers for Hs<'_> {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.0.any_value(name, pred)
    }
}

/// Loads a complete configuration text; panics with the diagnostics when it does not load.
fn load(text: &str) -> Config {
    match crate::load_str("test.kdl", text) {
        Ok(c) => c,
        Err(d) => panic!("test configuration does not load:\n{d}\n--- text ---\n{text}"),
    }
}

/// A configuration with one listener (whose block also gets `listener_extra`), one upstream
/// `"u"` and the given `routes { … }` body.
fn with_listener(listener_extra: &str, routes_body: &str) -> Config {
    load(&format!(
        r#"
listeners {{
    listener "l" {{ address "127.0.0.1:8080"; protocol "http"; {listener_extra} }}
}}
upstreams {{
    upstream "u" {{ target "127.0.0.1:3000"; }}
}}
routes {{
{routes_body}
}}
"#
    ))
}

/// A configuration with the given `routes { … }` body.
fn config(routes_body: &str) -> Config {
    with_listener("", routes_body)
}

/// One `route` node: `matches` is the body of its `matches` block (no block when empty).
fn route(id: &str, priority: i32, matches: &str) -> String {
    if matches.is_empty() {
        format!("route \"{id}\" {{ priority {priority}; upstream \"u\"; }}\n")
    } else {
        format!(
            "route \"{id}\" {{ priority {priority}; matches {{ {matches} }}; upstream \"u\"; }}\n"
        )
    }
}

/// A test request, built from `get(path)` with the methods below.
#[derive(Clone, Copy)]
struct Req<'a> {
    method: &'a str,
    host: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a [(&'a str, &'a str)],
}

fn get(path: &str) -> Req<'_> {
    Req {
        method: "GET",
        host: None,
        path,
        query: None,
        headers: &[],
    }
}

impl<'a> Req<'a> {
    fn host(self, host: &'a str) -> Self {
        Self {
            host: Some(host),
            ..self
        }
    }
    fn method(self, method: &'a str) -> Self {
        Self { method, ..self }
    }
    fn query(self, query: &'a str) -> Self {
        Self {
            query: Some(query),
            ..self
        }
    }
    fn headers(self, headers: &'a [(&'a str, &'a str)]) -> Self {
        Self { headers, ..self }
    }
}

fn find<'m>(m: &'m RouteMatcher, r: Req<'_>) -> Option<RouteMatch<'m>> {
    let hs = Hs(r.headers);
    m.find(&Request {
        method: r.method,
        host: r.host,
        path: r.path,
        query: r.query,
        headers: &hs,
    })
}

/// The ID of the route `r` goes to.
fn id<'m>(m: &'m RouteMatcher, r: Req<'_>) -> Option<&'m str> {
    find(m, r).map(|x| x.id.as_str())
}

fn matcher(routes_body: &str) -> RouteMatcher {
    RouteMatcher::new(&config(routes_body))
}

/// Matches `query` against a single route `query-param` condition written as `cond`.
fn query_matches(cond: &str, query: Option<&str>) -> bool {
    let m = matcher(&route("q", 0, cond));
    let mut r = get("/");
    r.query = query;
    find(&m, r).is_some()
}

// ---------------------------------------------------------------------------------------------
// Ranking
// ---------------------------------------------------------------------------------------------

#[test]
fn higher_priority_wins_even_when_defined_later() {
    let m = matcher(
        &[
            route("low", 1, r#"path-prefix "/""#),
            route("high", 10, r#"path-prefix "/api""#),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/api/users")), Some("high"));
    assert_eq!(id(&m, get("/other")), Some("low"));
}

#[test]
fn equal_priorities_keep_definition_order() {
    let m = matcher(
        &[
            route("first", 5, r#"path-prefix "/a""#),
            route("second", 5, r#"path-prefix "/""#),
            route("third", 5, r#"path-prefix "/a""#),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/a")), Some("first"));
    assert_eq!(id(&m, get("/b")), Some("second"));
    assert_eq!(
        m.ranked().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["first", "second", "third"]
    );
}

#[test]
fn ties_keep_definition_order_with_identical_conditions() {
    let m = matcher(&[route("a", 0, ""), route("b", 0, ""), route("c", 0, "")].concat());
    assert_eq!(id(&m, get("/")), Some("a"));
    let m = matcher(&[route("c", 0, ""), route("b", 0, ""), route("a", 0, "")].concat());
    assert_eq!(id(&m, get("/")), Some("c"));
}

#[test]
fn catch_all_of_lower_priority_gets_the_rest() {
    let m = matcher(
        &[
            route("catch-all", -1, ""),
            route("api", 100, r#"path-prefix "/api/""#),
            route("health", 50, r#"path "/healthz""#),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/api/x")), Some("api"));
    assert_eq!(id(&m, get("/healthz")), Some("health"));
    assert_eq!(id(&m, get("/healthz/")), Some("catch-all"));
    assert_eq!(id(&m, get("/")), Some("catch-all"));
    assert_eq!(
        id(&m, get("/x").host("anything.example").method("DELETE")),
        Some("catch-all")
    );
}

#[test]
fn catch_all_of_higher_priority_shadows_everything() {
    let m = matcher(
        &[
            route("api", 0, r#"path-prefix "/api/""#),
            route("all", 1, ""),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/api/x")), Some("all"));
}

#[test]
fn negative_priority_ranks_below_the_default() {
    let m = matcher(
        &[
            route("neg", -5, ""),
            // No `priority`: the default is 0.
            "route \"default\" { matches { path \"/d\" }; upstream \"u\"; }\n".to_owned(),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/d")), Some("default"));
    assert_eq!(id(&m, get("/e")), Some("neg"));
    assert_eq!(
        m.ranked().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["default", "neg"]
    );
}

#[test]
fn extreme_priorities_are_ordered() {
    let m = matcher(
        &[
            route("min", -1_000_000, ""),
            route("zero", 0, r#"method "POST""#),
            route("max", 1_000_000, r#"method "GET""#),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/")), Some("max"));
    assert_eq!(id(&m, get("/").method("POST")), Some("zero"));
    assert_eq!(id(&m, get("/").method("PUT")), Some("min"));
}

#[test]
fn ranked_lists_ids_by_priority_then_definition_order() {
    let m = matcher(
        &[
            route("a", 1, ""),
            route("b", 3, ""),
            route("c", 1, ""),
            route("d", 2, ""),
            route("e", 3, ""),
        ]
        .concat(),
    );
    assert_eq!(
        m.ranked().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["b", "e", "d", "a", "c"]
    );
}

#[test]
fn index_points_into_config_routes_even_when_ranking_reorders() {
    let cfg = config(
        &[
            route("r0", 0, r#"path "/0""#),
            route("r1", 7, r#"path "/1""#),
            route("r2", 3, r#"path "/2""#),
            route("r3", 7, r#"host "*.example.com""#),
        ]
        .concat(),
    );
    let m = RouteMatcher::new(&cfg);
    for (path, host, want) in [
        ("/0", None, 0),
        ("/1", None, 1),
        ("/2", None, 2),
        ("/0", Some("a.example.com"), 3),
        ("/1", Some("a.example.com"), 1),
    ] {
        let mut r = get(path);
        r.host = host;
        let hit = find(&m, r).unwrap_or_else(|| panic!("{path} {host:?} matched nothing"));
        assert_eq!(hit.index, want, "{path} {host:?}");
        assert_eq!(hit.id, &cfg.routes[hit.index].id);
        assert!(!hit.fallback);
    }
}

#[test]
fn route_without_conditions_matches_every_request() {
    for body in [
        // No `matches` block at all, and an empty one.
        "route \"all\" { upstream \"u\"; }\n",
        "route \"all\" { matches { }; upstream \"u\"; }\n",
    ] {
        let m = matcher(body);
        for r in [
            get("/"),
            get("/x/y").host("example.com").method("POST"),
            get("").query("a=b").headers(&[("x", "y")]),
            get("/").host("[::1]:8080"),
            get("/").host(""),
        ] {
            assert_eq!(id(&m, r), Some("all"), "{body}");
        }
    }
}

/// Exact hosts, wildcards and their ranking.
mod hosts;

/// Paths, methods, headers, query parameters, conditions together, listeners.
mod conditions;

/// The matcher against a naive reference implementation (property tests).
mod reference;

/// `trace`: every route's conditions, one by one.
mod trace;
