//! The agent steps of the proxy phases: consult the route's agents on request headers,
//! bodies and response headers, and send their answers.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use zentinel_agent_protocol::Event;

use super::{Ctx, Zentinel};
use crate::agents::body::{self, Chunk, Direction};
use crate::agents::event;
use crate::agents::verdict::{self, Consult, Reply, Verdict};
use crate::errors::{Answer, answer, explanation};
use crate::limits;

/// Resolves when the client has gone away: an HTTP/2 stream reset or closed, or an HTTP/1
/// connection closed by the client. Only a request whose body is already read (or that has
/// none) is watched, so that no body byte is consumed here; otherwise this never resolves.
async fn client_gone(session: &mut Session) {
    let downstream = session.as_mut();
    if let Some(idle) = downstream.watch_h2_stream_close() {
        let _ = idle.await;
        return;
    }
    if (downstream.is_body_empty() || downstream.is_body_done())
        && downstream.read_body_or_idle(true).await.is_err()
    {
        return;
    }
    std::future::pending::<()>().await;
}

impl Zentinel {
    /// Consults the route's request-header agents; `true` when one of them answered.
    pub(super) async fn request_agents(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
    ) -> Result<bool> {
        let Some(route) = ctx.route else {
            return Ok(false);
        };
        let rt = ctx.rt.clone();
        let uses = &rt.routes[route].agents.request_headers;
        if uses.is_empty() {
            return Ok(false);
        }
        let event = Event::RequestHeaders(event::request_headers(session, ctx));
        let c = Consult {
            agents: &rt.agents,
            audit: &rt.audit_log,
            request_id: &ctx.request_id,
            route: rt.config.routes[route].id.as_str(),
            event: "request-headers",
            counters: &rt.routes[route].agents.counters,
        };
        let verdict = tokio::select! {
            v = verdict::consult(&c, uses, event, &mut ctx.agents) => v,
            () = client_gone(session) => {
                // Dropping the calls cancels them at agents that support it.
                return Error::e_explain(
                    ConnectionClosed,
                    "the client went away while agents were deciding",
                )
                .map_err(|e| e.into_down());
            }
        };
        match verdict {
            Verdict::Continue => Ok(false),
            Verdict::Answer(reply) => {
                self.reply(session, ctx, &reply).await?;
                Ok(true)
            }
        }
    }

    /// Consults the route's response-header agents; an answer replaces the response.
    pub(super) async fn response_agents(&self, ctx: &mut Ctx, resp: &ResponseHeader) -> Result<()> {
        let Some(route) = ctx.route else {
            return Ok(());
        };
        let rt = ctx.rt.clone();
        let uses = &rt.routes[route].agents.response_headers;
        if uses.is_empty() {
            return Ok(());
        }
        let event = Event::ResponseHeaders(event::response_headers(ctx, resp));
        let c = Consult {
            agents: &rt.agents,
            audit: &rt.audit_log,
            request_id: &ctx.request_id,
            route: rt.config.routes[route].id.as_str(),
            event: "response-headers",
            counters: &rt.routes[route].agents.counters,
        };
        match verdict::consult(&c, uses, event, &mut ctx.agents).await {
            Verdict::Continue => Ok(()),
            Verdict::Answer(reply) => {
                let status = reply.status;
                // Written by `fail_to_proxy`, before anything of the upstream's answer.
                ctx.agents.pending = Some(reply);
                Err(Error::explain(
                    HTTPStatus(status),
                    "the response was replaced by an agent's verdict",
                ))
            }
        }
    }

    /// Sends an agent's verdict (or a fail-closed answer) to the client.
    pub(super) async fn reply(
        &self,
        session: &mut Session,
        ctx: &Ctx,
        reply: &Reply,
    ) -> Result<()> {
        let route = ctx.route.map(|i| ctx.rt.config.routes[i].id.as_str());
        let body = match &reply.body {
            Some(b) => Bytes::from(b.clone()),
            None => explanation(reply.status, reply.detail, route, &ctx.request_id),
        };
        // An unread request body would be taken for the next request: close instead.
        let close = limits::declared_body_len(session.req_header()).is_some_and(|n| n > 0)
            || session
                .req_header()
                .headers
                .contains_key("transfer-encoding");
        let a = Answer {
            status: reply.status,
            body,
            headers: &reply.headers,
            close,
        };
        answer(session, &a, &ctx.request_id, &ctx.rt.request_id_header).await
    }

    /// [`Self::body_agents`] for the response body. Pingora's response body hook is not
    /// async: the call is awaited with `block_in_place`, which hands this worker's other
    /// tasks to another thread meanwhile, so no other request waits for the agent. That
    /// takes the work-stealing runtime, which the configuration demands of any process with
    /// such an agent (`server { work-stealing #true; }`).
    pub(super) fn response_body_agents(
        &self,
        session: &Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if ctx
            .route
            .is_none_or(|r| ctx.rt.routes[r].agents.response_body.is_empty())
        {
            return Ok(());
        }
        let handle = tokio::runtime::Handle::current();
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err(Error::explain(
                InternalError,
                "response-body agents need `server { work-stealing #true; }`",
            ));
        }
        tokio::task::block_in_place(|| {
            handle.block_on(self.body_agents(Direction::Response, session, body, end, ctx))
        })
    }

    /// Runs a body chunk past the route's body agents of `dir`; `body` then holds what may
    /// be forwarded now. An answer is left for `fail_to_proxy` (for a response, whose
    /// headers are gone already, the stream is cut).
    pub(super) async fn body_agents(
        &self,
        dir: Direction,
        session: &Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(route) = ctx.route else {
            return Ok(());
        };
        let rt = ctx.rt.clone();
        let plan = &rt.routes[route].agents;
        let (uses, total, name) = match dir {
            Direction::Request => (
                &plan.request_body,
                limits::declared_body_len(session.req_header()),
                "request-body",
            ),
            Direction::Response => (&plan.response_body, ctx.response_length, "response-body"),
        };
        if uses.is_empty() {
            return Ok(());
        }
        let c = Consult {
            agents: &rt.agents,
            audit: &rt.audit_log,
            request_id: &ctx.request_id,
            route: rt.config.routes[route].id.as_str(),
            event: name,
            counters: &plan.counters,
        };
        let chunk = Chunk {
            request_id: &ctx.request_id,
            total,
            end,
        };
        let state = match dir {
            Direction::Request => &mut ctx.bodies.0,
            Direction::Response => &mut ctx.bodies.1,
        };
        match body::inspect(&c, dir, uses, &chunk, body, state, &mut ctx.agents).await {
            Ok(()) => Ok(()),
            Err(reply) => {
                let status = reply.status;
                ctx.agents.pending = Some(reply);
                Err(Error::explain(
                    HTTPStatus(status),
                    "the body was refused by an agent's verdict",
                ))
            }
        }
    }
}
