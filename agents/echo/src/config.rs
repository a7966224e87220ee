//! The echo agent's configuration: headers to add to requests and responses, from the JSON
//! the proxy makes of the agent's KDL `config {}` block:
//! `{"request-headers": {"x-demo": "1"}, "response-headers": {"x-seen-by": "echo"}}`.
//!
//! Nothing is ignored: an unknown key, an invalid header name or a value that could not be
//! sent in a header is an [`EchoConfigError`].

use serde_json::{Map, Value};
use zentinel_agent_protocol::HeaderOp;

/// Why an echo configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EchoConfigError {
    /// The configuration is neither an object nor null.
    #[error("config must be a block (a JSON object) or null, found {found}")]
    NotABlock {
        /// What was found instead.
        found: &'static str,
    },
    /// A key this agent does not know.
    #[error("config: unknown key `{0}` (expected one of: request-headers, response-headers)")]
    UnknownKey(String),
    /// `request-headers` or `response-headers` is not a block.
    #[error("`{key}` must be a block of `name \"value\"` entries, found {found}")]
    NotHeaders {
        /// The key.
        key: &'static str,
        /// What was found instead.
        found: &'static str,
    },
    /// A header name that is not an HTTP token.
    #[error("`{key}`: {name:?} is not a valid header name")]
    BadName {
        /// `request-headers` or `response-headers`.
        key: &'static str,
        /// The name as written.
        name: String,
    },
    /// A value that is not a string, number or boolean (or a list of them), or that holds a
    /// control character.
    #[error("`{key}`: header {name:?}: {problem}")]
    BadValue {
        /// `request-headers` or `response-headers`.
        key: &'static str,
        /// The header.
        name: String,
        /// What is wrong with the value.
        problem: &'static str,
    },
}

/// The validated configuration: header operations for requests and responses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EchoConfig {
    request: Vec<HeaderOp>,
    response: Vec<HeaderOp>,
}

impl EchoConfig {
    /// Parses the agent's `config {}` block as JSON; `null` adds nothing.
    ///
    /// Request headers become `set` operations (several values: `set` the first, `add` the
    /// others); response headers become `add` operations, one per value.
    pub fn from_config(config: &Value) -> Result<Self, EchoConfigError> {
        let top = match config {
            Value::Null => return Ok(Self::default()),
            Value::Object(m) => m,
            other => return Err(EchoConfigError::NotABlock { found: kind(other) }),
        };
        let mut parsed = Self::default();
        for (key, value) in top {
            match key.as_str() {
                "request-headers" => parsed.request = ops("request-headers", value, true)?,
                "response-headers" => parsed.response = ops("response-headers", value, false)?,
                _ => return Err(EchoConfigError::UnknownKey(key.clone())),
            }
        }
        Ok(parsed)
    }

    /// Operations on the request headers sent upstream.
    pub fn request_headers(&self) -> &[HeaderOp] {
        &self.request
    }

    /// Operations on the response headers sent to the client.
    pub fn response_headers(&self) -> &[HeaderOp] {
        &self.response
    }
}

fn ops(key: &'static str, value: &Value, replace: bool) -> Result<Vec<HeaderOp>, EchoConfigError> {
    let entries: &Map<String, Value> = match value {
        Value::Object(m) => m,
        other => {
            return Err(EchoConfigError::NotHeaders {
                key,
                found: kind(other),
            });
        }
    };
    let mut out = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        if !is_token(name) {
            return Err(EchoConfigError::BadName {
                key,
                name: name.clone(),
            });
        }
        let name = name.to_ascii_lowercase();
        let bad = |problem| EchoConfigError::BadValue {
            key,
            name: name.clone(),
            problem,
        };
        let values = match value {
            Value::Array(items) if items.is_empty() => return Err(bad("an empty list")),
            Value::Array(items) => items.iter().map(scalar).collect::<Option<Vec<_>>>(),
            one => scalar(one).map(|v| vec![v]),
        }
        .ok_or_else(|| bad("a value must be a string, a number or a boolean"))?;
        for (i, v) in values.into_iter().enumerate() {
            if v.chars().any(|c| c.is_control() && c != '\t') {
                return Err(bad("a value must not hold control characters"));
            }
            out.push(if replace && i == 0 {
                HeaderOp::set(name.clone(), v)
            } else {
                HeaderOp::add(name.clone(), v)
            });
        }
    }
    Ok(out)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An HTTP header name (RFC 9110 token).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a block",
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

    use serde_json::json;

    use super::*;

    #[test]
    fn headers_become_set_for_requests_and_add_for_responses() {
        let c = EchoConfig::from_config(&json!({
            "request-headers": {"X-Demo": "1", "x-multi": ["a", 2, true]},
            "response-headers": {"x-seen-by": "echo", "x-n": [1, 2]},
        }))
        .unwrap();
        assert_eq!(
            c.request_headers(),
            [
                HeaderOp::set("x-demo", "1"),
                HeaderOp::set("x-multi", "a"),
                HeaderOp::add("x-multi", "2"),
                HeaderOp::add("x-multi", "true"),
            ]
        );
        assert_eq!(
            c.response_headers(),
            [
                HeaderOp::add("x-n", "1"),
                HeaderOp::add("x-n", "2"),
                HeaderOp::add("x-seen-by", "echo"),
            ]
        );
        assert_eq!(
            EchoConfig::from_config(&Value::Null).unwrap(),
            EchoConfig::default()
        );
        assert_eq!(
            EchoConfig::from_config(&json!({})).unwrap(),
            EchoConfig::default()
        );
    }

    #[test]
    fn bad_configs_are_refused_with_the_key_at_fault() {
        let cases = [
            (
                json!("x"),
                "config must be a block (a JSON object) or null, found a string",
            ),
            (
                json!({"request-header": {}}),
                "config: unknown key `request-header` (expected one of: request-headers, response-headers)",
            ),
            (
                json!({"request-headers": "x-demo"}),
                "`request-headers` must be a block of `name \"value\"` entries, found a string",
            ),
            (
                json!({"response-headers": {"x demo": "1"}}),
                "`response-headers`: \"x demo\" is not a valid header name",
            ),
            (
                json!({"request-headers": {"x-a": {"b": 1}}}),
                "`request-headers`: header \"x-a\": a value must be a string, a number or a boolean",
            ),
            (
                json!({"request-headers": {"x-a": "1\r\nx-evil: 1"}}),
                "`request-headers`: header \"x-a\": a value must not hold control characters",
            ),
            (
                json!({"request-headers": {"x-a": []}}),
                "`request-headers`: header \"x-a\": an empty list",
            ),
            (
                json!({"request-headers": {"x-a": null}}),
                "`request-headers`: header \"x-a\": a value must be a string, a number or a boolean",
            ),
        ];
        for (config, expected) in cases {
            let e = EchoConfig::from_config(&config).unwrap_err();
            assert_eq!(e.to_string(), expected, "{config}");
        }
    }
}
