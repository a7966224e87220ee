//! ACLs and `if` / `unless` conditions → route matches.
//!
//! HAProxy conditions are already in disjunctive form: terms side by side are ANDed, `||`
//! (or `or`) separates alternatives, and an ACL defined on several lines is the OR of them.
//! Each alternative becomes one route; several values of one path test become one regular
//! expression.

use std::collections::HashMap;

use super::parse::Line;
use crate::model::PathMatch;
use crate::rules;

/// What a conjunction of ACLs asks of a request, in Zentinel's terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Match {
    pub(crate) hosts: Vec<String>,
    pub(crate) path: Option<PathMatch>,
    pub(crate) methods: Vec<String>,
    pub(crate) headers: Vec<(String, Option<String>)>,
    pub(crate) query: Vec<(String, Option<String>)>,
}

/// One ACL definition line: `acl NAME FETCH [FLAGS] VALUES…`.
#[derive(Clone, Debug)]
pub(crate) struct AclDef<'l> {
    pub(crate) line: &'l Line,
    words: Vec<String>,
}

/// The named ACLs of a section.
#[derive(Debug, Default)]
pub(crate) struct Acls<'l> {
    by_name: HashMap<String, Vec<AclDef<'l>>>,
}

impl<'l> Acls<'l> {
    pub(crate) fn add(&mut self, line: &'l Line) -> bool {
        let Some(name) = line.word(1) else {
            return false;
        };
        if line.words.len() < 3 {
            return false;
        }
        self.by_name
            .entry(name.to_owned())
            .or_default()
            .push(AclDef {
                line,
                words: line.words[2..].to_vec(),
            });
        true
    }
}

/// The ACL lines a condition used, to mark in the report.
pub(crate) type Used<'l> = Vec<&'l Line>;

/// Converts the words after `if`/`unless` into alternatives, or why it cannot.
pub(crate) fn condition<'l>(
    words: &[String],
    acls: &Acls<'l>,
    used: &mut Used<'l>,
) -> Result<Vec<Match>, String> {
    let (negate_all, rest) = match words.first().map(String::as_str) {
        Some("if") => (false, &words[1..]),
        Some("unless") => (true, &words[1..]),
        _ => return Err("a condition starts with `if` or `unless`".to_owned()),
    };
    if negate_all {
        return Err(
            "`unless` (a negated condition) has no Zentinel equivalent: routes match positively"
                .to_owned(),
        );
    }
    let mut alternatives: Vec<Match> = Vec::new();
    for term in split_or(rest) {
        let mut current: Vec<Match> = vec![Match::default()];
        let mut i = 0;
        while i < term.len() {
            let w = term[i].as_str();
            let (options, next) = if w == "{" {
                let close = term[i..]
                    .iter()
                    .position(|t| t == "}")
                    .map(|p| p + i)
                    .ok_or_else(|| "an anonymous ACL `{ … }` is not closed".to_owned())?;
                (vec![fetch(&term[i + 1..close])?], close + 1)
            } else if w.starts_with('!') {
                return Err(format!("`{w}`: negated ACLs have no Zentinel equivalent"));
            } else {
                (named(w, acls, used)?, i + 1)
            };
            // AND with an OR of options: every combination.
            let mut combined = Vec::new();
            for c in &current {
                for o in &options {
                    combined.push(and(c, o)?);
                }
            }
            current = combined;
            if current.len() > 64 {
                return Err("the condition expands to more than 64 routes".to_owned());
            }
            i = next;
        }
        alternatives.extend(current);
    }
    if alternatives.is_empty() {
        return Err("an empty condition".to_owned());
    }
    Ok(alternatives)
}

fn split_or(words: &[String]) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for w in words {
        if w == "||" || w == "or" {
            out.push(Vec::new());
        } else if let Some(last) = out.last_mut() {
            last.push(w.clone());
        }
    }
    out.into_iter().filter(|t| !t.is_empty()).collect()
}

/// A named ACL (several definitions are ORed) or a predefined one.
fn named<'l>(name: &str, acls: &Acls<'l>, used: &mut Used<'l>) -> Result<Vec<Match>, String> {
    if let Some(defs) = acls.by_name.get(name) {
        let mut out = Vec::new();
        for d in defs {
            out.push(
                fetch(&d.words).map_err(|e| format!("ACL `{name}` (line {}): {e}", d.line.line))?,
            );
            used.push(d.line);
        }
        return Ok(out);
    }
    let method = |m: &[&str]| Match {
        methods: m.iter().map(|s| (*s).to_owned()).collect(),
        ..Match::default()
    };
    match name {
        "TRUE" | "HTTP" => Ok(vec![Match::default()]),
        "METH_GET" => Ok(vec![method(&["GET", "HEAD"])]),
        "METH_POST" => Ok(vec![method(&["POST"])]),
        "METH_PUT" => Ok(vec![method(&["PUT"])]),
        "METH_DELETE" => Ok(vec![method(&["DELETE"])]),
        "METH_OPTIONS" => Ok(vec![method(&["OPTIONS"])]),
        "METH_HEAD" => Ok(vec![method(&["HEAD"])]),
        _ => Err(format!("ACL `{name}` is not defined in this section")),
    }
}

