//! The `ProxyHttp` implementation: one instance per listener, each phase a short step over
//! state prepared when the configuration was loaded. The agent steps are in
//! [`agent_phases`], the built-in filters' (rate limits) in [`filter_phases`].

mod agent_phases;
mod filter_phases;
mod inference_phases;
mod upstream_head;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use tracing::Instrument;
use zentinel_config::matcher::Request;
use zentinel_config::model::{HashKey, PathParameters, RetryOn};

use crate::agents::body::{BodyState, Direction};
use crate::agents::event;
use crate::agents::verdict::{self, AgentState};
use crate::audit::Rejection;
use crate::errors::{Malformed, Refusal, respond, status_of};
use crate::forwarding::{
    Forwarding, apply_policy, remove_present, strip_request_hop_by_hop, strip_response_hop_by_hop,
};
use crate::header_deadline::HeaderDeadline;
use crate::inference::Exchange;
use crate::limits;
use crate::pool::{SelectInput, Tried};
use crate::ratelimit::Quota;
use crate::retry;
use crate::runtime::{Runtime, Shared, Slot};
use crate::slow_clients;
use crate::strict;
use crate::trace::Trace;

/// The proxy logic of one listener.
#[derive(Debug)]
pub(crate) struct Zentinel {
    /// Position of the listener in the configuration.
    pub listener: usize,
    /// The current runtime.
    pub shared: Arc<Shared>,
    /// Set when a graceful shutdown has begun: new requests are refused.
    pub draining: Arc<AtomicBool>,
}

/// The upstream attempt state of one request.
#[derive(Debug, Default)]
pub(crate) struct Attempt {
    /// Target of the current attempt, as an index in the route's pool.
    pub target: Option<usize>,
    /// Targets tried so far.
    pub tried: Tried,
    /// Attempts started.
    pub count: u32,
    /// Whether the current attempt failed.
    pub failed: bool,
    /// Set when an upstream status is being turned into a retry.
    pub status_retry: bool,
    /// When the current attempt started (its target was chosen), until its response
    /// headers arrive.
    pub started: Option<Instant>,
    /// Target of the last attempt, kept for the access log.
    pub last_target: Option<usize>,
    /// Time from choosing the target to the response headers, of the attempt that answered.
    pub upstream_time: Option<Duration>,
    /// Request body bytes passed to the current attempt. A retry first replays Pingora's
    /// retry buffer (the bytes already counted) through `request_body_filter`.
    pub body_seen: u64,
}

/// Per-request state.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The runtime this request uses until it ends.
    pub rt: Arc<Runtime>,
    /// The request ID sent upstream and back: the trace ID.
    pub request_id: String,
    /// The W3C trace context.
    pub trace: Trace,
    /// The request's span: every error-log line of the request carries its trace ID and
    /// route. At `error` level, so it exists whenever the error log is on. Made by
    /// `request_filter` once the request is routed (or refused); none before.
    pub span: tracing::Span,
    /// The matched route, as an index in `config.routes`.
    pub route: Option<usize>,
    /// Who the client is.
    pub forwarding: Option<Forwarding>,
    /// Upstream attempts.
    pub attempt: Attempt,
    /// In-flight slots held for the request's lifetime.
    pub slots: (Option<Slot>, Option<Slot>),
    /// Request body bytes seen so far.
    pub body_bytes: u64,
    /// When the request started.
    pub started: Instant,
    /// When the first request body bytes arrived: the minimum body rate counts from here.
    pub body_started: Option<Instant>,
    /// What the route's agents said.
    pub agents: AgentState,
    /// Body inspection progress: request, response.
    pub bodies: (BodyState, BodyState),
    /// The upstream response's `Content-Length`, for response-body agents.
    pub response_length: Option<u64>,
    /// What the route's rate limits left (the tightest), for the `RateLimit-*` headers.
    pub quota: Option<Quota>,
    /// The exchange's progress through the route's `inference` block, if it has one.
    pub inference: Option<Box<Exchange>>,
}

