//! The mapping report: one entry per source directive, with what became of it.
//!
//! Front-ends register every directive of the source in a [`Ledger`] first, then record
//! outcomes as they map. An entry nobody decided about is reported as not mapped when the
//! ledger is closed, so no directive can be dropped silently.

use serde::Serialize;

/// What became of one source directive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "kebab-case")]
pub enum Outcome {
    /// Translated to Zentinel with the same behaviour.
    Mapped,
    /// Translated, but the behaviour differs as the reason says.
    MappedWithCaveat(String),
    /// Not translated, for the reason given; nothing was emitted for it.
    NotMapped(String),
}

impl Outcome {
    /// A short label: `mapped`, `caveat` or `not-mapped`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Mapped => "mapped",
            Outcome::MappedWithCaveat(_) => "caveat",
            Outcome::NotMapped(_) => "not-mapped",
        }
    }

    /// The reason, for the outcomes that have one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Mapped => None,
            Outcome::MappedWithCaveat(r) | Outcome::NotMapped(r) => Some(r),
        }
    }
}

/// One source directive and its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportItem {
    /// 1-based line of the directive in the source.
    pub line: usize,
    /// 1-based column (in characters) where the directive starts.
    pub column: usize,
    /// Where it sits, e.g. `http > server example.com > location /api`.
    pub context: String,
    /// The directive as written (shortened when long).
    pub directive: String,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// For security directives that belong in an agent or a filter: what to use instead.
    pub suggestion: Option<String>,
}

/// Index of a directive in a [`Ledger`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ItemId(usize);

#[derive(Debug)]
struct Entry {
    item: ReportItem,
    decided: bool,
    fallback: Option<String>,
}

/// Collects the outcome of every registered directive.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    entries: Vec<Entry>,
}

/// Longest directive text kept in the report.
const MAX_DIRECTIVE_CHARS: usize = 120;

impl Ledger {
    /// Registers a directive; its outcome is decided later.
    pub(crate) fn add(&mut self, line: usize, column: usize, context: &str, text: &str) -> ItemId {
        let mut directive: String = text.chars().take(MAX_DIRECTIVE_CHARS).collect();
        if text.chars().count() > MAX_DIRECTIVE_CHARS {
            directive.push('…');
        }
        self.entries.push(Entry {
            item: ReportItem {
                line,
                column,
                context: context.to_owned(),
                directive,
                outcome: Outcome::Mapped,
                suggestion: None,
            },
            decided: false,
            fallback: None,
        });
        ItemId(self.entries.len() - 1)
    }

    fn entry(&mut self, id: ItemId) -> Option<&mut Entry> {
        self.entries.get_mut(id.0)
    }

    /// The directive was translated faithfully (unless something else was already decided).
    pub(crate) fn mapped(&mut self, id: ItemId) {
        if let Some(e) = self.entry(id)
            && !e.decided
        {
            e.decided = true;
            e.item.outcome = Outcome::Mapped;
        }
    }

    /// The directive was translated with a difference; caveats accumulate.
    pub(crate) fn caveat(&mut self, id: ItemId, reason: impl Into<String>) {
        let reason = reason.into();
        if let Some(e) = self.entry(id) {
            match &mut e.item.outcome {
                Outcome::NotMapped(_) if e.decided => {}
                Outcome::MappedWithCaveat(r) if e.decided => {
                    if !r.contains(&reason) {
                        r.push_str("; ");
                        r.push_str(&reason);
                    }
                }
                _ => e.item.outcome = Outcome::MappedWithCaveat(reason),
            }
            e.decided = true;
        }
    }

    /// The directive was not translated. This wins over an earlier `mapped`, so a directive
    /// whose effect is later dropped is reported as such; the first reason is kept.
    pub(crate) fn not_mapped(&mut self, id: ItemId, reason: impl Into<String>) {
        if let Some(e) = self.entry(id) {
            if !(e.decided && matches!(e.item.outcome, Outcome::NotMapped(_))) {
                e.item.outcome = Outcome::NotMapped(reason.into());
            }
            e.decided = true;
        }
    }

