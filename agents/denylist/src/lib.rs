//! `zentinel-agent-denylist`: a Zentinel agent that blocks requests by client address, path
//! and header value. Rules come from the agent's `config {}` block (see `README.md`); the
//! first rule whose conditions all hold blocks, naming itself in the audit metadata.
//!
//! - [`RuleSet`]: the validated rules and the decision for one request (pure, no I/O).
//! - [`ConfigError`]: why a configuration was refused.
//! - [`DenylistAgent`]: the rules as an SDK agent; [`run`] serves it on a Unix listener.

mod agent;
mod config;
mod path;
mod rules;

use std::io;
use std::sync::Arc;

use tokio::net::UnixListener;

pub use agent::DenylistAgent;
pub use config::{ConfigError, DEFAULT_MESSAGE, DEFAULT_STATUS};
pub use rules::{AUDIT_TAG, Rule, RuleId, RuleSet};

/// Serves `agent` on `listener` until accepting fails; dropping the future closes every
/// connection.
pub async fn run(listener: UnixListener, agent: impl Into<Arc<DenylistAgent>>) -> io::Result<()> {
    zentinel_agent_protocol::serve(listener, agent.into()).await
}
