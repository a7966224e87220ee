//! The Unix-socket client against the SDK server and against scripted raw agents: round
//! trips, multiplexing, failures and recovery, cancellation, handshake outcomes, control
//! messages, shutdown. Real sockets in temporary directories; every wait is bounded.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

#[path = "support/fake.rs"]
mod fake;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fake::{
    TestAgent, bounded, client, client_config, eventually, headers_event, raw_agent, socket,
    start_agent,
};
use serde_json::json;
use zentinel_agent_protocol::{
    AgentClient, AgentResponse, CallError, Capabilities, Decision, Encoding, HeaderOp, Message,
    RequestComplete, ServeOptions,
};

fn options(encodings: Vec<Encoding>) -> ServeOptions {
    let mut o = ServeOptions::default();
    o.encodings = encodings;
    o
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
async fn handshake_and_calls_round_trip_in_both_encodings() {
    for encoding in [Encoding::Json, Encoding::MsgPack] {
        let (_dir, path) = socket();
        let agent = Arc::new(TestAgent::default());
        let server = start_agent(&path, agent.clone(), options(vec![encoding]));
        let client = client(&path);
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
        assert_eq!(client.stats().calls, 2);
        server.abort();
    }
}

#[tokio::test]
async fn the_sdk_negotiates_msgpack_and_answers_in_it() {
    let (_dir, path) = socket();
    let _server = start_agent(
        &path,
        Arc::new(TestAgent::default()),
        ServeOptions::default(),
    );
    eventually("socket", || path.exists()).await;
    let mut raw = fake::Raw::new(tokio::net::UnixStream::connect(&path).await.unwrap());
    let hello = zentinel_agent_protocol::HandshakeRequest {
        supported_encodings: vec![Encoding::Json, Encoding::MsgPack],
        ..Default::default()
    };
    raw.send(&Message::HandshakeRequest(hello)).await;
    let Some(Message::HandshakeResponse(r)) = bounded("handshake", raw.read()).await else {
        panic!("no handshake response");
    };
    assert!(r.success);
    assert_eq!(
        r.encoding,
        Some(Encoding::MsgPack),
        "the agent's preference wins"
    );
    raw.encoding = Encoding::MsgPack;
    raw.send(&headers_event("m1", "/admin").into()).await;
    let Some(Message::AgentResponse(r)) = bounded("answer", raw.read()).await else {
        panic!("no answer");
    };
    assert_eq!(r.correlation_id, "m1");
}

#[tokio::test]
async fn fifty_concurrent_calls_on_one_connection_are_answered_out_of_order() {
    let (_dir, path) = socket();
    let _server = start_agent(
        &path,
        Arc::new(TestAgent::default()),
        ServeOptions::default(),
    );
    let client = client(&path);
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
}

#[tokio::test]
async fn a_dropped_server_fails_pending_calls_and_later_calls_are_unavailable() {
    let (_dir, path) = socket();
    let server = start_agent(
        &path,
        Arc::new(TestAgent::default()),
        ServeOptions::default(),
    );
    let client = client(&path);
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
async fn the_client_reconnects_when_the_server_comes_back() {
    let (_dir, path) = socket();
    let agent = Arc::new(TestAgent::default());
    let server = start_agent(&path, agent.clone(), ServeOptions::default());
    let client = client(&path);
    eventually("ready", || client.is_ready()).await;
    server.abort();
    eventually("down", || !client.is_ready()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _server = start_agent(&path, agent, ServeOptions::default());
    eventually("reconnected", || client.is_ready()).await;
    let r = bounded("call", client.call(headers_event("r1", "/"))).await;
    assert_eq!(r.unwrap().decision, Decision::Allow);
    assert!(client.stats().reconnects >= 1);
}

#[tokio::test]
async fn garbage_from_the_agent_closes_the_connection_and_the_client_reconnects() {
    let cases: [&[u8]; 5] = [
        b"HTTP/1.1 200 OK\r\n\r\n",                  // garbage: a huge length
        &[0x7f, 0xff, 0xff, 0xff, 0x20],             // oversize length
        &[0, 0, 0, 3, 0x99, b'{', b'}'],             // unknown type byte
        &[0, 0, 0, 0],                               // length 0
        &[0, 0, 0, 5, 0x20, b'{', b'{', b'{', b'{'], // undecodable payload
    ];
    for bad in cases {
        let (_dir, path) = socket();
        let (accepted, _agent) = raw_agent(&path, move |mut raw, n| async move {
            raw.accept(Capabilities::new("raw", [1]), Encoding::Json)
                .await;
            if n == 0 {
                raw.send_bytes(bad).await;
            }
            while raw.read().await.is_some() {}
        });
        let client = client(&path);
        eventually("protocol error counted", || {
            client.stats().protocol_errors == 1
        })
        .await;
        eventually("reconnected", || {
            accepted.load(Ordering::SeqCst) >= 2 && client.is_ready()
        })
        .await;
        assert_eq!(client.stats().protocol_errors, 1, "{bad:?}");
    }
}

#[tokio::test]
async fn an_unknown_correlation_id_is_dropped_and_the_connection_serves_on() {
    let (_dir, path) = socket();
    let (accepted, _agent) = raw_agent(&path, |mut raw, _| async move {
        raw.accept(Capabilities::new("raw", [1]), Encoding::MsgPack)
            .await;
        while let Some(m) = raw.read().await {
            let Message::RequestHeaders(e) = m else {
                continue;
            };
            raw.send(&Message::AgentResponse(AgentResponse::allow("nobody")))
                .await;
            raw.send(&Message::AgentResponse(AgentResponse::allow(
                e.correlation_id,
            )))
            .await;
        }
    });
    let client = client(&path);
    eventually("ready", || client.is_ready()).await;
    for id in ["u1", "u2"] {
        let r = bounded("call", client.call(headers_event(id, "/")))
            .await
            .unwrap();
        assert_eq!(r.correlation_id, id);
    }
    eventually("counted", || client.stats().unknown_correlation == 2).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection throughout"
    );
    assert_eq!(client.stats().protocol_errors, 0);
}

#[tokio::test]
async fn a_dropped_call_sends_cancel_when_the_agent_asked_for_it() {
    for cancellation in [true, false] {
        let (_dir, path) = socket();
        let agent = Arc::new(TestAgent {
            cancellation,
            ..TestAgent::default()
        });
        let _server = start_agent(&path, agent.clone(), ServeOptions::default());
        let client = client(&path);
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
        // The connection is still usable, and the ID is free again.
        let r = bounded("call", client.call(headers_event("x1", "/"))).await;
        assert_eq!(r.unwrap().correlation_id, "x1");
    }
}

#[tokio::test]
async fn a_handshake_that_never_comes_leaves_the_client_not_ready() {
    let (_dir, path) = socket();
    let (accepted, _agent) = raw_agent(&path, |mut raw, _| async move {
        // Read the hello, answer nothing, keep the connection open.
        while raw.read().await.is_some() {}
    });
    let mut config = client_config(&path);
    config.handshake_timeout = Duration::from_millis(100);
    let client = AgentClient::start(config);
    eventually("handshake failed", || {
        client.stats().handshake_failures >= 1
    })
    .await;
    assert!(accepted.load(Ordering::SeqCst) >= 1);
    assert!(!client.is_ready());
    assert_eq!(
        client.call(headers_event("t1", "/")).await,
        Err(CallError::Unavailable)
    );
}

#[tokio::test]
async fn a_refused_handshake_makes_calls_fail_as_rejected() {
    let (_dir, path) = socket();
    let agent = Arc::new(TestAgent::default());
    let _server = start_agent(&path, agent.clone(), ServeOptions::default());
    let mut config = client_config(&path);
    config.config = json!({"refuse": true});
    let client = AgentClient::start(config);
    eventually("refused", || client.stats().handshake_failures >= 1).await;
    assert!(!client.is_ready());
    let e = client.call(headers_event("j1", "/")).await.unwrap_err();
    assert_eq!((e.clone(), e.reason()), (CallError::Rejected, "rejected"));
    assert!(agent.configs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn reconfigure_reaches_on_configure_and_later_handshakes() {
    let (_dir, path) = socket();
    let agent = Arc::new(TestAgent::default());
    let server = start_agent(&path, agent.clone(), ServeOptions::default());
    let client = client(&path);
    eventually("ready", || client.is_ready()).await;
    client.reconfigure(json!({"v": 2}));
    eventually("configured", || agent.configs.lock().unwrap().len() == 2).await;
    assert_eq!(agent.configs.lock().unwrap()[1], json!({"v": 2}));
    server.abort();
    eventually("down", || !client.is_ready()).await;
    let _server = start_agent(&path, agent.clone(), ServeOptions::default());
    eventually("back", || client.is_ready()).await;
    assert_eq!(agent.configs.lock().unwrap().last(), Some(&json!({"v": 2})));
}

#[tokio::test]
async fn control_messages_from_the_agent_are_honoured() {
    use zentinel_agent_protocol::{
        FlowAction, FlowControl, HealthState, HealthStatus, MetricsReport, Ping,
    };
    let (_dir, path) = socket();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(16);
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel::<Message>(16);
    let cmd_rx = Arc::new(tokio::sync::Mutex::new(cmd_rx));
    let (_accepted, _agent) = raw_agent(&path, move |mut raw, _| {
        let (tx, cmd_rx) = (tx.clone(), cmd_rx.clone());
        async move {
            raw.accept(Capabilities::new("raw", [1]), Encoding::Json)
                .await;
            let mut cmds = cmd_rx.lock().await;
            loop {
                tokio::select! {
                    Some(cmd) = cmds.recv() => raw.send(&cmd).await,
                    m = raw.read() => match m { Some(m) => tx.send(m).await.unwrap(), None => return },
                }
            }
        }
    });
    let client = client(&path);
    eventually("ready", || client.is_ready()).await;
    let agent_says = |m: Message| {
        let cmd_tx = cmd_tx.clone();
        async move { cmd_tx.send(m).await.unwrap() }
    };
    agent_says(Message::HealthStatus(HealthStatus {
        state: HealthState::Draining,
    }))
    .await;
    eventually("draining", || !client.is_ready()).await;
    assert_eq!(
        client.call(headers_event("d1", "/")).await,
        Err(CallError::Unavailable)
    );
    agent_says(Message::HealthStatus(HealthStatus {
        state: HealthState::Degraded,
    }))
    .await;
    eventually("degraded serves", || client.is_ready()).await;
    agent_says(Message::FlowControl(FlowControl {
        action: FlowAction::Pause,
    }))
    .await;
    eventually("paused", || !client.is_ready()).await;
    agent_says(Message::FlowControl(FlowControl {
        action: FlowAction::Resume,
    }))
    .await;
    eventually("resumed", || client.is_ready()).await;
    agent_says(Message::MetricsReport(MetricsReport(json!({"blocked": 3})))).await;
    eventually("metrics", || {
        client.metrics() == Some(json!({"blocked": 3}))
    })
    .await;

    let ping = Ping {
        sequence: 9,
        timestamp_ms: 1,
    };
    agent_says(Message::Ping(ping)).await;
    assert_eq!(bounded("pong", rx.recv()).await, Some(Message::Pong(ping)));
    agent_says(Message::ConfigUpdateRequest(
        zentinel_agent_protocol::ConfigUpdateRequest {},
    ))
    .await;
    let configure = bounded("configure", rx.recv()).await.unwrap();
    assert_eq!(
        configure,
        Message::Configure(zentinel_agent_protocol::Configure(json!({"v": 1})))
    );
}

#[tokio::test]
async fn dropping_the_client_closes_its_connections() {
    let (_dir, path) = socket();
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::channel::<usize>(4);
    let (accepted, _agent) = raw_agent(&path, move |mut raw, n| {
        let closed_tx = closed_tx.clone();
        async move {
            raw.accept(Capabilities::new("raw", [1]), Encoding::Json)
                .await;
            while raw.read().await.is_some() {}
            closed_tx.send(n).await.unwrap();
        }
    });
    let mut config = client_config(&path);
    config.connections = 2;
    let client = AgentClient::start(config);
    let other = client.clone();
    eventually("ready", || client.is_ready()).await;
    eventually("both up", || accepted.load(Ordering::SeqCst) == 2).await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        closed_rx.try_recv().is_err(),
        "a clone keeps the connections"
    );
    drop(other);
    let mut closed = vec![
        bounded("first closed", closed_rx.recv()).await.unwrap(),
        bounded("second closed", closed_rx.recv()).await.unwrap(),
    ];
    closed.sort_unstable();
    assert_eq!(closed, vec![0, 1]);
}

#[tokio::test]
async fn bind_replaces_a_stale_socket_but_not_a_live_one_or_a_file() {
    let (dir, path) = socket();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let listener = zentinel_agent_protocol::bind(&path).await.unwrap();
    let e = zentinel_agent_protocol::bind(&path).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    drop(listener);
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    let e = zentinel_agent_protocol::bind(&file).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}
