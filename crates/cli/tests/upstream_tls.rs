//! TLS to upstream targets end to end. The TLS upstream is a second Zentinel (proxy B) with an
//! `https` listener in front of a mock upstream; proxy A listens in clear text and routes each
//! path prefix to an upstream pointing at B with a different `tls` block: verification against
//! `ca-file`, SNI, the target's IP as the default name, `verify #false`, client certificates,
//! HTTP health probes over TLS, and clear start-up errors for bad files.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::KeyPair;
use support::pki::{Pki, ca, leaf};
use support::{MockUpstream, Proxy, free_addr, get, wait_until};

/// PEM files by name: `server-ca.crt` and `backend.{crt,key}` (for `backend.test` and
/// `127.0.0.1`) signed by it, `other-ca.crt` (trusted by nobody), `client-ca.crt` and
/// `client.{crt,key}` signed by it, `stray.key` (a key of no certificate here).
fn pki() -> Pki {
    let server_ca = ca("Zentinel test server CA");
    let other_ca = ca("Zentinel test other CA");
    let client_ca = ca("Zentinel test client CA");
    let (backend_crt, backend_key) = leaf(&server_ca, &["backend.test", "127.0.0.1"], false);
    let (client_crt, client_key) = leaf(&client_ca, &["proxy.test"], true);
    let files = vec![
        ("server-ca.crt", server_ca.pem()),
        ("other-ca.crt", other_ca.pem()),
        ("client-ca.crt", client_ca.pem()),
        ("backend.crt", backend_crt),
        ("backend.key", backend_key),
        ("client.crt", client_crt),
        ("client.key", client_key),
        ("stray.key", KeyPair::generate().unwrap().serialize_pem()),
    ];
    Pki {
        files: files.into_iter().map(|(n, c)| (n.to_owned(), c)).collect(),
    }
}

const QUIET: &str =
    r#"observability { access-log { destination "off"; }; error-log { level "warn"; } }"#;

/// Proxy B: an `https` listener (with `client_auth` inside its `tls` block) in front of a
/// mock upstream named `app`.
fn backend(pki: &Pki, client_auth: &str) -> (Proxy, SocketAddr, MockUpstream) {
    let app = MockUpstream::start("app");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "tls" {{ address "{addr}"; protocol "https"
    tls {{ cert-file "backend.crt"; key-file "backend.key"; {client_auth} }} }} }}
{QUIET}
upstreams {{ upstream "app" {{ target "{}"; }} }}
routes {{ route "app" {{ upstream "app"; }} }}"#,
        app.addr()
    );
    let p = Proxy::start_with_files(&config, &pki.files(), &[addr]);
    (p, addr, app)
}

/// One upstream of proxy A, all pointing at proxy B: requests under `/<name>/` go to it.
struct Via<'a> {
    name: &'a str,
    /// The upstream's settings after its target (the `tls` block, passive health…).
    upstream: &'a str,
    /// Extra settings of its route.
    route: &'a str,
}

fn via<'a>(name: &'a str, upstream: &'a str) -> Via<'a> {
    Via {
        name,
        upstream,
        route: "",
    }
}

