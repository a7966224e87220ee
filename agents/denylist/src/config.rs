//! The denylist's configuration: the JSON the proxy makes of the agent's KDL `config {}` block,
//! parsed into a [`RuleSet`]. Parse, don't validate: every CIDR, regex and status is checked
//! and typed here, so the engine never sees a bad value.
//!
//! Nothing is ignored: an unknown key, a value of the wrong type, a rule without `id` or
//! without any condition is a [`ConfigError`] naming the rule and the key at fault.

use std::collections::HashSet;

use ipnet::IpNet;
use regex::Regex;
use serde_json::{Map, Value};

use crate::rules::{Condition, HeaderTest, Rule, RuleId, RuleSet};

/// The status of a block when the config does not say.
pub const DEFAULT_STATUS: u16 = 403;
/// The body of a block when the config does not say.
pub const DEFAULT_MESSAGE: &str = "Forbidden";

const TOP_KEYS: &str = "rule, status, message";
const RULE_KEYS: &str = "id, client-ip, path-prefix, path-regex, header, contains, matches";

/// Why a denylist configuration was refused. The message names the rule (by `id`, or by
/// position when it has none) and the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration is neither an object nor null.
    #[error("config must be a block (a JSON object) or null, found {found}")]
    NotABlock {
        /// What was found instead.
        found: &'static str,
    },
    /// A key this agent does not know.
    #[error("{at}: unknown key `{key}` (expected one of: {expected})")]
    UnknownKey {
        /// Where: `config` or `rule "id"`.
        at: String,
        /// The unknown key.
        key: String,
        /// The keys allowed there.
        expected: &'static str,
    },
    /// A value of the wrong JSON type.
    #[error("{at}: `{key}` must be {expected}, found {found}")]
    WrongType {
        /// Where: `config` or `rule "id"`.
        at: String,
        /// The key whose value is wrong.
        key: String,
        /// What the key takes.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A value of the right type that is not acceptable (bad CIDR, bad regex, bad status…).
    #[error("{at}: invalid `{key}` value {value:?}: {detail}")]
    InvalidValue {
        /// Where: `config` or `rule "id"`.
        at: String,
        /// The key whose value is wrong.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A rule without `id`.
    #[error("{at}: missing `id` (every rule needs one, for the audit log)")]
    MissingId {
        /// Which rule, by position (`rule #2`).
        at: String,
    },
    /// Two rules with the same `id`.
    #[error("{at}: id {id:?} is already used by an earlier rule")]
    DuplicateId {
        /// Which rule, by position.
        at: String,
        /// The repeated id.
        id: String,
    },
    /// A rule that tests nothing (it would block every request).
    #[error("{at}: no condition (give at least one of client-ip, path-prefix, path-regex, header)")]
    NoCondition {
        /// Which rule.
        at: String,
    },
    /// `contains` or `matches` without the `header` whose values they test.
    #[error("{at}: `{key}` needs `header` (the header whose values it tests)")]
    NeedsHeader {
        /// Which rule.
        at: String,
        /// `contains` or `matches`.
        key: &'static str,
    },
}

/// Parses the agent's configuration. `null` (no `config {}` block) is an empty rule set,
/// which allows everything.
pub(crate) fn parse(config: &Value) -> Result<RuleSet, ConfigError> {
    let top = match config {
        Value::Null => return Ok(RuleSet::default()),
        Value::Object(m) => m,
        other => return Err(ConfigError::NotABlock { found: kind(other) }),
    };
    let at = "config";
    let mut rules = Vec::new();
    let mut status = DEFAULT_STATUS;
    let mut message = DEFAULT_MESSAGE.to_owned();
    for (key, value) in top {
        match key.as_str() {
            "rule" => rules = parse_rules(value)?,
            "status" => status = parse_status(value)?,
            "message" => message = string(at, key, value)?.to_owned(),
            _ => return Err(unknown(at, key, TOP_KEYS)),
        }
    }
    Ok(RuleSet::new(rules, status, message))
}

fn parse_rules(value: &Value) -> Result<Vec<Rule>, ConfigError> {
    let blocks: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    let mut seen = HashSet::new();
    let mut rules = Vec::with_capacity(blocks.len());
    for (i, block) in blocks.into_iter().enumerate() {
        let position = format!("rule #{}", i + 1);
        let Value::Object(fields) = block else {
            return Err(ConfigError::WrongType {
                at: "config".to_owned(),
                key: "rule".to_owned(),
                expected: "a block or a list of blocks",
                found: kind(block),
            });
        };
        let rule = parse_rule(&position, fields)?;
        if !seen.insert(rule.id().as_str().to_owned()) {
            return Err(ConfigError::DuplicateId {
                at: position,
                id: rule.id().as_str().to_owned(),
            });
        }
        rules.push(rule);
    }
    Ok(rules)
}

fn parse_rule(position: &str, fields: &Map<String, Value>) -> Result<Rule, ConfigError> {
    let id = match fields.get("id") {
        None => {
            return Err(ConfigError::MissingId {
                at: position.to_owned(),
            });
        }
        Some(v) => string(position, "id", v)?,
    };
    if id.is_empty() {
        return Err(invalid(position, "id", id, "must not be empty"));
    }
    let at = format!("rule {id:?}");
    let mut conditions = Vec::new();
    let mut header: Option<String> = None;
    let mut header_tests = Vec::new();
    for (key, value) in fields {
        match key.as_str() {
            "id" => {}
            "client-ip" => conditions.push(Condition::ClientIp(client_ips(&at, value)?)),
            "path-prefix" => conditions.push(Condition::PathPrefix(path_prefixes(&at, value)?)),
            "path-regex" => {
                conditions.push(Condition::PathRegex(regexes(&at, "path-regex", value)?));
            }
            "header" => header = Some(header_name(&at, value)?),
            "contains" => header_tests.push(HeaderTest::Contains(needles(&at, value)?)),
            "matches" => header_tests.push(HeaderTest::Matches(regexes(&at, "matches", value)?)),
            _ => return Err(unknown(&at, key, RULE_KEYS)),
        }
    }
    match header {
        Some(name) if header_tests.is_empty() => conditions.push(Condition::Header {
            name,
            test: HeaderTest::Present,
        }),
        Some(name) => conditions.extend(header_tests.into_iter().map(|test| Condition::Header {
            name: name.clone(),
            test,
        })),
        None => {
            if let Some(t) = header_tests.first() {
                return Err(ConfigError::NeedsHeader { at, key: t.key() });
            }
        }
    }
    if conditions.is_empty() {
        return Err(ConfigError::NoCondition { at });
    }
    Ok(Rule::new(RuleId::new(id), conditions))
}

fn parse_status(value: &Value) -> Result<u16, ConfigError> {
    let Some(n) = value.as_u64() else {
        return Err(ConfigError::WrongType {
            at: "config".to_owned(),
            key: "status".to_owned(),
            expected: "an integer",
            found: kind(value),
        });
    };
    match u16::try_from(n) {
        Ok(s @ 400..=599) => Ok(s),
        _ => Err(invalid(
            "config",
            "status",
            &n.to_string(),
            "a denial must be a 4xx or 5xx status (400–599)",
        )),
    }
}

fn client_ips(at: &str, value: &Value) -> Result<Vec<IpNet>, ConfigError> {
    strings(at, "client-ip", value)?
        .into_iter()
        .map(|s| parse_net(s).map_err(|detail| invalid(at, "client-ip", s, &detail)))
        .collect()
}

/// An address (`192.0.2.7`, `2001:db8::1`) or a network in CIDR form (`10.0.0.0/8`). A
/// network with host bits set (`10.0.0.1/8`) is refused: it is ambiguous which was meant.
fn parse_net(s: &str) -> Result<IpNet, String> {
    if s.contains('/') {
        let net: IpNet = s
            .parse()
            .map_err(|_| "not an IP address or CIDR network".to_owned())?;
        if net.trunc() != net {
            return Err(format!(
                "host bits are set; write {} for the network or {} for the one address",
                net.trunc(),
                net.addr()
            ));
        }
        Ok(net)
    } else {
        s.parse::<std::net::IpAddr>()
            .map(IpNet::from)
            .map_err(|_| "not an IP address or CIDR network".to_owned())
    }
}

fn path_prefixes(at: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
    strings(at, "path-prefix", value)?
        .into_iter()
        .map(|s| {
            if s.starts_with('/') {
                Ok(s.to_owned())
            } else {
                Err(invalid(
                    at,
                    "path-prefix",
                    s,
                    "a path prefix starts with `/`",
                ))
            }
        })
        .collect()
}

fn regexes(at: &str, key: &'static str, value: &Value) -> Result<Vec<Regex>, ConfigError> {
    strings(at, key, value)?
        .into_iter()
        .map(|s| Regex::new(s).map_err(|e| invalid(at, key, s, &e.to_string())))
        .collect()
}

fn header_name(at: &str, value: &Value) -> Result<String, ConfigError> {
    let Value::String(name) = value else {
        return Err(ConfigError::WrongType {
            at: at.to_owned(),
            key: "header".to_owned(),
            expected: "one header name (write another rule for another header)",
            found: kind(value),
        });
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(invalid(at, "header", name, "not a valid header name"));
    }
    Ok(name.to_ascii_lowercase())
}

/// `contains` substrings, compared ASCII case-insensitively (stored lower-case).
fn needles(at: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
    strings(at, "contains", value)?
        .into_iter()
        .map(|s| {
            if s.is_empty() {
                Err(invalid(
                    at,
                    "contains",
                    s,
                    "an empty string matches every value",
                ))
            } else {
                Ok(s.to_ascii_lowercase())
            }
        })
        .collect()
}

/// A string, or a non-empty list of strings.
fn strings<'v>(at: &str, key: &str, value: &'v Value) -> Result<Vec<&'v str>, ConfigError> {
    let wrong = |found| ConfigError::WrongType {
        at: at.to_owned(),
        key: key.to_owned(),
        expected: "a string or a list of strings",
        found,
    };
    match value {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) if items.is_empty() => Err(wrong("an empty list")),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| wrong(kind(v))))
            .collect(),
        other => Err(wrong(kind(other))),
    }
}

fn string<'v>(at: &str, key: &str, value: &'v Value) -> Result<&'v str, ConfigError> {
    value.as_str().ok_or_else(|| ConfigError::WrongType {
        at: at.to_owned(),
        key: key.to_owned(),
        expected: "a string",
        found: kind(value),
    })
}

fn unknown(at: &str, key: &str, expected: &'static str) -> ConfigError {
    ConfigError::UnknownKey {
        at: at.to_owned(),
        key: key.to_owned(),
        expected,
    }
}

fn invalid(at: &str, key: &'static str, value: &str, detail: &str) -> ConfigError {
    ConfigError::InvalidValue {
        at: at.to_owned(),
        key,
        value: value.to_owned(),
        detail: detail.to_owned(),
    }
}

/// How a JSON value is described in error messages (in KDL terms where they differ).
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
