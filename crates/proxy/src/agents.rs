//! External agents as the data plane sees them: one client per agent (its connections run on
//! a small I/O runtime of their own, never on the request workers), a call permit semaphore
//! bounded by `max-concurrent-calls` whose wait is bounded by `queue-timeout-ms`, a per-call
//! deadline, and a circuit breaker. A call either returns the agent's answer or one
//! [`Failure`]; what the request does with a failure is the route's failure mode
//! ([`verdict`]).
//!
//! Nothing here waits without a bound, and a call to one agent never touches another agent's
//! permits, connections or breaker.

pub(crate) mod body;
mod breaker;
pub(crate) mod event;
pub(crate) mod verdict;

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use zentinel_agent_protocol::client::{AgentClient, CallError, ClientConfig, Endpoint};
use zentinel_agent_protocol::{AgentResponse, Capabilities, Encoding, Event};
use zentinel_config::model::{Agent, AgentEvent, AgentTransport, Config, FailureMode, Route};

use crate::BuildError;
use crate::io_runtime::IoRuntime;
use crate::metrics::{AgentMetrics, AgentRouteCounters, ClientRegistration, Registry};
use body::BodyUse;
use breaker::Breaker;
pub(crate) use breaker::BreakerState;

/// Why an agent gave no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No answer within `timeout-ms`.
    Timeout,
    /// No connection to the agent, or it went away during the call.
    Unreachable,
    /// No call permit within `queue-timeout-ms`.
    Saturated,
    /// The breaker is open.
    BreakerOpen,
    /// The agent answered something the protocol does not allow.
    Protocol,
    /// The body is longer than the agent accepts (it is not called for it).
    BodyTooLarge,
}

impl Failure {
    /// Every failure, in metrics order.
    pub(crate) const ALL: [Self; 6] = [
        Self::Timeout,
        Self::Unreachable,
        Self::Saturated,
        Self::BreakerOpen,
        Self::Protocol,
        Self::BodyTooLarge,
    ];

    /// Position in [`Self::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The status a fail-closed route answers with: 504 for a timeout, 413 for a body too
    /// large, 503 otherwise.
    pub(crate) fn status(self) -> u16 {
        match self {
            Self::Timeout => 504,
            Self::BodyTooLarge => 413,
            _ => 503,
        }
    }

    /// The reason named in audit lines and metrics.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::Saturated => "saturated",
            Self::BreakerOpen => "breaker-open",
            Self::Protocol => "protocol-error",
            Self::BodyTooLarge => "body-too-large",
        }
    }
}

/// What one agent call came to, as counted in metrics and written in the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The agent allowed the request.
    Allow,
    /// The agent blocked it.
    Block,
    /// The agent redirected it.
    Redirect,
    /// The agent asked for a challenge.
    Challenge,
    /// No verdict.
    Failed(Failure),
}

impl Outcome {
    /// Every outcome, in metrics order.
    pub(crate) const ALL: [Self; 10] = [
        Self::Allow,
        Self::Block,
        Self::Redirect,
        Self::Challenge,
        Self::Failed(Failure::Timeout),
        Self::Failed(Failure::Unreachable),
        Self::Failed(Failure::Saturated),
        Self::Failed(Failure::BreakerOpen),
        Self::Failed(Failure::Protocol),
        Self::Failed(Failure::BodyTooLarge),
    ];

    /// Position in [`Self::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Allow => 0,
            Self::Block => 1,
            Self::Redirect => 2,
            Self::Challenge => 3,
            Self::Failed(f) => 4 + f.index(),
        }
    }

    /// `allow`, `block`, `redirect`, `challenge`, or the failure's reason.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Block => "block",
            Self::Redirect => "redirect",
            Self::Challenge => "challenge",
            Self::Failed(f) => f.reason(),
        }
    }
}

/// One agent, ready to be called.
#[derive(Debug)]
pub(crate) struct AgentRuntime {
    /// Its settings.
    pub config: Agent,
    client: AgentClient,
    permits: Semaphore,
    breaker: Breaker,
    /// Its metrics, which outlive this runtime.
    pub metrics: Arc<AgentMetrics>,
    /// Counts the client's counters in the agent's totals until this runtime is dropped.
    _counted: ClientRegistration,
}

