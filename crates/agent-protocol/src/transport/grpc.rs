//! The gRPC carrier: protocol frames as `zentinel.agent.v2.Frame` messages on one
//! bidirectional `AgentService/Session` stream per connection (`proto/zentinel_agent.proto`),
//! over plain-text HTTP/2.
//!
//! It only carries frames and must never look inside a payload. Outgoing, it takes the same
//! encoded frames the Unix socket would write and sends their type byte and payload;
//! incoming, it applies the byte-stream decoder's rules (a known type code; type byte plus
//! payload within the maximum) and hands whole [`Frame`]s up. tonic's own message limit is
//! set just above the largest legal frame, so an oversize message is refused from its gRPC
//! header, before its payload is buffered.
//!
//! Why no generated code: the contract is one message of two fields and one method. A
//! `build.rs` with `protox` + `tonic-prost-build` would add a protobuf compiler (dozens of
//! crates) to every build for that; tonic's `transport` feature would add tower's balancer,
//! HTTP/1 and a second connection pool. Instead `Frame` is `#[derive(prost::Message)]`, the
//! codec is the few lines below, and the client and server drive tonic's `Grpc` over hyper's
//! HTTP/2 connections directly (`connect`, `accept`) — which also makes one protocol
//! connection exactly one TCP connection on the proxy's side.

#[cfg(feature = "server")]
pub(crate) mod accept;
#[cfg(feature = "client")]
mod connect;

#[cfg(feature = "client")]
pub(crate) use connect::connect;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status, Streaming};

use super::{FrameSource, ReadError};
use crate::frame::{Frame, HEADER_LEN, MessageType, frame_length};

/// The one method: `/<package>.<service>/<method>`.
pub(crate) const SESSION_PATH: &str = "/zentinel.agent.v2.AgentService/Session";

/// Protobuf bytes around a payload in a `Frame` message: two field keys, the type varint
/// (at most 5 bytes) and the length varint (at most 5 bytes).
const ENVELOPE: usize = 12;

/// tonic's limit on one message, for a connection whose frames are at most `max_frame`.
pub(crate) fn message_limit(max_frame: u32) -> usize {
    // `max_frame` is a u32 and usize is at least 32 bits on every target tokio supports.
    max_frame as usize + ENVELOPE
}

/// `message Frame { uint32 type = 1; bytes payload = 2; }`
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WireFrame {
    /// The protocol's message type code.
    #[prost(uint32, tag = "1")]
    pub(crate) r#type: u32,
    /// The payload bytes of the Unix-socket frame.
    #[prost(bytes = "bytes", tag = "2")]
    pub(crate) payload: Bytes,
}

/// A received message: a `Frame`, or why its bytes are not one (the connection then closes
/// as a protocol error, which a `Status` could not tell apart from a transport failure).
pub(crate) type Received = Result<WireFrame, prost::DecodeError>;

/// Encodes queued frames (Unix framing) as `Frame` messages, decodes `Frame` messages.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FrameCodec;

