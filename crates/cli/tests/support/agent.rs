//! A scriptable agent for end-to-end tests, built on the Rust SDK and run on its own tokio
//! runtime in the test process (the proxy is a child process, so to it this is just another
//! process on a Unix socket). It records every event it receives and answers as scripted:
//! per request path, or by default.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use zentinel_agent_protocol::{
    AgentResponse, BodyMutation, Capabilities, Decision, HeaderOp, RequestBodyChunk,
    RequestComplete, RequestHeaders, ResponseBodyChunk, ResponseHeaders, sdk::Agent,
};

/// How the agent answers.
#[derive(Debug, Clone)]
pub enum Script {
    /// Allow, with the configured header edits.
    Allow,
    /// Block with this status and body, naming rule `rule`.
    Block {
        /// Status.
        status: u16,
        /// Body.
        body: &'static str,
        /// Rule ID reported in the audit metadata.
        rule: &'static str,
    },
    /// Redirect to this URL with 302.
    Redirect(&'static str),
    /// Ask for a challenge.
    Challenge,
    /// Wait this long, then allow.
    Delay(Duration),
    /// Never answer.
    Hang,
}

/// What the agent does with body chunks (either direction).
#[derive(Debug, Clone, Default)]
pub struct BodyScript {
    /// Block (403) a chunk containing this.
    pub block_if_contains: Option<&'static str>,
    /// Replace every occurrence of `.0` by `.1` in each chunk.
    pub replace: Option<(&'static str, &'static str)>,
}

impl BodyScript {
    fn answer(&self, id: String, data: &[u8], index: u64, response: bool) -> AgentResponse {
        let text = String::from_utf8_lossy(data);
        if self
            .block_if_contains
            .is_some_and(|needle| text.contains(needle))
        {
            return AgentResponse::block(id, 403, "body refused\n");
        }
        let mut r = AgentResponse::allow(id);
        if let Some((from, to)) = self.replace
            && text.contains(from)
        {
            let m = BodyMutation::replace(index, text.replace(from, to).into_bytes());
            if response {
                r.response_body_mutation = Some(m);
            } else {
                r.request_body_mutation = Some(m);
            }
        }
        r
    }
}

#[derive(Debug)]
struct Inner {
    default: Mutex<Script>,
    by_path: Mutex<HashMap<String, Script>>,
    on_response: Mutex<Option<(u16, Script)>>,
    request_edits: Mutex<Vec<HeaderOp>>,
    response_edits: Mutex<Vec<HeaderOp>>,
    requests: Mutex<Vec<RequestHeaders>>,
    responses: Mutex<Vec<ResponseHeaders>>,
    completes: Mutex<Vec<RequestComplete>>,
    configs: Mutex<Vec<Value>>,
    request_body: Mutex<BodyScript>,
    response_body: Mutex<BodyScript>,
    request_chunks: Mutex<Vec<RequestBodyChunk>>,
    response_chunks: Mutex<Vec<ResponseBodyChunk>>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
struct Scripted(Arc<Inner>);

impl Scripted {
    async fn answer(&self, script: Script, id: String) -> AgentResponse {
        let inner = &self.0;
        match script {
            Script::Allow => {}
            Script::Block { status, body, rule } => {
                let mut r = AgentResponse::block(id, status, body);
                r.audit.rule_ids = vec![rule.to_owned()];
                r.audit.tags = vec!["test".to_owned()];
                return r;
            }
            Script::Redirect(url) => return AgentResponse::redirect(id, url, 302),
            Script::Challenge => {
                let mut r = AgentResponse::allow(id);
                r.decision = Decision::Challenge {
                    challenge_type: "captcha".to_owned(),
                    params: Value::Null,
                };
                return r;
            }
            Script::Delay(d) => tokio::time::sleep(d).await,
            Script::Hang => std::future::pending::<()>().await,
        }
        let mut r = AgentResponse::allow(id);
        r.request_headers = lock(&inner.request_edits).clone();
        r.response_headers = lock(&inner.response_edits).clone();
        r
    }
}

impl Agent for Scripted {
    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::new("mock", [1, 2, 3, 4, 5]);
        c.features.cancellation = true;
        c
    }

    fn on_configure(&self, config: Value) -> Result<(), String> {
        lock(&self.0.configs).push(config);
        Ok(())
    }

    async fn on_request_headers(&self, event: RequestHeaders) -> AgentResponse {
        let inner = &self.0;
        let path = event.uri.split('?').next().unwrap_or_default().to_owned();
        let script = lock(&inner.by_path)
            .get(&path)
            .cloned()
            .unwrap_or_else(|| lock(&inner.default).clone());
        let id = event.correlation_id.clone();
        lock(&inner.requests).push(event);
        let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        inner.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        let guard = InFlight(&inner.in_flight);
        let r = self.answer(script, id).await;
        drop(guard);
        r
    }

