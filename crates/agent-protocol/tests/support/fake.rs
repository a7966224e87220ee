//! A test agent built on the SDK, a scripted raw agent on a plain `UnixListener`, and small
//! helpers. Every wait is bounded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use zentinel_agent_protocol::{
    Agent, AgentClient, AgentResponse, Capabilities, ClientConfig, Encoding, FrameDecoder,
    HandshakeRequest, HandshakeResponse, HeaderOp, Message, RequestComplete, RequestHeaders,
    ServeOptions, event_kind,
};

/// The bound on every wait in these tests.
pub(crate) const BOUND: Duration = Duration::from_secs(5);

/// A socket path in a fresh temporary directory (kept alive by the returned guard).
pub(crate) fn socket() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    (dir, path)
}

/// Polls `cond` every 10 ms until it holds; panics after [`BOUND`].
pub(crate) async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Awaits `f` within [`BOUND`].
pub(crate) async fn bounded<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

pub(crate) fn client(path: &Path) -> AgentClient {
    AgentClient::start(client_config(path))
}

pub(crate) fn client_config(path: &Path) -> ClientConfig {
    let mut config = ClientConfig::new("test", path);
    config.config = json!({"v": 1});
    config.proxy_version = "test".into();
    config
}

pub(crate) fn headers_event(id: &str, uri: &str) -> zentinel_agent_protocol::Event {
    RequestHeaders {
        correlation_id: id.into(),
        method: "GET".into(),
        uri: uri.into(),
        ..RequestHeaders::default()
    }
    .into()
}

/// The SDK agent used by the tests. `uri` drives it: `/admin...` blocks, `/delay/<ms>`
/// sleeps first, `/hang` never answers; every answer carries `x-order`, the order in which
/// answers were produced.
#[derive(Debug, Default)]
pub(crate) struct TestAgent {
    pub(crate) cancellation: bool,
    pub(crate) configs: Mutex<Vec<Value>>,
    pub(crate) completed: Mutex<Vec<String>>,
    pub(crate) aborted: Mutex<Vec<String>>,
    pub(crate) order: AtomicUsize,
}

/// Records the correlation ID of a handler dropped before it finished (a cancelled task).
struct AbortProbe<'a> {
    agent: &'a TestAgent,
    id: String,
    finished: bool,
}

impl Drop for AbortProbe<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.agent.aborted.lock().unwrap().push(self.id.clone());
        }
    }
}

impl Agent for TestAgent {
    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::new(
            "test-agent",
            [event_kind::REQUEST_HEADERS, event_kind::REQUEST_COMPLETE],
        );
        c.features.cancellation = self.cancellation;
        c
    }

    fn on_configure(&self, config: Value) -> Result<(), String> {
        if config.get("refuse") == Some(&json!(true)) {
            return Err("configuration refused by the test".into());
        }
        self.configs.lock().unwrap().push(config);
        Ok(())
    }

    async fn on_request_headers(&self, event: RequestHeaders) -> AgentResponse {
        let mut probe = AbortProbe {
            agent: self,
            id: event.correlation_id.clone(),
            finished: false,
        };
        if let Some(ms) = event.uri.strip_prefix("/delay/") {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
        }
        if event.uri == "/hang" {
            std::future::pending::<()>().await;
        }
        probe.finished = true;
        let order = self.order.fetch_add(1, Ordering::SeqCst);
        if event.uri.starts_with("/admin") {
            return AgentResponse::block(event.correlation_id, 403, "Forbidden");
        }
        // Empty on purpose: the SDK fills in the correlation ID.
        AgentResponse::allow("").with_response_header(HeaderOp::add("x-order", order.to_string()))
    }

    async fn on_request_complete(&self, event: RequestComplete) {
        self.completed.lock().unwrap().push(event.correlation_id);
    }
}

/// Serves `agent` at `path` in a task; aborting the task closes every connection.
pub(crate) fn start_agent(
    path: &Path,
    agent: Arc<TestAgent>,
    options: ServeOptions,
) -> JoinHandle<std::io::Result<()>> {
    let path = path.to_owned();
    tokio::spawn(async move {
        let listener = zentinel_agent_protocol::bind(&path).await?;
        zentinel_agent_protocol::serve_with(listener, agent, options).await
    })
}

/// One raw connection, speaking frames by hand.
#[derive(Debug)]
pub(crate) struct Raw {
    pub(crate) stream: UnixStream,
    buf: BytesMut,
    pub(crate) encoding: Encoding,
}

impl Raw {
    pub(crate) fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            encoding: Encoding::Json,
        }
    }

    /// The next message, or `None` at end of stream.
    pub(crate) async fn read(&mut self) -> Option<Message> {
        let decoder = FrameDecoder::default();
        loop {
            if let Some(frame) = decoder.decode(&mut self.buf).unwrap() {
                return Some(Message::decode(&frame, self.encoding).unwrap());
            }
            if self.stream.read_buf(&mut self.buf).await.unwrap_or(0) == 0 {
                return None;
            }
        }
    }

    pub(crate) async fn send(&mut self, m: &Message) {
        let mut out = BytesMut::new();
        m.encode(self.encoding, u32::MAX, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) {
        // The client may already have closed: a failed write is fine.
        let _ = self.stream.write_all(bytes).await;
    }

    /// Reads the proxy's handshake and accepts it with `caps` and `encoding`.
    pub(crate) async fn accept(
        &mut self,
        caps: Capabilities,
        encoding: Encoding,
    ) -> HandshakeRequest {
        let Some(Message::HandshakeRequest(hello)) = bounded("handshake", self.read()).await else {
            panic!("expected a handshake request");
        };
        self.send(&Message::HandshakeResponse(HandshakeResponse::accept(
            caps, encoding,
        )))
        .await;
        self.encoding = encoding;
        hello
    }
}

/// A raw agent: accepts connections on `path` and hands each to `script`, counting them.
pub(crate) fn raw_agent<F, Fut>(path: &Path, script: F) -> (Arc<AtomicUsize>, JoinHandle<()>)
where
    F: Fn(Raw, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = UnixListener::bind(path).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        let mut scripts = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            scripts.spawn(script(Raw::new(stream), n));
        }
    });
    (accepted, task)
}
