//! The frame codec: `length: u32 BE | type: u8 | payload`, where `length` counts the type byte
//! plus the payload. Sans-IO: the decoder is fed a byte buffer and returns whole frames.
//!
//! It must never trust a peer's length: a length of zero, a length above the maximum and an
//! unknown type byte are errors as soon as the header shows them, and the buffer is never
//! grown beyond the (already checked) length of the frame being read.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ProtocolError;

/// The default maximum frame length (type byte plus payload): 16 MiB.
pub const DEFAULT_MAX_FRAME: u32 = 16 * 1024 * 1024;

/// Bytes before the payload: the 4-byte length and the type byte.
pub const HEADER_LEN: usize = 5;

/// The type byte of a frame. The numeric codes are part of the wire contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[non_exhaustive]
pub enum MessageType {
    /// Proxy → agent, first frame of a connection (always JSON).
    HandshakeRequest = 0x01,
    /// Agent → proxy, answer to the handshake (always JSON).
    HandshakeResponse = 0x02,
    /// Proxy → agent: a request's headers and metadata.
    RequestHeaders = 0x10,
    /// Proxy → agent: a chunk of the request body.
    RequestBodyChunk = 0x11,
    /// Proxy → agent: the upstream's response headers.
    ResponseHeaders = 0x12,
    /// Proxy → agent: a chunk of the response body.
    ResponseBodyChunk = 0x13,
    /// Proxy → agent: the request is finished (no reply expected).
    RequestComplete = 0x14,
    /// Proxy → agent: one WebSocket frame.
    WebSocketFrame = 0x15,
    /// Proxy → agent: content for an inference guardrail.
    GuardrailInspect = 0x16,
    /// Proxy → agent: the agent's configuration block.
    Configure = 0x17,
    /// Agent → proxy: the decision for one event.
    AgentResponse = 0x20,
    /// Agent → proxy: the agent's health.
    HealthStatus = 0x30,
    /// Agent → proxy: free-form counters.
    MetricsReport = 0x31,
    /// Agent → proxy: "send me my configuration again".
    ConfigUpdateRequest = 0x32,
    /// Agent → proxy: pause or resume sending events.
    FlowControl = 0x33,
    /// Proxy → agent: abandon the work for one correlation ID.
    Cancel = 0x40,
    /// Either direction: liveness probe.
    Ping = 0x41,
    /// Either direction: answer to [`MessageType::Ping`].
    Pong = 0x42,
}

impl MessageType {
    /// Every message type, in code order.
    pub const ALL: [MessageType; 18] = [
        Self::HandshakeRequest,
        Self::HandshakeResponse,
        Self::RequestHeaders,
        Self::RequestBodyChunk,
        Self::ResponseHeaders,
        Self::ResponseBodyChunk,
        Self::RequestComplete,
        Self::WebSocketFrame,
        Self::GuardrailInspect,
        Self::Configure,
        Self::AgentResponse,
        Self::HealthStatus,
        Self::MetricsReport,
        Self::ConfigUpdateRequest,
        Self::FlowControl,
        Self::Cancel,
        Self::Ping,
        Self::Pong,
    ];

    /// The type byte on the wire.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The name used in the spec and the test vectors (e.g. `"RequestHeaders"`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::HandshakeRequest => "HandshakeRequest",
            Self::HandshakeResponse => "HandshakeResponse",
            Self::RequestHeaders => "RequestHeaders",
            Self::RequestBodyChunk => "RequestBodyChunk",
            Self::ResponseHeaders => "ResponseHeaders",
            Self::ResponseBodyChunk => "ResponseBodyChunk",
            Self::RequestComplete => "RequestComplete",
            Self::WebSocketFrame => "WebSocketFrame",
            Self::GuardrailInspect => "GuardrailInspect",
            Self::Configure => "Configure",
            Self::AgentResponse => "AgentResponse",
            Self::HealthStatus => "HealthStatus",
            Self::MetricsReport => "MetricsReport",
            Self::ConfigUpdateRequest => "ConfigUpdateRequest",
            Self::FlowControl => "FlowControl",
            Self::Cancel => "Cancel",
            Self::Ping => "Ping",
            Self::Pong => "Pong",
        }
    }

    /// Whether the payload is JSON whatever encoding the handshake chose.
    pub const fn is_handshake(self) -> bool {
        matches!(self, Self::HandshakeRequest | Self::HandshakeResponse)
    }
}

impl TryFrom<u8> for MessageType {
    type Error = ProtocolError;

    fn try_from(code: u8) -> Result<Self, ProtocolError> {
        Self::ALL
            .into_iter()
            .find(|t| t.code() == code)
            .ok_or(ProtocolError::UnknownType(code))
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One frame: its type and its (still encoded) payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The type byte.
    pub message_type: MessageType,
    /// The payload bytes (JSON or MessagePack), without the header.
    pub payload: Bytes,
}

/// Splits a byte stream into [`Frame`]s. Holds only the maximum frame length, so one decoder
/// can serve any number of connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame: u32,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `max_frame` (type byte plus payload).
    pub const fn new(max_frame: u32) -> Self {
        Self { max_frame }
    }

    /// The maximum frame length this decoder accepts.
    pub const fn max_frame(&self) -> u32 {
        self.max_frame
    }