impl Zentinel {
    fn request_id_header(&self, ctx: &Ctx) -> http::HeaderName {
        // A cheap clone of the name parsed when the runtime was built.
        ctx.rt.request_id_header.clone()
    }

    /// Whether the request can be sent again as it was: its body, if any, is in Pingora's
    /// retry buffer, and no agent has judged (and perhaps replaced) its body — a replay
    /// would send the original, unjudged bytes.
    fn replayable(&self, session: &Session, ctx: &Ctx) -> bool {
        let judged = ctx
            .route
            .is_some_and(|r| !ctx.rt.routes[r].agents.request_body.is_empty())
            && ctx.body_bytes > 0;
        !judged && !session.as_ref().retry_buffer_truncated()
    }

    /// Writes the audit line of a refusal that is a security decision.
    fn audit_refusal(&self, ctx: &Ctx, why: Refusal) {
        if let Some(reason) = why.audit_reason() {
            ctx.rt.audit_log.rejection(&Rejection {
                request_id: Some(&ctx.request_id),
                route: ctx.route.map(|i| ctx.rt.config.routes[i].id.as_str()),
                client: ctx.forwarding.as_ref().and_then(|f| f.client_ip),
                reason,
                status: Some(why.status()),
            });
        }
    }

    async fn refuse(&self, session: &mut Session, ctx: &mut Ctx, why: Refusal) -> Result<bool> {
        self.audit_refusal(ctx, why);
        let route = ctx.route.map(|i| ctx.rt.config.routes[i].id.to_string());
        let header = self.request_id_header(ctx);
        let close = !matches!(why, Refusal::NoRoute | Refusal::Overloaded);
        respond(
            session,
            why.status(),
            why.reason(),
            route.as_deref(),
            &ctx.request_id,
            &header,
            close,
        )
        .await?;
        Ok(true)
    }

    /// Finds the route and takes the in-flight slots; `Some(refusal)` when the request must be
    /// answered by the proxy.
    fn admit(&self, session: &mut Session, ctx: &mut Ctx) -> Option<Refusal> {
        if self.draining.load(Ordering::Relaxed) {
            return Some(Refusal::ShuttingDown);
        }
        let rt = ctx.rt.clone();
        let req = session.req_header();
        let raw = session
            .as_downstream()
            .as_http1()
            .map(|h1| h1.get_headers_raw_bytes());
        if let Some(m) = strict::check(req, raw.as_deref()) {
            return Some(Refusal::BadRequest(m));
        }
        if let Some(m) = strict::refused_method(req) {
            return Some(Refusal::Method(m));
        }
        if let Some(r) = limits::check_head(&rt.config.limits, req) {
            return Some(r);
        }
        // One normalisation, then routing and forwarding both use its result.
        let refuse_parameters =
            rt.config.listeners[self.listener].path_parameters == PathParameters::Refuse;
        if let Err(e) = strict::normalize_target(session.req_header_mut(), refuse_parameters) {
            return Some(Refusal::BadRequest(Malformed::Path(e)));
        }
        let req = session.req_header();
        ctx.slots.0 = Slot::global(&rt);
        if ctx.slots.0.is_none() {
            return Some(Refusal::Overloaded);
        }
        let host = req
            .uri
            .host()
            .or_else(|| req.headers.get("host").and_then(|v| v.to_str().ok()));
        let headers = limits::HeaderView(&req.headers);
        let view = Request {
            method: req.method.as_str(),
            host,
            path: req.uri.path(),
            query: req.uri.query(),
            headers: &headers,
        };
        let Some(found) = rt.matchers.get(self.listener).and_then(|m| m.find(&view)) else {
            return Some(Refusal::NoRoute);
        };
        ctx.route = Some(found.index);
        let (route, rr) = rt.route(found.index);
        if strict::asks_websocket(req) && !route.websocket {
            return Some(Refusal::UpgradeNotAllowed);
        }
        if limits::declared_body_len(req).is_some_and(|n| n > rr.max_body_bytes) {
            return Some(Refusal::BodyTooLarge);
        }
        ctx.slots.1 = Slot::route(&rt, found.index);
        if ctx.slots.1.is_none() {
            return Some(Refusal::Overloaded);
        }
        rr.retry_budget.record_request();
        None
    }

