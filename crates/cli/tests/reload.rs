//! Reload on SIGHUP, end to end: a new configuration serves the next request; a broken one,
//! or one that changes what cannot change live, leaves the old one serving untouched; 20
//! reloads under continuous traffic drop nothing and never mix two configurations in one
//! response; certificates rotate for new handshakes; agents get their new `config {}`.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::agent::MockAgent;
use support::pki::{ca, leaf};
use support::{MockUpstream, Proxy, free_addr, get, wait_until};

const HUP: i32 = 1;

/// A configuration whose route tags responses with `name` and sends them to `upstream`.
fn tagged(addr: SocketAddr, name: &str, upstream: SocketAddr) -> String {
    format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; error-log {{ level "info"; }} }}
upstreams {{ upstream "u" {{ target "{upstream}"; }} }}
routes {{ route "r" {{ upstream "u"; response-headers {{ set "x-config" "{name}"; }} }} }}"#
    )
}

/// Sends SIGHUP and waits until the proxy has logged one more outcome (`reloaded` or
/// `refused`) than before.
fn reload(p: &Proxy) {
    let outcomes = |p: &Proxy| {
        let err = p.stderr();
        err.matches("configuration reloaded").count() + err.matches("reload refused").count()
    };
    let before = outcomes(p);
    p.signal(HUP);
    wait_until(Duration::from_secs(10), "the reload outcome", || {
        outcomes(p) > before
    });
}

fn reloads(p: &Proxy) -> usize {
    p.stderr().matches("configuration reloaded").count()
}

#[test]
fn a_reload_serves_the_next_request_and_a_bad_one_changes_nothing() {
    let (a, b) = (MockUpstream::start("a"), MockUpstream::start("b"));
    let addr = free_addr();
    let p = Proxy::start(&tagged(addr, "one", a.addr()), &[addr]);
    assert_eq!(get(addr, "h.test", "/").header("x-config"), Some("one"));

    p.write_file("zentinel.kdl", &tagged(addr, "two", b.addr()));
    reload(&p);
    assert_eq!(reloads(&p), 1, "{}", p.stderr());
    let r = get(addr, "h.test", "/");
    assert_eq!(
        r.header("x-config"),
        Some("two"),
        "visible on the next request"
    );
    assert!(r.text().starts_with("upstream=b"));

    // Invalid: the same diagnostic as `zentinel validate`, and the old configuration serves.
    let broken = tagged(addr, "three", a.addr()).replace("upstream \"u\";", "upstrem \"u\";");
    p.write_file("zentinel.kdl", &broken);
    reload(&p);
    let err = p.stderr();
    assert!(err.contains("reload refused"), "{err}");
    assert!(
        err.contains("did you mean"),
        "the validator's diagnostic: {err}"
    );
    assert_eq!(get(addr, "h.test", "/").header("x-config"), Some("two"));

    // A listener address cannot move live: refused, named, nothing applied.
    let moved = tagged(free_addr(), "four", a.addr());
    p.write_file("zentinel.kdl", &moved);
    reload(&p);
    let err = p.stderr();
    assert!(
        err.contains("need a restart") && err.contains("listener"),
        "{err}"
    );
    assert_eq!(get(addr, "h.test", "/").header("x-config"), Some("two"));

    // A setting this build cannot carry out is refused on reload as at start-up.
    let unsupported = tagged(addr, "five", a.addr())
        .replace(
            "routes {",
            r#"agents { agent "ws" { transport { unix-socket "/run/ws.sock"; }; events "websocket-frame"; } }
routes {"#,
        )
        .replace(r#"upstream "u"; response"#, r#"upstream "u"; filters "ws"; response"#);
    p.write_file("zentinel.kdl", &unsupported);
    reload(&p);
    assert!(
        p.stderr().contains("cannot carry out these settings yet"),
        "{}",
        p.stderr()
    );
    assert_eq!(get(addr, "h.test", "/").header("x-config"), Some("two"));
    assert_eq!(reloads(&p), 1);
}

#[test]
fn twenty_reloads_under_load_drop_nothing_and_mix_nothing() {
    let (a, b) = (MockUpstream::start("a"), MockUpstream::start("b"));
    let addr = free_addr();
    let configs = [tagged(addr, "a", a.addr()), tagged(addr, "b", b.addr())];
    let p = Proxy::start(&configs[0], &[addr]);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut seen = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let r = get(addr, "h.test", "/");
                    seen.push((r.status, r.header("x-config").map(str::to_owned), r.text()));
                }
                seen
            })
        })
        .collect();
    for i in 0..20 {
        p.write_file("zentinel.kdl", &configs[(i + 1) % 2]);
        reload(&p);
        thread::sleep(Duration::from_millis(30));
    }
    stop.store(true, Ordering::SeqCst);
    let seen: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("no client request failed"))
        .collect();
    assert_eq!(reloads(&p), 20, "{}", p.stderr());
    assert!(
        seen.len() > 40,
        "continuous traffic: {} requests",
        seen.len()
    );
    for (status, tag, body) in &seen {
        assert_eq!(*status, 200, "no request failed");
        let tag = tag.as_deref().unwrap_or("none");
        assert!(
            body.starts_with(&format!("upstream={tag} ")),
            "one configuration per response: tag {tag}, body {body}"
        );
    }
    for tag in ["a", "b"] {
        assert!(seen.iter().any(|(_, t, _)| t.as_deref() == Some(tag)));
    }
}