    /// Takes the next whole frame off the front of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed; then `buf` has room reserved for at most
    /// the rest of the announced frame. Returns an error as soon as the header shows a length
    /// of zero, a length above the maximum, or an unknown type byte — with nothing allocated
    /// for the frame. After an error the stream is out of sync and must be closed.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let Some(header) = buf.get(..4) else {
            return Ok(None);
        };
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if length == 0 {
            return Err(ProtocolError::EmptyFrame);
        }
        if length > self.max_frame {
            return Err(ProtocolError::FrameTooLarge {
                length: u64::from(length),
                max: self.max_frame,
            });
        }
        let Some(&code) = buf.get(4) else {
            return Ok(None);
        };
        let message_type = MessageType::try_from(code)?;
        // `length <= max_frame <= u32::MAX`, so this cannot overflow a usize of 32 bits or more.
        let total = 4 + length as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let mut frame = buf.split_to(total);
        let payload = frame.split_off(HEADER_LEN).freeze();
        Ok(Some(Frame {
            message_type,
            payload,
        }))
    }
}

/// Appends one frame to `out`. Refuses (and leaves `out` unchanged) when the type byte plus
/// `payload` would exceed `max_frame`.
pub fn encode_frame(
    message_type: MessageType,
    payload: &[u8],
    max_frame: u32,
    out: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let length = frame_length(payload.len(), max_frame)?;
    out.reserve(HEADER_LEN + payload.len());
    out.put_u32(length);
    out.put_u8(message_type.code());
    out.put_slice(payload);
    Ok(())
}

/// The `length` field for a payload of `payload_len` bytes, if it fits under `max_frame`.
pub(crate) fn frame_length(payload_len: usize, max_frame: u32) -> Result<u32, ProtocolError> {
    let length = (payload_len as u64).saturating_add(1);
    match u32::try_from(length) {
        Ok(l) if l <= max_frame => Ok(l),
        _ => Err(ProtocolError::FrameTooLarge {
            length,
            max: max_frame,
        }),
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

    use super::*;

    fn buf(bytes: &[u8]) -> BytesMut {
        BytesMut::from(bytes)
    }

    #[test]
    fn codes_round_trip_and_unknown_bytes_are_refused() {
        for t in MessageType::ALL {
            assert_eq!(MessageType::try_from(t.code()), Ok(t));
        }
        let known = MessageType::ALL.map(MessageType::code);
        for b in 0..=u8::MAX {
            if !known.contains(&b) {
                assert_eq!(MessageType::try_from(b), Err(ProtocolError::UnknownType(b)));
            }
        }
    }

    #[test]
    fn length_zero_is_an_error() {
        let d = FrameDecoder::default();
        assert_eq!(
            d.decode(&mut buf(&[0, 0, 0, 0])),
            Err(ProtocolError::EmptyFrame)
        );
    }

    #[test]
    fn oversize_is_refused_from_the_header_alone() {
        let d = FrameDecoder::new(1024);
        let mut b = buf(&[0, 0, 4, 1]);
        let cap = b.capacity();
        assert_eq!(
            d.decode(&mut b),
            Err(ProtocolError::FrameTooLarge {
                length: 1025,
                max: 1024
            })
        );
        assert_eq!(b.capacity(), cap, "nothing reserved for a refused frame");
        // Even u32::MAX with the default maximum.
        let mut b = buf(&[0xff, 0xff, 0xff, 0xff, 0x10]);
        assert!(matches!(
            FrameDecoder::default().decode(&mut b),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn unknown_type_is_refused_before_the_body_arrives() {
        let d = FrameDecoder::default();
        let mut b = buf(&[0, 0, 0, 100, 0x99]);
        assert_eq!(d.decode(&mut b), Err(ProtocolError::UnknownType(0x99)));
    }

    #[test]
    fn partial_frames_wait_and_reserve_only_the_rest() {
        let d = FrameDecoder::default();
        let mut b = buf(&[0, 0]);
        assert_eq!(d.decode(&mut b), Ok(None));
        let mut b = BytesMut::new();
        b.extend_from_slice(&[0, 0, 0, 11, 0x41, b'{']);
        assert_eq!(d.decode(&mut b), Ok(None));
        assert!(b.capacity() >= 4 + 11);
        assert!(b.capacity() < 1024);
        b.extend_from_slice(b"\"a\":1}  xx");
        let f = d.decode(&mut b).unwrap().unwrap();
        assert_eq!(f.message_type, MessageType::Ping);
        assert_eq!(&f.payload[..], b"{\"a\":1}  x");
        assert_eq!(&b[..], b"x");
    }

    #[test]
    fn a_frame_of_just_a_type_byte_has_an_empty_payload() {
        let f = FrameDecoder::default()
            .decode(&mut buf(&[0, 0, 0, 1, 0x32]))
            .unwrap()
            .unwrap();
        assert_eq!(f.message_type, MessageType::ConfigUpdateRequest);
        assert!(f.payload.is_empty());
    }

    #[test]
    fn encode_refuses_oversize_and_leaves_out_untouched() {
        let mut out = BytesMut::from(&b"ab"[..]);
        assert_eq!(
            encode_frame(MessageType::Ping, &[0; 8], 8, &mut out),
            Err(ProtocolError::FrameTooLarge { length: 9, max: 8 })
        );
        assert_eq!(&out[..], b"ab");
        encode_frame(MessageType::Ping, &[7; 7], 8, &mut out).unwrap();
        assert_eq!(&out[..], b"ab\0\0\0\x08\x41\x07\x07\x07\x07\x07\x07\x07");
    }
}
