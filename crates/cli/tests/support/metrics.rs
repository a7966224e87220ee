//! Reading the admin API's Prometheus exposition in tests.

use std::net::SocketAddr;

use super::client::get;

/// `GET /metrics` from the admin listener at `admin`; panics unless it answers 200.
pub fn metrics(admin: SocketAddr) -> String {
    let r = get(admin, "admin", "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// The value of `series` (name and labels, exactly as written) in `metrics`; 0 if absent.
pub fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// [`value`] of a counter or gauge that holds whole numbers.
pub fn count(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}
