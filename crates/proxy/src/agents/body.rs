//! Bodies for agents that asked for them, in either direction.
//!
//! - `stream` agents see every chunk as it passes and may replace or drop it; the chunk is
//!   forwarded only after their verdict.
//! - `buffer` agents see the whole body once, as one chunk: it is held back (up to the
//!   agent's limit) until the last byte has arrived and they have answered.
//! - A body longer than an agent's limit follows the failure mode: `closed` answers 413,
//!   `open` stops sending the body to that agent (logged as `fail_open`, `body-too-large`).
//!
//! Memory per request is bounded by the largest `max-*-body-bytes` of the route's buffer
//! agents.

use bytes::{Bytes, BytesMut};
use zentinel_agent_protocol::{Body, Event, RequestBodyChunk, ResponseBodyChunk};
use zentinel_config::model::BodyMode;

use super::Use;
use super::verdict::{self, AgentState, Consult, Reply, Verdict};

/// Which body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The request body, sent upstream.
    Request,
    /// The response body, sent to the client.
    Response,
}

/// An agent that receives one direction's body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyUse {
    /// The agent and failure mode.
    pub agent: Use,
    /// Buffer or stream.
    pub mode: BodyMode,
    /// Bytes the agent receives at most.
    pub limit: u64,
}

/// Progress of one direction's body.
#[derive(Debug, Default)]
pub(crate) struct BodyState {
    seen: u64,
    next_chunk: u64,
    held: BytesMut,
    /// Per use (by position): no longer receives the body.
    finished: Vec<bool>,
}

/// What a consultation needs besides the chunk.
#[derive(Debug)]
pub(crate) struct Chunk<'a> {
    /// Correlation ID of the request.
    pub request_id: &'a str,
    /// `Content-Length` of this body, when announced.
    pub total: Option<u64>,
    /// Whether this is the end of the body.
    pub end: bool,
}

fn event(
    dir: Direction,
    id: String,
    data: Bytes,
    last: bool,
    index: u64,
    chunk: &Chunk<'_>,
    seen: u64,
) -> Event {
    match dir {
        Direction::Request => Event::RequestBodyChunk(RequestBodyChunk {
            correlation_id: id,
            data: Body::from(data),
            is_last: last,
            total_size: chunk.total,
            chunk_index: index,
            bytes_received: seen,
        }),
        Direction::Response => Event::ResponseBodyChunk(ResponseBodyChunk {
            correlation_id: id,
            data: Body::from(data),
            is_last: last,
            total_size: chunk.total,
            chunk_index: index,
            bytes_sent: seen,
        }),
    }
}

fn suffix(dir: Direction) -> &'static str {
    match dir {
        Direction::Request => "b",
        Direction::Response => "rb",
    }
}

/// Runs one chunk (`body`, `None` at the end) past the agents of `uses`; on return `body`
/// holds what may be forwarded now (possibly nothing yet). `Err` carries the answer the
/// request gets instead.
pub(crate) async fn inspect(
    c: &Consult<'_>,
    dir: Direction,
    uses: &[BodyUse],
    chunk: &Chunk<'_>,
    body: &mut Option<Bytes>,
    state: &mut BodyState,
    agents: &mut AgentState,
) -> Result<(), Reply> {
    let mut data = body.take().unwrap_or_default();
    if state.finished.len() != uses.len() {
        state.finished = vec![false; uses.len()];
    }
    if chunk.end && data.is_empty() && state.seen == 0 && state.next_chunk == 0 {
        // No body at all: nothing to inspect.
        *body = Some(data);
        return Ok(());
    }
    state.seen += data.len() as u64;
    over_limits(c, uses, state, agents)?;

    let stream = active(uses, state, BodyMode::Stream);
    if !stream.is_empty() && (!data.is_empty() || chunk.end) {
        let index = state.next_chunk;
        state.next_chunk += 1;
        let id = format!("{}.{}{index}", chunk.request_id, suffix(dir));
        let ev = event(dir, id, data.clone(), chunk.end, index, chunk, state.seen);
        if let Some(new) = decide(c, dir, &stream, ev, agents).await? {
            data = new;
        }
    }

    let buffer = active(uses, state, BodyMode::Buffer);
    if buffer.is_empty() {
        // Release anything held for agents that have since dropped out.
        if !state.held.is_empty() {
            state.held.extend_from_slice(&data);
            data = state.held.split().freeze();
        }
        *body = Some(data);
        return Ok(());
    }
    state.held.extend_from_slice(&data);
    if !chunk.end {
        *body = Some(Bytes::new());
        return Ok(());
    }
    let whole = state.held.split().freeze();
    let id = format!("{}.{}", chunk.request_id, suffix(dir));
    let ev = event(dir, id, whole.clone(), true, 0, chunk, state.seen);
    *body = Some(decide(c, dir, &buffer, ev, agents).await?.unwrap_or(whole));
    Ok(())
}

/// The uses of `mode` still receiving the body.
fn active(uses: &[BodyUse], state: &BodyState, mode: BodyMode) -> Vec<Use> {
    uses.iter()
        .zip(&state.finished)
        .filter(|(u, done)| u.mode == mode && !**done)
        .map(|(u, _)| u.agent)
        .collect()
}

/// Applies the failure mode to agents whose limit the body has passed.
fn over_limits(
    c: &Consult<'_>,
    uses: &[BodyUse],
    state: &mut BodyState,
    agents: &mut AgentState,
) -> Result<(), Reply> {
    for (u, done) in uses.iter().zip(state.finished.iter_mut()) {
        if *done || state.seen <= u.limit {
            continue;
        }
        *done = true;
        if let Verdict::Answer(reply) = verdict::over_limit(c, &u.agent, agents) {
            return Err(reply);
        }
    }
    Ok(())
}

/// Consults `uses` on one chunk; `Some(bytes)` when an agent replaced it.
async fn decide(
    c: &Consult<'_>,
    dir: Direction,
    uses: &[Use],
    ev: Event,
    agents: &mut AgentState,
) -> Result<Option<Bytes>, Reply> {
    agents.mutation = None;
    match verdict::consult_body(c, uses, ev, dir, agents).await {
        Verdict::Answer(reply) => Err(reply),
        Verdict::Continue => Ok(agents.mutation.take()),
    }
}