impl AgentRuntime {
    /// Calls the agent with `event`: breaker, then permit, then the answer, all within
    /// `timeout-ms` from now.
    pub(crate) async fn call(&self, event: Event) -> Result<AgentResponse, Failure> {
        let deadline = Instant::now() + self.config.timeout;
        let Some(ticket) = self.breaker.admit() else {
            return Err(Failure::BreakerOpen);
        };
        let _permit = if self.config.queue_timeout.is_zero() {
            self.permits.try_acquire().ok()
        } else {
            let wait = self.config.queue_timeout.min(self.config.timeout);
            tokio::time::timeout(wait, self.permits.acquire())
                .await
                .ok()
                .and_then(Result::ok)
        };
        if _permit.is_none() {
            // Our own cap, not the agent's fault: the breaker does not count it.
            return Err(Failure::Saturated);
        }
        let result = tokio::time::timeout_at(deadline, self.client.call(event)).await;
        let outcome = match result {
            Err(_) => Err(Failure::Timeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(CallError::Overloaded)) => return Err(Failure::Saturated),
            Ok(Err(CallError::Protocol(detail))) => {
                tracing::warn!(agent = %self.config.id, %detail, "agent protocol error");
                Err(Failure::Protocol)
            }
            Ok(Err(_)) => Err(Failure::Unreachable),
        };
        let state = self.breaker.record(ticket, outcome.is_ok());
        if state == BreakerState::Open && outcome.is_err() {
            tracing::warn!(agent = %self.config.id, breaker = state.as_str(), "agent calls fail fast");
        }
        outcome
    }

    /// Sends a `request-complete` event; never waits.
    pub(crate) fn notify(&self, event: zentinel_agent_protocol::RequestComplete) {
        self.client.notify(event);
    }

    /// Whether the agent receives `event`.
    pub(crate) fn wants(&self, event: AgentEvent) -> bool {
        self.config.events.contains(&event)
    }

    /// Whether a call would find a connection now.
    pub(crate) fn is_ready(&self) -> bool {
        self.client.is_ready()
    }

    /// The capabilities of the latest successful handshake; `None` until one succeeded.
    pub(crate) fn capabilities(&self) -> Option<Capabilities> {
        self.client.capabilities()
    }

    /// The breaker's state now.
    pub(crate) fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// `(permits in use, permits)`.
    pub(crate) fn permits(&self) -> (usize, usize) {
        let size = self.config.max_concurrent_calls as usize;
        (size.saturating_sub(self.permits.available_permits()), size)
    }
}

/// An agent a route consults, with the failure mode that applies on that route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Use {
    /// Index in [`Agents::list`].
    pub agent: usize,
    /// The route's failure mode, or else the agent's.
    pub mode: FailureMode,
    /// Index of the agent's counters on this route in [`RouteAgents::counters`].
    pub slot: usize,
}

/// The agents of one route, per event, in the route's `filters` order.
#[derive(Debug, Default)]
pub(crate) struct RouteAgents {
    /// Consulted on the request headers (in parallel).
    pub request_headers: Vec<Use>,
    /// Consulted on the response headers.
    pub response_headers: Vec<Use>,
    /// Sent the request body.
    pub request_body: Vec<BodyUse>,
    /// Sent the response body.
    pub response_body: Vec<BodyUse>,
    /// Told when the request is complete.
    pub request_complete: Vec<usize>,
    /// What each agent's calls on this route came to, one entry per agent the route uses.
    pub counters: Vec<Arc<AgentRouteCounters>>,
}

