//! Upstream pools: targets, load balancing, health, timeouts, pooling and TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::{UpstreamId, config_enum, ser_ms};

config_enum!(
    /// How a pool picks a target. Every algorithm honours target weights.
    LoadBalancing {
        /// Smooth weighted round robin.
        RoundRobin = "round-robin",
        /// Weighted random choice.
        Weighted = "weighted",
        /// Fewest in-flight requests relative to weight.
        LeastConnections = "least-connections",
        /// Two weighted random picks, the less loaded wins.
        PowerOfTwoChoices = "power-of-two-choices",
        /// A consistent-hash ring on `hash-on`.
        ConsistentHash = "consistent-hash",
    }
);

config_enum!(
    /// Source of the consistent-hash key.
    HashSource {
        /// The trusted client IP.
        ClientIp = "client-ip",
        /// A request header (name required).
        Header = "header",
        /// A cookie (name required).
        Cookie = "cookie",
    }
);

/// What a consistent-hash pool hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
#[non_exhaustive]
pub enum HashKey {
    /// The trusted client IP.
    ClientIp,
    /// The value of this header (lower case).
    Header(String),
    /// The value of this cookie.
    Cookie(String),
}

/// Where a target lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetAddr {
    /// A literal address.
    Ip(SocketAddr),
    /// A DNS name, resolved asynchronously by the proxy.
    Dns {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
    },
}

impl std::fmt::Display for TargetAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(a) => write!(f, "{a}"),
            Self::Dns { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl Serialize for TargetAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Most targets one upstream may have (selection keeps per-request state in a fixed bit set).
pub const MAX_TARGETS: usize = 256;

/// One target of a pool.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Target {
    /// Address.
    pub address: TargetAddr,
    /// Relative share of traffic.
    pub weight: u32,
}

/// How an active health check probes a target.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
#[non_exhaustive]
pub enum HealthProbe {
    /// `GET path`; healthy when the status equals `expect_status`.
    Http {
        /// Request path.
        path: String,
        /// Status that counts as healthy.
        expect_status: u16,
        /// `Host` header sent; `None` sends the target address.
        host: Option<String>,
    },
    /// A TCP connect.
    Tcp,
}

/// The `health-check` block.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct HealthCheck {
    /// The probe.
    pub probe: HealthProbe,
    /// Time between probes of one target.
    #[serde(serialize_with = "ser_ms")]
    pub interval: Duration,
    /// Deadline of one probe.
    #[serde(serialize_with = "ser_ms")]
    pub timeout: Duration,
    /// Consecutive successes that bring a target back.
    pub healthy_threshold: u32,
    /// Consecutive failures that take a target out.
    pub unhealthy_threshold: u32,
}

/// The `passive-health` block.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct PassiveHealth {
    /// Whether real traffic ejects failing targets.
    pub enabled: bool,
    /// Consecutive failed requests (connect error, timeout, 5xx from the target) that eject it.
    pub consecutive_failures: u32,
    /// How long an ejected target stays out.
    #[serde(serialize_with = "ser_ms")]
    pub ejection_time: Duration,
}

/// The `timeouts` block of an upstream.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct UpstreamTimeouts {
    /// TCP (and TLS) connection establishment.
    #[serde(serialize_with = "ser_ms")]
    pub connect: Duration,
    /// Longest wait for the next bytes of the response.
    #[serde(serialize_with = "ser_ms")]
    pub read: Duration,
    /// Longest wait to write the next bytes of the request.
    #[serde(serialize_with = "ser_ms")]
    pub write: Duration,
}

/// The `connection-pool` block.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ConnectionPool {
    /// Idle connections kept per target.
    pub max_idle: u32,
    /// How long an idle connection is kept.
    #[serde(serialize_with = "ser_ms")]
    pub idle_timeout: Duration,
}

/// The `tls` block of an upstream: connect to targets over TLS.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct UpstreamTls {
    /// Server name sent and verified; `None` uses the target's host.
    pub sni: Option<String>,
    /// CA bundle; `None` uses the system roots.
    pub ca_file: Option<PathBuf>,
    /// Whether the certificate is verified.
    pub verify: bool,
    /// Client certificate for mTLS to the upstream.
    pub cert_file: Option<PathBuf>,
    /// Client key for mTLS to the upstream.
    pub key_file: Option<PathBuf>,
}

/// An upstream pool.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Upstream {
    /// Its ID.
    pub id: UpstreamId,
    /// Targets, in definition order.
    pub targets: Vec<Target>,
    /// Selection algorithm.
    pub load_balancing: LoadBalancing,
    /// Hash key; present exactly when `load_balancing` is consistent hashing.
    pub hash_on: Option<HashKey>,
    /// Active health check; `None` means targets are only judged by traffic.
    pub health_check: Option<HealthCheck>,
    /// Passive ejection.
    pub passive_health: PassiveHealth,
    /// Timeouts.
    pub timeouts: UpstreamTimeouts,
    /// Connection reuse.
    pub connection_pool: ConnectionPool,
    /// TLS to the targets; `None` means clear text.
    pub tls: Option<UpstreamTls>,
    /// How often host-name targets are resolved again.
    #[serde(serialize_with = "ser_ms")]
    pub dns_refresh: Duration,
}
