//! Edge cases of the spec, beside the code: decision forms, correlation fallback, tolerant
//! readers, required fields.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use std::collections::BTreeMap;

use bytes::BytesMut;
use serde_json::json;

use super::*;
use crate::{
    CancelReason, Capabilities, Decision, Encoding, FlowAction, FrameDecoder, HeaderOp,
    HealthState, PROTOCOL_VERSION,
};

fn json_value<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
    read_payload(&serde_json::to_vec(&v).unwrap(), Encoding::Json)
}

fn msgpack_of(v: &serde_json::Value) -> Vec<u8> {
    rmp_serde::to_vec_named(v).unwrap()
}

fn decision_in_both(v: serde_json::Value) -> (Decision, Decision) {
    let j = json_value::<Decision>(v.clone()).unwrap();
    let m = read_payload::<Decision>(&msgpack_of(&v), Encoding::MsgPack).unwrap();
    (j, m)
}

#[test]
fn allow_is_read_in_all_three_forms_in_both_encodings() {
    for v in [json!("allow"), json!({"allow": null}), json!({"allow": {}})] {
        assert_eq!(decision_in_both(v), (Decision::Allow, Decision::Allow));
    }
    assert_eq!(
        serde_json::to_string(&Decision::Allow).unwrap(),
        "\"allow\""
    );
}

#[test]
fn block_redirect_and_challenge_take_their_defaults() {
    let block = Decision::Block {
        status: 403,
        body: None,
        headers: BTreeMap::new(),
    };
    for v in [json!({"block": {}}), json!({"block": null})] {
        assert_eq!(decision_in_both(v), (block.clone(), block.clone()));
    }
    let full =
        json!({"block": {"status": 429, "body": "slow down", "headers": {"retry-after": "1"}}});
    let (j, m) = decision_in_both(full.clone());
    assert_eq!(j, m);
    assert_eq!(serde_json::to_value(&j).unwrap(), full);

    let redirect = Decision::Redirect {
        url: "https://login.example.com/".into(),
        status: 302,
    };
    let v = json!({"redirect": {"url": "https://login.example.com/"}});
    assert_eq!(decision_in_both(v), (redirect.clone(), redirect));

    let v = json!({"challenge": {"challenge_type": "captcha"}});
    let (j, m) = decision_in_both(v);
    assert_eq!(j, m);
    assert_eq!(
        j,
        Decision::Challenge {
            challenge_type: "captcha".into(),
            params: serde_json::Value::Null
        }
    );
}

#[test]
fn malformed_decisions_are_refused() {
    for v in [
        json!("block"),
        json!("deny"),
        json!({}),
        json!({"deny": {}}),
        json!({"allow": null, "block": {}}),
        json!({"redirect": {}}),
        json!({"redirect": null}),
        json!({"challenge": {}}),
        json!(1),
        json!(null),
    ] {
        assert!(json_value::<Decision>(v.clone()).is_err(), "{v} accepted");
        assert!(
            read_payload::<Decision>(&msgpack_of(&v), Encoding::MsgPack).is_err(),
            "{v} accepted in msgpack"
        );
    }
}

#[test]
fn response_without_version_or_decision_is_refused() {
    let no_version = json!({"correlation_id": "a", "decision": "allow"});
    let err = Message::from_payload(
        MessageType::AgentResponse,
        &serde_json::to_vec(&no_version).unwrap(),
        Encoding::Json,
    )
    .unwrap_err();
    assert!(
        matches!(&err, ProtocolError::Payload { message_type: MessageType::AgentResponse, detail } if detail.contains("version")),
        "{err}"
    );
    assert!(json_value::<AgentResponse>(json!({"version": 2, "correlation_id": "a"})).is_err());
    assert!(read_payload::<AgentResponse>(&msgpack_of(&no_version), Encoding::MsgPack).is_err());
}

#[test]
fn minimal_response_reads_with_defaults_and_ignores_unknown_fields() {
    let r: AgentResponse = json_value(json!({
        "version": 2, "decision": "allow", "correlation_id": "c1",
        "future_field": {"x": [1, 2]}, "audit": {"tags": ["t"], "later": true}
    }))
    .unwrap();
    let mut want = AgentResponse::allow("c1");
    want.audit.tags = vec!["t".into()];
    assert_eq!(r, want);
}