    /// The reason to give if nothing else is decided for this directive.
    pub(crate) fn fallback(&mut self, id: ItemId, reason: impl Into<String>) {
        if let Some(e) = self.entry(id)
            && e.fallback.is_none()
        {
            e.fallback = Some(reason.into());
        }
    }

    /// Adds a suggestion (an agent or filter to use instead).
    pub(crate) fn suggest(&mut self, id: ItemId, text: impl Into<String>) {
        if let Some(e) = self.entry(id) {
            e.item.suggestion = Some(text.into());
        }
    }

    /// Whether an outcome was recorded for the directive.
    pub(crate) fn is_decided(&self, id: ItemId) -> bool {
        self.entries.get(id.0).is_some_and(|e| e.decided)
    }

    /// The id the next registered directive will get.
    pub(crate) fn next_id(&self) -> ItemId {
        ItemId(self.entries.len())
    }

    /// Whether the directive was decided as mapped (with or without a caveat).
    pub(crate) fn is_mapped(&self, id: ItemId) -> bool {
        self.entries
            .get(id.0)
            .is_some_and(|e| e.decided && !matches!(e.item.outcome, Outcome::NotMapped(_)))
    }

    /// Closes the ledger: undecided directives become not mapped, with their fallback reason.
    /// Items are in source order.
    pub(crate) fn finish(self) -> Vec<ReportItem> {
        let mut items: Vec<ReportItem> = self
            .entries
            .into_iter()
            .map(|mut e| {
                if !e.decided {
                    e.item.outcome = Outcome::NotMapped(e.fallback.unwrap_or_else(|| {
                        "the converter has no Zentinel equivalent for it".to_owned()
                    }));
                }
                e.item
            })
            .collect();
        items.sort_by_key(|i| (i.line, i.column));
        items
    }
}

/// The report as text, one directive per line: `LINE:COL  outcome  directive  (reason)`.
pub(crate) fn render(items: &[ReportItem]) -> String {
    let mut out = String::new();
    for i in items {
        out.push_str(&format!(
            "{}:{} {} [{}] {}",
            i.line,
            i.column,
            i.outcome.label(),
            i.context,
            i.directive
        ));
        if let Some(r) = i.outcome.reason() {
            out.push_str(" — ");
            out.push_str(r);
        }
        if let Some(s) = &i.suggestion {
            out.push_str(" → suggestion: ");
            out.push_str(s);
        }
        out.push('\n');
    }
    out
}

/// Outcomes decided before it is known whether the thing they describe is emitted (an
/// upstream block that may be unused, a route whose listener may vanish); applied to the
/// ledger on emission, or turned into "not mapped" when it is dropped.
#[derive(Clone, Debug, Default)]
pub(crate) struct Marks {
    marks: Vec<(ItemId, Mark)>,
}

#[derive(Clone, Debug)]
enum Mark {
    Mapped,
    Caveat(String),
    NotMapped(String),
}

impl Marks {
    pub(crate) fn mapped(&mut self, id: ItemId) {
        self.marks.push((id, Mark::Mapped));
    }

    pub(crate) fn caveat(&mut self, id: ItemId, reason: impl Into<String>) {
        self.marks.push((id, Mark::Caveat(reason.into())));
    }

    pub(crate) fn not_mapped(&mut self, id: ItemId, reason: impl Into<String>) {
        self.marks.push((id, Mark::NotMapped(reason.into())));
    }

    /// Records the outcomes: the thing was emitted.
    pub(crate) fn apply(&self, ledger: &mut Ledger) {
        for (id, m) in &self.marks {
            match m {
                Mark::Mapped => ledger.mapped(*id),
                Mark::Caveat(r) => ledger.caveat(*id, r.clone()),
                Mark::NotMapped(r) => ledger.not_mapped(*id, r.clone()),
            }
        }
    }

    /// The thing was not emitted: what would have been mapped is not, for `reason`, unless
    /// something that was emitted uses the same directive.
    pub(crate) fn drop_all(&self, ledger: &mut Ledger, reason: &str) {
        for (id, m) in &self.marks {
            match m {
                Mark::Mapped | Mark::Caveat(_) => ledger.fallback(*id, reason),
                Mark::NotMapped(r) => ledger.not_mapped(*id, r.clone()),
            }
        }
    }
}
