//! Renders the schema as the configuration reference (`docs/config.md`) and as the
//! `zentinel config defaults` listing.

use std::fmt::Write as _;

use super::{BlockSchema, Default, Kind, all_blocks};

fn kind(k: &Kind) -> String {
    match k {
        Kind::Int { min, max, unit } => {
            let unit = if unit.is_empty() {
                String::new()
            } else {
                format!(" ({unit})")
            };
            format!("integer {min}..={max}{unit}")
        }
        Kind::Bool => "boolean".to_owned(),
        Kind::Flag => "flag (no value)".to_owned(),
        Kind::Str => "string".to_owned(),
        Kind::Enum(v) => format!("one of {}", quoted(v)),
        Kind::EnumList(v) => format!("one or more of {}", quoted(v)),
        Kind::StrList => "one or more strings".to_owned(),
        Kind::SocketAddr => "string `ip:port`".to_owned(),
        Kind::Path => "path".to_owned(),
        Kind::CidrList => "one or more CIDRs or IPs".to_owned(),
        Kind::Block(b) => format!("block `{}`", b.syntax),
        Kind::Named { block, .. } => format!("block `{}`", block.syntax),
        Kind::FreeForm => "free-form block".to_owned(),
        Kind::Custom(s) => (*s).to_owned(),
    }
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn default(d: Default) -> String {
    match d {
        Default::Required => "required".to_owned(),
        Default::Int(i) => i.to_string(),
        Default::Bool(b) => format!("#{b}"),
        Default::Str(s) => format!("\"{s}\""),
        Default::None => "none".to_owned(),
        Default::Computed(s) => s.to_owned(),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn anchor(b: &BlockSchema) -> String {
    if b.path.is_empty() {
        "top-level".to_owned()
    } else {
        b.path.replace('.', "-")
    }
}

fn title(b: &BlockSchema) -> String {
    if b.path.is_empty() {
        "Top level".to_owned()
    } else {
        format!("`{}`", b.path)
    }
}

/// The configuration reference in Markdown: every block and key with type, default,
/// meaning and example.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str("# Configuration reference\n\n");
    out.push_str(
        "<!-- Generated from the schema in crates/config/src/schema by `zentinel config docs`. \
                  Do not edit by hand: a test fails when this file and the schema differ. -->\n\n",
    );
    out.push_str("Zentinel is configured in [KDL v2](https://kdl.dev). Every key below is checked: an unknown \
                  key, a value of the wrong type or out of range, an unknown value, a duplicate ID or a \
                  reference to something undefined is an error with its file, line and column, and the \
                  configuration is refused. Durations are integers with the unit in the key name (`-ms`, \
                  `-secs`, `-seconds`); sizes are integers in bytes (`-bytes`). Booleans are `#true` and \
                  `#false`. Relative paths are relative to the file they are written in.\n\n");
    out.push_str(
        "`zentinel config defaults` prints the same keys with their defaults.\n\n## Blocks\n\n",
    );
    let blocks = all_blocks();
    for b in &blocks {
        let depth = b.path.matches('.').count() + usize::from(!b.path.is_empty());
        let _ = writeln!(
            out,
            "{}- [{}](#{})",
            "  ".repeat(depth),
            title(b),
            anchor(b)
        );
    }
    for b in &blocks {
        let _ = writeln!(out, "\n<a id=\"{}\"></a>\n## {}\n", anchor(b), title(b));
        let _ = writeln!(out, "Written `{}`. {}\n", b.syntax, b.doc);
        out.push_str("| key | type | default | meaning | example |\n|---|---|---|---|---|\n");
        for k in b.keys {
            let repeat = if k.repeatable { " (repeatable)" } else { "" };
            let _ = writeln!(
                out,
                "| `{}`{repeat} | {} | {} | {} | `{}` |",
                k.name,
                cell(&kind(&k.kind)),
                cell(&default(k.default)),
                cell(k.doc),
                cell(k.example)
            );
        }
    }
    out
}

/// Every key with its default and meaning, one per line, for `zentinel config defaults`.
pub fn defaults_table() -> String {
    let mut rows = Vec::new();
    for b in all_blocks() {
        for k in b.keys {
            if matches!(k.kind, Kind::Block(_) | Kind::Named { .. }) {
                continue;
            }
            let path = if b.path.is_empty() {
                k.name.to_owned()
            } else {
                format!("{}.{}", b.path, k.name)
            };
            let doc = k
                .doc
                .split(". ")
                .next()
                .unwrap_or(k.doc)
                .trim_end_matches('.');
            rows.push((path, default(k.default), doc.to_owned()));
        }
    }
    let w1 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w2 = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .min(32);
    let mut out = String::new();
    for (p, d, doc) in rows {
        let _ = writeln!(out, "{p:<w1$}  {d:<w2$}  {doc}");
    }
    out
}
