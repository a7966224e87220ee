//! YAML and TOML → one small tree with line and column on every key and value, so the
//! report can point at the source.

use saphyr_parser::{Event, Parser, ScalarStyle};

/// A value of the configuration tree.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// A scalar as written (YAML scalars are untyped until read; TOML's are rendered).
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Node {
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn entries(&self) -> &[(Key, Node)] {
        match &self.value {
            Value::Map(m) => m,
            _ => &[],
        }
    }

    pub(crate) fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(s) => s,
            _ => &[],
        }
    }

    pub(crate) fn scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn uint(&self) -> Option<u64> {
        self.scalar()?.trim().parse().ok()
    }

    pub(crate) fn boolean(&self) -> Option<bool> {
        match self.scalar()?.trim() {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        }
    }

    /// Scalars of a sequence, or the scalar itself (Traefik accepts both in places).
    pub(crate) fn strings(&self) -> Vec<String> {
        match &self.value {
            Value::Scalar(s) => s
                .split(',')
                .map(|x| x.trim().to_owned())
                .filter(|x| !x.is_empty())
                .collect(),
            Value::Seq(items) => items
                .iter()
                .filter_map(|n| n.scalar().map(str::to_owned))
                .collect(),
            Value::Map(_) => Vec::new(),
        }
    }
}

/// A syntax error with its position.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// Bounds on what a configuration may expand to (aliases can multiply nodes).
const MAX_NODES: usize = 200_000;
const MAX_DEPTH: usize = 64;

enum Open {
    Seq(Node),
    Map(Node, Option<Key>),
}

/// Parses YAML (the first document).
#[expect(
    clippy::too_many_lines,
    reason = "one state machine over the YAML events"
)]
pub(crate) fn yaml(text: &str) -> Result<Node, SyntaxError> {
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: std::collections::HashMap<usize, Node> = std::collections::HashMap::new();
    let mut anchor_of: Vec<usize> = Vec::new();
    let mut root: Option<Node> = None;
    let mut count = 0usize;
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| SyntaxError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_owned(),
        })?;
        let (line, column) = (span.start.line(), span.start.col() + 1);
        count += 1;
        if count > MAX_NODES || stack.len() > MAX_DEPTH {
            return Err(SyntaxError {
                line,
                column,
                message: "the document is too large or too deeply nested".to_owned(),
            });
        }
        let done = match ev {
            Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::Nothing => {
                None
            }
            Event::DocumentEnd => {
                if root.is_some() {
                    break;
                }
                None
            }
            Event::SequenceStart(anchor, _) => {
                anchor_of.push(anchor);
                stack.push(Open::Seq(Node {
                    value: Value::Seq(Vec::new()),
                    line,
                    column,
                }));
                None
            }
            Event::MappingStart(anchor, _) => {
                anchor_of.push(anchor);
                stack.push(Open::Map(
                    Node {
                        value: Value::Map(Vec::new()),
                        line,
                        column,
                    },
                    None,
                ));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let anchor = anchor_of.pop().unwrap_or(0);
                let node = match stack.pop() {
                    Some(Open::Seq(n)) | Some(Open::Map(n, _)) => n,
                    None => continue,
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                Some(node)
            }
            Event::Scalar(v, style, anchor, _) => {
                let text = match (style, v.as_ref()) {
                    (ScalarStyle::Plain, "~" | "null" | "Null" | "NULL") => String::new(),
                    _ => v.into_owned(),
                };
                let node = Node {
                    value: Value::Scalar(text),
                    line,
                    column,
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                Some(node)
            }
            Event::Alias(id) => {
                let n = anchors.get(&id).cloned().ok_or_else(|| SyntaxError {
                    line,
                    column,
                    message: "unknown alias".to_owned(),
                })?;
                count += size(&n);
                Some(n)
            }
        };
        let Some(node) = done else { continue };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Open::Seq(seq)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Open::Map(map, key)) => match key.take() {
                None => {
                    let name = node
                        .scalar()
                        .map(str::to_owned)
                        .ok_or_else(|| SyntaxError {
                            line: node.line,
                            column: node.column,
                            message: "only scalar keys are supported".to_owned(),
                        })?;
                    *key = Some(Key {
                        name,
                        line: node.line,
                        column: node.column,
                    });
                }
                Some(k) => {
                    if let Value::Map(entries) = &mut map.value {
                        merge_or_push(entries, k, node);
                    }
                }
            },
        }
    }
    Ok(root.unwrap_or(Node {
        value: Value::Map(Vec::new()),
        line: 1,
        column: 1,
    }))
}

