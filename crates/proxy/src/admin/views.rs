//! What the admin endpoints show, computed from one runtime: readiness, the effective
//! configuration with secrets redacted, upstream targets and agents.

use serde_json::{Value, json};

use crate::metrics::CLIENT_COUNTERS;
use crate::runtime::Runtime;

/// What replaces a redacted value.
pub(crate) const REDACTED: &str = "[redacted]";

/// `Ok` when the proxy is ready for traffic; otherwise every reason it is not.
///
/// Ready means: this runtime is live (the admin API only answers once the first one is),
/// no graceful shutdown has begun, every agent has completed a handshake or had its
/// handshake timeout to do so, and every target with an active health check has been
/// probed at least once.
pub(crate) fn readiness(rt: &Runtime, draining: bool) -> Result<(), Vec<String>> {
    let mut why = Vec::new();
    if draining {
        why.push("shutting down".to_owned());
    }
    for a in &rt.agents.list {
        if a.capabilities().is_none() && rt.built.elapsed() < a.config.handshake_timeout {
            why.push(format!("agent \"{}\" has not connected yet", a.config.id));
        }
    }
    for (u, pool) in rt.config.upstreams.iter().zip(&rt.pools) {
        if u.health_check.is_none() {
            continue;
        }
        let waiting = (0..pool.targets.len())
            .filter(|i| !pool.is_probed(*i))
            .count();
        if waiting > 0 {
            why.push(format!(
                "upstream \"{}\": {waiting} of {} targets not health-checked yet",
                u.id,
                pool.targets.len()
            ));
        }
    }
    if why.is_empty() { Ok(()) } else { Err(why) }
}

/// Whether a key of an agent's `config {}` names a secret.
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["token", "secret", "password", "key"]
        .iter()
        .any(|s| k.contains(s))
}

/// Replaces, at any depth, the values of keys that name secrets.
fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret(k) {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The effective configuration (defaults filled in) as JSON, with the values of agent
/// `config {}` keys that look like secrets redacted. The admin token is not part of the
/// configuration (only its file's path is).
pub(crate) fn config(rt: &Runtime) -> Value {
    let mut v = serde_json::to_value(&*rt.config).unwrap_or(Value::Null);
    if let Some(agents) = v.get_mut("agents").and_then(Value::as_array_mut) {
        for a in agents {
            if let Some(c) = a.get_mut("config") {
                redact(c);
            }
        }
    }
    v
}

/// Every upstream and its targets: health by both mechanisms, requests in flight.
pub(crate) fn upstreams(rt: &Runtime) -> Value {
    let list: Vec<_> = rt
        .config
        .upstreams
        .iter()
        .zip(&rt.pools)
        .map(|(u, pool)| {
            let targets: Vec<_> = pool
                .targets
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    json!({
                        "address": t.name,
                        "connects_to": t.addr().to_string(),
                        "healthy": pool.available(i),
                        "down": pool.is_down(i),
                        "ejected": pool.is_ejected(i),
                        "probed": pool.is_probed(i),
                        "in_flight": pool.in_flight(i),
                    })
                })
                .collect();
            json!({
                "id": u.id,
                "health_check": u.health_check.is_some(),
                "targets": targets,
            })
        })
        .collect();
    json!({ "upstreams": list })
}

/// Every agent: transport, connection, breaker, permits, handshake capabilities and the
/// client's counters (summed over reloads).
pub(crate) fn agents(rt: &Runtime) -> Value {
    let list: Vec<_> = rt
        .agents
        .list
        .iter()
        .map(|a| {
            let (in_use, size) = a.permits();
            let totals = a.metrics.client_totals();
            let client: serde_json::Map<_, _> = CLIENT_COUNTERS
                .iter()
                .zip(totals)
                .map(|((name, _), n)| ((*name).to_owned(), json!(n)))
                .collect();
            json!({
                "id": a.config.id,
                "transport": a.config.transport,
                "ready": a.is_ready(),
                "breaker": a.breaker_state().as_str(),
                "permits_in_use": in_use,
                "permits": size,
                "capabilities": a.capabilities(),
                "client": client,
            })
        })
        .collect();
    json!({ "agents": list })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_keys_are_redacted_at_any_depth() {
        let mut v = json!({
            "mode": "strict",
            "api-key": "k",
            "nested": { "Password": "p", "depth": [ { "client_secret": "s" }, 3 ] },
            "auth-token": { "whole": "subtree" },
        });
        redact(&mut v);
        assert_eq!(
            v,
            json!({
                "mode": "strict",
                "api-key": REDACTED,
                "nested": { "Password": REDACTED, "depth": [ { "client_secret": REDACTED }, 3 ] },
                "auth-token": REDACTED,
            })
        );
    }
}