/// ANDs two matches; `Err` when both constrain the same thing in a way Zentinel cannot
/// express in one route.
fn and(a: &Match, b: &Match) -> Result<Match, String> {
    let mut m = a.clone();
    match (&m.path, &b.path) {
        (Some(_), Some(_)) => {
            return Err("two path conditions in one rule cannot be combined".to_owned());
        }
        (None, Some(p)) => m.path = Some(p.clone()),
        _ => {}
    }
    m.hosts = intersect(&m.hosts, &b.hosts, "host")?;
    m.methods = intersect(&m.methods, &b.methods, "method")?;
    m.headers.extend(b.headers.iter().cloned());
    m.query.extend(b.query.iter().cloned());
    Ok(m)
}

fn intersect(a: &[String], b: &[String], what: &str) -> Result<Vec<String>, String> {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => Ok(b.to_vec()),
        (_, true) => Ok(a.to_vec()),
        _ => {
            let both: Vec<String> = a.iter().filter(|x| b.contains(x)).cloned().collect();
            if both.is_empty() {
                Err(format!(
                    "two {what} conditions that no request can meet together"
                ))
            } else {
                Ok(both)
            }
        }
    }
}

/// Match kind of a sample fetch: `-m` method or the fetch's suffix.
fn fetch(words: &[String]) -> Result<Match, String> {
    let Some((f, rest)) = words.split_first() else {
        return Err("an ACL needs a fetch".to_owned());
    };
    let mut flags_i = false;
    let mut method: Option<String> = None;
    let mut values: Vec<String> = Vec::new();
    let mut it = rest.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "-i" => flags_i = true,
            "-m" => method = it.next().cloned(),
            "-f" | "-M" => return Err("ACL values from files are not supported".to_owned()),
            "--" => values.extend(it.by_ref().cloned()),
            "-n" => {}
            v => values.push(v.to_owned()),
        }
    }
    let (base, suffix) = split_fetch(f);
    let kind = method.unwrap_or(suffix);
    match base.as_str() {
        "path" => path(&kind, &values, flags_i),
        "hdr(host)" | "req.hdr(host)" => host(&kind, &values),
        b if b.starts_with("hdr(") || b.starts_with("req.hdr(") => header(b, &kind, &values),
        "method" => {
            let ms: Option<Vec<String>> = values.iter().map(|m| rules::method(m)).collect();
            match ms {
                Some(ms) if !ms.is_empty() => Ok(Match {
                    methods: ms,
                    ..Match::default()
                }),
                _ => Err("not a list of methods".to_owned()),
            }
        }
        b if b.starts_with("url_param(") || b.starts_with("urlp(") => {
            let name = inner(b).ok_or_else(|| "a parameter name is needed".to_owned())?;
            if !matches!(kind.as_str(), "" | "str") || values.len() > 1 {
                return Err("only one exact query-parameter value can be matched".to_owned());
            }
            Ok(Match {
                query: vec![(name, values.first().cloned())],
                ..Match::default()
            })
        }
        "src" | "src_ip" => Err(
            "client-address ACLs belong in an agent (the denylist agent matches client IPs)"
                .to_owned(),
        ),
        b => Err(format!("the fetch `{b}` has no Zentinel match")),
    }
}

/// `path_beg` → (`path`, `beg`); `hdr_dom(host)` → (`hdr(host)`, `dom`).
fn split_fetch(f: &str) -> (String, String) {
    let lower = f.to_ascii_lowercase();
    for (prefix, base) in [("path_", "path"), ("hdr_", "hdr")] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let (kind, arg) = match rest.find('(') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            return (format!("{base}{arg}"), kind.to_owned());
        }
    }
    (lower, String::new())
}

fn inner(f: &str) -> Option<String> {
    let start = f.find('(')? + 1;
    let end = f.rfind(')')?;
    (start < end).then(|| f[start..end].to_owned())
}