/// `<<: *anchor` merges the anchored map; other keys are appended.
fn merge_or_push(entries: &mut Vec<(Key, Node)>, k: Key, node: Node) {
    if k.name == "<<"
        && let Value::Map(m) = node.value
    {
        for (mk, mv) in m {
            if !entries.iter().any(|(e, _)| e.name == mk.name) {
                entries.push((mk, mv));
            }
        }
        return;
    }
    entries.push((k, node));
}

fn size(n: &Node) -> usize {
    match &n.value {
        Value::Scalar(_) => 1,
        Value::Seq(s) => 1 + s.iter().map(size).sum::<usize>(),
        Value::Map(m) => 1 + m.iter().map(|(_, v)| size(v)).sum::<usize>(),
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut i = offset.min(text.len());
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    let before = &text[..i];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, before[start..].chars().count() + 1)
}

/// Parses TOML.
pub(crate) fn toml(text: &str) -> Result<Node, SyntaxError> {
    let table = toml::de::DeTable::parse(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        SyntaxError {
            line,
            column,
            message: e.message().to_owned(),
        }
    })?;
    let (line, column) = line_col(text, table.span().start);
    Ok(Node {
        value: toml_table(text, table.get_ref()),
        line,
        column,
    })
}

fn toml_table(text: &str, t: &toml::de::DeTable<'_>) -> Value {
    let mut entries = Vec::new();
    for (k, v) in t.iter() {
        let (kl, kc) = line_col(text, k.span().start);
        entries.push((
            Key {
                name: k.get_ref().to_string(),
                line: kl,
                column: kc,
            },
            toml_node(text, v),
        ));
    }
    Value::Map(entries)
}

fn toml_node(text: &str, v: &toml::Spanned<toml::de::DeValue<'_>>) -> Node {
    use toml::de::DeValue;
    let (line, column) = line_col(text, v.span().start);
    let value = match v.get_ref() {
        DeValue::String(s) => Value::Scalar(s.to_string()),
        DeValue::Integer(i) => Value::Scalar(i.to_string()),
        DeValue::Float(f) => Value::Scalar(f.to_string()),
        DeValue::Boolean(b) => Value::Scalar(b.to_string()),
        DeValue::Datetime(d) => Value::Scalar(d.to_string()),
        DeValue::Array(a) => Value::Seq(a.iter().map(|x| toml_node(text, x)).collect()),
        DeValue::Table(t) => toml_table(text, t),
    };
    Node {
        value,
        line,
        column,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_positions() {
        let n = yaml("http:\n  routers:\n    a:\n      rule: \"Host(`x`)\"\n").ok();
        let rule = n.as_ref().and_then(|n| {
            n.get("http")?
                .get("routers")?
                .get("a")?
                .get("rule")
                .cloned()
        });
        assert_eq!(
            rule.as_ref().and_then(|r| r.scalar().map(str::to_owned)),
            Some("Host(`x`)".into())
        );
        assert_eq!(rule.map(|r| (r.line, r.column)), Some((4, 13)));
        assert!(yaml("a: [").is_err());
        let merged = yaml("base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n").ok();
        assert_eq!(
            merged.and_then(|m| m.get("c").map(|c| c.entries().len())),
            Some(2)
        );
    }

    #[test]
    fn toml_positions() {
        let n = toml("[http.routers.a]\nrule = \"Host(`x`)\"\n").ok();
        let rule = n.as_ref().and_then(|n| {
            n.get("http")?
                .get("routers")?
                .get("a")?
                .get("rule")
                .cloned()
        });
        assert_eq!(rule.map(|r| (r.line, r.column)), Some((2, 8)));
        assert!(toml("a = ").is_err());
    }
}
