//! The rule engine: an ordered list of rules, each a conjunction of conditions on the client
//! address, the path and the headers. The first rule whose conditions all hold blocks.
//!
//! It never allocates per rule: the request is looked at once ([`Request`]), then every rule
//! is tested against that view.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use regex::Regex;
use serde_json::Value;
use zentinel_agent_protocol::{AgentResponse, AuditMetadata, Headers, RequestHeaders};

use crate::config::{self, ConfigError};
use crate::path;

/// The tag every denylist block carries in its audit metadata.
pub const AUDIT_TAG: &str = "denylist";

/// A rule's identifier, as written in the config and reported in `audit.rule_ids`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleId(String);

impl RuleId {
    pub(crate) fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One test of a rule.
#[derive(Debug, Clone)]
pub(crate) enum Condition {
    /// The trusted client address is in one of these networks.
    ClientIp(Vec<IpNet>),
    /// The path starts with one of these prefixes.
    PathPrefix(Vec<String>),
    /// One of these expressions matches the path.
    PathRegex(Vec<Regex>),
    /// A test on the values of header `name` (lower-case).
    Header { name: String, test: HeaderTest },
}

/// What a header condition checks.
#[derive(Debug, Clone)]
pub(crate) enum HeaderTest {
    /// The header is present (with any value).
    Present,
    /// One value contains one of these (lower-case) substrings, ignoring ASCII case.
    Contains(Vec<String>),
    /// One of these expressions matches one value.
    Matches(Vec<Regex>),
}

impl HeaderTest {
    /// The config key that introduces this test.
    pub(crate) fn key(&self) -> &'static str {
        match self {
            Self::Present => "header",
            Self::Contains(_) => "contains",
            Self::Matches(_) => "matches",
        }
    }
}

impl Condition {
    /// The position of this kind of condition in a rule (cheapest tests first).
    fn rank(&self) -> u8 {
        match self {
            Self::ClientIp(_) => 0,
            Self::PathPrefix(_) => 1,
            Self::PathRegex(_) => 2,
            Self::Header { .. } => 3,
        }
    }

    /// The reason code reported when this condition held.
    fn reason_code(&self) -> &'static str {
        match self {
            Self::ClientIp(_) => "client-ip",
            Self::PathPrefix(_) => "path-prefix",
            Self::PathRegex(_) => "path-regex",
            Self::Header {
                test: HeaderTest::Present,
                ..
            } => "header",
            Self::Header {
                test: HeaderTest::Contains(_),
                ..
            } => "header-contains",
            Self::Header {
                test: HeaderTest::Matches(_),
                ..
            } => "header-matches",
        }
    }

    fn holds(&self, req: &Request<'_>) -> bool {
        match self {
            Self::ClientIp(nets) => req
                .client_ip
                .is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
            Self::PathPrefix(prefixes) => req
                .paths()
                .any(|p| prefixes.iter().any(|x| p.starts_with(x.as_str()))),
            Self::PathRegex(res) => req.paths().any(|p| res.iter().any(|re| re.is_match(p))),
            Self::Header { name, test } => {
                let values = req.headers.get(name).map(Vec::as_slice).unwrap_or_default();
                match test {
                    HeaderTest::Present => !values.is_empty(),
                    HeaderTest::Contains(needles) => values
                        .iter()
                        .any(|v| needles.iter().any(|n| contains_ignore_ascii_case(v, n))),
                    HeaderTest::Matches(res) => {
                        values.iter().any(|v| res.iter().any(|re| re.is_match(v)))
                    }
                }
            }
        }
    }
}

/// A rule: an id and conditions that must all hold.
#[derive(Debug, Clone)]
pub struct Rule {
    id: RuleId,
    conditions: Vec<Condition>,
    reason_codes: Vec<String>,
}

impl Rule {
    /// A rule testing `conditions`; they are kept (and reported) in a fixed order: client
    /// address, path prefix, path regex, header tests.
    pub(crate) fn new(id: RuleId, mut conditions: Vec<Condition>) -> Self {
        conditions.sort_by_key(Condition::rank);
        let reason_codes = conditions
            .iter()
            .map(|c| c.reason_code().to_owned())
            .collect();
        Self {
            id,
            conditions,
            reason_codes,
        }
    }

    /// The rule's id.
    pub fn id(&self) -> &RuleId {
        &self.id
    }

    /// One code per condition, naming it (`client-ip`, `path-prefix`, `path-regex`, `header`,
    /// `header-contains`, `header-matches`): what `audit.reason_codes` reports.
    pub fn reason_codes(&self) -> &[String] {
        &self.reason_codes
    }

    fn matches(&self, req: &Request<'_>) -> bool {
        self.conditions.iter().all(|c| c.holds(req))
    }
}

/// The validated configuration: rules in order, and the answer to give when one matches.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    status: u16,
    message: String,
}

impl Default for RuleSet {
    /// No rules: every request is allowed.
    fn default() -> Self {
        Self::new(Vec::new(), config::DEFAULT_STATUS, config::DEFAULT_MESSAGE)
    }
}

impl RuleSet {
    pub(crate) fn new(rules: Vec<Rule>, status: u16, message: impl Into<String>) -> Self {
        Self {
            rules,
            status,
            message: message.into(),
        }
    }

    /// Parses the agent's `config {}` block (as the proxy sends it: JSON). `null` is an empty
    /// rule set.
    pub fn from_config(config: &Value) -> Result<Self, ConfigError> {
        config::parse(config)
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The status of a block.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body of a block.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The first rule whose conditions all hold for `req`, if any.
    pub fn first_match(&self, req: &RequestHeaders) -> Option<&Rule> {
        let view = Request::new(req);
        self.rules.iter().find(|r| r.matches(&view))
    }

    /// The answer to `req`: a block with the rule's id, the `denylist` tag and the rule's
    /// reason codes in its audit metadata, or allow.
    pub fn decide(&self, req: &RequestHeaders) -> AgentResponse {
        let Some(rule) = self.first_match(req) else {
            return AgentResponse::allow(&req.correlation_id);
        };
        let mut response = AgentResponse::block(&req.correlation_id, self.status, &self.message);
        let mut audit = AuditMetadata::default();
        audit.rule_ids = vec![rule.id.as_str().to_owned()];
        audit.tags = vec![AUDIT_TAG.to_owned()];
        audit.reason_codes = rule.reason_codes.clone();
        response.audit = audit;
        response
    }
}

/// What the rules look at, computed once per request.
struct Request<'a> {
    client_ip: Option<IpAddr>,
    path: &'a str,
    /// The path after percent-decoding, `//` folding and dot-segment removal, when that
    /// differs from `path`.
    normalized: Option<String>,
    headers: &'a Headers,
}

impl<'a> Request<'a> {
    fn new(req: &'a RequestHeaders) -> Self {
        let path = path::of_uri(&req.uri);
        Self {
            // IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are the IPv4 address.
            client_ip: req
                .metadata
                .client_ip
                .parse::<IpAddr>()
                .ok()
                .map(|ip| ip.to_canonical()),
            path,
            normalized: path::normalize(path),
            headers: &req.headers,
        }
    }

    /// The path as received and, when different, normalized: a path condition holds when it
    /// holds for either, so `/%61dmin` and `//admin` cannot slip past `/admin`.
    fn paths(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.path).chain(self.normalized.as_deref())
    }
}

fn contains_ignore_ascii_case(haystack: &str, lower_needle: &str) -> bool {
    let needle = lower_needle.as_bytes();
    if needle.is_empty() {
        return true;
    }
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests;
