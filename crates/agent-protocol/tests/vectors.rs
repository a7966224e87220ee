//! Replays the shared test vectors in `vectors/` the way an SDK in another language would:
//! each hex frame decodes to `value`, and (for canonical vectors) encoding `value` gives
//! exactly those bytes. Also checks that the files are exactly what the cases below produce.
//!
//! Regenerate with `ZENTINEL_BLESS=1 cargo test -p zentinel-agent-protocol --test vectors`.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

#[path = "support/cases.rs"]
mod cases;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use bytes::BytesMut;
use serde::Deserialize;
use zentinel_agent_protocol::{DEFAULT_MAX_FRAME, Encoding, FrameDecoder, Message, MessageType};

use cases::{Case, Form};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// One vector file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    #[serde(rename = "type")]
    code: String,
    name: String,
    description: String,
    canonical: bool,
    value: serde_json::Value,
    json_frame_hex: String,
    msgpack_frame_hex: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        write!(s, "{b:02x}").unwrap();
        s
    })
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn frame_of(message_type: MessageType, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    zentinel_agent_protocol::encode_frame(message_type, payload, DEFAULT_MAX_FRAME, &mut out)
        .unwrap();
    out.to_vec()
}

fn encode(m: &Message, encoding: Encoding) -> Vec<u8> {
    let mut out = BytesMut::new();
    m.encode(encoding, DEFAULT_MAX_FRAME, &mut out).unwrap();
    out.to_vec()
}

/// The text of the file for `case`.
fn render(case: &Case) -> String {
    let t = case.message.message_type();
    let (value, json_frame, msgpack_frame) = match &case.form {
        Form::Canonical => (
            serde_json::to_string_pretty(&case.message).unwrap(),
            encode(&case.message, Encoding::Json),
            encode(&case.message, Encoding::MsgPack),
        ),
        Form::Input(input) => {
            let json = frame_of(t, &serde_json::to_vec(input).unwrap());
            let msgpack = if t.is_handshake() {
                json.clone()
            } else {
                frame_of(t, &rmp_serde::to_vec_named(input).unwrap())
            };
            (serde_json::to_string_pretty(input).unwrap(), json, msgpack)
        }
    };
    let canonical = matches!(case.form, Form::Canonical);
    format!(
        "{{\n  \"type\": \"0x{:02x}\",\n  \"name\": \"{}\",\n  \"description\": {},\n  \
         \"canonical\": {canonical},\n  \"value\": {},\n  \"json_frame_hex\": \"{}\",\n  \
         \"msgpack_frame_hex\": \"{}\"\n}}\n",
        t.code(),
        t.name(),
        serde_json::to_string(case.description).unwrap(),
        value.replace('\n', "\n  "),
        hex(&json_frame),
        hex(&msgpack_frame),
    )
}

/// What an SDK does with one file.
fn replay(file: &str, v: &Vector) -> Message {
    let code = u8::from_str_radix(v.code.trim_start_matches("0x"), 16).unwrap();
    let t = MessageType::try_from(code).unwrap();
    assert_eq!(v.name, t.name(), "{file}: name");
    let want =
        Message::from_payload(t, &serde_json::to_vec(&v.value).unwrap(), Encoding::Json).unwrap();
    for (hex_frame, encoding) in [
        (&v.json_frame_hex, Encoding::Json),
        (&v.msgpack_frame_hex, Encoding::MsgPack),
    ] {
        let bytes = unhex(hex_frame);
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty(), "{file}: one frame per hex string");
        assert_eq!(frame.message_type, t, "{file}: type byte");
        let got = Message::decode(&frame, encoding).unwrap();
        assert_eq!(got, want, "{file}: {encoding} frame decodes to value");
        if v.canonical {
            assert_eq!(
                hex(&encode(&want, encoding)),
                *hex_frame,
                "{file}: value encodes to the {encoding} frame"
            );
        }
    }
    if t.is_handshake() {
        assert_eq!(
            v.json_frame_hex, v.msgpack_frame_hex,
            "{file}: handshake is JSON"
        );
    }
    want
}

#[test]
fn vectors_replay_and_match_the_cases() {
    let cases = cases::all();
    if std::env::var_os("ZENTINEL_BLESS").is_some() {
        for case in &cases {
            std::fs::write(dir().join(format!("{}.json", case.file)), render(case)).unwrap();
        }
    }
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            on_disk.insert(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    let expected: BTreeSet<_> = cases.iter().map(|c| c.file.to_owned()).collect();
    assert_eq!(
        on_disk, expected,
        "vector files differ from the cases (stale or missing)"
    );
    for case in &cases {
        let path = dir().join(format!("{}.json", case.file));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            render(case),
            "{}: out of date; rerun with ZENTINEL_BLESS=1",
            case.file
        );
        let v: Vector = serde_json::from_str(&text).unwrap();
        assert_eq!(v.description, case.description);
        assert_eq!(
            replay(case.file, &v),
            case.message,
            "{}: decodes to the case",
            case.file
        );
    }
}

#[test]
fn every_message_type_has_a_canonical_vector() {
    let cases = cases::all();
    for t in MessageType::ALL {
        assert!(
            cases
                .iter()
                .any(|c| c.message.message_type() == t && matches!(c.form, Form::Canonical)),
            "no vector for {t}"
        );
    }
    let names: BTreeSet<_> = cases.iter().map(|c| c.file).collect();
    assert_eq!(names.len(), cases.len(), "file names are unique");
    for c in &cases {
        let prefix = format!("{:02x}-", c.message.message_type().code());
        assert!(
            c.file.starts_with(&prefix),
            "{} starts with {prefix}",
            c.file
        );
    }
}
