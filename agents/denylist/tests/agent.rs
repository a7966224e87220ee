//! The denylist agent end to end: served in-process on a temp-dir socket, configured through
//! the handshake and `Configure`, called through the protocol crate's `AgentClient`.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use zentinel_agent_denylist::{DenylistAgent, run};
use zentinel_agent_protocol::{
    Agent, AgentClient, AgentResponse, CallError, ClientConfig, Decision, Event, RequestHeaders,
};

/// Every wait in these tests.
const BOUND: Duration = Duration::from_secs(5);

struct Denylist {
    agent: Arc<DenylistAgent>,
    client: AgentClient,
    server: JoinHandle<std::io::Result<()>>,
    _dir: TempDir,
}

impl Drop for Denylist {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn start(config: Value) -> Denylist {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("denylist.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let agent = Arc::new(DenylistAgent::default());
    let server = tokio::spawn(run(listener, Arc::clone(&agent)));
    let mut cc = ClientConfig::new("denylist", &path);
    cc.config = config;
    Denylist {
        agent,
        client: AgentClient::start(cc),
        server,
        _dir: dir,
    }
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

async fn call(d: &Denylist, client_ip: &str, uri: &str, headers: &[(&str, &str)]) -> AgentResponse {
    let mut event = RequestHeaders {
        correlation_id: format!("{client_ip} {uri}"),
        method: "GET".to_owned(),
        uri: uri.to_owned(),
        ..RequestHeaders::default()
    };
    event.metadata.client_ip = client_ip.to_owned();
    for (name, value) in headers {
        event
            .headers
            .insert((*name).to_owned(), vec![(*value).to_owned()]);
    }
    tokio::time::timeout(BOUND, d.client.call(Event::RequestHeaders(event)))
        .await
        .expect("the denylist answers in time")
        .expect("the call succeeds")
}

/// The README's example, as the proxy sends it.
fn example() -> Value {
    json!({
        "rule": [
            {"id": "internal-net", "client-ip": ["10.0.0.0/8", "192.0.2.7"]},
            {"id": "admin-path", "path-prefix": "/admin"},
            {"id": "env-files", "path-regex": "\\.env$"},
            {"id": "scanner", "header": "user-agent", "contains": "sqlmap"},
        ],
        "status": 403,
        "message": "Forbidden",
    })
}

/// The rule that blocked, with the block's status, or `None` for allow.
fn blocked_by(answer: &AgentResponse) -> Option<(String, u16)> {
    match &answer.decision {
        Decision::Allow => None,
        Decision::Block { status, body, .. } => {
            assert_eq!(body.as_deref(), Some("Forbidden"));
            assert_eq!(answer.audit.tags, ["denylist"]);
            assert_eq!(answer.audit.rule_ids.len(), 1);
            Some((answer.audit.rule_ids[0].clone(), *status))
        }
        other => panic!("unexpected decision {other:?}"),
    }
}

/// Client address, URI, headers, and the rule expected to block (`None`: allowed).
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Option<&'a str>);

#[tokio::test]
async fn blocks_with_the_rule_id_and_allows_the_rest() {
    let d = start(example());
    until("the handshake succeeds", || d.client.is_ready()).await;
    let outside = "203.0.113.9";
    let cases: [Case<'_>; 6] = [
        ("10.20.30.40", "/", &[], Some("internal-net")),
        (outside, "/admin/users?page=2", &[], Some("admin-path")),
        (outside, "/static/.env", &[], Some("env-files")),
        (
            outside,
            "/",
            &[("user-agent", "sqlmap/1.8")],
            Some("scanner"),
        ),
        (
            outside,
            "/api/users?file=.env",
            &[("user-agent", "curl/8")],
            None,
        ),
        ("192.0.2.8", "/", &[], None),
    ];
    for (ip, uri, headers, expected) in cases {
        let answer = call(&d, ip, uri, headers).await;
        assert_eq!(answer.correlation_id, format!("{ip} {uri}"));
        assert_eq!(
            blocked_by(&answer),
            expected.map(|id| (id.to_owned(), 403)),
            "{ip} {uri}"
        );
    }
    let answer = call(&d, outside, "/admin", &[]).await;
    assert_eq!(answer.audit.reason_codes, ["path-prefix"]);
}

#[tokio::test]
async fn configure_replaces_the_rules_and_a_bad_one_keeps_them() {
    let d = start(example());
    until("the handshake succeeds", || d.client.is_ready()).await;
    d.client.reconfigure(json!({
        "rule": {"id": "only-api", "path-prefix": "/api"},
        "status": 451,
    }));
    // `Configure` and the next call travel in order on the one connection.
    let answer = call(&d, "203.0.113.9", "/api/x", &[]).await;
    assert_eq!(blocked_by(&answer), Some(("only-api".to_owned(), 451)));
    assert_eq!(
        blocked_by(&call(&d, "203.0.113.9", "/admin", &[]).await),
        None
    );

    d.client
        .reconfigure(json!({"rule": {"id": "bad", "client-ip": "10.0.0.0/33"}}));
    let answer = call(&d, "203.0.113.9", "/api/x", &[]).await;
    assert_eq!(
        blocked_by(&answer),
        Some(("only-api".to_owned(), 451)),
        "the refused configuration changed nothing"
    );
    assert_eq!(d.agent.rules().rules()[0].id().as_str(), "only-api");
}

#[tokio::test]
async fn an_invalid_handshake_config_makes_the_agent_unavailable() {
    let d = start(json!({"rule": {"id": "re", "path-regex": "(unclosed"}}));
    until("the handshake is refused", || {
        d.client.stats().handshake_failures > 0
    })
    .await;
    assert!(!d.client.is_ready());
    let event = Event::RequestHeaders(RequestHeaders {
        correlation_id: "c-1".to_owned(),
        ..RequestHeaders::default()
    });
    assert_eq!(d.client.call(event).await, Err(CallError::Rejected));
}

#[test]
fn on_configure_reports_the_precise_problem() {
    let agent = DenylistAgent::default();
    let refused = agent.on_configure(json!({"rule": [{"id": "a", "path-prefix": "/a"}, {}]}));
    assert_eq!(
        refused,
        Err("rule #2: missing `id` (every rule needs one, for the audit log)".to_owned())
    );
    assert!(agent.rules().rules().is_empty(), "nothing was applied");
    assert_eq!(agent.on_configure(example()), Ok(()));
    assert_eq!(agent.rules().rules().len(), 4);
    assert_eq!(agent.on_configure(Value::Null), Ok(()));
    assert!(agent.rules().rules().is_empty());
}
