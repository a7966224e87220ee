//! The one error type of the protocol layer: what a peer sent (or what we were asked to send)
//! that the wire contract does not allow. Every variant is the peer's fault except
//! [`ProtocolError::Encode`] and an outgoing [`ProtocolError::FrameTooLarge`]; either way the
//! connection that produced it cannot be trusted to stay in sync and is closed by the caller.

use crate::frame::MessageType;

/// A violation of the wire contract, found while framing, encoding or decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame announced `length == 0`: it has no type byte.
    #[error("empty frame (length 0)")]
    EmptyFrame,
    /// A frame (type byte plus payload) is longer than the connection's maximum. For incoming
    /// frames this is detected from the 4-byte header, before anything is allocated.
    #[error("frame of {length} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The announced (incoming) or required (outgoing) length: type byte plus payload.
        length: u64,
        /// The maximum in force.
        max: u32,
    },
    /// The type byte is not one of the codes in [`MessageType`].
    #[error("unknown message type 0x{0:02x}")]
    UnknownType(u8),
    /// The payload could not be decoded as the message its type byte names (bad JSON or
    /// MessagePack, a missing required field such as `version`, a wrong type, trailing bytes).
    #[error("bad {message_type} payload: {detail}")]
    Payload {
        /// The type byte of the frame.
        message_type: MessageType,
        /// What the decoder objected to.
        detail: String,
    },
    /// A well-formed message that is not allowed here: in this direction (an agent sending
    /// an event), or at this point (anything but the handshake first, a second handshake).
    #[error("unexpected {0} message")]
    Unexpected(MessageType),
    /// A message could not be serialized (for example a map key that MessagePack or JSON
    /// cannot represent). Our fault, not the peer's.
    #[error("cannot encode {message_type}: {detail}")]
    Encode {
        /// The message being encoded.
        message_type: MessageType,
        /// What the serializer objected to.
        detail: String,
    },
}