    async fn on_response_headers(&self, event: ResponseHeaders) -> AgentResponse {
        let id = event.correlation_id.clone();
        let status = event.status;
        lock(&self.0.responses).push(event);
        let script = lock(&self.0.on_response)
            .clone()
            .filter(|(s, _)| *s == status)
            .map(|(_, script)| script);
        match script {
            Some(s) => self.answer(s, id).await,
            None => AgentResponse::allow(id),
        }
    }

    async fn on_request_body(&self, event: RequestBodyChunk) -> AgentResponse {
        let script = lock(&self.0.request_body).clone();
        let r = script.answer(
            event.correlation_id.clone(),
            event.data.as_bytes(),
            event.chunk_index,
            false,
        );
        lock(&self.0.request_chunks).push(event);
        r
    }

    async fn on_response_body(&self, event: ResponseBodyChunk) -> AgentResponse {
        let script = lock(&self.0.response_body).clone();
        let r = script.answer(
            event.correlation_id.clone(),
            event.data.as_bytes(),
            event.chunk_index,
            true,
        );
        lock(&self.0.response_chunks).push(event);
        r
    }

    async fn on_request_complete(&self, event: RequestComplete) {
        lock(&self.0.completes).push(event);
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The scriptable agent, serving on a socket in its own temporary directory.
#[derive(Debug)]
pub struct MockAgent {
    _dir: tempfile::TempDir,
    path: PathBuf,
    inner: Arc<Inner>,
    rt: tokio::runtime::Runtime,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Serves over gRPC on this address instead of the Unix socket.
    grpc: Option<std::net::SocketAddr>,
}

impl MockAgent {
    /// Starts serving on a Unix socket; answers `Script::Allow` until told otherwise.
    pub fn start() -> Self {
        Self::starting(None)
    }

    /// Starts serving over gRPC on a loopback port of its own.
    pub fn start_grpc() -> Self {
        let addr = super::bind_loopback()
            .local_addr()
            .expect("agent: gRPC address");
        Self::starting(Some(addr))
    }

    /// The gRPC address, for agents started with [`Self::start_grpc`].
    pub fn grpc_addr(&self) -> std::net::SocketAddr {
        self.grpc.expect("a gRPC agent")
    }

    fn starting(grpc: Option<std::net::SocketAddr>) -> Self {
        let dir = tempfile::tempdir().expect("agent: temp dir");
        let path = dir.path().join("agent.sock");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("agent: runtime");
        let inner = Arc::new(Inner {
            default: Mutex::new(Script::Allow),
            by_path: Mutex::new(HashMap::new()),
            on_response: Mutex::new(None),
            request_edits: Mutex::new(Vec::new()),
            response_edits: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            responses: Mutex::new(Vec::new()),
            completes: Mutex::new(Vec::new()),
            configs: Mutex::new(Vec::new()),
            request_body: Mutex::new(BodyScript::default()),
            response_body: Mutex::new(BodyScript::default()),
            request_chunks: Mutex::new(Vec::new()),
            response_chunks: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
        });
        let agent = Self {
            _dir: dir,
            path,
            inner,
            rt,
            task: Mutex::new(None),
            grpc,
        };
        agent.restart();
        agent
    }

    /// The socket path, for the proxy configuration.
    pub fn socket(&self) -> &Path {
        &self.path
    }

    /// Stops serving and closes every connection, as if the process died.
    pub fn stop(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
            let _ = self.rt.block_on(task);
        }
    }

    /// Serves again on the same socket (stopping first if running).
    pub fn restart(&self) {
        self.stop();
        let path = self.path.clone();
        let agent = Arc::new(Scripted(self.inner.clone()));
        if let Some(addr) = self.grpc {
            let listener = self
                .rt
                .block_on(tokio::net::TcpListener::bind(addr))
                .unwrap_or_else(|e| panic!("agent: cannot bind {addr}: {e}"));
            let task = self.rt.spawn(async move {
                let options = zentinel_agent_protocol::sdk::ServeOptions::default();
                let _ = zentinel_agent_protocol::serve_grpc_with(listener, agent, options).await;
            });
            *lock(&self.task) = Some(task);
            return;
        }
        let listener = self
            .rt
            .block_on(zentinel_agent_protocol::server::bind(&path))
            .unwrap_or_else(|e| panic!("agent: cannot bind {}: {e}", path.display()));
        let task = self.rt.spawn(async move {
            let _ = zentinel_agent_protocol::server::serve(listener, agent).await;
        });
        *lock(&self.task) = Some(task);
    }

    /// The answer for requests without a path-specific script.
    pub fn set_default(&self, script: Script) {
        *lock(&self.inner.default) = script;
    }

    /// The answer for requests to `path` (without query).
    pub fn set_for_path(&self, path: &str, script: Script) {
        lock(&self.inner.by_path).insert(path.to_owned(), script);
    }

    /// The answer to response headers with `status` (others are allowed).
    pub fn on_response_status(&self, status: u16, script: Script) {
        *lock(&self.inner.on_response) = Some((status, script));
    }

    /// Request header edits returned with every allow.
    pub fn set_request_edits(&self, ops: Vec<HeaderOp>) {
        *lock(&self.inner.request_edits) = ops;
    }

    /// Response header edits returned with every allow.
    pub fn set_response_edits(&self, ops: Vec<HeaderOp>) {
        *lock(&self.inner.response_edits) = ops;
    }

    /// Request-headers events received so far.
    pub fn requests(&self) -> Vec<RequestHeaders> {
        lock(&self.inner.requests).clone()
    }

    /// Response-headers events received so far.
    pub fn responses(&self) -> Vec<ResponseHeaders> {
        lock(&self.inner.responses).clone()
    }

    /// Request-complete events received so far.
    pub fn completes(&self) -> Vec<RequestComplete> {
        lock(&self.inner.completes).clone()
    }

    /// Configurations received (handshakes and `Configure`).
    pub fn configs(&self) -> Vec<Value> {
        lock(&self.inner.configs).clone()
    }

    /// What to do with request body chunks.
    pub fn set_request_body(&self, script: BodyScript) {
        *lock(&self.inner.request_body) = script;
    }

    /// What to do with response body chunks.
    pub fn set_response_body(&self, script: BodyScript) {
        *lock(&self.inner.response_body) = script;
    }

    /// Request body chunks received so far.
    pub fn request_chunks(&self) -> Vec<RequestBodyChunk> {
        lock(&self.inner.request_chunks).clone()
    }

    /// Response body chunks received so far.
    pub fn response_chunks(&self) -> Vec<ResponseBodyChunk> {
        lock(&self.inner.response_chunks).clone()
    }

    /// Calls the agent is handling now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// The most calls the agent was handling at once.
    pub fn peak_in_flight(&self) -> usize {
        self.inner.peak_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for MockAgent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Any agent future, served on a socket of its own temporary directory from a runtime of
/// its own: the reference agents, run in-process.
#[derive(Debug)]
pub struct InProcess {
    _dir: tempfile::TempDir,
    path: PathBuf,
    rt: tokio::runtime::Runtime,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl InProcess {
    /// Binds the socket, then runs `serve(listener)` until dropped.
    pub fn start<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(tokio::net::UnixListener) -> Fut,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let mut agent = Self::unstarted();
        agent.serve(serve);
        agent
    }

    /// A socket path with nothing listening on it yet.
    pub fn unstarted() -> Self {
        let dir = tempfile::tempdir().expect("agent: temp dir");
        let path = dir.path().join("agent.sock");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("agent: runtime");
        Self {
            _dir: dir,
            path,
            rt,
            task: None,
        }
    }

    /// Starts serving (after [`Self::unstarted`]).
    pub fn serve<F, Fut>(&mut self, serve: F)
    where
        F: FnOnce(tokio::net::UnixListener) -> Fut,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let listener = self
            .rt
            .block_on(zentinel_agent_protocol::server::bind(&self.path))
            .unwrap_or_else(|e| panic!("agent: cannot bind {}: {e}", self.path.display()));
        let fut = {
            let _entered = self.rt.enter();
            serve(listener)
        };
        self.task = Some(self.rt.spawn(fut));
    }

    /// The socket path, for the proxy configuration.
    pub fn socket(&self) -> &Path {
        &self.path
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A proxy configuration with one listener at `addr`, upstream `u` at `up`, agent `a` on
/// `sock` receiving `events` (KDL strings) with `agent_extra` settings, and `routes`.
/// Access lines go to stdout, audit lines to stderr.
pub fn proxy_config(
    addr: std::net::SocketAddr,
    up: std::net::SocketAddr,
    sock: &Path,
    events: &str,
    agent_extra: &str,
    routes: &str,
) -> String {
    // Response-body agents need the work-stealing runtime (`docs/config.md`, `server`).
    let server = if events.contains("response-body") {
        "server { work-stealing #true; }"
    } else {
        ""
    };
    format!(
        r#"{server}
listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "stdout"; }}; audit-log {{ destination "stderr"; }} }}
upstreams {{ upstream "u" {{ target "{up}"; }} }}
agents {{ agent "a" {{ transport {{ unix-socket "{}"; }}; events {events}
    {agent_extra} }} }}
routes {{ {routes} }}"#,
        sock.display()
    )
}

/// Three routes: `/plain` without the agent, `/closed` and `/open` with it, fail-closed and
/// fail-open.
pub const THREE_ROUTES: &str = r#"
    route "plain" { matches { path-prefix "/plain"; }; upstream "u"; }
    route "closed" { matches { path-prefix "/closed"; }; upstream "u"; filters "a"; failure-mode "closed"; }
    route "open" { matches { path-prefix "/open"; }; upstream "u"; filters "a"; failure-mode "open"; }"#;
