//! Schema of the top level and the process-wide blocks: server, listeners, limits,
//! observability, admin.

use super::{BlockSchema, Default as D, Form, KeySchema as K, Kind};
use crate::model::{
    ListenerProtocol, LogDestinationKind, LogFormat, LogLevel, PathParameters, TlsVersion,
};

const MS_DAY: i64 = 86_400_000;

/// The top level of a configuration file.
pub static ROOT: BlockSchema = BlockSchema {
    path: "",
    syntax: "the top level",
    doc: "A configuration is one file, plus the files it includes. Collection blocks \
          (`listeners`, `routes`, `upstreams`, `agents`, `filters`) \
          may appear several times, in one file or several, and are merged in load order; the \
          other blocks may appear once in the whole configuration.",
    form: Form::Children,
    keys: &[
        K::new("include", Kind::Custom("string (glob pattern)"), D::None,
            "Loads more files: a path or glob relative to this file, expanded in sorted order. A pattern that matches no file is an error. Included files may include others (no cycles, at most 8 levels).",
            r#"include "conf.d/*.kdl""#).repeatable(),
        K::new("server", Kind::Block(&SERVER), D::None, "Process-wide settings.", "server { worker-threads 2; }"),
        K::new("listeners", Kind::Block(&LISTENERS), D::Required, "Where traffic is accepted.",
            r#"listeners { listener "web" { address "127.0.0.1:8080"; } }"#).repeatable(),
        K::new("routes", Kind::Block(&super::routing::ROUTES), D::Required, "How requests are matched and handled.",
            r#"routes { route "all" { upstream "backend"; } }"#).repeatable(),
        K::new("upstreams", Kind::Block(&super::routing::UPSTREAMS), D::Required, "Pools of servers requests are sent to.",
            r#"upstreams { upstream "backend" { target "127.0.0.1:3000"; } }"#).repeatable(),
        K::new("agents", Kind::Block(&super::agents::AGENTS), D::None, "External security agents (WAF, auth, policy).",
            r#"agents { agent "waf" { transport { unix-socket "/run/waf.sock"; }; events "request-headers"; } }"#).repeatable(),
        K::new("filters", Kind::Block(&super::agents::FILTERS), D::None, "Built-in filters routes can name.",
            r#"filters { filter "per-ip" { type "rate-limit"; requests-per-second 5; } }"#).repeatable(),
        K::new("limits", Kind::Block(&LIMITS), D::None, "Hard limits on requests and connections.", "limits { max-body-bytes 1048576; }"),
        K::new("observability", Kind::Block(&OBSERVABILITY), D::None, "Logs and metrics.",
            r#"observability { access-log { destination "stdout"; } }"#),
        K::new("admin", Kind::Block(&ADMIN), D::None,
            "The admin listener (metrics, health, reload). Absent: no admin listener.",
            r#"admin { address "127.0.0.1:9901"; }"#),
    ],
};

static SERVER: BlockSchema = BlockSchema {
    path: "server",
    syntax: "server { … }",
    doc: "Process-wide settings. Changing `worker-threads` or `work-stealing` needs a restart.",
    form: Form::Children,
    keys: &[
        K::new(
            "worker-threads",
            Kind::Int {
                min: 1,
                max: 1024,
                unit: "",
            },
            D::Computed("one per CPU core"),
            "Worker threads that handle traffic.",
            "worker-threads 2",
        ),
        K::new(
            "work-stealing",
            Kind::Bool,
            D::Bool(false),
            "Whether an idle worker thread may take over tasks queued on a busy one. Off, each connection is served start to finish by the one thread it was handed to (as by nginx's workers), which costs less per request; on, a few heavy connections cannot keep one thread busy while others idle. Agents that take `response-body` events need it on.",
            "work-stealing #true",
        ),
        K::new(
            "graceful-shutdown-timeout-secs",
            Kind::Int {
                min: 0,
                max: 3600,
                unit: "s",
            },
            D::Int(30),
            "After SIGTERM, how long in-flight requests may run before the process exits.",
            "graceful-shutdown-timeout-secs 10",
        ),
        K::new(
            "trusted-proxies",
            Kind::CidrList,
            D::None,
            "Peers whose X-Forwarded-For, Forwarded and traceparent headers are believed; from anyone else they are replaced.",
            r#"trusted-proxies "10.0.0.0/8" "192.0.2.7""#,
        ),
        K::new(
            "request-id-header",
            Kind::Str,
            D::Str("x-request-id"),
            "Header that carries the request ID generated at the edge, sent upstream and back to the client.",
            r#"request-id-header "x-correlation-id""#,
        ),
    ],
};

static LISTENERS: BlockSchema = BlockSchema {
    path: "listeners",
    syntax: "listeners { … }",
    doc: "Traffic listeners. At least one is required.",
    form: Form::Children,
    keys: &[K::new(
        "listener",
        Kind::Named {
            arg: "id",
            block: &LISTENER,
        },
        D::Required,
        "A listener with its ID.",
        r#"listener "web" { address "127.0.0.1:8080"; }"#,
    )
    .repeatable()],
};

static LISTENER: BlockSchema = BlockSchema {
    path: "listeners.listener",
    syntax: r#"listener "<id>" { … }"#,
    doc: "One address the proxy accepts traffic on.",
    form: Form::Children,
    keys: &[
        K::new(
            "address",
            Kind::SocketAddr,
            D::Required,
            "IP address and port to bind.",
            r#"address "0.0.0.0:8443""#,
        ),
        K::new(
            "protocol",
            Kind::Enum(ListenerProtocol::NAMES),
            D::Str("http"),
            "`http` (HTTP/1.1), `https` (TLS; HTTP/2 or HTTP/1.1 by ALPN; needs `tls`), or `h2c` (clear-text HTTP/1.1 and HTTP/2 with prior knowledge).",
            r#"protocol "https""#,
        ),
        K::new(
            "tls",
            Kind::Block(&LISTENER_TLS),
            D::None,
            "Certificates and TLS settings; required with `protocol \"https\"`, refused otherwise.",
            r#"tls { cert-file "certs/site.crt"; key-file "certs/site.key"; }"#,
        ),
        K::new(
            "routes",
            Kind::StrList,
            D::Computed("every route"),
            "Routes served on this listener, by ID; requests can only match these.",
            r#"routes "api" "static""#,
        ),
        K::new(
            "default-route",
            Kind::Str,
            D::None,
            "Route for requests that no route matches. Absent: such requests get 404.",
            r#"default-route "fallback""#,
        ),
        K::new(
            "header-read-timeout-ms",
            Kind::Int {
                min: 1,
                max: 600_000,
                unit: "ms",
            },
            D::Int(10_000),
            "Deadline for a client to send the complete headers of a request (slow-header protection), counted for a connection's first request from the end of the TLS handshake and for each later keep-alive request from its first byte; the connection is closed beyond it. The wait between two requests is bounded by `idle-timeout-ms`.",
            "header-read-timeout-ms 5000",
        ),
        K::new(
            "idle-timeout-ms",
            Kind::Int {
                min: 1,
                max: MS_DAY,
                unit: "ms",
            },
            D::Int(60_000),
            "How long an idle keep-alive client connection stays open (applied in whole seconds, at least 1 s).",
            "idle-timeout-ms 30000",
        ),
        K::new(
            "body-read-timeout-ms",
            Kind::Int {
                min: 1,
                max: 600_000,
                unit: "ms",
            },
            D::Int(10_000),
            "Longest wait for the next bytes of a request body — on HTTP/2, for the stream's next DATA frame (slow-body protection); beyond it the request ends: 408 when no response has started, else the connection (HTTP/2: the stream) is closed. Also bounds reading the rest of a body the answer did not need before the connection is reused.",
            "body-read-timeout-ms 5000",
        ),
        K::new(
            "min-body-rate-bytes-per-sec",
            Kind::Int {
                min: 0,
                max: 1 << 30,
                unit: "bytes",
            },
            D::Int(500),
            "Lowest average rate of a request body once `body-rate-grace-ms` has passed: a body that has sent `n` bytes must have done so within `body-rate-grace-ms` + `n` / this rate seconds of its first bytes (time the proxy spends before reading the body is not the client's), else it is ended like a `body-read-timeout-ms` one; bytes already received are always taken, and a retry's replay of the body is not timed. Bounds clients that send one byte just before each read would time out. `0` turns the rate check off.",
            "min-body-rate-bytes-per-sec 1024",
        ),
        K::new(
            "body-rate-grace-ms",
            Kind::Int {
                min: 0,
                max: MS_DAY,
                unit: "ms",
            },
            D::Int(10_000),
            "Time a request body gets before `min-body-rate-bytes-per-sec` applies (every byte sent earns `1 / rate` seconds more). Refused when the rate check is off.",
            "body-rate-grace-ms 5000",
        ),
        K::new(
            "send-timeout-ms",
            Kind::Int {
                min: 1,
                max: 600_000,
                unit: "ms",
            },
            D::Int(30_000),
            "Longest time one write to the client may take (slow-reader protection): a response chunk (at most 64 KiB) the client's connection does not take within it closes the connection. The proxy holds at most a few chunks per response for a client that does not read; the upstream connection waits meanwhile.",
            "send-timeout-ms 10000",
        ),
        K::new(
            "path-parameters",
            Kind::Enum(PathParameters::NAMES),
            D::Str("keep"),
            "What happens to a request path with `;` parameters (`/admin;x/secret`, `/a;jsessionid=1`): `keep` routes and forwards it as sent; `refuse` answers 400. Servers that drop parameters before routing (Java servlet containers serve `/admin;x/secret` as `/admin/secret`) see a different path from the proxy's routes: `refuse` in front of them keeps a route on `/admin/` from being side-stepped. A dot segment with parameters (`/..;/`) is refused either way.",
            r#"path-parameters "refuse""#,
        ),
    ],
};

static LISTENER_TLS: BlockSchema = BlockSchema {
    path: "listeners.listener.tls",
    syntax: "tls { … }",
    doc: "TLS termination. Only AEAD cipher suites are offered.",
    form: Form::Children,
    keys: &[
        K::new(
            "cert-file",
            Kind::Path,
            D::Required,
            "Default certificate chain (PEM), served when no `sni` entry matches.",
            r#"cert-file "certs/default.crt""#,
        ),
        K::new(
            "key-file",
            Kind::Path,
            D::Required,
            "Private key (PEM) of the default certificate.",
            r#"key-file "certs/default.key""#,
        ),
        K::new(
            "sni",
            Kind::Named {
                arg: "host",
                block: &SNI,
            },
            D::None,
            "A certificate for clients that ask for this host name (exact, or `*.suffix`) by SNI.",
            r#"sni "api.example.com" { cert-file "certs/api.crt"; key-file "certs/api.key"; }"#,
        )
        .repeatable(),
        K::new(
            "client-auth",
            Kind::Named {
                arg: "mode",
                block: &CLIENT_AUTH,
            },
            D::None,
            "Client certificates (mTLS), verified against `ca-file`: `optional` verifies them when presented, `required` refuses connections without one.",
            r#"client-auth "required" { ca-file "certs/clients-ca.crt"; }"#,
        ),
        K::new(
            "min-version",
            Kind::Enum(TlsVersion::NAMES),
            D::Str("1.2"),
            "Lowest TLS version accepted.",
            r#"min-version "1.3""#,
        ),
    ],
};

static SNI: BlockSchema = BlockSchema {
    path: "listeners.listener.tls.sni",
    syntax: r#"sni "<host>" { … }"#,
    doc: "A certificate chosen by the name the client asks for.",
    form: Form::Children,
    keys: &[
        K::new(
            "cert-file",
            Kind::Path,
            D::Required,
            "Certificate chain (PEM).",
            r#"cert-file "certs/api.crt""#,
        ),
        K::new(
            "key-file",
            Kind::Path,
            D::Required,
            "Private key (PEM).",
            r#"key-file "certs/api.key""#,
        ),
    ],
};

static CLIENT_AUTH: BlockSchema = BlockSchema {
    path: "listeners.listener.tls.client-auth",
    syntax: r#"client-auth "<mode>" { … }"#,
    doc: "Client certificate verification; the mode is `optional` or `required`.",
    form: Form::Children,
    keys: &[K::new(
        "ca-file",
        Kind::Path,
        D::Required,
        "CA bundle (PEM) client certificates must chain to.",
        r#"ca-file "certs/clients-ca.crt""#,
    )],
};

static LIMITS: BlockSchema = BlockSchema {
    path: "limits",
    syntax: "limits { … }",
    doc: "Hard limits. Every one is always on; a request or connection beyond one is refused with the status shown.",
    form: Form::Children,
    keys: &[
        K::new(
            "max-header-bytes",
            Kind::Int {
                min: 1024,
                max: 1_048_575,
                unit: "bytes",
            },
            D::Int(65_536),
            "Total size of the request headers; beyond it: 431.",
            "max-header-bytes 32768",
        ),
        K::new(
            "max-header-count",
            Kind::Int {
                min: 1,
                max: 256,
                unit: "",
            },
            D::Int(100),
            "Number of request headers; beyond it: 431.",
            "max-header-count 64",
        ),
        K::new(
            "max-uri-bytes",
            Kind::Int {
                min: 64,
                max: 1_048_575,
                unit: "bytes",
            },
            D::Int(8192),
            "Length of the request target (path and query); beyond it: 414.",
            "max-uri-bytes 4096",
        ),
        K::new(
            "max-body-bytes",
            Kind::Int {
                min: 0,
                max: 1 << 40,
                unit: "bytes",
            },
            D::Int(10 * 1024 * 1024),
            "Request body size; beyond it: 413 (before reading when Content-Length says so, else as soon as the limit is crossed). Routes may override it.",
            "max-body-bytes 1048576",
        ),
        K::new(
            "max-connections",
            Kind::Int {
                min: 1,
                max: 10_000_000,
                unit: "",
            },
            D::Int(10_000),
            "Open client connections across all listeners; new connections beyond it are closed at once.",
            "max-connections 50000",
        ),
        K::new(
            "max-connections-per-client",
            Kind::Int {
                min: 1,
                max: 1_000_000,
                unit: "",
            },
            D::Int(256),
            "Open connections from one client IP.",
            "max-connections-per-client 100",
        ),
        K::new(
            "max-tracked-clients",
            Kind::Int {
                min: 1,
                max: 10_000_000,
                unit: "",
            },
            D::Int(100_000),
            "Client IPs tracked for `max-connections-per-client`; when full, new clients are refused until tracked ones close their connections.",
            "max-tracked-clients 50000",
        ),
        K::new(
            "max-in-flight-requests",
            Kind::Int {
                min: 1,
                max: 10_000_000,
                unit: "",
            },
            D::Int(10_000),
            "Requests processed at once; beyond it: 503.",
            "max-in-flight-requests 5000",
        ),
    ],
};

static OBSERVABILITY: BlockSchema = BlockSchema {
    path: "observability",
    syntax: "observability { … }",
    doc: "Structured logs and metrics.",
    form: Form::Children,
    keys: &[
        K::new(
            "access-log",
            Kind::Block(&ACCESS_LOG),
            D::None,
            "One line per request.",
            r#"access-log { destination "stdout"; }"#,
        ),
        K::new(
            "audit-log",
            Kind::Block(&AUDIT_LOG),
            D::None,
            "One line per security decision (agent verdicts, limits, failure-mode fallbacks).",
            r#"audit-log { destination "file"; path "/var/log/zentinel/audit.log"; }"#,
        ),
        K::new(
            "error-log",
            Kind::Block(&ERROR_LOG),
            D::None,
            "Operational messages.",
            r#"error-log { level "warn"; }"#,
        ),
        K::new(
            "metrics",
            Kind::Block(&METRICS),
            D::None,
            "Prometheus metrics on the admin listener.",
            "metrics { enabled #true; }",
        ),
    ],
};

macro_rules! log_block {
    ($name:ident, $path:literal, $syntax:literal, $doc:literal, $dest:literal) => {
        static $name: BlockSchema = BlockSchema {
            path: $path,
            syntax: $syntax,
            doc: $doc,
            form: Form::Children,
            keys: &[
                K::new(
                    "destination",
                    Kind::Enum(LogDestinationKind::NAMES),
                    D::Str($dest),
                    "`stdout`, `stderr`, `file` (needs `path`; reopened on SIGUSR1), or `off`.",
                    r#"destination "stderr""#,
                ),
                K::new(
                    "path",
                    Kind::Path,
                    D::None,
                    "The log file, with `destination \"file\"`.",
                    r#"path "/var/log/zentinel/zentinel.log""#,
                ),
                K::new(
                    "format",
                    Kind::Enum(LogFormat::NAMES),
                    D::Str("json"),
                    "`json` (one object per line) or `text` (key=value).",
                    r#"format "text""#,
                ),
            ],
        };
    };
}

log_block!(
    ACCESS_LOG,
    "observability.access-log",
    "access-log { … }",
    "The access log.",
    "stdout"
);
log_block!(
    AUDIT_LOG,
    "observability.audit-log",
    "audit-log { … }",
    "The audit log.",
    "stdout"
);

static ERROR_LOG: BlockSchema = BlockSchema {
    path: "observability.error-log",
    syntax: "error-log { … }",
    doc: "The error log.",
    form: Form::Children,
    keys: &[
        K::new(
            "destination",
            Kind::Enum(LogDestinationKind::NAMES),
            D::Str("stderr"),
            "`stdout`, `stderr`, `file` (needs `path`; reopened on SIGUSR1), or `off`.",
            r#"destination "stdout""#,
        ),
        K::new(
            "path",
            Kind::Path,
            D::None,
            "The log file, with `destination \"file\"`.",
            r#"path "/var/log/zentinel/error.log""#,
        ),
        K::new(
            "format",
            Kind::Enum(LogFormat::NAMES),
            D::Str("json"),
            "`json` (one object per line) or `text` (key=value).",
            r#"format "text""#,
        ),
        K::new(
            "level",
            Kind::Enum(LogLevel::NAMES),
            D::Str("info"),
            "Lowest level written.",
            r#"level "warn""#,
        ),
    ],
};

static METRICS: BlockSchema = BlockSchema {
    path: "observability.metrics",
    syntax: "metrics { … }",
    doc: "Prometheus text-format metrics, served on the admin listener.",
    form: Form::Children,
    keys: &[
        K::new(
            "enabled",
            Kind::Bool,
            D::Bool(true),
            "Whether metrics are served (needs an `admin` block).",
            "enabled #false",
        ),
        K::new(
            "path",
            Kind::Str,
            D::Str("/metrics"),
            "HTTP path of the metrics endpoint.",
            r#"path "/internal/metrics""#,
        ),
    ],
};

static ADMIN: BlockSchema = BlockSchema {
    path: "admin",
    syntax: "admin { … }",
    doc: "The admin listener, separate from traffic listeners. On an address other than loopback it requires `token-file`.",
    form: Form::Children,
    keys: &[
        K::new(
            "address",
            Kind::SocketAddr,
            D::Str("127.0.0.1:9901"),
            "Address of the admin listener.",
            r#"address "127.0.0.1:9911""#,
        ),
        K::new(
            "token-file",
            Kind::Path,
            D::None,
            "File whose content (trimmed) is the bearer token every admin request except `GET /health` must carry. Absent: no token (loopback only).",
            r#"token-file "admin.token""#,
        ),
    ],
};
