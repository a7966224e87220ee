//! The schema: every block and key of the configuration language, with its type, default,
//! meaning and an example — the single source of truth.
//!
//! The decoder reads keys *through* this table (the readers refuse, in debug builds, to read a
//! key that is not declared here, and check that every declared key was read), defaults are
//! taken from it, and `docs/config.md` and `zentinel config defaults` are generated from it.
//! So the documentation, the defaults and the code cannot drift apart.

mod agents;
mod base;
mod docs;
mod routing;

pub use base::ROOT;
pub use docs::{defaults_table, markdown};

/// A block: a node whose children (or properties) are keys.
#[derive(Debug)]
pub struct BlockSchema {
    /// Dotted path from the root, e.g. `agents.agent.circuit-breaker`.
    pub path: &'static str,
    /// How the block is written, e.g. `agent "<id>" { … }`.
    pub syntax: &'static str,
    /// What the block is for.
    pub doc: &'static str,
    /// Whether the keys are child nodes or properties (`weight=3`).
    pub form: Form,
    /// The keys.
    pub keys: &'static [KeySchema],
}

/// Whether a block's keys are written as child nodes or as properties of the node itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `name { key value; … }`
    Children,
    /// `name "arg" key=value …`
    Properties,
}

/// One key.
#[derive(Debug)]
pub struct KeySchema {
    /// The key as written.
    pub name: &'static str,
    /// Its value type.
    pub kind: Kind,
    /// What applies when the key is absent.
    pub default: Default,
    /// Whether the key may appear more than once.
    pub repeatable: bool,
    /// One-line meaning.
    pub doc: &'static str,
    /// An example line.
    pub example: &'static str,
}

/// The type of a key's value.
#[derive(Debug)]
pub enum Kind {
    /// An integer in `min..=max`.
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
        /// Unit shown in the docs (`ms`, `bytes`, …), empty for none.
        unit: &'static str,
    },
    /// `#true` or `#false`.
    Bool,
    /// A key written alone, without value (`tcp`).
    Flag,
    /// Free text.
    Str,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// One or more of a fixed set of strings.
    EnumList(&'static [&'static str]),
    /// One or more strings.
    StrList,
    /// `ip:port`.
    SocketAddr,
    /// A file path, relative to the file it is written in.
    Path,
    /// One or more `address/prefix` CIDRs (or bare addresses).
    CidrList,
    /// A nested block, once.
    Block(&'static BlockSchema),
    /// A block identified by its argument (`agent "waf" { … }`), usually repeated.
    Named {
        /// What the argument is, for the docs (`id`, `host`, `address`).
        arg: &'static str,
        /// The block.
        block: &'static BlockSchema,
    },
    /// A free-form KDL block passed on as JSON.
    FreeForm,
    /// A value with its own shape, described for the docs.
    Custom(&'static str),
}

/// What applies when a key is absent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Default {
    /// The key must be given.
    Required,
    /// This integer.
    Int(i64),
    /// This boolean.
    Bool(bool),
    /// This string (also used for enum values).
    Str(&'static str),
    /// Nothing: the feature the key controls is off, or the list is empty.
    None,
    /// A value computed at start-up, described here.
    Computed(&'static str),
}

impl KeySchema {
    /// A key with its type, default, meaning and example.
    pub const fn new(
        name: &'static str,
        kind: Kind,
        default: Default,
        doc: &'static str,
        example: &'static str,
    ) -> Self {
        Self {
            name,
            kind,
            default,
            repeatable: false,
            doc,
            example,
        }
    }

    /// The same key, allowed more than once.
    pub const fn repeatable(mut self) -> Self {
        self.repeatable = true;
        self
    }
}

impl BlockSchema {
    /// The key called `name`.
    pub fn key(&self, name: &str) -> Option<&'static KeySchema> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// Names of all keys.
    pub fn key_names(&self) -> impl Iterator<Item = &'static str> + Clone + '_ {
        self.keys.iter().map(|k| k.name)
    }
}

/// Every block of the schema, depth first from the root.
pub fn all_blocks() -> Vec<&'static BlockSchema> {
    fn walk(b: &'static BlockSchema, out: &mut Vec<&'static BlockSchema>) {
        out.push(b);
        for k in b.keys {
            match &k.kind {
                Kind::Block(child) | Kind::Named { block: child, .. } => walk(child, out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&ROOT, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kebab_case_and_unique_per_block() {
        for block in all_blocks() {
            let mut seen = std::collections::HashSet::new();
            for k in block.keys {
                assert!(
                    seen.insert(k.name),
                    "{}: `{}` declared twice",
                    block.path,
                    k.name
                );
                assert!(
                    k.name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                    "{}: `{}` is not kebab-case",
                    block.path,
                    k.name
                );
                assert!(
                    !k.doc.is_empty() && !k.example.is_empty(),
                    "{}.{}",
                    block.path,
                    k.name
                );
            }
        }
    }

    #[test]
    fn defaults_fit_their_type() {
        for block in all_blocks() {
            for k in block.keys {
                let ok = match (&k.kind, k.default) {
                    (Kind::Int { min, max, .. }, Default::Int(v)) => (*min..=*max).contains(&v),
                    (Kind::Bool, Default::Bool(_)) => true,
                    (Kind::Enum(values), Default::Str(v)) => values.contains(&v),
                    (Kind::EnumList(values), Default::Str(v)) => values.contains(&v),
                    (Kind::StrList, Default::Str(_)) => true,
                    (Kind::Str | Kind::Path | Kind::SocketAddr, Default::Str(_)) => true,
                    (_, Default::Required | Default::None | Default::Computed(_)) => true,
                    (Kind::Block(_) | Kind::Named { .. }, _) => false,
                    _ => false,
                };
                assert!(
                    ok,
                    "{}.{}: default {:?} does not fit {:?}",
                    block.path, k.name, k.default, k.kind
                );
            }
        }
    }
}
