//! Metrics: one process-wide [`Registry`] that outlives every runtime, so counters survive
//! reloads. Each runtime, when it is built, looks up (or creates) the metrics of its routes,
//! upstreams and agents by ID and holds them as `Arc`s; the request path then only does
//! relaxed atomic adds on what it holds — no lock, no allocation, no map lookup.
//!
//! Gauges (target health, in-flight counts, agent permits, breaker state, open connections)
//! are not kept here: they are read from the current runtime when `/metrics` is scraped
//! ([`scrape`]). The text exposition format is written by [`text`].
//!
//! Metrics of a route, upstream or agent that a reload removed stay in the registry (and in
//! the exposition) until the process restarts; they just stop moving.

pub(crate) mod scrape;
pub(crate) mod text;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zentinel_agent_protocol::client::{AgentClient, ClientStats};
use zentinel_config::model::{AgentId, FilterId, OnBackendFailure, RouteId, UpstreamId};

use crate::agents::{Failure, Outcome};
use crate::inference::InferenceCounters;
use crate::ratelimit::Failure as BackendFailure;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Upper bounds of the histogram buckets, as written in `le` labels (seconds).
pub(crate) const BUCKET_LABELS: [&str; 16] = [
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
    "2.5", "5", "10", "30", "60",
];

/// The same bounds in nanoseconds.
const BUCKET_NANOS: [u64; 16] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// A latency histogram with the fixed [`BUCKET_LABELS`] buckets.
pub(crate) struct Histogram {
    /// Observations per bucket (not cumulative); the last one is above every bound.
    counts: [AtomicU64; BUCKET_NANOS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: [const { AtomicU64::new(0) }; BUCKET_NANOS.len() + 1],
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.snapshot().count())
            .finish_non_exhaustive()
    }
}

/// What a histogram held at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistogramSnapshot {
    /// Observations per bucket, not cumulative.
    pub counts: [u64; BUCKET_NANOS.len() + 1],
    /// Sum of the observations, in seconds.
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    /// Observations in all.
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl Histogram {
    /// Counts one observation.
    pub(crate) fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKET_NANOS
            .iter()
            .position(|b| nanos <= *b)
            .unwrap_or(BUCKET_NANOS.len());
        bump(&self.counts[i]);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: std::array::from_fn(|i| get(&self.counts[i])),
            sum_seconds: get(&self.sum_nanos) as f64 / 1e9,
        }
    }
}

/// Status codes counted one by one; anything else (no response sent, or a status outside
/// 100–599) is counted as code 0.
const CODES: usize = 600;

/// The metrics of one route (or of the requests that had none).
pub(crate) struct RouteMetrics {
    /// Requests by response status, indexed by the status.
    codes: [AtomicU64; CODES],
    /// From the start of the request to its end.
    pub duration: Histogram,
}

impl Default for RouteMetrics {
    fn default() -> Self {
        Self {
            codes: [const { AtomicU64::new(0) }; CODES],
            duration: Histogram::default(),
        }
    }
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMetrics").finish_non_exhaustive()
    }
}

impl RouteMetrics {
    /// Counts one finished request that was answered with `status` (0: none) after `took`.
    pub(crate) fn record(&self, status: u16, took: Duration) {
        let i = usize::from(status);
        bump(&self.codes[if (100..CODES).contains(&i) { i } else { 0 }]);
        self.duration.observe(took);
    }

    /// `(status, requests)` for every status seen, in status order.
    pub(crate) fn codes(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.codes
            .iter()
            .enumerate()
            .map(|(code, n)| (code, get(n)))
            .filter(|(_, n)| *n > 0)
    }
}

/// The metrics of one upstream.
#[derive(Debug, Default)]
pub(crate) struct UpstreamMetrics {
    /// From the start of an attempt (target chosen, before connecting) to the upstream's
    /// response headers.
    pub duration: Histogram,
}

/// What the calls of one agent on one route came to.
pub(crate) struct AgentRouteCounters {
    outcomes: [AtomicU64; Outcome::ALL.len()],
    fail_open: [AtomicU64; Failure::ALL.len()],
    fail_closed: [AtomicU64; Failure::ALL.len()],
}

impl Default for AgentRouteCounters {
    fn default() -> Self {
        Self {
            outcomes: [const { AtomicU64::new(0) }; Outcome::ALL.len()],
            fail_open: [const { AtomicU64::new(0) }; Failure::ALL.len()],
            fail_closed: [const { AtomicU64::new(0) }; Failure::ALL.len()],
        }
    }
}

impl std::fmt::Debug for AgentRouteCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRouteCounters").finish_non_exhaustive()
    }
}

