//! Parsing of the request description, and serialization of the explanation.

use super::*;

// Requests

#[test]
fn urls_and_headers_are_parsed_strictly() {
    let r = request(
        "GET",
        "HTTPS://API.example.com:8443/v1/a%20b?x=1&y#frag",
        &["X-Api-Key:  abc "],
    );
    assert_eq!(r.scheme, Scheme::Https);
    assert_eq!(r.authority, "API.example.com:8443");
    assert_eq!(r.path, "/v1/a%20b");
    assert_eq!(r.query.as_deref(), Some("x=1&y"));
    assert_eq!(r.headers, [("x-api-key".to_owned(), "abc".to_owned())]);
    assert_eq!(request("GET", "http://h.test", &[]).path, "/");
    assert_eq!(request("GET", "http://h.test?q", &[]).path, "/");
    assert_eq!(
        request("GET", "http://[::1]:8080/", &[]).authority,
        "[::1]:8080"
    );
    // A Host header replaces the URL's for routing.
    assert_eq!(
        request("GET", "http://a.test/", &["host: b.test"]).host(),
        "b.test"
    );

    let err = |method: &str, url: &str| RequestDescription::from_url(method, url).unwrap_err();
    assert!(matches!(
        err("GET", "api.example.com/v1"),
        RequestError::Scheme(_)
    ));
    assert!(matches!(err("GET", "ftp://h/"), RequestError::Scheme(_)));
    assert!(matches!(err("GET", "http:///x"), RequestError::NoHost));
    assert!(matches!(
        err("GET", "http://u:p@h/"),
        RequestError::Credentials
    ));
    assert!(matches!(err("GET", "http://h:0/"), RequestError::Port(_)));
    assert!(matches!(
        err("GET", "http://h:99999/"),
        RequestError::Port(_)
    ));
    assert!(matches!(err("GET", "http://h:/"), RequestError::Port(_)));
    assert!(matches!(err("GET", "http://h st/"), RequestError::Host(_)));
    assert!(matches!(err("GET", "http://[zz]/"), RequestError::Host(_)));
    assert!(matches!(
        err("GET", "http://h/a b"),
        RequestError::Character(' ')
    ));
    assert!(matches!(
        err("GET", "http://h/é"),
        RequestError::Character('é')
    ));
    assert!(matches!(err("GE T", "http://h/"), RequestError::Method(_)));
    assert!(matches!(err("", "http://h/"), RequestError::Method(_)));
    assert!(
        err("GET", "api.example.com/v1")
            .to_string()
            .contains("https://api.example.com/v1")
    );

    let mut r = request("GET", "http://h/", &[]);
    assert!(matches!(
        r.header_line("no colon"),
        Err(RequestError::HeaderLine(_))
    ));
    assert!(matches!(
        r.header_line("bad name: v"),
        Err(RequestError::HeaderName(_))
    ));
    assert!(matches!(
        r.header_line(": v"),
        Err(RequestError::HeaderName(_))
    ));
    assert!(matches!(
        r.header_line("x: a\r\nb: c"),
        Err(RequestError::HeaderValue(_))
    ));
    r.header_line("empty:").unwrap();
    assert_eq!(r.headers, [("empty".to_owned(), String::new())]);
}

#[test]
fn the_explanation_and_the_effective_config_serialize_fully() {
    let c = production();
    let e = ex(
        &c,
        "GET",
        "https://api.example.com/v1/users",
        &["upgrade: websocket"],
    );
    let json = serde_json::to_value(&e).unwrap();
    for key in [
        "request", "listener", "routing", "outcome", "refusals", "limits", "route",
    ] {
        assert!(json.get(key).is_some(), "{key} missing: {json}");
    }
    assert_eq!(json["outcome"]["action"], "refuse");
    assert_eq!(json["outcome"]["status"], 403);
    assert!(
        json["outcome"]["cause"]
            .as_str()
            .unwrap()
            .ends_with("route \"api\" has no `websocket #true`"),
        "{}",
        json["outcome"]
    );
    assert_eq!(json["routing"]["matched"]["id"], "api");
    // "ws" allows WebSockets, for /v1/stream only: here it is a near miss.
    assert_eq!(json["routing"]["near_misses"][1]["id"], "ws");
    assert_eq!(json["route"]["timeouts"]["first_try"]["read"], 5000);
    assert_eq!(json["route"]["upstream"]["targets"][2]["weight"], 1);
    assert_eq!(json["limits"][2]["setting"], "limits.max-uri-bytes");
    // The normalised configuration: every default present.
    let cfg = c.to_json();
    assert_eq!(cfg["agents"][1]["queue_timeout"], 0);
    assert!(cfg["routes"][0]["retry"]["max_attempts"].is_u64());
    assert!(cfg["listeners"][0]["idle_timeout"].is_u64());
    assert!(cfg["upstreams"][2]["timeouts"]["connect"].is_u64());
}