impl Codec for FrameCodec {
    type Encode = Bytes;
    type Decode = Received;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl Encoder for FrameCodec {
    type Item = Bytes;
    type Error = Status;

    /// `frame` is one encoded frame from a connection's queue: `length | type | payload`.
    fn encode(&mut self, frame: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        let Some(&code) = frame.get(HEADER_LEN - 1) else {
            return Err(Status::internal("queued bytes are not a frame"));
        };
        let wire = WireFrame {
            r#type: u32::from(code),
            payload: frame.slice(HEADER_LEN..),
        };
        wire.encode(dst)
            .map_err(|e| Status::internal(format!("cannot encode a Frame: {e}")))
    }
}

impl Decoder for FrameCodec {
    type Item = Received;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Received>, Status> {
        let received = WireFrame::decode(src.copy_to_bytes(src.remaining()));
        Ok(Some(received))
    }
}

/// The frame in a received message, under the byte-stream decoder's rules.
pub(crate) fn into_frame(received: Received, max_frame: u32) -> Result<Frame, ReadError> {
    let wire = received.map_err(|e| ReadError::Carrier(format!("undecodable Frame: {e}")))?;
    let Ok(code) = u8::try_from(wire.r#type) else {
        let why = format!("Frame type {} is not a message type code", wire.r#type);
        return Err(ReadError::Carrier(why));
    };
    frame_length(wire.payload.len(), max_frame)?;
    Ok(Frame {
        message_type: MessageType::try_from(code)?,
        payload: wire.payload,
    })
}

/// A stream's end from tonic: its message limit is a protocol error, anything else (a reset,
/// a dead connection, an error status from the peer) ends the connection like a socket error.
fn status_error(status: Status) -> ReadError {
    if status.code() == Code::OutOfRange {
        ReadError::Carrier(status.message().to_owned())
    } else {
        ReadError::Io(io::Error::other(status))
    }
}

/// The response a client waits for before the stream's first message.
#[cfg(feature = "client")]
pub(crate) type Opening = Pin<Box<dyn Future<Output = Result<Streaming<Received>, Status>> + Send>>;

/// Frames from one `Session` stream.
pub(crate) struct GrpcSource {
    inbound: Inbound,
    max_frame: u32,
    /// Ends the client's HTTP/2 connection with the session.
    _connection: Option<AbortOnDrop>,
}

enum Inbound {
    /// The client's call is on its way; the agent has not answered with headers yet.
    #[cfg(feature = "client")]
    Opening(Opening),
    Open(Box<Streaming<Received>>),
    /// The stream ended or failed.
    Done,
}

impl std::fmt::Debug for GrpcSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.inbound {
            #[cfg(feature = "client")]
            Inbound::Opening(_) => "opening",
            Inbound::Open(_) => "open",
            Inbound::Done => "done",
        };
        f.debug_struct("GrpcSource")
            .field("inbound", &state)
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

impl GrpcSource {
    /// The server's side: the request stream is already there.
    #[cfg(feature = "server")]
    pub(crate) fn open(inbound: Streaming<Received>, max_frame: u32) -> Self {
        Self {
            inbound: Inbound::Open(Box::new(inbound)),
            max_frame,
            _connection: None,
        }
    }

    /// The client's side: frames arrive once `opening` has the agent's response headers.
    /// Waiting for them lazily lets the handshake go out first, whatever the agent's gRPC
    /// library does with headers.
    #[cfg(feature = "client")]
    pub(crate) fn opening(opening: Opening, max_frame: u32, connection: AbortOnDrop) -> Self {
        Self {
            inbound: Inbound::Opening(opening),
            max_frame,
            _connection: Some(connection),
        }
    }
}

impl FrameSource for GrpcSource {
    async fn next_frame(&mut self) -> Result<Frame, ReadError> {
        #[cfg(feature = "client")]
        if let Inbound::Opening(opening) = &mut self.inbound {
            match opening.await {
                Ok(stream) => self.inbound = Inbound::Open(Box::new(stream)),
                Err(status) => {
                    self.inbound = Inbound::Done;
                    return Err(status_error(status));
                }
            }
        }
        let Inbound::Open(stream) = &mut self.inbound else {
            return Err(ReadError::Eof);
        };
        let ended = match stream.message().await {
            Ok(Some(received)) => return into_frame(received, self.max_frame),
            Ok(None) => ReadError::Eof,
            Err(status) => status_error(status),
        };
        self.inbound = Inbound::Done;
        Err(ended)
    }
}

/// A connection's queue of encoded frames as the stream of messages tonic sends.
#[derive(Debug)]
pub(crate) struct Outbound {
    queue: mpsc::Receiver<Bytes>,
    /// Dropped with the stream, which tells [`StreamClosed`].
    _alive: oneshot::Sender<()>,
}

/// Resolves when gRPC stops taking frames from the connection's queue: the stream was
/// reset, its connection died, or it was finished. The carrier's "writer".
#[derive(Debug)]
pub(crate) struct StreamClosed(oneshot::Receiver<()>);

impl Future for StreamClosed {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll(cx).map(|_| Ok(()))
    }
}

/// Sends the frames queued on `queue` as the stream's messages.
pub(crate) fn outbound(queue: mpsc::Receiver<Bytes>) -> (Outbound, StreamClosed) {
    let (alive, closed) = oneshot::channel();
    (
        Outbound {
            queue,
            _alive: alive,
        },
        StreamClosed(closed),
    )
}

impl futures_core::Stream for Outbound {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.queue.poll_recv(cx)
    }
}