/// `curl` over TLS to `api.test` at `addr`, trusting only `ca_file`; the exit code.
fn curl_trusting(dir: &std::path::Path, addr: SocketAddr, ca_file: &str) -> i32 {
    let resolve = format!("api.test:{}:{}", addr.port(), addr.ip());
    Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "--max-time",
            "10",
            "--cacert",
            ca_file,
        ])
        .args(["--resolve", &resolve])
        .arg(format!("https://api.test:{}/", addr.port()))
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("curl runs")
        .code()
        .unwrap_or(-1)
}

#[test]
fn certificates_rotate_for_new_handshakes() {
    let (old_ca, new_ca) = (ca("old CA"), ca("new CA"));
    let (old_cert, old_key) = leaf(&old_ca, &["api.test"], false);
    let (new_cert, new_key) = leaf(&new_ca, &["api.test"], false);
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "tls" {{ address "{addr}"; protocol "https"
    tls {{ cert-file "site.crt"; key-file "site.key"; }} }} }}
observability {{ access-log {{ destination "off"; }}; error-log {{ level "info"; }} }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    let (old_pem, new_pem) = (old_ca.pem(), new_ca.pem());
    let files = [
        ("site.crt", old_cert.as_str()),
        ("site.key", old_key.as_str()),
        ("old-ca.crt", old_pem.as_str()),
        ("new-ca.crt", new_pem.as_str()),
    ];
    let p = Proxy::start_with_files(&config, &files, &[addr]);
    assert_eq!(curl_trusting(p.dir(), addr, "old-ca.crt"), 0);
    assert_ne!(curl_trusting(p.dir(), addr, "new-ca.crt"), 0);

    p.write_file("site.crt", &new_cert);
    p.write_file("site.key", &new_key);
    reload(&p);
    assert_eq!(reloads(&p), 1, "{}", p.stderr());
    assert_eq!(
        curl_trusting(p.dir(), addr, "new-ca.crt"),
        0,
        "the new certificate"
    );
    assert_ne!(curl_trusting(p.dir(), addr, "old-ca.crt"), 0);
}

#[test]
fn agents_get_their_new_config_on_reload() {
    let agent = MockAgent::start();
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let config = |mode: &str| {
        format!(
            r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; error-log {{ level "info"; }} }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
agents {{ agent "a" {{ transport {{ unix-socket "{}"; }}; events "request-headers"
    config {{ mode "{mode}"; }} }} }}
routes {{ route "r" {{ upstream "u"; filters "a"; }} }}"#,
            up.addr(),
            agent.socket().display()
        )
    };
    let p = Proxy::start(&config("first"), &[addr]);
    assert_eq!(get(addr, "h.test", "/").status, 200);
    p.write_file("zentinel.kdl", &config("second"));
    reload(&p);
    assert_eq!(reloads(&p), 1, "{}", p.stderr());
    assert_eq!(get(addr, "h.test", "/").status, 200);
    let modes: Vec<_> = agent
        .configs()
        .iter()
        .map(|c| c["mode"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(modes.contains(&"second".to_owned()), "{modes:?}");
}
