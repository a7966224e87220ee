//! nginx → Zentinel.
//!
//! The file is parsed with nginx's own token rules ([`parse`]); every directive is registered
//! in the ledger with its position and context. The `http` context (or a top level holding
//! `server` blocks, as in a `sites-available` file) is then mapped: `upstream` blocks become
//! upstreams when a `proxy_pass` uses them, each `server` gives listeners, and each `location`
//! that proxies gives a route ([`server`]). Settings nginx inherits from `http` to `server` to
//! `location` are carried down in a [`scope::Scope`]. `include` is never followed: the
//! converter works on one text.

mod directives;
mod parse;
mod scope;
mod server;
mod upstream;

use crate::model::{Draft, LogDestination, LogTarget};
use crate::quantity;
use crate::report::{ItemId, Ledger};
use parse::Directive;

/// A directive with its ledger entry and children.
#[derive(Debug)]
pub(crate) struct Node<'a> {
    pub(crate) d: &'a Directive,
    pub(crate) id: ItemId,
    pub(crate) children: Vec<Node<'a>>,
}

impl Node<'_> {
    pub(crate) fn name(&self) -> &str {
        &self.d.name
    }

    pub(crate) fn arg(&self, i: usize) -> Option<&str> {
        self.d.arg(i)
    }

    pub(crate) fn nargs(&self) -> usize {
        self.d.args.len()
    }
}

/// Registers `dirs` and their descendants in source order.
fn register<'a>(ledger: &mut Ledger, dirs: &'a [Directive], context: &str) -> Vec<Node<'a>> {
    dirs.iter()
        .map(|d| {
            let id = ledger.add(d.line, d.column, context, &d.text());
            let children = match &d.block {
                Some(b) => {
                    let server_name = b
                        .iter()
                        .find(|c| c.name == "server_name")
                        .and_then(|c| c.arg(0))
                        .filter(|_| d.name == "server");
                    let label = match (server_name, d.args.is_empty()) {
                        (Some(n), _) => format!("server {n}"),
                        (None, true) => d.name.clone(),
                        (None, false) => d.text(),
                    };
                    let inner = if context == "main" {
                        label
                    } else {
                        format!("{context} > {label}")
                    };
                    register(ledger, b, &inner)
                }
                None => Vec::new(),
            };
            Node { d, id, children }
        })
        .collect()
}

/// Everything the mapping passes share.
pub(crate) struct Cx<'l> {
    pub(crate) ledger: &'l mut Ledger,
    pub(crate) draft: Draft,
    pub(crate) ids: crate::model::IdSet,
}

pub(crate) fn convert(text: &str) -> (Draft, Ledger) {
    let mut ledger = Ledger::default();
    let mut draft = Draft::default();
    let dirs = match parse::parse(text) {
        Ok(d) => d,
        Err(e) => {
            draft.blockers.push(format!(
                "line {}, column {}: the nginx configuration does not parse: {}",
                e.line, e.column, e.message
            ));
            return (draft, ledger);
        }
    };
    let nodes = register(&mut ledger, &dirs, "main");
    let mut cx = Cx {
        ledger: &mut ledger,
        draft,
        ids: crate::model::IdSet::default(),
    };
    let has_http = nodes.iter().any(|n| n.name() == "http");
    // A `sites-available` / `conf.d` file: its directives belong in `http`.
    let fragment = !has_http
        && nodes
            .iter()
            .any(|n| matches!(n.name(), "server" | "upstream" | "location"));
    let mut http_blocks = Vec::new();
    let mut fragment_nodes = Vec::new();
    for n in &nodes {
        if n.name() == "http" && n.d.block.is_some() {
            http_blocks.push(n);
        } else if fragment && !is_main_only(n.name()) {
            fragment_nodes.push(n);
        } else {
            main_directive(&mut cx, n);
        }
    }
    if http_blocks.len() > 1 {
        for extra in &http_blocks[1..] {
            cx.ledger.not_mapped(
                extra.id,
                "nginx allows one `http` block; this one is ignored",
            );
        }
    }
    if let Some(http) = http_blocks.first() {
        cx.ledger.mapped(http.id);
        let children: Vec<&Node<'_>> = http.children.iter().collect();
        server::http(&mut cx, &children);
    } else if fragment {
        server::http(&mut cx, &fragment_nodes);
    }
    let draft = cx.draft;
    (draft, ledger)
}

