//! One proxy connection of the chaos agent, on the core codec directly: a correct handshake,
//! then every event answered (or not) as the script says. The misbehaving modes write their
//! bytes straight to the socket, which is why this does not use the SDK.
//!
//! It must never misbehave by accident: anything the script does not ask for follows the
//! protocol (pings are answered, notifications are not, a broken peer closes the connection).

use std::hash::BuildHasher;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use zentinel_agent_protocol::{
    AgentResponse, Capabilities, DEFAULT_MAX_FRAME, Encoding, Event, Frame, FrameDecoder,
    HandshakeResponse, Message, PROTOCOL_VERSION, ProtocolError, event_kind,
};

use crate::Shared;
use crate::script::Mode;

/// How long a new connection may take to send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Delayed answers waiting to be written.
const DELAYED_QUEUE: usize = 64;
/// The frame header [`Mode::Oversize`] writes: a 64 MiB AgentResponse.
const OVERSIZE_HEADER: [u8; 5] = [0x04, 0x00, 0x00, 0x00, 0x20];
/// The frame [`Mode::UnknownType`] writes: type 0x7f, payload `{}`.
const UNKNOWN_TYPE_FRAME: [u8; 7] = [0x00, 0x00, 0x00, 0x03, 0x7f, b'{', b'}'];
/// Bytes [`Mode::Garbage`] writes.
const GARBAGE_LEN: usize = 64;

/// Why a connection ended.
#[derive(Debug)]
pub(crate) enum Closed {
    /// The proxy closed it.
    Eof,
    /// The script's call budget is spent: the whole agent stops.
    Crash,
    /// The socket failed.
    Io(io::Error),
    /// The proxy broke the protocol.
    Protocol(ProtocolError),
}

impl From<io::Error> for Closed {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<ProtocolError> for Closed {
    fn from(e: ProtocolError) -> Self {
        Self::Protocol(e)
    }
}

/// What the chaos agent announces.
fn capabilities() -> Capabilities {
    let events = [
        event_kind::REQUEST_HEADERS,
        event_kind::REQUEST_BODY,
        event_kind::RESPONSE_HEADERS,
        event_kind::RESPONSE_BODY,
        event_kind::WEBSOCKET_FRAME,
        event_kind::GUARDRAIL_INSPECT,
    ];
    let mut c = Capabilities::new("chaos", events);
    c.version = env!("CARGO_PKG_VERSION").to_owned();
    c
}

/// Runs one connection until it closes.
pub(crate) async fn serve(stream: UnixStream, shared: Arc<Shared>) -> Closed {
    let (r, w) = stream.into_split();
    let mut conn = Connection {
        r,
        w,
        buf: BytesMut::new(),
        decoder: FrameDecoder::new(DEFAULT_MAX_FRAME),
        encoding: Encoding::Json,
        shared,
    };
    match conn.run().await {
        Ok(closed) | Err(closed) => closed,
    }
}

struct Connection {
    r: OwnedReadHalf,
    w: OwnedWriteHalf,
    buf: BytesMut,
    decoder: FrameDecoder,
    encoding: Encoding,
    shared: Arc<Shared>,
}

impl Connection {
    async fn run(&mut self) -> Result<Closed, Closed> {
        let hello = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.read_frame())
            .await
            .map_err(|_| Closed::Io(io::ErrorKind::TimedOut.into()))??;
        if !self.handshake(&hello).await? {
            return Ok(Closed::Eof);
        }
        let (tx, mut rx) = mpsc::channel::<Bytes>(DELAYED_QUEUE);
        // Dropping the set when the connection ends aborts the delayed answers.
        let mut delayed = JoinSet::new();
        loop {
            tokio::select! {
                frame = self.read_frame() => {
                    let frame = frame?;
                    if let Some(closed) = self.on_frame(&frame, &tx, &mut delayed).await? {
                        return Ok(closed);
                    }
                }
                Some(answer) = rx.recv() => self.write(&answer).await?,
                Some(_) = delayed.join_next(), if !delayed.is_empty() => {}
            }
        }
    }