    fn hash_key(&self, session: &Session, ctx: &Ctx, key: &HashKey) -> Option<Vec<u8>> {
        let headers = &session.req_header().headers;
        match key {
            HashKey::ClientIp => ctx
                .forwarding
                .as_ref()?
                .client_ip
                .map(|ip| ip.to_string().into_bytes()),
            HashKey::Header(name) => headers.get(name.as_str()).map(|v| v.as_bytes().to_vec()),
            HashKey::Cookie(name) => limits::cookie(headers, name).map(|v| v.as_bytes().to_vec()),
            _ => None,
        }
    }

    fn finish_attempt(&self, ctx: &mut Ctx, failed: bool) {
        if let (Some(route), Some(t)) = (ctx.route, ctx.attempt.target.take()) {
            let pool = &ctx.rt.pools[ctx.rt.routes[route].pool];
            pool.end(t, failed);
        }
    }
}

/// The explanation given where the error was raised: the innermost context of its chain.
/// Hooks wrap errors in more context for the error log (`error_while_proxy` adds the peer's
/// address), which must not reach the client.
fn own_explanation(e: &Error) -> Option<String> {
    let mut root = e;
    // `more_context` keeps the wrapped error as its cause, boxed once more.
    while let Some(inner) = root.cause.as_deref().and_then(|c| {
        c.downcast_ref::<Box<Error>>()
            .map(AsRef::as_ref)
            .or_else(|| c.downcast_ref::<Error>())
    }) {
        root = inner;
    }
    root.context.as_ref().map(ToString::to_string)
}

/// The peer for target `t` of pool `pool`: over TLS when the upstream has a `tls` block.
fn new_peer(rt: &Runtime, pool: usize, t: usize) -> HttpPeer {
    let addr = rt.pools[pool].targets[t].addr();
    match rt.upstream_tls.get(pool).and_then(Option::as_ref) {
        Some(tls) => tls.peer(addr, t),
        None => HttpPeer::new(addr, false, String::new()),
    }
}

/// The span of a request whose trace and route are settled: one creation, with both fields
/// (a field recorded later would make the log formatter write them all again).
fn request_span(ctx: &Ctx) -> tracing::Span {
    match ctx.route {
        Some(r) => tracing::error_span!(
            "request",
            request_id = %ctx.request_id,
            route = %ctx.rt.config.routes[r].id
        ),
        None => tracing::error_span!("request", request_id = %ctx.request_id),
    }
}