impl AgentRouteCounters {
    /// Counts one call's outcome.
    pub(crate) fn call(&self, outcome: Outcome) {
        bump(&self.outcomes[outcome.index()]);
    }

    /// Counts a failure the route's failure mode let through (`open`) or answered (`closed`).
    pub(crate) fn fallback(&self, failure: Failure, open: bool) {
        let counters = if open {
            &self.fail_open
        } else {
            &self.fail_closed
        };
        bump(&counters[failure.index()]);
    }

    /// `(outcome, calls)` for every outcome, in [`Outcome::ALL`] order.
    pub(crate) fn outcomes(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        Outcome::ALL
            .into_iter()
            .map(|o| (o, get(&self.outcomes[o.index()])))
    }

    /// `(failure, fallbacks)` for every failure, open or closed.
    pub(crate) fn fallbacks(&self, open: bool) -> impl Iterator<Item = (Failure, u64)> + '_ {
        let counters = if open {
            &self.fail_open
        } else {
            &self.fail_closed
        };
        Failure::ALL
            .into_iter()
            .map(|f| (f, get(&counters[f.index()])))
    }
}

/// The counters of the agent clients, by name and meaning, in [`client_counts`] order.
pub(crate) const CLIENT_COUNTERS: [(&str, &str); 6] = [
    (
        "protocol_errors",
        "Agent connections closed because the agent broke the protocol.",
    ),
    (
        "unknown_correlation",
        "Agent answers dropped because no pending call had their correlation ID.",
    ),
    (
        "reconnects",
        "Connection attempts to the agent after the first one of each connection slot.",
    ),
    (
        "handshake_failures",
        "Agent handshakes that failed (refused, timed out, bad version or encoding).",
    ),
    (
        "notifications_dropped",
        "Notifications (request-complete, configure) not sent: no connection or queue full.",
    ),
    ("cancels_sent", "Cancel frames sent for abandoned calls."),
];

fn client_counts(s: ClientStats) -> [u64; CLIENT_COUNTERS.len()] {
    [
        s.protocol_errors,
        s.unknown_correlation,
        s.reconnects,
        s.handshake_failures,
        s.notifications_dropped,
        s.cancels_sent,
    ]
}

/// The clients one agent ID has had: those alive now, and what the ones gone had counted.
#[derive(Debug, Default)]
struct Clients {
    next: u64,
    live: Vec<(u64, AgentClient)>,
    carried: [u64; CLIENT_COUNTERS.len()],
}

/// The metrics of one agent, across the runtimes (and clients) it has had.
#[derive(Debug, Default)]
pub(crate) struct AgentMetrics {
    /// Calls that reached the agent, from the start of the call (permit wait included) to
    /// its answer, timeout or protocol error.
    pub duration: Histogram,
    by_route: Mutex<BTreeMap<RouteId, Arc<AgentRouteCounters>>>,
    clients: Mutex<Clients>,
}

/// A client counted in its agent's totals; when dropped (with the runtime that owns the
/// client), its final counts are carried over, so totals never go back.
#[derive(Debug)]
pub(crate) struct ClientRegistration {
    metrics: Arc<AgentMetrics>,
    id: u64,
}

impl Drop for ClientRegistration {
    fn drop(&mut self) {
        let mut clients = lock(&self.metrics.clients);
        if let Some(i) = clients.live.iter().position(|(id, _)| *id == self.id) {
            let (_, client) = clients.live.swap_remove(i);
            let last = client_counts(client.stats());
            for (total, n) in clients.carried.iter_mut().zip(last) {
                *total += n;
            }
        }
    }
}

impl AgentMetrics {
    /// The counters of this agent's calls on route `route`.
    pub(crate) fn route(&self, route: &RouteId) -> Arc<AgentRouteCounters> {
        lock(&self.by_route)
            .entry(route.clone())
            .or_default()
            .clone()
    }

    /// Counts `client` in this agent's client totals until the registration is dropped.
    pub(crate) fn register(self: &Arc<Self>, client: &AgentClient) -> ClientRegistration {
        let mut clients = lock(&self.clients);
        clients.next += 1;
        let id = clients.next;
        clients.live.push((id, client.clone()));
        ClientRegistration {
            metrics: self.clone(),
            id,
        }
    }

    /// The client counters ([`CLIENT_COUNTERS`] order) summed over every client this agent
    /// has had since start-up.
    pub(crate) fn client_totals(&self) -> [u64; CLIENT_COUNTERS.len()] {
        let clients = lock(&self.clients);
        let mut totals = clients.carried;
        for (_, c) in &clients.live {
            for (total, n) in totals.iter_mut().zip(client_counts(c.stats())) {
                *total += n;
            }
        }
        totals
    }

