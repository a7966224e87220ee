//! Header names, values and header edit policies.

use std::collections::HashMap;

use super::{invalid, string_args};
use crate::diagnostic::{Code, Problem, Span};
use crate::model::HeaderPolicy;
use crate::reader::{Cx, Reader, Spanned};

/// Headers a policy may not touch: the proxy owns them (framing and hop-by-hop).
const PROTECTED: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "host",
];

/// A character allowed in an HTTP token (header names, methods).
pub(super) fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A header name (RFC 9110 token), lower-cased.
pub(super) fn header_name(cx: &Cx<'_>, name: &Spanned<String>) -> Option<String> {
    if name.value.is_empty() || !name.value.chars().all(is_tchar) {
        invalid(
            cx,
            name.span,
            format!("\"{}\" is not a valid header name", name.value),
            Some(
                "header names are letters, digits and !#$%&'*+-.^_`|~, without spaces or colons"
                    .to_owned(),
            ),
        );
        return None;
    }
    Some(name.value.to_ascii_lowercase())
}

/// A header value: no control characters other than tab (so never CR, LF or NUL).
pub(super) fn header_value(cx: &Cx<'_>, value: &Spanned<String>) -> Option<String> {
    if value
        .value
        .chars()
        .any(|c| (c.is_control() && c != '\t') || c == '\u{7f}')
    {
        invalid(
            cx,
            value.span,
            "a header value may not contain control characters (CR, LF, NUL…)".to_owned(),
            None,
        );
        return None;
    }
    if value.value.starts_with([' ', '\t']) || value.value.ends_with([' ', '\t']) {
        invalid(
            cx,
            value.span,
            "a header value may not start or end with whitespace".to_owned(),
            None,
        );
        return None;
    }
    Some(value.value.clone())
}

fn editable(cx: &Cx<'_>, name: &str, span: Option<Span>) -> bool {
    if PROTECTED.contains(&name) {
        cx.report(
            Problem::new(
                Code::Conflict,
                span,
                format!("header `{name}` is managed by the proxy and cannot be edited"),
            )
            .help(
                "framing, connection and Host headers are set by the proxy from the request itself",
            ),
        );
        return false;
    }
    true
}

/// For each header name, the edits that touch it and where.
type Touched = HashMap<String, Vec<(&'static str, Option<Span>)>>;

/// Decodes a `request-headers` / `response-headers` block.
pub(super) fn policy(r: &Reader<'_>) -> Option<HeaderPolicy> {
    let cx = r.cx();
    let mut p = HeaderPolicy::default();
    let mut ok = true;
    // Where each name is touched, to reject edits that cancel each other out.
    let mut touched = Touched::new();
    let mut pair = |key: &'static str, out: &mut Vec<(String, String)>, ok: &mut bool| {
        for (file, node) in r.nodes(key) {
            let example = if key == "rename" {
                r#"rename "x-old" "x-new""#
            } else {
                r#"set "x-name" "value""#
            };
            let Some(a) = string_args(cx, file, node, 2, 2, example) else {
                *ok = false;
                continue;
            };
            let name = header_name(cx, &a[0]);
            let second = if key == "rename" {
                header_name(cx, &a[1])
            } else {
                header_value(cx, &a[1])
            };
            match (name, second) {
                (Some(n), Some(v))
                    if editable(cx, &n, a[0].span)
                        && (key != "rename" || editable(cx, &v, a[1].span)) =>
                {
                    touched.entry(n.clone()).or_default().push((key, a[0].span));
                    if key == "rename" {
                        touched
                            .entry(v.clone())
                            .or_default()
                            .push(("rename-to", a[1].span));
                    }
                    out.push((n, v));
                }
                _ => *ok = false,
            }
        }
    };
    pair("rename", &mut p.rename, &mut ok);
    pair("set", &mut p.set, &mut ok);
    pair("add", &mut p.add, &mut ok);
    match r.string_list("remove") {
        Some(names) => {
            for n in &names {
                match header_name(cx, n) {
                    Some(h) if editable(cx, &h, n.span) => {
                        touched
                            .entry(h.clone())
                            .or_default()
                            .push(("remove", n.span));
                        p.remove.push(h);
                    }
                    _ => ok = false,
                }
            }
        }
        None => ok = false,
    }
    ok &= no_conflicts(cx, &touched);
    ok.then_some(p)
}

/// Rejects edits of one header that cancel each other out.
fn no_conflicts(cx: &Cx<'_>, touched: &Touched) -> bool {
    let mut ok = true;
    for (name, uses) in touched {
        let kinds: Vec<&str> = uses.iter().map(|u| u.0).collect();
        let conflict =
            if kinds.contains(&"remove") && (kinds.contains(&"set") || kinds.contains(&"add")) {
                Some("it is removed and then given a value; `set` alone replaces existing values")
            } else if kinds.iter().filter(|k| **k == "set").count() > 1 {
                Some("it is set twice; only the last value would remain")
            } else if kinds.iter().filter(|k| **k == "rename").count() > 1 {
                Some("it is renamed twice")
            } else if kinds.contains(&"rename") && kinds.contains(&"remove") {
                Some("it is renamed and removed")
            } else {
                None
            };
        if let Some(why) = conflict {
            let span = uses.last().and_then(|u| u.1);
            let mut pr = Problem::new(
                Code::Conflict,
                span,
                format!("conflicting edits of header `{name}`: {why}"),
            );
            if let Some(first) = uses.first().and_then(|u| u.1) {
                pr = pr.related(first, "first edited here");
            }
            cx.report(pr);
            ok = false;
        }
    }
    ok
}
