//! Traffic listeners and their TLS settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{HostPattern, ListenerId, RouteId, config_enum, ser_ms};

config_enum!(
    /// What a listener speaks.
    ListenerProtocol {
        /// HTTP/1.1 in clear text.
        Http = "http",
        /// TLS, with HTTP/2 or HTTP/1.1 chosen by ALPN.
        Https = "https",
        /// HTTP/1.1 and HTTP/2 with prior knowledge, in clear text.
        H2c = "h2c",
    }
);

config_enum!(
    /// What a listener does with `;` parameters in a request path (`/admin;x/secret`).
    PathParameters {
        /// Kept as sent: routes see, and upstreams get, the path with its parameters.
        Keep = "keep",
        /// Refused with 400 (audit `path-parameter`).
        Refuse = "refuse",
    }
);

config_enum!(
    /// Lowest TLS version a listener accepts.
    TlsVersion {
        /// TLS 1.2 (and 1.3).
        Tls12 = "1.2",
        /// TLS 1.3 only.
        Tls13 = "1.3",
    }
);

config_enum!(
    /// Whether clients must present a certificate.
    ClientAuthMode {
        /// Verified when presented; connections without one are accepted.
        Optional = "optional",
        /// Connections without a valid certificate are refused.
        Required = "required",
    }
);

/// A traffic listener.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Listener {
    /// Its ID.
    pub id: ListenerId,
    /// Address it binds.
    pub address: SocketAddr,
    /// Protocol it speaks.
    pub protocol: ListenerProtocol,
    /// TLS material; present exactly when `protocol` is `https`.
    pub tls: Option<ListenerTls>,
    /// Routes this listener serves; `None` means every route.
    pub routes: Option<Vec<RouteId>>,
    /// Route for requests no route matches; `None` answers 404.
    pub default_route: Option<RouteId>,
    /// Deadline for a client to send the complete request headers.
    #[serde(serialize_with = "ser_ms")]
    pub header_read_timeout: Duration,
    /// How long an idle keep-alive connection stays open.
    #[serde(serialize_with = "ser_ms")]
    pub idle_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    #[serde(serialize_with = "ser_ms")]
    pub body_read_timeout: Duration,
    /// Lowest average request-body rate after the grace period, in bytes per second; 0 is off.
    pub min_body_rate: u64,
    /// Time a request body gets before `min_body_rate` applies.
    #[serde(serialize_with = "ser_ms")]
    pub body_rate_grace: Duration,
    /// Longest time one write to the client may take.
    #[serde(serialize_with = "ser_ms")]
    pub send_timeout: Duration,
    /// What happens to a request path with `;` parameters.
    pub path_parameters: PathParameters,
}

/// A listener's TLS settings.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ListenerTls {
    /// Default certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Default private key (PEM).
    pub key_file: PathBuf,
    /// Certificates chosen by SNI, in definition order.
    pub sni: Vec<SniCert>,
    /// Client certificate verification.
    pub client_auth: Option<ClientAuth>,
    /// Lowest accepted TLS version.
    pub min_version: TlsVersion,
}

/// A certificate served to clients that ask for `host` by SNI.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SniCert {
    /// Exact name or `*.suffix` wildcard.
    pub host: HostPattern,
    /// Certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Private key (PEM).
    pub key_file: PathBuf,
}

/// Client certificate (mTLS) settings.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ClientAuth {
    /// Optional or required.
    pub mode: ClientAuthMode,
    /// CA bundle client certificates are verified against.
    pub ca_file: PathBuf,
}
