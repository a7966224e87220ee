//! Upstream pools: targets with weights, the load-balancing algorithms, and passive health.
//!
//! A pool is built once per configuration load. Selection never allocates and never blocks
//! on I/O: target addresses were resolved when the pool was built, and every algorithm works
//! on the target list with atomics (and one short lock for smooth weighted round robin).
//!
//! A target is available when neither health mechanism holds it out: passive health ejects
//! it for `ejection-time` after consecutive failed requests, and active health checks
//! (the `health` module) mark it down until enough probes succeed again. The two are
//! independent; either one alone takes the target out of selection.

mod select;

use std::net::{SocketAddr, ToSocketAddrs};

use arc_swap::ArcSwap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use zentinel_config::model::{HashKey, LoadBalancing, TargetAddr, Upstream, UpstreamId};

use crate::BuildError;

/// One target of a pool, with its live counters.
#[derive(Debug)]
pub struct Target {
    /// Address as configured (for logs).
    pub name: String,
    /// Address connected to; replaced when a host name resolves to a new address.
    addr: ArcSwap<SocketAddr>,
    /// The host name and port to resolve again, for host-name targets.
    pub(crate) dns: Option<(String, u16)>,
    /// Relative share of traffic.
    pub weight: u32,
    /// Requests in flight to this target.
    in_flight: AtomicUsize,
    /// Consecutive failed requests (passive health).
    failures: AtomicU32,
    /// Milliseconds since the pool's epoch until which the target is ejected; 0 = in service.
    ejected_until: AtomicU64,
    /// Marked down by active health checks (targets start in service).
    down: AtomicBool,
    /// An active health check has judged it at least once (for readiness).
    probed: AtomicBool,
}

impl Target {
    /// The address to connect to now.
    pub fn addr(&self) -> SocketAddr {
        **self.addr.load()
    }

    /// Replaces the address (a host name resolved to a new one); returns the old one.
    pub(crate) fn set_addr(&self, addr: SocketAddr) -> SocketAddr {
        *self.addr.swap(std::sync::Arc::new(addr))
    }
}

/// What a request tells the selector.
#[derive(Debug, Clone, Copy)]
pub struct SelectInput<'a> {
    /// Bytes of the consistent-hash key, if the pool hashes.
    pub hash_key: Option<&'a [u8]>,
    /// Targets already tried by this request.
    pub tried: Tried,
}

/// The targets one request has tried, as a bit set (pools have at most
/// [`zentinel_config::model::MAX_TARGETS`] targets).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tried([u64; 4]);

impl Tried {
    /// Marks target `i` as tried.
    pub fn insert(&mut self, i: usize) {
        if let Some(word) = self.0.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }

    /// Whether target `i` was tried.
    pub fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// A pool of targets and how to pick one.
#[derive(Debug)]
pub struct Pool {
    /// The upstream's ID.
    pub id: UpstreamId,
    /// Targets in definition order.
    pub targets: Vec<Target>,
    algorithm: LoadBalancing,
    hash_on: Option<HashKey>,
    /// Smooth weighted round robin state: current weight per target.
    rr: Mutex<Vec<i64>>,
    ring: select::Ring,
    passive: Option<(u32, Duration)>,
    epoch: Instant,
}

impl Pool {
    /// Builds the pool of `u`, resolving host names once.
    pub fn new(u: &Upstream) -> Result<Self, BuildError> {
        let mut targets = Vec::with_capacity(u.targets.len());
        for t in &u.targets {
            let addr = match &t.address {
                TargetAddr::Ip(a) => *a,
                TargetAddr::Dns { host, port } => (host.as_str(), *port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut it| it.next())
                    .ok_or_else(|| BuildError::Resolve {
                        upstream: u.id.to_string(),
                        target: t.address.to_string(),
                    })?,
            };
            targets.push(Target {
                name: t.address.to_string(),
                addr: ArcSwap::from_pointee(addr),
                dns: match &t.address {
                    TargetAddr::Dns { host, port } => Some((host.clone(), *port)),
                    TargetAddr::Ip(_) => None,
                },
                weight: t.weight,
                in_flight: AtomicUsize::new(0),
                failures: AtomicU32::new(0),
                ejected_until: AtomicU64::new(0),
                down: AtomicBool::new(false),
                probed: AtomicBool::new(false),
            });
        }
        let ring = select::Ring::new(&targets);
        let passive = u.passive_health.enabled.then_some((
            u.passive_health.consecutive_failures,
            u.passive_health.ejection_time,
        ));
        Ok(Self {
            id: u.id.clone(),
            rr: Mutex::new(vec![0; targets.len()]),
            targets,
            algorithm: u.load_balancing,
            hash_on: u.hash_on.clone(),
            ring,
            passive,
            epoch: Instant::now(),
        })
    }

