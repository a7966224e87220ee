//! End to end: the `varnishtest` scenarios in `tests/varnish/*.vtc` — the language HAProxy's
//! regression suite is written in — against the binary. For each file a proxy is started
//! with one route (WebSocket allowed) to the scripted origin `s1`, and `varnishtest` runs
//! the file with these macros:
//!
//! - `origin`: `"127.0.0.1 PORT"`, for `server s1 -listen "${origin}"`; the port is picked
//!   (free and reserved in this process) before the proxy starts, so its configuration
//!   already names it;
//! - `origin_port`: the bare port;
//! - `proxy`: `"127.0.0.1 PORT"`, the proxy's listener, for `client c1 -connect "${proxy}"`;
//! - `vtcdir`: the directory of the scenarios (helper scripts).
//!
//! `varnishtest` comes with Debian's `varnish` package (`scripts/setup.sh` installs it).
//! Without it this test fails: it never skips.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Proxy, free_addr, free_port};

/// `varnishtest -t`: the bound on one scenario.
const VTC_TIMEOUT_SECS: u64 = 30;
/// The bound on one `varnishtest` process, kept a little above its own.
const RUN_TIMEOUT: Duration = Duration::from_secs(VTC_TIMEOUT_SECS + 15);
/// The scenarios this suite is known to have; a missing one is a failure, not a skip.
const EXPECTED: &[&str] = &[
    "bad_origin_framing.vtc",
    "early_response.vtc",
    "early_response_completed.vtc",
    "pipelining.vtc",
    "response_cl_te.vtc",
    "trailers.vtc",
    "upgrade_before_101.vtc",
];

fn vtc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/varnish")
}

/// Fails, saying what to install, when `varnishtest` is not on the PATH.
fn varnishtest() -> &'static str {
    let found = Command::new("varnishtest")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "varnishtest is not installed: it comes with Debian's `varnish` package \
         (`apt-get install varnish`, or run scripts/setup.sh). These scenarios do not skip."
    );
    "varnishtest"
}

/// Runs one scenario against a fresh proxy; `Err` with the whole log when it fails.
fn run(bin: &str, vtc: &Path) -> Result<(), String> {
    let origin_port = free_port();
    let proxy_addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{proxy_addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; error-log {{ level "warn"; }} }}
upstreams {{ upstream "u" {{ target "127.0.0.1:{origin_port}"; timeouts {{ read-ms 5000; }} }} }}
routes {{ route "all" {{ upstream "u"; websocket #true; }} }}"#
    );
    let proxy = Proxy::start(&config, &[proxy_addr]);
    let mut child = Command::new(bin)
        .arg("-t")
        .arg(VTC_TIMEOUT_SECS.to_string())
        .arg("-D")
        .arg(format!("origin=127.0.0.1 {origin_port}"))
        .arg("-D")
        .arg(format!("origin_port={origin_port}"))
        .arg("-D")
        .arg(format!("proxy={} {}", proxy_addr.ip(), proxy_addr.port()))
        .arg("-D")
        .arg(format!("vtcdir={}", vtc_dir().display()))
        .arg(vtc)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: cannot run varnishtest: {e}", vtc.display()))?;
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("varnishtest: try_wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("varnishtest: output");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(format!(
            "{}: varnishtest exited with {s}\n{log}\n--- proxy stderr ---\n{}",
            vtc.display(),
            proxy.stderr()
        )),
        None => Err(format!(
            "{}: varnishtest still running after {RUN_TIMEOUT:?}, killed\n{log}",
            vtc.display()
        )),
    }
}

#[test]
fn varnishtest_scenarios_pass_against_the_proxy() {
    let bin = varnishtest();
    let mut files: Vec<PathBuf> = std::fs::read_dir(vtc_dir())
        .expect("read tests/varnish")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "vtc"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for want in EXPECTED {
        assert!(
            names.iter().any(|n| n == want),
            "tests/varnish/{want} is missing (found {names:?})"
        );
    }
    let failures: Vec<String> = files.iter().filter_map(|f| run(bin, f).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
