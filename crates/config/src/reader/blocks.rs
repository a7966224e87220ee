//! Nested blocks: `key { … }`, repeated collection blocks, and named blocks.

use kdl::{KdlNode, KdlValue};

use super::{Reader, Slot, Spanned, args, describe, props};
use crate::diagnostic::{Code, Span};
use crate::schema::{BlockSchema, Default, Form, KeySchema, Kind};
use crate::source::SourceId;

impl<'a> Reader<'a> {
    /// A nested block, or an empty one (so its defaults apply) when absent.
    pub(crate) fn block(&self, key: &str) -> Option<Reader<'a>> {
        let (k, slot) = self.one(key)?;
        let Kind::Block(schema) = k.kind else {
            debug_assert!(false, "{} is not a block", k.name);
            return None;
        };
        let context = format!("{} › {}", self.context, k.name);
        match slot {
            None => Some(Reader::empty(self.cx, schema, self.file, None, context)),
            Some(slot) => {
                let Slot::Node(f, n) = slot else { return None };
                if !self.block_node(k, f, n, 0) {
                    return None;
                }
                Some(Reader::children(self.cx, schema, f, n, context))
            }
        }
    }

    /// Every occurrence of a repeatable block key (collection blocks merged across files).
    pub(crate) fn blocks(&self, key: &str) -> Vec<Reader<'a>> {
        let (Some(k), slots) = self.slots(key) else {
            return Vec::new();
        };
        let Kind::Block(schema) = k.kind else {
            debug_assert!(false, "{} is not a block", k.name);
            return Vec::new();
        };
        if slots.is_empty() {
            self.absent(k, |_| Some(()));
        }
        let mut out = Vec::new();
        for slot in slots {
            let Slot::Node(f, n) = *slot else { continue };
            if self.block_node(k, f, n, 0) {
                out.push(Reader::children(
                    self.cx,
                    schema,
                    f,
                    n,
                    format!("`{}`", k.name),
                ));
            }
        }
        out
    }

    /// Whether a nested block key is written.
    pub(crate) fn has(&self, key: &str) -> bool {
        let (_, slots) = self.slots(key);
        !slots.is_empty()
    }

    /// Checks a node used as a block: `args` leading arguments, no properties, children.
    fn block_node(&self, k: &KeySchema, f: SourceId, n: &KdlNode, arg_count: usize) -> bool {
        let mut ok = true;
        let found = args(n).count();
        if found != arg_count {
            let what = if arg_count == 0 {
                "no value before its block".to_owned()
            } else {
                format!("{arg_count} value(s) before its block")
            };
            self.cx.report(
                self.problem(
                    Code::Type,
                    Span::new(f, n.span()),
                    format!("`{}` takes {what}, found {found}", k.name),
                )
                .help(format!("for example: {}", k.example)),
            );
            ok = false;
        }
        if let Some(p) = props(n).next() {
            let name = p.name().map_or("", |n| n.value());
            self.cx.report(
                self.problem(
                    Code::UnknownKey,
                    Span::new(f, p.span()),
                    format!("`{}` has no property `{name}`", k.name),
                )
                .help(format!("for example: {}", k.example)),
            );
            ok = false;
        }
        if n.children().is_none() {
            self.cx.report(
                self.problem(
                    Code::Type,
                    Span::new(f, n.span()),
                    format!("`{}` needs a block {{ … }}", k.name),
                )
                .help(format!("for example: {}", k.example)),
            );
            ok = false;
        }
        ok
    }

    /// Every occurrence of a named block (`agent "waf" { … }`, `target "addr" weight=2`).
    pub(crate) fn named(&self, key: &str) -> Vec<(Spanned<String>, Reader<'a>)> {
        let (Some(k), slots) = self.slots(key) else {
            return Vec::new();
        };
        let Kind::Named { block, arg } = k.kind else {
            debug_assert!(false, "{} is not a named block", k.name);
            return Vec::new();
        };
        if slots.is_empty() {
            self.absent(k, |_| Some(()));
        }
        let mut out = Vec::new();
        for slot in slots {
            let Slot::Node(f, n) = *slot else { continue };
            let Some(name) = self.named_arg(k, arg, f, n) else {
                continue;
            };
            let context = format!("{} \"{}\"", k.name, name.value);
            if let Some(reader) = self.named_block(k, block, f, n, context) {
                out.push((name, reader));
            }
        }
        out
    }

    /// Reports a problem with the key's example as the hint.
    fn bad(&self, k: &KeySchema, code: Code, span: Span, message: String) {
        self.cx.report(
            self.problem(code, span, message)
                .help(format!("for example: {}", k.example)),
        );
    }

    /// The one non-empty string argument that names a named block.
    fn named_arg(
        &self,
        k: &KeySchema,
        arg: &str,
        f: SourceId,
        n: &KdlNode,
    ) -> Option<Spanned<String>> {
        let mut a = args(n);
        match (a.next(), a.next()) {
            (Some(e), None) => match e.value() {
                KdlValue::String(s) if !s.is_empty() => Some(Spanned {
                    value: s.clone(),
                    span: Some(Span::new(f, e.span())),
                }),
                other => {
                    let msg = format!(
                        "`{}` needs a non-empty string {arg}, found {}",
                        k.name,
                        describe(other)
                    );
                    self.bad(k, Code::Type, Span::new(f, e.span()), msg);
                    None
                }
            },
            (None, _) => {
                self.bad(
                    k,
                    Code::Type,
                    Span::new(f, n.span()),
                    format!("`{}` needs its {arg}", k.name),
                );
                None
            }
            (Some(_), Some(extra)) => {
                let msg = format!("`{}` takes one {arg}, found more", k.name);
                self.bad(k, Code::Type, Span::new(f, extra.span()), msg);
                None
            }
        }
    }

    /// The reader of a named block's body: its children, or its properties.
    fn named_block(
        &self,
        k: &KeySchema,
        block: &'static BlockSchema,
        f: SourceId,
        n: &'a KdlNode,
        context: String,
    ) -> Option<Reader<'a>> {
        match block.form {
            Form::Children => {
                let needs_block = block.keys.iter().any(|k| k.default == Default::Required);
                if n.children().is_none() && needs_block {
                    self.bad(
                        k,
                        Code::Type,
                        Span::new(f, n.span()),
                        format!("`{}` needs a block {{ … }}", k.name),
                    );
                    return None;
                }
                if let Some(p) = props(n).next() {
                    let pname = p.name().map_or("", |n| n.value());
                    let msg = format!("`{}` has no property `{pname}`", k.name);
                    self.bad(k, Code::UnknownKey, Span::new(f, p.span()), msg);
                }
                Some(Reader::children(self.cx, block, f, n, context))
            }
            Form::Properties => {
                if let Some(c) = n.children() {
                    self.bad(
                        k,
                        Code::Type,
                        Span::new(f, c.span()),
                        format!("`{}` does not take a block", k.name),
                    );
                }
                Some(Reader::properties(self.cx, block, f, n, context))
            }
        }
    }

    /// Every node of a custom-shaped key, for hand-written decoding.
    pub(crate) fn nodes(&self, key: &str) -> Vec<(SourceId, &'a KdlNode)> {
        let (_, slots) = self.slots(key);
        slots
            .iter()
            .filter_map(|s| s.node().map(|n| (s.file(), n)))
            .collect()
    }
}
