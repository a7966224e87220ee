//! HAProxy → Zentinel.
//!
//! Lines are parsed into sections ([`parse`]), each line registered in the ledger. `global`
//! gives process-wide limits and TLS defaults; each `frontend` (and `listen`) gives listeners
//! from its `bind`s and routes from its `use_backend` rules, whose ACL conditions become
//! matches ([`acl`]); each `backend` a frontend uses becomes an upstream ([`backend`]).
//! A proxy section inherits from the last `defaults` section before it, as in HAProxy.

mod acl;
mod backend;
mod frontend;
mod http_rules;
mod parse;

use crate::model::{Draft, IdSet};
use crate::quantity;
use crate::report::Ledger;
use parse::{Kind, Line, Section};

/// The mapping state.
pub(crate) struct Cx<'l> {
    pub(crate) ledger: &'l mut Ledger,
    pub(crate) draft: Draft,
    pub(crate) ids: IdSet,
    /// Each frontend's listeners and routes.
    pub(crate) groups: Vec<frontend::Group>,
}

/// A proxy section with the `defaults` it inherits from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proxy<'s> {
    pub(crate) section: &'s Section,
    pub(crate) defaults: Option<&'s Section>,
}

impl<'s> Proxy<'s> {
    pub(crate) fn name(&self) -> &'s str {
        self.section.name.as_deref().unwrap_or_default()
    }

    /// The section's own lines with `keyword` and `second` word, else the defaults'.
    pub(crate) fn find(&self, keyword: &str, second: Option<&str>) -> Option<&'s Line> {
        let hit = |l: &&Line| l.keyword() == keyword && second.is_none_or(|s| l.word(1) == Some(s));
        let own = self.section.lines.iter().rev().find(hit);
        own.or_else(|| self.defaults.and_then(|d| d.lines.iter().rev().find(hit)))
    }

    /// Every line with `keyword`, own lines first replacing none of the defaults'.
    pub(crate) fn own(&self, keyword: &'s str) -> impl Iterator<Item = &'s Line> + 's {
        self.section
            .lines
            .iter()
            .filter(move |l| l.keyword() == keyword)
    }

    /// The `mode`: `http` unless written otherwise (HAProxy's default is tcp, but a section
    /// without a mode in a config with `defaults mode http` is the common case).
    pub(crate) fn mode(&self) -> (&'s str, Option<&'s Line>) {
        match self.find("mode", None) {
            Some(l) => (l.word(1).unwrap_or("tcp"), Some(l)),
            None => ("tcp", None),
        }
    }

    /// A `timeout KIND` in milliseconds with its line.
    pub(crate) fn timeout(&self, kind: &str) -> Option<(u64, &'s Line)> {
        let l = self.find("timeout", Some(kind))?;
        l.word(2)
            .and_then(quantity::haproxy_time_ms)
            .map(|ms| (ms, l))
    }
}

pub(crate) fn convert(text: &str) -> (Draft, Ledger) {
    let mut ledger = Ledger::default();
    let sections = parse::parse(text, &mut ledger);
    let mut cx = Cx {
        ledger: &mut ledger,
        draft: Draft::default(),
        ids: IdSet::default(),
        groups: Vec::new(),
    };
    let global = sections.iter().find(|s| s.kind == Kind::Global);
    if let Some(g) = global {
        global_section(&mut cx, g);
    }
    let mut backends = backend::Backends::new();
    let mut defaults: Option<&Section> = None;
    let mut fronts = Vec::new();
    for s in &sections {
        match &s.kind {
            Kind::Defaults => {
                cx.ledger.mapped(s.head.id);
                defaults = Some(s);
            }
            Kind::Frontend => fronts.push(Proxy {
                section: s,
                defaults,
            }),
            Kind::Listen => {
                fronts.push(Proxy {
                    section: s,
                    defaults,
                });
                backends.set_defaults(s, defaults);
            }
            Kind::Backend => backends.set_defaults(s, defaults),
            Kind::Global => {}
            Kind::Other(k) => {
                let why = match k.as_str() {
                    "userlist" => {
                        "user lists serve HTTP authentication, which belongs in an auth agent"
                    }
                    "resolvers" => "Zentinel resolves host-name targets with the system resolver",
                    "peers" => {
                        "stick-table replication is not needed: Zentinel has no stick tables"
                    }
                    "http-errors" => "Zentinel serves its own error responses",
                    "cache" => "Zentinel does not cache responses",
                    _ => "this section has no Zentinel equivalent",
                };
                cx.ledger.not_mapped(s.head.id, why);
                for l in &s.lines {
                    cx.ledger
                        .not_mapped(l.id, format!("inside `{k}`, which is not mapped"));
                }
            }
        }
    }
    let tls_min = global.and_then(|g| frontend::global_min_version(g));
    for p in &fronts {
        frontend::proxy(&mut cx, *p, &mut backends, global, tls_min);
    }
    frontend::restrict_listeners(&mut cx);
    backends.finish(&mut cx);
    for s in &sections {
        for l in std::iter::once(&s.head).chain(&s.lines) {
            let why = reason(l).unwrap_or(match s.kind {
                Kind::Defaults => "no frontend or backend uses this default",
                _ => "no Zentinel equivalent",
            });
            cx.ledger.fallback(l.id, why);
        }
    }
    let draft = cx.draft;
    (draft, ledger)
}