    /// What the pool hashes, when it uses consistent hashing.
    pub fn hash_on(&self) -> Option<&HashKey> {
        self.hash_on.as_ref()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether target `i` may receive traffic now: not marked down by active health checks
    /// and not ejected by passive health.
    pub fn available(&self, i: usize) -> bool {
        let t = &self.targets[i];
        if t.down.load(Ordering::Relaxed) {
            return false;
        }
        let until = t.ejected_until.load(Ordering::Relaxed);
        until == 0 || self.now_ms() >= until
    }

    /// Whether active health checks hold target `i` out of selection.
    pub fn is_down(&self, i: usize) -> bool {
        self.targets[i].down.load(Ordering::Relaxed)
    }

    /// Takes target `i` out of selection (`down`) or puts it back, for active health checks.
    pub(crate) fn set_down(&self, i: usize, down: bool) {
        self.targets[i].down.store(down, Ordering::Relaxed);
    }

    /// Whether passive health holds target `i` out of selection now.
    pub fn is_ejected(&self, i: usize) -> bool {
        let until = self.targets[i].ejected_until.load(Ordering::Relaxed);
        until != 0 && self.now_ms() < until
    }

    /// Records that an active health check has judged target `i`.
    pub(crate) fn mark_probed(&self, i: usize) {
        self.targets[i].probed.store(true, Ordering::Relaxed);
    }

    /// Whether an active health check has judged target `i` at least once (in this
    /// configuration or, for the same target, an earlier one).
    pub fn is_probed(&self, i: usize) -> bool {
        self.targets[i].probed.load(Ordering::Relaxed)
    }

    /// Picks a target; `None` when no target is available.
    pub fn select(&self, input: SelectInput<'_>) -> Option<usize> {
        select::select(self, input)
    }

    /// Counts a request to target `i` as started.
    pub fn begin(&self, i: usize) {
        self.targets[i].in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request to target `i` as finished, and feeds passive health.
    pub fn end(&self, i: usize, failed: bool) {
        let t = &self.targets[i];
        t.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.record(i, failed);
    }

    /// Feeds passive health without an in-flight request (a failed connect).
    pub fn record(&self, i: usize, failed: bool) {
        let t = &self.targets[i];
        let Some((threshold, ejection)) = self.passive else {
            return;
        };
        if !failed {
            t.failures.store(0, Ordering::Relaxed);
            return;
        }
        let n = t.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= threshold {
            let until = self.now_ms() + u64::try_from(ejection.as_millis()).unwrap_or(u64::MAX / 2);
            t.ejected_until.store(until.max(1), Ordering::Relaxed);
            t.failures.store(0, Ordering::Relaxed);
            tracing::warn!(upstream = %self.id, target = %t.name, failures = n, "target ejected");
        }
    }

    /// Carries what the previous configuration's pool of the same upstream learned into
    /// this one, target by target (matched by configured address): the active health
    /// verdict, a passive ejection still running, a host name's current address. A reload
    /// then does not send traffic to a target known to be down.
    pub(crate) fn inherit(&self, old: &Pool) {
        for t in &self.targets {
            let Some(o) = old.targets.iter().find(|o| o.name == t.name) else {
                continue;
            };
            t.down
                .store(o.down.load(Ordering::Relaxed), Ordering::Relaxed);
            t.probed
                .store(o.probed.load(Ordering::Relaxed), Ordering::Relaxed);
            if t.dns.is_some() {
                t.set_addr(o.addr());
            }
            let until = o.ejected_until.load(Ordering::Relaxed);
            let left = until.saturating_sub(old.now_ms());
            if until != 0 && left > 0 && self.passive.is_some() {
                t.ejected_until
                    .store((self.now_ms() + left).max(1), Ordering::Relaxed);
            }
        }
    }

    /// Requests in flight to target `i`.
    pub fn in_flight(&self, i: usize) -> usize {
        self.targets[i].in_flight.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
