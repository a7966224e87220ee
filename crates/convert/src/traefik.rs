//! Traefik (file provider, dynamic configuration in YAML or TOML) → Zentinel.
//!
//! The file is read into a tree with positions ([`tree`]); every key is registered in the
//! ledger by its dotted path. `http.routers` become routes (their rules via [`rule`]),
//! `http.services` upstreams and `http.middlewares` header policies, filters and limits
//! ([`http`]). Entry points are static configuration in Traefik, so their addresses come
//! from [`ConvertOptions`] (or an `entryPoints` section in the same file); without one, no
//! listener is invented.

mod http;
mod rule;
mod tree;

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::model::{Draft, IdSet};
use crate::report::{ItemId, Ledger};
use crate::{ConvertOptions, TraefikFormat};
use tree::{Node, Value};

/// The mapping state.
pub(crate) struct Cx<'l> {
    pub(crate) ledger: &'l mut Ledger,
    pub(crate) draft: Draft,
    pub(crate) ids: IdSet,
    /// Ledger entries by dotted path (`http.routers.api.rule`).
    pub(crate) paths: HashMap<String, ItemId>,
}

impl Cx<'_> {
    pub(crate) fn id(&self, path: &str) -> Option<ItemId> {
        self.paths.get(path).copied()
    }

    pub(crate) fn mapped(&mut self, path: &str) {
        if let Some(id) = self.id(path) {
            self.ledger.mapped(id);
        }
    }

    pub(crate) fn caveat(&mut self, path: &str, why: impl Into<String>) {
        if let Some(id) = self.id(path) {
            self.ledger.caveat(id, why);
        }
    }

    pub(crate) fn not_mapped(&mut self, path: &str, why: impl Into<String>) {
        if let Some(id) = self.id(path) {
            self.ledger.not_mapped(id, why);
        }
    }

    /// Every registered path under `prefix` (itself included) gets `why` unless decided.
    pub(crate) fn fallback_under(&mut self, prefix: &str, why: &str) {
        let dotted = format!("{prefix}.");
        let indexed = format!("{prefix}[");
        let ids: Vec<ItemId> = self
            .paths
            .iter()
            .filter(|(p, _)| *p == prefix || p.starts_with(&dotted) || p.starts_with(&indexed))
            .map(|(_, id)| *id)
            .collect();
        for id in ids {
            self.ledger.fallback(id, why);
        }
    }
}

fn scalar_text(n: &Node) -> Option<String> {
    match &n.value {
        Value::Scalar(s) => Some(s.clone()),
        Value::Seq(items) if items.iter().all(|i| i.scalar().is_some()) => Some(format!(
            "[{}]",
            items
                .iter()
                .filter_map(Node::scalar)
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => None,
    }
}

/// Registers every key (and every map in a sequence) under `path`.
fn register(
    ledger: &mut Ledger,
    paths: &mut HashMap<String, ItemId>,
    node: &Node,
    path: &str,
    depth: usize,
) {
    if depth > 48 {
        return;
    }
    let context = if path.is_empty() { "top" } else { path };
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                let p = if path.is_empty() {
                    k.name.clone()
                } else {
                    format!("{path}.{}", k.name)
                };
                let text = match scalar_text(v) {
                    Some(s) => format!("{}: {s}", k.name),
                    None => k.name.clone(),
                };
                let id = ledger.add(k.line, k.column, context, &text);
                paths.entry(p.clone()).or_insert(id);
                if scalar_text(v).is_none() {
                    register(ledger, paths, v, &p, depth + 1);
                }
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Value::Scalar(s) = &item.value {
                    let id = ledger.add(item.line, item.column, context, &format!("- {s}"));
                    paths.entry(p).or_insert(id);
                } else {
                    register(ledger, paths, item, &p, depth + 1);
                }
            }
        }
        Value::Scalar(_) => {}
    }
}

/// A key whose children were (partly) mapped is mapped itself: its effect is theirs.
fn containers(cx: &mut Cx<'_>) {
    let mut paths: Vec<(String, ItemId)> = cx.paths.iter().map(|(p, i)| (p.clone(), *i)).collect();
    // Deepest first, so a parent sees its children's outcome.
    paths.sort_by_key(|(p, _)| std::cmp::Reverse(p.matches(['.', '[']).count()));
    for (p, id) in &paths {
        if cx.ledger.is_decided(*id) {
            continue;
        }
        let dotted = format!("{p}.");
        let indexed = format!("{p}[");
        let child_mapped = paths.iter().any(|(c, cid)| {
            (c.starts_with(&dotted) || c.starts_with(&indexed)) && cx.ledger.is_mapped(*cid)
        });
        if child_mapped {
            cx.ledger.mapped(*id);
        }
    }
}

/// `:80`, `0.0.0.0:80`, `[::]:443` (Traefik's entry point address syntax).
pub(crate) fn entry_address(a: &str) -> Option<SocketAddr> {
    let a = a.strip_suffix("/tcp").unwrap_or(a);
    let (host, port) = a.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if host.is_empty() {
        std::net::IpAddr::from([0, 0, 0, 0])
    } else {
        host.parse().ok()?
    };
    Some(SocketAddr::new(ip, port))
}

pub(crate) fn convert(
    text: &str,
    format: TraefikFormat,
    options: &ConvertOptions,
) -> (Draft, Ledger) {
    let mut ledger = Ledger::default();
    let mut draft = Draft::default();
    let parsed = match format {
        TraefikFormat::Yaml => tree::yaml(text),
        TraefikFormat::Toml => tree::toml(text),
    };
    let root = match parsed {
        Ok(r) => r,
        Err(e) => {
            draft.blockers.push(format!(
                "line {}, column {}: the Traefik configuration does not parse: {}",
                e.line, e.column, e.message
            ));
            return (draft, ledger);
        }
    };
    let mut paths = HashMap::new();
    register(&mut ledger, &mut paths, &root, "", 0);
    let mut cx = Cx {
        ledger: &mut ledger,
        draft,
        ids: IdSet::default(),
        paths,
    };
    http::convert(&mut cx, &root, options);
    containers(&mut cx);
    for (k, _) in root.entries() {
        let why = match k.name.as_str() {
            "tcp" | "udp" => "TCP and UDP routing: Zentinel proxies HTTP only",
            "http" | "tls" | "entryPoints" => "no Zentinel equivalent",
            _ => "not part of Traefik's dynamic configuration",
        };
        cx.fallback_under(&k.name, why);
    }
    let draft = cx.draft;
    (draft, ledger)
}