#[async_trait]
impl ProxyHttp for Zentinel {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        let trace = Trace::new();
        Ctx {
            rt: self.shared.load(),
            request_id: trace.id.clone(),
            trace,
            // Made in `request_filter` once the route is known (`request_span`).
            span: tracing::Span::none(),
            route: None,
            forwarding: None,
            attempt: Attempt::default(),
            slots: (None, None),
            body_bytes: 0,
            body_started: None,
            started: Instant::now(),
            agents: AgentState::default(),
            bodies: (BodyState::default(), BodyState::default()),
            response_length: None,
            quota: None,
            inference: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        // Up to the route decision nothing here logs: the span is made once both of its
        // fields are known (recording a field later would format them all again).
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let forwarding =
            Forwarding::new(&ctx.rt.config.server, peer, &session.req_header().headers);
        // A trace is continued only from a trusted proxy.
        if forwarding.trusted_peer
            && let Some(t) = session
                .req_header()
                .headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .and_then(Trace::continue_from)
        {
            ctx.trace = t;
            ctx.request_id.clone_from(&ctx.trace.id);
        }
        ctx.forwarding = Some(forwarding);
        let listener = &ctx.rt.config.listeners[self.listener];
        session.set_keepalive(Some(listener.idle_timeout.as_secs().max(1)));
        // Pipelined requests are answered one after the other, in order (RFC 9112 §9.3.2);
        // without this Pingora answers the first and drops the rest.
        session.set_pipelining_enabled(true);
        slow_clients::arm(session, listener);
        let refusal = self.admit(session, ctx);
        ctx.span = request_span(ctx);
        let span = ctx.span.clone();
        async {
            match refusal {
                Some(why) => self.refuse(session, ctx, why).await,
                None => {
                    // Retries on upstream statuses resend the request: keep its body (up to
                    // Pingora's 64 KiB retry buffer; a longer body is not retried).
                    let retry = ctx.route.map(|i| &ctx.rt.config.routes[i].retry);
                    if retry.is_some_and(|r| {
                        r.max_attempts > 1 && r.retry_on.iter().any(|o| *o != RetryOn::ConnectError)
                    }) {
                        session.enable_retry_buffering();
                    }
                    // Built-in filters first: a limited request never costs an agent call.
                    if self.builtin_filters(session, ctx).await?
                        || self.inference_admit(session, ctx).await?
                    {
                        return Ok(true);
                    }
                    self.request_agents(session, ctx).await
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let route = ctx.route.ok_or_else(|| Refusal::NoRoute.error())?;
        if ctx.attempt.target.is_some() {
            // A previous try ended without passing through a failure hook.
            self.finish_attempt(ctx, true);
        }
        let rt = ctx.rt.clone();
        let pool_index = rt.routes[route].pool;
        let pool = &rt.pools[pool_index];
        let key = pool.hash_on().and_then(|k| self.hash_key(session, ctx, k));
        let input = SelectInput {
            hash_key: key.as_deref(),
            tried: ctx.attempt.tried,
        };
        if ctx.started.elapsed() >= rt.config.routes[route].total_timeout {
            return Err(Error::explain(
                HTTPStatus(504),
                "the route's deadline passed before an upstream answered",
            ));
        }
        let Some(t) = pool.select(input) else {
            return Err(Refusal::NoHealthyTarget.error());
        };
        pool.begin(t);
        ctx.attempt.started = Some(Instant::now());
        ctx.attempt.target = Some(t);
        ctx.attempt.last_target = Some(t);
        ctx.attempt.tried.insert(t);
        ctx.attempt.count += 1;
        ctx.attempt.body_seen = 0;
        ctx.attempt.failed = false;
        let upstream = &rt.config.upstreams[pool_index];
        // No wait may outlive the route's deadline for the whole request.
        let r = &rt.config.routes[route];
        // No wait of this try may outlive the route's deadline, nor the try's own.
        let left = r.total_timeout.saturating_sub(ctx.started.elapsed());
        let left = r
            .retry
            .per_try_timeout
            .map_or(left, |per_try| per_try.min(left));
        let mut peer = new_peer(&rt, pool_index, t);
        // `Connection` options are removed in `upstream_request_filter`, which never lets
        // them remove what the proxy writes; Pingora's own removal refuses such requests
        // after the upstream connection is made.
        peer.options
            .http_upstream_request_policy
            .strip_connection_nominated = false;
        let connect = upstream.timeouts.connect.min(left);
        peer.options.connection_timeout = Some(connect);
        // `connect-ms` bounds the TCP connect and the TLS handshake together.
        peer.options.total_connection_timeout = Some(connect);
        peer.options.read_timeout = Some(upstream.timeouts.read.min(left));
        peer.options.write_timeout = Some(upstream.timeouts.write.min(left));
        peer.options.idle_timeout = Some(if upstream.connection_pool.max_idle == 0 {
            Duration::ZERO
        } else {
            upstream.connection_pool.idle_timeout
        });
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let span = ctx.span.clone();
        let _entered = span.enter();
        self.finish_attempt(ctx, true);
        let Some(route) = ctx.route else { return e };
        let (r, rr) = ctx.rt.route(route);
        // Nothing was sent on a failed connect, so the method and body do not matter.
        let retry = retry::may_retry(
            r,
            &rr.retry_budget,
            ctx.attempt.count,
            RetryOn::ConnectError,
            true,
            true,
        );
        e.set_retry(retry);
        e
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        // A head Pingora's client lets through but the client must not get: 502, and the
        // error keeps the upstream connection out of the pool.
        let asked_websocket = ctx.route.is_some_and(|r| ctx.rt.config.routes[r].websocket)
            && strict::asks_websocket(session.req_header());
        if let Some(bad) = upstream_head::check(resp, asked_websocket) {
            return Err(bad.error());
        }
        if let (Some(route), Some(started)) = (ctx.route, ctx.attempt.started.take()) {
            let took = started.elapsed();
            ctx.attempt.upstream_time = Some(took);
            ctx.rt.upstream_metrics[ctx.rt.routes[route].pool]
                .duration
                .observe(took);
        }
        let (Some(route), Some(on)) = (ctx.route, retry::on_status(resp.status.as_u16())) else {
            return Ok(());
        };
        let (r, rr) = ctx.rt.route(route);
        let idempotent = session.req_header().method.is_idempotent();
        let replayable = self.replayable(session, ctx);
        if !retry::may_retry(
            r,
            &rr.retry_budget,
            ctx.attempt.count,
            on,
            idempotent,
            replayable,
        ) {
            return Ok(());
        }
        // Turn the answer into a retryable error before anything reaches the client.
        ctx.attempt.status_retry = true;
        let mut e = Error::explain(
            HTTPStatus(resp.status.as_u16()),
            "upstream status; retrying on another target",
        );
        e.set_retry(true);
        Err(e)
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        let span = ctx.span.clone();
        let _entered = span.enter();
        let status_retry = std::mem::take(&mut ctx.attempt.status_retry);
        // Only the upstream's failures count against its target (a client hanging up does not).
        self.finish_attempt(ctx, status_retry || e.esource() == &ErrorSource::Upstream);
        let mut e = e.more_context(format!("peer: {peer}"));
        if status_retry {
            // Decided in `upstream_response_filter`, within the route's policy.
            return e;
        }
        // An upstream timeout before any answer counts as a 504 for `retry-on`.
        let timed_out = matches!(e.etype(), ReadTimedout | WriteTimedout)
            && e.esource() == &ErrorSource::Upstream;
        if timed_out
            && session.response_written().is_none()
            && let Some(route) = ctx.route
        {
            let (r, rr) = ctx.rt.route(route);
            let idempotent = session.req_header().method.is_idempotent();
            let replayable = self.replayable(session, ctx);
            let retry = retry::may_retry(
                r,
                &rr.retry_budget,
                ctx.attempt.count,
                RetryOn::Status504,
                idempotent,
                replayable,
            );
            e.set_retry(retry);
            return e;
        }
        // Otherwise Pingora's rule: only a stale reused connection is retried, and only for
        // idempotent requests whose body can be replayed.
        if !session.req_header().method.is_idempotent() || !self.replayable(session, ctx) {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let span = ctx.span.clone();
        async {
            let len = body.as_ref().map_or(0, |b| b.len() as u64);
            let seen = ctx.attempt.body_seen;
            ctx.attempt.body_seen = seen.saturating_add(len);
            if len > 0 && seen.saturating_add(len) <= ctx.body_bytes {
                // A retry replaying bytes this request already counted, checked and showed
                // to its filters (a body an agent judged is never replayed): forward them.
                Self::inference_forwarded(ctx, end_of_stream);
                return Ok(());
            }
            if let (Some(b), Some(route)) = (body.as_ref(), ctx.route) {
                ctx.body_bytes += b.len() as u64;
                if ctx.body_bytes > ctx.rt.routes[route].max_body_bytes {
                    self.audit_refusal(ctx, Refusal::BodyTooLarge);
                    return Err(Refusal::BodyTooLarge.error());
                }
            }
            if len > 0 && !end_of_stream {
                let listener = &ctx.rt.config.listeners[self.listener];
                let started = *ctx.body_started.get_or_insert_with(Instant::now);
                slow_clients::on_body_chunk(session, listener, started, ctx.body_bytes);
            }
            // Before the agents: they see the body once it has been counted.
            self.inference_body(body, end_of_stream, ctx).await?;
            self.body_agents(Direction::Request, session, body, end_of_stream, ctx)
                .await?;
            Self::inference_forwarded(ctx, end_of_stream);
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let proto = match ctx.rt.config.listeners[self.listener].protocol {
            zentinel_config::model::ListenerProtocol::Https => "https",
            _ => "http",
        };
        let host = session
            .req_header()
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let header = self.request_id_header(ctx);
        // First: nothing the proxy writes below can be removed by a `Connection` option.
        strip_request_hop_by_hop(&session.req_header().headers, req, header.as_str());
        if let Some(f) = &ctx.forwarding {
            f.apply(req, proto, host.as_deref());
        }
        // An absolute-form target was rewritten to origin form (RFC 9112 §3.2.1) by
        // `strict::normalize_target` during admission, with the path the route matched;
        // Pingora has checked its authority equals `Host`, which is sent on as is.
        req.insert_header(header, ctx.request_id.as_str())?;
        req.insert_header("traceparent", ctx.trace.traceparent())?;
        if !ctx.forwarding.as_ref().is_some_and(|f| f.trusted_peer) {
            // It belonged to the client's trace, which is not continued.
            remove_present(req, |n| n == "tracestate");
        }
        if let Some(route) = ctx.route {
            apply_policy(&ctx.rt.config.routes[route].request_headers, req);
            if ctx.rt.routes[route].inference.is_some() {
                // The answer's usage is read as it passes: ask for it uncompressed.
                req.remove_header("accept-encoding");
            }
        }
        // After the route's policy, so a policy that strips client-sent identity headers
        // does not strip what an agent set.
        verdict::apply(&ctx.agents.request_edits, req);
        if ctx
            .route
            .is_some_and(|r| !ctx.rt.routes[r].agents.request_body.is_empty())
            && req.remove_header("content-length").is_some()
        {
            // Agents may replace body chunks, so the length is known only at the end.
            req.insert_header("transfer-encoding", "chunked")?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let span = ctx.span.clone();
        async {
            // First: the route's policy and agents may set any of these names again.
            strip_response_hop_by_hop(resp, resp.status == http::StatusCode::SWITCHING_PROTOCOLS);
            if let Some(route) = ctx.route {
                if matches!(resp.status.as_u16(), 502..=504) {
                    ctx.attempt.failed = true;
                }
                self.inference_response(ctx, resp)?;
                self.response_agents(ctx, resp).await?;
                apply_policy(&ctx.rt.config.routes[route].response_headers, resp);
                verdict::apply(&ctx.agents.response_edits, resp);
                if !ctx.rt.routes[route].agents.response_body.is_empty() {
                    // Agents may replace body chunks: the length is known only at the end.
                    ctx.response_length = resp
                        .headers
                        .get("content-length")
                        .and_then(|v| v.to_str().ok()?.parse().ok());
                    if resp.remove_header("content-length").is_some()
                        && session.req_header().version == http::Version::HTTP_11
                    {
                        resp.insert_header("transfer-encoding", "chunked")?;
                    }
                }
            }
            self.quota_headers(ctx, resp)?;
            let header = self.request_id_header(ctx);
            resp.insert_header(header, ctx.request_id.as_str())?;
            remove_present(resp, |n| n == "server");
            Ok(())
        }
        .instrument(span)
        .await
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        let span = ctx.span.clone();
        let _entered = span.enter();
        // The upstream's own bytes, before any agent may replace them.
        Self::inference_chunk(ctx, body.as_ref());
        self.response_body_agents(session, body, end_of_stream, ctx)?;
        // The response headers are gone already: past the deadline the stream is cut.
        if let Some(route) = ctx.route
            && ctx.started.elapsed() > ctx.rt.config.routes[route].total_timeout
        {
            return Err(Error::explain(
                ReadTimedout,
                "the route's deadline passed while the response was streaming",
            ));
        }
        Ok(None)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        if ctx.span.is_none() {
            // The request failed before `request_filter` (in one of Pingora's own modules).
            ctx.span = request_span(ctx);
        }
        let span = ctx.span.clone();
        async {
            if let Some(reply) = ctx.agents.pending.take()
                && session.response_written().is_none()
            {
                if let Err(err) = self.reply(session, ctx, &reply).await {
                    tracing::debug!(error = %err, "could not write the agent's answer");
                }
                return FailToProxy {
                    error_code: reply.status,
                    can_reuse_downstream: false,
                };
            }
            let status = status_of(e);
            let answered = (status > 0 && session.response_written().is_none()).then_some(status);
            slow_clients::audit(e, ctx, &ctx.rt.config.listeners[self.listener], answered);
            // Only the upstream's failures count against its target (passive health).
            if e.esource() == &ErrorSource::Upstream {
                ctx.attempt.failed = true;
            }
            if status > 0 && session.response_written().is_none() {
                let route = ctx.route.map(|i| ctx.rt.config.routes[i].id.to_string());
                let explained = own_explanation(e);
                let detail = match (e.etype(), status) {
                    (HTTPStatus(_), _) => explained.as_deref().unwrap_or("refused"),
                    (_, 502) => "the upstream could not be reached or answered badly",
                    (_, 504) => "the upstream did not answer in time",
                    _ => "the request could not be processed",
                };
                let header = self.request_id_header(ctx);
                let detail = detail.to_owned();
                if let Err(err) = respond(
                    session,
                    status,
                    &detail,
                    route.as_deref(),
                    &ctx.request_id,
                    &header,
                    true,
                )
                .await
                {
                    tracing::debug!(error = %err, "could not write the error response");
                }
            }
            FailToProxy {
                error_code: status,
                can_reuse_downstream: false,
            }
        }
        .instrument(span)
        .await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        if ctx.span.is_none() {
            ctx.span = request_span(ctx);
        }
        let span = ctx.span.clone();
        async {
            let failed =
                ctx.attempt.failed || e.is_some_and(|e| e.esource() == &ErrorSource::Upstream);
            self.finish_attempt(ctx, failed);
            if let Some(stream) = session.as_downstream().stream() {
                // A kept-alive connection's next request is held to the header deadline too.
                HeaderDeadline::rearm_stream(stream);
            }
            self.inference_settle(ctx);
            if let Some(route) = ctx.route {
                let notify = &ctx.rt.routes[route].agents.request_complete;
                if !notify.is_empty() {
                    let done = event::request_complete(session, ctx, e.map(|e| e.etype().as_str()));
                    for &a in notify {
                        ctx.rt.agents.list[a].notify(done.clone());
                    }
                }
            }
            let status = session.response_written().map_or(0, |r| r.status.as_u16());
            let metrics = ctx
                .route
                .map_or(&ctx.rt.unmatched, |i| &ctx.rt.routes[i].metrics);
            metrics.record(status, ctx.started.elapsed());
            ctx.rt.access_log.write(session, e, ctx, self.listener);
        }
        .instrument(span)
        .await
    }
}
