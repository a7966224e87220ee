//! The steps of a route's `inference` block in the proxy phases: admission before the body,
//! the prompt's charge once the body is complete, the `X-Inference-*` headers, reading the
//! answer's usage as it streams, and settling when the exchange ends.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use super::{Ctx, Zentinel};
use crate::agents::verdict::Reply;
use crate::audit::TokenLimit;
use crate::errors::{Answer, answer, explanation};
use crate::inference::store::{Exceeded, Refused};
use crate::inference::usage::Scanner;
use crate::inference::{self, Exchange, prompt};
use crate::limits;
use crate::ratelimit::KeyInput;

/// Prompts up to this size are counted on the worker; longer ones on the blocking pool, so
/// a large prompt never holds a worker thread.
const INLINE_PROMPT: usize = 16 << 10;

impl Zentinel {
    /// The first gate, before the body is read: `true` when the request was answered 429.
    pub(super) async fn inference_admit(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
    ) -> Result<bool> {
        let Some(route) = ctx.route else {
            return Ok(false);
        };
        let rt = ctx.rt.clone();
        let Some(inf) = &rt.routes[route].inference else {
            return Ok(false);
        };
        let input = KeyInput {
            client_ip: ctx.forwarding.as_ref().and_then(|f| f.client_ip),
            route: rt.config.routes[route].id.as_str(),
            headers: &session.req_header().headers,
        };
        let key = inf.key(&input);
        match inf
            .keyed
            .store
            .admit(key, tokio::time::Instant::now(), inference::unix_now())
        {
            Ok(left) => {
                ctx.inference = Some(Box::new(Exchange::new(key, left)));
                Ok(false)
            }
            Err(refused) => {
                self.token_refusal(ctx, &refused, None);
                let headers = refusal_headers(&refused);
                let req = session.req_header();
                // An unread request body would be taken for the next request: close instead.
                let close = limits::declared_body_len(req).is_some_and(|n| n > 0)
                    || req.headers.contains_key(http::header::TRANSFER_ENCODING);
                let a = Answer {
                    status: 429,
                    body: explanation(
                        429,
                        reason(&refused, false),
                        Some(input.route),
                        &ctx.request_id,
                    ),
                    headers: &headers,
                    close,
                };
                answer(session, &a, &ctx.request_id, &rt.request_id_header).await?;
                Ok(true)
            }
        }
    }

    /// Holds the request body until it is complete, then counts its prompt and charges it;
    /// over the limit, the request is answered 429 and never completes upstream.
    pub(super) async fn inference_body(
        &self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(route) = ctx.route else {
            return Ok(());
        };
        let rt = ctx.rt.clone();
        let (Some(inf), Some(ex)) = (&rt.routes[route].inference, ctx.inference.as_mut()) else {
            return Ok(());
        };
        if ex.prompt.is_some() {
            return Ok(());
        }
        if let Some(chunk) = body.take() {
            ex.body.extend_from_slice(&chunk);
        }
        if !end_of_stream {
            return Ok(());
        }
        let held = std::mem::take(&mut ex.body).freeze();
        let settings = inf.settings();
        let (provider, tokenizer) = (settings.provider, settings.tokenizer);
        let counted = if held.len() <= INLINE_PROMPT {
            prompt::count(provider, tokenizer, &held)
        } else {
            let text = held.clone();
            tokio::task::spawn_blocking(move || prompt::count(provider, tokenizer, &text))
                .await
                .unwrap_or_else(|_| {
                    prompt::count(provider, zentinel_config::model::Tokenizer::Estimate, &held)
                })
        };
        inf.counters.estimated(counted.tokens);
        let tokens = counted.tokens;
        ex.prompt = Some(counted);
        let unix = inference::unix_now();
        match inf
            .keyed
            .store
            .charge(ex.key, tokens, tokio::time::Instant::now(), unix)
        {
            Ok(left) => {
                ex.left = left;
                ex.charged = tokens;
                ex.charged_at = unix;
                *body = Some(held);
                Ok(())
            }
            Err(refused) => {
                ex.refused = true;
                self.token_refusal(ctx, &refused, Some(tokens));
                ctx.agents.pending = Some(Reply {
                    status: 429,
                    body: None,
                    detail: reason(&refused, true),
                    headers: refusal_headers(&refused),
                });
                Err(Error::explain(
                    HTTPStatus(429),
                    "the prompt's tokens are over the route's inference limit",
                ))
            }
        }
    }

    /// The request's body, complete, passed every request filter and goes to the upstream:
    /// its prompt's charge is no longer given back without a usage (see
    /// [`Exchange::used`]).
    pub(super) fn inference_forwarded(ctx: &mut Ctx, end_of_stream: bool) {
        if let (true, Some(ex)) = (end_of_stream, ctx.inference.as_mut()) {
            ex.forwarded = true;
        }
    }

