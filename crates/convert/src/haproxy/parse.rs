//! HAProxy configuration syntax: sections (`global`, `defaults`, `frontend`, `backend`,
//! `listen`, …) of keyword lines, with quotes, backslash escapes and `#` comments.

use crate::report::{ItemId, Ledger};

/// One configuration line, split into words.
#[derive(Clone, Debug)]
pub(crate) struct Line {
    pub(crate) id: ItemId,
    pub(crate) line: usize,
    pub(crate) words: Vec<String>,
}

impl Line {
    pub(crate) fn word(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(String::as_str)
    }

    pub(crate) fn keyword(&self) -> &str {
        self.word(0).unwrap_or_default()
    }
}

/// The kinds of section this converter maps; others are reported as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Global,
    Defaults,
    Frontend,
    Backend,
    Listen,
    Other(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub(crate) kind: Kind,
    pub(crate) name: Option<String>,
    pub(crate) head: Line,
    pub(crate) lines: Vec<Line>,
}

const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "userlist",
    "peers",
    "resolvers",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "fcgi-app",
    "crt-store",
    "traces",
    "log-forward",
];

fn unescape(c: char) -> char {
    match c {
        'r' => '\r',
        'n' => '\n',
        't' => '\t',
        c => c,
    }
}

/// Splits one line into words; `None` for a blank or comment line. An unterminated quote
/// takes the rest of the line.
fn words(text: &str) -> Option<(Vec<String>, usize)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    let mut first_col = 0;
    let mut col = 0;
    while let Some(c) = chars.next() {
        col += 1;
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    col += 1;
                    cur.push(unescape(n));
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                if !in_word {
                    in_word = true;
                    first_col = if out.is_empty() { col } else { first_col };
                }
                quote = Some(c);
            }
            (None, '\\') => {
                if !in_word {
                    in_word = true;
                    first_col = if out.is_empty() { col } else { first_col };
                }
                if let Some(n) = chars.next() {
                    col += 1;
                    cur.push(unescape(n));
                }
            }
            (None, '#') => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                if !in_word {
                    in_word = true;
                    if out.is_empty() {
                        first_col = col;
                    }
                }
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    (!out.is_empty()).then_some((out, first_col.max(1)))
}

/// Parses the text into sections, registering every line in the ledger. Lines before the
/// first section header are returned as a section of kind `Other("")`.
pub(crate) fn parse(text: &str, ledger: &mut Ledger) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let Some((words, column)) = words(raw) else {
            continue;
        };
        let keyword = words[0].clone();
        let is_head = SECTIONS.contains(&keyword.as_str());
        let context = match (is_head, sections.last()) {
            (true, _) | (false, None) => "top".to_owned(),
            (false, Some(s)) => section_label(s),
        };
        let shown = words.join(" ");
        let id = ledger.add(i + 1, column, &context, &shown);
        let line = Line {
            id,
            line: i + 1,
            words,
        };
        if is_head {
            let kind = match keyword.as_str() {
                "global" => Kind::Global,
                "defaults" => Kind::Defaults,
                "frontend" => Kind::Frontend,
                "backend" => Kind::Backend,
                "listen" => Kind::Listen,
                other => Kind::Other(other.to_owned()),
            };
            sections.push(Section {
                kind,
                name: line.word(1).map(str::to_owned),
                head: line,
                lines: Vec::new(),
            });
        } else if let Some(s) = sections.last_mut() {
            s.lines.push(line);
        } else {
            ledger.not_mapped(id, "a keyword outside any section");
        }
    }
    sections
}

fn section_label(s: &Section) -> String {
    match &s.name {
        Some(n) => format!("{} {n}", s.head.keyword()),
        None => s.head.keyword().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn splits_words() {
        let w = words;
        assert_eq!(w("  # only a comment"), None);
        assert_eq!(
            w("\tacl api path_beg /api # trailing"),
            Some((
                vec!["acl".into(), "api".into(), "path_beg".into(), "/api".into()],
                2
            ))
        );
        assert_eq!(
            w(r#"http-request set-header X-A "a b" "#).map(|x| x.0),
            Some(vec![
                "http-request".into(),
                "set-header".into(),
                "X-A".into(),
                "a b".into()
            ])
        );
        assert_eq!(
            w(r"option httpchk GET /h HTTP/1.1\r\nHost:\ x").map(|x| x.0.len()),
            Some(5)
        );
    }
}
