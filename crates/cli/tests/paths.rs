//! End to end: the one path normalisation before routing. A route cannot be reached, or
//! avoided, by encoding its path differently, and the upstream receives exactly the path the
//! route matched. The rules are in `zentinel_config::path` and `docs/security.md`.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use support::{MockUpstream, Proxy, get, send_raw, wait_until};

/// A proxy where `/admin/` goes to `admin` and everything else to `public`.
fn start(protocol: &str) -> (Proxy, SocketAddr, MockUpstream, MockUpstream) {
    start_with(protocol, "")
}

/// [`start`] with more listener settings.
fn start_with(
    protocol: &str,
    listener_extra: &str,
) -> (Proxy, SocketAddr, MockUpstream, MockUpstream) {
    let admin = MockUpstream::start("admin");
    let public = MockUpstream::start("public");
    let addr = support::free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; protocol "{protocol}"; {listener_extra} }} }}
observability {{
    access-log {{ destination "off"; }}
    audit-log {{ destination "file"; path "audit.log"; }}
}}
upstreams {{
    upstream "admin" {{ target "{}"; }}
    upstream "public" {{ target "{}"; }}
}}
routes {{
    route "admin" {{ matches {{ path-prefix "/admin/"; }}; upstream "admin"; }}
    route "public" {{ upstream "public"; }}
}}"#,
        admin.addr(),
        public.addr()
    );
    (Proxy::start(&config, &[addr]), addr, admin, public)
}

