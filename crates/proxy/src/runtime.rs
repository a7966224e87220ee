//! The runtime snapshot: everything built from one validated configuration — per-listener
//! route matchers, per-route policies, upstream pools, retry budgets, agent clients. Immutable once built,
//! shared behind an `ArcSwap`, loaded once per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use zentinel_config::RouteMatcher;
use zentinel_config::model::{Config, Route};

use crate::BuildError;
use crate::access_log::AccessLog;
use crate::admin::AdminToken;
use crate::agents::{Agents, RouteAgents};
use crate::audit::AuditLog;
use crate::inference::RouteInference;
use crate::metrics::{self, Registry, RouteMetrics, UpstreamMetrics};
use crate::pool::Pool;
use crate::ratelimit::{self, Limiters, RouteLimit};
use crate::retry::RetryBudget;
use crate::upstream_tls::{self, UpstreamTls};

/// What one route needs at request time.
#[derive(Debug)]
pub struct RouteRuntime {
    /// Index of the route's pool in [`Runtime::pools`].
    pub pool: usize,
    /// Request body limit in bytes.
    pub max_body_bytes: u64,
    /// Requests on this route at once, if capped.
    pub max_in_flight: Option<usize>,
    /// Requests on this route now.
    pub in_flight: AtomicUsize,
    /// Retry budget.
    pub retry_budget: RetryBudget,
    /// The built-in filters applied, in `filters` order (before any agent).
    pub(crate) limits: Vec<RouteLimit>,
    /// The agents consulted, per event.
    pub(crate) agents: RouteAgents,
    /// Token-aware limits, when the route has an `inference` block.
    pub(crate) inference: Option<RouteInference>,
    /// Its requests and their durations, across reloads.
    pub(crate) metrics: Arc<RouteMetrics>,
}

/// One configuration, ready to serve.
#[derive(Debug)]
pub struct Runtime {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// One matcher per listener, in listener order.
    pub matchers: Vec<RouteMatcher>,
    /// One entry per route, in `config.routes` order.
    pub routes: Vec<RouteRuntime>,
    /// One pool per upstream, in `config.upstreams` order.
    pub pools: Vec<Pool>,
    /// The prepared TLS settings per upstream (in `config.upstreams` order); `None` for
    /// clear text.
    pub(crate) upstream_tls: Vec<Option<UpstreamTls>>,
    /// Requests being processed now, across listeners.
    pub in_flight: AtomicUsize,
    /// The request-ID header name, parsed once.
    pub request_id_header: http::HeaderName,
    /// The agents, with their connections, permits and breakers.
    pub(crate) agents: Agents,
    /// The rate-limit filters, with their buckets.
    pub(crate) limiters: Limiters,
    /// Where access log lines go.
    pub(crate) access_log: AccessLog,
    /// Where security decisions go.
    pub(crate) audit_log: AuditLog,
    /// The process's metrics, shared by every runtime.
    pub(crate) metrics: Arc<Registry>,
    /// The metrics of requests that get no route.
    pub(crate) unmatched: Arc<RouteMetrics>,
    /// One entry per upstream, in `config.upstreams` order.
    pub(crate) upstream_metrics: Vec<Arc<UpstreamMetrics>>,
    /// FNV-1a hash of the effective configuration as JSON.
    pub(crate) config_hash: u64,
    /// When this runtime was built.
    pub(crate) built: Instant,
    /// The admin API's bearer token, read from `admin.token-file`.
    pub(crate) admin_token: Option<AdminToken>,
}

impl Runtime {
    /// Builds the runtime for `config` (resolving target host names once, loading and
    /// checking the upstreams' TLS files once), with metrics of its own.
    pub fn build(config: Arc<Config>) -> Result<Self, BuildError> {
        Self::build_in(config, &Arc::new(Registry::default()))
    }

    /// [`Self::build`], counting in `registry` (which outlives every runtime).
    pub(crate) fn build_in(
        config: Arc<Config>,
        registry: &Arc<Registry>,
    ) -> Result<Self, BuildError> {
        Self::build_after(config, registry, None)
    }

    /// [`Self::build_in`] for a reload: what `previous` (the runtime being replaced) can
    /// hand over unchanged is taken rather than made again (rate-limit filters with their
    /// buckets and backend connections).
    pub(crate) fn build_after(
        config: Arc<Config>,
        registry: &Arc<Registry>,
        previous: Option<&Runtime>,
    ) -> Result<Self, BuildError> {
        let built = Instant::now();
        let admin_token = match config.admin.as_ref().and_then(|a| a.token_file.as_ref()) {
            Some(file) => Some(AdminToken::read(file)?),
            None => None,
        };
        let pools = config
            .upstreams
            .iter()
            .map(Pool::new)
            .collect::<Result<Vec<_>, _>>()?;
        let upstream_tls = upstream_tls::prepare(&config.upstreams)?;
        let agents = Agents::start(&config, registry)?;
        let limiters = Limiters::new(&config, registry, previous.map(|p| &p.limiters))?;
        let routes = config
            .routes
            .iter()
            .map(|r| route_runtime(&config, (&agents, &limiters), registry, r))
            .collect::<Result<Vec<_>, _>>()?;
        let matchers = config
            .listeners
            .iter()
            .map(|l| RouteMatcher::for_listener(&config, l))
            .collect();
        // Validated as a header name by the config crate; parsed once here.
        let request_id_header =
            http::HeaderName::from_bytes(config.server.request_id_header.as_bytes())
                .map_err(|e| BuildError::Internal(format!("request-id-header: {e}")))?;
        let access_log = AccessLog::new(&config.observability.access_log)?;
        let audit_log = AuditLog::new(&config.observability.audit_log)?;
        let upstream_metrics = config
            .upstreams
            .iter()
            .map(|u| registry.upstream(&u.id))
            .collect();
        let json = serde_json::to_vec(&*config)
            .map_err(|e| BuildError::Internal(format!("configuration as JSON: {e}")))?;
        Ok(Self {
            config,
            matchers,
            routes,
            pools,
            upstream_tls,
            in_flight: AtomicUsize::new(0),
            request_id_header,
            agents,
            limiters,
            access_log,
            audit_log,
            metrics: registry.clone(),
            unmatched: registry.unmatched(),
            upstream_metrics,
            config_hash: metrics::fnv1a(&json),
            built,
            admin_token,
        })
    }

