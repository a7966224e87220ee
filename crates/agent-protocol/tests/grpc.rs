//! The client against the SDK server over gRPC, on loopback TCP: the same protocol as over the
//! Unix socket, carried by one `Session` stream per connection. Round trips in both
//! encodings, multiplexing, the agent going away and coming back on the same port, size
//! limits in both directions, cancellation, and the connect bound. Every wait is bounded.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

#[path = "support/fake.rs"]
#[allow(
    dead_code,
    reason = "the raw Unix-socket helpers serve tests/transport.rs"
)]
mod fake;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use fake::{TestAgent, bounded, eventually, headers_event};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use zentinel_agent_protocol::{
    Agent, AgentClient, AgentResponse, CallError, Capabilities, ClientConfig, Decision, Encoding,
    Endpoint, HeaderOp, Message, RequestComplete, RequestHeaders, ServeOptions, event_kind,
};

fn options(encodings: Vec<Encoding>) -> ServeOptions {
    let mut o = ServeOptions::default();
    o.encodings = encodings;
    o
}

fn grpc_config(addr: SocketAddr) -> ClientConfig {
    let mut config = ClientConfig::grpc("test", addr.to_string());
    config.config = json!({"v": 1});
    config.proxy_version = "test".into();
    config
}

fn grpc_client(addr: SocketAddr) -> AgentClient {
    AgentClient::start(grpc_config(addr))
}

/// Serves `agent` over gRPC on a fresh loopback port.
async fn start_grpc<A: Agent>(
    agent: Arc<A>,
    options: ServeOptions,
) -> (SocketAddr, JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(zentinel_agent_protocol::serve_grpc_with(
        listener, agent, options,
    ));
    (addr, server)
}