/// Directives that only exist in the main context.
fn is_main_only(name: &str) -> bool {
    matches!(
        name,
        "user"
            | "worker_processes"
            | "pid"
            | "events"
            | "load_module"
            | "worker_rlimit_nofile"
            | "worker_cpu_affinity"
            | "worker_priority"
            | "worker_shutdown_timeout"
            | "daemon"
            | "master_process"
            | "env"
            | "stream"
            | "mail"
            | "thread_pool"
            | "timer_resolution"
            | "lock_file"
            | "pcre_jit"
            | "ssl_engine"
            | "working_directory"
    ) || name == "error_log"
}

/// A directive of the main context.
fn main_directive(cx: &mut Cx<'_>, n: &Node<'_>) {
    match n.name() {
        "worker_processes" => worker_processes(cx, n),
        "error_log" => error_log(cx, n),
        "include" => directives::include(cx.ledger, n),
        "events" | "stream" | "mail" => {
            let why = match n.name() {
                "events" => {
                    "connection processing is the proxy's own (Tokio/Pingora), not configurable"
                }
                "stream" => "TCP/UDP proxying: Zentinel proxies HTTP only",
                _ => "mail proxying: Zentinel proxies HTTP only",
            };
            cx.ledger.not_mapped(n.id, why);
            directives::inside_unmapped(cx.ledger, &n.children, n.name());
        }
        _ => directives::generic(cx.ledger, n),
    }
}

fn worker_processes(cx: &mut Cx<'_>, n: &Node<'_>) {
    match n.arg(0) {
        Some("auto") => cx.ledger.mapped(n.id),
        Some(v) => match v.parse::<u64>() {
            Ok(k) if (1..=1024).contains(&k) => {
                cx.draft.server.worker_threads = Some(k);
                cx.ledger.caveat(
                    n.id,
                    "server { worker-threads }: threads of one process, not processes",
                );
            }
            _ => cx
                .ledger
                .not_mapped(n.id, "not a number of workers in 1..=1024"),
        },
        None => cx.ledger.not_mapped(n.id, "no value"),
    }
}

fn error_log(cx: &mut Cx<'_>, n: &Node<'_>) {
    let Some(dest) = n.arg(0) else {
        cx.ledger.not_mapped(n.id, "no value");
        return;
    };
    let level = match n.arg(1) {
        None => None,
        Some(l @ ("debug" | "info" | "warn" | "error")) => Some(l),
        Some("notice") => Some("info"),
        Some("crit" | "alert" | "emerg") => Some("error"),
        Some(_) => {
            cx.ledger.not_mapped(n.id, "unknown log level");
            return;
        }
    };
    let level = level.map(|l| match l {
        "debug" => "debug",
        "info" => "info",
        "warn" => "warn",
        _ => "error",
    });
    let target = match dest {
        "stderr" => LogTarget {
            destination: LogDestination::Stderr,
            path: None,
            level,
        },
        d if d.starts_with("syslog:") || d.starts_with("memory:") => {
            cx.ledger.not_mapped(
                n.id,
                "Zentinel logs to a file, stdout or stderr, not to syslog or memory",
            );
            return;
        }
        "/dev/null" => LogTarget {
            destination: LogDestination::Off,
            path: None,
            level: None,
        },
        path => LogTarget {
            destination: LogDestination::File,
            path: Some(path.to_owned()),
            level,
        },
    };
    if cx.draft.observability.error_log.is_some() {
        cx.ledger.not_mapped(
            n.id,
            "Zentinel has one error log; the first `error_log` is used",
        );
        return;
    }
    cx.draft.observability.error_log = Some(target);
    cx.ledger.caveat(
        n.id,
        "observability { error-log }: Zentinel writes JSON lines, not nginx's format",
    );
}

/// Parses a size argument, reporting a bad one.
pub(crate) fn size_arg(ledger: &mut Ledger, n: &Node<'_>, i: usize) -> Option<u64> {
    let v = n.arg(i).and_then(quantity::nginx_size);
    if v.is_none() {
        ledger.not_mapped(n.id, "not a size nginx accepts (like 512, 8k, 10m)");
    }
    v
}

/// Parses a time argument in milliseconds, reporting a bad one.
pub(crate) fn time_arg(ledger: &mut Ledger, n: &Node<'_>, i: usize) -> Option<u64> {
    let v = n.arg(i).and_then(quantity::nginx_time_ms);
    if v.is_none() {
        ledger.not_mapped(n.id, "not a time nginx accepts (like 60s, 500ms, 1m)");
    }
    v
}
