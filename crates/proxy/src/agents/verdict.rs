//! Turning agents' answers (or their failures) into what happens to the request: consult a
//! route's agents for one event in parallel, then read their verdicts in the route's
//! `filters` order. The first block, redirect, challenge or fail-closed failure answers the
//! request; allows contribute their header edits; fail-open failures are logged and skipped.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use http::{HeaderName, HeaderValue};
use tokio::time::Instant;
use zentinel_agent_protocol::{
    AgentResponse, AuditMetadata, BodyMutation, Decision, Event, HeaderOp,
};
use zentinel_config::model::FailureMode;

use super::body::Direction;
use super::{Agents, Failure, Outcome, Use};
use crate::audit::{self, AuditLog};
use crate::forwarding::HeaderEdit;
use crate::metrics::AgentRouteCounters;

/// A header edit an agent asked for, checked once.
#[derive(Debug, Clone)]
pub(crate) enum Edit {
    /// Replace every value.
    Set(HeaderName, HeaderValue),
    /// Add a value.
    Add(HeaderName, HeaderValue),
    /// Remove every value.
    Remove(HeaderName),
}

/// Headers that frame the message or belong to one hop: an agent may not touch them.
const PROTECTED: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn name(n: &str) -> Result<HeaderName, String> {
    let name =
        HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("bad header name {n:?}"))?;
    if PROTECTED.contains(&name.as_str()) {
        return Err(format!("header {n:?} may not be edited by an agent"));
    }
    Ok(name)
}

fn value(v: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(v).map_err(|_| format!("bad header value {v:?}"))
}

/// Checks an agent's header operations.
pub(crate) fn edits(ops: &[HeaderOp]) -> Result<Vec<Edit>, String> {
    ops.iter()
        .map(|op| match op {
            HeaderOp::Set { name: n, value: v } => Ok(Edit::Set(name(n)?, value(v)?)),
            HeaderOp::Add { name: n, value: v } => Ok(Edit::Add(name(n)?, value(v)?)),
            HeaderOp::Remove { name: n } => Ok(Edit::Remove(name(n)?)),
        })
        .collect()
}

/// Applies checked edits, in order.
pub(crate) fn apply(edits: &[Edit], headers: &mut impl HeaderEdit) {
    for e in edits {
        match e {
            Edit::Set(n, v) => headers.insert(n.as_str(), v.clone()),
            Edit::Add(n, v) => headers.append(n.as_str(), v.clone()),
            Edit::Remove(n) => headers.remove(n.as_str()),
        }
    }
}

/// A response the proxy sends instead of proxying.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// Its status.
    pub status: u16,
    /// The agent's body; `None` sends the proxy's short explanation.
    pub body: Option<String>,
    /// The explanation used when there is no body.
    pub detail: &'static str,
    /// Extra headers (the agent's, or `Location`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// What the request does after one event.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Go on.
    Continue,
    /// Answer with this.
    Answer(Reply),
}

/// One call, for the access log.
#[derive(Debug, Clone)]
pub(crate) struct CallRecord {
    /// Index of the agent.
    pub agent: usize,
    /// The event.
    pub event: &'static str,
    /// What the call came to.
    pub outcome: Outcome,
    /// How long it took.
    pub latency: Duration,
}

/// The agent state of one request.
#[derive(Debug, Default)]
pub(crate) struct AgentState {
    /// Edits of the request sent upstream.
    pub request_edits: Vec<Edit>,
    /// Edits of the response sent to the client.
    pub response_edits: Vec<Edit>,
    /// A reply decided in a phase that can only fail (response headers); written by
    /// `fail_to_proxy`.
    pub pending: Option<Reply>,
    /// Every call made.
    pub calls: Vec<CallRecord>,
    /// The replacement of the body chunk being inspected, if an agent sent one.
    pub mutation: Option<Bytes>,
}

/// What one consultation is about.
#[derive(Debug)]
pub(crate) struct Consult<'a> {
    /// The configuration's agents.
    pub agents: &'a Agents,
    /// Where decisions are written.
    pub audit: &'a AuditLog,
    /// The request's trace ID.
    pub request_id: &'a str,
    /// The route.
    pub route: &'a str,
    /// The event's name.
    pub event: &'static str,
    /// The route's agent counters (indexed by [`Use::slot`]).
    pub counters: &'a [Arc<AgentRouteCounters>],
}

/// Calls every agent of `uses` with `event` at once and reads the verdicts in order.
pub(crate) async fn consult(
    c: &Consult<'_>,
    uses: &[Use],
    event: Event,
    state: &mut AgentState,
) -> Verdict {
    run(c, uses, event, None, state).await
}

