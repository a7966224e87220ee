//! Which route takes the request and why, read from the matcher's own [`Trace`]: the
//! conditions of the chosen route with what in the request satisfied each, the routes it
//! shadows, and the routes that missed by one condition.

use serde::Serialize;

use super::RequestDescription;
use crate::matcher::{RouteCheck, Trace, decoded_eq};
use crate::model::{Config, HostPattern, Matches, PathMatch, RouteId};

/// The routing part of an explanation.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Routing {
    /// Routes the listener serves.
    pub candidates: usize,
    /// The route that takes the request; `None` means 404.
    pub matched: Option<MatchedRoute>,
    /// Routes whose conditions all hold too, ranked below the match: they never see this
    /// request.
    pub shadowed: Vec<RankedRoute>,
    /// Routes ranked above the match (or any, when nothing matched) that missed by exactly
    /// one condition.
    pub near_misses: Vec<NearMiss>,
    /// Routes whose conditions hold but that the listener does not serve (its `routes`).
    pub not_on_listener: Vec<RouteId>,
}

/// How the route was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchedBy {
    /// Its conditions hold and no route ranked above it matches.
    Conditions,
    /// Nothing matched; it is the listener's `default-route`.
    DefaultRoute,
}

/// The route that takes the request.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct MatchedRoute {
    /// Its ID.
    pub id: RouteId,
    /// Its priority.
    pub priority: i32,
    /// Its place among the listener's routes (1 is tried first).
    pub rank: usize,
    /// How it was chosen.
    pub by: MatchedBy,
    /// Each condition of its `matches` block and what the request had; empty when it has
    /// none (it matches every request).
    pub conditions: Vec<ConditionCheck>,
}

/// A route and its place in the ranking.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RankedRoute {
    /// Its ID.
    pub id: RouteId,
    /// Its priority.
    pub priority: i32,
    /// Its place among the listener's routes (1 is tried first).
    pub rank: usize,
}

/// A route that missed by one condition.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct NearMiss {
    /// The route.
    #[serde(flatten)]
    pub route: RankedRoute,
    /// Every condition of its `matches`; exactly one does not hold.
    pub conditions: Vec<ConditionCheck>,
}

/// One condition of a `matches` block against the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConditionCheck {
    /// The key as written: `host`, `path`, `path-prefix`, `path-regex`, `method`, `header`,
    /// `query-param`.
    pub key: &'static str,
    /// What the route asks for, as written (alternatives separated by `, `).
    pub expected: String,
    /// What the request has there; `None` when it has nothing (no such header, …).
    pub found: Option<String>,
    /// Whether the condition holds (as the matcher decided).
    pub holds: bool,
}

pub(super) fn explain(
    config: &Config,
    trace: &Trace<'_>,
    everywhere: Option<&Trace<'_>>,
    wire: &[(String, String)],
    req: &RequestDescription,
) -> Routing {
    let ranked = |rank: usize, c: &RouteCheck<'_>| RankedRoute {
        id: c.id.clone(),
        priority: config.routes[c.index].priority,
        rank: rank + 1,
    };
    let conditions_of = |c: &RouteCheck<'_>| {
        conditions(
            &config.routes[c.index].matches,
            c,
            trace.host.as_deref(),
            wire,
            req,
        )
    };
    // The rank of the route `find` chose by its conditions (not a default-route fallback).
    let winner = trace
        .found
        .filter(|f| !f.fallback)
        .and_then(|f| trace.routes.iter().position(|c| c.index == f.index));
    let matched = trace.found.and_then(|f| {
        let rank = trace.routes.iter().position(|c| c.index == f.index)?;
        let check = &trace.routes[rank];
        Some(MatchedRoute {
            id: check.id.clone(),
            priority: config.routes[f.index].priority,
            rank: rank + 1,
            by: if f.fallback {
                MatchedBy::DefaultRoute
            } else {
                MatchedBy::Conditions
            },
            conditions: conditions_of(check),
        })
    });
    let shadowed = match winner {
        Some(w) => trace
            .routes
            .iter()
            .enumerate()
            .skip(w + 1)
            .filter(|(_, c)| c.holds())
            .map(|(rank, c)| ranked(rank, c))
            .collect(),
        None => Vec::new(),
    };
    let near_misses = trace
        .routes
        .iter()
        .enumerate()
        .take(winner.unwrap_or(trace.routes.len()))
        .filter(|(_, c)| c.failed() == 1 && trace.found.is_none_or(|f| f.index != c.index))
        .map(|(rank, c)| NearMiss {
            route: ranked(rank, c),
            conditions: conditions_of(c),
        })
        .collect();
    let served = |index: usize| trace.routes.iter().any(|c| c.index == index);
    let not_on_listener = everywhere
        .map(|all| {
            all.routes
                .iter()
                .filter(|c| c.holds() && !served(c.index))
                .map(|c| c.id.clone())
                .collect()
        })
        .unwrap_or_default();
    Routing {
        candidates: trace.routes.len(),
        matched,
        shadowed,
        near_misses,
        not_on_listener,
    }
}

/// Each condition of `m` with the matcher's verdict from `check` and what the request had.
fn conditions(
    m: &Matches,
    check: &RouteCheck<'_>,
    host: Option<&str>,
    wire: &[(String, String)],
    req: &RequestDescription,
) -> Vec<ConditionCheck> {
    let mut out = Vec::new();
    if !m.hosts.is_empty() {
        out.push(ConditionCheck {
            key: "host",
            expected: join(m.hosts.iter().map(HostPattern::to_string)),
            found: host.map(str::to_owned),
            holds: check.host,
        });
    }
    for (p, holds) in m.paths.iter().zip(&check.paths) {
        let (key, expected) = match p {
            PathMatch::Exact(s) => ("path", s.clone()),
            PathMatch::Prefix(s) => ("path-prefix", s.clone()),
            PathMatch::Regex(r) => ("path-regex", r.as_str().to_owned()),
        };
        out.push(ConditionCheck {
            key,
            expected,
            found: Some(req.path.clone()),
            holds: *holds,
        });
    }
    if let Some(holds) = check.method {
        out.push(ConditionCheck {
            key: "method",
            expected: m.methods.join(", "),
            found: Some(req.method.clone()),
            holds,
        });
    }
    for (h, holds) in m.headers.iter().zip(&check.headers) {
        let values: Vec<&str> = wire
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&h.name))
            .map(|(_, v)| v.as_str())
            .collect();
        out.push(ConditionCheck {
            key: "header",
            expected: match &h.value {
                Some(v) => format!("{}: {v}", h.name),
                None => format!("{} (any value)", h.name),
            },
            found: (!values.is_empty()).then(|| format!("{}: {}", h.name, values.join(", "))),
            holds: *holds,
        });
    }
    for (q, holds) in m.query_params.iter().zip(&check.query_params) {
        let pairs: Vec<&str> = req
            .query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|pair| decoded_eq(pair.split_once('=').map_or(*pair, |(k, _)| k), &q.name))
            .collect();
        out.push(ConditionCheck {
            key: "query-param",
            expected: match &q.value {
                Some(v) => format!("{}={v}", q.name),
                None => format!("{} (any value)", q.name),
            },
            found: (!pairs.is_empty()).then(|| pairs.join("&")),
            holds: *holds,
        });
    }
    out
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}