    /// Every route's counters, by route ID.
    pub(crate) fn routes(&self) -> Vec<(RouteId, Arc<AgentRouteCounters>)> {
        lock(&self.by_route)
            .iter()
            .map(|(id, c)| (id.clone(), c.clone()))
            .collect()
    }
}

/// What one rate-limit filter did on one route.
#[derive(Debug, Default)]
pub(crate) struct RateLimitCounters {
    /// Passed at once.
    pub allowed: AtomicU64,
    /// Passed after waiting (`on-limit "delay"`).
    pub delayed: AtomicU64,
    /// Answered 429.
    pub rejected: AtomicU64,
    /// Answered 503: the shared backend failed and `on-backend-failure "closed"`.
    pub failed_closed: AtomicU64,
}

impl RateLimitCounters {
    /// Counts one request.
    pub(crate) fn count(&self, counter: &AtomicU64) {
        bump(counter);
    }

    /// `(outcome, requests)` for the four outcomes.
    pub(crate) fn read(&self) -> [(&'static str, u64); 4] {
        [
            ("allowed", get(&self.allowed)),
            ("delayed", get(&self.delayed)),
            ("rejected", get(&self.rejected)),
            ("failed_closed", get(&self.failed_closed)),
        ]
    }
}

/// Rate-limit counters by route and filter.
type RateLimitMap = BTreeMap<(RouteId, FilterId), Arc<RateLimitCounters>>;

/// Calls a shared rate-limit filter's backend did not answer, by why (timeout, unavailable,
/// error) and by what was done instead (the `on-backend-failure` in force).
#[derive(Debug, Default)]
pub(crate) struct BackendFailures {
    counts: [[AtomicU64; 3]; 3],
}

impl BackendFailures {
    const OUTCOMES: [OnBackendFailure; 3] = [
        OnBackendFailure::Local,
        OnBackendFailure::Open,
        OnBackendFailure::Closed,
    ];

    /// Counts one failure.
    pub(crate) fn count(&self, failure: BackendFailure, outcome: OnBackendFailure) {
        let o = Self::OUTCOMES
            .iter()
            .position(|x| *x == outcome)
            .unwrap_or(0);
        bump(&self.counts[failure.index()][o]);
    }

    /// `(reason, outcome, failures)` for every pair.
    pub(crate) fn read(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::with_capacity(9);
        for f in BackendFailure::ALL {
            for (i, o) in Self::OUTCOMES.iter().enumerate() {
                out.push((f.as_str(), o.as_str(), get(&self.counts[f.index()][i])));
            }
        }
        out
    }
}

/// Reload outcomes.
#[derive(Debug)]
pub(crate) struct Reloads {
    success: AtomicU64,
    failure: AtomicU64,
    /// When the configuration serving now was applied (start-up or the last successful
    /// reload), in milliseconds since the Unix epoch.
    last_success_ms: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Reloads {
    /// Counts a reload that was applied.
    pub(crate) fn succeeded(&self) {
        bump(&self.success);
        self.last_success_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Counts a reload that was refused.
    pub(crate) fn failed(&self) {
        bump(&self.failure);
    }

    /// `(successes, failures, last success in seconds since the epoch)`.
    pub(crate) fn read(&self) -> (u64, u64, f64) {
        (
            get(&self.success),
            get(&self.failure),
            get(&self.last_success_ms) as f64 / 1000.0,
        )
    }
}

/// Every counter and histogram of the process, by route, upstream and agent ID.
#[derive(Debug)]
pub(crate) struct Registry {
    routes: Mutex<BTreeMap<RouteId, Arc<RouteMetrics>>>,
    /// Requests that got no route: none matched, or they were refused before routing.
    unmatched: Arc<RouteMetrics>,
    upstreams: Mutex<BTreeMap<UpstreamId, Arc<UpstreamMetrics>>>,
    agents: Mutex<BTreeMap<AgentId, Arc<AgentMetrics>>>,
    rate_limits: Mutex<RateLimitMap>,
    rate_limit_backends: Mutex<BTreeMap<FilterId, Arc<BackendFailures>>>,
    inference: Mutex<BTreeMap<RouteId, Arc<InferenceCounters>>>,
    /// Reload outcomes.
    pub reloads: Reloads,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            routes: Mutex::default(),
            unmatched: Arc::default(),
            upstreams: Mutex::default(),
            agents: Mutex::default(),
            rate_limit_backends: Mutex::default(),
            rate_limits: Mutex::default(),
            inference: Mutex::default(),
            reloads: Reloads {
                success: AtomicU64::new(0),
                failure: AtomicU64::new(0),
                last_success_ms: AtomicU64::new(now_ms()),
            },
        }
    }
}

impl Registry {
    /// The metrics of route `id`, created on first use.
    pub(crate) fn route(&self, id: &RouteId) -> Arc<RouteMetrics> {
        lock(&self.routes).entry(id.clone()).or_default().clone()
    }

