//! Schema of routes and upstream pools.

use super::{BlockSchema, Default as D, Form, KeySchema as K, Kind};
use crate::model::{BudgetMode, FailureMode, LoadBalancing, Provider, RetryOn, Tokenizer};

const MS_HOUR: i64 = 3_600_000;

pub(super) static ROUTES: BlockSchema = BlockSchema {
    path: "routes",
    syntax: "routes { … }",
    doc: "Routes, tried from the highest `priority` down; equal priorities keep definition order. The first route whose conditions all hold wins.",
    form: Form::Children,
    keys: &[K::new(
        "route",
        Kind::Named {
            arg: "id",
            block: &ROUTE,
        },
        D::Required,
        "A route with its ID.",
        r#"route "api" { matches { path-prefix "/api/"; }; upstream "backend"; }"#,
    )
    .repeatable()],
};

static ROUTE: BlockSchema = BlockSchema {
    path: "routes.route",
    syntax: r#"route "<id>" { … }"#,
    doc: "What a set of requests matches and how they are handled.",
    form: Form::Children,
    keys: &[
        K::new(
            "priority",
            Kind::Int {
                min: -1_000_000,
                max: 1_000_000,
                unit: "",
            },
            D::Int(0),
            "Higher is tried first; ties keep definition order.",
            "priority 100",
        ),
        K::new(
            "matches",
            Kind::Block(&MATCHES),
            D::Computed("every request"),
            "Conditions a request must meet (all of them). Absent or empty: the route matches every request.",
            r#"matches { path-prefix "/api/"; method "GET" "POST"; }"#,
        ),
        K::new(
            "upstream",
            Kind::Str,
            D::Required,
            "ID of the upstream pool requests are sent to.",
            r#"upstream "backend""#,
        ),
        K::new(
            "filters",
            Kind::StrList,
            D::None,
            "Agents and built-in filters applied to this route's requests, in order, by ID.",
            r#"filters "per-ip" "waf""#,
        ),
        K::new(
            "failure-mode",
            Kind::Enum(FailureMode::NAMES),
            D::Computed("each agent's own `failure-mode`"),
            "What happens when an agent of this route cannot answer: `closed` denies the request (504 on timeout, 503 otherwise), `open` lets it through and logs the gap. Needs an agent in `filters`.",
            r#"failure-mode "open""#,
        ),
        K::new(
            "request-headers",
            Kind::Block(&HEADER_POLICY_REQUEST),
            D::None,
            "Edits of the request headers sent upstream.",
            r#"request-headers { set "x-env" "prod"; remove "x-debug"; }"#,
        ),
        K::new(
            "response-headers",
            Kind::Block(&HEADER_POLICY_RESPONSE),
            D::None,
            "Edits of the response headers sent to the client.",
            r#"response-headers { add "strict-transport-security" "max-age=31536000"; }"#,
        ),
        K::new(
            "timeouts",
            Kind::Block(&ROUTE_TIMEOUTS),
            D::None,
            "Deadlines of the route's requests.",
            "timeouts { total-ms 30000; }",
        ),
        K::new(
            "limits",
            Kind::Block(&ROUTE_LIMITS),
            D::None,
            "Limits for this route, overriding the global `limits`.",
            "limits { max-body-bytes 1048576; }",
        ),
        K::new(
            "retry",
            Kind::Block(&RETRY),
            D::None,
            "When a failed request is tried again.",
            r#"retry { max-attempts 3; retry-on "connect-error" "503"; }"#,
        ),
        K::new(
            "websocket",
            Kind::Bool,
            D::Bool(false),
            "Whether WebSocket upgrades pass through; when #false an upgrade request is refused.",
            "websocket #true",
        ),
        K::new(
            "inference",
            Kind::Block(&INFERENCE),
            D::None,
            "Token-aware limits for LLM traffic: prompts are counted before forwarding, and the real usage of the answer is charged after.",
            r#"inference { provider "openai"; key "header:authorization"; tokens-per-minute 100000; }"#,
        ),
    ],
};

