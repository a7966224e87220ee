//! Zentinel's data plane on Pingora.
//!
//! A validated [`zentinel_config::Config`] becomes a [`runtime::Runtime`]: route matchers per
//! listener, upstream pools, retry budgets, limits. The `ProxyHttp` implementation in
//! [`proxy`] reads one runtime snapshot per request and runs each phase over that prepared
//! state. This crate never parses configuration text; it only sees the validated model.

mod access_log;
mod admin;
mod agents;
mod audit;
mod connections;
mod demo;
mod dns;
pub mod errors;
mod forwarding;
mod header_deadline;
mod health;
mod http2;
mod inference;
mod io_runtime;
mod limits;
pub mod log_file;
mod metrics;
pub mod pool;
mod proxy;
mod ratelimit;
mod reload;
mod retry;
pub mod runtime;
mod server;
mod slow_clients;
mod strict;
#[cfg(test)]
mod test_config;
mod tls;
mod trace;
pub mod unsupported;
mod upstream_tls;

use std::net::SocketAddr;

pub use reload::Reloader;
pub use server::{ServeOptions, serve};

/// Why a runtime could not be built from a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A target's host name did not resolve.
    #[error("upstream \"{upstream}\": target {target} does not resolve")]
    Resolve {
        /// The upstream.
        upstream: String,
        /// The target as configured.
        target: String,
    },
    /// A certificate, key or CA file of a TLS listener is unusable.
    #[error("listener \"{listener}\": {file}: {reason}")]
    Tls {
        /// The listener.
        listener: String,
        /// The file at fault.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A CA, certificate or key file (or a server name) of an upstream's `tls` block is
    /// unusable.
    #[error("upstream \"{upstream}\": {item}: {reason}")]
    UpstreamTls {
        /// The upstream.
        upstream: String,
        /// The file at fault (or the server name, or the system trust store).
        item: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The admin API's `token-file` is unreadable or empty.
    #[error("admin token-file {file}: {reason}")]
    AdminToken {
        /// The file.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A log file cannot be opened for appending.
    #[error("{log}: cannot open {path}: {reason}")]
    Log {
        /// The log (`access-log`, `audit-log`).
        log: String,
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// An inconsistency that validation should have prevented.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration uses settings this build cannot carry out.
    #[error("this build cannot carry out these settings yet: {}", .0.join("; "))]
    Unsupported(Vec<String>),
    /// A listener address cannot be bound.
    #[error("listener \"{listener}\" cannot bind {address}: {source}")]
    Bind {
        /// The listener.
        listener: String,
        /// Its address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The admin listener's address cannot be bound.
    #[error("the admin listener cannot bind {address}: {source}")]
    AdminBind {
        /// Its address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The admin listener's address is a traffic listener's too.
    #[error("the admin listener's address {address} is also listener \"{listener}\"'s")]
    AdminAddress {
        /// The traffic listener.
        listener: String,
        /// The address.
        address: SocketAddr,
    },
    /// The runtime could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
}
