//! The built-in filter steps of the proxy phases: a route's rate limits, applied in its
//! `filters` order before any agent is consulted (a limited request never costs an agent
//! call), and the `RateLimit-*` headers of the answer.

use std::time::Duration;

use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use super::{Ctx, Zentinel};
use crate::audit::Limited;
use crate::errors::{Answer, Refusal, answer, explanation};
use crate::limits;
use crate::ratelimit::{self, Failure, KeyInput, Limiter, Quota, Shared, Take};

/// Keeps the quota with the fewest requests left, for the response headers.
fn tightest(kept: &mut Option<Quota>, q: Quota) {
    if kept.is_none_or(|k| q.remaining < k.remaining) {
        *kept = Some(q);
    }
}

/// Whether the request has a body not read yet: it would be taken for the next request, so
/// an answer given now closes the connection.
fn unread_body(session: &Session) -> bool {
    let req = session.req_header();
    limits::declared_body_len(req).is_some_and(|n| n > 0)
        || req.headers.contains_key(http::header::TRANSFER_ENCODING)
}

impl Zentinel {
    /// Applies the route's rate limits in order; `true` when one answered 429. A delayed
    /// request sleeps here (the longest of its filters' waits, each within its
    /// `max-delay-ms`), holding no lock.
    pub(super) async fn builtin_filters(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
    ) -> Result<bool> {
        let Some(route) = ctx.route else {
            return Ok(false);
        };
        let rt = ctx.rt.clone();
        let plan = &rt.routes[route].limits;
        if plan.is_empty() {
            return Ok(false);
        }
        let route_id = rt.config.routes[route].id.as_str();
        let client = ctx.forwarding.as_ref().and_then(|f| f.client_ip);
        let mut wait = Duration::ZERO;
        for step in plan {
            let limiter = &rt.limiters.list[step.limiter];
            let input = KeyInput {
                client_ip: client,
                route: route_id,
                headers: &session.req_header().headers,
            };
            let take = if limiter.is_shared() {
                match limiter.take_shared(&input).await {
                    Shared::Counted(take) => take,
                    Shared::Uncounted => {
                        step.counters.count(&step.counters.allowed);
                        continue;
                    }
                    Shared::Refused(failure) => {
                        step.counters.count(&step.counters.failed_closed);
                        self.backend_unavailable(session, ctx, limiter, failure)
                            .await?;
                        return Ok(true);
                    }
                }
            } else {
                limiter.take(&input)
            };
            let delay = match take {
                Take::Allowed(_) => None,
                Take::Delayed(d, _) => Some(d),
                Take::Rejected(..) => None,
            };
            if !matches!(take, Take::Allowed(_)) {
                rt.audit_log.limited(&Limited {
                    request_id: &ctx.request_id,
                    route: route_id,
                    client,
                    filter: limiter.id.as_str(),
                    key: &limiter.key_kinds,
                    delay,
                    backend_failure: None,
                });
            }
            let c = &step.counters;
            match take {
                Take::Allowed(q) => {
                    c.count(&c.allowed);
                    tightest(&mut ctx.quota, q);
                }
                Take::Delayed(d, q) => {
                    c.count(&c.delayed);
                    wait = wait.max(d);
                    tightest(&mut ctx.quota, q);
                }
                Take::Rejected(retry, q) => {
                    c.count(&c.rejected);
                    self.rate_limited(session, ctx, retry, &q).await?;
                    return Ok(true);
                }
            }
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(false)
    }

    /// Answers 429 with `Retry-After` and the `RateLimit-*` headers.
    async fn rate_limited(
        &self,
        session: &mut Session,
        ctx: &Ctx,
        retry: Duration,
        q: &Quota,
    ) -> Result<()> {
        let why = Refusal::RateLimited;
        let route = ctx.route.map(|i| ctx.rt.config.routes[i].id.as_str());
        let [limit, remaining, reset] = ratelimit::headers(q);
        let headers = [ratelimit::retry_after(retry), limit, remaining, reset];
        let a = Answer {
            status: why.status(),
            body: explanation(why.status(), why.reason(), route, &ctx.request_id),
            headers: &headers,
            close: unread_body(session),
        };
        answer(session, &a, &ctx.request_id, &ctx.rt.request_id_header).await
    }

    /// Answers 503 for a shared filter whose backend failed with `on-backend-failure
    /// "closed"`, and writes the audit line (the caller counted it).
    async fn backend_unavailable(
        &self,
        session: &mut Session,
        ctx: &Ctx,
        limiter: &Limiter,
        failure: Failure,
    ) -> Result<()> {
        let route = ctx.route.map(|i| ctx.rt.config.routes[i].id.as_str());
        ctx.rt.audit_log.limited(&Limited {
            request_id: &ctx.request_id,
            route: route.unwrap_or_default(),
            client: ctx.forwarding.as_ref().and_then(|f| f.client_ip),
            filter: limiter.id.as_str(),
            key: &limiter.key_kinds,
            delay: None,
            backend_failure: Some(failure.as_str()),
        });
        tracing::debug!(filter = %limiter.id, "rate-limit backend failed: refusing (closed)");
        let a = Answer {
            status: 503,
            body: explanation(
                503,
                "rate limit backend unavailable",
                route,
                &ctx.request_id,
            ),
            headers: &[],
            close: unread_body(session),
        };
        answer(session, &a, &ctx.request_id, &ctx.rt.request_id_header).await
    }

    /// The `RateLimit-*` headers of a request a rate limit let through.
    pub(super) fn quota_headers(&self, ctx: &Ctx, resp: &mut ResponseHeader) -> Result<()> {
        if let Some(q) = &ctx.quota {
            for (name, value) in ratelimit::headers(q) {
                resp.insert_header(name, value)?;
            }
        }
        Ok(())
    }
}
