#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use serde_json::json;
use zentinel_agent_protocol::{Decision, RequestHeaders};

use super::*;

fn rules(config: Value) -> RuleSet {
    RuleSet::from_config(&config).unwrap()
}

fn error(config: Value) -> String {
    RuleSet::from_config(&config).unwrap_err().to_string()
}

fn request(client_ip: &str, uri: &str, headers: &[(&str, &str)]) -> RequestHeaders {
    let mut req = RequestHeaders {
        correlation_id: "c1".to_owned(),
        method: "GET".to_owned(),
        uri: uri.to_owned(),
        ..RequestHeaders::default()
    };
    req.metadata.client_ip = client_ip.to_owned();
    for (name, value) in headers {
        req.headers
            .entry((*name).to_owned())
            .or_default()
            .push((*value).to_owned());
    }
    req
}

fn matched(set: &RuleSet, req: &RequestHeaders) -> Option<String> {
    set.first_match(req).map(|r| r.id().to_string())
}

/// The example of the README, as the proxy turns it into JSON.
fn example() -> RuleSet {
    rules(json!({
        "rule": [
            {"id": "internal-net", "client-ip": ["10.0.0.0/8", "192.0.2.7"]},
            {"id": "admin-path", "path-prefix": "/admin"},
            {"id": "env-files", "path-regex": "\\.env$"},
            {"id": "scanner", "header": "user-agent", "contains": "sqlmap"},
        ],
        "status": 403,
        "message": "Forbidden",
    }))
}

#[test]
fn each_condition_of_the_example_blocks_and_others_pass() {
    let set = example();
    let ip = "203.0.113.9";
    assert_eq!(
        matched(&set, &request("10.1.2.3", "/", &[])).as_deref(),
        Some("internal-net")
    );
    assert_eq!(
        matched(&set, &request("192.0.2.7", "/", &[])).as_deref(),
        Some("internal-net")
    );
    assert_eq!(matched(&set, &request("192.0.2.8", "/", &[])), None);
    assert_eq!(
        matched(&set, &request(ip, "/admin/users?x=1", &[])).as_deref(),
        Some("admin-path")
    );
    assert_eq!(
        matched(&set, &request(ip, "/app/.env", &[])).as_deref(),
        Some("env-files")
    );
    // The regex sees the path only, never the query.
    assert_eq!(matched(&set, &request(ip, "/app?f=.env", &[])), None);
    assert_eq!(
        matched(&set, &request(ip, "/", &[("user-agent", "SQLMap/1.7")])).as_deref(),
        Some("scanner")
    );
    assert_eq!(
        matched(&set, &request(ip, "/", &[("user-agent", "curl/8")])),
        None
    );
    assert_eq!(matched(&set, &request(ip, "/api/users", &[])), None);
}

#[test]
fn a_block_carries_status_message_and_audit_facts() {
    let set = rules(json!({
        "rule": {"id": "scanner", "header": "user-agent", "contains": "sqlmap"},
        "status": 451,
        "message": "Go away",
    }));
    let response = set.decide(&request("203.0.113.9", "/", &[("user-agent", "sqlmap")]));
    assert_eq!(response.correlation_id, "c1");
    match &response.decision {
        Decision::Block { status, body, .. } => {
            assert_eq!(*status, 451);
            assert_eq!(body.as_deref(), Some("Go away"));
        }
        other => panic!("expected a block, got {other:?}"),
    }
    assert_eq!(response.audit.rule_ids, ["scanner"]);
    assert_eq!(response.audit.tags, ["denylist"]);
    assert_eq!(response.audit.reason_codes, ["header-contains"]);
    let allowed = set.decide(&request("203.0.113.9", "/", &[]));
    assert_eq!(allowed.decision, Decision::Allow);
    assert_eq!(allowed.audit, AuditMetadata::default());
}

#[test]
fn defaults_are_403_forbidden_and_no_config_allows_everything() {
    let set = rules(json!({"rule": {"id": "all-admin", "path-prefix": "/admin"}}));
    assert_eq!((set.status(), set.message()), (403, "Forbidden"));
    let empty = rules(Value::Null);
    assert!(empty.rules().is_empty());
    assert_eq!(
        empty.decide(&request("10.0.0.1", "/admin", &[])).decision,
        Decision::Allow
    );
}