static INFERENCE: BlockSchema = BlockSchema {
    path: "routes.route.inference",
    syntax: "inference { … }",
    doc: "Token-aware limits for an LLM API. The request body is held until it is complete and its prompt counted; a request over a limit is answered 429 without reaching the upstream's model. The answer's `usage` (plain JSON or server-sent events) is charged when it ends. See docs/inference.md.",
    form: Form::Children,
    keys: &[
        K::new(
            "provider",
            Kind::Enum(Provider::NAMES),
            D::Required,
            "The API's shape, where prompts and usage are read: `openai` (and compatible), `anthropic`, or `generic` (either).",
            r#"provider "anthropic""#,
        ),
        K::new(
            "key",
            Kind::StrList,
            D::Str("client-ip"),
            "What limits and budgets are kept per, combined when several: `client-ip`, `route`, `header:<name>` (an API key or tenant header), `cookie:<name>`.",
            r#"key "header:x-tenant""#,
        ),
        K::new(
            "tokens-per-minute",
            Kind::Int {
                min: 1,
                max: 1_000_000_000,
                unit: "tokens",
            },
            D::Computed("no token rate limit"),
            "Tokens (prompt and completion) a key may use per minute; a full minute's worth may be used at once.",
            "tokens-per-minute 100000",
        ),
        K::new(
            "requests-per-minute",
            Kind::Int {
                min: 1,
                max: 10_000_000,
                unit: "",
            },
            D::Computed("no request rate limit"),
            "Requests a key may send per minute; a full minute's worth may be sent at once.",
            "requests-per-minute 600",
        ),
        K::new(
            "budget",
            Kind::Named {
                arg: "period",
                block: &BUDGET,
            },
            D::None,
            "A token budget per `hourly`, `daily` or `monthly` period (UTC calendar), at most one per period.",
            r#"budget "daily" { limit 2000000; mode "alert-only"; }"#,
        )
        .repeatable(),
        K::new(
            "tokenizer",
            Kind::Enum(Tokenizer::NAMES),
            D::Str("auto"),
            "How prompts are counted: `auto` (for `openai`, the encoding of the request's `model`; `cl100k-base` otherwise), `o200k-base`, `cl100k-base`, or `estimate` (a quarter of the bytes).",
            r#"tokenizer "o200k-base""#,
        ),
        K::new(
            "max-keys",
            Kind::Int {
                min: 1,
                max: 10_000_000,
                unit: "",
            },
            D::Int(100_000),
            "Keys tracked at once; beyond it the least recently used key is forgotten, with its usage and budgets. Size it above the keys active within the longest budget period.",
            "max-keys 50000",
        ),
    ],
};

static BUDGET: BlockSchema = BlockSchema {
    path: "routes.route.inference.budget",
    syntax: r#"budget "<period>" { … }"#,
    doc: "Tokens a key may use in one period: `hourly`, `daily` (from midnight UTC) or `monthly` (from the first of the month, UTC).",
    form: Form::Children,
    keys: &[
        K::new(
            "limit",
            Kind::Int {
                min: 1,
                max: 1_000_000_000_000,
                unit: "tokens",
            },
            D::Required,
            "Tokens (prompt and completion) per period.",
            "limit 2000000",
        ),
        K::new(
            "mode",
            Kind::Enum(BudgetMode::NAMES),
            D::Str("enforce"),
            "`enforce` answers 429 to a prompt counted at more than what is left of the budget (and to every request once it is used up), until the period ends; `alert-only` lets requests pass and logs and counts the crossing once per key and period.",
            r#"mode "alert-only""#,
        ),
    ],
};