    /// Carries the upstream pools' health from `old` (see [`Pool::inherit`]), and the usage
    /// of `inference` blocks whose settings are unchanged (rate-limit filters were taken over
    /// when the runtime was built, [`Self::build_after`]).
    pub(crate) fn inherit(&mut self, old: &Runtime) {
        for (route, rr) in self.config.routes.iter().zip(&mut self.routes) {
            let old_route = old.config.routes.iter().position(|o| o.id == route.id);
            if let (Some(new), Some(Some(o))) = (
                &mut rr.inference,
                old_route.map(|i| &old.routes[i].inference),
            ) {
                new.inherit(o);
            }
        }
        for pool in &self.pools {
            if let Some(o) = old.pools.iter().find(|o| o.id == pool.id) {
                pool.inherit(o);
            }
        }
    }

    /// The route at `index` of `config.routes`.
    pub fn route(&self, index: usize) -> (&Route, &RouteRuntime) {
        (&self.config.routes[index], &self.routes[index])
    }
}

fn route_runtime(
    config: &Config,
    (agents, limiters): (&Agents, &Limiters),
    registry: &Registry,
    r: &Route,
) -> Result<RouteRuntime, BuildError> {
    let pool = config
        .upstreams
        .iter()
        .position(|u| u.id == r.upstream)
        .ok_or_else(|| BuildError::Internal(format!("route {} names a missing upstream", r.id)))?;
    Ok(RouteRuntime {
        pool,
        max_body_bytes: r
            .limits
            .max_body_bytes
            .unwrap_or(config.limits.max_body_bytes),
        max_in_flight: r.limits.max_in_flight_requests.map(|n| n as usize),
        in_flight: AtomicUsize::new(0),
        retry_budget: RetryBudget::new(r.retry.budget_percent, r.retry.min_retries_per_second),
        limits: ratelimit::route_plan(limiters, registry, r),
        agents: RouteAgents::new(agents, r),
        inference: RouteInference::new(registry, r),
        metrics: registry.route(&r.id),
    })
}

/// The current runtime, swapped atomically on reload.
#[derive(Debug)]
pub struct Shared {
    current: ArcSwap<Runtime>,
    /// Counts swaps; background services watch it to follow the current runtime.
    generation: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// Shares `runtime`.
    pub fn new(runtime: Runtime) -> Self {
        Self {
            current: ArcSwap::from_pointee(runtime),
            generation: tokio::sync::watch::channel(0).0,
        }
    }

    /// The runtime a new request uses until it ends.
    pub fn load(&self) -> Arc<Runtime> {
        self.current.load_full()
    }

    /// Makes `runtime` the current one; requests that started before keep the old one until
    /// they end. Returns the old one.
    pub(crate) fn swap(&self, runtime: Runtime) -> Arc<Runtime> {
        let old = self.current.swap(Arc::new(runtime));
        self.generation.send_modify(|g| *g += 1);
        old
    }

    /// Changes whenever the runtime is swapped.
    pub(crate) fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

/// A slot taken in an in-flight counter, given back on drop.
#[derive(Debug)]
pub struct Slot {
    runtime: Arc<Runtime>,
    counter: Counter,
}

#[derive(Debug, Clone, Copy)]
enum Counter {
    Global,
    Route(usize),
    Uncapped,
}

impl Slot {
    /// Takes a global slot; `None` when `max-in-flight-requests` is reached.
    pub fn global(runtime: &Arc<Runtime>) -> Option<Self> {
        let max = runtime.config.limits.max_in_flight_requests as usize;
        take(&runtime.in_flight, max).then(|| Self {
            runtime: runtime.clone(),
            counter: Counter::Global,
        })
    }

    /// Takes a slot on route `index`; `None` when its cap is reached.
    pub fn route(runtime: &Arc<Runtime>, index: usize) -> Option<Self> {
        let r = &runtime.routes[index];
        let counter = match r.max_in_flight {
            None => Counter::Uncapped,
            Some(max) if take(&r.in_flight, max) => Counter::Route(index),
            Some(_) => return None,
        };
        Some(Self {
            runtime: runtime.clone(),
            counter,
        })
    }
}

fn take(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

impl Drop for Slot {
    fn drop(&mut self) {
        match self.counter {
            Counter::Global => self.runtime.in_flight.fetch_sub(1, Ordering::AcqRel),
            Counter::Route(i) => self.runtime.routes[i]
                .in_flight
                .fetch_sub(1, Ordering::AcqRel),
            Counter::Uncapped => 0,
        };
    }
}
