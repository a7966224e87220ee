//! The `zentinel-agent-chaos` binary: exit status after `crash-after`, a clean exit on
//! SIGTERM, and a stale socket file replaced at start.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use zentinel_agent_protocol::{AgentClient, ClientConfig, Decision, Event, RequestHeaders};

/// Every wait in these tests.
const BOUND: Duration = Duration::from_secs(10);

/// Kills the child if a test fails before it exits.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Agent {
    fn spawn(socket: &Path, args: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_zentinel-agent-chaos"))
            .arg("--socket")
            .arg(socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self(child)
    }

    /// Waits (bounded) for the process to exit.
    async fn exit(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < BOUND, "the agent did not exit");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn ready_client(socket: &Path) -> AgentClient {
    let client = AgentClient::start(ClientConfig::new("chaos", socket));
    tokio::time::timeout(BOUND, async {
        while !client.is_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the agent starts and handshakes");
    client
}

fn event(id: &str) -> Event {
    Event::RequestHeaders(RequestHeaders {
        correlation_id: id.to_owned(),
        ..RequestHeaders::default()
    })
}

#[tokio::test]
async fn crash_after_exits_with_status_1_after_n_calls() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("chaos.sock");
    let mut agent = Agent::spawn(&socket, &["--mode", "crash-after", "--calls", "3"]);
    let client = ready_client(&socket).await;
    for i in 0..3 {
        let answer = tokio::time::timeout(BOUND, client.call(event(&format!("c-{i}")))).await;
        assert_eq!(
            answer.unwrap().unwrap().decision,
            Decision::Allow,
            "call {i}"
        );
    }
    let status = agent.exit().await;
    assert_eq!(status.code(), Some(1), "{status}");
}

#[tokio::test]
async fn sigterm_exits_cleanly_and_removes_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("chaos.sock");
    // A stale socket file from an earlier run, with nobody listening.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut agent = Agent::spawn(&socket, &["--mode", "block"]);
    let client = ready_client(&socket).await;
    let answer = tokio::time::timeout(BOUND, client.call(event("c-1"))).await;
    assert!(matches!(
        answer.unwrap().unwrap().decision,
        Decision::Block { status: 403, .. }
    ));
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(agent.0.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let status = agent.exit().await;
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(!socket.exists(), "the socket file is removed");
}

#[tokio::test]
async fn a_bad_mode_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::spawn(&dir.path().join("chaos.sock"), &["--mode", "explode"]);
    let status = agent.exit().await;
    assert_eq!(status.code(), Some(2), "{status}");
}
