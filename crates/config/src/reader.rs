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

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};

use crate::diagnostic::{Code, Problem, Sink, Span, suggestion};
use crate::schema::{BlockSchema, Default, Form, KeySchema, Kind};
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
                .help_opt(suggestion(
                    name,
                    self.schema.key_names(),
                    &format!("valid {what}s"),
                )),
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

    /// The single value of a key written as `key value` (or `key=value`).
    fn single(&self, key: &KeySchema, slot: &Slot<'a>) -> Option<(&'a KdlValue, Span)> {
        match slot {
            Slot::Prop(f, e) => Some((e.value(), Span::new(*f, e.span()))),
            Slot::Node(f, n) => {
                if !self.plain_node(key, *f, n) {
                    return None;
                }
                let mut a = args(n);
                match (a.next(), a.next()) {
                    (Some(e), None) => {
                        if e.ty().is_some() {
                            self.cx.report(self.problem(
                                Code::Type,
                                Span::new(*f, e.span()),
                                format!("`{}` does not take a type annotation", key.name),
                            ));
                            return None;
                        }
                        Some((e.value(), Span::new(*f, e.span())))
                    }
                    (None, _) => {
                        self.cx.report(
                            self.problem(
                                Code::Type,
                                Span::new(*f, n.span()),
                                format!("`{}` needs a value", key.name),
                            )
                            .help(format!("for example: {}", key.example)),
                        );
                        None
                    }
                    (Some(_), Some(extra)) => {
                        self.cx.report(
                            self.problem(
                                Code::Type,
                                Span::new(*f, extra.span()),
                                format!("`{}` takes one value, found more", key.name),
                            )
                            .label("unexpected value")
                            .help(format!("for example: {}", key.example)),
                        );
                        None
                    }
                }
            }
        }
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

    /// An integer key, range-checked, default applied.
    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        let (k, slot) = self.one(key)?;
        let Kind::Int { min, max, unit } = k.kind else {
            debug_assert!(false, "{} is not an integer", k.name);
            return None;
        };
        let Some(slot) = slot else {
            return match k.default {
                Default::Int(v) => Some(v),
                Default::Required => {
                    self.missing(k);
                    None
                }
                _ => None,
            };
        };
        let (v, span) = self.single(k, &slot)?;
        match v {
            KdlValue::Integer(i) if (i128::from(min)..=i128::from(max)).contains(i) => {
                i64::try_from(*i).ok()
            }
            KdlValue::Integer(i) => {
                let unit = if unit.is_empty() {
                    String::new()
                } else {
                    format!(" {unit}")
                };
                self.cx.report(
                    self.problem(
                        Code::Range,
                        span,
                        format!(
                            "`{}` must be between {min} and {max}{unit}, found {i}",
                            k.name
                        ),
                    )
                    .label("out of range"),
                );
                None
            }
            other => {
                let help = match other {
                    KdlValue::String(s) if s.trim().parse::<i64>().is_ok() => Some(format!(
                        "write the number without quotes: {} {}",
                        k.name,
                        s.trim()
                    )),
                    _ => None,
                };
                self.cx.report(
                    self.problem(
                        Code::Type,
                        span,
                        format!("`{}` must be an integer, found {}", k.name, describe(other)),
                    )
                    .label("not an integer")
                    .help_opt(help),
                );
                None
            }
        }
    }

    /// An integer key converted to `T` (the schema range guarantees it fits).
    pub(crate) fn uint<T: TryFrom<i64>>(&self, key: &str) -> Option<T> {
        self.int(key).and_then(|v| T::try_from(v).ok())
    }

    /// A `-ms` key as a duration.
    pub(crate) fn ms(&self, key: &str) -> Option<Duration> {
        self.uint::<u64>(key).map(Duration::from_millis)
    }

    /// A `-secs`/`-seconds` key as a duration.
    pub(crate) fn secs(&self, key: &str) -> Option<Duration> {
        self.uint::<u64>(key).map(Duration::from_secs)
    }

    /// A boolean key, default applied.
    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        let (k, slot) = self.one(key)?;
        let Some(slot) = slot else {
            return match k.default {
                Default::Bool(b) => Some(b),
                Default::Required => {
                    self.missing(k);
                    None
                }
                _ => None,
            };
        };
        let (v, span) = self.single(k, &slot)?;
        match v {
            KdlValue::Bool(b) => Some(*b),
            other => {
                let help = match other {
                    KdlValue::String(s)
                        if s == "true"
                            || s == "false"
                            || s == "yes"
                            || s == "no"
                            || s == "on"
                            || s == "off" =>
                    {
                        Some("KDL v2 writes booleans as #true and #false".to_owned())
                    }
                    _ => Some(format!("for example: {}", k.example)),
                };
                self.cx.report(
                    self.problem(
                        Code::Type,
                        span,
                        format!(
                            "`{}` must be #true or #false, found {}",
                            k.name,
                            describe(other)
                        ),
                    )
                    .label("not a boolean")
                    .help_opt(help),
                );
                None
            }
        }
    }

    /// A flag key: whether it is written. A flag takes no value.
    pub(crate) fn flag(&self, key: &str) -> bool {
        let Some((k, Some(slot))) = self.one(key) else {
            return false;
        };
        if let Slot::Node(f, n) = slot {
            self.plain_node(k, f, n);
            if let Some(e) = args(n).next() {
                self.cx.report(
                    self.problem(
                        Code::Type,
                        Span::new(f, e.span()),
                        format!("`{}` takes no value", k.name),
                    )
                    .help(format!("for example: {}", k.example)),
                );
            }
        }
        true
    }

    /// A string-valued key (text, path, address), default applied.
    pub(crate) fn string(&self, key: &str) -> Option<Spanned<String>> {
        let (k, slot) = self.one(key)?;
        let Some(slot) = slot else {
            return match k.default {
                Default::Str(s) => Some(Spanned {
                    value: s.to_owned(),
                    span: None,
                }),
                Default::Required => {
                    self.missing(k);
                    None
                }
                _ => None,
            };
        };
        let (v, span) = self.single(k, &slot)?;
        match v {
            KdlValue::String(s) => Some(Spanned {
                value: s.clone(),
                span: Some(span),
            }),
            other => {
                self.cx.report(
                    self.problem(
                        Code::Type,
                        span,
                        format!("`{}` must be a string, found {}", k.name, describe(other)),
                    )
                    .label("not a string")
                    .help(format!("for example: {}", k.example)),
                );
                None
            }
        }
    }

    /// A non-empty string key.
    pub(crate) fn nonempty(&self, key: &str) -> Option<Spanned<String>> {
        let s = self.string(key)?;
        if s.value.is_empty() {
            if let Some(span) = s.span {
                self.cx.report(self.problem(
                    Code::InvalidValue,
                    span,
                    format!("`{key}` must not be empty"),
                ));
            }
            return None;
        }
        Some(s)
    }

    /// An enum key, default applied.
    pub(crate) fn enumeration<E: ConfigEnum>(&self, key: &str) -> Option<E> {
        let s = self.string(key)?;
        self.to_enum(key, &s.value, s.span)
    }

    pub(crate) fn to_enum<E: ConfigEnum>(
        &self,
        key: &str,
        value: &str,
        span: Option<Span>,
    ) -> Option<E> {
        if let Some(e) = E::from_name(value) {
            return Some(e);
        }
        if let Some(span) = span {
            self.cx.report(
                self.problem(
                    Code::UnknownValue,
                    span,
                    format!("`{key}` does not accept \"{value}\""),
                )
                .label("unknown value")
                .help_opt(suggestion(
                    value,
                    E::NAMES.iter().copied(),
                    "accepted values",
                )),
            );
        }
        None
    }

    /// The string arguments of a list key (`events "a" "b"`), default applied; the
    /// occurrences of a repeatable key are concatenated.
    pub(crate) fn string_list(&self, key: &str) -> Option<Vec<Spanned<String>>> {
        let (Some(k), slots) = self.slots(key) else {
            return None;
        };
        if slots.is_empty() {
            return match k.default {
                Default::Required => {
                    self.missing(k);
                    None
                }
                Default::Str(d) => Some(vec![Spanned {
                    value: d.to_owned(),
                    span: None,
                }]),
                _ => Some(Vec::new()),
            };
        }
        let mut out = Vec::new();
        let mut ok = true;
        for slot in slots {
            let Slot::Node(f, n) = *slot else { continue };
            if !self.plain_node(k, f, n) {
                ok = false;
                continue;
            }
            let before = out.len();
            for e in args(n) {
                let span = Span::new(f, e.span());
                match e.value() {
                    KdlValue::String(s) => out.push(Spanned {
                        value: s.clone(),
                        span: Some(span),
                    }),
                    other => {
                        self.cx.report(
                            self.problem(
                                Code::Type,
                                span,
                                format!("`{}` takes strings, found {}", k.name, describe(other)),
                            )
                            .help(format!("for example: {}", k.example)),
                        );
                        ok = false;
                    }
                }
            }
            if out.len() == before && ok {
                self.cx.report(
                    self.problem(
                        Code::Type,
                        Span::new(f, n.span()),
                        format!("`{}` needs at least one value", k.name),
                    )
                    .help(format!("for example: {}", k.example)),
                );
                ok = false;
            }
        }
        ok.then_some(out)
    }

    /// A list of enum values; duplicates are reported.
    pub(crate) fn enum_list<E: ConfigEnum + PartialEq>(&self, key: &str) -> Option<Vec<E>> {
        let items = self.string_list(key)?;
        let mut out: Vec<E> = Vec::new();
        let mut ok = true;
        for it in &items {
            match self.to_enum::<E>(key, &it.value, it.span) {
                Some(e) if out.contains(&e) => {
                    if let Some(span) = it.span {
                        self.cx.report(self.problem(
                            Code::DuplicateKey,
                            span,
                            format!("\"{}\" is listed twice in `{key}`", it.value),
                        ));
                    }
                    ok = false;
                }
                Some(e) => out.push(e),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A socket-address key.
    pub(crate) fn socket_addr(&self, key: &str) -> Option<SocketAddr> {
        let s = self.string(key)?;
        match s.value.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                if let Some(span) = s.span {
                    let help = if s.value.starts_with(':') {
                        format!("give the IP too, for example \"0.0.0.0{}\"", s.value)
                    } else if s.value.contains("localhost") {
                        "use an IP address, for example \"127.0.0.1:8080\"".to_owned()
                    } else {
                        "write ip:port, for example \"127.0.0.1:8080\" or \"[::1]:8080\"".to_owned()
                    };
                    self.cx.report(
                        self.problem(
                            Code::InvalidValue,
                            span,
                            format!("`{key}` must be an ip:port address, found \"{}\"", s.value),
                        )
                        .label("not an ip:port address")
                        .help(help),
                    );
                }
                None
            }
        }
    }

    /// A path key, resolved against the directory of the file it is written in.
    pub(crate) fn path(&self, key: &str) -> Option<PathBuf> {
        let s = self.nonempty(key)?;
        let file = s.span.map_or(self.file, |sp| sp.file);
        Some(self.resolve_path(file, &s.value))
    }

    /// A list of CIDRs (a bare address counts as a single-address network).
    pub(crate) fn cidrs(&self, key: &str) -> Option<Vec<IpNet>> {
        let items = self.string_list(key)?;
        let mut out = Vec::new();
        let mut ok = true;
        for it in items {
            let parsed = it
                .value
                .parse::<IpNet>()
                .ok()
                .or_else(|| it.value.parse::<std::net::IpAddr>().ok().map(IpNet::from));
            match parsed {
                Some(n) => out.push(n),
                None => {
                    if let Some(span) = it.span {
                        self.cx.report(
                            self.problem(
                                Code::InvalidValue,
                                span,
                                format!("`{key}`: \"{}\" is not an IP address or CIDR", it.value),
                            )
                            .help("for example \"10.0.0.0/8\" or \"192.0.2.7\""),
                        );
                    }
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

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