/// [`consult`] on a body chunk: the first allowing agent's replacement of the chunk, if
/// any, is left in `state.mutation`.
pub(crate) async fn consult_body(
    c: &Consult<'_>,
    uses: &[Use],
    event: Event,
    dir: Direction,
    state: &mut AgentState,
) -> Verdict {
    run(c, uses, event, Some(dir), state).await
}

/// Records that the body passed `u`'s limit; the failure mode decides what follows.
pub(crate) fn over_limit(c: &Consult<'_>, u: &Use, state: &mut AgentState) -> Verdict {
    let agent = c.agents.list[u.agent].config.id.as_str();
    let f = Failure::BodyTooLarge;
    let (decision, verdict) = fallback(u.mode, f);
    let open = matches!(verdict, Verdict::Continue);
    c.audit.write(&audit::Decision {
        request_id: c.request_id,
        route: c.route,
        agent,
        event: c.event,
        decision,
        reason: Some(f.reason()),
        failure_mode: u.mode,
        status: (!open).then(|| f.status()),
        audit: None,
        latency: Duration::ZERO,
    });
    let counters = &c.counters[u.slot];
    counters.call(Outcome::Failed(f));
    counters.fallback(f, open);
    state.calls.push(CallRecord {
        agent: u.agent,
        event: c.event,
        outcome: Outcome::Failed(f),
        latency: Duration::ZERO,
    });
    verdict
}

fn take_mutation(dir: Option<Direction>, r: &AgentResponse, state: &mut AgentState) {
    let m = match dir {
        Some(Direction::Request) => r.request_body_mutation.as_ref(),
        Some(Direction::Response) => r.response_body_mutation.as_ref(),
        None => None,
    };
    if let Some(BodyMutation { data: Some(d), .. }) = m
        && state.mutation.is_none()
    {
        state.mutation = Some(Bytes::copy_from_slice(d.as_bytes()));
    }
}

async fn run(
    c: &Consult<'_>,
    uses: &[Use],
    event: Event,
    body: Option<Direction>,
    state: &mut AgentState,
) -> Verdict {
    let calls = uses.iter().map(|u| {
        let agent = &c.agents.list[u.agent];
        let event = event.clone();
        async move {
            let started = Instant::now();
            let result = agent.call(event).await;
            (result, started.elapsed())
        }
    });
    let results = join_all(calls).await;
    for (u, (result, latency)) in uses.iter().zip(results) {
        let runtime = &c.agents.list[u.agent];
        if !matches!(
            result,
            Err(Failure::Saturated | Failure::BreakerOpen | Failure::Unreachable)
        ) {
            // The call reached the agent.
            runtime.metrics.duration.observe(latency);
        }
        let agent = runtime.config.id.as_str();
        let line = |decision, reason, status, audit| audit::Decision {
            request_id: c.request_id,
            route: c.route,
            agent,
            event: c.event,
            decision,
            reason,
            failure_mode: u.mode,
            status,
            audit,
            latency,
        };
        let judged = result.and_then(|r| judge(&r).map(|j| (r, j)));
        let (outcome, verdict) = match judged {
            Ok((response, Judged::Allow(req, resp))) => {
                if has_findings(&response.audit) {
                    c.audit
                        .write(&line("allow", None, None, Some(&response.audit)));
                }
                state.request_edits.extend(req);
                state.response_edits.extend(resp);
                take_mutation(body, &response, state);
                (Outcome::Allow, Verdict::Continue)
            }
            Ok((response, Judged::Answer(kind, reply))) => {
                c.audit.write(&line(
                    kind.as_str(),
                    None,
                    Some(reply.status),
                    Some(&response.audit),
                ));
                (kind, Verdict::Answer(reply))
            }
            Err(f) => {
                let (decision, verdict) = fallback(u.mode, f);
                let open = matches!(verdict, Verdict::Continue);
                let status = (!open).then(|| f.status());
                c.audit
                    .write(&line(decision, Some(f.reason()), status, None));
                c.counters[u.slot].fallback(f, open);
                (Outcome::Failed(f), verdict)
            }
        };
        c.counters[u.slot].call(outcome);
        state.calls.push(CallRecord {
            agent: u.agent,
            event: c.event,
            outcome,
            latency,
        });
        if matches!(verdict, Verdict::Answer(_)) {
            return verdict;
        }
    }
    Verdict::Continue
}

fn has_findings(a: &AuditMetadata) -> bool {
    !a.rule_ids.is_empty() || !a.tags.is_empty()
}

