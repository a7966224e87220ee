//! Every key of the schema has an effect: writing the key's documented example into a
//! baseline configuration must change the validated model. Keys whose example cannot be
//! shown that way are listed with the test that covers them instead, and the list is
//! checked too, so it cannot go stale.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use std::collections::BTreeSet;

use zentinel_config::schema::{Kind, all_blocks};

/// Where each block lives in the baseline: the marker after which keys are inserted.
/// Keys already present in the baseline are replaced instead (see `BASE_LINES`).
const BASE: &str = r#"
server { work-stealing #true; /*@server*/ }
listeners {
    listener "web" { address "127.0.0.1:8080"; /*@listeners.listener*/ }
    listener "secure" {
        address "127.0.0.1:9443"
        protocol "https"
        tls {
            cert-file "certs/site.crt"
            key-file "certs/site.key"
            sni "www.example.com" { cert-file "certs/www.crt"; key-file "certs/www.key"; /*@listeners.listener.tls.sni*/ }
            client-auth "optional" { ca-file "certs/ca.crt"; /*@listeners.listener.tls.client-auth*/ }
            /*@listeners.listener.tls*/
        }
    }
    /*@listeners*/
}
routes {
    route "r" {
        upstream "u"
        filters "a" "f"
        matches { /*@routes.route.matches*/ }
        request-headers { /*@routes.route.request-headers*/ }
        response-headers { /*@routes.route.response-headers*/ }
        timeouts { /*@routes.route.timeouts*/ }
        limits { /*@routes.route.limits*/ }
        retry { max-attempts 4; /*@routes.route.retry*/ }
        inference { provider "generic"; budget "hourly" { limit 1000; /*@routes.route.inference.budget*/ }; /*@routes.route.inference*/ }
        /*@routes.route*/
    }
    route "fallback" { upstream "u"; }
    route "static" { upstream "u"; }
    route "api" { upstream "u"; }
    /*@routes*/
}
upstreams {
    upstream "u" {
        target "127.0.0.1:3000" /*@upstreams.upstream.target*/
        health-check { http "/health" { /*@upstreams.upstream.health-check.http*/ }; /*@upstreams.upstream.health-check*/ }
        passive-health { /*@upstreams.upstream.passive-health*/ }
        timeouts { /*@upstreams.upstream.timeouts*/ }
        connection-pool { /*@upstreams.upstream.connection-pool*/ }
        tls { /*@upstreams.upstream.tls*/ }
        /*@upstreams.upstream*/
    }
    upstream "backend" { target "127.0.0.1:3001"; }
    /*@upstreams*/
}
agents {
    agent "a" {
        transport { unix-socket "/run/a.sock"; /*@agents.agent.transport*/ }
        events "request-headers" "request-body" "response-body"
        circuit-breaker { /*@agents.agent.circuit-breaker*/ }
        /*@agents.agent*/
    }
    agent "waf" { transport { unix-socket "/run/waf.sock"; }; events "request-headers"; }
    /*@agents*/
}
filters {
    filter "f" { type "rate-limit"; requests-per-second 50; /*@filters.filter*/ }
    filter "per-ip" { type "rate-limit"; requests-per-second 5; backend "redis" { url "redis://127.0.0.1:6379"; /*@filters.filter.backend*/ }; }
    /*@filters*/
}
limits { /*@limits*/ }
observability {
    access-log { /*@observability.access-log*/ }
    audit-log { /*@observability.audit-log*/ }
    error-log { /*@observability.error-log*/ }
    metrics { /*@observability.metrics*/ }
    /*@observability*/
}
admin { address "127.0.0.1:9901"; /*@admin*/ }
/*@*/
"#;

/// Baseline lines that a key's example replaces rather than joins: (block, key, text).
const BASE_LINES: &[(&str, &str, &str)] = &[
    (
        "listeners.listener",
        "address",
        r#"address "127.0.0.1:8080";"#,
    ),
    ("routes.route", "upstream", r#"upstream "u""#),
    ("routes.route", "filters", r#"filters "a" "f""#),
    ("routes.route.retry", "max-attempts", "max-attempts 4;"),
    (
        "routes.route.inference",
        "provider",
        r#"provider "generic";"#,
    ),
    ("routes.route.inference.budget", "limit", "limit 1000;"),
    (
        "agents.agent",
        "events",
        r#"events "request-headers" "request-body" "response-body""#,
    ),
    (
        "agents.agent.transport",
        "unix-socket",
        r#"unix-socket "/run/a.sock";"#,
    ),
    ("upstreams.upstream", "target", r#"target "127.0.0.1:3000""#),
    (
        "upstreams.upstream.health-check",
        "http",
        r#"http "/health" { /*@upstreams.upstream.health-check.http*/ };"#,
    ),
    ("filters.filter", "type", r#"type "rate-limit";"#),
    (
        "filters.filter",
        "requests-per-second",
        "requests-per-second 50;",
    ),
    (
        "filters.filter.backend",
        "url",
        r#"url "redis://127.0.0.1:6379";"#,
    ),
    ("admin", "address", r#"address "127.0.0.1:9901";"#),
    (
        "listeners.listener.tls",
        "cert-file",
        r#"cert-file "certs/site.crt""#,
    ),
    (
        "listeners.listener.tls",
        "key-file",
        r#"key-file "certs/site.key""#,
    ),
    (
        "listeners.listener.tls",
        "client-auth",
        r#"client-auth "optional" { ca-file "certs/ca.crt"; /*@listeners.listener.tls.client-auth*/ }"#,
    ),
    (
        "listeners.listener.tls.sni",
        "cert-file",
        r#"cert-file "certs/www.crt";"#,
    ),
    (
        "listeners.listener.tls.sni",
        "key-file",
        r#"key-file "certs/www.key";"#,
    ),
    (
        "listeners.listener.tls.client-auth",
        "ca-file",
        r#"ca-file "certs/ca.crt";"#,
    ),
];

/// Keys whose example cannot change this baseline alone, and the test that proves their
/// effect instead.
const COVERED_ELSEWHERE: &[(&str, &str, &str)] = &[
    (
        "",
        "include",
        "loader::include_* in tests/loader.rs (needs files)",
    ),
    // Collection items: their keys are tested one by one.
    ("listeners", "listener", "block"),
    ("routes", "route", "block"),
    ("upstreams", "upstream", "block"),
    ("agents", "agent", "block"),
    ("filters", "filter", "block"),
    (
        "listeners.listener",
        "protocol",
        "https needs tls: tests/rules/listeners.rs https_listener_needs_tls",
    ),
    (
        "agents.agent.transport",
        "grpc",
        "exclusive with unix-socket: tests/rules/routes.rs transport_grpc",
    ),
    (
        "upstreams.upstream.health-check",
        "tcp",
        "exclusive with http: tests/rules/upstreams.rs health_check_tcp",
    ),
    (
        "upstreams.upstream",
        "dns-refresh-ms",
        "needs a host-name target: tests/rules/upstreams.rs dns_refresh_needs_a_host_name",
    ),
    (
        "server",
        "work-stealing",
        "on in the baseline, which has a response-body agent: tests/rules/routes.rs response_body_agents_need_work_stealing; the runtime it picks: server.rs worker_runtime_follows_work_stealing_and_worker_threads",
    ),
    (
        "upstreams.upstream",
        "hash-on",
        "needs consistent-hash: tests/rules/upstreams.rs hash_on_*",
    ),
    (
        "upstreams.upstream.tls",
        "key-file",
        "pairs with cert-file: tests/rules/upstreams.rs upstream_client_cert",
    ),
    (
        "upstreams.upstream.tls",
        "cert-file",
        "pairs with key-file: tests/rules/upstreams.rs upstream_client_cert",
    ),
    (
        "observability.access-log",
        "path",
        "needs destination file: tests/rules/diagnostics.rs log_file_path",
    ),
    (
        "observability.audit-log",
        "path",
        "needs destination file: tests/rules/diagnostics.rs log_file_path",
    ),
    (
        "observability.error-log",
        "path",
        "needs destination file: tests/rules/diagnostics.rs log_file_path",
    ),
    (
        "filters.filter",
        "type",
        "one type so far, required: tests/rules/routes.rs filter_type",
    ),
    (
        "filters.filter",
        "max-delay-ms",
        "needs on-limit delay: tests/rules/routes.rs rate_limit_delay",
    ),
];

fn insert(block: &str, key: &str, example: &str) -> String {
    if let Some((_, _, line)) = BASE_LINES.iter().find(|(b, k, _)| *b == block && *k == key) {
        assert!(
            BASE.contains(line),
            "baseline line for {block}.{key} missing"
        );
        return BASE.replacen(line, &format!("{example};"), 1);
    }
    let marker = format!("/*@{block}*/");
    assert!(
        BASE.contains(&marker),
        "no marker for block `{block}` in the baseline"
    );
    BASE.replacen(&marker, &format!("{example}; {marker}"), 1)
}

fn load(text: &str) -> Result<serde_json::Value, String> {
    zentinel_config::load_str("every-key.kdl", text)
        .map(|c| c.to_json())
        .map_err(|d| d.to_string())
}

#[test]
fn every_key_example_changes_the_validated_config() {
    let base = load(BASE).unwrap_or_else(|e| panic!("baseline does not load:\n{e}"));
    let mut failures = Vec::new();
    let mut skipped = BTreeSet::new();
    for block in all_blocks() {
        for key in block.keys {
            if COVERED_ELSEWHERE
                .iter()
                .any(|(b, k, _)| *b == block.path && *k == key.name)
            {
                skipped.insert((block.path, key.name));
                continue;
            }
            // A block has no value of its own; each of its keys is tested.
            if matches!(key.kind, Kind::Block(_)) {
                continue;
            }
            let text = insert(block.path, key.name, key.example);
            match load(&text) {
                Ok(v) if v != base => {}
                Ok(_) => failures.push(format!(
                    "{}.{}: example `{}` changes nothing",
                    block.path, key.name, key.example
                )),
                Err(e) => failures.push(format!(
                    "{}.{}: example `{}` is rejected:\n{e}",
                    block.path, key.name, key.example
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} keys without a visible effect:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every exception must name a real key, so the list cannot outlive the schema.
    for (b, k, _) in COVERED_ELSEWHERE {
        assert!(
            skipped.contains(&(*b, *k)),
            "COVERED_ELSEWHERE names `{b}.{k}`, which the schema does not declare"
        );
    }
}