impl RouteAgents {
    /// The plan for `route`.
    pub(crate) fn new(agents: &Agents, route: &Route) -> Self {
        let mut plan = Self::default();
        for id in route.agents() {
            let Some(index) = agents.list.iter().position(|a| a.config.id == *id) else {
                continue;
            };
            let a = &agents.list[index];
            let use_ = Use {
                agent: index,
                mode: route.failure_mode.unwrap_or(a.config.failure_mode),
                slot: plan.counters.len(),
            };
            plan.counters.push(a.metrics.route(&route.id));
            if a.wants(AgentEvent::RequestHeaders) {
                plan.request_headers.push(use_);
            }
            if a.wants(AgentEvent::ResponseHeaders) {
                plan.response_headers.push(use_);
            }
            if a.wants(AgentEvent::RequestBody) {
                plan.request_body.push(BodyUse {
                    agent: use_,
                    mode: a.config.request_body_mode,
                    limit: a.config.max_request_body_bytes,
                });
            }
            if a.wants(AgentEvent::ResponseBody) {
                plan.response_body.push(BodyUse {
                    agent: use_,
                    mode: a.config.response_body_mode,
                    limit: a.config.max_response_body_bytes,
                });
            }
            if a.wants(AgentEvent::RequestComplete) {
                plan.request_complete.push(index);
            }
        }
        plan
    }
}

/// All agents of one configuration and the runtime their connections live on.
#[derive(Debug)]
pub(crate) struct Agents {
    /// In `config.agents` order.
    pub list: Vec<AgentRuntime>,
    /// Kept for the clients' connection tasks, which run on it.
    _io: Option<IoRuntime>,
}

impl Agents {
    /// Starts a client for each agent of `config`; connections are made in the background.
    /// Each agent's metrics come from `registry`.
    pub(crate) fn start(config: &Config, registry: &Registry) -> Result<Self, BuildError> {
        if config.agents.is_empty() {
            return Ok(Self {
                list: Vec::new(),
                _io: None,
            });
        }
        let io = IoRuntime::new("zentinel-agents", "agent")?;
        let list = {
            let _entered = io.get().map(tokio::runtime::Runtime::enter);
            config
                .agents
                .iter()
                .map(|a| agent_runtime(a, registry.agent(&a.id)))
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok(Self {
            list,
            _io: Some(io),
        })
    }

    /// Waits, up to the longest handshake timeout, for every agent to have a live
    /// connection; returns the agents that have none (their routes apply their failure mode
    /// until they connect).
    pub(crate) fn wait_ready(&self) -> Vec<&AgentRuntime> {
        let longest = self.list.iter().map(|a| a.config.handshake_timeout).max();
        let deadline = std::time::Instant::now() + longest.unwrap_or_default();
        loop {
            let missing: Vec<_> = self.list.iter().filter(|a| !a.client.is_ready()).collect();
            if missing.is_empty() || std::time::Instant::now() >= deadline {
                return missing;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

fn agent_runtime(agent: &Agent, metrics: Arc<AgentMetrics>) -> Result<AgentRuntime, BuildError> {
    let endpoint = match &agent.transport {
        AgentTransport::UnixSocket(p) => Endpoint::Unix(p.clone()),
        AgentTransport::Grpc(addr) => Endpoint::Grpc(addr.clone()),
        other => {
            return Err(BuildError::Internal(format!(
                "agent \"{}\": transport {other:?} is not supported",
                agent.id
            )));
        }
    };
    let max_concurrent = agent.max_concurrent_calls as usize;
    let mut settings = ClientConfig::with_endpoint(agent.id.to_string(), endpoint);
    settings.connections = agent.connections as usize;
    settings.max_frame = u32::try_from(agent.max_frame_bytes).unwrap_or(u32::MAX);
    settings.handshake_timeout = agent.handshake_timeout;
    settings.config = agent.config.clone();
    env!("CARGO_PKG_VERSION").clone_into(&mut settings.proxy_version);
    settings.encodings = vec![Encoding::MsgPack, Encoding::Json];
    // The semaphore caps calls across connections; no connection needs room for more.
    settings.max_in_flight = max_concurrent;
    let client = AgentClient::start(settings);
    Ok(AgentRuntime {
        config: agent.clone(),
        _counted: metrics.register(&client),
        client,
        permits: Semaphore::new(max_concurrent),
        breaker: Breaker::new(&agent.circuit_breaker),
        metrics,
    })
}