/// What the failure mode makes of a failure.
fn fallback(mode: FailureMode, f: Failure) -> (&'static str, Verdict) {
    match mode {
        FailureMode::Open => ("fail_open", Verdict::Continue),
        _ => (
            "fail_closed",
            Verdict::Answer(Reply {
                status: f.status(),
                body: None,
                detail: match f {
                    Failure::Timeout => "a security check did not answer in time",
                    Failure::BodyTooLarge => "the body is larger than a security check accepts",
                    _ => "a security check is unavailable",
                },
                headers: Vec::new(),
            }),
        ),
    }
}

enum Judged {
    Allow(Vec<Edit>, Vec<Edit>),
    Answer(Outcome, Reply),
}

/// Checks an answer; anything the protocol does not allow is a protocol failure.
fn judge(r: &AgentResponse) -> Result<Judged, Failure> {
    let protocol = |detail: String| {
        tracing::warn!(%detail, "agent answer refused");
        Failure::Protocol
    };
    match &r.decision {
        Decision::Allow => Ok(Judged::Allow(
            edits(&r.request_headers).map_err(protocol)?,
            edits(&r.response_headers).map_err(protocol)?,
        )),
        Decision::Block {
            status,
            body,
            headers,
        } => {
            if !(200..=599).contains(status) || (300..400).contains(status) {
                return Err(protocol(format!("block status {status}")));
            }
            let headers = headers
                .iter()
                .map(|(n, v)| Ok((name(n)?, value(v)?)))
                .collect::<Result<Vec<_>, String>>()
                .map_err(protocol)?;
            Ok(Judged::Answer(
                Outcome::Block,
                Reply {
                    status: *status,
                    body: body.clone(),
                    detail: "blocked by policy",
                    headers,
                },
            ))
        }
        Decision::Redirect { url, status } => {
            if ![301, 302, 303, 307, 308].contains(status) {
                return Err(protocol(format!("redirect status {status}")));
            }
            let location = value(url).map_err(protocol)?;
            Ok(Judged::Answer(
                Outcome::Redirect,
                Reply {
                    status: *status,
                    body: None,
                    detail: "redirected",
                    headers: vec![(http::header::LOCATION, location)],
                },
            ))
        }
        // No challenge page can be configured yet: a challenge blocks, never allows.
        Decision::Challenge { .. } => Ok(Judged::Answer(
            Outcome::Challenge,
            Reply {
                status: 403,
                body: None,
                detail: "a challenge is required",
                headers: Vec::new(),
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_headers_are_protected_and_bad_names_refused() {
        let ok = edits(&[HeaderOp::Set {
            name: "X-User".into(),
            value: "42".into(),
        }]);
        assert!(matches!(ok.as_deref(), Ok([Edit::Set(n, _)]) if n == "x-user"));
        for bad in ["content-length", "Transfer-Encoding", "bad name"] {
            let e = edits(&[HeaderOp::Remove { name: bad.into() }]);
            assert!(e.is_err(), "{bad}");
        }
        let e = edits(&[HeaderOp::Add {
            name: "x".into(),
            value: "a\nb".into(),
        }]);
        assert!(e.is_err());
    }

    #[test]
    fn decisions_become_replies_and_invalid_ones_protocol_failures() {
        let block = AgentResponse::block("c", 451, "nope");
        assert!(matches!(judge(&block), Ok(Judged::Answer(Outcome::Block, r)) if r.status == 451));
        let bad = AgentResponse::block("c", 302, "");
        assert!(matches!(judge(&bad), Err(Failure::Protocol)));
        let redirect = AgentResponse::redirect("c", "https://login.test/", 302);
        let Ok(Judged::Answer(Outcome::Redirect, r)) = judge(&redirect) else {
            panic!("redirect");
        };
        assert_eq!(r.headers[0].1, "https://login.test/");
        let bad = AgentResponse::redirect("c", "https://x.test/", 200);
        assert!(matches!(judge(&bad), Err(Failure::Protocol)));
    }

    #[test]
    fn failure_modes() {
        assert!(matches!(
            fallback(FailureMode::Open, Failure::Timeout),
            ("fail_open", Verdict::Continue)
        ));
        let (d, Verdict::Answer(r)) = fallback(FailureMode::Closed, Failure::Timeout) else {
            panic!("closed answers");
        };
        assert_eq!((d, r.status), ("fail_closed", 504));
        let (_, Verdict::Answer(r)) = fallback(FailureMode::Closed, Failure::Saturated) else {
            panic!("closed answers");
        };
        assert_eq!(r.status, 503);
    }
}