fn path(kind: &str, values: &[String], ci: bool) -> Result<Match, String> {
    if values.is_empty() {
        return Err("a path ACL needs a value".to_owned());
    }
    let escaped = || {
        values
            .iter()
            .map(|v| rules::regex_escape(v))
            .collect::<Vec<_>>()
            .join("|")
    };
    let flag = if ci { "(?i)" } else { "" };
    let single = values.len() == 1 && !ci;
    let p = match kind {
        "" | "str" if single => PathMatch::Exact(values[0].clone()),
        "" | "str" => PathMatch::Regex(format!("{flag}^(?:{})$", escaped())),
        "beg" if single => PathMatch::Prefix(values[0].clone()),
        "beg" => PathMatch::Regex(format!("{flag}^(?:{})", escaped())),
        "end" => PathMatch::Regex(format!("{flag}(?:{})$", escaped())),
        "sub" => PathMatch::Regex(format!("{flag}(?:{})", escaped())),
        "reg" => PathMatch::Regex(format!("{flag}(?:{})", values.join(")|(?:"))),
        other => return Err(format!("path matching `{other}` is not supported")),
    };
    match &p {
        PathMatch::Exact(v) | PathMatch::Prefix(v) if !rules::path(v) => {
            return Err(format!("the path \"{v}\" does not start with '/'"));
        }
        PathMatch::Regex(r) => rules::regex(r)
            .map_err(|e| format!("the regular expression is not valid in Rust's syntax: {e}"))?,
        _ => {}
    }
    Ok(Match {
        path: Some(p),
        ..Match::default()
    })
}

fn host(kind: &str, values: &[String]) -> Result<Match, String> {
    let mut hosts = Vec::new();
    for v in values {
        let candidates: Vec<String> = match kind {
            "" | "str" => vec![v.clone()],
            "dom" => vec![v.clone(), format!("*.{v}")],
            "end" => match v.strip_prefix('.') {
                Some(d) => vec![format!("*.{d}")],
                None => {
                    return Err(format!(
                        "`hdr_end(host) {v}` also matches names that merely end in it; write \".{v}\""
                    ));
                }
            },
            other => return Err(format!("host matching `{other}` is not supported")),
        };
        for c in candidates {
            let h = rules::host_pattern(&c).ok_or_else(|| {
                format!(
                    "\"{c}\" is not a host name Zentinel matches (no port, exact or `*.` wildcard)"
                )
            })?;
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
    }
    if hosts.is_empty() {
        return Err("a host ACL needs a value".to_owned());
    }
    Ok(Match {
        hosts,
        ..Match::default()
    })
}

fn header(base: &str, kind: &str, values: &[String]) -> Result<Match, String> {
    let name = inner(base).ok_or_else(|| "a header name is needed".to_owned())?;
    let name = rules::header_name(&name)?;
    match (kind, values) {
        ("found", []) => Ok(Match {
            headers: vec![(name, None)],
            ..Match::default()
        }),
        ("" | "str", [v]) => {
            rules::header_value(v)?;
            Ok(Match {
                headers: vec![(name, Some(v.clone()))],
                ..Match::default()
            })
        }
        ("" | "str", _) => {
            Err("one exact header value per rule: several values have no Zentinel match".to_owned())
        }
        (other, _) => Err(format!(
            "header matching `{other}` is not supported (exact value or presence only)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn fetches() {
        assert_eq!(
            fetch(&w("path_beg /api")).ok().and_then(|m| m.path),
            Some(PathMatch::Prefix("/api".into()))
        );
        assert_eq!(
            fetch(&w("path_beg /a /b")).ok().and_then(|m| m.path),
            Some(PathMatch::Regex("^(?:/a|/b)".into()))
        );
        assert_eq!(
            fetch(&w("hdr_dom(host) -i example.com"))
                .ok()
                .map(|m| m.hosts.len()),
            Some(2)
        );
        assert_eq!(
            fetch(&w("hdr_end(host) -i .example.com"))
                .ok()
                .map(|m| m.hosts),
            Some(vec!["*.example.com".into()])
        );
        assert!(fetch(&w("src 10.0.0.0/8")).is_err());
        assert_eq!(
            fetch(&w("path -m beg /x")).ok().and_then(|m| m.path),
            Some(PathMatch::Prefix("/x".into()))
        );
    }

    #[test]
    fn conditions() {
        let lines: Vec<Line> = Vec::new();
        let acls = Acls::default();
        let _ = &lines;
        let mut used = Vec::new();
        let alts = condition(
            &w("if { path_beg /a } || { path_beg /b } METH_GET"),
            &acls,
            &mut used,
        )
        .unwrap_or_default();
        assert_eq!(alts.len(), 2);
        assert_eq!(alts[1].methods, vec!["GET".to_owned(), "HEAD".to_owned()]);
        assert!(condition(&w("if !x"), &acls, &mut used).is_err());
        assert!(condition(&w("unless x"), &acls, &mut used).is_err());
    }
}
