//! `zentinel-agent-echo`: a Zentinel agent for demos and tests. It allows every request and
//! adds headers: `x-echo-agent: <name>`, `x-echo-client-ip: <metadata.client_ip>` (proof of
//! what the proxy told it), and the request and response headers of its `config {}` block.
//!
//! - [`EchoAgent`]: the agent (an SDK [`Agent`]); [`run`] serves it on a Unix listener.
//! - [`EchoConfig`]: its validated configuration, re-applied on every `Configure`.

mod config;

use std::io;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::net::UnixListener;
use zentinel_agent_protocol::{
    Agent, AgentResponse, Capabilities, HeaderOp, RequestHeaders, event_kind,
};

pub use config::{EchoConfig, EchoConfigError};

/// The request header naming the agent that saw the request.
pub const AGENT_HEADER: &str = "x-echo-agent";
/// The request header echoing `metadata.client_ip` as the agent received it.
pub const CLIENT_IP_HEADER: &str = "x-echo-client-ip";

/// The echo agent. One value serves every connection; a `Configure` replaces the headers for
/// all of them.
#[derive(Debug)]
pub struct EchoAgent {
    name: String,
    config: RwLock<Arc<EchoConfig>>,
}

impl EchoAgent {
    /// An echo agent announcing itself as `name` (also the value of `x-echo-agent`), adding no
    /// configured headers until it receives a configuration.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            config: RwLock::new(Arc::new(EchoConfig::default())),
        }
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<EchoConfig> {
        // A poisoned lock still holds a whole `Arc`: writers only swap it.
        Arc::clone(&self.config.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The answer to `event`: allow, with the configured headers, then `x-echo-agent` and
    /// `x-echo-client-ip` (last, so a configured header cannot hide them).
    pub fn answer(&self, event: &RequestHeaders) -> AgentResponse {
        let config = self.config();
        let mut response = AgentResponse::allow(&event.correlation_id);
        response
            .request_headers
            .extend_from_slice(config.request_headers());
        response
            .response_headers
            .extend_from_slice(config.response_headers());
        response
            .with_request_header(HeaderOp::set(AGENT_HEADER, &self.name))
            .with_request_header(HeaderOp::set(CLIENT_IP_HEADER, &event.metadata.client_ip))
    }
}

impl Agent for EchoAgent {
    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::new(&self.name, [event_kind::REQUEST_HEADERS]);
        c.version = env!("CARGO_PKG_VERSION").to_owned();
        c.features.config_push = true;
        c
    }

    /// Replaces the headers; a bad configuration is refused and the previous one kept.
    fn on_configure(&self, config: serde_json::Value) -> Result<(), String> {
        let parsed = EchoConfig::from_config(&config).map_err(|e| e.to_string())?;
        tracing::info!(
            request_headers = parsed.request_headers().len(),
            response_headers = parsed.response_headers().len(),
            "configuration applied"
        );
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(parsed);
        Ok(())
    }

    async fn on_request_headers(&self, event: RequestHeaders) -> AgentResponse {
        self.answer(&event)
    }
}

/// Serves `agent` on `listener` until accepting fails; dropping the future closes every
/// connection.
pub async fn run(listener: UnixListener, agent: impl Into<Arc<EchoAgent>>) -> io::Result<()> {
    zentinel_agent_protocol::serve(listener, agent.into()).await
}

/// [`run`] with explicit serving options (e.g. the encodings the agent accepts).
pub async fn run_with(
    listener: UnixListener,
    agent: impl Into<Arc<EchoAgent>>,
    options: zentinel_agent_protocol::sdk::ServeOptions,
) -> io::Result<()> {
    zentinel_agent_protocol::server::serve_with(listener, agent.into(), options).await
}
