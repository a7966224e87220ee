//! Schema of external agents and built-in filters.

use super::{BlockSchema, Default as D, Form, KeySchema as K, Kind};
use crate::model::{AgentEvent, BodyMode, FailureMode, FilterType, OnBackendFailure, OnLimit};

const MAX_FRAME: i64 = 16 * 1024 * 1024;

pub(super) static AGENTS: BlockSchema = BlockSchema {
    path: "agents",
    syntax: "agents { … }",
    doc: "External agents: separate processes that inspect traffic and return decisions. Each has its own concurrency cap, timeout and circuit breaker, so a slow agent only affects routes that use it.",
    form: Form::Children,
    keys: &[K::new(
        "agent",
        Kind::Named {
            arg: "id",
            block: &AGENT,
        },
        D::None,
        "An agent with its ID.",
        r#"agent "waf" { transport { unix-socket "/run/waf.sock"; }; events "request-headers"; }"#,
    )
    .repeatable()],
};

static AGENT: BlockSchema = BlockSchema {
    path: "agents.agent",
    syntax: r#"agent "<id>" { … }"#,
    doc: "How one agent is reached, what it receives, and how its failures are contained.",
    form: Form::Children,
    keys: &[
        K::new(
            "transport",
            Kind::Block(&TRANSPORT),
            D::Required,
            "How the agent is reached: exactly one of `unix-socket` or `grpc`.",
            r#"transport { unix-socket "/var/run/zentinel-waf.sock"; }"#,
        ),
        K::new(
            "events",
            Kind::EnumList(AgentEvent::NAMES),
            D::Required,
            "Events sent to the agent: `request-headers`, `request-body`, `response-headers`, `response-body`, `request-complete`, `websocket-frame`, `guardrail-inspect`.",
            r#"events "request-headers" "request-body""#,
        ),
        K::new(
            "timeout-ms",
            Kind::Int {
                min: 1,
                max: 60_000,
                unit: "ms",
            },
            D::Int(100),
            "Deadline of one call: waiting for a permit, sending, and the answer.",
            "timeout-ms 50",
        ),
        K::new(
            "max-concurrent-calls",
            Kind::Int {
                min: 1,
                max: 100_000,
                unit: "",
            },
            D::Int(100),
            "Calls in flight at once; a call that gets no permit within `queue-timeout-ms` fails (saturation).",
            "max-concurrent-calls 50",
        ),
        K::new(
            "queue-timeout-ms",
            Kind::Int {
                min: 0,
                max: 60_000,
                unit: "ms",
            },
            D::Int(0),
            "Longest wait for a call permit; 0 means no waiting. Must be below `timeout-ms`.",
            "queue-timeout-ms 5",
        ),
        K::new(
            "failure-mode",
            Kind::Enum(FailureMode::NAMES),
            D::Str("closed"),
            "Default for routes that do not set their own: `closed` denies (504 on timeout, 503 when unreachable, saturated, breaker open or on protocol error), `open` continues and logs the gap.",
            r#"failure-mode "open""#,
        ),
        K::new(
            "circuit-breaker",
            Kind::Block(&CIRCUIT_BREAKER),
            D::None,
            "Fails calls fast after repeated failures.",
            "circuit-breaker { failure-threshold 5; }",
        ),
        K::new(
            "max-request-body-bytes",
            Kind::Int {
                min: 0,
                max: 1 << 32,
                unit: "bytes",
            },
            D::Int(1024 * 1024),
            "Request body bytes sent to the agent; a longer body follows the failure mode. Needs the `request-body` event.",
            "max-request-body-bytes 65536",
        ),
        K::new(
            "request-body-mode",
            Kind::Enum(BodyMode::NAMES),
            D::Str("buffer"),
            "`buffer` (collect up to the limit, send once) or `stream` (send chunk by chunk). Needs the `request-body` event.",
            r#"request-body-mode "stream""#,
        ),
        K::new(
            "max-response-body-bytes",
            Kind::Int {
                min: 0,
                max: 1 << 32,
                unit: "bytes",
            },
            D::Int(1024 * 1024),
            "Response body bytes sent to the agent. Needs the `response-body` event.",
            "max-response-body-bytes 65536",
        ),
        K::new(
            "response-body-mode",
            Kind::Enum(BodyMode::NAMES),
            D::Str("buffer"),
            "`buffer` or `stream`, for the response body. Needs the `response-body` event.",
            r#"response-body-mode "stream""#,
        ),
        K::new(
            "connections",
            Kind::Int {
                min: 1,
                max: 64,
                unit: "",
            },
            D::Int(2),
            "Connections kept open to the agent; calls are multiplexed over them.",
            "connections 4",
        ),
        K::new(
            "max-frame-bytes",
            Kind::Int {
                min: 1024,
                max: MAX_FRAME,
                unit: "bytes",
            },
            D::Int(MAX_FRAME),
            "Largest protocol frame accepted or sent; a larger one closes the connection.",
            "max-frame-bytes 1048576",
        ),
        K::new(
            "handshake-timeout-ms",
            Kind::Int {
                min: 1,
                max: 60_000,
                unit: "ms",
            },
            D::Int(1000),
            "Deadline of the connection handshake; an agent that does not answer in time counts as down.",
            "handshake-timeout-ms 500",
        ),
        K::new(
            "config",
            Kind::FreeForm,
            D::None,
            "Free-form settings passed to the agent as JSON at handshake and on reload (`key value` → `\"key\": value`; several values → an array; a block → an object; a repeated key → an array).",
            r#"config { paranoia-level 2; exclude-rules 942100 942200; }"#,
        ),
    ],
};

