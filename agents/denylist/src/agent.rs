//! The denylist as an SDK [`Agent`]: the rule set in force, replaced whole by each valid
//! configuration, consulted on every request-headers event.

use std::sync::{Arc, PoisonError, RwLock};

use zentinel_agent_protocol::{Agent, AgentResponse, Capabilities, RequestHeaders, event_kind};

use crate::rules::RuleSet;

/// The denylist agent. One value serves every connection.
#[derive(Debug)]
pub struct DenylistAgent {
    rules: RwLock<Arc<RuleSet>>,
}

impl Default for DenylistAgent {
    fn default() -> Self {
        Self::new(RuleSet::default())
    }
}

impl DenylistAgent {
    /// An agent enforcing `rules` until a configuration replaces them. The proxy's handshake
    /// always carries one (`null` when the agent has no `config {}` block: no rules).
    pub fn new(rules: RuleSet) -> Self {
        Self {
            rules: RwLock::new(Arc::new(rules)),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        // A poisoned lock still holds a whole `Arc`: writers only swap it.
        Arc::clone(&self.rules.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Agent for DenylistAgent {
    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::new("denylist", [event_kind::REQUEST_HEADERS]);
        c.version = env!("CARGO_PKG_VERSION").to_owned();
        c.features.config_push = true;
        c
    }

    /// Replaces the rules. An invalid configuration is refused with its precise message
    /// (in the handshake: `success:false`) and the previous rules stay in force.
    fn on_configure(&self, config: serde_json::Value) -> Result<(), String> {
        let rules = RuleSet::from_config(&config).map_err(|e| e.to_string())?;
        if rules.rules().is_empty() {
            tracing::warn!("no rules configured: every request is allowed");
        } else {
            tracing::info!(rules = rules.rules().len(), "rules applied");
        }
        *self.rules.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rules);
        Ok(())
    }

    async fn on_request_headers(&self, event: RequestHeaders) -> AgentResponse {
        let answer = self.rules().decide(&event);
        if let Some(rule) = answer.audit.rule_ids.first() {
            tracing::info!(
                correlation_id = %event.correlation_id,
                rule = %rule,
                client_ip = %event.metadata.client_ip,
                "blocked"
            );
        }
        answer
    }
}
