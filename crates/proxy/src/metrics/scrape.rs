//! One scrape: the registry's counters and histograms, plus gauges read from the current
//! runtime (target health and in-flight requests, agent permits, breakers, connections)
//! at the moment of the scrape.

use zentinel_config::model::AgentId;

use super::text::{Exposition, Kind};
use super::{AgentMetrics, CLIENT_COUNTERS, Registry};
use crate::agents::{AgentRuntime, BreakerState};
use crate::connections::{ConnectionLimits, REFUSALS};
use crate::runtime::Runtime;

/// The whole exposition for `rt` (the current runtime) and the traffic listeners'
/// `connections`.
pub(crate) fn render(rt: &Runtime, connections: &ConnectionLimits) -> String {
    let mut e = Exposition::default();
    requests(&mut e, &rt.metrics);
    upstreams(&mut e, rt);
    let agents = rt.metrics.agents();
    agent_calls(&mut e, &agents);
    agent_gauges(&mut e, rt);
    agent_clients(&mut e, &agents);
    rate_limits(&mut e, rt);
    crate::inference::scrape::render(&mut e, rt);
    process(&mut e, rt, connections);
    e.finish()
}

fn requests(e: &mut Exposition, reg: &Registry) {
    let routes = reg.routes();
    let name = "zentinel_requests_total";
    e.family(
        name,
        Kind::Counter,
        "Requests answered, by route (\"\": no route matched, or refused before routing) and status (0: no response was sent).",
    );
    for (route, m) in &routes {
        for (code, n) in m.codes() {
            e.sample(name, &[("route", route), ("code", &code.to_string())], n);
        }
    }
    let name = "zentinel_request_duration_seconds";
    e.family(
        name,
        Kind::Histogram,
        "Time from the start of a request to its end (response sent), by route.",
    );
    for (route, m) in &routes {
        let s = m.duration.snapshot();
        if !route.is_empty() || s.count() > 0 {
            e.histogram(name, &[("route", route)], &s);
        }
    }
}

fn upstreams(e: &mut Exposition, rt: &Runtime) {
    let name = "zentinel_upstream_duration_seconds";
    e.family(
        name,
        Kind::Histogram,
        "Time from the start of an attempt (target chosen, before connecting) to the upstream's response headers, by upstream.",
    );
    for (id, m) in rt.metrics.upstreams() {
        e.histogram(name, &[("upstream", id.as_str())], &m.duration.snapshot());
    }
    let healthy = "zentinel_upstream_target_healthy";
    e.family(
        healthy,
        Kind::Gauge,
        "1 when the target may receive traffic, 0 when an active health check marked it down or passive health ejected it.",
    );
    for pool in &rt.pools {
        for (i, t) in pool.targets.iter().enumerate() {
            let labels = [("upstream", pool.id.as_str()), ("target", t.name.as_str())];
            e.sample(healthy, &labels, u8::from(pool.available(i)));
        }
    }
    let in_flight = "zentinel_upstream_target_in_flight";
    e.family(
        in_flight,
        Kind::Gauge,
        "Requests in flight to the target (current configuration).",
    );
    for pool in &rt.pools {
        for (i, t) in pool.targets.iter().enumerate() {
            let labels = [("upstream", pool.id.as_str()), ("target", t.name.as_str())];
            e.sample(in_flight, &labels, pool.in_flight(i));
        }
    }
}

fn agent_calls(e: &mut Exposition, agents: &[(AgentId, std::sync::Arc<AgentMetrics>)]) {
    let calls = "zentinel_agent_calls_total";
    e.family(
        calls,
        Kind::Counter,
        "Agent calls by agent, route and outcome (allow, block, redirect, challenge, or the failure).",
    );
    for (agent, m) in agents {
        for (route, c) in m.routes() {
            for (outcome, n) in c.outcomes().filter(|(_, n)| *n > 0) {
                let labels = [
                    ("agent", agent.as_str()),
                    ("route", route.as_str()),
                    ("outcome", outcome.as_str()),
                ];
                e.sample(calls, &labels, n);
            }
        }
    }
    for (open, name, help) in [
        (
            true,
            "zentinel_agent_fail_open_total",
            "Agent failures the route's failure mode let through, by agent, route and reason.",
        ),
        (
            false,
            "zentinel_agent_fail_closed_total",
            "Agent failures the route's failure mode answered (503, 504 or 413), by agent, route and reason.",
        ),
    ] {
        e.family(name, Kind::Counter, help);
        for (agent, m) in agents {
            for (route, c) in m.routes() {
                for (failure, n) in c.fallbacks(open).filter(|(_, n)| *n > 0) {
                    let labels = [
                        ("agent", agent.as_str()),
                        ("route", route.as_str()),
                        ("reason", failure.reason()),
                    ];
                    e.sample(name, &labels, n);
                }
            }
        }
    }
    let name = "zentinel_agent_call_duration_seconds";
    e.family(
        name,
        Kind::Histogram,
        "Agent calls that reached the agent, from the start of the call (permit wait included) to its answer, timeout or protocol error.",
    );
    for (agent, m) in agents {
        e.histogram(name, &[("agent", agent.as_str())], &m.duration.snapshot());
    }
}