    /// The metrics of requests without a route.
    pub(crate) fn unmatched(&self) -> Arc<RouteMetrics> {
        self.unmatched.clone()
    }

    /// The metrics of upstream `id`, created on first use.
    pub(crate) fn upstream(&self, id: &UpstreamId) -> Arc<UpstreamMetrics> {
        lock(&self.upstreams).entry(id.clone()).or_default().clone()
    }

    /// The metrics of agent `id`, created on first use.
    pub(crate) fn agent(&self, id: &AgentId) -> Arc<AgentMetrics> {
        lock(&self.agents).entry(id.clone()).or_default().clone()
    }

    /// The counters of filter `filter` on route `route`, created on first use.
    pub(crate) fn rate_limit(&self, route: &RouteId, filter: &FilterId) -> Arc<RateLimitCounters> {
        lock(&self.rate_limits)
            .entry((route.clone(), filter.clone()))
            .or_default()
            .clone()
    }

    /// The backend failures of shared filter `filter`, created on first use.
    pub(crate) fn rate_limit_backend(&self, filter: &FilterId) -> Arc<BackendFailures> {
        lock(&self.rate_limit_backends)
            .entry(filter.clone())
            .or_default()
            .clone()
    }

    /// Every shared filter's backend failures, by filter.
    pub(crate) fn rate_limit_backends(&self) -> Vec<(FilterId, Arc<BackendFailures>)> {
        lock(&self.rate_limit_backends)
            .iter()
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect()
    }

    /// Every rate-limit filter's counters, by route and filter.
    pub(crate) fn rate_limits(&self) -> Vec<((RouteId, FilterId), Arc<RateLimitCounters>)> {
        lock(&self.rate_limits)
            .iter()
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect()
    }

    /// The counters of route `route`'s `inference` block, created on first use.
    pub(crate) fn inference(&self, route: &RouteId) -> Arc<InferenceCounters> {
        lock(&self.inference)
            .entry(route.clone())
            .or_default()
            .clone()
    }

    /// Every `inference` block's counters, by route.
    pub(crate) fn inferences(&self) -> Vec<(RouteId, Arc<InferenceCounters>)> {
        lock(&self.inference)
            .iter()
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect()
    }

    fn routes(&self) -> Vec<(String, Arc<RouteMetrics>)> {
        let mut out: Vec<_> = lock(&self.routes)
            .iter()
            .map(|(id, m)| (id.to_string(), m.clone()))
            .collect();
        out.push((String::new(), self.unmatched.clone()));
        out
    }

    fn upstreams(&self) -> Vec<(UpstreamId, Arc<UpstreamMetrics>)> {
        lock(&self.upstreams)
            .iter()
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect()
    }

    pub(crate) fn agents(&self) -> Vec<(AgentId, Arc<AgentMetrics>)> {
        lock(&self.agents)
            .iter()
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect()
    }
}

/// A stable 64-bit FNV-1a hash of `bytes`, for `zentinel_config_info`.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_labels_and_bounds_agree() {
        for (label, nanos) in BUCKET_LABELS.iter().zip(BUCKET_NANOS) {
            let secs: f64 = label.parse().unwrap_or(f64::NAN);
            assert!(((secs * 1e9) - nanos as f64).abs() < 1.0, "{label}");
        }
    }

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500)); // exactly on a bound: that bucket
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(61));
        let s = h.snapshot();
        assert_eq!(s.counts[0], 1);
        assert_eq!(s.counts[3], 1, "3 ms is in le=0.005");
        assert_eq!(s.counts[16], 1, "above every bound");
        assert_eq!(s.count(), 3);
        assert!((s.sum_seconds - 61.0035).abs() < 1e-9);
    }

    #[test]
    fn statuses_outside_the_table_count_as_zero() {
        let r = RouteMetrics::default();
        r.record(200, Duration::ZERO);
        r.record(200, Duration::ZERO);
        r.record(0, Duration::ZERO);
        r.record(999, Duration::ZERO);
        assert_eq!(r.codes().collect::<Vec<_>>(), [(0, 2), (200, 2)]);
    }

    #[test]
    fn the_registry_hands_out_the_same_metrics_for_the_same_id() {
        let reg = Registry::default();
        let id = RouteId::new("r");
        assert!(Arc::ptr_eq(&reg.route(&id), &reg.route(&id)));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
