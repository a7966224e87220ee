//! Decoding: parsed KDL documents → validated [`Config`].
//!
//! Stage 1 (syntax, in `lib.rs`) turned each file into a `kdl::KdlDocument`, the raw model
//! that mirrors the file with spans. Here stage 2 checks every node against the schema through
//! [`Reader`]s and stage 3 resolves references and checks rules that span several keys. Blocks
//! are decoded in dependency order (pools, agents and filters before the routes that name
//! them, routes before the listeners that name them) so each reference is checked where it is
//! written. Decoding never stops at the first problem.

mod agents;
mod headers;
mod inference;
mod listeners;
mod routes;
mod server;
mod upstreams;

use std::collections::HashMap;

use kdl::{KdlDocument, KdlValue};

use crate::diagnostic::{Code, Problem, Span};
use crate::model::{Agent, AgentEvent, Config, Server};
use crate::reader::{Cx, Reader, Spanned, args, describe};
use crate::schema::ROOT;
use crate::source::SourceId;

/// Decodes the documents of one configuration, main file first.
pub(crate) fn config(
    cx: &Cx<'_>,
    docs: &[(SourceId, &KdlDocument)],
    includes_expanded: bool,
) -> Option<Config> {
    let root = Reader::root(cx, &ROOT, docs);
    check_includes(cx, &root, includes_expanded);

    let server = root.block("server").and_then(|b| server::server(&b));
    let limits = root.block("limits").and_then(|b| server::limits(&b));
    let observability = root
        .block("observability")
        .and_then(|b| server::observability(&b));
    let admin = if root.has("admin") {
        root.block("admin").map(|b| server::admin(&b))
    } else {
        None
    };
    if let (Some(o), None) = (&observability, &admin)
        && let Some(span) = o.metrics_written
        && o.value.metrics.enabled
    {
        cx.report(
            Problem::new(
                Code::Conflict,
                Some(span),
                "metrics are served on the admin listener, but there is no `admin` block",
            )
            .help("add `admin { address \"127.0.0.1:9901\"; }`, or set `enabled #false`"),
        );
    }

    let upstreams = collect(
        &root,
        "upstreams",
        "upstream",
        "upstream",
        upstreams::upstream,
    );
    let agents = collect(&root, "agents", "agent", "agent", agents::agent);
    let filters = collect(&root, "filters", "filter", "filter", agents::filter);
    check_shared_namespace(cx, &agents, &filters);
    if let Some(s) = &server {
        check_response_body_agents(cx, s, &agents);
    }

    let known = routes::Known {
        upstreams: &upstreams.ids,
        agents: &agents.ids,
        filters: &filters.ids,
    };
    let routes = collect(&root, "routes", "route", "route", |r, id| {
        routes::route(r, id, &known)
    });
    let listeners = collect(&root, "listeners", "listener", "listener", |r, id| {
        listeners::listener(r, id, &routes.ids)
    });
    listeners::check_addresses(cx, &listeners.items, &listeners.spans);
    drop(root);

    if cx.sink.count() > 0 {
        return None;
    }
    Some(Config::new(
        server?,
        listeners.items,
        routes.items,
        upstreams.items,
        agents.items,
        filters.items,
        limits?,
        observability?.value,
        admin.flatten(),
    ))
}

fn check_includes(cx: &Cx<'_>, root: &Reader<'_>, expanded: bool) {
    for (file, node) in root.nodes("include") {
        let span = Span::new(file, node.span());
        let mut a = args(node);
        let ok = match (a.next(), a.next()) {
            (Some(e), None) => matches!(e.value(), KdlValue::String(s) if !s.is_empty()),
            _ => false,
        };
        if !ok || node.children().is_some() || node.entries().iter().any(|e| e.name().is_some()) {
            cx.report(
                Problem::new(
                    Code::Type,
                    Some(span),
                    "`include` takes one string: a path or glob pattern",
                )
                .help(r#"for example: include "conf.d/*.kdl""#),
            );
        } else if !expanded {
            cx.report(Problem::new(Code::Include, Some(span), "`include` cannot be followed here: this configuration was given as a single text")
                .help("validate the file from disk with `zentinel validate FILE`, or paste the included blocks in"));
        }
    }
}

/// IDs defined for one kind of item, with where each is written.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    spans: HashMap<String, Option<Span>>,
    order: Vec<String>,
}

impl Ids {
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.spans.contains_key(id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.order.iter().map(String::as_str)
    }

    pub(crate) fn span(&self, id: &str) -> Option<Span> {
        self.spans.get(id).copied().flatten()
    }

    /// Checks that `r` names a defined item of kind `what`, reporting it otherwise with the
    /// known IDs and the item (`owner`) that holds the reference.
    pub(crate) fn resolve(
        &self,
        cx: &Cx<'_>,
        what: &str,
        r: &Spanned<String>,
        context: &str,
        owner: Option<Span>,
    ) -> bool {
        if self.contains(&r.value) {
            return true;
        }
        let help = if self.is_empty() {
            format!("no {what} is defined; add one in `{what}s {{ … }}`")
        } else {
            let known = self.names().collect::<Vec<_>>().join(", ");
            match crate::diagnostic::closest(&r.value, self.names()) {
                Some(best) => format!("did you mean `{best}`? known {what}s: {known}"),
                None => format!("known {what}s: {known}"),
            }
        };
        let mut p = Problem::new(
            Code::UnknownReference,
            r.span,
            format!(
                "{context} names {what} \"{}\", which is not defined",
                r.value
            ),
        )
        .label(format!("unknown {what}"))
        .help(help);
        if let Some(o) = owner {
            p = p.related(o, format!("in {context}"));
        }
        cx.report(p);
        false
    }
}

