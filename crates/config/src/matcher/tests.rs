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

// ---------------------------------------------------------------------------------------------
// Hosts
// ---------------------------------------------------------------------------------------------

#[test]
fn exact_host_is_case_insensitive() {
    let m = matcher(&route("h", 0, r#"host "API.Example.com""#));
    for host in ["api.example.com", "API.EXAMPLE.COM", "Api.Example.Com"] {
        assert_eq!(id(&m, get("/").host(host)), Some("h"), "{host}");
    }
}

#[test]
fn exact_host_ignores_port_and_trailing_dot() {
    let m = matcher(&route("h", 0, r#"host "example.com""#));
    for host in [
        "example.com",
        "example.com:8080",
        "example.com:1",
        "example.com:",
        "example.com.",
        "example.com.:443",
        "EXAMPLE.COM.:443",
    ] {
        assert_eq!(id(&m, get("/").host(host)), Some("h"), "{host}");
    }
    for host in [
        // Not a port: kept as part of the name, which then matches nothing.
        "example.com:http",
        "example.com:80a",
        "example.com:8080.",
        "example.com..",
        "www.example.com",
        "com",
        "example.co",
        "example.com.evil",
        "xexample.com",
        "",
    ] {
        assert_eq!(id(&m, get("/").host(host)), None, "{host}");
    }
}

#[test]
fn ipv4_literal_host_with_port() {
    let m = matcher(&[route("ip", 1, r#"host "127.0.0.1""#), route("any", 0, "")].concat());
    assert_eq!(id(&m, get("/").host("127.0.0.1")), Some("ip"));
    assert_eq!(id(&m, get("/").host("127.0.0.1:8080")), Some("ip"));
    assert_eq!(id(&m, get("/").host("127.0.0.2:8080")), Some("any"));
}

#[test]
fn ipv6_literal_hosts_only_match_host_less_routes() {
    // A route cannot name an IPv6 literal, so such requests go to host-less routes, whatever
    // the brackets and port look like, and never to a route with hosts.
    let m = matcher(
        &[
            route("named", 2, r#"host "example.com" "*.example.com""#),
            route("ipv4", 1, r#"host "127.0.0.1""#),
            route("any", 0, r#"path-prefix "/""#),
        ]
        .concat(),
    );
    for host in [
        "[::1]:8080",
        "[::1]",
        "[::1",
        "[::ffff:127.0.0.1]:443",
        "[FE80::1]:80",
        "[]",
        "[",
        "::1",
    ] {
        assert_eq!(id(&m, get("/").host(host)), Some("any"), "{host}");
    }
    let only_named = matcher(&route("named", 0, r#"host "example.com""#));
    assert_eq!(id(&only_named, get("/").host("[::1]:8080")), None);
}

#[test]
fn host_of_maximum_length_matches_including_port_and_trailing_dot() {
    // 253 bytes: the longest DNS name, which is exactly the matcher's buffer.
    let name = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61),
    ]
    .join(".");
    assert_eq!(name.len(), 253);
    let m = matcher(
        &[
            route("long", 1, &format!("host \"{name}\"")),
            route("any", 0, ""),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/").host(&name)), Some("long"));
    let with_dot = format!("{name}.");
    assert_eq!(id(&m, get("/").host(&with_dot)), Some("long"));
    let with_port = format!("{}:8080", name.to_ascii_uppercase());
    assert_eq!(id(&m, get("/").host(&with_port)), Some("long"));
    let with_both = format!("{name}.:8080");
    assert_eq!(id(&m, get("/").host(&with_both)), Some("long"));
    let too_long = format!("x{name}");
    assert_eq!(id(&m, get("/").host(&too_long)), Some("any"));
}

#[test]
fn unusable_hosts_only_match_host_less_routes() {
    let m = matcher(
        &[
            route("wild", 2, r#"host "*.example.com""#),
            route("exact", 1, r#"host "example.com""#),
            route("any", 0, ""),
        ]
        .concat(),
    );
    let long = format!("{}.example.com", "a".repeat(300));
    for host in [
        "",
        ".",
        "ü.example.com",
        "exämple.com",
        long.as_str(),
        "example.com:8080:9090",
        "exa mple.com",
    ] {
        assert_eq!(id(&m, get("/").host(host)), Some("any"), "{host}");
    }
    let no_host_less = matcher(&route("exact", 1, r#"host "example.com""#));
    assert_eq!(id(&no_host_less, get("/").host("ü.example.com")), None);
}

#[test]
fn wildcard_matches_subdomains_at_any_depth() {
    let m = matcher(&route("w", 0, r#"host "*.example.com""#));
    for host in [
        "a.example.com",
        "a.b.example.com",
        "x.y.z.example.com",
        "A.Example.COM:8443",
        "www.example.com.",
        "www.example.com.:80",
        "a-b_c.example.com",
        // An empty inner label still leaves a non-empty label in front of the suffix.
        "a..example.com",
    ] {
        assert_eq!(id(&m, get("/").host(host)), Some("w"), "{host}");
    }
}

#[test]
fn wildcard_does_not_match_apex_or_lookalikes() {
    let m = matcher(
        &[
            route("w", 1, r#"host "*.example.com""#),
            route("any", 0, ""),
        ]
        .concat(),
    );
    for host in [
        "example.com",
        "EXAMPLE.com:80",
        "example.com.",
        "badexample.com",
        "a.badexample.com",
        "example.com.evil",
        "a.example.co",
        "com",
        "a.example.com.evil",
    ] {
        assert_eq!(id(&m, get("/").host(host)), Some("any"), "{host}");
    }
}

#[test]
fn wildcard_pattern_is_case_insensitive() {
    let m = matcher(&route("w", 0, r#"host "*.Example.COM""#));
    assert_eq!(id(&m, get("/").host("a.example.com")), Some("w"));
    assert_eq!(id(&m, get("/").host("A.EXAMPLE.COM")), Some("w"));
}

#[test]
fn specific_and_general_wildcards_are_decided_by_priority() {
    let specific_first = matcher(
        &[
            route("general", 1, r#"host "*.example.com""#),
            route("specific", 2, r#"host "*.api.example.com""#),
        ]
        .concat(),
    );
    assert_eq!(
        id(&specific_first, get("/").host("v1.api.example.com")),
        Some("specific")
    );
    assert_eq!(
        id(&specific_first, get("/").host("a.v1.api.example.com")),
        Some("specific")
    );
    assert_eq!(
        id(&specific_first, get("/").host("api.example.com")),
        Some("general")
    );
    assert_eq!(
        id(&specific_first, get("/").host("www.example.com")),
        Some("general")
    );
    assert_eq!(id(&specific_first, get("/").host("example.com")), None);

    // The more specific suffix is found first by the lookup, but its candidate list must
    // still rank the general wildcard above it when its priority is higher.
    let general_first = matcher(
        &[
            route("specific", 1, r#"host "*.api.example.com""#),
            route("general", 2, r#"host "*.example.com""#),
        ]
        .concat(),
    );
    assert_eq!(
        id(&general_first, get("/").host("v1.api.example.com")),
        Some("general")
    );
    assert_eq!(
        id(&general_first, get("/").host("www.example.com")),
        Some("general")
    );

    // Equal priorities: definition order.
    let tie = matcher(
        &[
            route("general", 0, r#"host "*.example.com""#),
            route("specific", 0, r#"host "*.api.example.com""#),
        ]
        .concat(),
    );
    assert_eq!(
        id(&tie, get("/").host("v1.api.example.com")),
        Some("general")
    );
}

#[test]
fn general_wildcard_catches_what_the_specific_one_rejects() {
    let m = matcher(
        &[
            route(
                "specific",
                2,
                r#"host "*.api.example.com"; path-prefix "/v2/""#,
            ),
            route("general", 1, r#"host "*.example.com""#),
        ]
        .concat(),
    );
    assert_eq!(
        id(&m, get("/v2/x").host("a.api.example.com")),
        Some("specific")
    );
    assert_eq!(
        id(&m, get("/v1/x").host("a.api.example.com")),
        Some("general")
    );
}

#[test]
fn three_nested_wildcards() {
    let m = matcher(
        &[
            route("com", 0, r#"host "*.com""#),
            route("example", 1, r#"host "*.example.com"; method "POST""#),
            route("api", 2, r#"host "*.api.example.com"; method "PUT""#),
        ]
        .concat(),
    );
    let h = "x.api.example.com";
    assert_eq!(id(&m, get("/").host(h).method("PUT")), Some("api"));
    assert_eq!(id(&m, get("/").host(h).method("POST")), Some("example"));
    assert_eq!(id(&m, get("/").host(h)), Some("com"));
    assert_eq!(
        id(&m, get("/").host("api.example.com").method("PUT")),
        Some("com")
    );
    assert_eq!(
        id(&m, get("/").host("example.com").method("POST")),
        Some("com")
    );
    assert_eq!(id(&m, get("/").host("com")), None);
}

#[test]
fn route_with_several_hosts_matches_any_of_them() {
    let m = matcher(
        &[
            route(
                "multi",
                1,
                r#"host "example.com" "*.example.org" "OTHER.net""#,
            ),
            route("any", 0, ""),
        ]
        .concat(),
    );
    for host in ["example.com", "a.example.org", "other.net:80"] {
        assert_eq!(id(&m, get("/").host(host)), Some("multi"), "{host}");
    }
    for host in ["a.example.com", "example.org", "a.other.net"] {
        assert_eq!(id(&m, get("/").host(host)), Some("any"), "{host}");
    }
}

#[test]
fn exact_name_that_a_wildcard_also_covers() {
    // "api.example.com" has its own candidate list; the wildcard route must be in it.
    let m = matcher(
        &[
            route("exact", 1, r#"host "api.example.com"; path "/only""#),
            route("wild", 0, r#"host "*.example.com""#),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/only").host("api.example.com")), Some("exact"));
    assert_eq!(id(&m, get("/other").host("api.example.com")), Some("wild"));
    assert_eq!(id(&m, get("/only").host("www.example.com")), Some("wild"));
    // A subdomain of an exact name is not that name.
    assert_eq!(id(&m, get("/only").host("x.api.example.com")), Some("wild"));
}

#[test]
fn exact_name_with_no_wildcard_does_not_cover_subdomains() {
    let m = matcher(
        &[
            route("exact", 1, r#"host "api.example.com""#),
            route("any", 0, ""),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/").host("x.api.example.com")), Some("any"));
}

/// All permutations of `0..3`.
fn permutations3() -> Vec<[usize; 3]> {
    vec![
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ]
}

#[test]
fn exact_wildcard_and_host_less_routes_in_every_arrangement() {
    // Routes: 0 = exact host, 1 = wildcard, 2 = host-less. Every definition order is combined
    // with every strict priority order and with all priorities equal.
    let names = ["exact", "wild", "any"];
    let conds = [r#"host "api.example.com""#, r#"host "*.example.com""#, ""];
    let mut priority_sets: Vec<[i32; 3]> = permutations3()
        .into_iter()
        .map(|p| p.map(|x| x as i32 * 10))
        .collect();
    priority_sets.push([5, 5, 5]);
    // Which routes apply to each request host.
    let cases: [(Option<&str>, &[usize]); 6] = [
        (Some("api.example.com"), &[0, 1, 2]),
        (Some("API.example.com:443"), &[0, 1, 2]),
        (Some("www.example.com"), &[1, 2]),
        (Some("example.com"), &[2]),
        (Some("elsewhere.org"), &[2]),
        (None, &[2]),
    ];
    for order in permutations3() {
        for prios in &priority_sets {
            let body: String = order
                .iter()
                .map(|&r| route(names[r], prios[r], conds[r]))
                .collect();
            let m = matcher(&body);
            for (host, applicable) in cases {
                // Highest priority, then earliest definition.
                let want = applicable
                    .iter()
                    .copied()
                    .max_by_key(|&r| {
                        let pos = order.iter().position(|&o| o == r).unwrap_or(0);
                        (prios[r], std::cmp::Reverse(pos))
                    })
                    .map(|r| names[r]);
                let mut req = get("/");
                req.host = host;
                assert_eq!(id(&m, req), want, "host {host:?}, config:\n{body}");
            }
        }
    }
}

#[test]
fn host_less_routes_are_candidates_for_known_hosts() {
    // The host has routes of its own, but their other conditions fail: the host-less routes
    // that rank below must still be tried, for exact and wildcard hosts alike.
    let m = matcher(
        &[
            route("exact", 3, r#"host "api.example.com"; path "/exact""#),
            route("wild", 2, r#"host "*.example.com"; path "/wild""#),
            route("any", 1, r#"path-prefix "/""#),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/exact").host("api.example.com")), Some("exact"));
    assert_eq!(id(&m, get("/wild").host("api.example.com")), Some("wild"));
    assert_eq!(id(&m, get("/other").host("api.example.com")), Some("any"));
    assert_eq!(id(&m, get("/exact").host("www.example.com")), Some("any"));
    assert_eq!(id(&m, get("/wild").host("www.example.com")), Some("wild"));
    assert_eq!(id(&m, get("/wild").host("unknown.org")), Some("any"));
}

#[test]
fn host_less_route_of_higher_priority_beats_host_routes() {
    let m = matcher(
        &[
            route("exact", 1, r#"host "api.example.com""#),
            route("wild", 2, r#"host "*.example.com""#),
            route("health", 9, r#"path "/healthz""#),
        ]
        .concat(),
    );
    assert_eq!(
        id(&m, get("/healthz").host("api.example.com")),
        Some("health")
    );
    assert_eq!(
        id(&m, get("/healthz").host("a.example.com")),
        Some("health")
    );
    assert_eq!(id(&m, get("/").host("api.example.com")), Some("wild"));
}

#[test]
fn request_without_host_only_matches_host_less_routes() {
    let m = matcher(
        &[
            route("exact", 3, r#"host "example.com""#),
            route("wild", 2, r#"host "*.example.com""#),
            route("any", 1, r#"path "/any""#),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/any")), Some("any"));
    assert_eq!(id(&m, get("/other")), None);
    let only_hosts = matcher(&route("exact", 0, r#"host "example.com""#));
    assert_eq!(id(&only_hosts, get("/")), None);
}

#[test]
fn leading_dot_host_is_not_a_wildcard_subdomain() {
    assert!(!HostPattern::Wildcard("example.com".into()).matches(".example.com"));
    let m = matcher(
        &[
            route("wild", 1, r#"host "*.example.com""#),
            route("any", 0, ""),
        ]
        .concat(),
    );
    for host in [".example.com", ".example.com.", ".EXAMPLE.com:8080"] {
        assert_eq!(id(&m, get("/").host(host)), Some("any"), "{host}");
    }
    let only_wild = matcher(&route("wild", 1, r#"host "*.example.com""#));
    assert_eq!(id(&only_wild, get("/").host(".example.com")), None);
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

#[test]
fn exact_path() {
    let m = matcher(&route("p", 0, r#"path "/api""#));
    assert_eq!(id(&m, get("/api")), Some("p"));
    assert_eq!(id(&m, get("/api").query("x=1")), Some("p"));
    for path in ["/api/", "/apiv2", "/API", "/", "", "api", "//api"] {
        assert_eq!(id(&m, get(path)), None, "{path}");
    }
}

#[test]
fn prefix_path_is_a_plain_string_prefix() {
    let m = matcher(&route("p", 0, r#"path-prefix "/api""#));
    for path in ["/api", "/api/", "/api/users", "/apiv2"] {
        assert_eq!(id(&m, get(path)), Some("p"), "{path}");
    }
    for path in ["/ap", "/", "/API", "/x/api"] {
        assert_eq!(id(&m, get(path)), None, "{path}");
    }
    let segment = matcher(&route("p", 0, r#"path-prefix "/api/""#));
    assert_eq!(id(&segment, get("/api/x")), Some("p"));
    assert_eq!(id(&segment, get("/api")), None);
    assert_eq!(id(&segment, get("/apiv2")), None);
}

#[test]
fn regex_path_is_unanchored_unless_anchored_explicitly() {
    let loose = matcher(&route("p", 0, r#"path-regex "v[0-9]+""#));
    for path in ["/v1", "/api/v12/users", "v3", "/xv9x"] {
        assert_eq!(id(&loose, get(path)), Some("p"), "{path}");
    }
    assert_eq!(id(&loose, get("/v/x")), None);

    let anchored = matcher(&route("p", 0, r#"path-regex "^/v[0-9]+$""#));
    assert_eq!(id(&anchored, get("/v12")), Some("p"));
    for path in ["/v12/x", "/x/v12", "v12", "/v"] {
        assert_eq!(id(&anchored, get(path)), None, "{path}");
    }

    let start = matcher(&route("p", 0, r#"path-regex "^/users/""#));
    assert_eq!(id(&start, get("/users/1")), Some("p"));
    assert_eq!(id(&start, get("/api/users/1")), None);
}

#[test]
fn regex_does_not_see_the_query() {
    let m = matcher(&route("p", 0, r#"path-regex "debug""#));
    assert_eq!(id(&m, get("/x").query("debug=1")), None);
    assert_eq!(id(&m, get("/debug")), Some("p"));
}

#[test]
fn path_conditions_are_anded() {
    let m = matcher(
        &[
            route("all", 1, r#"path-prefix "/api/"; path-regex "/v[0-9]+/""#),
            route("exact-and-prefix", 1, r#"path "/x/y"; path-prefix "/x""#),
            route("impossible", 1, r#"path "/a"; path-prefix "/b""#),
            route("rest", 0, ""),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/api/v1/users")), Some("all"));
    assert_eq!(id(&m, get("/api/users")), Some("rest"));
    assert_eq!(id(&m, get("/web/v1/users")), Some("rest"));
    assert_eq!(id(&m, get("/x/y")), Some("exact-and-prefix"));
    assert_eq!(id(&m, get("/a")), Some("rest"));
    assert_eq!(id(&m, get("/b")), Some("rest"));
}

// ---------------------------------------------------------------------------------------------
// All conditions together
// ---------------------------------------------------------------------------------------------

#[test]
fn all_conditions_are_anded() {
    let m = matcher(
        &[
            route(
                "strict",
                1,
                r#"host "api.example.com"; path-prefix "/api/"; method "POST"; header "x-env" "prod"; query-param "v" "2""#,
            ),
            route("rest", 0, ""),
        ]
        .concat(),
    );
    let ok = get("/api/x")
        .host("api.example.com")
        .method("POST")
        .headers(&[("x-env", "prod")])
        .query("v=2");
    assert_eq!(id(&m, ok), Some("strict"));
    let broken = [
        ok.host("www.example.com"),
        Req { host: None, ..ok },
        Req {
            path: "/web/x",
            ..ok
        },
        ok.method("GET"),
        ok.headers(&[("x-env", "dev")]),
        ok.headers(&[]),
        ok.query("v=1"),
        Req { query: None, ..ok },
    ];
    for r in broken {
        assert_eq!(id(&m, r), Some("rest"));
    }
}

// ---------------------------------------------------------------------------------------------
// Methods
// ---------------------------------------------------------------------------------------------

#[test]
fn method_list_matches_any_of_them_case_sensitively() {
    let m = matcher(&route("m", 0, r#"method "GET" "HEAD" "PURGE""#));
    for method in ["GET", "HEAD", "PURGE"] {
        assert_eq!(id(&m, get("/").method(method)), Some("m"), "{method}");
    }
    for method in ["POST", "get", "Get", "head", "purge", "", "GET "] {
        assert_eq!(id(&m, get("/").method(method)), None, "{method}");
    }
}

#[test]
fn routes_split_by_method() {
    let m = matcher(
        &[
            route("read", 0, r#"path-prefix "/"; method "GET" "HEAD""#),
            route(
                "write",
                0,
                r#"path-prefix "/"; method "POST" "PUT" "PATCH" "DELETE""#,
            ),
        ]
        .concat(),
    );
    assert_eq!(id(&m, get("/").method("HEAD")), Some("read"));
    assert_eq!(id(&m, get("/").method("PATCH")), Some("write"));
    assert_eq!(id(&m, get("/").method("OPTIONS")), None);
}

// ---------------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------------

#[test]
fn header_presence() {
    let m = matcher(&route("h", 0, r#"header "x-debug""#));
    assert_eq!(id(&m, get("/").headers(&[("x-debug", "1")])), Some("h"));
    assert_eq!(id(&m, get("/").headers(&[("x-debug", "")])), Some("h"));
    assert_eq!(
        id(
            &m,
            get("/").headers(&[("accept", "*/*"), ("x-debug", "anything")])
        ),
        Some("h")
    );
    assert_eq!(id(&m, get("/")), None);
    assert_eq!(id(&m, get("/").headers(&[("x-debugger", "1")])), None);
    assert_eq!(id(&m, get("/").headers(&[("x-debu", "1")])), None);
    // A query parameter of that name is not a header.
    assert_eq!(id(&m, get("/").query("x-debug=1")), None);
}

#[test]
fn header_exact_value() {
    let m = matcher(&route("h", 0, r#"header "x-env" "staging""#));
    assert_eq!(id(&m, get("/").headers(&[("x-env", "staging")])), Some("h"));
    for value in [
        "Staging", "STAGING", "staging ", " staging", "stag", "staging2", "",
    ] {
        assert_eq!(
            id(&m, get("/").headers(&[("x-env", value)])),
            None,
            "{value:?}"
        );
    }
}

#[test]
fn header_names_are_case_insensitive() {
    let m = matcher(&route("h", 0, r#"header "X-Env" "prod""#));
    for name in ["x-env", "X-ENV", "X-Env", "x-ENV"] {
        assert_eq!(
            id(&m, get("/").headers(&[(name, "prod")])),
            Some("h"),
            "{name}"
        );
    }
}

#[test]
fn any_value_of_a_repeated_header_may_match() {
    let m = matcher(&route("h", 0, r#"header "x-env" "staging""#));
    let both = [("x-env", "prod"), ("X-Env", "staging")];
    assert_eq!(id(&m, get("/").headers(&both)), Some("h"));
    let reversed = [("x-env", "staging"), ("x-env", "prod")];
    assert_eq!(id(&m, get("/").headers(&reversed)), Some("h"));
    let neither = [("x-env", "prod"), ("x-env", "dev")];
    assert_eq!(id(&m, get("/").headers(&neither)), None);
    // The value must be one value, not a comma-joined list.
    assert_eq!(
        id(&m, get("/").headers(&[("x-env", "prod, staging")])),
        None
    );
}

#[test]
fn every_header_condition_must_hold() {
    let m = matcher(&route(
        "h",
        0,
        r#"header "x-a" "1"; header "x-b"; header "x-a" "2""#,
    ));
    let all = [("x-a", "1"), ("x-b", ""), ("x-a", "2")];
    assert_eq!(id(&m, get("/").headers(&all)), Some("h"));
    assert_eq!(id(&m, get("/").headers(&all[..2])), None);
    assert_eq!(id(&m, get("/").headers(&all[1..])), None);
    assert_eq!(
        id(&m, get("/").headers(&[("x-a", "1"), ("x-a", "2")])),
        None
    );
}

#[test]
fn slice_headers_implementation() {
    let hs: &[(&str, &str)] = &[("Content-Type", "text/html"), ("x-a", "1"), ("X-A", "2")];
    assert!(hs.any_value("content-type", &mut |v| v == b"text/html"));
    assert!(!hs.any_value("content-type", &mut |v| v == b"TEXT/HTML"));
    assert!(hs.any_value("x-a", &mut |v| v == b"2"));
    let mut seen = Vec::new();
    assert!(!hs.any_value("x-a", &mut |v| {
        seen.push(v.to_vec());
        false
    }));
    assert_eq!(seen, [b"1".to_vec(), b"2".to_vec()]);
    assert!(!hs.any_value("x-b", &mut |_| true));
    let empty: &[(&str, &str)] = &[];
    assert!(!empty.any_value("x-a", &mut |_| true));
}

// ---------------------------------------------------------------------------------------------
// Query parameters
// ---------------------------------------------------------------------------------------------

#[test]
fn query_param_presence() {
    let cond = r#"query-param "debug""#;
    for q in [
        "debug",
        "debug=",
        "debug=1",
        "a=1&debug",
        "a=1&debug=0&b=2",
        "&&debug&&",
        "debug=a=b",
    ] {
        assert!(query_matches(cond, Some(q)), "{q}");
    }
    for q in [
        "", "debugx=1", "xdebug", "a=debug", "Debug=1", "de bug", "debug%",
    ] {
        assert!(!query_matches(cond, Some(q)), "{q}");
    }
    assert!(!query_matches(cond, None));
}

#[test]
fn query_param_exact_value() {
    let cond = r#"query-param "v" "1""#;
    for q in ["v=1", "a=2&v=1", "v=2&v=1", "v=1&v=2", "v=%31"] {
        assert!(query_matches(cond, Some(q)), "{q}");
    }
    for q in ["v=10", "v=", "v", "v=01", "v= 1", "V=1", "w=1", "v1", ""] {
        assert!(!query_matches(cond, Some(q)), "{q}");
    }
    assert!(!query_matches(cond, None));
}

#[test]
fn query_param_value_may_contain_equals_signs() {
    assert!(query_matches(r#"query-param "t" "a=b""#, Some("t=a=b")));
    assert!(query_matches(r#"query-param "t" "a=b""#, Some("t=a%3Db")));
    assert!(!query_matches(r#"query-param "t" "b""#, Some("t=a=b")));
}

#[test]
fn query_param_empty_value() {
    let cond = r#"query-param "flag" """#;
    assert!(query_matches(cond, Some("flag")));
    assert!(query_matches(cond, Some("flag=")));
    assert!(query_matches(cond, Some("x=1&flag=&y")));
    assert!(!query_matches(cond, Some("flag=1")));
    assert!(!query_matches(cond, Some("")));
    assert!(!query_matches(cond, None));
}

#[test]
fn query_is_percent_decoded_with_plus_as_space() {
    let cond = r#"query-param "q" "a b""#;
    for q in [
        "q=a%20b",
        "q=a+b",
        "q=%61%20%62",
        "%71=a+b",
        "x=1&q=a%20b&y=2",
    ] {
        assert!(query_matches(cond, Some(q)), "{q}");
    }
    for q in ["q=a%2Bb", "q=a%20b%20", "q=ab", "q=a%2520b", "q=a b c"] {
        assert!(!query_matches(cond, Some(q)), "{q}");
    }
    // The raw form also works: a literal space decodes to itself.
    assert!(query_matches(cond, Some("q=a b")));
}

#[test]
fn encoded_plus_is_a_plus() {
    let cond = r#"query-param "q" "a+b""#;
    assert!(query_matches(cond, Some("q=a%2Bb")));
    assert!(query_matches(cond, Some("q=a%2bb")));
    assert!(!query_matches(cond, Some("q=a+b")));
}

#[test]
fn query_param_names_are_decoded_too() {
    let cond = r#"query-param "my key""#;
    assert!(query_matches(cond, Some("my+key=1")));
    assert!(query_matches(cond, Some("my%20key")));
    assert!(query_matches(cond, Some("%6D%79%20%6B%65%79=")));
    assert!(!query_matches(cond, Some("my_key=1")));
    let amp = r#"query-param "a&b" "c""#;
    assert!(query_matches(amp, Some("a%26b=c")));
    assert!(!query_matches(amp, Some("a&b=c")));
}

#[test]
fn hex_digits_of_either_case_decode() {
    let cond = r#"query-param "p" "/x""#;
    assert!(query_matches(cond, Some("p=%2Fx")));
    assert!(query_matches(cond, Some("p=%2fx")));
}

#[test]
fn percent_without_two_hex_digits_is_literal() {
    // A trailing '%', a '%' with one character after it, and invalid hex digits are kept.
    for (value, query) in [
        ("100%", "p=100%"),
        ("100%", "p=100%25"),
        ("%", "p=%"),
        ("%4", "p=%4"),
        ("a%4", "p=a%4"),
        ("%zz", "p=%zz"),
        ("%g1", "p=%g1"),
        ("%1g", "p=%1g"),
        // The '+' after a literal '%' is still a space.
        ("% 1", "p=%+1"),
        ("%A", "p=%%41"),
        ("50% off", "p=50%+off"),
    ] {
        let cond = format!("query-param \"p\" \"{value}\"");
        assert!(query_matches(&cond, Some(query)), "{value:?} vs {query}");
    }
    // And such a literal '%' is not decoded as if it were a valid escape.
    assert!(!query_matches(r#"query-param "p" "%4""#, Some("p=%41")));
    assert!(!query_matches(r#"query-param "p" "A""#, Some("p=%4")));
    assert!(!query_matches(r#"query-param "p" "%""#, Some("p=%2")));
    assert!(query_matches(r#"query-param "p" "%2""#, Some("p=%2")));
    // Presence with a name ending in '%'.
    assert!(query_matches(r#"query-param "a%""#, Some("a%=1")));
    assert!(query_matches(r#"query-param "a%""#, Some("a%25")));
}

#[test]
fn percent_decoding_produces_bytes_compared_with_utf8() {
    let cond = r#"query-param "name" "é""#;
    assert!(query_matches(cond, Some("name=%C3%A9")));
    assert!(query_matches(cond, Some("name=%c3%a9")));
    assert!(query_matches(cond, Some("name=é")));
    assert!(!query_matches(cond, Some("name=%C3")));
    assert!(!query_matches(cond, Some("name=%E9")));
}

#[test]
fn empty_and_absent_queries_have_no_parameters() {
    for cond in [r#"query-param "a""#, r#"query-param "a" "1""#] {
        assert!(!query_matches(cond, None), "{cond}");
        assert!(!query_matches(cond, Some("")), "{cond}");
        assert!(!query_matches(cond, Some("&")), "{cond}");
        assert!(!query_matches(cond, Some("=")), "{cond}");
    }
    // Without query conditions, any query (or none) is fine.
    let m = matcher(&route("r", 0, r#"path "/""#));
    for q in [None, Some(""), Some("a=1"), Some("%zz")] {
        let mut r = get("/");
        r.query = q;
        assert_eq!(id(&m, r), Some("r"), "{q:?}");
    }
}

#[test]
fn every_query_condition_must_hold() {
    let cond = r#"query-param "a" "1"; query-param "b"; query-param "a" "2""#;
    assert!(query_matches(cond, Some("a=1&b&a=2")));
    assert!(query_matches(cond, Some("a=2&a=1&b=x")));
    assert!(!query_matches(cond, Some("a=1&b")));
    assert!(!query_matches(cond, Some("a=1&a=2")));
}

// ---------------------------------------------------------------------------------------------
// Listeners
// ---------------------------------------------------------------------------------------------

fn listener_routes() -> String {
    [
        route("admin", 10, r#"path-prefix "/admin""#),
        route("api", 5, r#"path-prefix "/api""#),
        route("web", 1, r#"path-prefix "/web""#),
        route("fallback", 0, r#"path "/never""#),
    ]
    .concat()
}

#[test]
fn listener_serves_only_its_routes() {
    let cfg = with_listener(r#"routes "web" "api""#, &listener_routes());
    let m = RouteMatcher::for_listener(&cfg, &cfg.listeners[0]);
    assert_eq!(id(&m, get("/api/x")), Some("api"));
    assert_eq!(id(&m, get("/web/x")), Some("web"));
    assert_eq!(id(&m, get("/admin/x")), None);
    assert_eq!(id(&m, get("/never")), None);
    // The listener's list order does not change the ranking.
    assert_eq!(
        m.ranked().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["api", "web"]
    );
    // The unrestricted matcher still has them all.
    let all = RouteMatcher::new(&cfg);
    assert_eq!(id(&all, get("/admin/x")), Some("admin"));
}

#[test]
fn listener_restriction_hides_higher_priority_routes() {
    let cfg = with_listener(
        r#"routes "public""#,
        &[
            route("internal", 10, r#"host "example.com""#),
            route("public", 0, r#"host "example.com" "*.example.com""#),
        ]
        .concat(),
    );
    let m = RouteMatcher::for_listener(&cfg, &cfg.listeners[0]);
    let hit = find(&m, get("/").host("example.com"));
    assert_eq!(
        hit.map(|h| (h.id.as_str(), h.index, h.fallback)),
        Some(("public", 1, false))
    );
    assert_eq!(id(&m, get("/").host("a.example.com")), Some("public"));
}

#[test]
fn listener_without_restriction_serves_every_route() {
    let cfg = with_listener("", &listener_routes());
    let m = RouteMatcher::for_listener(&cfg, &cfg.listeners[0]);
    assert_eq!(id(&m, get("/admin")), Some("admin"));
    assert_eq!(id(&m, get("/other")), None);
    assert_eq!(m.ranked().count(), 4);
}

#[test]
fn default_route_is_the_fallback() {
    let cfg = with_listener(r#"default-route "fallback""#, &listener_routes());
    let m = RouteMatcher::for_listener(&cfg, &cfg.listeners[0]);

    let hit = find(&m, get("/api/x")).map(|h| (h.id.as_str(), h.index, h.fallback));
    assert_eq!(hit, Some(("api", 1, false)));

    let miss = find(&m, get("/nothing")).map(|h| (h.id.as_str(), h.index, h.fallback));
    assert_eq!(miss, Some(("fallback", 3, true)));

    // The default route matching on its own merits is not a fallback.
    let own = find(&m, get("/never")).map(|h| (h.id.as_str(), h.index, h.fallback));
    assert_eq!(own, Some(("fallback", 3, false)));

    // `new` never falls back.
    assert_eq!(id(&RouteMatcher::new(&cfg), get("/nothing")), None);
}

#[test]
fn default_route_catches_unknown_hosts_and_hostless_requests() {
    let cfg = with_listener(
        r#"default-route "site""#,
        &[
            route("site", 1, r#"host "example.com""#),
            route("api", 2, r#"host "*.example.com"; path-prefix "/api""#),
        ]
        .concat(),
    );
    let m = RouteMatcher::for_listener(&cfg, &cfg.listeners[0]);
    for r in [
        get("/"),
        get("/").host("other.org"),
        get("/").host("[::1]:8080"),
        get("/web").host("a.example.com"),
    ] {
        let hit = find(&m, r).map(|h| (h.id.as_str(), h.fallback));
        assert_eq!(hit, Some(("site", true)), "{:?}", r.host);
    }
    assert_eq!(
        find(&m, get("/").host("example.com")).map(|h| h.fallback),
        Some(false)
    );
    assert_eq!(id(&m, get("/api").host("a.example.com")), Some("api"));
}

#[test]
fn default_route_within_a_restricted_listener() {
    let cfg = with_listener(
        r#"routes "web" "fallback"; default-route "fallback""#,
        &listener_routes(),
    );
    let m = RouteMatcher::for_listener(&cfg, &cfg.listeners[0]);
    assert_eq!(id(&m, get("/web")), Some("web"));
    let hit = find(&m, get("/admin")).map(|h| (h.id.as_str(), h.index, h.fallback));
    assert_eq!(hit, Some(("fallback", 3, true)));
}

#[test]
fn default_route_index_is_the_definition_position_when_ranking_reorders() {
    let cfg = with_listener(
        r#"default-route "last""#,
        &[
            route("low", -3, r#"path "/low""#),
            route("last", 9, r#"path "/last""#),
            route("mid", 4, r#"path "/mid""#),
        ]
        .concat(),
    );
    let m = RouteMatcher::for_listener(&cfg, &cfg.listeners[0]);
    let hit = find(&m, get("/x")).map(|h| (h.index, h.fallback));
    assert_eq!(hit, Some((1, true)));
    assert_eq!(find(&m, get("/low")).map(|h| h.index), Some(0));
    assert_eq!(find(&m, get("/mid")).map(|h| h.index), Some(2));
}

#[test]
fn no_match_without_default_route_is_none() {
    let cfg = with_listener(r#"routes "web""#, &listener_routes());
    let m = RouteMatcher::for_listener(&cfg, &cfg.listeners[0]);
    assert!(find(&m, get("/api")).is_none());
    assert!(find(&m, get("/").host("example.com")).is_none());
}

#[test]
fn each_listener_gets_its_own_matcher() {
    let cfg = load(&format!(
        r#"
listeners {{
    listener "public" {{ address "127.0.0.1:8080"; protocol "http"; routes "web" "api"; default-route "web"; }}
    listener "internal" {{ address "127.0.0.1:8081"; protocol "http"; routes "admin"; }}
    listener "all" {{ address "127.0.0.1:8082"; protocol "http"; default-route "fallback"; }}
}}
upstreams {{ upstream "u" {{ target "127.0.0.1:3000"; }} }}
routes {{
{}
}}
"#,
        listener_routes()
    ));
    let public = RouteMatcher::for_listener(&cfg, &cfg.listeners[0]);
    let internal = RouteMatcher::for_listener(&cfg, &cfg.listeners[1]);
    let all = RouteMatcher::for_listener(&cfg, &cfg.listeners[2]);
    let summary = |m: &RouteMatcher, path: &str| {
        find(m, get(path)).map(|h| (h.id.as_str().to_owned(), h.index, h.fallback))
    };
    assert_eq!(summary(&public, "/admin"), Some(("web".into(), 2, true)));
    assert_eq!(summary(&public, "/api"), Some(("api".into(), 1, false)));
    assert_eq!(
        summary(&internal, "/admin"),
        Some(("admin".into(), 0, false))
    );
    assert_eq!(summary(&internal, "/api"), None);
    assert_eq!(summary(&all, "/admin"), Some(("admin".into(), 0, false)));
    assert_eq!(summary(&all, "/zzz"), Some(("fallback".into(), 3, true)));
}

// ---------------------------------------------------------------------------------------------
// Miscellaneous
// ---------------------------------------------------------------------------------------------

#[test]
fn request_debug_shows_fields_but_not_headers() {
    let hs = Hs(&[("x-secret", "token")]);
    let r = Request {
        method: "GET",
        host: Some("example.com"),
        path: "/p",
        query: Some("a=1"),
        headers: &hs,
    };
    let text = format!("{r:?}");
    for part in ["GET", "example.com", "/p", "a=1", ".."] {
        assert!(text.contains(part), "{text}");
    }
    assert!(!text.contains("token"), "{text}");
}

#[test]
fn many_hosts_keep_their_own_candidate_lists() {
    // 50 exact hosts and 50 wildcards, each with its own route, plus a host-less catch-all.
    let mut body = String::new();
    for i in 0..50 {
        body.push_str(&route(
            &format!("e{i}"),
            i,
            &format!("host \"h{i}.example.com\""),
        ));
        body.push_str(&route(
            &format!("w{i}"),
            100 - i,
            &format!("host \"*.w{i}.example.com\""),
        ));
    }
    body.push_str(&route("rest", -1, ""));
    let m = matcher(&body);
    for i in 0..50 {
        let exact = format!("h{i}.example.com");
        let want_e = format!("e{i}");
        assert_eq!(id(&m, get("/").host(&exact)), Some(want_e.as_str()));
        let sub = format!("x.w{i}.example.com");
        let want_w = format!("w{i}");
        assert_eq!(id(&m, get("/").host(&sub)), Some(want_w.as_str()));
        let apex = format!("w{i}.example.com");
        assert_eq!(id(&m, get("/").host(&apex)), Some("rest"));
    }
}

// ---------------------------------------------------------------------------------------------
// The matcher against a naive reference implementation
// ---------------------------------------------------------------------------------------------

/// A route as generated: every field becomes KDL.
#[derive(Clone, Debug)]
struct RouteSpec {
    priority: i32,
    hosts: Vec<String>,
    path: Option<&'static str>,
    prefix: Option<&'static str>,
    regex: Option<&'static str>,
    methods: Vec<&'static str>,
    headers: Vec<(&'static str, Option<&'static str>)>,
    query: Vec<(&'static str, Option<&'static str>)>,
}

impl RouteSpec {
    fn kdl(&self, id: &str) -> String {
        let mut m = String::new();
        let quoted =
            |items: &[&str]| -> String { items.iter().map(|s| format!(" \"{s}\"")).collect() };
        if !self.hosts.is_empty() {
            let hosts: Vec<&str> = self.hosts.iter().map(String::as_str).collect();
            m += &format!("host{}; ", quoted(&hosts));
        }
        for (key, value) in [
            ("path", self.path),
            ("path-prefix", self.prefix),
            ("path-regex", self.regex),
        ] {
            if let Some(v) = value {
                m += &format!("{key} \"{v}\"; ");
            }
        }
        if !self.methods.is_empty() {
            m += &format!("method{}; ", quoted(&self.methods));
        }
        for (key, list) in [("header", &self.headers), ("query-param", &self.query)] {
            for (name, value) in list {
                match value {
                    Some(v) => m += &format!("{key} \"{name}\" \"{v}\"; "),
                    None => m += &format!("{key} \"{name}\"; "),
                }
            }
        }
        route(id, self.priority, m.trim_end())
    }
}

/// A request as generated.
#[derive(Clone, Debug)]
struct ReqSpec {
    method: &'static str,
    host: Option<String>,
    path: &'static str,
    query: Option<String>,
    headers: Vec<(&'static str, &'static str)>,
}

#[derive(Clone, Debug)]
struct Scenario {
    routes: Vec<RouteSpec>,
    /// Routes the listener serves (`None`: all of them).
    served: Option<Vec<usize>>,
    default: Option<usize>,
    requests: Vec<ReqSpec>,
}

impl Scenario {
    fn kdl(&self) -> String {
        let name = |i: &usize| format!(" \"r{i}\"");
        let mut listener = String::new();
        if let Some(list) = &self.served {
            listener += &format!("routes{}; ", list.iter().map(name).collect::<String>());
        }
        if let Some(d) = self.default {
            listener += &format!("default-route \"r{d}\"; ");
        }
        let routes: String = self
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| r.kdl(&format!("r{i}")))
            .collect();
        format!(
            r#"
listeners {{
    listener "l" {{ address "127.0.0.1:8080"; protocol "http"; {listener}}}
}}
upstreams {{ upstream "u" {{ target "127.0.0.1:3000"; }} }}
routes {{
{routes}}}
"#
        )
    }
}

const LABELS: &[&str] = &["a", "b", "com"];

/// One to three labels.
fn host_name() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(LABELS), 1..=3).prop_map(|l| l.join("."))
}

/// Host patterns that nest into each other (so exact names, specific and general wildcards
/// overlap often), mixed with random ones.
const HOST_POOL: &[&str] = &[
    "com",
    "a.com",
    "b.a.com",
    "a.b.a.com",
    "b.com",
    "*.com",
    "*.a.com",
    "*.b.a.com",
    "*.b.com",
];

fn route_spec() -> impl Strategy<Value = RouteSpec> {
    let random_pattern = (any::<bool>(), host_name())
        .prop_map(|(wild, name)| if wild { format!("*.{name}") } else { name });
    let host_pattern = (
        prop_oneof![
            3 => prop::sample::select(HOST_POOL).prop_map(str::to_owned),
            1 => random_pattern,
        ],
        prop::bool::weighted(0.2),
    )
        .prop_map(|(p, upper)| if upper { p.to_ascii_uppercase() } else { p });
    let hosts = prop::collection::vec(host_pattern, 0..=2);
    let path = prop::option::weighted(0.15, prop::sample::select(&["/", "/api", "/api/v1"][..]));
    let prefix = prop::option::weighted(0.3, prop::sample::select(&["/", "/api", "/api/"][..]));
    let regex = prop::option::weighted(
        0.15,
        prop::sample::select(&["^/api/v[0-9]+$", "v1", "^/$"][..]),
    );
    let methods = prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::sample::subsequence(&["GET", "POST", "PURGE"][..], 1..=2),
    ];
    let header = (
        prop::sample::select(&["x-a", "X-B"][..]),
        prop::option::of(prop::sample::select(&["1", "2"][..])),
    );
    let headers = prop::option::weighted(0.25, header).prop_map(|h| h.into_iter().collect());
    let query_param = (
        prop::sample::select(&["q", "a b", "%"][..]),
        prop::option::of(prop::sample::select(&["1", "a b", "", "%", "+"][..])),
    );
    let query = prop::option::weighted(0.25, query_param).prop_map(|q| q.into_iter().collect());
    (
        -1i32..=2,
        hosts,
        (path, prefix, regex),
        methods,
        headers,
        query,
    )
        .prop_map(
            |(priority, hosts, (path, prefix, regex), methods, headers, query)| RouteSpec {
                priority,
                hosts,
                path,
                prefix,
                regex,
                methods,
                headers,
                query,
            },
        )
}

/// Request hosts: random names, names derived from the routes' patterns (so that most requests
/// hit a configured host or a subdomain of a wildcard), decorated with case, port and dot, and
/// some odd forms.
fn request_host(routes: &[RouteSpec]) -> BoxedStrategy<Option<String>> {
    let mut derived: Vec<String> = Vec::new();
    for h in routes.iter().flat_map(|r| &r.hosts) {
        let h = h.to_ascii_lowercase();
        match h.strip_prefix("*.") {
            Some(suffix) => {
                derived.push(suffix.to_owned());
                derived.push(format!("x.{suffix}"));
                derived.push(format!("x.a.{suffix}"));
                derived.push(format!("x{suffix}"));
            }
            None => {
                derived.push(format!("x.{h}"));
                derived.push(h);
            }
        }
    }
    if derived.is_empty() {
        derived.push("a".to_owned());
    }
    let odd = prop::sample::select(
        &[
            "",
            ".",
            "[::1]:8080",
            "[::1]",
            "a..com",
            "x.a..com",
            "ü.com",
            "a.com:x",
            "a.com:80:80",
            "A.B.COM.:443",
        ][..],
    )
    .prop_map(str::to_owned);
    let name = prop_oneof![
        3 => prop::sample::select(derived),
        2 => prop::collection::vec(prop::sample::select(LABELS), 1..=4).prop_map(|l| l.join(".")),
        1 => odd,
    ];
    let decorated = (
        name,
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(name, upper, port, dot)| {
            let mut h = if upper {
                name.to_ascii_uppercase()
            } else {
                name
            };
            if dot {
                h.push('.');
            }
            if port {
                h.push_str(":8443");
            }
            h
        });
    prop::option::weighted(0.85, decorated).boxed()
}

fn request(routes: &[RouteSpec]) -> impl Strategy<Value = ReqSpec> + use<> {
    let method = prop_oneof![
        2 => Just("GET"),
        1 => prop::sample::select(&["POST", "PURGE", "get", "DELETE"][..]),
    ];
    let path = prop::sample::select(
        &[
            "/", "/api", "/api/", "/api/v1", "/api/v12", "/apiv2", "/x/v1", "",
        ][..],
    );
    let key = prop::sample::select(&["q", "a+b", "a%20b", "%25", "%", "q%", "Q"][..]);
    let value = prop::option::of(prop::sample::select(
        &[
            "1", "a+b", "a%20b", "", "%25", "%", "%2B", "+", "%zz", "%3", "%31",
        ][..],
    ));
    let pair = (key, value).prop_map(|(k, v)| match v {
        Some(v) => format!("{k}={v}"),
        None => k.to_owned(),
    });
    let query = prop::option::weighted(
        0.6,
        prop::collection::vec(pair, 0..=3).prop_map(|p| p.join("&")),
    );
    let header = (
        prop::sample::select(&["x-a", "X-A", "x-b", "X-B", "x-c"][..]),
        prop::sample::select(&["1", "2", ""][..]),
    );
    let headers = prop::collection::vec(header, 0..=3);
    (method, request_host(routes), path, query, headers).prop_map(
        |(method, host, path, query, headers)| ReqSpec {
            method,
            host,
            path,
            query,
            headers,
        },
    )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    prop::collection::vec(route_spec(), 1..=6)
        .prop_flat_map(|routes| {
            let n = routes.len();
            let requests = prop::collection::vec(request(&routes), 1..=12);
            (
                Just(routes),
                prop::option::of(prop::collection::vec(any::<bool>(), n)),
                prop::option::of(0..n),
                requests,
            )
        })
        .prop_map(|(routes, keep, default, requests)| {
            let served = keep
                .map(|k| (0..routes.len()).filter(|&i| k[i]).collect::<Vec<_>>())
                .filter(|list| !list.is_empty());
            // A restricted listener's default route must be one of its routes.
            let default = match (&served, default) {
                (Some(list), Some(d)) if !list.contains(&d) => Some(list[d % list.len()]),
                (_, d) => d,
            };
            Scenario {
                routes,
                served,
                default,
                requests,
            }
        })
}

/// The host as the reference compares it: no port, no trailing dot, lower case; `None` when
/// absent or unusable (not ASCII, longer than a DNS name).
fn reference_host(raw: &str) -> Option<String> {
    let name = if let Some(v6) = raw.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        let without_port = match raw.rfind(':') {
            Some(i) if raw[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &raw[..i],
            _ => raw,
        };
        without_port.strip_suffix('.').unwrap_or(without_port)
    };
    (name.is_ascii() && name.len() <= 253).then(|| name.to_ascii_lowercase())
}

/// Percent-decoding with `+` as space; a `%` not followed by two hex digits is literal.
fn reference_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if b.len() > i + 2
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Every condition of `route`, checked one by one.
fn reference_matches(route: &crate::model::Route, req: &ReqSpec) -> bool {
    let m = &route.matches;
    let host = req.host.as_deref().and_then(reference_host);
    let host_ok = m.hosts.is_empty()
        || host
            .as_deref()
            .is_some_and(|h| m.hosts.iter().any(|p: &HostPattern| p.matches(h)));
    let paths_ok = m.paths.iter().all(|p| p.matches(req.path));
    let method_ok = m.methods.is_empty() || m.methods.iter().any(|x| x == req.method);
    let headers_ok = m.headers.iter().all(|c| {
        req.headers.iter().any(|(n, v)| {
            n.to_ascii_lowercase() == c.name && c.value.as_ref().is_none_or(|want| want == v)
        })
    });
    let query_ok = m.query_params.iter().all(|c| {
        req.query.as_deref().is_some_and(|q| {
            q.split('&').any(|pair| {
                let (k, v) = match pair.find('=') {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, ""),
                };
                reference_decode(k) == c.name.as_bytes()
                    && c.value
                        .as_ref()
                        .is_none_or(|want| reference_decode(v) == want.as_bytes())
            })
        })
    });
    host_ok && paths_ok && method_ok && headers_ok && query_ok
}

/// Routes `listener` serves (all routes without a listener), by priority then definition order.
fn reference_ranking(config: &Config, listener: Option<&Listener>) -> Vec<usize> {
    let served = |i: &usize| {
        listener
            .and_then(|l| l.routes.as_ref())
            .is_none_or(|list| list.contains(&config.routes[*i].id))
    };
    let mut order: Vec<usize> = (0..config.routes.len()).filter(served).collect();
    order.sort_by(|&a, &b| {
        config.routes[b]
            .priority
            .cmp(&config.routes[a].priority)
            .then(a.cmp(&b))
    });
    order
}

/// `(index, fallback)` of the route the reference picks.
fn reference_find(
    config: &Config,
    listener: Option<&Listener>,
    req: &ReqSpec,
) -> Option<(usize, bool)> {
    let hit = reference_ranking(config, listener)
        .into_iter()
        .find(|&i| reference_matches(&config.routes[i], req));
    match hit {
        Some(i) => Some((i, false)),
        None => listener
            .and_then(|l| l.default_route.as_ref())
            .and_then(|d| config.routes.iter().position(|r| &r.id == d))
            .map(|i| (i, true)),
    }
}

fn check_scenario(s: &Scenario) -> Result<(), TestCaseError> {
    let text = s.kdl();
    let config = match crate::load_str("prop.kdl", &text) {
        Ok(c) => c,
        Err(d) => {
            return Err(TestCaseError::fail(format!(
                "generated configuration does not load:\n{d}\n{text}"
            )));
        }
    };
    let listener = &config.listeners[0];
    let matchers = [
        (None, RouteMatcher::new(&config)),
        (
            Some(listener),
            RouteMatcher::for_listener(&config, listener),
        ),
    ];
    for (l, m) in &matchers {
        let ranked: Vec<&str> = m.ranked().map(|r| r.as_str()).collect();
        let want_ranked: Vec<&str> = reference_ranking(&config, *l)
            .into_iter()
            .map(|i| config.routes[i].id.as_str())
            .collect();
        prop_assert_eq!(ranked, want_ranked);
        for r in &s.requests {
            let headers: Vec<(&str, &str)> = r.headers.to_vec();
            let hs = Hs(&headers);
            let got = m.find(&Request {
                method: r.method,
                host: r.host.as_deref(),
                path: r.path,
                query: r.query.as_deref(),
                headers: &hs,
            });
            if let Some(g) = &got {
                prop_assert_eq!(g.id, &config.routes[g.index].id);
            }
            let got = got.map(|g| (g.index, g.fallback));
            let want = reference_find(&config, *l, r);
            prop_assert_eq!(
                got,
                want,
                "listener: {:?}\nrequest: {:?}\nconfig:\n{}",
                l.map(|l| &l.id),
                r,
                text
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // No regression files: this module must not write next to the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The precomputed per-host candidate lists never change the answer: the matcher picks
    /// exactly what trying every route in rank order would pick.
    #[test]
    fn matcher_agrees_with_naive_reference(s in scenario()) {
        check_scenario(&s)?;
    }

    /// The reference decoder and the matcher's allocation-free comparison agree on arbitrary
    /// text, including stray `%` and `+`.
    #[test]
    fn decoded_eq_agrees_with_reference_decoding(
        raw in "[a%+2Fz0-9 é]{0,8}",
        want in "[a%+/ z0-9é]{0,4}",
    ) {
        let decoded = reference_decode(&raw);
        prop_assert_eq!(super::decoded_eq(&raw, &want), decoded == want.as_bytes());
        // Whatever `raw` decodes to (when it is text), it is equal to itself.
        if let Ok(text) = String::from_utf8(decoded) {
            prop_assert!(super::decoded_eq(&raw, &text));
        }
    }

    /// Host normalization agrees with the reference on arbitrary short hosts.
    #[test]
    fn normalize_host_agrees_with_reference(raw in "[aB.:\\[\\]0-9ü]{0,12}") {
        let mut buf = [0u8; super::MAX_HOST];
        let got = super::normalize_host(&raw, &mut buf).map(str::to_owned);
        prop_assert_eq!(got, reference_host(&raw));
    }
}

/// Regression: a Host with an empty first label (".example.com") once reached wildcard
/// routes. The matcher and the reference must agree on such hosts.
#[test]
fn reference_agrees_on_leading_dot_hosts() {
    let s = Scenario {
        routes: vec![RouteSpec {
            priority: 0,
            hosts: vec!["*.a.com".into()],
            path: None,
            prefix: None,
            regex: None,
            methods: vec![],
            headers: vec![],
            query: vec![],
        }],
        served: None,
        default: None,
        requests: vec![ReqSpec {
            method: "GET",
            host: Some(".a.com".into()),
            path: "/",
            query: None,
            headers: vec![],
        }],
    };
    if let Err(e) = check_scenario(&s) {
        panic!("{e}");
    }
}