/// A gauge read from each agent of the current runtime.
type AgentGauge = (&'static str, &'static str, fn(&AgentRuntime) -> usize);

fn agent_gauges(e: &mut Exposition, rt: &Runtime) {
    let list = &rt.agents.list;
    let gauges: [AgentGauge; 4] = [
        (
            "zentinel_agent_permits_in_use",
            "Agent call permits held now.",
            |a| a.permits().0,
        ),
        (
            "zentinel_agent_permits",
            "Agent call permits in all (max-concurrent-calls).",
            |a| a.permits().1,
        ),
        (
            "zentinel_agent_breaker_state",
            "The agent's circuit breaker: 0 closed, 1 half-open, 2 open.",
            |a| match a.breaker_state() {
                BreakerState::Closed => 0,
                BreakerState::HalfOpen => 1,
                BreakerState::Open => 2,
            },
        ),
        (
            "zentinel_agent_ready",
            "1 when a call to the agent would find a connection now.",
            |a| usize::from(a.is_ready()),
        ),
    ];
    for (name, help, value) in gauges {
        e.family(name, Kind::Gauge, help);
        for a in list {
            e.sample(name, &[("agent", a.config.id.as_str())], value(a));
        }
    }
}

fn agent_clients(e: &mut Exposition, agents: &[(AgentId, std::sync::Arc<AgentMetrics>)]) {
    let totals: Vec<_> = agents
        .iter()
        .map(|(id, m)| (id.as_str(), m.client_totals()))
        .collect();
    for (i, (counter, help)) in CLIENT_COUNTERS.iter().enumerate() {
        let name = format!("zentinel_agent_{counter}_total");
        e.family(&name, Kind::Counter, help);
        for (agent, t) in &totals {
            e.sample(&name, &[("agent", agent)], t[i]);
        }
    }
}

fn rate_limits(e: &mut Exposition, rt: &Runtime) {
    let name = "zentinel_rate_limit_total";
    e.family(
        name,
        Kind::Counter,
        "Requests through a rate-limit filter, by route, filter and outcome (allowed, delayed, rejected: 429, failed_closed: 503 because a shared backend failed under on-backend-failure closed).",
    );
    for ((route, filter), c) in rt.metrics.rate_limits() {
        for (outcome, n) in c.read() {
            let labels = [
                ("route", route.as_str()),
                ("filter", filter.as_str()),
                ("outcome", outcome),
            ];
            e.sample(name, &labels, n);
        }
    }
    let name = "zentinel_rate_limit_keys";
    e.family(
        name,
        Kind::Gauge,
        "Buckets a rate-limit filter of the current configuration holds (at most its max-keys).",
    );
    for l in &rt.limiters.list {
        e.sample(name, &[("filter", l.id.as_str())], l.keys());
    }
    rate_limit_backends(e, rt);
}

fn rate_limit_backends(e: &mut Exposition, rt: &Runtime) {
    let name = "zentinel_rate_limit_backend_failures_total";
    e.family(
        name,
        Kind::Counter,
        "Calls of a shared rate-limit filter to its backend that got no answer, by reason (timeout, unavailable, error) and by what was done instead (local, open, closed).",
    );
    for (filter, f) in rt.metrics.rate_limit_backends() {
        for (reason, outcome, n) in f.read() {
            let labels = [
                ("filter", filter.as_str()),
                ("reason", reason),
                ("outcome", outcome),
            ];
            e.sample(name, &labels, n);
        }
    }
    let name = "zentinel_rate_limit_backend_connections";
    e.family(
        name,
        Kind::Gauge,
        "Connections up to the backend of a shared rate-limit filter of the current configuration (at most its pool-size).",
    );
    for l in &rt.limiters.list {
        if let Some(n) = l.backend_connections() {
            e.sample(name, &[("filter", l.id.as_str())], n);
        }
    }
}

