//! Assembling and running the Pingora server: one proxy service per listener, the demo
//! upstream when asked for, and signal handling that drains before exiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::apps::http_app::HttpServer;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;
use tokio::signal::unix::{SignalKind, signal};
use zentinel_config::model::{Config, ListenerProtocol};

use crate::admin::{self, AdminApi};
use crate::connections::{Capped, ConnectionLimits};
use crate::demo::DemoUpstream;
use crate::http2::{self, StreamBound};
use crate::metrics::Registry;
use crate::proxy::Zentinel;
use crate::reload::{self, Reload, Reloader};
use crate::runtime::{Runtime, Shared};
use crate::{ServeError, tls, unsupported};

/// How to run beyond what the configuration says.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Also serve the built-in demo upstream on this address.
    pub demo_upstream: Option<SocketAddr>,
    /// How SIGHUP reads the configuration again; `None`: SIGHUP is logged and ignored.
    pub reload: Option<Reloader>,
}

/// Runs the proxy until a shutdown signal, then drains and returns.
pub fn serve(config: Config, opts: ServeOptions) -> Result<(), ServeError> {
    let gaps = unsupported::unsupported(&config);
    if !gaps.is_empty() {
        return Err(ServeError::Unsupported(gaps));
    }
    check_binds(&config, opts.demo_upstream)?;
    let config = Arc::new(config);
    // Outlives every runtime, so counters survive reloads.
    let registry = Arc::new(Registry::default());
    let shared = Arc::new(Shared::new(runtime(config.clone(), &registry)?));
    let draining = Arc::new(AtomicBool::new(false));

    // Certificates are loaded before anything starts, so a bad file is a clear error.
    let tls = config
        .listeners
        .iter()
        .map(|l| l.tls.as_ref().map(|t| tls::settings(l, t)).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let certs: Vec<_> = tls
        .iter()
        .map(|t| t.as_ref().map(|(_, c)| c.clone()))
        .collect();
    let tls = tls.into_iter().map(|t| t.map(|(settings, _)| settings));
    let mut server = Server::new_with_opt_and_conf(None, server_conf(&config));
    server.bootstrap();
    // Both follow reloads, so they run even when the first configuration needs neither.
    let checks = crate::health::HealthChecks::new(shared.clone());
    server.add_service(pingora::services::background::background_service(
        "health checks",
        checks,
    ));
    server.add_service(pingora::services::background::background_service(
        "dns refresh",
        crate::dns::DnsRefresh::new(shared.clone()),
    ));
    let connections = Arc::new(ConnectionLimits::new(&config.limits));
    let logic = |listener| Zentinel {
        listener,
        shared: shared.clone(),
        draining: draining.clone(),
    };
    add_listeners(&mut server, &config, tls, logic, &connections, &shared);
    if let Some(addr) = opts.demo_upstream {
        let mut svc = Service::new(
            "demo upstream".to_owned(),
            HttpServer::new_app(DemoUpstream),
        );
        svc.add_tcp(&addr.to_string());
        server.add_service(svc);
    }
    let reload = Arc::new(Reload::new(shared.clone(), opts.reload, &config, certs));
    if let Some(admin) = &config.admin {
        let api = AdminApi {
            shared: shared.clone(),
            reload: reload.clone(),
            draining: draining.clone(),
            connections,
        };
        server.add_service(admin_service(admin.address, api));
        tracing::info!(address = %admin.address, "admin API listening");
    }
    let watch = Signals {
        draining,
        shared,
        reload,
    };
    server.run(RunArgs {
        shutdown_signal: Box::new(watch),
    });
    Ok(())
}

/// One proxy service per listener, behind the connection caps.
fn add_listeners(
    server: &mut Server,
    config: &Config,
    mut tls: impl Iterator<Item = Option<TlsSettings>>,
    logic: impl Fn(usize) -> Zentinel,
    connections: &Arc<ConnectionLimits>,
    shared: &Arc<Shared>,
) {
    for (i, l) in config.listeners.iter().enumerate() {
        let mut proxy = pingora::proxy::HttpProxy::new(logic(i), server.configuration.clone());
        proxy.handle_init_modules();
        let mut o = HttpServerOptions::default();
        o.h2c = l.protocol == ListenerProtocol::H2c;
        // CONNECT reaches `request_filter`, which refuses it (`strict.rs`) with the request
        // ID and an audit line; Pingora's own refusal has neither (and a 405 without `Allow`).
        o.allow_connect_method_proxying = true;
        proxy.server_options = Some(o);
        proxy.h2_options = Some(http2::options());
        let capped = Capped {
            inner: Arc::new(StreamBound {
                inner: Arc::new(proxy),
            }),
            limits: connections.clone(),
            header_deadline: l.header_read_timeout,
            audit: Some(shared.clone()),
        };
        let mut svc = Service::new(format!("listener {}", l.id), capped);
        match tls.next().flatten() {
            Some(settings) => svc.add_tls_with_settings(&l.address.to_string(), None, settings),
            // Plain HTTP reads straight into Pingora's request buffers: without this, every
            // client connection holds a zero-filled 64 KiB read buffer for its whole life,
            // idle keep-alive included (`bench/idle-connections.sh`). TLS keeps the default,
            // which saves the TLS layer's small reads.
            None => svc.add_listener(
                ListenerConfig::tcp(l.address.to_string())
                    .l4_buffer(L4BufferSettings::default().read(0)),
            ),
        }
        server.add_service(svc);
        tracing::info!(listener = %l.id, address = %l.address, protocol = %l.protocol, "listening");
    }
}

/// The admin API on its own address, with its own connection cap and header deadline, on
/// one thread: never one of the traffic listeners.
fn admin_service(address: SocketAddr, api: AdminApi) -> Service<Capped<HttpServer<AdminApi>>> {
    let capped = Capped {
        inner: Arc::new(HttpServer::new_app(api)),
        limits: Arc::new(ConnectionLimits::with_caps(
            admin::MAX_CONNECTIONS,
            u32::try_from(admin::MAX_CONNECTIONS).unwrap_or(u32::MAX),
            admin::MAX_CONNECTIONS,
        )),
        header_deadline: admin::HEADER_DEADLINE,
        audit: None,
    };
    let mut svc = Service::new("admin".to_owned(), capped);
    svc.threads = Some(1);
    svc.add_tcp(&address.to_string());
    svc
}

fn server_conf(config: &Config) -> ServerConf {
    let threads = config
        .server
        .worker_threads
        .map(usize::from)
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    // Pingora's pool is one LRU for all targets: size it for every target's idle allowance.
    let pool = reload::pool_size(config);
    // The drain happens before Pingora's own shutdown starts (see `Signals`), so its fixed
    // grace period is zero and its runtime timeout short.
    ServerConf {
        threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: pool,
        work_stealing: config.server.work_stealing,
        ..ServerConf::default()
    }
}

/// The first runtime; agents get up to their handshake timeout to connect before traffic
/// is served.
fn runtime(config: Arc<Config>, registry: &Arc<Registry>) -> Result<Runtime, ServeError> {
    let rt = Runtime::build_in(config, registry)?;
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
    let Some(admin) = &config.admin else {
        return Ok(());
    };
    let address = admin.address;
    let overlaps = |a: SocketAddr| {
        a.port() == address.port()
            && (a.ip() == address.ip() || a.ip().is_unspecified() || address.ip().is_unspecified())
    };
    if let Some(l) = config.listeners.iter().find(|l| overlaps(l.address)) {
        return Err(ServeError::AdminAddress {
            listener: l.id.to_string(),
            address,
        });
    }
    probe_bind(address).map_err(|source| ServeError::AdminBind { address, source })
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

/// SIGTERM, SIGINT and SIGQUIT drain then stop; SIGHUP reloads the configuration (it never
/// kills the process); SIGUSR1 reopens log files.
struct Signals {
    draining: Arc<AtomicBool>,
    shared: Arc<Shared>,
    reload: Arc<Reload>,
}

impl Signals {
    /// Refuses new requests and waits for the ones in flight, up to the graceful timeout.
    async fn drain(&self, signal_name: &str) {
        self.draining.store(true, Ordering::SeqCst);
        let timeout = self.shared.load().config.server.graceful_shutdown_timeout;
        let deadline = Instant::now() + timeout;
        tracing::info!(
            signal = signal_name,
            timeout_secs = timeout.as_secs(),
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

impl Signals {
    /// SIGHUP: reload, or say why not (logged); the old configuration serves on in every
    /// case.
    async fn reload(&self) {
        let _ = self.reload.run_logged("SIGHUP").await;
    }
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut term), Ok(mut int), Ok(mut quit), Ok(mut hup), Ok(mut usr1)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::quit()),
            signal(SignalKind::hangup()),
            signal(SignalKind::user_defined1()),
        ) else {
            tracing::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = quit.recv() => "SIGQUIT",
                _ = usr1.recv() => {
                    // logrotate moved the files: write to new ones at the same paths.
                    crate::log_file::reopen_all();
                    tracing::info!("SIGUSR1: log files reopened");
                    continue;
                }
                _ = hup.recv() => {
                    self.reload().await;
                    continue;
                }
            };
            self.drain(name).await;
            return ShutdownSignal::GracefulTerminate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(server: &str) -> Config {
        crate::test_config::minimal(server, "127.0.0.1:1")
    }

    #[test]
    fn worker_runtime_follows_work_stealing_and_worker_threads() {
        let plain = server_conf(&config(""));
        assert!(!plain.work_stealing, "one scheduler per thread by default");
        let stealing = server_conf(&config("server { work-stealing #true; worker-threads 3; }"));
        assert!(stealing.work_stealing);
        assert_eq!(stealing.threads, 3);
    }
}