    /// Reads until a whole frame is buffered. Cancel-safe: bytes read stay in the buffer.
    async fn read_frame(&mut self) -> Result<Frame, Closed> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                return Ok(frame);
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(8192);
            }
            if self.r.read_buf(&mut self.buf).await? == 0 {
                return Err(Closed::Eof);
            }
        }
    }

    /// Answers the handshake; `false` when it was refused.
    async fn handshake(&mut self, hello: &Frame) -> Result<bool, Closed> {
        let Message::HandshakeRequest(req) = Message::decode(hello, Encoding::Json)? else {
            return Err(ProtocolError::Unexpected(hello.message_type).into());
        };
        let shared = Arc::clone(&self.shared);
        let script = &shared.script;
        if script.mode == Mode::SlowHandshake {
            tracing::warn!(delay_ms = millis(script.delay), "chaos: slow handshake");
            tokio::time::sleep(script.delay).await;
        }
        let answer = if req.supported_versions.contains(&PROTOCOL_VERSION) {
            // The proxy's first choice: the codec speaks every encoding it knows.
            self.encoding = req.supported_encodings.first().copied().unwrap_or_default();
            HandshakeResponse::accept(capabilities(), self.encoding)
        } else {
            HandshakeResponse::reject(
                capabilities(),
                format!("protocol version {PROTOCOL_VERSION} not offered"),
            )
        };
        let accepted = answer.success;
        self.send(&Message::HandshakeResponse(answer)).await?;
        tracing::debug!(accepted, encoding = %self.encoding, "chaos: handshake");
        Ok(accepted)
    }

    /// Handles one frame after the handshake; `Some` when the connection must end.
    async fn on_frame(
        &mut self,
        frame: &Frame,
        tx: &mpsc::Sender<Bytes>,
        delayed: &mut JoinSet<()>,
    ) -> Result<Option<Closed>, Closed> {
        let event = match Message::decode(frame, self.encoding)? {
            Message::Ping(p) => {
                self.send(&Message::Pong(p)).await?;
                return Ok(None);
            }
            Message::Configure(_) | Message::RequestComplete(_) | Message::Cancel(_) => {
                return Ok(None);
            }
            other => {
                Event::try_from(other).map_err(|m| ProtocolError::Unexpected(m.message_type()))?
            }
        };
        self.answer(event, tx, delayed).await
    }

    /// Answers (or not) one call as the script says.
    async fn answer(
        &mut self,
        event: Event,
        tx: &mpsc::Sender<Bytes>,
        delayed: &mut JoinSet<()>,
    ) -> Result<Option<Closed>, Closed> {
        let shared = Arc::clone(&self.shared);
        let call = shared.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let script = &shared.script;
        let mode = script.mode_for(&event).unwrap_or_else(|(fallback, e)| {
            tracing::warn!(error = %e, fallback = %fallback, "chaos: ignoring x-chaos-mode");
            fallback
        });
        let id = event.correlation_id().to_owned();
        let span = tracing::warn_span!("chaos", call, mode = %mode, correlation_id = %id);
        let _entered = span.enter();
        match mode {
            Mode::Allow | Mode::SlowHandshake => self.send_answer(AgentResponse::allow(id)).await?,
            Mode::Block => {
                tracing::warn!("chaos: blocking");
                self.send_answer(AgentResponse::block(id, 403, "chaos: blocked"))
                    .await?;
            }
            Mode::Delay => {
                let frame = self.encode(&Message::AgentResponse(AgentResponse::allow(id)))?;
                let (delay, tx) = (script.delay, tx.clone());
                tracing::warn!(delay_ms = millis(delay), "chaos: delaying the answer");
                delayed.spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(frame).await;
                });
            }
            Mode::Hang => tracing::warn!("chaos: never answering"),
            Mode::CrashAfter => return self.crash_after(call, id).await,
            Mode::Garbage => {
                tracing::warn!(bytes = GARBAGE_LEN, "chaos: writing garbage");
                self.write(&garbage(call)).await?;
            }
            Mode::Oversize => {
                tracing::warn!("chaos: announcing a 64 MiB frame");
                self.write(&OVERSIZE_HEADER).await?;
            }
            Mode::UnknownType => {
                tracing::warn!("chaos: writing a frame of type 0x7f");
                self.write(&UNKNOWN_TYPE_FRAME).await?;
            }
            Mode::WrongCorrelation => {
                let wrong = format!("chaos-never-sent-{call}");
                tracing::warn!(sent = %wrong, "chaos: answering with a wrong correlation ID");
                self.send_answer(AgentResponse::allow(wrong)).await?;
            }
        }
        Ok(None)
    }

    /// Answers calls up to the script's budget; after the last one (at once when it is 0)
    /// tells the agent to stop.
    async fn crash_after(&mut self, call: u64, id: String) -> Result<Option<Closed>, Closed> {
        let budget = self.shared.script.calls;
        if call <= budget {
            self.send_answer(AgentResponse::allow(id)).await?;
        }
        if call < budget {
            return Ok(None);
        }
        tracing::error!(budget, "chaos: call budget spent, crashing");
        self.shared.crash.notify_one();
        Ok(Some(Closed::Crash))
    }

    async fn send_answer(&mut self, answer: AgentResponse) -> Result<(), Closed> {
        self.send(&Message::AgentResponse(answer)).await
    }

    async fn send(&mut self, message: &Message) -> Result<(), Closed> {
        let frame = self.encode(message)?;
        self.write(&frame).await
    }

    fn encode(&self, message: &Message) -> Result<Bytes, Closed> {
        let mut out = BytesMut::new();
        message.encode(self.encoding, DEFAULT_MAX_FRAME, &mut out)?;
        Ok(out.freeze())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Closed> {
        self.w.write_all(bytes).await?;
        self.w.flush().await?;
        Ok(())
    }
}

/// Random bytes that no reader can take for a frame: the first byte announces a length of
/// at least 2 GiB, far above any maximum.
fn garbage(call: u64) -> Vec<u8> {
    let state = std::hash::RandomState::new();
    let mut out: Vec<u8> = (0..GARBAGE_LEN / 8)
        .flat_map(|i| state.hash_one((call, i)).to_le_bytes())
        .collect();
    if let Some(first) = out.first_mut() {
        *first |= 0x80;
    }
    out
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "test code fails loudly"
    )]

    use super::*;

    #[test]
    fn every_broken_write_is_refused_by_the_decoder() {
        let d = FrameDecoder::default();
        let g = garbage(1);
        assert_eq!(g.len(), GARBAGE_LEN);
        assert!(matches!(
            d.decode(&mut BytesMut::from(&g[..])),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
        assert_eq!(
            d.decode(&mut BytesMut::from(&OVERSIZE_HEADER[..])),
            Err(ProtocolError::FrameTooLarge {
                length: 64 * 1024 * 1024,
                max: DEFAULT_MAX_FRAME
            })
        );
        assert_eq!(
            d.decode(&mut BytesMut::from(&UNKNOWN_TYPE_FRAME[..])),
            Err(ProtocolError::UnknownType(0x7f))
        );
    }

    #[test]
    fn garbage_differs_between_calls() {
        assert_ne!(garbage(1), garbage(2));
    }
}
