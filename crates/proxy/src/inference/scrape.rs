//! The `zentinel_inference_*` series of a scrape.

use crate::metrics::text::{Exposition, Kind};
use crate::runtime::Runtime;

/// Requests, tokens, estimates, budgets and keys of every route's `inference` block. No
/// series is labelled by key: budgets are summed over keys (tokens charged) or counted
/// (keys that reached a limit).
pub(crate) fn render(e: &mut Exposition, rt: &Runtime) {
    let all = rt.metrics.inferences();
    let name = "zentinel_inference_requests_total";
    e.family(
        name,
        Kind::Counter,
        "Requests through an inference block, by route and outcome (allowed, or the limit that refused it).",
    );
    for (route, c) in &all {
        for (outcome, n) in c.outcomes() {
            e.sample(name, &[("route", route.as_str()), ("outcome", outcome)], n);
        }
    }
    let name = "zentinel_inference_tokens_total";
    e.family(
        name,
        Kind::Counter,
        "Tokens charged when exchanges ended, by route, kind (prompt, completion) and source (usage: the answer's own; deltas: streamed text counted; estimate: the prompt's count alone).",
    );
    for (route, c) in &all {
        for (kind, source, n) in c.tokens() {
            let labels = [
                ("route", route.as_str()),
                ("kind", kind),
                ("source", source),
            ];
            e.sample(name, &labels, n);
        }
    }
    let name = "zentinel_inference_estimated_prompt_tokens_total";
    e.family(
        name,
        Kind::Counter,
        "Prompt tokens counted before forwarding, by route (compare with the prompt tokens charged).",
    );
    for (route, c) in &all {
        e.sample(name, &[("route", route.as_str())], c.estimated_total());
    }
    let name = "zentinel_inference_budget_alerts_total";
    e.family(
        name,
        Kind::Counter,
        "Keys that crossed an alert-only budget, by route and period (once per key and period).",
    );
    for (route, c) in &all {
        for (period, n) in c.alerts() {
            e.sample(name, &[("route", route.as_str()), ("period", period)], n);
        }
    }
    budgets(e, rt);
    let name = "zentinel_inference_keys";
    e.family(
        name,
        Kind::Gauge,
        "Keys an inference block of the current configuration tracks (at most its max-keys).",
    );
    for (i, r) in rt.routes.iter().enumerate() {
        if let Some(inf) = &r.inference {
            let route = rt.config.routes[i].id.as_str();
            e.sample(name, &[("route", route)], inf.keyed.store.keys());
        }
    }
}

/// Budgets by route and period, summed over keys: never a series per key.
fn budgets(e: &mut Exposition, rt: &Runtime) {
    let name = "zentinel_inference_budget_tokens_total";
    e.family(
        name,
        Kind::Counter,
        "Tokens charged against budgets when exchanges ended, by route and period (each configured period of a route counts every exchange's tokens), summed over keys.",
    );
    for (i, r) in rt.routes.iter().enumerate() {
        if let Some(inf) = &r.inference {
            let route = rt.config.routes[i].id.as_str();
            for b in &inf.settings().budgets {
                let n = inf.counters.budget_tokens(b.period);
                e.sample(name, &[("route", route), ("period", b.period.as_str())], n);
            }
        }
    }
    let name = "zentinel_inference_budget_keys_reached";
    e.family(
        name,
        Kind::Gauge,
        "Keys whose use in the current period reached the budget's limit, by route and period (enforce: refused until the period ends; alert-only: alerted).",
    );
    let unix = crate::inference::unix_now();
    for (i, r) in rt.routes.iter().enumerate() {
        if let Some(inf) = &r.inference {
            let route = rt.config.routes[i].id.as_str();
            for b in &inf.settings().budgets {
                let n = inf.keyed.store.reached(b.period, unix);
                e.sample(name, &[("route", route), ("period", b.period.as_str())], n);
            }
        }
    }
}