fn process(e: &mut Exposition, rt: &Runtime, connections: &ConnectionLimits) {
    let name = "zentinel_connections";
    e.family(
        name,
        Kind::Gauge,
        "Open client connections, across traffic listeners.",
    );
    e.sample(name, &[], connections.open());
    let name = "zentinel_connections_refused_total";
    e.family(
        name,
        Kind::Counter,
        "Client connections closed at once because a cap was reached, by cap.",
    );
    for (reason, n) in REFUSALS.iter().zip(connections.refused()) {
        e.sample(name, &[("reason", reason)], n);
    }
    let (success, failure, last) = rt.metrics.reloads.read();
    let name = "zentinel_reloads_total";
    e.family(
        name,
        Kind::Counter,
        "Configuration reloads (SIGHUP or POST /reload), applied or refused.",
    );
    e.sample(name, &[("result", "success")], success);
    e.sample(name, &[("result", "failure")], failure);
    let name = "zentinel_reload_last_success_timestamp_seconds";
    e.family(
        name,
        Kind::Gauge,
        "When the configuration serving now was applied (start-up or the last successful reload), in seconds since the Unix epoch.",
    );
    e.sample(name, &[], last);
    let name = "zentinel_config_info";
    e.family(
        name,
        Kind::Gauge,
        "The configuration serving now: FNV-1a 64 hash of the effective configuration as JSON.",
    );
    let hash = format!("{:016x}", rt.config_hash);
    e.sample(name, &[("hash", &hash)], 1);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use zentinel_config::model::RouteId;

    use super::*;

    #[test]
    fn a_runtime_scrape_names_routes_targets_reloads_and_the_hash() {
        let text = r#"listeners { listener "w" { address "127.0.0.1:1"; } }
upstreams { upstream "u" { target "127.0.0.1:2"; } }
routes { route "r" { upstream "u"; } }"#;
        let config = zentinel_config::load_str("t.kdl", text).unwrap_or_else(|d| panic!("{d}"));
        let registry = Arc::new(Registry::default());
        let rt = Runtime::build_in(Arc::new(config), &registry).unwrap_or_else(|e| panic!("{e}"));
        rt.routes[0].metrics.record(200, Duration::from_millis(3));
        registry.unmatched().record(404, Duration::ZERO);
        registry.reloads.failed();
        let again = registry.route(&RouteId::new("r"));
        again.record(200, Duration::ZERO);
        let limits = ConnectionLimits::with_caps(10, 10, 10);
        let out = render(&rt, &limits);
        for line in [
            "zentinel_requests_total{route=\"r\",code=\"200\"} 2",
            "zentinel_requests_total{route=\"\",code=\"404\"} 1",
            "zentinel_request_duration_seconds_count{route=\"r\"} 2",
            "zentinel_request_duration_seconds_count{route=\"\"} 1",
            "zentinel_upstream_target_healthy{upstream=\"u\",target=\"127.0.0.1:2\"} 1",
            "zentinel_upstream_target_in_flight{upstream=\"u\",target=\"127.0.0.1:2\"} 0",
            "zentinel_upstream_duration_seconds_count{upstream=\"u\"} 0",
            "zentinel_connections 0",
            "zentinel_connections_refused_total{reason=\"max-connections\"} 0",
            "zentinel_reloads_total{result=\"success\"} 0",
            "zentinel_reloads_total{result=\"failure\"} 1",
            &format!("zentinel_config_info{{hash=\"{:016x}\"}} 1", rt.config_hash),
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing in:\n{out}");
        }
        assert!(out.contains("# TYPE zentinel_agent_calls_total counter\n"));
    }

    #[test]
    fn rate_limit_series_exist_from_the_start_per_route_and_filter() {
        let text = r#"listeners { listener "w" { address "127.0.0.1:1"; } }
upstreams { upstream "u" { target "127.0.0.1:2"; } }
filters { filter "f" { type "rate-limit"; requests-per-second 1; } }
routes { route "r" { upstream "u"; filters "f"; } }"#;
        let config = zentinel_config::load_str("t.kdl", text).unwrap_or_else(|d| panic!("{d}"));
        let rt = Runtime::build(Arc::new(config)).unwrap_or_else(|e| panic!("{e}"));
        let c = &rt.routes[0].limits[0].counters;
        c.count(&c.rejected);
        let out = render(&rt, &ConnectionLimits::with_caps(10, 10, 10));
        for line in [
            r#"zentinel_rate_limit_total{route="r",filter="f",outcome="allowed"} 0"#,
            r#"zentinel_rate_limit_total{route="r",filter="f",outcome="rejected"} 1"#,
            r#"zentinel_rate_limit_total{route="r",filter="f",outcome="failed_closed"} 0"#,
            r#"zentinel_rate_limit_keys{filter="f"} 0"#,
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing in:\n{out}");
        }
    }
}
