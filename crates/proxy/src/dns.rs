//! Re-resolution of host-name targets: every `dns-refresh-ms`, each `host:port` target is
//! looked up again on the tokio runtime (never on the request path), within a bounded time.
//! The target keeps its current address while that address is still among the answers (so
//! connections are not moved for nothing); otherwise it takes the first answer. A failed or
//! slow lookup keeps the last address and is logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::runtime::{Runtime, Shared};

/// Longest wait for one lookup.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The address a target should use given a fresh answer set.
pub(crate) fn pick(current: SocketAddr, answers: &[SocketAddr]) -> Option<SocketAddr> {
    if answers.contains(&current) {
        Some(current)
    } else {
        answers.first().copied()
    }
}

async fn refresh_pool(rt: Arc<Runtime>, pool: usize) {
    let every = rt.config.upstreams[pool].dns_refresh;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Names were resolved when the runtime was built; the first tick fires at once.
    tick.tick().await;
    loop {
        tick.tick().await;
        let p = &rt.pools[pool];
        for t in &p.targets {
            let Some((host, port)) = &t.dns else { continue };
            let lookup = tokio::net::lookup_host((host.as_str(), *port));
            match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
                Ok(Ok(answers)) => {
                    let answers: Vec<SocketAddr> = answers.collect();
                    let current = t.addr();
                    if let Some(next) = pick(current, &answers).filter(|n| *n != current) {
                        t.set_addr(next);
                        tracing::info!(upstream = %p.id, target = %t.name, from = %current, to = %next, "target address changed");
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(upstream = %p.id, target = %t.name, error = %e, "lookup failed; keeping the last address")
                }
                Err(_) => {
                    tracing::warn!(upstream = %p.id, target = %t.name, "lookup timed out; keeping the last address")
                }
            }
        }
    }
}

/// The background service that refreshes every pool with host-name targets.
#[derive(Debug)]
pub(crate) struct DnsRefresh {
    shared: Arc<Shared>,
}

impl DnsRefresh {
    /// Refreshes the pools of the runtime `shared` holds, following reloads.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl BackgroundService for DnsRefresh {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut reloads = self.shared.changes();
        loop {
            // The refresh loops of one runtime; a reload replaces them with the new one's.
            let rt = self.shared.load();
            let mut loops = JoinSet::new();
            for (i, p) in rt.pools.iter().enumerate() {
                if p.targets.iter().any(|t| t.dns.is_some()) {
                    loops.spawn(refresh_pool(rt.clone(), i));
                }
            }
            drop(rt);
            let reloaded = tokio::select! {
                _ = shutdown.changed() => false,
                r = reloads.changed() => r.is_ok(),
            };
            loops.abort_all();
            if !reloaded {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn the_current_address_is_kept_while_it_is_still_an_answer() {
        let cur = a("10.0.0.2:80");
        assert_eq!(pick(cur, &[a("10.0.0.1:80"), cur]), Some(cur));
        assert_eq!(
            pick(cur, &[a("10.0.0.7:80"), a("10.0.0.8:80")]),
            Some(a("10.0.0.7:80"))
        );
        assert_eq!(pick(cur, &[]), None, "no answer: keep the last address");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_loop_resolves_names_again_and_stops_on_shutdown() {
        let port = 18_321;
        let text = format!(
            "listeners {{ listener \"w\" {{ address \"127.0.0.1:1\"; }} }}\nroutes {{ route \"r\" {{ upstream \"u\"; }} }}\nupstreams {{ upstream \"u\" {{ target \"localhost:{port}\"; dns-refresh-ms 1000; }} }}"
        );
        let c = zentinel_config::load_str("t.kdl", &text).unwrap_or_else(|d| panic!("{d}"));
        let rt = Runtime::build(Arc::new(c)).expect("runtime");
        let target = &rt.pools[0].targets[0];
        // Move the target away; the next refresh must bring it back to what localhost is.
        let resolved = target.set_addr(a("192.0.2.1:9"));
        assert_eq!(resolved.port(), port);
        let shared = Arc::new(Shared::new(rt));
        let svc = DnsRefresh::new(shared.clone());
        let (tx, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move { svc.start(rx).await });
        let rt = shared.load();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if rt.pools[0].targets[0].addr() == resolved {
                break;
            }
        }
        assert_eq!(rt.pools[0].targets[0].addr(), resolved, "re-resolved");
        let _ = tx.send(true);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops")
            .expect("no panic");
    }
}
