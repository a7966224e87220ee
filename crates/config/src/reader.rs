//! Schema-checked access to KDL nodes.
//!
//! A [`Reader`] wraps one block (the children of a node, or its properties) and its
//! [`BlockSchema`]. Creating it reports unknown and duplicated keys; its typed accessors
//! report wrong types, arities and ranges, and fill in the schema's defaults. Decoding code
//! never looks at raw KDL for a declared key, so every key is read exactly as documented.
//!
//! In debug builds a reader panics when asked for a key its schema does not declare, and when
//! it is dropped without having been asked for every declared key: a key cannot be documented
//! but not decoded, or decoded but not documented.

mod blocks;
mod values;

use std::cell::Cell;
use std::path::PathBuf;

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};

use crate::diagnostic::{Code, Problem, Sink, Span, suggestion};
use crate::schema::{BlockSchema, Default, Form, KeySchema};
use crate::source::{SourceId, SourceSet};

/// An enum written as one of a fixed set of strings.
pub(crate) trait ConfigEnum: Sized + Copy {
    const NAMES: &'static [&'static str];
    fn from_name(name: &str) -> Option<Self>;
}

/// Shared state of one decoding run.
#[derive(Debug)]
pub(crate) struct Cx<'s> {
    pub(crate) sink: &'s Sink,
    pub(crate) sources: &'s SourceSet,
}

impl Cx<'_> {
    pub(crate) fn report(&self, p: Problem) {
        self.sink.report(p);
    }
}

/// A value with the place it was written, if it was written.
#[derive(Clone, Debug)]
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) span: Option<Span>,
}

/// One occurrence of a key: a child node or a property.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Slot<'a> {
    Node(SourceId, &'a KdlNode),
    Prop(SourceId, &'a KdlEntry),
}

impl<'a> Slot<'a> {
    pub(crate) fn span(&self) -> Span {
        match self {
            Self::Node(f, n) => Span::new(*f, n.span()),
            Self::Prop(f, e) => Span::new(*f, e.span()),
        }
    }

    pub(crate) fn file(&self) -> SourceId {
        match self {
            Self::Node(f, _) | Self::Prop(f, _) => *f,
        }
    }

    /// The node, for keys written as nodes.
    pub(crate) fn node(&self) -> Option<&'a KdlNode> {
        match self {
            Self::Node(_, n) => Some(n),
            Self::Prop(..) => None,
        }
    }
}

/// Describes a KDL value for "found …" messages.
pub(crate) fn describe(v: &KdlValue) -> String {
    match v {
        KdlValue::String(s) => format!("string \"{s}\""),
        KdlValue::Integer(i) => format!("integer {i}"),
        KdlValue::Float(f) => format!("number {f}"),
        KdlValue::Bool(b) => format!("#{b}"),
        KdlValue::Null => "#null".to_owned(),
    }
}

/// Positional arguments of a node.
pub(crate) fn args(node: &KdlNode) -> impl Iterator<Item = &KdlEntry> {
    node.entries().iter().filter(|e| e.name().is_none())
}

/// Named properties of a node.
pub(crate) fn props(node: &KdlNode) -> impl Iterator<Item = &KdlEntry> {
    node.entries().iter().filter(|e| e.name().is_some())
}

/// A schema-checked view of one block.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    cx: &'a Cx<'a>,
    schema: &'static BlockSchema,
    file: SourceId,
    owner: Option<&'a KdlNode>,
    context: String,
    slots: Vec<Vec<Slot<'a>>>,
    queried: Vec<Cell<bool>>,
}

impl<'a> Reader<'a> {
    fn empty(
        cx: &'a Cx<'a>,
        schema: &'static BlockSchema,
        file: SourceId,
        owner: Option<&'a KdlNode>,
        context: String,
    ) -> Self {
        Self {
            cx,
            schema,
            file,
            owner,
            context,
            slots: vec![Vec::new(); schema.keys.len()],
            queried: (0..schema.keys.len()).map(|_| Cell::new(false)).collect(),
        }
    }

