//! Process-wide settings: server, limits, observability, admin.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;

use super::{config_enum, ser_ms};

/// The `server` block.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Server {
    /// Worker threads; `None` means one per CPU core.
    pub worker_threads: Option<NonZeroUsize>,
    /// Whether worker threads share one work-stealing scheduler (`true`) or each runs its
    /// own (`false`).
    pub work_stealing: bool,
    /// How long in-flight requests may run after a shutdown signal.
    #[serde(serialize_with = "ser_ms")]
    pub graceful_shutdown_timeout: Duration,
    /// Peers whose `X-Forwarded-*` / `Forwarded` / `traceparent` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Header that carries the request ID generated at the edge (lower case).
    pub request_id_header: String,
}

/// The `limits` block: hard ceilings for every request and connection.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Limits {
    /// Total size of request headers (431 beyond).
    pub max_header_bytes: u64,
    /// Number of request headers (431 beyond).
    pub max_header_count: u32,
    /// Length of the request target (414 beyond).
    pub max_uri_bytes: u64,
    /// Request body size (413 beyond).
    pub max_body_bytes: u64,
    /// Open downstream connections across all listeners.
    pub max_connections: u32,
    /// Open downstream connections from one client IP.
    pub max_connections_per_client: u32,
    /// Client IPs tracked for the per-client cap.
    pub max_tracked_clients: u32,
    /// Requests being processed at once (503 beyond).
    pub max_in_flight_requests: u32,
}

config_enum!(
    /// Where a log stream goes.
    LogDestinationKind {
        /// Standard output.
        Stdout = "stdout",
        /// Standard error.
        Stderr = "stderr",
        /// A file (reopened on SIGUSR1).
        File = "file",
        /// Nowhere.
        Off = "off",
    }
);

/// Where a log stream goes, with the file path for `file`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "path")]
#[non_exhaustive]
pub enum LogDestination {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// This file.
    File(PathBuf),
    /// Disabled.
    Off,
}

config_enum!(
    /// How log lines are written.
    LogFormat {
        /// One JSON object per line.
        Json = "json",
        /// Human-readable `key=value` lines.
        Text = "text",
    }
);

config_enum!(
    /// Minimum level written to the error log.
    LogLevel {
        /// Everything.
        Trace = "trace",
        /// Debugging detail.
        Debug = "debug",
        /// Normal operation.
        Info = "info",
        /// Something unexpected.
        Warn = "warn",
        /// Failures only.
        Error = "error",
    }
);

/// One log stream.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct LogSink {
    /// Where it goes.
    pub destination: LogDestination,
    /// How lines are written.
    pub format: LogFormat,
}

/// The `metrics` block.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Whether metrics are served on the admin listener.
    pub enabled: bool,
    /// HTTP path of the Prometheus text endpoint.
    pub path: String,
}

/// The `observability` block.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Observability {
    /// One line per request.
    pub access_log: LogSink,
    /// One line per security decision.
    pub audit_log: LogSink,
    /// Operational messages.
    pub error_log: LogSink,
    /// Minimum level of the error log.
    pub error_log_level: LogLevel,
    /// Prometheus metrics.
    pub metrics: Metrics,
}

/// The `admin` block.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Admin {
    /// Address of the admin listener.
    pub address: SocketAddr,
    /// File holding the bearer token required by the admin API.
    pub token_file: Option<PathBuf>,
}