static TRANSPORT: BlockSchema = BlockSchema {
    path: "agents.agent.transport",
    syntax: "transport { … }",
    doc: "Exactly one of the keys below.",
    form: Form::Children,
    keys: &[
        K::new(
            "unix-socket",
            Kind::Path,
            D::None,
            "Path of the agent's Unix domain socket.",
            r#"unix-socket "/var/run/zentinel-waf.sock""#,
        ),
        K::new(
            "grpc",
            Kind::Str,
            D::None,
            "`host:port` of the agent's gRPC endpoint.",
            r#"grpc "waf.internal:50051""#,
        ),
    ],
};

static CIRCUIT_BREAKER: BlockSchema = BlockSchema {
    path: "agents.agent.circuit-breaker",
    syntax: "circuit-breaker { … }",
    doc: "After `failure-threshold` consecutive failures the breaker opens and calls fail at once for `timeout-seconds`; then one probe call is let through (half-open), and `success-threshold` consecutive successes close it.",
    form: Form::Children,
    keys: &[
        K::new(
            "failure-threshold",
            Kind::Int {
                min: 1,
                max: 10_000,
                unit: "",
            },
            D::Int(5),
            "Consecutive failures that open the breaker.",
            "failure-threshold 10",
        ),
        K::new(
            "success-threshold",
            Kind::Int {
                min: 1,
                max: 10_000,
                unit: "",
            },
            D::Int(2),
            "Consecutive successes that close it.",
            "success-threshold 3",
        ),
        K::new(
            "timeout-seconds",
            Kind::Int {
                min: 1,
                max: 3600,
                unit: "s",
            },
            D::Int(30),
            "How long it stays open before a probe.",
            "timeout-seconds 60",
        ),
    ],
};

pub(super) static FILTERS: BlockSchema = BlockSchema {
    path: "filters",
    syntax: "filters { … }",
    doc: "Built-in filters, run in the proxy. Their IDs share one namespace with agent IDs.",
    form: Form::Children,
    keys: &[K::new(
        "filter",
        Kind::Named {
            arg: "id",
            block: &FILTER,
        },
        D::None,
        "A filter with its ID.",
        r#"filter "per-ip" { type "rate-limit"; requests-per-second 5; burst 10; }"#,
    )
    .repeatable()],
};

