//! An agent that is a real process, killed with SIGKILL mid-traffic and started again: the
//! proxy notices, applies the failure mode on the agent's routes only, and reconnects on its
//! own. Uses the `zentinel-agent-chaos` binary of this workspace (built here if the test run
//! did not build it already).

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::agent::{THREE_ROUTES, proxy_config};
use support::{MockUpstream, Proxy, free_addr, get, wait_until};

/// The chaos agent binary next to the `zentinel` binary, built first when missing.
fn chaos_binary() -> PathBuf {
    let zentinel = PathBuf::from(env!("CARGO_BIN_EXE_zentinel"));
    let dir = zentinel.parent().expect("the binary's directory");
    let bin = dir.join("zentinel-agent-chaos");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let target = dir.parent().expect("the target directory");
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "zentinel-agent-chaos", "--target-dir"])
            .arg(target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building zentinel-agent-chaos failed");
    }
    bin
}

fn spawn_agent(bin: &Path, socket: &Path) -> Child {
    let child = Command::new(bin)
        .arg("--socket")
        .arg(socket)
        .args(["--mode", "allow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the chaos agent starts");
    wait_until(Duration::from_secs(10), "the agent's socket", || {
        std::os::unix::net::UnixStream::connect(socket).is_ok()
    });
    child
}

#[test]
fn an_agent_process_killed_mid_traffic_and_restarted_is_reconnected() {
    let bin = chaos_binary();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("chaos.sock");
    let mut agent = spawn_agent(&bin, &socket);
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let extra = "timeout-ms 300; circuit-breaker { failure-threshold 10000; }";
    let config = proxy_config(
        addr,
        up.addr(),
        &socket,
        r#""request-headers""#,
        extra,
        THREE_ROUTES,
    );
    let _p = Proxy::start(&config, &[addr]);
    assert_eq!(get(addr, "h.test", "/closed").status, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut statuses = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                statuses.push(get(addr, "h.test", "/plain").status);
                thread::sleep(Duration::from_millis(5));
            }
            statuses
        })
    };
    thread::sleep(Duration::from_millis(200));
    agent.kill().unwrap();
    agent.wait().unwrap();
    let t = Instant::now();
    assert_eq!(
        get(addr, "h.test", "/closed").status,
        503,
        "fail-closed while it is gone"
    );
    assert!(
        t.elapsed() < Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        get(addr, "h.test", "/open").status,
        200,
        "fail-open continues"
    );

    let mut agent = spawn_agent(&bin, &socket);
    wait_until(Duration::from_secs(10), "the proxy reconnects", || {
        get(addr, "h.test", "/closed").status == 200
    });
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let statuses = traffic.join().unwrap();
    assert!(statuses.len() > 10, "{} requests", statuses.len());
    assert!(
        statuses.iter().all(|s| *s == 200),
        "the route without the agent never failed: {statuses:?}"
    );
    agent.kill().unwrap();
    agent.wait().unwrap();
}
