//! The HTTPS listener scanned by an independent tool: `sslyze --mozilla_config=intermediate`
//! (installed by `scripts/setup.sh` into the project-local virtualenv `target/py/`). Only
//! TLS 1.2 and 1.3 with AEAD suites may be offered, and the test certificate must meet the
//! profile's certificate rules (see `support::pki::server_leaf`).

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    reason = "test code fails loudly and reports what it measured"
)]

pub mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::pki::{server_leaf, strict_ca};
use support::{MockUpstream, Proxy, free_addr};

/// `target/py/bin/sslyze` of this workspace (or `$ZENTINEL_SSLYZE`); the test fails, naming
/// the fix, when it is not there.
fn sslyze() -> PathBuf {
    let path = std::env::var_os("ZENTINEL_SSLYZE").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/py/bin/sslyze"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "sslyze not found at {}: run scripts/setup.sh (it installs sslyze from PyPI into target/py/)",
        path.display()
    );
    path
}

#[test]
fn the_https_listener_passes_sslyze_mozilla_intermediate() {
    let sslyze = sslyze();
    let issuer = strict_ca("Zentinel test CA");
    let (cert, key) = server_leaf(&issuer, &["localhost"]);
    let chain = format!("{cert}{}", issuer.pem());
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "tls" {{ address "{addr}"; protocol "https"; tls {{ cert-file "site.crt"; key-file "site.key"; }} }} }}
observability {{ access-log {{ destination "off"; }}; error-log {{ level "warn"; }} }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    let p = Proxy::start_with_files(
        &config,
        &[
            ("site.crt", &chain),
            ("site.key", &key),
            ("ca.crt", &issuer.pem()),
        ],
        &[addr],
    );
    let json = p.dir().join("sslyze.json");
    let started = Instant::now();
    // Bounded: coreutils' `timeout` ends a hung scan (and kills it 5 s later if need be).
    let out = Command::new("timeout")
        .args(["-k", "5", "120"])
        .arg(&sslyze)
        .arg("--mozilla_config=intermediate")
        // The test CA as the trust store: path validation is part of the profile.
        .arg(format!(
            "--certinfo_ca_file={}",
            p.dir().join("ca.crt").display()
        ))
        .arg(format!("--json_out={}", json.display()))
        .arg(format!("localhost:{}{{{}}}", addr.port(), addr.ip()))
        .output()
        .expect("run sslyze");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("sslyze ({:?}):\n{stdout}\n{stderr}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "sslyze took {:?}",
        started.elapsed()
    );
    assert!(
        out.status.success(),
        "sslyze --mozilla_config=intermediate failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!("localhost:{}: OK - Compliant.", addr.port())),
        "{stdout}"
    );
    suites_are_tls12_and_tls13_aead_only(&json);
}

/// From sslyze's JSON report: TLS 1.2 and 1.3 only, AEAD suites only, forward secrecy.
fn suites_are_tls12_and_tls13_aead_only(json: &std::path::Path) {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let result = &report["server_scan_results"][0]["scan_result"];
    let accepted = |proto: &str| -> Vec<String> {
        result[proto]["result"]["accepted_cipher_suites"]
            .as_array()
            .unwrap_or_else(|| panic!("{proto} in {result}"))
            .iter()
            .map(|s| s["cipher_suite"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for old in [
        "ssl_2_0_cipher_suites",
        "ssl_3_0_cipher_suites",
        "tls_1_0_cipher_suites",
        "tls_1_1_cipher_suites",
    ] {
        assert!(accepted(old).is_empty(), "{old}: {:?}", accepted(old));
    }
    let tls12 = accepted("tls_1_2_cipher_suites");
    let tls13 = accepted("tls_1_3_cipher_suites");
    eprintln!("TLS 1.2: {tls12:?}\nTLS 1.3: {tls13:?}");
    assert!(!tls12.is_empty() && !tls13.is_empty());
    for s in tls12.iter().chain(&tls13) {
        assert!(
            s.contains("_GCM_") || s.contains("CHACHA20_POLY1305"),
            "not an AEAD suite: {s}"
        );
        assert!(!s.contains("_CBC_") && !s.contains("RC4") && !s.contains("3DES"));
    }
    assert!(
        tls12.iter().all(|s| s.contains("ECDHE")),
        "forward secrecy: {tls12:?}"
    );
}