#[test]
fn every_condition_of_a_rule_must_hold() {
    let set = rules(json!({"rule": {
        "id": "admin-from-outside",
        "path-prefix": "/admin",
        "client-ip": "0.0.0.0/0",
        "header": "x-debug",
    }}));
    assert_eq!(
        matched(&set, &request("203.0.113.9", "/admin", &[("x-debug", "1")])).as_deref(),
        Some("admin-from-outside")
    );
    assert_eq!(matched(&set, &request("203.0.113.9", "/admin", &[])), None);
    assert_eq!(
        matched(&set, &request("203.0.113.9", "/", &[("x-debug", "1")])),
        None
    );
    assert_eq!(
        matched(&set, &request("2001:db8::1", "/admin", &[("x-debug", "")])),
        None
    );
    let codes = set.rules()[0].reason_codes();
    assert_eq!(codes, ["client-ip", "path-prefix", "header"]);
}

#[test]
fn the_first_matching_rule_wins() {
    let set = rules(json!({"rule": [
        {"id": "first", "path-prefix": "/a"},
        {"id": "second", "path-prefix": "/a/b"},
        {"id": "third", "path-prefix": "/c"},
    ]}));
    assert_eq!(
        matched(&set, &request("", "/a/b", &[])).as_deref(),
        Some("first")
    );
    assert_eq!(
        matched(&set, &request("", "/c", &[])).as_deref(),
        Some("third")
    );
}

#[test]
fn client_ip_handles_ipv4_ipv6_and_mapped_addresses() {
    let set = rules(json!({"rule": [
        {"id": "v4", "client-ip": ["10.0.0.0/8"]},
        {"id": "v6", "client-ip": ["2001:db8::/32", "::1"]},
    ]}));
    let hit = |ip: &str| matched(&set, &request(ip, "/", &[]));
    assert_eq!(hit("10.255.0.1").as_deref(), Some("v4"));
    assert_eq!(hit("::ffff:10.0.0.1").as_deref(), Some("v4"));
    assert_eq!(hit("2001:db8:1::5").as_deref(), Some("v6"));
    assert_eq!(hit("::1").as_deref(), Some("v6"));
    assert_eq!(hit("2001:db9::1"), None);
    assert_eq!(hit("11.0.0.1"), None);
    // No or unreadable client address: an address condition cannot hold.
    assert_eq!(hit(""), None);
    assert_eq!(hit("10.0.0.1:80"), None);
}

#[test]
fn paths_are_matched_as_received_and_normalized() {
    let set = rules(json!({"rule": [
        {"id": "admin", "path-prefix": ["/admin", "/private/"]},
        {"id": "env", "path-regex": ["\\.env$", "^/wp-"]},
    ]}));
    let hit = |uri: &str| matched(&set, &request("", uri, &[]));
    for uri in [
        "/admin",
        "/%61dmin",
        "//admin",
        "/x/../admin",
        "/./admin/x",
        "\\admin",
    ] {
        assert_eq!(hit(uri).as_deref(), Some("admin"), "{uri}");
    }
    assert_eq!(hit("/private/x").as_deref(), Some("admin"));
    assert_eq!(hit("/private"), None);
    assert_eq!(hit("/ADMIN"), None, "paths are case-sensitive");
    assert_eq!(hit("/a/.%65nv").as_deref(), Some("env"));
    assert_eq!(hit("/wp-login.php").as_deref(), Some("env"));
    assert_eq!(hit("/api/wp-x"), None);
}

#[test]
fn header_tests_look_at_every_value() {
    let set = rules(json!({"rule": [
        {"id": "bad-ua", "header": "User-Agent", "contains": ["sqlmap", "nikto"]},
        {"id": "bad-ref", "header": "referer", "matches": "^https?://evil\\."},
        {"id": "both", "header": "x-a", "contains": "yes", "matches": "^y"},
    ]}));
    let hit = |h: &[(&str, &str)]| matched(&set, &request("", "/", h));
    assert_eq!(
        hit(&[("user-agent", "ok"), ("user-agent", "Nikto 2")]).as_deref(),
        Some("bad-ua")
    );
    assert_eq!(
        hit(&[("referer", "https://evil.example/")]).as_deref(),
        Some("bad-ref")
    );
    assert_eq!(hit(&[("referer", "https://good.example/?evil.")]), None);
    assert_eq!(hit(&[("x-a", "yes")]).as_deref(), Some("both"));
    assert_eq!(
        hit(&[("x-a", "oh yes")]),
        None,
        "contains holds, matches does not"
    );
    assert_eq!(
        set.rules()[2].reason_codes(),
        ["header-contains", "header-matches"]
    );
}