static FILTER: BlockSchema = BlockSchema {
    path: "filters.filter",
    syntax: r#"filter "<id>" { … }"#,
    doc: "A built-in filter. `type \"rate-limit\"` is a token bucket: `burst` requests at once, refilled at `requests-per-second`.",
    form: Form::Children,
    keys: &[
        K::new(
            "type",
            Kind::Enum(FilterType::NAMES),
            D::Required,
            "What the filter does: `rate-limit`.",
            r#"type "rate-limit""#,
        ),
        K::new(
            "requests-per-second",
            Kind::Int {
                min: 1,
                max: 10_000_000,
                unit: "",
            },
            D::Required,
            "Tokens added per second.",
            "requests-per-second 5",
        ),
        K::new(
            "burst",
            Kind::Int {
                min: 1,
                max: 10_000_000,
                unit: "",
            },
            D::Computed("equal to `requests-per-second`"),
            "Bucket size: requests allowed at once.",
            "burst 10",
        ),
        K::new(
            "key",
            Kind::StrList,
            D::Str("client-ip"),
            "What each bucket is kept per, combined when several: `client-ip`, `route`, `header:<name>`, `cookie:<name>`.",
            r#"key "route" "header:x-api-key""#,
        ),
        K::new(
            "on-limit",
            Kind::Enum(OnLimit::NAMES),
            D::Str("reject"),
            "`reject` answers 429 with Retry-After; `delay` waits for a token up to `max-delay-ms`, then rejects.",
            r#"on-limit "delay""#,
        ),
        K::new(
            "max-delay-ms",
            Kind::Int {
                min: 1,
                max: 60_000,
                unit: "ms",
            },
            D::Int(1000),
            "Longest wait with `on-limit \"delay\"`.",
            "max-delay-ms 500",
        ),
        K::new(
            "max-keys",
            Kind::Int {
                min: 1,
                max: 10_000_000,
                unit: "",
            },
            D::Int(100_000),
            "Buckets kept at once; beyond it the least recently used bucket is evicted. With a `backend`, it bounds the local store used by `on-backend-failure \"local\"`.",
            "max-keys 50000",
        ),
        K::new(
            "backend",
            Kind::Named {
                arg: "kind",
                block: &BACKEND,
            },
            D::None,
            "Where the buckets are kept: `redis`, shared by every proxy that names the same server, so N proxies allow the configured rate in total rather than N times it. Absent: in this proxy's memory.",
            r#"backend "redis" { url "redis://10.0.0.5:6379/0"; }"#,
        ),
    ],
};

static BACKEND: BlockSchema = BlockSchema {
    path: "filters.filter.backend",
    syntax: r#"backend "<kind>" { … }"#,
    doc: "A shared store for the filter's buckets. The only kind is `redis` (one server, no TLS, no cluster): each request is one atomic script on the server, timed by the server's clock (see `rate-limits.md`).",
    form: Form::Children,
    keys: &[
        K::new(
            "url",
            Kind::Str,
            D::Required,
            "`redis://[user:password@]host[:port][/db]`; port 6379 and database 0 by default. `rediss://` (TLS) is refused: this build has no TLS to Redis. The password is never logged or shown.",
            r#"url "redis://:s3cret@10.0.0.5:6379/2""#,
        ),
        K::new(
            "pool-size",
            Kind::Int {
                min: 1,
                max: 64,
                unit: "",
            },
            D::Int(2),
            "Connections kept open to the server; calls are multiplexed over them, so a few suffice.",
            "pool-size 4",
        ),
        K::new(
            "timeout-ms",
            Kind::Int {
                min: 1,
                max: 10_000,
                unit: "ms",
            },
            D::Int(50),
            "Deadline of one call to the server; a call that does not answer in time is a backend failure.",
            "timeout-ms 20",
        ),
        K::new(
            "on-backend-failure",
            Kind::Enum(OnBackendFailure::NAMES),
            D::Str("local"),
            "When the server cannot answer in time (down, hung, refusing, script error): `local` counts the same limit in this proxy's memory (each proxy allows the full rate until the server is back), `open` lets the request through, `closed` answers 503.",
            r#"on-backend-failure "closed""#,
        ),
        K::new(
            "key-prefix",
            Kind::Str,
            D::Str("zentinel:rl:"),
            "Prefix of the keys written on the server, followed by the filter ID and the key's hash.",
            r#"key-prefix "edge-eu:rl:""#,
        ),
    ],
};
