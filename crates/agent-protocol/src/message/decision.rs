//! The agent's answer (0x20): a decision, header mutations, audit facts, body mutations.
//!
//! `version` and `decision` are required: a response without a decision is a protocol error,
//! never an implicit allow. Everything else is optional and unknown fields are ignored.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::PROTOCOL_VERSION;
use crate::encoding::Body;

/// The decision for one event, with header and body mutations and audit facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentResponse {
    /// Protocol version; required on the wire.
    pub version: u32,
    /// The call this answers. Empty means "see `audit.custom.correlation_id`".
    #[serde(default)]
    pub correlation_id: String,
    /// What the proxy must do with the request.
    pub decision: Decision,
    /// Mutations of the request headers sent upstream, applied in order.
    #[serde(default)]
    pub request_headers: Vec<HeaderOp>,
    /// Mutations of the response headers sent to the client, applied in order.
    #[serde(default)]
    pub response_headers: Vec<HeaderOp>,
    /// Facts for the audit log.
    #[serde(default)]
    pub audit: AuditMetadata,
    /// On a request-headers answer: "send me the body before I decide".
    #[serde(default)]
    pub needs_more: bool,
    /// What to do with the request body chunk this answers.
    #[serde(default)]
    pub request_body_mutation: Option<BodyMutation>,
    /// What to do with the response body chunk this answers.
    #[serde(default)]
    pub response_body_mutation: Option<BodyMutation>,
}

impl AgentResponse {
    fn with_decision(correlation_id: impl Into<String>, decision: Decision) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            correlation_id: correlation_id.into(),
            decision,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            audit: AuditMetadata::default(),
            needs_more: false,
            request_body_mutation: None,
            response_body_mutation: None,
        }
    }

    /// Let the request continue.
    pub fn allow(correlation_id: impl Into<String>) -> Self {
        Self::with_decision(correlation_id, Decision::Allow)
    }

    /// Answer the client with `status` and `body` (an empty body is sent as `null`); the
    /// upstream is never contacted.
    pub fn block(correlation_id: impl Into<String>, status: u16, body: impl Into<String>) -> Self {
        let body: String = body.into();
        let decision = Decision::Block {
            status,
            body: (!body.is_empty()).then_some(body),
            headers: BTreeMap::new(),
        };
        Self::with_decision(correlation_id, decision)
    }

    /// Redirect the client to `url` with `status` (a 3xx).
    pub fn redirect(
        correlation_id: impl Into<String>,
        url: impl Into<String>,
        status: u16,
    ) -> Self {
        let decision = Decision::Redirect {
            url: url.into(),
            status,
        };
        Self::with_decision(correlation_id, decision)
    }

    /// Allow for now and ask for the request body before deciding.
    pub fn needs_more(correlation_id: impl Into<String>) -> Self {
        let mut r = Self::allow(correlation_id);
        r.needs_more = true;
        r
    }

    /// Appends a request header mutation.
    #[must_use]
    pub fn with_request_header(mut self, op: HeaderOp) -> Self {
        self.request_headers.push(op);
        self
    }

    /// Appends a response header mutation.
    #[must_use]
    pub fn with_response_header(mut self, op: HeaderOp) -> Self {
        self.response_headers.push(op);
        self
    }

    /// The call this answers: the top-level `correlation_id`, or else (for agents written
    /// against older SDKs) a string `audit.custom.correlation_id`. `None` when neither is set.
    pub fn correlation(&self) -> Option<&str> {
        if !self.correlation_id.is_empty() {
            return Some(&self.correlation_id);
        }
        self.audit
            .custom
            .get("correlation_id")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// What the proxy does with the request.
///
/// Serialized as `"allow"` or as a one-key object (`{"block":{...}}`,
/// `{"redirect":{...}}`, `{"challenge":{...}}`); `{"allow":null}` and `{"allow":{}}` are also
/// read as allow. Deliberately not `#[non_exhaustive]`: every consumer must handle every
/// decision explicitly, so that a new kind can never fall into a wildcard arm that allows.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Decision {
    /// Continue to the upstream.
    #[default]
    Allow,
    /// Answer the client directly.
    Block {
        /// Status to answer with (default 403).
        status: u16,
        /// Body to answer with.
        body: Option<String>,
        /// Extra response headers.
        headers: BTreeMap<String, String>,
    },
    /// Send the client elsewhere with a 3xx and `Location`.
    Redirect {
        /// The `Location`.
        url: String,
        /// The 3xx status (default 302).
        status: u16,
    },
    /// Ask the client to prove something (captcha, proof of work, ...).
    Challenge {
        /// Which challenge, as configured in the proxy.
        challenge_type: String,
        /// Parameters for the challenge page.
        params: serde_json::Value,
    },
}

const DECISIONS: &[&str] = &["allow", "block", "redirect", "challenge"];

fn default_block_status() -> u16 {
    403
}

fn default_redirect_status() -> u16 {
    302
}

#[derive(Serialize, Deserialize)]
struct BlockFields<'a> {
    #[serde(default = "default_block_status")]
    status: u16,
    #[serde(default)]
    body: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    headers: std::borrow::Cow<'a, BTreeMap<String, String>>,
}

#[derive(Serialize, Deserialize)]
struct RedirectFields<'a> {
    url: std::borrow::Cow<'a, str>,
    #[serde(default = "default_redirect_status")]
    status: u16,
}

#[derive(Serialize, Deserialize)]
struct ChallengeFields<'a> {
    challenge_type: std::borrow::Cow<'a, str>,
    #[serde(default)]
    params: std::borrow::Cow<'a, serde_json::Value>,
}