/// Aborts a background task when dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "test code fails loudly"
    )]

    use bytes::BytesMut;

    use super::*;
    use crate::error::ProtocolError;
    use crate::frame::encode_frame;

    fn wire(r#type: u32, payload: &'static [u8]) -> Received {
        Ok(WireFrame {
            r#type,
            payload: Bytes::from_static(payload),
        })
    }

    #[test]
    fn the_wire_format_is_the_proto_s() {
        let frame = WireFrame {
            r#type: 0x41,
            payload: Bytes::from_static(b"{}"),
        };
        // Field 1 varint (key 0x08), field 2 length-delimited (key 0x12).
        assert_eq!(frame.encode_to_vec(), [0x08, 0x41, 0x12, 0x02, b'{', b'}']);
        // The largest envelope: both varints at their u32 maximum.
        let varint = prost::encoding::encoded_len_varint(u64::from(u32::MAX));
        assert_eq!(1 + varint + 1 + varint, ENVELOPE);
    }

    #[test]
    fn encoding_sends_the_queued_frame_s_type_and_payload() {
        let mut queued = BytesMut::new();
        encode_frame(MessageType::Ping, b"{\"sequence\":1}", 64, &mut queued).unwrap();
        let queued = queued.freeze();
        let wire = WireFrame {
            r#type: u32::from(queued[4]),
            payload: queued.slice(HEADER_LEN..),
        };
        let frame = into_frame(Ok(wire), 64).unwrap();
        assert_eq!(frame.message_type, MessageType::Ping);
        assert_eq!(&frame.payload[..], b"{\"sequence\":1}");
    }

    #[test]
    fn received_frames_follow_the_byte_stream_rules() {
        let f = into_frame(wire(0x20, b"{}"), 3).unwrap();
        assert_eq!(f.message_type, MessageType::AgentResponse);
        assert!(matches!(
            into_frame(wire(0x20, b"{}!"), 3),
            Err(ReadError::Protocol(ProtocolError::FrameTooLarge {
                length: 4,
                max: 3
            }))
        ));
        assert!(matches!(
            into_frame(wire(0x99, b""), 16),
            Err(ReadError::Protocol(ProtocolError::UnknownType(0x99)))
        ));
        assert!(matches!(
            into_frame(wire(0, b""), 16),
            Err(ReadError::Protocol(ProtocolError::UnknownType(0)))
        ));
        assert!(matches!(
            into_frame(wire(0x120, b""), 16),
            Err(ReadError::Carrier(_))
        ));
        let garbage = WireFrame::decode(&b"\x12\x05ab"[..]);
        assert!(matches!(
            into_frame(garbage, 16),
            Err(ReadError::Carrier(_))
        ));
    }

    #[test]
    fn only_tonic_s_size_limit_is_a_protocol_error() {
        let limit = Status::out_of_range("decoded message length too large");
        assert!(matches!(status_error(limit), ReadError::Carrier(_)));
        let reset = Status::cancelled("h2 protocol error: stream reset");
        assert!(matches!(status_error(reset), ReadError::Io(_)));
    }
}
