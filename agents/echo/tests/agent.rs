//! The echo agent end to end: served in-process on a temp-dir socket, called through the
//! protocol crate's `AgentClient`, in both encodings.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use zentinel_agent_echo::{EchoAgent, run};
use zentinel_agent_protocol::{
    AgentClient, AgentResponse, CallError, ClientConfig, Decision, Encoding, Event, HeaderOp,
    RequestHeaders, event_kind,
};

/// Every wait in these tests.
const BOUND: Duration = Duration::from_secs(5);

struct Echo {
    client: AgentClient,
    server: JoinHandle<std::io::Result<()>>,
    _dir: TempDir,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn start(agent: EchoAgent, config: Value, encoding: Encoding) -> Echo {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(run(listener, agent));
    let mut cc = ClientConfig::new("echo", &path);
    cc.config = config;
    cc.encodings = vec![encoding];
    Echo {
        client: AgentClient::start(cc),
        server,
        _dir: dir,
    }
}

async fn ready(echo: &Echo) {
    tokio::time::timeout(BOUND, async {
        while !echo.client.is_ready() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the client connects and handshakes");
}

async fn call(echo: &Echo, id: &str, client_ip: &str) -> AgentResponse {
    let mut event = RequestHeaders {
        correlation_id: id.to_owned(),
        method: "GET".to_owned(),
        uri: "/".to_owned(),
        ..RequestHeaders::default()
    };
    event.metadata.client_ip = client_ip.to_owned();
    tokio::time::timeout(BOUND, echo.client.call(Event::RequestHeaders(event)))
        .await
        .expect("the echo agent answers in time")
        .expect("the call succeeds")
}

fn demo_config() -> Value {
    json!({"request-headers": {"x-demo": "1"}, "response-headers": {"x-seen-by": "echo"}})
}

#[tokio::test]
async fn adds_its_headers_and_the_configured_ones_in_both_encodings() {
    for encoding in [Encoding::Json, Encoding::MsgPack] {
        let echo = start(EchoAgent::new("echo-1"), demo_config(), encoding);
        ready(&echo).await;
        let caps = echo.client.capabilities().unwrap();
        assert_eq!(caps.name, "echo-1");
        assert_eq!(caps.supported_events, [event_kind::REQUEST_HEADERS]);
        assert!(caps.features.config_push);

        let answer = call(&echo, "c-1", "203.0.113.7").await;
        assert_eq!(answer.correlation_id, "c-1");
        assert_eq!(answer.decision, Decision::Allow);
        assert_eq!(
            answer.request_headers,
            [
                HeaderOp::set("x-demo", "1"),
                HeaderOp::set("x-echo-agent", "echo-1"),
                HeaderOp::set("x-echo-client-ip", "203.0.113.7"),
            ],
            "{encoding}"
        );
        assert_eq!(
            answer.response_headers,
            [HeaderOp::add("x-seen-by", "echo")]
        );
    }
}

#[tokio::test]
async fn without_config_only_its_own_headers_are_added() {
    let echo = start(EchoAgent::new("echo"), Value::Null, Encoding::MsgPack);
    ready(&echo).await;
    let answer = call(&echo, "c-1", "2001:db8::7").await;
    assert_eq!(
        answer.request_headers,
        [
            HeaderOp::set("x-echo-agent", "echo"),
            HeaderOp::set("x-echo-client-ip", "2001:db8::7"),
        ]
    );
    assert!(answer.response_headers.is_empty());
}

#[tokio::test]
async fn configure_replaces_the_headers_and_a_bad_one_keeps_them() {
    let echo = start(EchoAgent::new("echo"), demo_config(), Encoding::Json);
    ready(&echo).await;
    echo.client
        .reconfigure(json!({"request-headers": {"x-demo": "2", "x-more": "yes"}}));
    // `Configure` and the next call travel in order on the one connection.
    let answer = call(&echo, "c-2", "192.0.2.1").await;
    assert_eq!(
        answer.request_headers[..2],
        [HeaderOp::set("x-demo", "2"), HeaderOp::set("x-more", "yes")]
    );
    assert!(answer.response_headers.is_empty());

    echo.client
        .reconfigure(json!({"request-headers": {"bad name": "x"}}));
    let answer = call(&echo, "c-3", "192.0.2.1").await;
    assert_eq!(
        answer.request_headers[..2],
        [HeaderOp::set("x-demo", "2"), HeaderOp::set("x-more", "yes")],
        "the refused configuration changed nothing"
    );
}

#[tokio::test]
async fn a_bad_handshake_config_refuses_the_proxy() {
    let echo = start(
        EchoAgent::new("echo"),
        json!({"request-headers": {"x-a": {"nested": 1}}}),
        Encoding::Json,
    );
    tokio::time::timeout(BOUND, async {
        while echo.client.stats().handshake_failures == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the handshake is refused");
    assert!(!echo.client.is_ready());
    let event = Event::RequestHeaders(RequestHeaders {
        correlation_id: "c-1".to_owned(),
        ..RequestHeaders::default()
    });
    assert_eq!(echo.client.call(event).await, Err(CallError::Rejected));
}
