//! Every condition other than the host, and listeners' route sets.

use super::*;

// Paths

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

// All conditions together

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

// Methods

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

// Headers

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

// Query parameters

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

// Listeners

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

// Miscellaneous

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
