//! The message model: one payload type per [`MessageType`], and [`Message`], which ties a
//! payload to its type byte and converts between frames and values.
//!
//! Handshake payloads are always JSON; every other payload uses the connection's encoding.

pub mod control;
pub mod decision;
pub mod event;
pub mod handshake;

use bytes::BytesMut;

use crate::encoding::{Encoding, read_payload, write_payload};
use crate::error::ProtocolError;
use crate::frame::{Frame, HEADER_LEN, MessageType, frame_length};

use control::{Cancel, ConfigUpdateRequest, FlowControl, HealthStatus, MetricsReport, Ping};
use decision::AgentResponse;
use event::{
    Configure, GuardrailInspect, RequestBodyChunk, RequestComplete, RequestHeaders,
    ResponseBodyChunk, ResponseHeaders, WebSocketFrame,
};
use handshake::{HandshakeRequest, HandshakeResponse};

/// Declares [`Message`] with one variant per payload type and the per-variant plumbing
/// (type byte, serialization, deserialization), so the three can never disagree.
macro_rules! messages {
    ($( $(#[$m:meta])* $variant:ident($payload:ty), )*) => {
        /// Any message of the protocol, with its payload.
        ///
        /// `Serialize` writes the payload alone (what [`Message::to_payload`] encodes); use
        /// [`Message::encode`] for frames, which also keeps the handshake in JSON.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum Message {
            $( $(#[$m])* $variant($payload), )*
        }

        impl Message {
            /// The type byte this message travels with.
            pub fn message_type(&self) -> MessageType {
                match self {
                    $( Self::$variant(_) => MessageType::$variant, )*
                }
            }

            fn write_to(&self, encoding: Encoding, out: &mut BytesMut) -> Result<(), String> {
                match self {
                    $( Self::$variant(m) => write_payload(m, encoding, out), )*
                }
            }

            fn read_as(
                message_type: MessageType,
                payload: &[u8],
                encoding: Encoding,
            ) -> Result<Self, String> {
                match message_type {
                    $( MessageType::$variant => read_payload(payload, encoding).map(Self::$variant), )*
                }
            }
        }

        impl serde::Serialize for Message {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Self::$variant(m) => m.serialize(s), )*
                }
            }
        }
    };
}

messages! {
    /// 0x01, proxy → agent.
    HandshakeRequest(HandshakeRequest),
    /// 0x02, agent → proxy.
    HandshakeResponse(HandshakeResponse),
    /// 0x10, proxy → agent.
    RequestHeaders(RequestHeaders),
    /// 0x11, proxy → agent.
    RequestBodyChunk(RequestBodyChunk),
    /// 0x12, proxy → agent.
    ResponseHeaders(ResponseHeaders),
    /// 0x13, proxy → agent.
    ResponseBodyChunk(ResponseBodyChunk),
    /// 0x14, proxy → agent, no reply.
    RequestComplete(RequestComplete),
    /// 0x15, proxy → agent.
    WebSocketFrame(WebSocketFrame),
    /// 0x16, proxy → agent.
    GuardrailInspect(GuardrailInspect),
    /// 0x17, proxy → agent.
    Configure(Configure),
    /// 0x20, agent → proxy.
    AgentResponse(AgentResponse),
    /// 0x30, agent → proxy.
    HealthStatus(HealthStatus),
    /// 0x31, agent → proxy.
    MetricsReport(MetricsReport),
    /// 0x32, agent → proxy.
    ConfigUpdateRequest(ConfigUpdateRequest),
    /// 0x33, agent → proxy.
    FlowControl(FlowControl),
    /// 0x40, proxy → agent.
    Cancel(Cancel),
    /// 0x41, either direction.
    Ping(Ping),
    /// 0x42, either direction: the echo of a ping.
    Pong(Ping),
}

impl Message {
    /// The encoding actually used for this message's payload on a connection using
    /// `encoding`: JSON for the handshake, `encoding` otherwise.
    pub fn payload_encoding(message_type: MessageType, encoding: Encoding) -> Encoding {
        if message_type.is_handshake() {
            Encoding::Json
        } else {
            encoding
        }
    }

    /// Appends this message as one frame to `out`. Refuses, leaving `out` as it was, when the
    /// frame would exceed `max_frame`.
    pub fn encode(
        &self,
        encoding: Encoding,
        max_frame: u32,
        out: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        let message_type = self.message_type();
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        let written = self
            .write_to(Self::payload_encoding(message_type, encoding), out)
            .map_err(|detail| ProtocolError::Encode {
                message_type,
                detail,
            })
            .and_then(|()| frame_length(out.len() - start - HEADER_LEN, max_frame));
        match written {
            Ok(length) => {
                out[start..start + 4].copy_from_slice(&length.to_be_bytes());
                out[start + 4] = message_type.code();
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// Decodes the payload of `frame` as the message its type byte names.
    pub fn decode(frame: &Frame, encoding: Encoding) -> Result<Self, ProtocolError> {
        Self::from_payload(frame.message_type, &frame.payload, encoding)
    }

    /// Encodes just the payload (no frame header).
    pub fn to_payload(&self, encoding: Encoding) -> Result<Vec<u8>, ProtocolError> {
        let message_type = self.message_type();
        let mut out = BytesMut::new();
        self.write_to(Self::payload_encoding(message_type, encoding), &mut out)
            .map_err(|detail| ProtocolError::Encode {
                message_type,
                detail,
            })?;
        Ok(out.to_vec())
    }

    /// Decodes a payload of type `message_type` (no frame header).
    pub fn from_payload(
        message_type: MessageType,
        payload: &[u8],
        encoding: Encoding,
    ) -> Result<Self, ProtocolError> {
        if message_type == MessageType::ConfigUpdateRequest && payload.is_empty() {
            return Ok(Self::ConfigUpdateRequest(ConfigUpdateRequest {}));
        }
        Self::read_as(
            message_type,
            payload,
            Self::payload_encoding(message_type, encoding),
        )
        .map_err(|detail| ProtocolError::Payload {
            message_type,
            detail,
        })
    }
}

#[cfg(test)]
mod tests;