fn audit(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn encodings_of_a_routed_path_reach_its_route_with_the_normal_path() {
    let (_p, addr, admin, public) = start("http");
    let cases = [
        ("/admin/x", "/admin/x"),
        ("/%61dmin/x", "/admin/x"),
        ("/%61%64%6D%69%6E/x", "/admin/x"),
        ("//admin/x", "/admin/x"),
        ("/admin//x", "/admin/x"),
        ("/public/../admin/x", "/admin/x"),
        ("/public/%2e%2e/admin/x", "/admin/x"),
        ("/public/%2E./admin/./x", "/admin/x"),
        ("/./admin/x", "/admin/x"),
        // The query is forwarded as sent, escapes and all.
        ("/%61dmin/x?q=%2F..%2f&r=/../", "/admin/x?q=%2F..%2f&r=/../"),
        // Other escapes keep their meaning; only their hex digits are upper-cased.
        ("/admin/a%3ab%20c", "/admin/a%3Ab%20c"),
        ("/admin/%252e%252e/x", "/admin/%252e%252e/x"),
    ];
    for (sent, forwarded) in cases {
        let r = get(addr, "h", sent);
        assert_eq!(r.status, 200, "{sent}: {}", r.text());
        let got = admin.last_request().expect("admin got it");
        assert_eq!(got.path, forwarded, "{sent}");
    }
    assert_eq!(admin.hits(), cases.len());
    assert_eq!(public.hits(), 0, "no encoding of /admin/ went elsewhere");

    // And the other way round: a path that only looks like the route after decoding
    // something that is not decoded stays out of it.
    for (sent, forwarded) in [
        ("/admin", "/admin"),
        ("/admin%3B/x", "/admin%3B/x"),
        ("/admin/../public/y", "/public/y"),
        ("/Admin/x", "/Admin/x"),
    ] {
        let r = get(addr, "h", sent);
        assert_eq!(r.status, 200, "{sent}: {}", r.text());
        assert_eq!(public.last_request().expect("public").path, forwarded);
    }
    assert_eq!(admin.hits(), cases.len());
}

#[test]
fn ambiguous_paths_are_refused_before_any_upstream_is_involved() {
    let (p, addr, admin, public) = start("http");
    let cases = [
        ("/admin%2fx", "path-encoded-slash"),
        ("/x%2F..%2Fadmin/x", "path-encoded-slash"),
        ("/admin\\x", "path-backslash"),
        ("/x/..%5cadmin/x", "path-backslash"),
        // After an escape that is rewritten, too.
        ("/%61dmin\\x", "path-backslash"),
        ("/admin/x%00.json", "path-control-byte"),
        ("/admin/x%0d%0aSet-Cookie:%20a=b", "path-control-byte"),
        ("/admin/%zz", "path-bad-percent"),
        ("/admin/x%4", "path-bad-percent"),
        ("/../admin/x", "path-above-root"),
        ("/x/../../admin/x", "path-above-root"),
        ("/%2e%2e/admin/x", "path-above-root"),
        ("/public/..;/admin/x", "path-dot-segment-parameter"),
        ("/public/.;a=b/admin/x", "path-dot-segment-parameter"),
    ];
    let non_ascii = "path-non-ascii";
    for (sent, _) in cases {
        let raw = format!("GET {sent} HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = send_raw(addr, raw.as_bytes()).expect(sent);
        assert_eq!(r.status, 400, "{sent}: {}", r.text());
        assert!(r.header("x-request-id").is_some(), "{sent}");
        assert_eq!(r.header("connection"), Some("close"), "{sent}");
    }
    // Bytes that are not ASCII in the path or the query: a request target is ASCII (RFC 9112
    // §3.2), so they are refused rather than forwarded as a guess — valid UTF-8 by Zentinel
    // (with the request ID and an audit line), invalid UTF-8 already by Pingora's parser.
    let raw: [&[u8]; 1] = [b"GET /caf\xc3\xa9?q=\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"];
    for request in raw {
        let r = send_raw(addr, request).expect("non-ASCII target");
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("must be ASCII"), "{}", r.text());
    }
    // A target in no form at all is not rooted at `/`.
    let r = send_raw(addr, b"GET admin/x HTTP/1.1\r\nHost: h\r\n\r\n").expect("no form");
    assert_eq!(r.status, 400, "{}", r.text());
    for request in [
        &b"GET /a\xe9 HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET /a?q=\xe9 HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        let r = send_raw(addr, request).expect("non-UTF-8 target");
        assert_eq!(r.status, 400, "{}", r.text());
    }
    assert_eq!(admin.connections() + public.connections(), 0);
    wait_until(Duration::from_secs(5), "one audit line per refusal", || {
        audit(p.dir()).len() >= cases.len() + raw.len()
    });
    let lines = audit(p.dir());
    let refused_non_ascii = lines.iter().filter(|l| l["reason"] == non_ascii).count();
    assert_eq!(refused_non_ascii, raw.len(), "{lines:?}");
    for (sent, reason) in cases {
        assert!(
            lines
                .iter()
                .any(|l| l["reason"] == reason && l["status"] == 400),
            "{sent}: no {reason} line in {lines:?}"
        );
    }
}

/// `;` parameters: kept by default (so `/admin;x/secret` is not under `/admin/`, and goes
/// where that path routes, as sent), refused with `path-parameters "refuse"` — for listeners
/// in front of servers that drop them before routing.
#[test]
fn path_parameters_are_kept_or_refused_as_the_listener_says() {
    let (_p, addr, admin, public) = start("http");
    let r = get(addr, "h", "/admin;x/secret");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        public.last_request().expect("public").path,
        "/admin;x/secret"
    );
    assert_eq!(admin.hits(), 0);

    let (p, addr, admin, public) = start_with("http", r#"path-parameters "refuse";"#);
    let refused = [
        "/admin;x/secret",
        "/a;jsessionid=1",
        "/admin/x;",
        "/%61dmin;/x",
    ];
    for sent in refused {
        let raw = format!("GET {sent} HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = send_raw(addr, raw.as_bytes()).expect(sent);
        assert_eq!(r.status, 400, "{sent}: {}", r.text());
        assert!(r.text().contains("parameters"), "{sent}: {}", r.text());
        assert_eq!(r.header("connection"), Some("close"), "{sent}");
    }
    assert_eq!(admin.connections() + public.connections(), 0);
    // An encoded `;` is data, and the query is not the path.
    let r = get(addr, "h", "/admin/a%3Bb?x=1;2");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        admin.last_request().expect("admin").path,
        "/admin/a%3Bb?x=1;2"
    );
    wait_until(Duration::from_secs(5), "one audit line per refusal", || {
        audit(p.dir())
            .iter()
            .filter(|l| l["reason"] == "path-parameter" && l["status"] == 400)
            .count()
            == refused.len()
    });
}

#[test]
fn absolute_form_targets_are_normalised_and_sent_in_origin_form() {
    let (_p, addr, admin, _public) = start("http");
    let raw = b"GET http://h/x/%2e%2e/%61dmin/y?z=1 HTTP/1.1\r\nHost: h\r\n\r\n";
    let r = send_raw(addr, raw).expect("absolute form");
    assert_eq!(r.status, 200, "{}", r.text());
    let got = admin.last_request().expect("admin got it");
    assert_eq!(got.path, "/admin/y?z=1");
    assert_eq!(got.header("host"), Some("h"));
    let r = send_raw(addr, b"GET http://h/admin/y HTTP/1.1\r\nHost: h\r\n\r\n").expect("plain");
    assert_eq!(r.status, 200);
    assert_eq!(admin.last_request().expect("admin").path, "/admin/y");
}

/// HTTP/2 `:path` goes through the same normalisation (curl sends it as given).
#[test]
fn http2_paths_are_normalised_and_refused_alike() {
    let (_p, addr, admin, public) = start("h2c");
    let curl = |path: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "--http2-prior-knowledge",
                "--path-as-is",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{http_version}",
            ])
            .arg(format!("http://{addr}{path}"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl("/public/../%61dmin//x"), "200 2");
    assert_eq!(admin.last_request().expect("admin").path, "/admin/x");
    assert_eq!(curl("/admin%2Fx"), "400 2");
    assert_eq!(curl("/../admin/x"), "400 2");
    assert_eq!(admin.hits(), 1);
    assert_eq!(public.hits(), 0);
}
