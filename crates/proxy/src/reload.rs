//! Atomic reload: read and validate the configuration again, build the complete new runtime
//! off to the side (matchers, pools with the health they learned, agent clients with a new
//! handshake carrying their `config {}`, logs, listener certificates), then swap one
//! pointer. A request keeps the runtime it started with until it ends; the old runtime's
//! agent connections close once the last such request is done.
//!
//! Nothing is applied halfway: an invalid configuration, a setting that cannot change
//! without a restart (a listener's address, the worker count, connection caps…) or a
//! file that cannot be loaded refuses the whole reload, and the old configuration keeps
//! serving untouched.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Value, json};
use zentinel_config::model::Config;

use crate::metrics::Registry;
use crate::runtime::{Runtime, Shared};
use crate::tls::{self, CertHandle, CertSet};

/// Reads and validates the configuration again; `Err` carries the diagnostics as
/// `zentinel validate` prints them.
#[derive(Clone)]
pub struct Reloader(Arc<dyn Fn() -> Result<Config, String> + Send + Sync>);

impl Reloader {
    /// A reloader calling `load`.
    pub fn new(load: impl Fn() -> Result<Config, String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(load))
    }
}

impl fmt::Debug for Reloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reloader")
    }
}

/// Why a reload was refused.
#[derive(Debug)]
pub(crate) enum Refused {
    /// There is no configuration file to read (the built-in demo).
    NoFile,
    /// The files are not a valid configuration.
    Invalid(String),
    /// Settings that cannot change without a restart changed.
    NotLive(Vec<String>),
    /// The new runtime could not be built (a certificate, a target, an agent runtime).
    Build(String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFile => f.write_str("no configuration file to reload (built-in demo)"),
            Self::Invalid(d) => write!(f, "the configuration is invalid:\n{d}"),
            Self::NotLive(changes) => {
                write!(f, "these changes need a restart: {}", changes.join("; "))
            }
            Self::Build(e) => f.write_str(e),
        }
    }
}

/// Everything a reload needs besides the files.
#[derive(Debug)]
pub(crate) struct Reload {
    shared: Arc<Shared>,
    /// `None` for the built-in demo, which has no file to read again.
    load: Option<Reloader>,
    /// Where outcomes are counted.
    metrics: Arc<Registry>,
    /// What cannot change live, as at start-up.
    fixed: BTreeMap<String, Value>,
    /// Idle upstream connections Pingora's pool was sized for at start-up.
    pool_size: usize,
    /// Per listener, the handle of its certificates (`None` for clear text).
    certs: Vec<Option<CertHandle>>,
    /// One reload at a time.
    busy: tokio::sync::Mutex<()>,
}

/// Settings fixed at start-up, by name. Listeners are bound and wrapped once (address,
/// protocol, header deadline, TLS client authentication and minimum version), and so is the
/// admin listener; Pingora's worker threads are started once, and connection caps are
/// counted by one shared counter.
fn fixed(config: &Config) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for l in &config.listeners {
        let tls = l.tls.as_ref().map(|t| {
            json!({ "client-auth": t.client_auth.as_ref().map(|a| json!([a.mode.as_str(), a.ca_file])),
                    "min-version": t.min_version.as_str() })
        });
        out.insert(
            format!("listener \"{}\"", l.id),
            json!({ "address": l.address.to_string(), "protocol": l.protocol.as_str(),
                    "header-read-timeout-ms": l.header_read_timeout.as_millis() as u64, "tls": tls }),
        );
    }
    out.insert(
        "admin.address".to_owned(),
        json!(config.admin.as_ref().map(|a| a.address.to_string())),
    );
    let s = &config.server;
    out.insert(
        "server.worker-threads".to_owned(),
        json!(s.worker_threads.map(usize::from)),
    );
    out.insert("server.work-stealing".to_owned(), json!(s.work_stealing));
    let l = &config.limits;
    for (name, v) in [
        ("limits.max-connections", l.max_connections),
        (
            "limits.max-connections-per-client",
            l.max_connections_per_client,
        ),
        ("limits.max-tracked-clients", l.max_tracked_clients),
    ] {
        out.insert(name.to_owned(), json!(v));
    }
    out
}

/// The differences between two sets of fixed settings, for the operator.
fn changes(old: &BTreeMap<String, Value>, new: &BTreeMap<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in old {
        match new.get(k) {
            None => out.push(format!("{k} removed")),
            Some(n) if n != v => out.push(format!("{k}: {v} → {n}")),
            Some(_) => {}
        }
    }
    for k in new.keys().filter(|k| !old.contains_key(*k)) {
        out.push(format!("{k} added"));
    }
    out
}

/// Idle upstream connections the configuration asks Pingora's pool to keep.
pub(crate) fn pool_size(config: &Config) -> usize {
    config
        .upstreams
        .iter()
        .map(|u| u.connection_pool.max_idle as usize * u.targets.len())
        .sum::<usize>()
        .max(1)
}

