//! Nested blocks: `key { … }`, repeated collection blocks, and named blocks.

use kdl::{KdlNode, KdlValue};

use super::{Reader, Slot, Spanned, args, describe, props};
use crate::diagnostic::{Code, Span};
use crate::schema::{Default, Form, KeySchema, Kind};
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
        if slots.is_empty() && k.default == Default::Required {
            self.missing(k);
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
        if slots.is_empty() && k.default == Default::Required {
            self.missing(k);
        }
        let mut out = Vec::new();
        for slot in slots {
            let Slot::Node(f, n) = *slot else { continue };
            let mut a = args(n);
            let name = match (a.next(), a.next()) {
                (Some(e), None) => match e.value() {
                    KdlValue::String(s) if !s.is_empty() => Spanned {
                        value: s.clone(),
                        span: Some(Span::new(f, e.span())),
                    },
                    other => {
                        self.cx.report(
                            self.problem(
                                Code::Type,
                                Span::new(f, e.span()),
                                format!(
                                    "`{}` needs a non-empty string {arg}, found {}",
                                    k.name,
                                    describe(other)
                                ),
                            )
                            .help(format!("for example: {}", k.example)),
                        );
                        continue;
                    }
                },
                (None, _) => {
                    self.cx.report(
                        self.problem(
                            Code::Type,
                            Span::new(f, n.span()),
                            format!("`{}` needs its {arg}", k.name),
                        )
                        .help(format!("for example: {}", k.example)),
                    );
                    continue;
                }
                (Some(_), Some(extra)) => {
                    self.cx.report(
                        self.problem(
                            Code::Type,
                            Span::new(f, extra.span()),
                            format!("`{}` takes one {arg}, found more", k.name),
                        )
                        .help(format!("for example: {}", k.example)),
                    );
                    continue;
                }
            };
            let context = format!("{} \"{}\"", k.name, name.value);
            let reader = match block.form {
                Form::Children => {
                    if n.children().is_none()
                        && !block.keys.iter().all(|k| k.default != Default::Required)
                    {
                        self.cx.report(
                            self.problem(
                                Code::Type,
                                Span::new(f, n.span()),
                                format!("`{}` needs a block {{ … }}", k.name),
                            )
                            .help(format!("for example: {}", k.example)),
                        );
                        continue;
                    }
                    if let Some(p) = props(n).next() {
                        let pname = p.name().map_or("", |n| n.value());
                        self.cx.report(
                            self.problem(
                                Code::UnknownKey,
                                Span::new(f, p.span()),
                                format!("`{}` has no property `{pname}`", k.name),
                            )
                            .help(format!("for example: {}", k.example)),
                        );
                    }
                    Reader::children(self.cx, block, f, n, context)
                }
                Form::Properties => {
                    if let Some(c) = n.children() {
                        self.cx.report(
                            self.problem(
                                Code::Type,
                                Span::new(f, c.span()),
                                format!("`{}` does not take a block", k.name),
                            )
                            .help(format!("for example: {}", k.example)),
                        );
                    }
                    Reader::properties(self.cx, block, f, n, context)
                }
            };
            out.push((name, reader));
        }
        out
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