/// Serves `agent` on `addr` again once the port is free.
async fn restart_grpc<A: Agent>(
    addr: SocketAddr,
    agent: Arc<A>,
) -> JoinHandle<std::io::Result<()>> {
    let listener = bounded("port free again", async {
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => return listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    tokio::spawn(zentinel_agent_protocol::serve_grpc_with(
        listener,
        agent,
        ServeOptions::default(),
    ))
}

#[tokio::test]
async fn handshake_and_calls_round_trip_in_both_encodings() {
    for encoding in [Encoding::Json, Encoding::MsgPack] {
        let agent = Arc::new(TestAgent::default());
        let (addr, server) = start_grpc(agent.clone(), options(vec![encoding])).await;
        let client = grpc_client(addr);
        eventually("ready", || client.is_ready()).await;
        assert_eq!(client.capabilities().unwrap().agent_id, "test-agent");
        assert_eq!(*agent.configs.lock().unwrap(), vec![json!({"v": 1})]);

        let r = bounded("call", client.call(headers_event("c1", "/admin")))
            .await
            .unwrap();
        assert_eq!(r.correlation_id, "c1");
        assert!(matches!(r.decision, Decision::Block { status: 403, .. }));
        let r = bounded("call", client.call(headers_event("c2", "/")))
            .await
            .unwrap();
        assert_eq!(
            (r.correlation_id.as_str(), &r.decision),
            ("c2", &Decision::Allow)
        );

        client.notify(RequestComplete {
            correlation_id: "c2".into(),
            status: 200,
            ..RequestComplete::default()
        });
        eventually("request complete", || {
            agent.completed.lock().unwrap().len() == 1
        })
        .await;
        client.reconfigure(json!({"v": 2}));
        eventually("configured", || agent.configs.lock().unwrap().len() == 2).await;
        assert_eq!(client.stats().calls, 2);
        assert_eq!(client.stats().protocol_errors, 0);
        server.abort();
    }
}

#[tokio::test]
async fn the_endpoint_may_name_the_http_scheme() {
    let (addr, _server) = start_grpc(Arc::new(TestAgent::default()), ServeOptions::default()).await;
    let endpoint = Endpoint::Grpc(format!("http://{addr}"));
    let client = AgentClient::start(ClientConfig::with_endpoint("test", endpoint));
    eventually("ready", || client.is_ready()).await;
    let r = bounded("call", client.call(headers_event("s1", "/"))).await;
    assert_eq!(r.unwrap().decision, Decision::Allow);
}

#[tokio::test]
async fn fifty_concurrent_calls_share_one_session_and_are_answered_out_of_order() {
    let agent = Arc::new(TestAgent::default());
    let (addr, _server) = start_grpc(agent.clone(), ServeOptions::default()).await;
    let client = grpc_client(addr);
    eventually("ready", || client.is_ready()).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..50u64 {
        let client = client.clone();
        calls.spawn(async move {
            let id = format!("call-{i}");
            let uri = format!("/delay/{}", (50 - i) * 4);
            (i, client.call(headers_event(&id, &uri)).await)
        });
    }
    let mut order = vec![0; 50];
    while let Some(done) = bounded("calls", calls.join_next()).await {
        let (i, r) = done.unwrap();
        let r = r.unwrap();
        assert_eq!(r.correlation_id, format!("call-{i}"));
        order[usize::try_from(i).unwrap()] = order_of(&r);
    }
    assert!(
        order[49] < order[0],
        "the shortest delay answered first: {order:?}"
    );
    assert_eq!(client.stats().calls, 50);
    assert_eq!(
        agent.configs.lock().unwrap().len(),
        1,
        "one handshake, one session"
    );
}

fn order_of(r: &AgentResponse) -> usize {
    r.response_headers
        .iter()
        .find_map(|op| match op {
            HeaderOp::Add { name, value } if name == "x-order" => value.parse().ok(),
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn a_stopped_agent_fails_pending_calls_and_later_calls_are_unavailable() {
    let (addr, server) = start_grpc(Arc::new(TestAgent::default()), ServeOptions::default()).await;
    let client = grpc_client(addr);
    eventually("ready", || client.is_ready()).await;
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.call(headers_event("h1", "/hang")).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.abort();
    let aborted = tokio::time::Instant::now();
    let failed = bounded("pending call fails", pending).await.unwrap();
    assert_eq!(failed, Err(CallError::Disconnected));
    assert!(aborted.elapsed() < Duration::from_secs(1), "fails promptly");
    eventually("not ready", || !client.is_ready()).await;
    let started = tokio::time::Instant::now();
    assert_eq!(
        client.call(headers_event("h2", "/")).await,
        Err(CallError::Unavailable)
    );
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "fails at once"
    );
}

#[tokio::test]
async fn the_client_reconnects_when_the_agent_comes_back_on_the_same_port() {
    let agent = Arc::new(TestAgent::default());
    let (addr, server) = start_grpc(agent.clone(), ServeOptions::default()).await;
    let client = grpc_client(addr);
    eventually("ready", || client.is_ready()).await;
    server.abort();
    eventually("down", || !client.is_ready()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _server = restart_grpc(addr, agent.clone()).await;
    eventually("reconnected", || client.is_ready()).await;
    let r = bounded("call", client.call(headers_event("r1", "/"))).await;
    assert_eq!(r.unwrap().decision, Decision::Allow);
    assert!(client.stats().reconnects >= 1);
    assert_eq!(agent.configs.lock().unwrap().len(), 2, "a second handshake");
}

/// Answers every request with an `x-pad` header of the length in its URI (`/pad/<n>`).
#[derive(Debug)]
struct PaddingAgent;

fn padded(correlation_id: &str, n: usize) -> AgentResponse {
    AgentResponse::allow(correlation_id).with_response_header(HeaderOp::add("x-pad", "p".repeat(n)))
}

impl Agent for PaddingAgent {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("padding", [event_kind::REQUEST_HEADERS])
    }

    async fn on_request_headers(&self, event: RequestHeaders) -> AgentResponse {
        let n = event
            .uri
            .strip_prefix("/pad/")
            .map_or(0, |n| n.parse().unwrap());
        padded(&event.correlation_id, n)
    }
}

/// The padding that makes the JSON answer to `id` exactly `payload` bytes long.
fn padding_for(id: &str, payload: usize) -> usize {
    let mut out = BytesMut::new();
    Message::AgentResponse(padded(id, 0))
        .encode(Encoding::Json, u32::MAX, &mut out)
        .unwrap();
    payload - (out.len() - 5)
}

#[tokio::test]
async fn an_oversize_frame_from_the_agent_closes_the_session_and_is_counted() {
    const MAX: u32 = 512;
    let (addr, _server) = start_grpc(Arc::new(PaddingAgent), options(vec![Encoding::Json])).await;
    let mut config = grpc_config(addr);
    config.max_frame = MAX;
    let client = AgentClient::start(config);
    eventually("ready", || client.is_ready()).await;
    let largest = padding_for("p1", MAX as usize - 1);
    let r = bounded(
        "largest frame",
        client.call(headers_event("p1", &format!("/pad/{largest}"))),
    );
    assert!(
        r.await.is_ok(),
        "type byte plus payload == max_frame is fine"
    );

    // One byte over (refused by the carrier's own check), and far over (refused by tonic's
    // message limit from the gRPC header).
    let one_over = padding_for("p2", MAX as usize);
    let cases = [
        (
            "p2",
            one_over,
            "frame of 513 bytes exceeds the maximum of 512",
        ),
        ("p3", 4 * MAX as usize, "message length too large"),
    ];
    for (n, (id, pad, expected)) in cases.into_iter().enumerate() {
        let uri = format!("/pad/{pad}");
        let r = bounded("oversize", client.call(headers_event(id, &uri))).await;
        let Err(CallError::Protocol(why)) = r else {
            panic!("{id}: expected a protocol error, got {r:?}");
        };
        assert!(why.contains(expected), "{id}: {why}");
        assert_eq!(client.stats().protocol_errors, n as u64 + 1);
        eventually("reconnected", || client.is_ready()).await;
    }
    let r = bounded("call after", client.call(headers_event("p4", "/pad/1"))).await;
    assert!(r.is_ok());
    assert!(client.stats().reconnects >= 2);
}

#[tokio::test]
async fn an_oversize_frame_from_the_proxy_closes_the_session_at_the_agent() {
    let mut small = ServeOptions::default();
    small.max_frame = 2048; // room for its handshake answer, not for the event below
    let (addr, _server) = start_grpc(Arc::new(TestAgent::default()), small).await;
    let client = grpc_client(addr);
    eventually("ready", || client.is_ready()).await;
    let long_uri = format!("/{}", "a".repeat(4096));
    let r = bounded("oversize call", client.call(headers_event("o1", &long_uri))).await;
    assert_eq!(
        r,
        Err(CallError::Disconnected),
        "the agent closed the session"
    );
    eventually("reconnected", || client.is_ready()).await;
    let r = bounded("call after", client.call(headers_event("o2", "/"))).await;
    assert_eq!(r.unwrap().decision, Decision::Allow);
    assert!(client.stats().reconnects >= 1);
}

#[tokio::test]
async fn a_dropped_call_sends_cancel_when_the_agent_asked_for_it() {
    for cancellation in [true, false] {
        let agent = Arc::new(TestAgent {
            cancellation,
            ..TestAgent::default()
        });
        let (addr, _server) = start_grpc(agent.clone(), ServeOptions::default()).await;
        let client = grpc_client(addr);
        eventually("ready", || client.is_ready()).await;
        let gave_up = tokio::time::timeout(
            Duration::from_millis(100),
            client.call(headers_event("x1", "/hang")),
        )
        .await;
        assert!(gave_up.is_err(), "the call hangs until the caller gives up");
        if cancellation {
            eventually("agent cancelled", || {
                agent.aborted.lock().unwrap().len() == 1
            })
            .await;
            assert_eq!(client.stats().cancels_sent, 1);
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(agent.aborted.lock().unwrap().is_empty());
            assert_eq!(client.stats().cancels_sent, 0);
        }
        let r = bounded("call", client.call(headers_event("x1", "/"))).await;
        assert_eq!(r.unwrap().correlation_id, "x1");
    }
}

#[tokio::test]
async fn a_peer_that_never_speaks_http2_is_bounded_by_the_handshake_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and holds connections, never reads or writes.
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let mut config = grpc_config(addr);
    config.handshake_timeout = Duration::from_millis(100);
    let client = AgentClient::start(config);
    eventually("handshake timed out", || {
        client.stats().handshake_failures >= 1
    })
    .await;
    assert!(!client.is_ready());
    assert_eq!(
        client.call(headers_event("t1", "/")).await,
        Err(CallError::Unavailable)
    );
}

#[tokio::test]
async fn an_https_endpoint_is_refused_without_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = AgentClient::start(ClientConfig::grpc("tls", format!("https://{addr}")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let accepted = tokio::time::timeout(Duration::from_millis(10), listener.accept()).await;
    assert!(accepted.is_err(), "no TLS yet, so no connection attempt");
    assert!(!client.is_ready());
    assert!(
        client.stats().reconnects >= 1,
        "it keeps trying, with backoff"
    );
}

#[tokio::test]
async fn a_connection_that_opens_no_session_is_closed_by_the_agent() {
    use tokio::io::AsyncReadExt;
    let mut o = ServeOptions::default();
    o.handshake_timeout = Duration::from_millis(100);
    let (addr, _server) = start_grpc(Arc::new(TestAgent::default()), o).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut settings = Vec::new();
    // End of stream or a reset: either way the agent closed it, within the bound.
    let _ = bounded("closed by the agent", tcp.read_to_end(&mut settings)).await;
}