static MATCHES: BlockSchema = BlockSchema {
    path: "routes.route.matches",
    syntax: "matches { … }",
    doc: "Every condition given must hold. Where a key takes several values, any one of them is enough.",
    form: Form::Children,
    keys: &[
        K::new("host", Kind::StrList, D::Computed("any host"),
            "Host names (without port, case-insensitive): exact, or `*.example.com` for any subdomain (not the apex).",
            r#"host "api.example.com" "*.api.example.com""#),
        K::new("path", Kind::Str, D::None, "The path equals this exactly.", r#"path "/healthz""#),
        K::new("path-prefix", Kind::Str, D::None,
            "The path starts with this (a plain string prefix: \"/api\" also matches \"/apiv2\"; write \"/api/\" for a segment).",
            r#"path-prefix "/api/""#),
        K::new("path-regex", Kind::Str, D::None, "The path matches this regular expression (Rust regex syntax, unanchored).",
            r#"path-regex "^/v[0-9]+/users/[0-9]+$""#),
        K::new("method", Kind::StrList, D::Computed("any method"), "Request methods (case-sensitive, as sent).", r#"method "GET" "HEAD""#),
        K::new("header", Kind::Custom(r#""name" or "name" "value""#), D::None,
            "The header is present (one argument) or has exactly this value (two arguments). May be repeated; all must hold.",
            r#"header "x-env" "staging""#).repeatable(),
        K::new("query-param", Kind::Custom(r#""name" or "name" "value""#), D::None,
            "The query parameter is present, or has exactly this value (after percent-decoding). May be repeated; all must hold.",
            r#"query-param "debug" "1""#).repeatable(),
    ],
};

macro_rules! header_policy {
    ($name:ident, $path:literal, $syntax:literal, $doc:literal) => {
        static $name: BlockSchema = BlockSchema {
            path: $path,
            syntax: $syntax,
            doc: $doc,
            form: Form::Children,
            keys: &[
                K::new(
                    "rename",
                    Kind::Custom(r#""from" "to""#),
                    D::None,
                    "Renames a header, keeping its values.",
                    r#"rename "x-user" "x-forwarded-user""#,
                )
                .repeatable(),
                K::new(
                    "remove",
                    Kind::StrList,
                    D::None,
                    "Removes these headers.",
                    r#"remove "x-powered-by" "server""#,
                )
                .repeatable(),
                K::new(
                    "set",
                    Kind::Custom(r#""name" "value""#),
                    D::None,
                    "Replaces every value of a header with this one.",
                    r#"set "x-frame-options" "DENY""#,
                )
                .repeatable(),
                K::new(
                    "add",
                    Kind::Custom(r#""name" "value""#),
                    D::None,
                    "Appends a value to a header.",
                    r#"add "via" "zentinel""#,
                )
                .repeatable(),
            ],
        };
    };
}

header_policy!(
    HEADER_POLICY_REQUEST,
    "routes.route.request-headers",
    "request-headers { … }",
    "Header edits applied to the request before it goes upstream, in the order rename, remove, set, add."
);
header_policy!(
    HEADER_POLICY_RESPONSE,
    "routes.route.response-headers",
    "response-headers { … }",
    "Header edits applied to the response before it goes to the client, in the order rename, remove, set, add."
);

static ROUTE_TIMEOUTS: BlockSchema = BlockSchema {
    path: "routes.route.timeouts",
    syntax: "timeouts { … }",
    doc: "Route deadlines. Connection-level timeouts live on the upstream and the listener.",
    form: Form::Children,
    keys: &[K::new(
        "total-ms",
        Kind::Int {
            min: 1,
            max: MS_HOUR,
            unit: "ms",
        },
        D::Int(60_000),
        "Deadline for the whole request, agents and retries included: beyond it, 504 if no response has started, else the response is cut.",
        "total-ms 30000",
    )],
};

static ROUTE_LIMITS: BlockSchema = BlockSchema {
    path: "routes.route.limits",
    syntax: "limits { … }",
    doc: "Limits of this route; absent keys use the global `limits`.",
    form: Form::Children,
    keys: &[
        K::new(
            "max-body-bytes",
            Kind::Int {
                min: 0,
                max: 1 << 40,
                unit: "bytes",
            },
            D::Computed("the global `max-body-bytes`"),
            "Request body size; beyond it: 413.",
            "max-body-bytes 1048576",
        ),
        K::new(
            "max-in-flight-requests",
            Kind::Int {
                min: 1,
                max: 10_000_000,
                unit: "",
            },
            D::Computed("no route cap"),
            "Requests on this route at once; beyond it: 503.",
            "max-in-flight-requests 100",
        ),
    ],
};

static RETRY: BlockSchema = BlockSchema {
    path: "routes.route.retry",
    syntax: "retry { … }",
    doc: "Retries go to another target when one is available. A retry budget caps retries at a share of requests, so a failing upstream cannot cause a retry storm.",
    form: Form::Children,
    keys: &[
        K::new(
            "max-attempts",
            Kind::Int {
                min: 1,
                max: 10,
                unit: "",
            },
            D::Int(2),
            "Tries in total, the first included; 1 disables retries.",
            "max-attempts 3",
        ),
        K::new(
            "retry-on",
            Kind::EnumList(RetryOn::NAMES),
            D::Str("connect-error"),
            "Failures that are retried: `connect-error` (nothing was sent), `502`, `503`, `504` (an upstream timeout before any answer counts as `504`; the answer is dropped and the request, with its body if at most 64 KiB, sent to another target).",
            r#"retry-on "connect-error" "502" "503""#,
        ),
        K::new(
            "non-idempotent",
            Kind::Bool,
            D::Bool(false),
            "Whether POST, PATCH and other non-idempotent requests may be retried after they were sent.",
            "non-idempotent #true",
        ),
        K::new(
            "per-try-timeout-ms",
            Kind::Int {
                min: 1,
                max: MS_HOUR,
                unit: "ms",
            },
            D::Computed("only the route's `total-ms`"),
            "Bounds the connect and every wait for the upstream within one try (and never beyond the route's `total-ms`); a try that times out before any answer counts as a 504 for `retry-on`.",
            "per-try-timeout-ms 2000",
        ),
        K::new(
            "budget-percent",
            Kind::Int {
                min: 0,
                max: 100,
                unit: "%",
            },
            D::Int(20),
            "Retries may be at most this share of the route's requests (over the last 10 s).",
            "budget-percent 10",
        ),
        K::new(
            "min-retries-per-second",
            Kind::Int {
                min: 0,
                max: 100_000,
                unit: "",
            },
            D::Int(3),
            "Retries allowed per second whatever the budget says, so low-traffic routes can still retry.",
            "min-retries-per-second 5",
        ),
    ],
};

pub(super) static UPSTREAMS: BlockSchema = BlockSchema {
    path: "upstreams",
    syntax: "upstreams { … }",
    doc: "Upstream pools.",
    form: Form::Children,
    keys: &[K::new(
        "upstream",
        Kind::Named {
            arg: "id",
            block: &UPSTREAM,
        },
        D::Required,
        "A pool with its ID.",
        r#"upstream "backend" { target "127.0.0.1:3000"; }"#,
    )
    .repeatable()],
};

static UPSTREAM: BlockSchema = BlockSchema {
    path: "upstreams.upstream",
    syntax: r#"upstream "<id>" { … }"#,
    doc: "A pool of servers and how requests are spread over them.",
    form: Form::Children,
    keys: &[
        K::new("target", Kind::Named { arg: "address", block: &TARGET }, D::Required,
            "A server: `ip:port` or `host:port` (host names are resolved when the configuration is loaded, then again every `dns-refresh-ms`). At most 256 per upstream.",
            r#"target "127.0.0.1:3000" weight=3"#).repeatable(),
        K::new("load-balancing", Kind::Enum(LoadBalancing::NAMES), D::Str("round-robin"),
            "`round-robin` (smooth weighted), `weighted` (weighted random), `least-connections`, `power-of-two-choices`, `consistent-hash` (on `hash-on`). All honour weights.",
            r#"load-balancing "least-connections""#),
        K::new("hash-on", Kind::Custom(r#""client-ip" | "header" "<name>" | "cookie" "<name>""#), D::Computed("client-ip, with consistent-hash"),
            "What `consistent-hash` hashes; only with that algorithm.", r#"hash-on "cookie" "session""#),
        K::new("health-check", Kind::Block(&HEALTH_CHECK), D::None,
            "Active probes that take failing targets out of selection and bring them back. Absent: no active checks.",
            r#"health-check { http "/healthz"; interval-ms 2000; }"#),
        K::new("passive-health", Kind::Block(&PASSIVE_HEALTH), D::None, "Ejection of targets that fail real requests.",
            "passive-health { consecutive-failures 5; }"),
        K::new("timeouts", Kind::Block(&UPSTREAM_TIMEOUTS), D::None, "Connection timeouts to the targets.", "timeouts { connect-ms 1000; }"),
        K::new("connection-pool", Kind::Block(&CONNECTION_POOL), D::None, "Reuse of connections to the targets.", "connection-pool { max-idle 32; }"),
        K::new("dns-refresh-ms", Kind::Int { min: 1000, max: 86_400_000, unit: "ms" }, D::Int(30_000),
            "How often host-name targets are resolved again (asynchronously, off the request path); a failed lookup keeps the last address. Needs a `host:port` target.",
            "dns-refresh-ms 10000"),
        K::new("tls", Kind::Block(&UPSTREAM_TLS), D::None, "Connect to the targets over TLS. Absent: clear text.",
            r#"tls { sni "backend.internal"; }"#),
    ],
};

static TARGET: BlockSchema = BlockSchema {
    path: "upstreams.upstream.target",
    syntax: r#"target "<address>" weight=<n>"#,
    doc: "Properties of a target.",
    form: Form::Properties,
    keys: &[K::new(
        "weight",
        Kind::Int {
            min: 1,
            max: 10_000,
            unit: "",
        },
        D::Int(1),
        "Relative share of requests.",
        "weight=3",
    )],
};

static HEALTH_CHECK: BlockSchema = BlockSchema {
    path: "upstreams.upstream.health-check",
    syntax: "health-check { … }",
    doc: "An active health check: exactly one of `http` or `tcp`.",
    form: Form::Children,
    keys: &[
        K::new(
            "http",
            Kind::Named {
                arg: "path",
                block: &HTTP_PROBE,
            },
            D::None,
            "Probe with `GET <path>`; healthy when the status is `expect-status`.",
            r#"http "/healthz" { expect-status 200; }"#,
        ),
        K::new(
            "tcp",
            Kind::Flag,
            D::None,
            "Probe with a TCP connect.",
            "tcp",
        ),
        K::new(
            "interval-ms",
            Kind::Int {
                min: 100,
                max: MS_HOUR,
                unit: "ms",
            },
            D::Int(5000),
            "Time between probes of one target.",
            "interval-ms 2000",
        ),
        K::new(
            "timeout-ms",
            Kind::Int {
                min: 1,
                max: 600_000,
                unit: "ms",
            },
            D::Int(1000),
            "Deadline of one probe; must be shorter than `interval-ms`.",
            "timeout-ms 500",
        ),
        K::new(
            "healthy-threshold",
            Kind::Int {
                min: 1,
                max: 100,
                unit: "",
            },
            D::Int(2),
            "Consecutive successful probes that bring a target back.",
            "healthy-threshold 3",
        ),
        K::new(
            "unhealthy-threshold",
            Kind::Int {
                min: 1,
                max: 100,
                unit: "",
            },
            D::Int(3),
            "Consecutive failed probes that take a target out.",
            "unhealthy-threshold 5",
        ),
    ],
};

static HTTP_PROBE: BlockSchema = BlockSchema {
    path: "upstreams.upstream.health-check.http",
    syntax: r#"http "<path>" { … }"#,
    doc: "An HTTP probe.",
    form: Form::Children,
    keys: &[
        K::new(
            "expect-status",
            Kind::Int {
                min: 100,
                max: 599,
                unit: "",
            },
            D::Int(200),
            "Status that counts as healthy.",
            "expect-status 204",
        ),
        K::new(
            "host",
            Kind::Str,
            D::Computed("the target's address"),
            "`Host` header of the probe.",
            r#"host "backend.internal""#,
        ),
    ],
};

static PASSIVE_HEALTH: BlockSchema = BlockSchema {
    path: "upstreams.upstream.passive-health",
    syntax: "passive-health { … }",
    doc: "Passive health: a target that fails real requests is ejected for a while. On by default.",
    form: Form::Children,
    keys: &[
        K::new(
            "enabled",
            Kind::Bool,
            D::Bool(true),
            "Whether failing targets are ejected.",
            "enabled #false",
        ),
        K::new(
            "consecutive-failures",
            Kind::Int {
                min: 1,
                max: 1000,
                unit: "",
            },
            D::Int(5),
            "Consecutive failures (connect error, timeout, 502/503/504 from the target) that eject it.",
            "consecutive-failures 3",
        ),
        K::new(
            "ejection-time-ms",
            Kind::Int {
                min: 1,
                max: MS_HOUR,
                unit: "ms",
            },
            D::Int(30_000),
            "How long an ejected target stays out.",
            "ejection-time-ms 10000",
        ),
    ],
};

static UPSTREAM_TIMEOUTS: BlockSchema = BlockSchema {
    path: "upstreams.upstream.timeouts",
    syntax: "timeouts { … }",
    doc: "Timeouts of connections to the targets.",
    form: Form::Children,
    keys: &[
        K::new(
            "connect-ms",
            Kind::Int {
                min: 1,
                max: 600_000,
                unit: "ms",
            },
            D::Int(2000),
            "TCP and TLS connection establishment.",
            "connect-ms 1000",
        ),
        K::new(
            "read-ms",
            Kind::Int {
                min: 1,
                max: MS_HOUR,
                unit: "ms",
            },
            D::Int(30_000),
            "Longest wait for the next bytes of a response; beyond it: 504.",
            "read-ms 10000",
        ),
        K::new(
            "write-ms",
            Kind::Int {
                min: 1,
                max: MS_HOUR,
                unit: "ms",
            },
            D::Int(30_000),
            "Longest wait to write the next bytes of a request.",
            "write-ms 10000",
        ),
    ],
};

static CONNECTION_POOL: BlockSchema = BlockSchema {
    path: "upstreams.upstream.connection-pool",
    syntax: "connection-pool { … }",
    doc: "Idle connections kept for reuse.",
    form: Form::Children,
    keys: &[
        K::new(
            "max-idle",
            Kind::Int {
                min: 0,
                max: 100_000,
                unit: "",
            },
            D::Int(64),
            "Idle connections kept for each target of this upstream. The process keeps them in one pool sized to the sum of every upstream's `max-idle` × its targets, evicting the least recently used, so a busy target may briefly hold idle connections another left unused; the total is exact. 0 disables reuse for this upstream.",
            "max-idle 32",
        ),
        K::new(
            "idle-timeout-ms",
            Kind::Int {
                min: 1,
                max: MS_HOUR,
                unit: "ms",
            },
            D::Int(60_000),
            "How long an idle connection is kept.",
            "idle-timeout-ms 30000",
        ),
    ],
};

static UPSTREAM_TLS: BlockSchema = BlockSchema {
    path: "upstreams.upstream.tls",
    syntax: "tls { … }",
    doc: "TLS to the targets.",
    form: Form::Children,
    keys: &[
        K::new(
            "sni",
            Kind::Str,
            D::Computed("the target's host"),
            "Server name sent and verified.",
            r#"sni "backend.internal""#,
        ),
        K::new(
            "ca-file",
            Kind::Path,
            D::Computed("the system trust store"),
            "CA bundle (PEM) the targets' certificates must chain to.",
            r#"ca-file "certs/internal-ca.crt""#,
        ),
        K::new(
            "verify",
            Kind::Bool,
            D::Bool(true),
            "Whether the targets' certificates are verified. Turning it off is for tests only.",
            "verify #false",
        ),
        K::new(
            "cert-file",
            Kind::Path,
            D::None,
            "Client certificate (PEM) presented to the targets (mTLS); needs `key-file`.",
            r#"cert-file "certs/proxy.crt""#,
        ),
        K::new(
            "key-file",
            Kind::Path,
            D::None,
            "Private key (PEM) of `cert-file`.",
            r#"key-file "certs/proxy.key""#,
        ),
    ],
};
