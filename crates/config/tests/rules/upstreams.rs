//! Upstreams: targets, health checks, hashing, client certificates, DNS refresh.

use super::*;

#[test]
fn health_check_tcp() {
    let c = ok(&base(
        "",
        "health-check { tcp; interval-ms 1000; timeout-ms 200; }",
        "",
        "",
    ));
    assert!(matches!(
        c.upstreams[0].health_check.as_ref().map(|h| &h.probe),
        Some(HealthProbe::Tcp)
    ));
    let (c, _, m, _) = one(&base("", r#"health-check { tcp; http "/h"; }"#, "", ""));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("either `http` or `tcp`"), "{m}");
    let (c, _, _, _) = one(&base("", "health-check { interval-ms 2000; }", "", ""));
    assert_eq!(c, Code::MissingKey);
    let (c, _, m, _) = one(&base(
        "",
        "health-check { tcp; interval-ms 1000; timeout-ms 1000; }",
        "",
        "",
    ));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("shorter than the interval"), "{m}");
    let (c, _, _, _) = one(&base("", "health-check { tcp 1; }", "", ""));
    assert_eq!(c, Code::Type);
}

#[test]
fn hash_on_needs_consistent_hash() {
    let c = ok(&base(
        "",
        r#"load-balancing "consistent-hash"; hash-on "header" "X-User""#,
        "",
        "",
    ));
    assert_eq!(
        c.upstreams[0].hash_on,
        Some(HashKey::Header("x-user".into()))
    );
    let c = ok(&base("", r#"load-balancing "consistent-hash""#, "", ""));
    assert_eq!(
        c.upstreams[0].hash_on,
        Some(HashKey::ClientIp),
        "client IP by default"
    );
    let c = ok(&base(
        "",
        r#"load-balancing "consistent-hash"; hash-on "cookie" "sid""#,
        "",
        "",
    ));
    assert_eq!(c.upstreams[0].hash_on, Some(HashKey::Cookie("sid".into())));
    let (c, _, m, _) = one(&base("", r#"hash-on "client-ip""#, "", ""));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("only applies to"), "{m}");
    let (c, _, _, _) = one(&base(
        "",
        r#"load-balancing "consistent-hash"; hash-on "header""#,
        "",
        "",
    ));
    assert_eq!(c, Code::InvalidValue);
}

#[test]
fn upstream_client_cert() {
    let c = ok(&base(
        "",
        r#"tls { cert-file "p.crt"; key-file "p.key"; }"#,
        "",
        "",
    ));
    let tls = c.upstreams[0].tls.as_ref().expect("tls");
    assert!(tls.cert_file.is_some() && tls.key_file.is_some() && tls.verify);
    let (c, _, _, _) = one(&base("", r#"tls { cert-file "p.crt"; }"#, "", ""));
    assert_eq!(c, Code::MissingKey);
    let (c, _, _, _) = one(&base(
        "",
        r#"tls { verify #false; ca-file "ca.crt"; }"#,
        "",
        "",
    ));
    assert_eq!(c, Code::Conflict);
}

#[test]
fn targets_accept_names_and_reject_schemes() {
    let c = ok(&base(
        "",
        r#"target "Backend.internal:8080" weight=5"#,
        "",
        "",
    ));
    assert_eq!(
        c.upstreams[0].targets[1].address.to_string(),
        "backend.internal:8080"
    );
    assert_eq!(c.upstreams[0].targets[1].weight, 5);
    let (c, _, _, h) = one(&base("", r#"target "http://b:80""#, "", ""));
    assert_eq!(c, Code::InvalidValue);
    assert!(h.contains("without a scheme"), "{h}");
    let (c, _, _, _) = one(&base("", r#"target "127.0.0.1:3000""#, "", ""));
    assert_eq!(c, Code::InvalidValue, "listed twice");
    let (c, _, _, h) = one(&base("", r#"target "127.0.0.1:3001" wieght=2"#, "", ""));
    assert_eq!(c, Code::UnknownKey);
    assert_eq!(h, "did you mean `weight`?");
}

#[test]
fn health_check_path_and_host_are_sendable() {
    let (c, _, m, _) = one(&base("", r#"health-check { http "/a b"; }"#, "", ""));
    assert_eq!(c, Code::InvalidValue);
    assert!(m.contains("no spaces or control characters"), "{m}");
    let (c, _, _, _) = one(&base(
        "",
        r#"health-check { http "/h" { host "bad host"; } }"#,
        "",
        "",
    ));
    assert_eq!(c, Code::InvalidValue);
    ok(&base(
        "",
        r#"health-check { http "/h?x=1" { host "api.internal:8080"; } }"#,
        "",
        "",
    ));
}

#[test]
fn dns_refresh_needs_a_host_name() {
    let c = ok(&base(
        "",
        r#"target "backend.internal:8080"; dns-refresh-ms 5000"#,
        "",
        "",
    ));
    assert_eq!(c.upstreams[0].dns_refresh.as_millis(), 5000);
    assert_eq!(
        ok(&base("", "", "", "")).upstreams[0].dns_refresh.as_secs(),
        30,
        "default"
    );
    let (c, _, m, _) = one(&base("", "dns-refresh-ms 5000", "", ""));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("every target is an IP address"), "{m}");
}
