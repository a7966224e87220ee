//! Every chaos mode as the proxy's client sees it: the agent runs in-process on a temp-dir
//! socket and is called through the protocol crate's `AgentClient`.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use zentinel_agent_chaos::{MODE_HEADER, Mode, Script, run};
use zentinel_agent_protocol::{
    AgentClient, AgentResponse, CallError, ClientConfig, ClientStats, Decision, Encoding, Event,
    RequestHeaders,
};

/// Every wait for something that must happen.
const BOUND: Duration = Duration::from_secs(5);
/// How long a call that must not be answered is given.
const PATIENCE: Duration = Duration::from_millis(300);

struct Chaos {
    client: AgentClient,
    server: JoinHandle<std::io::Result<()>>,
    _dir: TempDir,
}

impl Drop for Chaos {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn start_with(script: Script, configure: impl FnOnce(&mut ClientConfig)) -> Chaos {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chaos.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(run(listener, script));
    let mut cc = ClientConfig::new("chaos", &path);
    configure(&mut cc);
    Chaos {
        client: AgentClient::start(cc),
        server,
        _dir: dir,
    }
}

async fn start(script: Script) -> Chaos {
    let chaos = start_with(script, |_| {});
    until("the client is ready", || chaos.client.is_ready()).await;
    chaos
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(BOUND, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

fn event(id: &str, mode: Option<&str>) -> Event {
    let mut req = RequestHeaders {
        correlation_id: id.to_owned(),
        method: "GET".to_owned(),
        uri: "/".to_owned(),
        ..RequestHeaders::default()
    };
    if let Some(m) = mode {
        req.headers
            .insert(MODE_HEADER.to_owned(), vec![m.to_owned()]);
    }
    Event::RequestHeaders(req)
}

async fn answered(chaos: &Chaos, id: &str, mode: Option<&str>) -> AgentResponse {
    tokio::time::timeout(BOUND, chaos.client.call(event(id, mode)))
        .await
        .expect("the call ends in time")
        .expect("the call is answered")
}

/// Asserts that a call gets no answer within [`PATIENCE`].
async fn unanswered(chaos: &Chaos, id: &str) {
    let waited = tokio::time::timeout(PATIENCE, chaos.client.call(event(id, None))).await;
    assert!(waited.is_err(), "expected no answer, got {waited:?}");
}

/// Asserts that a call fails because the agent broke the protocol, and that it was counted.
async fn broken(mode: Mode) -> ClientStats {
    let chaos = start(Script::new(mode)).await;
    let result = tokio::time::timeout(BOUND, chaos.client.call(event("c-1", None)))
        .await
        .expect("the call ends in time");
    assert!(
        matches!(result, Err(CallError::Protocol(_))),
        "{mode}: {result:?}"
    );
    until("the error is counted", || {
        chaos.client.stats().protocol_errors > 0
    })
    .await;
    chaos.client.stats()
}

#[tokio::test]
async fn allow_answers_in_both_encodings() {
    for encoding in [Encoding::MsgPack, Encoding::Json] {
        let chaos = start_with(Script::new(Mode::Allow), |cc| cc.encodings = vec![encoding]);
        until("the client is ready", || chaos.client.is_ready()).await;
        let answer = answered(&chaos, "c-1", None).await;
        assert_eq!(answer.correlation_id, "c-1");
        assert_eq!(answer.decision, Decision::Allow, "{encoding}");
        assert_eq!(chaos.client.capabilities().unwrap().agent_id, "chaos");
    }
}

#[tokio::test]
async fn block_answers_403() {
    let chaos = start(Script::new(Mode::Block)).await;
    let answer = answered(&chaos, "c-1", None).await;
    assert!(
        matches!(answer.decision, Decision::Block { status: 403, .. }),
        "{answer:?}"
    );
}

#[tokio::test]
async fn delay_answers_after_the_delay() {
    let delay = Duration::from_millis(300);
    let chaos = start(Script::new(Mode::Delay).with_delay(delay)).await;
    let started = Instant::now();
    // Two calls at once: delays run side by side, not one after the other.
    let (a, b) = tokio::join!(answered(&chaos, "c-1", None), answered(&chaos, "c-2", None));
    let elapsed = started.elapsed();
    assert_eq!((a.decision, b.decision), (Decision::Allow, Decision::Allow));
    assert!(elapsed >= delay, "answered after {elapsed:?}");
    assert!(elapsed < delay * 2, "answered after {elapsed:?}");
}

#[tokio::test]
async fn hang_never_answers_and_keeps_the_connection() {
    let chaos = start(Script::new(Mode::Hang)).await;
    unanswered(&chaos, "c-1").await;
    assert!(chaos.client.is_ready(), "the connection stays open");
    let stats = chaos.client.stats();
    assert_eq!((stats.protocol_errors, stats.reconnects), (0, 0));
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    broken(Mode::Garbage).await;
}

#[tokio::test]
async fn oversize_is_a_protocol_error() {
    broken(Mode::Oversize).await;
}

#[tokio::test]
async fn unknown_type_is_a_protocol_error() {
    broken(Mode::UnknownType).await;
}

#[tokio::test]
async fn a_wrong_correlation_id_is_dropped_and_counted() {
    let chaos = start(Script::new(Mode::WrongCorrelation)).await;
    unanswered(&chaos, "c-1").await;
    until("the stray answer is counted", || {
        chaos.client.stats().unknown_correlation > 0
    })
    .await;
    assert_eq!(chaos.client.stats().protocol_errors, 0);
    assert!(chaos.client.is_ready());
}

#[tokio::test]
async fn slow_handshake_delays_readiness() {
    let delay = Duration::from_millis(300);
    let started = Instant::now();
    let chaos = start(Script::new(Mode::SlowHandshake).with_delay(delay)).await;
    assert!(
        started.elapsed() >= delay,
        "ready after {:?}",
        started.elapsed()
    );
    assert_eq!(
        answered(&chaos, "c-1", None).await.decision,
        Decision::Allow
    );

    // A client less patient than the agent never gets a handshake.
    let impatient = start_with(Script::new(Mode::SlowHandshake).with_delay(BOUND), |cc| {
        cc.handshake_timeout = Duration::from_millis(50);
    });
    until("the handshake times out", || {
        impatient.client.stats().handshake_failures > 0
    })
    .await;
    assert!(!impatient.client.is_ready());
}

#[tokio::test]
async fn crash_after_answers_its_budget_then_stops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chaos.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(run(listener, Script::new(Mode::CrashAfter).with_calls(2)));
    let client = AgentClient::start(ClientConfig::new("chaos", &path));
    until("the client is ready", || client.is_ready()).await;
    for id in ["c-1", "c-2"] {
        let answer = tokio::time::timeout(BOUND, client.call(event(id, None))).await;
        assert_eq!(answer.unwrap().unwrap().decision, Decision::Allow);
    }
    let stopped = tokio::time::timeout(BOUND, server)
        .await
        .expect("run returns")
        .unwrap();
    let error = stopped.unwrap_err();
    assert_eq!(
        error.to_string(),
        "crash-after: stopped after answering 2 calls"
    );
    until("the connection is gone", || !client.is_ready()).await;
}

#[tokio::test]
async fn per_request_headers_choose_the_mode() {
    let script = Script::new(Mode::Block)
        .with_per_request(true)
        .with_delay(Duration::from_millis(50));
    let chaos = start(script).await;
    let decision = |a: AgentResponse| a.decision;
    assert_eq!(
        decision(answered(&chaos, "c-1", Some("allow")).await),
        Decision::Allow
    );
    assert!(matches!(
        decision(answered(&chaos, "c-2", None).await),
        Decision::Block { .. }
    ));
    assert!(matches!(
        decision(answered(&chaos, "c-3", Some("no-such-mode")).await),
        Decision::Block { .. }
    ));
    let started = Instant::now();
    assert_eq!(
        decision(answered(&chaos, "c-4", Some("delay")).await),
        Decision::Allow
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    // A hung call does not hold up the others on the same connection.
    let hung = tokio::time::timeout(PATIENCE, chaos.client.call(event("c-5", Some("hang"))));
    let (hung, fine) = tokio::join!(hung, answered(&chaos, "c-6", Some("allow")));
    assert!(hung.is_err());
    assert_eq!(fine.decision, Decision::Allow);
}