impl Reload {
    /// Reloads of the runtime `shared` holds, with `config` as the start-up configuration.
    pub(crate) fn new(
        shared: Arc<Shared>,
        load: Option<Reloader>,
        config: &Config,
        certs: Vec<Option<CertHandle>>,
    ) -> Self {
        Self {
            metrics: shared.load().metrics.clone(),
            shared,
            load,
            fixed: fixed(config),
            pool_size: pool_size(config),
            certs,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads, validates, builds and swaps; on `Err` nothing changed. Whoever asked (SIGHUP
    /// or the admin API), one reload runs at a time and each is counted in the metrics.
    pub(crate) async fn run(&self) -> Result<Summary, Refused> {
        let Some(load) = self.load.clone() else {
            return Err(Refused::NoFile);
        };
        let _one = self.busy.lock().await;
        let result = self.apply(load).await;
        match &result {
            Ok(_) => self.metrics.reloads.succeeded(),
            Err(_) => self.metrics.reloads.failed(),
        }
        result
    }

    /// [`Self::run`], logging the outcome; `trigger` says who asked.
    pub(crate) async fn run_logged(&self, trigger: &str) -> Result<Summary, Refused> {
        tracing::info!(trigger, "reloading the configuration");
        let result = self.run().await;
        match &result {
            Ok(s) => tracing::info!(
                trigger,
                routes = s.routes,
                upstreams = s.upstreams,
                agents = s.agents,
                config_hash = %format_args!("{:016x}", s.config_hash),
                "configuration reloaded"
            ),
            Err(Refused::NoFile) => {
                tracing::warn!(
                    trigger,
                    "no configuration file to reload (built-in demo); ignoring"
                );
            }
            Err(why) => tracing::error!(
                trigger,
                reason = %why,
                "reload refused; the previous configuration keeps serving"
            ),
        }
        result
    }

    async fn apply(&self, load: Reloader) -> Result<Summary, Refused> {
        let fixed = self.fixed.clone();
        let pool = self.pool_size;
        let registry = self.metrics.clone();
        let previous = self.shared.load();
        // Reading files, resolving names and waiting for agents block: off the runtime.
        let built =
            tokio::task::spawn_blocking(move || build(&load, &registry, &fixed, pool, &previous))
                .await
                .map_err(|e| Refused::Build(format!("the reload task failed: {e}")))??;
        let (mut runtime, certs) = built;
        runtime.inherit(&self.shared.load());
        let summary = Summary::of(&runtime);
        self.shared.swap(runtime);
        for (handle, set) in self.certs.iter().zip(certs) {
            if let (Some(h), Some(s)) = (handle, set) {
                h.store(Arc::new(s));
            }
        }
        Ok(summary)
    }
}

/// Everything of the new configuration that can fail, before anything is swapped.
fn build(
    load: &Reloader,
    registry: &Arc<Registry>,
    fixed_at_start: &BTreeMap<String, Value>,
    pool_at_start: usize,
    previous: &Runtime,
) -> Result<(Runtime, Vec<Option<CertSet>>), Refused> {
    let config = (load.0)().map_err(Refused::Invalid)?;
    // Settings this build cannot carry out are refused on reload exactly as at start-up.
    let gaps = crate::unsupported::unsupported(&config);
    if !gaps.is_empty() {
        return Err(Refused::Build(format!(
            "this build cannot carry out these settings yet: {}",
            gaps.join("; ")
        )));
    }
    let mut changed = changes(fixed_at_start, &fixed(&config));
    let pool = pool_size(&config);
    if pool > pool_at_start {
        changed.push(format!(
            "idle upstream connections (connection-pool max-idle × targets): {pool_at_start} at start-up → {pool}"
        ));
    }
    if !changed.is_empty() {
        return Err(Refused::NotLive(changed));
    }
    let certs = config
        .listeners
        .iter()
        .map(|l| l.tls.as_ref().map(|t| tls::cert_set(l, t)).transpose())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Refused::Build(e.to_string()))?;
    let runtime = Runtime::build_after(Arc::new(config), registry, Some(previous))
        .map_err(|e| Refused::Build(e.to_string()))?;
    for agent in runtime.agents.wait_ready() {
        tracing::warn!(
            agent = %agent.config.id,
            "agent not reachable on reload; its routes apply their failure mode until it connects"
        );
    }
    Ok((runtime, certs))
}

/// What the new configuration holds, for the log line.
#[derive(Debug)]
pub(crate) struct Summary {
    /// Routes.
    pub routes: usize,
    /// Upstreams.
    pub upstreams: usize,
    /// Agents.
    pub agents: usize,
    /// The new configuration's hash, as in `zentinel_config_info`.
    pub config_hash: u64,
}

impl Summary {
    fn of(rt: &Runtime) -> Self {
        Self {
            routes: rt.config.routes.len(),
            upstreams: rt.config.upstreams.len(),
            agents: rt.config.agents.len(),
            config_hash: rt.config_hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_config::minimal as config;

    #[test]
    fn routes_may_change_listener_addresses_and_caps_may_not() {
        let base = fixed(&config("", "127.0.0.1:1"));
        assert!(changes(&base, &fixed(&config("", "127.0.0.1:1"))).is_empty());
        let moved = changes(&base, &fixed(&config("", "127.0.0.1:9")));
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert!(moved[0].contains("listener \"w\"") && moved[0].contains("127.0.0.1:9"));
        let caps = changes(
            &base,
            &fixed(&config("limits { max-connections 5; }", "127.0.0.1:1")),
        );
        assert!(caps[0].starts_with("limits.max-connections:"), "{caps:?}");
        let threads = changes(
            &base,
            &fixed(&config("server { worker-threads 3; }", "127.0.0.1:1")),
        );
        assert!(
            threads[0].starts_with("server.worker-threads"),
            "{threads:?}"
        );
        let stealing = changes(
            &base,
            &fixed(&config("server { work-stealing #true; }", "127.0.0.1:1")),
        );
        assert!(
            stealing.len() == 1 && stealing[0].starts_with("server.work-stealing"),
            "{stealing:?}"
        );
    }
}
