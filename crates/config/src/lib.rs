//! Zentinel's configuration language: KDL v2 text → validated [`Config`], with precise
//! diagnostics, one table of defaults, and the route matcher.
//!
//! The crate is pure: no I/O, no async runtime, no network. It works on strings, so the same
//! code validates configurations in the proxy, in `zentinel validate` and, compiled to
//! WebAssembly, in the browser playground. Reading files and expanding `include` globs lives
//! in [`loader`], behind the `fs` feature.
//!
//! Pipeline: [`SourceSet`] → KDL documents (syntax) → schema-checked blocks (shape, types,
//! ranges, defaults; see [`schema`]) → references and cross-key rules → [`Config`]. All
//! problems of all files are collected into [`Diagnostics`].
//!
//! [`explain`] reads a validated [`Config`] for one request — listener, route and why,
//! upstream, agents, limits — through the same [`RouteMatcher`] the proxy uses.

mod decode;
pub mod diagnostic;
pub mod explain;
mod freeform;
#[cfg(feature = "fs")]
pub mod loader;
pub mod matcher;
pub mod model;
mod nesting;
pub mod path;
mod reader;
pub mod schema;
pub mod source;

pub use diagnostic::{Diagnostics, Problem};
pub use matcher::{Request, RouteMatcher};
pub use model::Config;
pub use source::{SourceFile, SourceSet};

use diagnostic::{Code, Sink, Span};

/// Loads a configuration given as one text. `include` is reported as an error, because a
/// single text has no files to include.
pub fn load_str(name: &str, text: &str) -> Result<Config, Diagnostics> {
    let mut sources = SourceSet::new();
    sources.push(SourceFile::new(name, text));
    load(sources, false, Vec::new())
}

/// Loads a configuration from its files (main file first). `includes_expanded` says the
/// caller already followed every `include` and added the files to `sources`; `earlier` are
/// problems the caller found while doing so.
pub fn load(
    sources: SourceSet,
    includes_expanded: bool,
    earlier: Vec<Problem>,
) -> Result<Config, Diagnostics> {
    let sink = Sink::default();
    for p in earlier {
        sink.report(p);
    }
    let mut docs = Vec::with_capacity(sources.len());
    for (id, file) in sources.iter() {
        match parse(id, &file.text) {
            Ok(doc) => docs.push((id, doc)),
            Err(problems) => problems.into_iter().for_each(|p| sink.report(p)),
        }
    }
    if sources.is_empty() {
        sink.report(Problem::new(
            Code::MissingKey,
            None,
            "no configuration file was given",
        ));
    }
    let config = if sink.count() == 0 {
        let cx = reader::Cx {
            sink: &sink,
            sources: &sources,
        };
        let refs: Vec<_> = docs.iter().map(|(id, d)| (*id, d)).collect();
        decode::config(&cx, &refs, includes_expanded)
    } else {
        None
    };
    match config {
        Some(c) if sink.count() == 0 => Ok(c),
        _ => Err(Diagnostics::new(sources, sink.into_problems())),
    }
}

/// Parses one file's KDL, turning syntax errors into problems.
pub fn parse(file: source::SourceId, text: &str) -> Result<kdl::KdlDocument, Vec<Problem>> {
    if let Some(too_deep) = nesting::check(text) {
        let (offset, len, message) = match too_deep {
            nesting::TooDeep::Blocks(at) => (
                at,
                1,
                format!("blocks nested deeper than {} levels", nesting::MAX_DEPTH),
            ),
            nesting::TooDeep::Slashdash(at) => (
                at,
                2,
                format!(
                    "more than {} slashdash comments in a row",
                    nesting::MAX_SLASHDASH_RUN
                ),
            ),
        };
        let mut p = Problem::new(Code::Syntax, Some(Span { file, offset, len }), message);
        p.help = Some("the configuration language needs only a few levels".to_owned());
        return Err(vec![p]);
    }
    text.parse::<kdl::KdlDocument>().map_err(|err| {
        let mut out: Vec<Problem> = err
            .diagnostics
            .iter()
            .map(|d| {
                let message = d.message.clone().unwrap_or_else(|| d.to_string());
                let mut p = Problem::new(Code::Syntax, Some(Span::new(file, d.span)), message);
                p.label = d.label.clone();
                p.help = d.help.clone();
                p
            })
            .collect();
        if out.is_empty() {
            out.push(Problem::new(
                Code::Syntax,
                Some(Span {
                    file,
                    offset: 0,
                    len: 0,
                }),
                "not a valid KDL v2 document",
            ));
        }
        out
    })
}

/// Validates one text and returns the outcome as JSON: `{"ok":true,…}` with a summary, or
/// `{"ok":false,"problems":[…]}`. This is what the browser playground calls.
pub fn validate_to_json(name: &str, text: &str) -> String {
    let value = match load_str(name, text) {
        Ok(c) => serde_json::json!({
            "ok": true,
            "summary": {
                "listeners": c.listeners.len(),
                "routes": c.routes.len(),
                "upstreams": c.upstreams.len(),
                "agents": c.agents.len(),
                "filters": c.filters.len(),
            },
            "config": c.to_json(),
        }),
        Err(d) => d.to_json(),
    };
    value.to_string()
}