impl Serialize for Decision {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use std::borrow::Cow::Borrowed;
        match self {
            Self::Allow => s.serialize_str("allow"),
            Self::Block {
                status,
                body,
                headers,
            } => one_entry(
                s,
                "block",
                &BlockFields {
                    status: *status,
                    body: body.as_deref().map(Borrowed),
                    headers: Borrowed(headers),
                },
            ),
            Self::Redirect { url, status } => one_entry(
                s,
                "redirect",
                &RedirectFields {
                    url: Borrowed(url),
                    status: *status,
                },
            ),
            Self::Challenge {
                challenge_type,
                params,
            } => one_entry(
                s,
                "challenge",
                &ChallengeFields {
                    challenge_type: Borrowed(challenge_type),
                    params: Borrowed(params),
                },
            ),
        }
    }
}

/// `{key: value}`, the same in JSON and MessagePack.
fn one_entry<S: Serializer, V: Serialize>(s: S, key: &str, value: &V) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry(key, value)?;
    map.end()
}

impl<'de> Deserialize<'de> for Decision {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DecisionVisitor)
    }
}

struct DecisionVisitor;

impl<'de> Visitor<'de> for DecisionVisitor {
    type Value = Decision;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#""allow" or a one-key object {"allow"|"block"|"redirect"|"challenge": ...}"#)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decision, E> {
        match v {
            "allow" => Ok(Decision::Allow),
            other => Err(E::unknown_variant(other, &["allow"])),
        }
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Decision, E> {
        match std::str::from_utf8(v) {
            Ok(s) => self.visit_str(s),
            Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decision, A::Error> {
        let Some(kind) = map.next_key::<String>()? else {
            return Err(de::Error::invalid_length(0, &self));
        };
        let decision = match kind.as_str() {
            "allow" => {
                map.next_value::<IgnoredAny>()?;
                Decision::Allow
            }
            "block" => {
                let f = map.next_value::<Option<BlockFields<'static>>>()?;
                f.map_or_else(
                    || Decision::Block {
                        status: default_block_status(),
                        body: None,
                        headers: BTreeMap::new(),
                    },
                    |f| Decision::Block {
                        status: f.status,
                        body: f.body.map(std::borrow::Cow::into_owned),
                        headers: f.headers.into_owned(),
                    },
                )
            }
            "redirect" => {
                let f = map.next_value::<RedirectFields<'static>>()?;
                Decision::Redirect {
                    url: f.url.into_owned(),
                    status: f.status,
                }
            }
            "challenge" => {
                let f = map.next_value::<ChallengeFields<'static>>()?;
                Decision::Challenge {
                    challenge_type: f.challenge_type.into_owned(),
                    params: f.params.into_owned(),
                }
            }
            other => return Err(de::Error::unknown_variant(other, DECISIONS)),
        };
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("a decision object has exactly one key"));
        }
        Ok(decision)
    }
}

/// One header mutation: `{"set":{"name":"x","value":"1"}}`, `{"add":{...}}`,
/// `{"remove":{"name":"x"}}`. Not `#[non_exhaustive]`, for the same reason as [`Decision`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderOp {
    /// Replace every value of `name` with `value`.
    Set {
        /// Header name (case-insensitive).
        name: String,
        /// The new value.
        value: String,
    },
    /// Append `value` to `name`'s values.
    Add {
        /// Header name (case-insensitive).
        name: String,
        /// The added value.
        value: String,
    },
    /// Remove every value of `name`.
    Remove {
        /// Header name (case-insensitive).
        name: String,
    },
}

impl HeaderOp {
    /// `Set { name, value }`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::Set {
            name: name.into(),
            value: value.into(),
        }
    }

    /// `Add { name, value }`.
    pub fn add(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::Add {
            name: name.into(),
            value: value.into(),
        }
    }

    /// `Remove { name }`.
    pub fn remove(name: impl Into<String>) -> Self {
        Self::Remove { name: name.into() }
    }
}

/// Facts for the audit log. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AuditMetadata {
    /// Free-form labels (`"sqli"`).
    pub tags: Vec<String>,
    /// Rules that matched (`"942100"`).
    pub rule_ids: Vec<String>,
    /// How sure the agent is, 0.0–1.0.
    pub confidence: Option<f64>,
    /// Machine-readable reasons.
    pub reason_codes: Vec<String>,
    /// Anything else. `correlation_id` here is read as a fallback for the top-level one.
    pub custom: serde_json::Map<String, serde_json::Value>,
}

/// What to do with one body chunk: `data` `None` passes it through, empty drops it, anything
/// else replaces it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BodyMutation {
    /// The replacement, `None` to pass the chunk through, empty to drop it.
    pub data: Option<Body>,
    /// The chunk this applies to.
    pub chunk_index: u64,
}

impl BodyMutation {
    /// Leave chunk `chunk_index` as it is.
    pub fn pass_through(chunk_index: u64) -> Self {
        Self {
            data: None,
            chunk_index,
        }
    }

    /// Drop chunk `chunk_index`.
    pub fn drop_chunk(chunk_index: u64) -> Self {
        Self {
            data: Some(Body::default()),
            chunk_index,
        }
    }

    /// Replace chunk `chunk_index` with `data`.
    pub fn replace(chunk_index: u64, data: impl Into<Body>) -> Self {
        Self {
            data: Some(data.into()),
            chunk_index,
        }
    }
}
