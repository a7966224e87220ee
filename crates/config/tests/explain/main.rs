//! The explanation engine on realistic configurations: listener choice, priorities and
//! shadowing, wildcard hosts, conditions, 404s with near misses, failure modes, limits the
//! request already breaks, and a property test that the route it reports is always the one
//! `RouteMatcher::find` picks.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use proptest::prelude::*;
use zentinel_config::Config;
use zentinel_config::explain::{
    ExplainError, Explanation, FailureModeSource, FilterStep, ListenerReason, MatchedBy, OnFailure,
    Outcome, RequestDescription, RequestError, Scheme, explain,
};
use zentinel_config::matcher::{Request, RouteMatcher};
use zentinel_config::model::{FailureMode, RetryOn};

fn load(text: &str) -> Config {
    zentinel_config::load_str("test.kdl", text)
        .unwrap_or_else(|d| panic!("test configuration does not load:\n{d}\n--- text ---\n{text}"))
}

fn request(method: &str, url: &str, headers: &[&str]) -> RequestDescription {
    let mut r = RequestDescription::from_url(method, url).unwrap_or_else(|e| panic!("{url}: {e}"));
    for h in headers {
        r.header_line(h).unwrap_or_else(|e| panic!("{h}: {e}"));
    }
    r
}

fn ex(config: &Config, method: &str, url: &str, headers: &[&str]) -> Explanation {
    explain(config, None, &request(method, url, headers)).unwrap_or_else(|e| panic!("{e}"))
}

fn matched(e: &Explanation) -> Option<&str> {
    e.routing.matched.as_ref().map(|m| m.id.as_str())
}

fn status(e: &Explanation) -> Option<u16> {
    match &e.outcome {
        Outcome::Refuse(r) => Some(r.status),
        _ => None,
    }
}

fn production() -> Config {
    load(include_str!("../../../../examples/production.kdl"))
}

/// One `http` listener, upstream `u`, and the given routes (and extra top-level blocks).
fn simple(routes: &str, extra: &str) -> Config {
    load(&format!(
        r#"
listeners {{ listener "web" {{ address "127.0.0.1:8080"; protocol "http"; }} }}
upstreams {{ upstream "u" {{ target "127.0.0.1:3000"; }} }}
routes {{
{routes}
}}
{extra}
"#
    ))
}

mod filters;
mod limits;
mod property;
mod requests;
mod routing;