    /// Audits and counts a refusal.
    fn token_refusal(&self, ctx: &Ctx, refused: &Refused, prompt_tokens: Option<u64>) {
        let Some(route) = ctx.route else { return };
        let Some(inf) = &ctx.rt.routes[route].inference else {
            return;
        };
        inf.counters.refused(refused.why);
        ctx.rt.audit_log.token_limit(&TokenLimit {
            request_id: &ctx.request_id,
            route: ctx.rt.config.routes[route].id.as_str(),
            client: ctx.forwarding.as_ref().and_then(|f| f.client_ip),
            key: &inf.key_kinds,
            limit: refused.why.label(),
            decision: "reject",
            prompt_tokens,
            budget: None,
        });
    }

    /// The answer's headers arrived: the `X-Inference-*` headers are added and its usage
    /// will be read.
    pub(super) fn inference_response(
        &self,
        ctx: &mut Ctx,
        resp: &mut ResponseHeader,
    ) -> Result<()> {
        let Some(route) = ctx.route else {
            return Ok(());
        };
        let rt = ctx.rt.clone();
        let (Some(inf), Some(ex)) = (&rt.routes[route].inference, ctx.inference.as_mut()) else {
            return Ok(());
        };
        let header = |n: &str| resp.headers.get(n).and_then(|v| v.to_str().ok());
        ex.scanner = Some(Scanner::new(
            header("content-type"),
            header("content-encoding"),
            ex.counter(inf.settings()),
        ));
        ex.status = resp.status.as_u16();
        for (name, value) in inference::headers(&ex.left) {
            resp.insert_header(name, value)?;
        }
        Ok(())
    }

    /// A chunk of the answer, on its way to the client.
    pub(super) fn inference_chunk(ctx: &mut Ctx, body: Option<&Bytes>) {
        if let (Some(ex), Some(b)) = (ctx.inference.as_mut(), body)
            && let Some(s) = ex.scanner.as_mut()
        {
            s.feed(b);
        }
    }

    /// The exchange ended: the real usage is charged against the estimate and added to the
    /// budgets; crossed `alert-only` budgets are logged.
    pub(super) fn inference_settle(&self, ctx: &mut Ctx) {
        let (Some(route), Some(ex)) = (ctx.route, ctx.inference.take()) else {
            return;
        };
        let rt = ctx.rt.clone();
        let Some(inf) = &rt.routes[route].inference else {
            return;
        };
        if !ex.refused {
            inf.counters.allowed();
        }
        let (key, charged, prompt_tokens) = (
            ex.key,
            (ex.charged, ex.charged_at),
            ex.prompt.as_ref().map(|p| p.tokens),
        );
        let (input, output, source) = ex.used();
        inf.counters.used(input, output, source);
        // Numbers the upstream reported: added without overflow.
        let used = input.saturating_add(output);
        for b in &inf.settings().budgets {
            inf.counters.budget_charged(b.period, used);
        }
        let crossed = inf.keyed.store.settle(
            key,
            charged,
            used,
            tokio::time::Instant::now(),
            inference::unix_now(),
        );
        for b in crossed {
            inf.counters.alert(b.period);
            rt.audit_log.token_limit(&TokenLimit {
                request_id: &ctx.request_id,
                route: rt.config.routes[route].id.as_str(),
                client: ctx.forwarding.as_ref().and_then(|f| f.client_ip),
                key: &inf.key_kinds,
                limit: Exceeded::Budget(b.period).label(),
                decision: "alert",
                prompt_tokens,
                budget: Some(b.limit),
            });
        }
    }
}

/// The explanation of a refusal, before the prompt was counted or once it was.
fn reason(r: &Refused, counted: bool) -> &'static str {
    match (r.why, r.retry_after, counted) {
        (Exceeded::Tokens, None, _) => "the prompt alone is over the route's tokens per minute",
        (Exceeded::Tokens, Some(_), _) => "token rate limit exceeded",
        (Exceeded::Requests, _, _) => "request rate limit exceeded",
        (Exceeded::Budget(_), None, _) => "the prompt alone is over the route's token budget",
        (Exceeded::Budget(_), Some(_), true) => {
            "the prompt is over what is left of the token budget for this period"
        }
        (Exceeded::Budget(_), Some(_), false) => "token budget used up for this period",
    }
}

/// `Retry-After` (when waiting helps) and what the key has left.
fn refusal_headers(r: &Refused) -> Vec<(http::HeaderName, http::HeaderValue)> {
    let mut h: Vec<_> = inference::retry_after(r.retry_after).into_iter().collect();
    h.extend(inference::headers(&r.left));
    h
}
