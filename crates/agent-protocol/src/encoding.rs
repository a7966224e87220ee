//! Payload encodings (JSON, MessagePack with named maps) and the [`Body`] byte type, which is
//! base64 in JSON and raw bytes in MessagePack.
//!
//! Decoding is tolerant where the spec allows it (a body may arrive as base64 text, bytes or
//! an array of integers) and strict where it matters: trailing bytes after a payload are an
//! error in both encodings.

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::{BufMut, Bytes, BytesMut};
use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// How message payloads (other than the handshake, always JSON) are encoded on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 JSON. Always supported.
    #[default]
    Json,
    /// MessagePack with structs as maps keyed by field name (never positional arrays).
    #[serde(rename = "msgpack")]
    MsgPack,
}

impl Encoding {
    /// The name on the wire: `"json"` or `"msgpack"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::MsgPack => "msgpack",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads a list of encoding names, skipping the ones this version does not know, so that a
/// newer peer offering more encodings is still understood.
pub(crate) fn known_encodings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Encoding>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Offered {
        Known(Encoding),
        Other(de::IgnoredAny),
    }
    let offered = Vec::<Offered>::deserialize(d)?;
    Ok(offered
        .into_iter()
        .filter_map(|o| match o {
            Offered::Known(e) => Some(e),
            Offered::Other(_) => None,
        })
        .collect())
}

/// Standard alphabet; writes padding, accepts input with or without it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Opaque bytes: a body chunk, a WebSocket payload, a body replacement.
///
/// Serialized as a base64 string (standard alphabet, padded) in human-readable formats (JSON)
/// and as MessagePack `bin` otherwise. Deserialization accepts a base64 string, bytes, or an
/// array of integers 0–255, in either encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Body(pub Bytes);

impl Body {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Self(b)
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Self(Bytes::from(b))
    }
}

impl From<&'static [u8]> for Body {
    fn from(b: &'static [u8]) -> Self {
        Self(Bytes::from_static(b))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&BASE64.encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string, bytes, or an array of bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Body, E> {
        BASE64
            .decode(v)
            .map(Body::from)
            .map_err(|e| E::custom(format_args!("invalid base64: {e}")))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Body, E> {
        Ok(Body(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Body, E> {
        Ok(Body::from(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        // The hint comes from the peer: cap it, the vector grows as elements really arrive.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(Body::from(out))
    }
}

/// Serializes `value` in `encoding`, appending to `out`.
pub(crate) fn write_payload<T: Serialize>(
    value: &T,
    encoding: Encoding,
    out: &mut BytesMut,
) -> Result<(), String> {
    let mut w = out.writer();
    match encoding {
        Encoding::Json => serde_json::to_writer(&mut w, value).map_err(|e| e.to_string()),
        Encoding::MsgPack => {
            rmp_serde::encode::write_named(&mut w, value).map_err(|e| e.to_string())
        }
    }
}

/// Deserializes one `T` from the whole of `payload` (trailing bytes are an error).
pub(crate) fn read_payload<T: DeserializeOwned>(
    payload: &[u8],
    encoding: Encoding,
) -> Result<T, String> {
    match encoding {
        Encoding::Json => serde_json::from_slice(payload).map_err(|e| e.to_string()),
        Encoding::MsgPack => {
            let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(payload));
            let value = T::deserialize(&mut de).map_err(|e| e.to_string())?;
            let used = de.position();
            if used == payload.len() as u64 {
                Ok(value)
            } else {
                Err(format!(
                    "{} trailing bytes after the MessagePack value",
                    payload.len() as u64 - used
                ))
            }
        }
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

    #[test]
    fn body_is_base64_in_json_and_bin_in_msgpack() {
        let b = Body::from("hello");
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"aGVsbG8=\"");
        assert_eq!(rmp_serde::to_vec(&b).unwrap(), b"\xc4\x05hello");
        assert_eq!(
            read_payload::<Body>(b"\xc4\x05hello", Encoding::MsgPack).unwrap(),
            b
        );
    }

    #[test]
    fn body_accepts_every_documented_form() {
        let hello = Body::from("hello");
        for json in ["\"aGVsbG8=\"", "\"aGVsbG8\"", "[104,101,108,108,111]"] {
            assert_eq!(
                read_payload::<Body>(json.as_bytes(), Encoding::Json).unwrap(),
                hello
            );
        }
        // MessagePack str (base64) and array of u8.
        assert_eq!(
            read_payload::<Body>(b"\xa8aGVsbG8=", Encoding::MsgPack).unwrap(),
            hello
        );
        assert_eq!(
            read_payload::<Body>(b"\x95\x68\x65\x6c\x6c\x6f", Encoding::MsgPack).unwrap(),
            hello
        );
        assert_eq!(
            read_payload::<Body>(b"\"\"", Encoding::Json).unwrap(),
            Body::default()
        );
        assert!(read_payload::<Body>(b"\"not base64!\"", Encoding::Json).is_err());
        assert!(read_payload::<Body>(b"[256]", Encoding::Json).is_err());
    }

    #[test]
    fn encodings_use_their_wire_names_and_unknown_offers_are_skipped() {
        assert_eq!(
            serde_json::to_string(&Encoding::MsgPack).unwrap(),
            "\"msgpack\""
        );
        #[derive(Deserialize)]
        struct Offer {
            #[serde(deserialize_with = "known_encodings")]
            e: Vec<Encoding>,
        }
        let o: Offer = serde_json::from_str(r#"{"e":["cbor","msgpack",7,"json"]}"#).unwrap();
        assert_eq!(o.e, vec![Encoding::MsgPack, Encoding::Json]);
    }

    #[test]
    fn trailing_bytes_are_refused_in_both_encodings() {
        assert!(read_payload::<u8>(b"1 2", Encoding::Json).is_err());
        assert!(read_payload::<u8>(b"\x01\x02", Encoding::MsgPack).is_err());
        assert_eq!(read_payload::<u8>(b"\x01", Encoding::MsgPack), Ok(1));
    }
}
