//! What the `agent_frame` fuzz target checks for one input, shared with the stable replay test
//! (`crates/agent-protocol/tests/fuzz_replay.rs`) so both run exactly the same code.
//!
//! Any bytes yield frames or a protocol error, never a panic. Each frame re-encodes to exactly
//! the bytes it was read from; each payload decodes to a message or a protocol error in both
//! encodings, and a decoded message encodes and decodes again to the same message.

use bytes::BytesMut;
use zentinel_agent_protocol::{Encoding, FrameDecoder, Message, encode_frame};

/// A small maximum so that oversize lengths are exercised as well as whole frames.
pub(crate) const MAX_FRAME: u32 = 64 * 1024;

/// Runs the checks on one input; panics (with the reason) when an invariant does not hold.
pub(crate) fn check(data: &[u8]) {
    let decoder = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::from(data);
    let mut offset = 0;
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        let consumed = data.len() - buf.len();
        let mut again = BytesMut::new();
        encode_frame(frame.message_type, &frame.payload, MAX_FRAME, &mut again)
            .unwrap_or_else(|e| panic!("a decoded frame does not encode again: {e}"));
        assert_eq!(
            &again[..],
            &data[offset..consumed],
            "frame re-encodes to other bytes"
        );
        offset = consumed;
        for encoding in [Encoding::Json, Encoding::MsgPack] {
            let Ok(message) = Message::decode(&frame, encoding) else {
                continue;
            };
            let mut out = BytesMut::new();
            if message.encode(encoding, u32::MAX, &mut out).is_err() {
                continue;
            }
            let reread = decoder
                .decode(&mut out)
                .ok()
                .flatten()
                .and_then(|f| Message::decode(&f, encoding).ok());
            // A re-encoded message may exceed `MAX_FRAME`; it then need not decode here.
            if let Some(reread) = reread {
                assert_eq!(
                    reread, message,
                    "{encoding:?}: message changes on a round trip"
                );
            }
        }
    }
}