#[test]
fn structure_errors_say_which_rule_and_key() {
    let cases = [
        (
            json!([1]),
            "config must be a block (a JSON object) or null, found a list",
        ),
        (
            json!({"rules": []}),
            "config: unknown key `rules` (expected one of: rule, status, message)",
        ),
        (
            json!({"rule": {"id": "x", "path-prefx": "/a"}}),
            "rule \"x\": unknown key `path-prefx` (expected one of: id, client-ip, path-prefix, path-regex, header, contains, matches)",
        ),
        (
            json!({"rule": [{"id": "a", "path-prefix": "/a"}, {"path-prefix": "/b"}]}),
            "rule #2: missing `id` (every rule needs one, for the audit log)",
        ),
        (
            json!({"rule": {"id": "lonely"}}),
            "rule \"lonely\": no condition (give at least one of client-ip, path-prefix, path-regex, header)",
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(error(config.clone()), expected, "{config}");
    }
}

#[test]
fn value_errors_quote_the_value_and_say_why() {
    let cases = [
        (
            json!({"rule": {"id": "net", "client-ip": ["10.0.0.0/8", "10.0.0.0/33"]}}),
            "rule \"net\": invalid `client-ip` value \"10.0.0.0/33\": not an IP address or CIDR network",
        ),
        (
            json!({"rule": {"id": "net", "client-ip": "10.0.0.1/8"}}),
            "rule \"net\": invalid `client-ip` value \"10.0.0.1/8\": host bits are set; write 10.0.0.0/8 for the network or 10.0.0.1 for the one address",
        ),
        (
            json!({"rule": {"id": "net", "client-ip": "localhost"}}),
            "rule \"net\": invalid `client-ip` value \"localhost\": not an IP address or CIDR network",
        ),
        (
            json!({"rule": {"id": "p", "path-prefix": "admin"}}),
            "rule \"p\": invalid `path-prefix` value \"admin\": a path prefix starts with `/`",
        ),
        (
            json!({"rule": {"id": "ua", "contains": "sqlmap"}}),
            "rule \"ua\": `contains` needs `header` (the header whose values it tests)",
        ),
        (
            json!({"rule": {"id": "ua", "header": ["a", "b"]}}),
            "rule \"ua\": `header` must be one header name (write another rule for another header), found a list",
        ),
        (
            json!({"rule": {"id": "ua", "header": "user agent"}}),
            "rule \"ua\": invalid `header` value \"user agent\": not a valid header name",
        ),
        (
            json!({"rule": {"id": "ua", "header": "user-agent", "contains": ""}}),
            "rule \"ua\": invalid `contains` value \"\": an empty string matches every value",
        ),
        (
            json!({"rule": {"id": "n", "path-prefix": 7}}),
            "rule \"n\": `path-prefix` must be a string or a list of strings, found a number",
        ),
        (
            json!({"rule": {"id": "n", "path-prefix": []}}),
            "rule \"n\": `path-prefix` must be a string or a list of strings, found an empty list",
        ),
        (
            json!({"rule": [{"id": "d", "path-prefix": "/a"}, {"id": "d", "path-prefix": "/b"}]}),
            "rule #2: id \"d\" is already used by an earlier rule",
        ),
        (
            json!({"rule": {"id": "", "path-prefix": "/a"}}),
            "rule #1: invalid `id` value \"\": must not be empty",
        ),
        (
            json!({"rule": "x"}),
            "config: `rule` must be a block or a list of blocks, found a string",
        ),
        (
            json!({"rule": {"id": 5, "path-prefix": "/a"}}),
            "rule #1: `id` must be a string, found a number",
        ),
        (
            json!({"status": 200}),
            "config: invalid `status` value \"200\": a denial must be a 4xx or 5xx status (400–599)",
        ),
        (
            json!({"status": "403"}),
            "config: `status` must be an integer, found a string",
        ),
        (
            json!({"message": true}),
            "config: `message` must be a string, found a boolean",
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(error(config.clone()), expected, "{config}");
    }
}

#[test]
fn a_bad_regex_is_refused_with_the_compiler_message() {
    let message = error(json!({"rule": {"id": "re", "path-regex": ["ok", "(unclosed"]}}));
    assert!(
        message.starts_with("rule \"re\": invalid `path-regex` value \"(unclosed\": "),
        "{message}"
    );
    assert!(message.contains("unclosed group"), "{message}");
    let message = error(json!({"rule": {"id": "re", "header": "a", "matches": "["}}));
    assert!(
        message.starts_with("rule \"re\": invalid `matches` value \"[\": "),
        "{message}"
    );
}
