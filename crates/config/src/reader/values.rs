//! Typed accessors: integers, booleans, strings, enums, lists, addresses, paths, CIDRs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use kdl::KdlValue;

use super::{ConfigEnum, Reader, Slot, Spanned, args, describe};
use crate::diagnostic::{Code, Span, suggestion};
use crate::schema::{Default, KeySchema, Kind};

impl<'a> Reader<'a> {
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

    /// An integer key, range-checked, default applied.
    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        let (k, slot) = self.one(key)?;
        let Kind::Int { min, max, unit } = k.kind else {
            debug_assert!(false, "{} is not an integer", k.name);
            return None;
        };
        let Some(slot) = slot else {
            return self.absent(k, |d| match d {
                Default::Int(v) => Some(v),
                _ => None,
            });
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
            return self.absent(k, |d| match d {
                Default::Bool(b) => Some(b),
                _ => None,
            });
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
            return self.absent(k, |d| match d {
                Default::Str(s) => Some(Spanned {
                    value: s.to_owned(),
                    span: None,
                }),
                _ => None,
            });
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
            return self.absent(k, |d| match d {
                Default::Str(d) => Some(vec![Spanned {
                    value: d.to_owned(),
                    span: None,
                }]),
                _ => Some(Vec::new()),
            });
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
}
