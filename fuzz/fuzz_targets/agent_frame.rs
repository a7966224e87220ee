//! Any bytes given to the agent frame decoder yield frames or a protocol error — never a
//! panic — and every frame's payload decodes to a message or a protocol error, in both
//! encodings; a decoded message encodes again.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use zentinel_agent_protocol::{Encoding, FrameDecoder, Message};

fuzz_target!(|data: &[u8]| {
    // A small maximum so that oversize lengths are exercised as well as whole frames.
    let decoder = FrameDecoder::new(64 * 1024);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        for encoding in [Encoding::Json, Encoding::MsgPack] {
            if let Ok(message) = Message::decode(&frame, encoding) {
                let mut out = BytesMut::new();
                let _ = message.encode(encoding, u32::MAX, &mut out);
            }
        }
    }
});
