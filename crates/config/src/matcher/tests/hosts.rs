//! Host matching: exact names, wildcards, and how they rank against each other.

use super::*;

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