/// The items of one collection block, in definition order.
pub(crate) struct Collected<T> {
    pub(crate) items: Vec<T>,
    pub(crate) ids: Ids,
    pub(crate) spans: Vec<Option<Span>>,
}

/// Checks an ID's characters. IDs appear in logs, metrics labels and URLs.
pub(crate) fn valid_id(cx: &Cx<'_>, what: &str, id: &Spanned<String>) -> bool {
    let ok = id.value.len() <= 64
        && id
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        cx.report(
            Problem::new(
                Code::InvalidValue,
                id.span,
                format!("{what} ID \"{}\" is not valid", id.value),
            )
            .help("IDs are at most 64 characters: letters, digits, `-`, `_` and `.`"),
        );
    }
    ok
}

/// Decodes every `item "<id>" { … }` of every `block { … }`, checking IDs are unique.
fn collect<'a, T>(
    root: &Reader<'a>,
    block: &str,
    item: &str,
    what: &str,
    decode: impl Fn(&Reader<'a>, &Spanned<String>) -> Option<T>,
) -> Collected<T> {
    let cx = root.cx();
    let mut out = Collected {
        items: Vec::new(),
        ids: Ids::default(),
        spans: Vec::new(),
    };
    for b in root.blocks(block) {
        for (id, r) in b.named(item) {
            let fresh = !out.ids.contains(&id.value);
            if !fresh {
                let mut p = Problem::new(
                    Code::DuplicateId,
                    id.span,
                    format!("{what} \"{}\" is defined twice", id.value),
                )
                .label("second definition")
                .help(format!("{what} IDs must be unique; rename one of them"));
                if let Some(first) = out.ids.span(&id.value) {
                    p = p.related(first, "first defined here");
                }
                cx.report(p);
            }
            let valid = valid_id(cx, what, &id);
            let decoded = decode(&r, &id);
            if fresh {
                out.ids.spans.insert(id.value.clone(), id.span);
                out.ids.order.push(id.value.clone());
                if let (Some(d), true) = (decoded, valid) {
                    out.items.push(d);
                    out.spans.push(r.span());
                }
            }
        }
    }
    out
}

/// Pingora's response body hook is synchronous: an agent's verdict on a response chunk is
/// awaited by handing the worker thread's other tasks to another thread, which only a
/// work-stealing scheduler can do.
fn check_response_body_agents(cx: &Cx<'_>, server: &Server, agents: &Collected<Agent>) {
    if server.work_stealing {
        return;
    }
    for (agent, span) in agents.items.iter().zip(&agents.spans) {
        if agent.events.contains(&AgentEvent::ResponseBody) {
            let id = agent.id.as_str();
            cx.report(
                Problem::new(
                    Code::Conflict,
                    *span,
                    format!(
                        "agent `{id}` takes `response-body` events, which need worker threads that share their work"
                    ),
                )
                .help("set `server { work-stealing #true; }`"),
            );
        }
    }
}

fn check_shared_namespace<A, F>(cx: &Cx<'_>, agents: &Collected<A>, filters: &Collected<F>) {
    for name in filters.ids.names() {
        if agents.ids.contains(name) {
            let mut p = Problem::new(Code::DuplicateId, filters.ids.span(name),
                format!("\"{name}\" is both an agent and a filter; route `filters` lists could not tell them apart"))
                .help("rename the agent or the filter");
            if let Some(s) = agents.ids.span(name) {
                p = p.related(s, "agent defined here");
            }
            cx.report(p);
        }
    }
}

/// Reports a value that fails a check specific to its key.
pub(crate) fn invalid(cx: &Cx<'_>, span: Option<Span>, message: String, help: Option<String>) {
    cx.report(Problem::new(Code::InvalidValue, span, message).help_opt(help));
}

/// The string arguments of a custom-shaped node (`set "name" "value"`), checked for count.
pub(crate) fn string_args(
    cx: &Cx<'_>,
    file: SourceId,
    node: &kdl::KdlNode,
    min: usize,
    max: usize,
    example: &str,
) -> Option<Vec<Spanned<String>>> {
    let name = node.name().value();
    let span = Span::new(file, node.span());
    let mut ok = true;
    if node.children().is_some()
        || node.entries().iter().any(|e| e.name().is_some())
        || node.ty().is_some()
    {
        cx.report(
            Problem::new(
                Code::Type,
                Some(span),
                format!("`{name}` takes only string values"),
            )
            .help(format!("for example: {example}")),
        );
        ok = false;
    }
    let mut out = Vec::new();
    for e in args(node) {
        match e.value() {
            KdlValue::String(s) => out.push(Spanned {
                value: s.clone(),
                span: Some(Span::new(file, e.span())),
            }),
            other => {
                cx.report(
                    Problem::new(
                        Code::Type,
                        Some(Span::new(file, e.span())),
                        format!("`{name}` takes strings, found {}", describe(other)),
                    )
                    .help(format!("for example: {example}")),
                );
                ok = false;
            }
        }
    }
    if ok && !(min..=max).contains(&out.len()) {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} or {max}")
        };
        cx.report(
            Problem::new(
                Code::Type,
                Some(span),
                format!("`{name}` takes {want} values, found {}", out.len()),
            )
            .help(format!("for example: {example}")),
        );
        ok = false;
    }
    ok.then_some(out)
}
