//! Assembling and running the Pingora server: one proxy service per listener, the demo
//! upstream when asked for, and signal handling that drains before exiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::apps::http_app::HttpServer;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;
use tokio::signal::unix::{SignalKind, signal};
use zentinel_config::model::{Config, ListenerProtocol};

use crate::access_log::AccessLog;
use crate::audit::AuditLog;
use crate::connections::{Capped, ConnectionLimits};
use crate::demo::DemoUpstream;
use crate::proxy::Zentinel;
use crate::runtime::{Runtime, Shared};
use crate::{ServeError, tls, unsupported};

/// How to run beyond what the configuration says.
#[derive(Debug, Default, Clone)]
pub struct ServeOptions {
    /// Also serve the built-in demo upstream on this address.
    pub demo_upstream: Option<SocketAddr>,
}

/// Runs the proxy until a shutdown signal, then drains and returns.
pub fn serve(config: Config, opts: ServeOptions) -> Result<(), ServeError> {
    let gaps = unsupported::unsupported(&config);
    if !gaps.is_empty() {
        return Err(ServeError::Unsupported(gaps));
    }
    check_binds(&config, opts.demo_upstream)?;
    let config = Arc::new(config);
    let shared = Arc::new(Shared::new(runtime(config.clone())?));
    let draining = Arc::new(AtomicBool::new(false));
    let access_log = Arc::new(AccessLog::new(&config.observability.access_log));
    let audit_log = Arc::new(AuditLog::new(&config.observability.audit_log));

    // Certificates are loaded before anything starts, so a bad file is a clear error.
    let mut tls = config
        .listeners
        .iter()
        .map(|l| l.tls.as_ref().map(|t| tls::settings(l, t)).transpose())
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let mut server = Server::new_with_opt_and_conf(None, server_conf(&config));
    server.bootstrap();
    if crate::health::configured(&config) {
        let checks = crate::health::HealthChecks::new(shared.clone());
        server.add_service(pingora::services::background::background_service(
            "health checks",
            checks,
        ));
    }
    if let Some(dns) = crate::dns::DnsRefresh::new(shared.clone()) {
        server.add_service(pingora::services::background::background_service(
            "dns refresh",
            dns,
        ));
    }
    let connections = Arc::new(ConnectionLimits::new(&config.limits));
    for (i, l) in config.listeners.iter().enumerate() {
        let logic = Zentinel {
            listener: i,
            shared: shared.clone(),
            draining: draining.clone(),
            access_log: access_log.clone(),
            audit_log: audit_log.clone(),
        };
        let mut proxy = pingora::proxy::HttpProxy::new(logic, server.configuration.clone());
        proxy.handle_init_modules();
        if l.protocol == ListenerProtocol::H2c {
            let mut o = HttpServerOptions::default();
            o.h2c = true;
            proxy.server_options = Some(o);
        }
        let capped = Capped {
            inner: Arc::new(proxy),
            limits: connections.clone(),
            header_deadline: l.header_read_timeout,
        };
        let mut svc = Service::new(format!("listener {}", l.id), capped);
        match tls.next().flatten() {
            Some(settings) => svc.add_tls_with_settings(&l.address.to_string(), None, settings),
            None => svc.add_tcp(&l.address.to_string()),
        }
        server.add_service(svc);
        tracing::info!(listener = %l.id, address = %l.address, protocol = %l.protocol, "listening");
    }
    if let Some(addr) = opts.demo_upstream {
        let mut svc = Service::new(
            "demo upstream".to_owned(),
            HttpServer::new_app(DemoUpstream),
        );
        svc.add_tcp(&addr.to_string());
        server.add_service(svc);
    }
    let watch = Signals {
        draining,
        shared,
        timeout: config.server.graceful_shutdown_timeout,
    };
    server.run(RunArgs {
        shutdown_signal: Box::new(watch),
    });
    Ok(())
}

fn server_conf(config: &Config) -> ServerConf {
    let threads = config
        .server
        .worker_threads
        .map(usize::from)
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    // Pingora's pool is one LRU for all targets: size it for every target's idle allowance.
    let pool: usize = config
        .upstreams
        .iter()
        .map(|u| u.connection_pool.max_idle as usize * u.targets.len())
        .sum();
    // The drain happens before Pingora's own shutdown starts (see `Signals`), so its fixed
    // grace period is zero and its runtime timeout short.
    ServerConf {
        threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: pool.max(1),
        ..ServerConf::default()
    }
}

/// The first runtime; agents get up to their handshake timeout to connect before traffic
/// is served.
fn runtime(config: Arc<Config>) -> Result<Runtime, ServeError> {
    let rt = Runtime::build(config)?;
    for agent in rt.agents.wait_ready() {
        tracing::warn!(
            agent = %agent.config.id,
            "agent not reachable at start-up; its routes apply their failure mode until it connects"
        );
    }
    Ok(rt)
}

/// Fails early, with the listener's name, when an address cannot be bound.
///
/// The probe socket is bound but never listens: a client connecting during the check is
/// refused rather than accepted into a backlog that disappears a moment later.
fn check_binds(config: &Config, demo: Option<SocketAddr>) -> Result<(), ServeError> {
    let addrs = config
        .listeners
        .iter()
        .map(|l| (l.id.to_string(), l.address))
        .chain(demo.map(|a| ("demo upstream".to_owned(), a)));
    for (name, addr) in addrs {
        probe_bind(addr).map_err(|e| ServeError::Bind {
            listener: name,
            address: addr,
            source: e,
        })?;
    }
    Ok(())
}

fn probe_bind(addr: SocketAddr) -> std::io::Result<()> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As the real listener does: sockets of earlier connections in TIME_WAIT do not count.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)
}

/// SIGTERM, SIGINT and SIGQUIT drain then stop; SIGHUP is acknowledged and ignored (it must
/// never kill the process).
struct Signals {
    draining: Arc<AtomicBool>,
    shared: Arc<Shared>,
    timeout: Duration,
}

impl Signals {
    /// Refuses new requests and waits for the ones in flight, up to the graceful timeout.
    async fn drain(&self, signal_name: &str) {
        self.draining.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + self.timeout;
        tracing::info!(
            signal = signal_name,
            timeout_secs = self.timeout.as_secs(),
            "draining in-flight requests"
        );
        loop {
            let left = self.shared.load().in_flight.load(Ordering::SeqCst);
            if left == 0 {
                tracing::info!("drained; shutting down");
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    in_flight = left,
                    "graceful shutdown timeout reached; shutting down"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut term), Ok(mut int), Ok(mut quit), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::quit()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = quit.recv() => "SIGQUIT",
                _ = hup.recv() => {
                    tracing::warn!("SIGHUP received: configuration reload is not available in this build; ignoring");
                    continue;
                }
            };
            self.drain(name).await;
            return ShutdownSignal::GracefulTerminate;
        }
    }
}
