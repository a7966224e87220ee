//! The free-form `config {}` block of an agent, turned into JSON for the agent.
//!
//! Mapping: a child `key value` becomes `"key": value`; several values become an array; a
//! child with a block becomes an object; a key repeated becomes an array of its values;
//! `#null` is `null`; a key written alone is `true`. A node may not mix values with a block, nor carry properties or
//! type annotations: they would have no JSON meaning, and nothing is dropped silently.

use kdl::{KdlNode, KdlValue};
use serde_json::{Map, Number, Value};

use crate::diagnostic::{Code, Problem, Span};
use crate::reader::{Cx, args};
use crate::source::SourceId;

/// Maximum nesting depth of a `config {}` block.
const MAX_DEPTH: usize = 32;

/// The children of `node` as a JSON object; `None` after reporting a problem.
pub(crate) fn to_json(cx: &Cx<'_>, file: SourceId, node: &KdlNode) -> Option<Value> {
    if args(node).next().is_some() || node.entries().iter().any(|e| e.name().is_some()) {
        cx.report(
            Problem::new(
                Code::Type,
                Some(Span::new(file, node.span())),
                "`config` takes only a block",
            )
            .help("for example: config { paranoia-level 2; }"),
        );
        return None;
    }
    object(cx, file, node, 0)
}

fn object(cx: &Cx<'_>, file: SourceId, node: &KdlNode, depth: usize) -> Option<Value> {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: std::collections::HashMap<&str, Vec<Value>> = std::collections::HashMap::new();
    let mut ok = true;
    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
        let key = child.name().value();
        let Some(v) = value(cx, file, child, depth + 1) else {
            ok = false;
            continue;
        };
        if !groups.contains_key(key) {
            order.push(key);
        }
        groups.entry(key).or_default().push(v);
    }
    let mut map = Map::new();
    for key in order {
        let mut values = groups.remove(key).unwrap_or_default();
        // A key written once is its value; a repeated key collects its values in an array.
        let v = if values.len() == 1 {
            values.pop().unwrap_or(Value::Null)
        } else {
            Value::Array(values)
        };
        map.insert(key.to_owned(), v);
    }
    ok.then_some(Value::Object(map))
}

fn value(cx: &Cx<'_>, file: SourceId, node: &KdlNode, depth: usize) -> Option<Value> {
    let span = Span::new(file, node.span());
    if depth > MAX_DEPTH {
        cx.report(Problem::new(
            Code::InvalidValue,
            Some(span),
            format!("`config` is nested deeper than {MAX_DEPTH} levels"),
        ));
        return None;
    }
    if node.ty().is_some() || node.entries().iter().any(|e| e.ty().is_some()) {
        cx.report(Problem::new(
            Code::Type,
            Some(span),
            "type annotations have no meaning in `config`",
        ));
        return None;
    }
    if let Some(p) = node.entries().iter().find(|e| e.name().is_some()) {
        cx.report(
            Problem::new(
                Code::Type,
                Some(Span::new(file, p.span())),
                "properties are not supported in `config`; write a child node instead",
            )
            .help("for example: limits { max 10; } instead of limits max=10"),
        );
        return None;
    }
    let values: Vec<&KdlValue> = args(node).map(|e| e.value()).collect();
    match (values.as_slice(), node.children()) {
        ([], Some(_)) => object(cx, file, node, depth),
        ([], None) => Some(Value::Bool(true)),
        (_, Some(_)) => {
            cx.report(Problem::new(
                Code::Type,
                Some(span),
                "a `config` key takes values or a block, not both",
            ));
            None
        }
        ([one], None) => scalar(cx, file, node, one),
        (many, None) => many
            .iter()
            .map(|v| scalar(cx, file, node, v))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
    }
}

fn scalar(cx: &Cx<'_>, file: SourceId, node: &KdlNode, v: &KdlValue) -> Option<Value> {
    Some(match v {
        KdlValue::String(s) => Value::String(s.clone()),
        KdlValue::Bool(b) => Value::Bool(*b),
        KdlValue::Null => Value::Null,
        KdlValue::Integer(i) => match i64::try_from(*i) {
            Ok(n) => Value::Number(n.into()),
            Err(_) => match u64::try_from(*i) {
                Ok(n) => Value::Number(n.into()),
                Err(_) => {
                    cx.report(Problem::new(
                        Code::Range,
                        Some(Span::new(file, node.span())),
                        "integer too large for JSON",
                    ));
                    return None;
                }
            },
        },
        KdlValue::Float(f) => match Number::from_f64(*f) {
            Some(n) => Value::Number(n),
            None => {
                cx.report(Problem::new(
                    Code::InvalidValue,
                    Some(Span::new(file, node.span())),
                    "infinite or NaN numbers have no JSON form",
                ));
                return None;
            }
        },
    })
}