fn global_section(cx: &mut Cx<'_>, g: &Section) {
    cx.ledger.mapped(g.head.id);
    for l in &g.lines {
        match l.keyword() {
            "maxconn" => match l.word(1).and_then(|v| v.parse::<u64>().ok()) {
                Some(n) if (1..=10_000_000).contains(&n) => {
                    cx.draft.limits.max_connections = Some(n);
                    cx.ledger.mapped(l.id);
                }
                _ => cx
                    .ledger
                    .not_mapped(l.id, "not a connection count in 1..=10000000"),
            },
            "nbthread" => match l.word(1).and_then(|v| v.parse::<u64>().ok()) {
                Some(n) if (1..=1024).contains(&n) => {
                    cx.draft.server.worker_threads = Some(n);
                    cx.ledger.mapped(l.id);
                }
                _ => cx.ledger.not_mapped(l.id, "not a thread count in 1..=1024"),
            },
            _ => {}
        }
    }
}

/// Why a line that no mapping pass claimed is not mapped.
fn reason(l: &Line) -> Option<&'static str> {
    let r = match l.keyword() {
        "log" | "log-format" | "log-tag" | "log-send-hostname" | "error-log-format" => {
            "logging goes to syslog in HAProxy; Zentinel's logs are set in `observability { … }`"
        }
        "chroot" | "user" | "group" | "uid" | "gid" | "daemon" | "pidfile" | "master-worker"
        | "nbproc" | "cpu-map" | "ulimit-n" | "node" | "description" | "localpeer" => {
            "process management belongs to the service manager"
        }
        "stats" => {
            "statistics are Prometheus metrics on the admin listener (`observability { metrics }`)"
        }
        "ssl-default-bind-ciphers"
        | "ssl-default-bind-ciphersuites"
        | "ssl-default-server-ciphers"
        | "ssl-default-server-ciphersuites"
        | "ssl-dh-param-file"
        | "tune.ssl.default-dh-param" => {
            "Zentinel offers only AEAD cipher suites; they are not configurable"
        }
        "ca-base" | "crt-base" => "no certificate path uses it",
        "errorfile" | "errorloc" | "errorloc302" | "errorloc303" | "errorfiles" => {
            "Zentinel serves its own error responses"
        }
        "option" => match l.word(1) {
            Some(
                "httplog"
                | "tcplog"
                | "dontlognull"
                | "log-separate-errors"
                | "dontlog-normal"
                | "log-health-checks",
            ) => "Zentinel's access log (`observability { access-log }`) has its own format",
            Some(
                "http-server-close"
                | "http-keep-alive"
                | "httpclose"
                | "forceclose"
                | "http-pretend-keepalive"
                | "http-no-delay"
                | "abortonclose",
            ) => "connection management is the proxy's own",
            Some("redispatch") => "retries go to another target when one is available",
            _ => "no Zentinel equivalent for this option",
        },
        "cookie" | "stick" | "stick-table" | "appsession" | "persist" => {
            "cookie and stick-table persistence are not supported; `load-balancing \"consistent-hash\"` with `hash-on \"cookie\"` hashes an existing cookie"
        }
        "compression" => "response compression: Zentinel passes bodies through unchanged",
        "capture" | "monitor-uri" | "monitor" | "unique-id-format" | "unique-id-header" => {
            "no Zentinel equivalent (request IDs: `server { request-id-header }`)"
        }
        "tune.bufsize" | "tune.maxrewrite" | "tune.http.maxhdr" => {
            "buffer sizes are the proxy's own; header limits are in `limits { … }`"
        }
        "hash-type" => "Zentinel's hash is always consistent",
        "http-reuse" => "connection reuse is set by `connection-pool { … }`",
        "mode" => "no section of this mode is mapped",
        _ => return None,
    };
    Some(r)
}
