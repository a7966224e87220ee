//! Listeners and the admin API: TLS, SNI and client authentication, addresses, routes per listener, client deadlines.

use super::*;

#[test]
fn https_listener_needs_tls() {
    let (c, _, m, h) = one(&base(r#"protocol "https""#, "", "", ""));
    assert_eq!(c, Code::MissingKey);
    assert!(m.contains("no `tls` block"), "{m}");
    assert!(h.contains("cert-file"));
    let c = ok(&base(
        r#"protocol "https"; tls { cert-file "a.crt"; key-file "a.key"; min-version "1.3"; }"#,
        "",
        "",
        "",
    ));
    assert_eq!(c.listeners[0].protocol, ListenerProtocol::Https);
    assert!(c.listeners[0].tls.is_some());
    let c = ok(&base(r#"protocol "h2c""#, "", "", ""));
    assert_eq!(c.listeners[0].protocol, ListenerProtocol::H2c);
}

#[test]
fn tls_needs_https() {
    let (c, _, m, _) = one(&base(
        r#"tls { cert-file "a.crt"; key-file "a.key"; }"#,
        "",
        "",
        "",
    ));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("would be ignored"), "{m}");
}

#[test]
fn sni_and_client_auth() {
    let c = ok(&base(
        r#"protocol "https"; tls { cert-file "a.crt"; key-file "a.key";
            sni "API.example.com" { cert-file "api.crt"; key-file "api.key"; }
            sni "*.example.com" { cert-file "w.crt"; key-file "w.key"; }
            client-auth "required" { ca-file "ca.crt"; } }"#,
        "",
        "",
        "",
    ));
    let tls = c.listeners[0].tls.as_ref().expect("tls");
    assert_eq!(tls.sni[0].host.to_string(), "api.example.com");
    assert_eq!(tls.sni[1].host.to_string(), "*.example.com");
    assert_eq!(
        tls.client_auth.as_ref().map(|a| a.mode.as_str()),
        Some("required")
    );
    let (c, _, _, h) = one(&base(
        r#"protocol "https"; tls { cert-file "a"; key-file "b"; client-auth "requried" { ca-file "c"; } }"#,
        "",
        "",
        "",
    ));
    assert_eq!(c, Code::UnknownValue);
    assert_eq!(h, "did you mean `required`?");
    let (c, _, _, _) = one(&base(
        r#"protocol "https"; tls { cert-file "a"; key-file "b"; sni "x.com" { cert-file "1"; key-file "2"; }; sni "X.com" { cert-file "1"; key-file "2"; } }"#,
        "",
        "",
        "",
    ));
    assert_eq!(c, Code::DuplicateId);
}

#[test]
fn listener_addresses_may_not_overlap() {
    let text = base(
        "",
        "",
        "",
        r#"listeners { listener "all" { address "0.0.0.0:8080"; } }"#,
    );
    let (c, _, m, _) = one(&text);
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("overlap"), "{m}");
    ok(&base(
        "",
        "",
        "",
        r#"listeners { listener "v6" { address "[::1]:8080"; }; listener "other" { address "127.0.0.2:8080"; } }"#,
    ));
}

#[test]
fn listener_routes_and_default_route_must_exist() {
    let (c, _, m, h) = one(&base(r#"routes "apj""#, "", "", ""));
    assert_eq!(c, Code::UnknownReference);
    assert!(m.contains("listener \"web\""), "{m}");
    assert!(h.contains("did you mean `api`?"), "{h}");
    let c = ok(&base(r#"routes "api"; default-route "api""#, "", "", ""));
    assert_eq!(
        c.listeners[0].default_route.as_ref().map(|r| r.as_str()),
        Some("api")
    );
    let (c, _, m, _) = one(&base(
        r#"routes "api"; default-route "other""#,
        "",
        "",
        r#"routes { route "other" { upstream "backend"; } }"#,
    ));
    assert_eq!(c, Code::InvalidValue);
    assert!(m.contains("not one of this listener's `routes`"), "{m}");
}

#[test]
fn admin_on_a_public_address_needs_a_token() {
    let (c, _, m, _) = one(&base("", "", "", r#"admin { address "0.0.0.0:9901"; }"#));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("no `token-file`"), "{m}");
    let c = ok(&base(
        "",
        "",
        "",
        r#"admin { address "0.0.0.0:9901"; token-file "admin.token"; }"#,
    ));
    assert!(c.admin.as_ref().is_some_and(|a| a.token_file.is_some()));
    let (c, _, _, _) = one(&base(
        "",
        "",
        "",
        "observability { metrics { path \"/m\"; } }",
    ));
    assert_eq!(c, Code::Conflict, "metrics without an admin listener");
}

#[test]
fn slow_client_deadlines_and_the_rate_grace_without_a_rate() {
    let c = ok(&base(
        "body-read-timeout-ms 700; min-body-rate-bytes-per-sec 2048; body-rate-grace-ms 1500; send-timeout-ms 900;",
        "",
        "",
        "",
    ));
    let l = &c.listeners[0];
    assert_eq!(l.body_read_timeout.as_millis(), 700);
    assert_eq!(l.min_body_rate, 2048);
    assert_eq!(l.body_rate_grace.as_millis(), 1500);
    assert_eq!(l.send_timeout.as_millis(), 900);
    // Defaults, written out in the schema.
    let d = &ok(&base("", "", "", "")).listeners[0];
    assert_eq!(
        (
            d.body_read_timeout.as_millis(),
            d.min_body_rate,
            d.body_rate_grace.as_millis(),
            d.send_timeout.as_millis()
        ),
        (10_000, 500, 10_000, 30_000)
    );
    // Rate 0 turns the check off; a grace period then has no effect and is refused.
    assert_eq!(
        ok(&base("min-body-rate-bytes-per-sec 0;", "", "", "")).listeners[0].min_body_rate,
        0
    );
    let (c, _, m, _) = one(&base(
        "min-body-rate-bytes-per-sec 0; body-rate-grace-ms 5000;",
        "",
        "",
        "",
    ));
    assert_eq!(c, Code::Conflict);
    assert!(m.contains("`body-rate-grace-ms` has no effect"), "{m}");
}
