//! Property tests of the codec: every message survives encode → decode in both encodings,
//! arbitrary bytes never panic the decoder nor make it allocate beyond the maximum, a stream
//! split anywhere decodes to the same frames, and oversize headers are refused at once.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use bytes::BytesMut;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::Union;
use serde_json::Value;
use zentinel_agent_protocol::{
    AgentResponse, Body, BodyMutation, Cancel, CancelReason, Capabilities, ConfigUpdateRequest,
    Configure, Decision, Encoding, FlowAction, FlowControl, Frame, FrameDecoder, GuardrailInspect,
    HandshakeRequest, HandshakeResponse, HeaderOp, Headers, HealthState, HealthStatus, Message,
    MessageType, MetricsReport, Ping, ProtocolError, RequestBodyChunk, RequestComplete,
    RequestHeaders, RequestMetadata, ResponseBodyChunk, ResponseHeaders, WebSocketFrame,
};

fn text() -> impl Strategy<Value = String> {
    ".{0,12}"
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn headers() -> impl Strategy<Value = Headers> {
    btree_map("[a-z0-9-]{1,10}", vec(text(), 0..3), 0..4)
}

fn body() -> impl Strategy<Value = Body> {
    vec(any::<u8>(), 0..48).prop_map(Body::from)
}

/// JSON values that survive both encodings exactly (floats with short decimal forms).
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-10_000i32..10_000).prop_map(|n| Value::from(f64::from(n) / 100.0)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(text(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![Just(Encoding::Json), Just(Encoding::MsgPack)]
}

fn handshake_request() -> impl Strategy<Value = Message> {
    (
        vec(any::<u32>(), 0..3),
        text(),
        text(),
        json(),
        vec(encoding(), 0..3),
    )
        .prop_map(|(v, id, ver, config, enc)| {
            Message::HandshakeRequest(HandshakeRequest {
                supported_versions: v,
                proxy_id: id,
                proxy_version: ver,
                config,
                supported_encodings: enc,
            })
        })
}

fn capabilities() -> impl Strategy<Value = Capabilities> {
    (
        text(),
        text(),
        vec(any::<u8>(), 0..8),
        any::<[bool; 8]>(),
        any::<(u32, u64, u32, u64)>(),
    )
        .prop_map(|(id, version, events, f, (conc, mb, mc, pc))| {
            let mut c = Capabilities::new(id, events);
            c.version = version;
            let x = &mut c.features;
            [x.streaming_body, x.websocket, x.guardrails, x.config_push] = [f[0], f[1], f[2], f[3]];
            [
                x.metrics_export,
                x.cancellation,
                x.flow_control,
                x.health_reporting,
            ] = [f[4], f[5], f[6], f[7]];
            x.concurrent_requests = conc;
            c.limits.max_body_size = mb;
            c.limits.max_concurrency = mc;
            c.limits.preferred_chunk_size = pc;
            c
        })
}

fn handshake_response() -> impl Strategy<Value = Message> {
    (
        any::<u32>(),
        capabilities(),
        any::<bool>(),
        opt_text(),
        proptest::option::of(encoding()),
    )
        .prop_map(|(v, caps, ok, error, enc)| {
            let mut r = HandshakeResponse::accept(caps, Encoding::Json);
            r.protocol_version = v;
            r.success = ok;
            r.error = error;
            r.encoding = enc;
            Message::HandshakeResponse(r)
        })
}

fn metadata() -> impl Strategy<Value = RequestMetadata> {
    (
        (text(), text(), text(), any::<u16>(), text(), opt_text()),
        (
            text(),
            opt_text(),
            opt_text(),
            text(),
            opt_text(),
            text(),
            opt_text(),
        ),
    )
        .prop_map(
            |((c, r, ip, port, peer, sni), (p, tv, tc, route, up, ts, tp))| RequestMetadata {
                correlation_id: c,
                request_id: r,
                client_ip: ip,
                client_port: port,
                peer_ip: peer,
                server_name: sni,
                protocol: p,
                tls_version: tv,
                tls_cipher: tc,
                route_id: route,
                upstream_id: up,
                timestamp: ts,
                traceparent: tp,
            },
        )
}

fn events() -> Vec<BoxedStrategy<Message>> {
    vec![
        (text(), metadata(), text(), text(), headers())
            .prop_map(|(c, metadata, method, uri, headers)| {
                Message::RequestHeaders(RequestHeaders {
                    correlation_id: c,
                    metadata,
                    method,
                    uri,
                    headers,
                })
            })
            .boxed(),
        (
            text(),
            body(),
            any::<bool>(),
            any::<Option<u64>>(),
            any::<(u64, u64)>(),
        )
            .prop_map(|(c, data, is_last, total_size, (chunk_index, n))| {
                Message::RequestBodyChunk(RequestBodyChunk {
                    correlation_id: c,
                    data,
                    is_last,
                    total_size,
                    chunk_index,
                    bytes_received: n,
                })
            })
            .boxed(),
        (text(), any::<u16>(), headers())
            .prop_map(|(c, status, headers)| {
                Message::ResponseHeaders(ResponseHeaders {
                    correlation_id: c,
                    status,
                    headers,
                })
            })
            .boxed(),
        (
            text(),
            body(),
            any::<bool>(),
            any::<Option<u64>>(),
            any::<(u64, u64)>(),
        )
            .prop_map(|(c, data, is_last, total_size, (chunk_index, n))| {
                Message::ResponseBodyChunk(ResponseBodyChunk {
                    correlation_id: c,
                    data,
                    is_last,
                    total_size,
                    chunk_index,
                    bytes_sent: n,
                })
            })
            .boxed(),
    ]
}

fn more_events() -> Vec<BoxedStrategy<Message>> {
    vec![
        (text(), any::<(u16, u64, u64, u64, u32)>(), opt_text())
            .prop_map(|(c, (status, d, rq, rs, a), error)| {
                Message::RequestComplete(RequestComplete {
                    correlation_id: c,
                    status,
                    duration_ms: d,
                    request_body_size: rq,
                    response_body_size: rs,
                    upstream_attempts: a,
                    error,
                })
            })
            .boxed(),
        (text(), any::<u8>(), body(), any::<(bool, u64, bool)>())
            .prop_map(|(c, opcode, data, (client_to_server, frame_index, fin))| {
                Message::WebSocketFrame(WebSocketFrame {
                    correlation_id: c,
                    opcode,
                    data,
                    client_to_server,
                    frame_index,
                    fin,
                })
            })
            .boxed(),
        (text(), text(), text(), opt_text(), vec(text(), 0..3))
            .prop_map(|(c, inspection_type, content, model, categories)| {
                Message::GuardrailInspect(GuardrailInspect {
                    correlation_id: c,
                    inspection_type,
                    content,
                    model,
                    categories,
                })
            })
            .boxed(),
        json()
            .prop_map(|v| Message::Configure(Configure(v)))
            .boxed(),
    ]
}

fn decision() -> impl Strategy<Value = Decision> {
    prop_oneof![
        Just(Decision::Allow),
        (any::<u16>(), opt_text(), btree_map(text(), text(), 0..3)).prop_map(
            |(status, body, headers)| Decision::Block {
                status,
                body,
                headers
            }
        ),
        (text(), any::<u16>()).prop_map(|(url, status)| Decision::Redirect { url, status }),
        (text(), json()).prop_map(|(challenge_type, params)| Decision::Challenge {
            challenge_type,
            params
        }),
    ]
}

fn header_op() -> impl Strategy<Value = HeaderOp> {
    prop_oneof![
        (text(), text()).prop_map(|(n, v)| HeaderOp::set(n, v)),
        (text(), text()).prop_map(|(n, v)| HeaderOp::add(n, v)),
        text().prop_map(HeaderOp::remove),
    ]
}

fn mutation() -> impl Strategy<Value = Option<BodyMutation>> {
    proptest::option::of(
        (proptest::option::of(body()), any::<u64>()).prop_map(|(data, i)| {
            let mut m = BodyMutation::pass_through(i);
            m.data = data;
            m
        }),
    )
}

fn agent_response() -> impl Strategy<Value = Message> {
    (
        (
            any::<u32>(),
            text(),
            decision(),
            vec(header_op(), 0..3),
            vec(header_op(), 0..3),
        ),
        (
            vec(text(), 0..2),
            vec(text(), 0..2),
            proptest::option::of(0u32..=100),
            vec(text(), 0..2),
        ),
        (
            btree_map(text(), json(), 0..3),
            any::<bool>(),
            mutation(),
            mutation(),
        ),
    )
        .prop_map(
            |((v, c, d, rq, rs), (tags, rules, conf, codes), (custom, more, m1, m2))| {
                let mut r = AgentResponse::allow(c);
                r.version = v;
                r.decision = d;
                r.request_headers = rq;
                r.response_headers = rs;
                r.audit.tags = tags;
                r.audit.rule_ids = rules;
                r.audit.confidence = conf.map(|n| f64::from(n) / 100.0);
                r.audit.reason_codes = codes;
                r.audit.custom = custom.into_iter().collect();
                r.needs_more = more;
                r.request_body_mutation = m1;
                r.response_body_mutation = m2;
                Message::AgentResponse(r)
            },
        )
}

fn controls() -> Vec<BoxedStrategy<Message>> {
    let state = prop_oneof![
        Just(HealthState::Healthy),
        Just(HealthState::Degraded),
        Just(HealthState::Draining),
        Just(HealthState::Unhealthy),
    ];
    let action = prop_oneof![Just(FlowAction::Pause), Just(FlowAction::Resume)];
    let reason = prop_oneof![
        Just(CancelReason::ClientDisconnected),
        Just(CancelReason::Timeout),
        Just(CancelReason::Abandoned),
        Just(CancelReason::Shutdown),
        (5u8..).prop_map(CancelReason::Other),
    ];
    let ping = any::<(u64, u64)>().prop_map(|(sequence, timestamp_ms)| Ping {
        sequence,
        timestamp_ms,
    });
    vec![
        state
            .prop_map(|state| Message::HealthStatus(HealthStatus { state }))
            .boxed(),
        json()
            .prop_map(|v| Message::MetricsReport(MetricsReport(v)))
            .boxed(),
        Just(Message::ConfigUpdateRequest(ConfigUpdateRequest {})).boxed(),
        action
            .prop_map(|action| Message::FlowControl(FlowControl { action }))
            .boxed(),
        (text(), reason)
            .prop_map(|(correlation_id, reason)| {
                Message::Cancel(Cancel {
                    correlation_id,
                    reason,
                })
            })
            .boxed(),
        ping.clone().prop_map(Message::Ping).boxed(),
        ping.prop_map(Message::Pong).boxed(),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let mut all = vec![handshake_request().boxed(), handshake_response().boxed()];
    all.extend(events());
    all.extend(more_events());
    all.push(agent_response().boxed());
    all.extend(controls());
    Union::new(all)
}

fn encode(m: &Message, encoding: Encoding) -> BytesMut {
    let mut out = BytesMut::new();
    m.encode(encoding, u32::MAX, &mut out).unwrap();
    out
}

fn decode_all(decoder: FrameDecoder, buf: &mut BytesMut) -> Result<Vec<Frame>, ProtocolError> {
    let mut frames = Vec::new();
    while let Some(f) = decoder.decode(buf)? {
        frames.push(f);
    }
    Ok(frames)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_round_trips_in_both_encodings(m in message(), enc in encoding()) {
        let mut buf = encode(&m, enc);
        let frame = FrameDecoder::new(u32::MAX).decode(&mut buf).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(frame.message_type, m.message_type());
        prop_assert_eq!(Message::decode(&frame, enc).unwrap(), m.clone());
        let payload = m.to_payload(enc).unwrap();
        prop_assert_eq!(&payload[..], &frame.payload[..]);
        prop_assert_eq!(Message::from_payload(m.message_type(), &payload, enc).unwrap(), m);
    }

    #[test]
    fn a_stream_split_anywhere_decodes_to_the_same_frames(
        ms in vec(message(), 1..6),
        enc in encoding(),
        cuts in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut stream = BytesMut::new();
        for m in &ms {
            stream.extend_from_slice(&encode(m, enc));
        }
        let whole = decode_all(FrameDecoder::default(), &mut stream.clone()).unwrap();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(stream.len());
        points.sort_unstable();
        let (mut buf, mut frames, mut at) = (BytesMut::new(), Vec::new(), 0);
        for p in points {
            buf.extend_from_slice(&stream[at..p]);
            at = p;
            frames.extend(decode_all(FrameDecoder::default(), &mut buf).unwrap());
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(&frames, &whole);
        let decoded: Vec<Message> = frames.iter().map(|f| Message::decode(f, enc).unwrap()).collect();
        prop_assert_eq!(decoded, ms);
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_allocate_beyond_the_maximum(
        chunks in vec(vec(any::<u8>(), 0..300), 1..12),
        max in 1u32..2048,
    ) {
        let decoder = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut fed = 0usize;
        'feed: for chunk in chunks {
            fed += chunk.len();
            buf.extend_from_slice(&chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        prop_assert!(frame.payload.len() < max as usize);
                        for enc in [Encoding::Json, Encoding::MsgPack] {
                            let _ = Message::decode(&frame, enc);
                        }
                    }
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
                // BytesMut may double its buffer when growing, never more.
                prop_assert!(buf.capacity() <= 2 * (fed + max as usize + 5) + 64);
            }
            prop_assert!(buf.capacity() <= 2 * (fed + max as usize + 5) + 64);
        }
    }

    #[test]
    fn a_length_above_the_maximum_is_refused_with_five_bytes_buffered(
        max in 0u32..u32::MAX,
        over in 1u32..=u32::MAX,
        type_byte in any::<u8>(),
    ) {
        let length = max.saturating_add(over);
        prop_assume!(length > max);
        for bytes in [&length.to_be_bytes()[..], &[&length.to_be_bytes()[..], &[type_byte]].concat()] {
            let mut buf = BytesMut::from(bytes);
            let cap = buf.capacity();
            prop_assert_eq!(
                FrameDecoder::new(max).decode(&mut buf),
                Err(ProtocolError::FrameTooLarge { length: u64::from(length), max })
            );
            prop_assert_eq!(buf.capacity(), cap);
        }
    }

    #[test]
    fn arbitrary_payloads_of_every_type_never_panic(
        code in prop::sample::select(MessageType::ALL.to_vec()),
        payload in vec(any::<u8>(), 0..256),
    ) {
        for enc in [Encoding::Json, Encoding::MsgPack] {
            let _ = Message::from_payload(code, &payload, enc);
        }
    }
}