#[test]
fn correlation_falls_back_to_audit_custom() {
    let mut r = AgentResponse::allow("");
    assert_eq!(r.correlation(), None);
    r.audit
        .custom
        .insert("correlation_id".into(), json!("legacy"));
    assert_eq!(r.correlation(), Some("legacy"));
    r.correlation_id = "top".into();
    assert_eq!(r.correlation(), Some("top"));
    let mut n = AgentResponse::allow("");
    n.audit.custom.insert("correlation_id".into(), json!(7));
    assert_eq!(n.correlation(), None, "a non-string fallback is not an ID");
}

#[test]
fn header_ops_are_externally_tagged_lowercase() {
    let ops = vec![
        HeaderOp::set("x-user", "42"),
        HeaderOp::add("x-waf", "checked"),
        HeaderOp::remove("cookie"),
    ];
    assert_eq!(
        serde_json::to_value(&ops).unwrap(),
        json!([{"set":{"name":"x-user","value":"42"}},{"add":{"name":"x-waf","value":"checked"}},
               {"remove":{"name":"cookie"}}])
    );
}

#[test]
fn handshake_is_json_whatever_the_connection_encoding() {
    let m = Message::HandshakeResponse(HandshakeResponse::accept(
        Capabilities::new("waf", [1]),
        Encoding::MsgPack,
    ));
    let mut out = BytesMut::new();
    m.encode(Encoding::MsgPack, 1 << 20, &mut out).unwrap();
    assert_eq!(out[5], b'{');
    let f = FrameDecoder::default().decode(&mut out).unwrap().unwrap();
    assert_eq!(Message::decode(&f, Encoding::MsgPack).unwrap(), m);
}

#[test]
fn missing_features_and_limits_fields_default() {
    let r: HandshakeResponse = json_value(json!({
        "protocol_version": 2, "success": true,
        "capabilities": {"agent_id": "a", "features": {"cancellation": true}, "limits": {}}
    }))
    .unwrap();
    assert!(r.capabilities.features.cancellation);
    assert!(!r.capabilities.features.streaming_body);
    assert_eq!(r.capabilities.limits.max_body_size, 0);
    assert_eq!(r.chosen_encoding(), Encoding::Json);
    assert_eq!(r.protocol_version, PROTOCOL_VERSION);
}

#[test]
fn coded_enums_are_integers_and_unknown_codes_are_handled() {
    assert_eq!(serde_json::to_string(&HealthState::Draining).unwrap(), "3");
    assert!(json_value::<HealthState>(json!(5)).is_err());
    assert!(json_value::<FlowAction>(json!(0)).is_err());
    assert_eq!(
        json_value::<FlowAction>(json!(2)).unwrap(),
        FlowAction::Resume
    );
    assert_eq!(
        json_value::<CancelReason>(json!(9)).unwrap(),
        CancelReason::Other(9)
    );
    assert_eq!(
        json_value::<CancelReason>(json!(2)).unwrap(),
        CancelReason::Timeout
    );
}

#[test]
fn config_update_request_accepts_any_object_or_nothing() {
    for payload in [&b""[..], b"{}", b"{\"why\":\"restart\"}"] {
        assert_eq!(
            Message::from_payload(MessageType::ConfigUpdateRequest, payload, Encoding::Json),
            Ok(Message::ConfigUpdateRequest(ConfigUpdateRequest {}))
        );
    }
}

#[test]
fn oversize_messages_are_refused_and_out_is_untouched() {
    let chunk = RequestBodyChunk {
        data: vec![0u8; 100].into(),
        ..RequestBodyChunk::default()
    };
    let m = Message::RequestBodyChunk(chunk);
    let mut out = BytesMut::from(&b"keep"[..]);
    for enc in [Encoding::Json, Encoding::MsgPack] {
        assert!(matches!(
            m.encode(enc, 64, &mut out),
            Err(ProtocolError::FrameTooLarge { max: 64, .. })
        ));
        assert_eq!(&out[..], b"keep");
    }
}

#[test]
fn wrong_encoding_is_a_payload_error() {
    let mut out = BytesMut::new();
    Message::Ping(Ping::default())
        .encode(Encoding::MsgPack, 1024, &mut out)
        .unwrap();
    let f = FrameDecoder::default().decode(&mut out).unwrap().unwrap();
    assert!(matches!(
        Message::decode(&f, Encoding::Json),
        Err(ProtocolError::Payload {
            message_type: MessageType::Ping,
            ..
        })
    ));
}
