//! TLS termination end to end, with `curl` as an independent client: SNI certificate
//! selection, HTTP/2 by ALPN, client certificates (required and optional), minimum version,
//! and clear errors for bad certificate files.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use support::pki::{Pki, ca, leaf};
use support::{MockUpstream, Proxy, free_addr};

/// A server CA with certificates for `default.test`, `api.example.com`, `*.example.com`, and
/// a client CA with one client certificate.
fn pki() -> Pki {
    let server_ca = ca("Zentinel test server CA");
    let client_ca = ca("Zentinel test client CA");
    let mut files = vec![
        ("server-ca.crt".to_owned(), server_ca.pem()),
        ("client-ca.crt".to_owned(), client_ca.pem()),
    ];
    for (name, hosts) in [
        ("default", &["default.test"][..]),
        ("api", &["api.example.com"][..]),
        ("wild", &["*.example.com"][..]),
    ] {
        let (c, k) = leaf(&server_ca, hosts, false);
        files.push((format!("{name}.crt"), c));
        files.push((format!("{name}.key"), k));
    }
    let (c, k) = leaf(&client_ca, &["client.test"], true);
    files.push(("client.crt".to_owned(), c));
    files.push(("client.key".to_owned(), k));
    Pki { files }
}

fn config(addr: SocketAddr, upstream: SocketAddr, tls_extra: &str) -> String {
    format!(
        r#"listeners {{ listener "tls" {{ address "{addr}"; protocol "https"
    tls {{ cert-file "default.crt"; key-file "default.key"
        sni "api.example.com" {{ cert-file "api.crt"; key-file "api.key"; }}
        sni "*.example.com" {{ cert-file "wild.crt"; key-file "wild.key"; }}
        {tls_extra} }} }} }}
observability {{ access-log {{ destination "off"; }}; error-log {{ level "warn"; }} }}
upstreams {{ upstream "u" {{ target "{upstream}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#
    )
}

fn start(pki: &Pki, tls_extra: &str) -> (Proxy, SocketAddr, MockUpstream) {
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let files: Vec<(&str, &str)> = pki
        .files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = Proxy::start_with_files(&config(addr, up.addr(), tls_extra), &files, &[addr]);
    (p, addr, up)
}

/// Runs curl against `host` resolved to the proxy; returns (exit code, stdout, stderr).
fn curl(dir: &Path, addr: SocketAddr, host: &str, extra: &[&str]) -> (i32, String, String) {
    let url = format!("https://{host}:{}/", addr.port());
    let resolve = format!("{host}:{}:{}", addr.port(), addr.ip());
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(dir.join("server-ca.crt"))
        .args([
            "--resolve",
            &resolve,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version} %{ssl_verify_result}",
        ])
        .args(extra)
        .arg(&url)
        .current_dir(dir)
        .output()
        .expect("curl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sni_selects_the_certificate_and_alpn_gives_http2() {
    let pki = pki();
    let (p, addr, up) = start(&pki, "");
    // curl verifies each certificate against the host name: a wrong choice fails the handshake.
    for host in ["api.example.com", "www.example.com", "default.test"] {
        let (code, out, err) = curl(p.dir(), addr, host, &["--http2"]);
        assert_eq!(code, 0, "{host}: {err}");
        assert_eq!(out, "200 2 0", "{host}: status, HTTP/2, verified");
    }
    let (code, out, _) = curl(p.dir(), addr, "api.example.com", &["--http1.1"]);
    assert_eq!((code, out.as_str()), (0, "200 1.1 0"));
    assert_eq!(
        up.last_request().unwrap().header("x-forwarded-proto"),
        Some("https")
    );
    // A name no certificate covers gets the default one, which curl rejects for that name.
    let (code, _, _) = curl(p.dir(), addr, "other.test", &[]);
    assert_ne!(code, 0);
}

#[test]
fn required_client_certificates() {
    let pki = pki();
    let (p, addr, _up) = start(
        &pki,
        r#"client-auth "required" { ca-file "client-ca.crt"; }"#,
    );
    let (code, _, _) = curl(p.dir(), addr, "api.example.com", &[]);
    assert_ne!(code, 0, "no client certificate: refused");
    let (code, out, err) = curl(
        p.dir(),
        addr,
        "api.example.com",
        &["--cert", "client.crt", "--key", "client.key"],
    );
    assert_eq!((code, out.as_str()), (0, "200 2 0"), "{err}");
    // A certificate from the wrong CA is refused too.
    let (code, _, _) = curl(
        p.dir(),
        addr,
        "api.example.com",
        &["--cert", "api.crt", "--key", "api.key"],
    );
    assert_ne!(code, 0);
}

#[test]
fn optional_client_certificates() {
    let pki = pki();
    let (p, addr, _up) = start(
        &pki,
        r#"client-auth "optional" { ca-file "client-ca.crt"; }"#,
    );
    let (code, out, err) = curl(p.dir(), addr, "api.example.com", &[]);
    assert_eq!(
        (code, out.as_str()),
        (0, "200 2 0"),
        "without a certificate: {err}"
    );
    let (code, out, err) = curl(
        p.dir(),
        addr,
        "api.example.com",
        &["--cert", "client.crt", "--key", "client.key"],
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "200 2 0"),
        "with a certificate: {err}"
    );
}

#[test]
fn minimum_tls_version() {
    let pki = pki();
    let (p, addr, _up) = start(&pki, r#"min-version "1.3""#);
    let (code, _, err) = curl(p.dir(), addr, "api.example.com", &["--tls-max", "1.2"]);
    assert_ne!(code, 0, "TLS 1.2 client refused: {err}");
    assert_eq!(curl(p.dir(), addr, "api.example.com", &["--tlsv1.3"]).0, 0);
    let (p2, addr2, _up2) = start(&pki, r#"min-version "1.2""#);
    assert_eq!(
        curl(p2.dir(), addr2, "api.example.com", &["--tls-max", "1.2"]).0,
        0
    );
}

#[test]
fn a_bad_certificate_file_is_a_clear_startup_error() {
    let addr = free_addr();
    let cfg = config(addr, free_addr(), "");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("zentinel.kdl"), &cfg).unwrap();
    std::fs::write(dir.path().join("default.crt"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("default.key"), "not a key").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zentinel"))
        .args(["run", "-c", "zentinel.kdl"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listener \"tls\"") && err.contains("default.crt"),
        "{err}"
    );
}

#[test]
fn agents_are_told_the_true_tls_facts_of_the_connection() {
    let agent = support::agent::MockAgent::start();
    let pki = pki();
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let cfg = config(addr, up.addr(), "").replace(
        r#"routes { route "r" { upstream "u"; } }"#,
        r#"routes { route "r" { upstream "u"; filters "a"; } }"#,
    ) + &format!(
        r#"
agents {{ agent "a" {{ transport {{ unix-socket "{}"; }}; events "request-headers"; }} }}"#,
        agent.socket().display()
    );
    let files: Vec<(&str, &str)> = pki
        .files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = Proxy::start_with_files(&cfg, &files, &[addr]);
    let (code, out, err) = curl(p.dir(), addr, "api.example.com", &["--http2", "--tlsv1.3"]);
    assert_eq!((code, out.as_str()), (0, "200 2 0"), "{err}");
    let m = agent.requests().pop().unwrap().metadata;
    assert_eq!(m.server_name.as_deref(), Some("api.example.com"), "SNI");
    assert_eq!(m.protocol, "HTTP/2");
    assert_eq!(m.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(
        m.tls_cipher.is_some_and(|c| c.starts_with("TLS13_")),
        "cipher"
    );
}
