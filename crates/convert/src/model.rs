//! The Zentinel configuration being built: a small mirror of the KDL, filled by the front-ends
//! and written out by [`crate::emit`]. Values are already checked against the config crate's
//! rules ([`crate::rules`]) when they get here; the final `load_str` is the safety net.

use std::collections::HashSet;
use std::net::SocketAddr;

/// Everything the converted configuration will hold.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub(crate) server: ServerSettings,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) routes: Vec<Route>,
    pub(crate) upstreams: Vec<Upstream>,
    pub(crate) filters: Vec<RateLimit>,
    pub(crate) limits: Limits,
    pub(crate) observability: Observability,
    /// Why the result cannot be a valid configuration, in the source's terms.
    pub(crate) blockers: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct ServerSettings {
    pub(crate) worker_threads: Option<u64>,
    pub(crate) trusted_proxies: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http,
    Https,
    H2c,
}

#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) id: String,
    pub(crate) origin: String,
    pub(crate) address: SocketAddr,
    pub(crate) protocol: Protocol,
    pub(crate) tls: Option<ListenerTls>,
    /// Route IDs; `None` serves every route.
    pub(crate) routes: Option<Vec<String>>,
    pub(crate) header_read_timeout_ms: Option<u64>,
    pub(crate) idle_timeout_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TlsVersion {
    V12,
    V13,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuthMode {
    Optional,
    Required,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ListenerTls {
    pub(crate) cert_file: String,
    pub(crate) key_file: String,
    pub(crate) sni: Vec<SniCert>,
    pub(crate) client_auth: Option<(ClientAuthMode, String)>,
    pub(crate) min_version: Option<TlsVersion>,
}

#[derive(Clone, Debug)]
pub(crate) struct SniCert {
    pub(crate) host: String,
    pub(crate) cert_file: String,
    pub(crate) key_file: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PathMatch {
    Exact(String),
    Prefix(String),
    Regex(String),
}

/// Header edits; the `try_*` methods refuse edits the config crate would reject as
/// conflicting, returning why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HeaderEdits {
    pub(crate) remove: Vec<String>,
    pub(crate) set: Vec<(String, String)>,
    pub(crate) add: Vec<(String, String)>,
}

impl HeaderEdits {
    pub(crate) fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    fn removed(&self, name: &str) -> bool {
        self.remove.iter().any(|n| n == name)
    }

    fn valued(&self, name: &str) -> bool {
        self.set.iter().chain(&self.add).any(|(n, _)| n == name)
    }

    pub(crate) fn try_set(&mut self, name: &str, value: &str) -> Result<(), &'static str> {
        if self.removed(name) {
            return Err(
                "the header is also removed; Zentinel refuses removing and setting one header",
            );
        }
        if self.set.iter().any(|(n, _)| n == name) {
            return Err("the header is already set; only one value can be set");
        }
        self.set.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    pub(crate) fn try_add(&mut self, name: &str, value: &str) -> Result<(), &'static str> {
        if self.removed(name) {
            return Err(
                "the header is also removed; Zentinel refuses removing and adding to one header",
            );
        }
        self.add.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    pub(crate) fn try_remove(&mut self, name: &str) -> Result<(), &'static str> {
        if self.valued(name) {
            return Err(
                "the header is also given a value; Zentinel refuses removing and setting one header",
            );
        }
        if !self.removed(name) {
            self.remove.push(name.to_owned());
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Route {
    pub(crate) id: String,
    pub(crate) origin: String,
    pub(crate) priority: i64,
    pub(crate) hosts: Vec<String>,
    pub(crate) path: Option<PathMatch>,
    pub(crate) methods: Vec<String>,
    pub(crate) headers: Vec<(String, Option<String>)>,
    pub(crate) query: Vec<(String, Option<String>)>,
    pub(crate) upstream: String,
    pub(crate) filters: Vec<String>,
    pub(crate) request_headers: HeaderEdits,
    pub(crate) response_headers: HeaderEdits,
    pub(crate) max_body_bytes: Option<u64>,
    pub(crate) max_in_flight: Option<u64>,
    pub(crate) retry_attempts: Option<u64>,
    pub(crate) websocket: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Balance {
    RoundRobin,
    Weighted,
    LeastConnections,
    PowerOfTwo,
    ConsistentHash,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HashOn {
    ClientIp,
    Header(String),
    Cookie(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    Http {
        path: String,
        expect_status: Option<u16>,
        host: Option<String>,
    },
    Tcp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HealthCheck {
    pub(crate) probe: Probe,
    pub(crate) interval_ms: Option<u64>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) healthy: Option<u64>,
    pub(crate) unhealthy: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Passive {
    pub(crate) enabled: bool,
    pub(crate) consecutive_failures: Option<u64>,
    pub(crate) ejection_ms: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct UpstreamTls {
    pub(crate) sni: Option<String>,
    pub(crate) ca_file: Option<String>,
    pub(crate) verify: bool,
    pub(crate) cert_file: Option<String>,
    pub(crate) key_file: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Upstream {
    pub(crate) id: String,
    pub(crate) origin: String,
    /// `ip:port` or `host:port`, with a weight.
    pub(crate) targets: Vec<(String, u64)>,
    pub(crate) balance: Option<Balance>,
    pub(crate) hash_on: Option<HashOn>,
    pub(crate) health: Option<HealthCheck>,
    pub(crate) passive: Option<Passive>,
    pub(crate) connect_ms: Option<u64>,
    pub(crate) read_ms: Option<u64>,
    pub(crate) write_ms: Option<u64>,
    pub(crate) max_idle: Option<u64>,
    pub(crate) idle_timeout_ms: Option<u64>,
    pub(crate) tls: Option<UpstreamTls>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RateLimit {
    pub(crate) id: String,
    pub(crate) origin: String,
    pub(crate) requests_per_second: u64,
    pub(crate) burst: u64,
    pub(crate) key: Vec<String>,
    pub(crate) delay: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Limits {
    pub(crate) max_body_bytes: Option<u64>,
    pub(crate) max_header_bytes: Option<u64>,
    pub(crate) max_connections: Option<u64>,
    pub(crate) max_connections_per_client: Option<u64>,
}

impl Limits {
    pub(crate) fn is_empty(&self) -> bool {
        self.max_body_bytes.is_none()
            && self.max_header_bytes.is_none()
            && self.max_connections.is_none()
            && self.max_connections_per_client.is_none()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogDestination {
    File,
    Stdout,
    Stderr,
    Off,
}

#[derive(Clone, Debug)]
pub(crate) struct LogTarget {
    pub(crate) destination: LogDestination,
    pub(crate) path: Option<String>,
    pub(crate) level: Option<&'static str>,
}

#[derive(Debug, Default)]
pub(crate) struct Observability {
    pub(crate) access_log: Option<LogTarget>,
    pub(crate) error_log: Option<LogTarget>,
}

/// Hands out unique IDs that the config crate accepts: at most 64 characters of letters,
/// digits, `-`, `_` and `.`.
#[derive(Debug, Default)]
pub(crate) struct IdSet {
    used: HashSet<String>,
}

impl IdSet {
    /// A fresh ID derived from `wanted`.
    pub(crate) fn fresh(&mut self, wanted: &str) -> String {
        let base = sanitize(wanted);
        let mut id = base.clone();
        let mut n = 2;
        while self.used.contains(&id) {
            let suffix = format!("-{n}");
            let keep = 64usize.saturating_sub(suffix.len());
            id = format!("{}{suffix}", truncate(&base, keep));
            n += 1;
        }
        self.used.insert(id.clone());
        id
    }
}

fn truncate(s: &str, max: usize) -> &str {
    // IDs are ASCII after sanitizing, so any index is a char boundary.
    &s[..s.len().min(max)]
}

fn sanitize(wanted: &str) -> String {
    let mut out = String::new();
    for c in wanted.chars() {
        let keep = c.is_ascii_alphanumeric() || matches!(c, '_' | '.');
        if keep {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '.');
    let mut s = truncate(trimmed, 64).trim_end_matches('-').to_owned();
    if s.is_empty() {
        s = "item".to_owned();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::IdSet;

    #[test]
    fn ids_are_valid_and_unique() {
        let mut ids = IdSet::default();
        assert_eq!(ids.fresh("api.example.com /v1/"), "api.example.com-v1");
        assert_eq!(ids.fresh("api.example.com /v1/"), "api.example.com-v1-2");
        assert_eq!(ids.fresh("~*/"), "item");
        let long = "x".repeat(100);
        let a = ids.fresh(&long);
        let b = ids.fresh(&long);
        assert!(a.len() <= 64 && b.len() <= 64 && a != b);
    }
}