fn front_config(listen: SocketAddr, backend: SocketAddr, vias: &[Via<'_>]) -> String {
    let mut upstreams = String::new();
    let mut routes = String::new();
    for v in vias {
        upstreams.push_str(&format!(
            "    upstream \"{}\" {{ target \"{backend}\"; {} }}\n",
            v.name, v.upstream
        ));
        routes.push_str(&format!(
            "    route \"{0}\" {{ matches {{ path-prefix \"/{0}/\"; }}; upstream \"{0}\"; {1} }}\n",
            v.name, v.route
        ));
    }
    format!(
        "listeners {{ listener \"web\" {{ address \"{listen}\"; }} }}\n{QUIET}\nupstreams {{\n{upstreams}}}\nroutes {{\n{routes}}}"
    )
}

/// Proxy A: a clear-text listener with the routes of `vias`.
fn front(pki: &Pki, backend: SocketAddr, vias: &[Via<'_>]) -> (Proxy, SocketAddr) {
    let addr = free_addr();
    let p = Proxy::start_with_files(&front_config(addr, backend, vias), &pki.files(), &[addr]);
    (p, addr)
}

/// Status and body of `GET /<name>/x` through proxy A.
fn call(a: SocketAddr, name: &str) -> (u16, String) {
    let r = get(a, "site.test", &format!("/{name}/x"));
    (r.status, r.text())
}

const VERIFIED: &str = r#"tls { sni "backend.test"; ca-file "server-ca.crt"; }"#;

#[test]
fn verified_tls_with_ca_file_and_sni_or_the_target_ip() {
    let pki = pki();
    let (_b, b_addr, app) = backend(&pki, "");
    let (_a, a) = front(
        &pki,
        b_addr,
        &[
            via("sni", VERIFIED),
            // No `sni`: the IP target's address is the name (the certificate has an IP SAN).
            via("ip", r#"tls { ca-file "server-ca.crt"; }"#),
        ],
    );
    for name in ["sni", "sni", "ip"] {
        let (status, body) = call(a, name);
        assert_eq!(status, 200, "{name}: {body}");
        assert!(body.contains("upstream=app"), "{name}: {body}");
    }
    // B only speaks TLS, and says so to its upstream.
    assert_eq!(app.hits(), 3);
    assert_eq!(
        app.last_request().unwrap().header("x-forwarded-proto"),
        Some("https")
    );
}

#[test]
fn certificates_that_do_not_verify_get_502_and_feed_passive_health() {
    let pki = pki();
    let (_b, b_addr, app) = backend(&pki, "");
    let (_a, a) = front(
        &pki,
        b_addr,
        &[
            via("good", VERIFIED),
            Via {
                name: "wrong-ca",
                upstream: r#"tls { sni "backend.test"; ca-file "other-ca.crt"; }
                    passive-health { consecutive-failures 2; }"#,
                route: "retry { max-attempts 1; }",
            },
            // A name the certificate does not cover.
            via(
                "wrong-name",
                r#"tls { sni "other.test"; ca-file "server-ca.crt"; }"#,
            ),
            // No `ca-file`: the system roots, which do not hold the test CA.
            via("system-roots", r#"tls { sni "backend.test"; }"#),
        ],
    );
    // A verified connection to B is now pooled; the other upstreams must not reuse it.
    assert_eq!(call(a, "good").0, 200);
    for name in ["wrong-ca", "wrong-name", "system-roots"] {
        let (status, body) = call(a, name);
        assert_eq!(status, 502, "{name}: {body}");
        assert!(
            body.contains("could not be reached") && body.contains(&format!("route: {name}")),
            "{name}: {body}"
        );
    }
    // The second failure ejects B from "wrong-ca" (no retries on that route).
    assert_eq!(call(a, "wrong-ca").0, 502);
    let (status, body) = call(a, "wrong-ca");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no healthy upstream target"), "{body}");
    assert_eq!(call(a, "good").0, 200, "other upstreams unaffected");
    assert_eq!(app.hits(), 2, "only verified requests reached B's upstream");
}

#[test]
fn verify_false_accepts_an_untrusted_certificate_and_any_name() {
    let pki = pki();
    let (_b, b_addr, app) = backend(&pki, "");
    let (_a, a) = front(
        &pki,
        b_addr,
        &[
            via("no-verify", r#"tls { sni "backend.test"; verify #false; }"#),
            via(
                "no-verify-name",
                r#"tls { sni "other.test"; verify #false; }"#,
            ),
        ],
    );
    for name in ["no-verify", "no-verify-name"] {
        let (status, body) = call(a, name);
        assert_eq!(status, 200, "{name}: {body}");
    }
    assert_eq!(app.hits(), 2);
}

#[test]
fn client_certificates_for_a_listener_that_requires_them() {
    let pki = pki();
    let (_b, b_addr, app) = backend(
        &pki,
        r#"client-auth "required" { ca-file "client-ca.crt"; }"#,
    );
    let (_a, a) = front(
        &pki,
        b_addr,
        &[
            via(
                "mtls",
                r#"tls { sni "backend.test"; ca-file "server-ca.crt"
                    cert-file "client.crt"; key-file "client.key"; }"#,
            ),
            via("no-cert", VERIFIED),
        ],
    );
    let (status, body) = call(a, "mtls");
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(a, "no-cert");
    assert_eq!(status, 502, "{body}");
    assert_eq!(call(a, "mtls").0, 200);
    assert_eq!(app.hits(), 2);
}

/// An HTTP health check probing every 100 ms (80 ms deadline) that flips a target after one
/// success or two failures; no passive health, so only the probes take a target out.
const HTTP_CHECK: &str = r#"health-check { http "/healthz" { expect-status 200; }; interval-ms 100; timeout-ms 80; healthy-threshold 1; unhealthy-threshold 2; }
    passive-health { enabled #false; }"#;

/// How long a target may take to leave selection: two failed probes (2 × 100 ms, plus one
/// just missed) with a wide margin for a busy test machine.
const HEALTH_BOUND: Duration = Duration::from_millis(1500);

#[test]
fn http_health_probes_speak_tls_with_the_upstreams_settings() {
    let pki = pki();
    let (_b, b_addr, app) = backend(&pki, "");
    let checked = format!("{VERIFIED}; {HTTP_CHECK}");
    let wrong_ca =
        format!(r#"tls {{ sni "backend.test"; ca-file "other-ca.crt"; }}; {HTTP_CHECK}"#);
    let no_retry = "retry { max-attempts 1; }";
    let vias = [
        Via {
            name: "checked",
            upstream: &checked,
            route: no_retry,
        },
        Via {
            name: "wrong-ca",
            upstream: &wrong_ca,
            route: no_retry,
        },
    ];
    let (a_proxy, a) = front(&pki, b_addr, &vias);

    // The probes of "checked" reach B's upstream through B's TLS listener (B speaks nothing
    // else), with the probe's request.
    wait_until(HEALTH_BOUND, "probes over TLS", || {
        app.requests().iter().any(|r| {
            r.path == "/healthz" && r.header("user-agent") == Some("zentinel-health-check")
        })
    });
    // They pass: the target stays in service for many probe rounds.
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        let (status, body) = call(a, "checked");
        assert_eq!(status, 200, "{body}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The probes of "wrong-ca" fail verification, so the target is marked down: requests
    // get 503 instead of the 502 of a failed handshake.
    wait_until(
        HEALTH_BOUND,
        "the wrong-ca target to leave selection",
        || {
            let (status, _) = call(a, "wrong-ca");
            assert!(status == 502 || status == 503, "{status}");
            status == 503
        },
    );
    let (status, body) = call(a, "wrong-ca");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no healthy upstream target"), "{body}");
    a_proxy.wait_stderr("target marked down by active health check", HEALTH_BOUND);
    let log = a_proxy.stderr();
    assert!(log.contains("TLS handshake failed"), "{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("marked down") && l.contains("checked")),
        "{log}"
    );
    assert_eq!(
        call(a, "checked").0,
        200,
        "the verified upstream is unaffected"
    );
}

/// Runs `zentinel run` on proxy A's configuration with `upstream` (to an unused address)
/// and the PKI files; returns the exit code and stderr.
fn fail_to_start(pki: &Pki, upstream: &str, extra_files: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = front_config(free_addr(), free_addr(), &[via("u", upstream)]);
    std::fs::write(dir.path().join("zentinel.kdl"), cfg).unwrap();
    for (name, contents) in pki.files().into_iter().chain(extra_files.iter().copied()) {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_zentinel"))
        .args(["run", "-c", "zentinel.kdl"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_tls_files_are_clear_startup_errors() {
    let pki = pki();
    let not_pem = [("bad-ca.crt", "not a certificate")];
    for (upstream, file, why) in [
        (
            r#"tls { ca-file "bad-ca.crt"; }"#,
            "bad-ca.crt",
            "holds no PEM certificate",
        ),
        (
            r#"tls { ca-file "backend.key"; }"#,
            "backend.key",
            "certificates only",
        ),
        (
            r#"tls { ca-file "missing.crt"; }"#,
            "missing.crt",
            "cannot read it",
        ),
        (
            r#"tls { ca-file "server-ca.crt"; cert-file "client.crt"; key-file "stray.key"; }"#,
            "stray.key",
            "does not match",
        ),
        (
            r#"tls { ca-file "server-ca.crt"; cert-file "client.key"; key-file "client.key"; }"#,
            "client.key",
            "holds no PEM certificate",
        ),
    ] {
        let (code, err) = fail_to_start(&pki, upstream, &not_pem);
        assert_eq!(code, Some(1), "{upstream}: {err}");
        assert!(
            err.contains("upstream \"u\"") && err.contains(file) && err.contains(why),
            "{upstream}: {err}"
        );
        assert!(!err.contains("panicked"), "{upstream}: {err}");
    }
}