    /// The top level, gathered from every file of the configuration.
    pub(crate) fn root(
        cx: &'a Cx<'a>,
        schema: &'static BlockSchema,
        files: &[(SourceId, &'a KdlDocument)],
    ) -> Self {
        let first = files.first().map_or(SourceId(0), |(f, _)| *f);
        let mut r = Self::empty(cx, schema, first, None, "the top level".to_owned());
        for (file, doc) in files {
            for node in doc.nodes() {
                r.add(
                    Slot::Node(*file, node),
                    node.name().value(),
                    Span::new(*file, node.name().span()),
                );
            }
        }
        r
    }

    /// The children of `owner`.
    pub(crate) fn children(
        cx: &'a Cx<'a>,
        schema: &'static BlockSchema,
        file: SourceId,
        owner: &'a KdlNode,
        context: String,
    ) -> Self {
        debug_assert_eq!(schema.form, Form::Children, "{}", schema.path);
        let mut r = Self::empty(cx, schema, file, Some(owner), context);
        if let Some(doc) = owner.children() {
            for node in doc.nodes() {
                r.add(
                    Slot::Node(file, node),
                    node.name().value(),
                    Span::new(file, node.name().span()),
                );
            }
        }
        r
    }

    /// The properties of `owner`.
    pub(crate) fn properties(
        cx: &'a Cx<'a>,
        schema: &'static BlockSchema,
        file: SourceId,
        owner: &'a KdlNode,
        context: String,
    ) -> Self {
        debug_assert_eq!(schema.form, Form::Properties, "{}", schema.path);
        let mut r = Self::empty(cx, schema, file, Some(owner), context);
        for e in props(owner) {
            if let Some(name) = e.name() {
                r.add(Slot::Prop(file, e), name.value(), Span::new(file, e.span()));
            }
        }
        r
    }

    fn add(&mut self, slot: Slot<'a>, name: &str, name_span: Span) {
        let Some(i) = self.schema.keys.iter().position(|k| k.name == name) else {
            let what = match self.schema.form {
                Form::Children => "key",
                Form::Properties => "property",
            };
            self.cx.report(
                Problem::new(
                    Code::UnknownKey,
                    Some(name_span),
                    format!("unknown {what} `{name}` in {}", self.context),
                )
                .label(format!("unknown {what}"))
                .help_opt(self.unknown_key_help(name, what)),
            );
            return;
        };
        let key = &self.schema.keys[i];
        if !key.repeatable
            && let Some(first) = self.slots[i].first()
        {
            self.cx.report(
                Problem::new(
                    Code::DuplicateKey,
                    Some(name_span),
                    format!("`{name}` is set twice in {}", self.context),
                )
                .label("second setting")
                .related(first.span(), "first set here")
                .help(format!("`{name}` may appear once; remove one of them")),
            );
            return;
        }
        self.slots[i].push(slot);
    }

    /// "did you mean" a key of this block; else where a key of that name lives; else the list.
    fn unknown_key_help(&self, name: &str, what: &str) -> Option<String> {
        if let Some(best) = crate::diagnostic::closest(name, self.schema.key_names()) {
            return Some(format!("did you mean `{best}`?"));
        }
        let homes: Vec<&str> = crate::schema::all_blocks()
            .into_iter()
            .filter(|b| b.key(name).is_some())
            .map(|b| {
                if b.path.is_empty() {
                    "the top level"
                } else {
                    b.path
                }
            })
            .collect();
        if !homes.is_empty() {
            return Some(format!("`{name}` belongs in `{}`", homes.join("` or `")));
        }
        suggestion(name, self.schema.key_names(), &format!("valid {what}s"))
    }

    /// Where this block is written (its owner node), if anywhere.
    pub(crate) fn span(&self) -> Option<Span> {
        self.owner.map(|n| Span::new(self.file, n.span()))
    }

    /// How this block is named in messages.
    pub(crate) fn context(&self) -> &str {
        &self.context
    }

    pub(crate) fn cx(&self) -> &'a Cx<'a> {
        self.cx
    }

    /// Resolves a path written in this block's file.
    pub(crate) fn resolve_path(&self, file: SourceId, path: &str) -> PathBuf {
        self.cx.sources.file(file).resolve(path)
    }

    fn index(&self, key: &str) -> Option<usize> {
        let i = self.schema.keys.iter().position(|k| k.name == key);
        debug_assert!(
            i.is_some(),
            "decoder reads `{key}`, which {} does not declare",
            self.schema.path
        );
        if let Some(i) = i {
            self.queried[i].set(true);
        }
        i
    }

    /// The occurrences of `key` and its schema entry.
    pub(crate) fn slots(&self, key: &str) -> (Option<&'static KeySchema>, &[Slot<'a>]) {
        match self.index(key) {
            Some(i) => (Some(&self.schema.keys[i]), &self.slots[i]),
            None => (None, &[]),
        }
    }

    /// The span of `key` if it is written, without counting as a read.
    pub(crate) fn written(&self, key: &str) -> Option<Span> {
        let i = self.schema.keys.iter().position(|k| k.name == key)?;
        self.slots[i].first().map(Slot::span)
    }

    fn problem(&self, code: Code, span: Span, message: String) -> Problem {
        Problem::new(code, Some(span), message)
    }

    /// The value of absent key `k`: reports it when required, else maps its default.
    fn absent<T>(&self, k: &KeySchema, default: impl FnOnce(Default) -> Option<T>) -> Option<T> {
        if k.default == Default::Required {
            self.missing(k);
            return None;
        }
        default(k.default)
    }

    fn missing(&self, key: &KeySchema) {
        let span = self.owner.map_or(
            Span {
                file: self.file,
                offset: 0,
                len: 0,
            },
            |n| Span::new(self.file, n.name().span()),
        );
        self.cx.report(
            Problem::new(
                Code::MissingKey,
                Some(span),
                format!("{} needs `{}`", self.context, key.name),
            )
            .label(format!("`{}` missing here", key.name))
            .help(format!("add, for example: {}", key.example)),
        );
    }

    /// Reports properties and children on a node that takes neither.
    pub(crate) fn plain_node(&self, key: &KeySchema, file: SourceId, node: &KdlNode) -> bool {
        let mut ok = true;
        if node.ty().is_some() {
            self.cx.report(self.problem(
                Code::Type,
                Span::new(file, node.span()),
                format!("`{}` does not take a type annotation", key.name),
            ));
            ok = false;
        }
        for p in props(node) {
            let name = p.name().map_or("", |n| n.value());
            self.cx.report(
                self.problem(
                    Code::UnknownKey,
                    Span::new(file, p.span()),
                    format!("`{}` has no property `{name}`", key.name),
                )
                .help(format!("for example: {}", key.example)),
            );
            ok = false;
        }
        if let Some(c) = node.children() {
            self.cx.report(
                self.problem(
                    Code::Type,
                    Span::new(file, c.span()),
                    format!("`{}` does not take a block", key.name),
                )
                .help(format!("for example: {}", key.example)),
            );
            ok = false;
        }
        ok
    }

    /// The key's only occurrence (keys that are not repeatable have at most one).
    fn one(&self, key: &str) -> Option<(&'static KeySchema, Option<Slot<'a>>)> {
        let (k, slots) = self.slots(key);
        k.map(|k| (k, slots.first().copied()))
    }

    /// Reports `key` as having no effect (when written) and why.
    pub(crate) fn no_effect(&self, key: &str, why: &str) {
        if let Some(span) = self.written(key) {
            self.cx.report(
                self.problem(
                    Code::Conflict,
                    span,
                    format!("`{key}` has no effect here: {why}"),
                )
                .label("no effect")
                .help(format!(
                    "remove `{key}`, or change the setting it depends on"
                )),
            );
        }
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if cfg!(debug_assertions) && !std::thread::panicking() {
            for (k, q) in self.schema.keys.iter().zip(&self.queried) {
                debug_assert!(
                    q.get(),
                    "{}: key `{}` is declared but never decoded",
                    self.schema.path,
                    k.name
                );
            }
        }
    }
}
