//! Diagnostics: every problem found in a configuration, with file, span, message and hint.
//!
//! Loading collects *all* problems of all files instead of stopping at the first. Each problem
//! implements [`miette::Diagnostic`] (through [`Diagnostics::reports`]) so the CLI renders it
//! with the offending source line; [`Diagnostics::to_json`] gives the same facts to machines and
//! to the browser playground.

use std::cell::RefCell;
use std::fmt;

use miette::{LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;

use crate::source::{SourceId, SourceSet, line_col};

/// Byte range inside one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The file.
    pub file: SourceId,
    /// Byte offset of the first byte.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

impl Span {
    pub(crate) fn new(file: SourceId, span: SourceSpan) -> Self {
        Self {
            file,
            offset: span.offset(),
            len: span.len(),
        }
    }
}

/// What kind of problem it is; stable names, shown as `zentinel::<code>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Code {
    /// The text is not valid KDL v2.
    Syntax,
    /// A key that does not exist in this block.
    UnknownKey,
    /// A key that may appear once appears again.
    DuplicateKey,
    /// A required key is missing.
    MissingKey,
    /// A value of the wrong type, or the wrong number of values.
    Type,
    /// A number outside its allowed range.
    Range,
    /// A string that is not one of the allowed values.
    UnknownValue,
    /// A value with the right type but an invalid form (address, CIDR, regex, header name…).
    InvalidValue,
    /// Two items of the same kind share an ID.
    DuplicateId,
    /// A reference to an ID that is not defined.
    UnknownReference,
    /// Settings that contradict each other, or one that would have no effect.
    Conflict,
    /// An `include` that cannot be honoured.
    Include,
}

impl Code {
    /// The code's stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Syntax => "syntax",
            Self::UnknownKey => "unknown-key",
            Self::DuplicateKey => "duplicate-key",
            Self::MissingKey => "missing-key",
            Self::Type => "type",
            Self::Range => "range",
            Self::UnknownValue => "unknown-value",
            Self::InvalidValue => "invalid-value",
            Self::DuplicateId => "duplicate-id",
            Self::UnknownReference => "unknown-reference",
            Self::Conflict => "conflict",
            Self::Include => "include",
        }
    }
}

/// One problem in a configuration.
#[derive(Clone, Debug)]
pub struct Problem {
    /// Kind of problem.
    pub code: Code,
    /// One-line description.
    pub message: String,
    /// Where it is; `None` for problems that concern no single place (an empty file set).
    pub span: Option<Span>,
    /// Short text pointing at the span.
    pub label: Option<String>,
    /// How to fix it ("did you mean …").
    pub help: Option<String>,
    /// Other places that explain this one ("first defined here").
    pub related: Vec<(Span, String)>,
}

impl Problem {
    pub(crate) fn new(code: Code, span: Option<Span>, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            span,
            label: None,
            help: None,
            related: Vec::new(),
        }
    }

    pub(crate) fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn help_opt(mut self, help: Option<String>) -> Self {
        self.help = help.or(self.help);
        self
    }

    pub(crate) fn related(mut self, span: Span, text: impl Into<String>) -> Self {
        self.related.push((span, text.into()));
        self
    }
}

/// Collects problems while a configuration is decoded. Shared by reference between the
/// readers of nested blocks, hence the interior mutability.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    problems: RefCell<Vec<Problem>>,
}

impl Sink {
    pub(crate) fn report(&self, problem: Problem) {
        self.problems.borrow_mut().push(problem);
    }

    pub(crate) fn count(&self) -> usize {
        self.problems.borrow().len()
    }

    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems.into_inner()
    }
}

/// The closest candidate to `input`, if one is close enough to be a likely typo.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (input.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(input, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "did you mean `x`?" when a close candidate exists, else the list of valid choices.
pub(crate) fn suggestion<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
    what: &str,
) -> Option<String> {
    if let Some(best) = closest(input, candidates.clone()) {
        return Some(format!("did you mean `{best}`?"));
    }
    let all: Vec<&str> = candidates.into_iter().collect();
    if all.is_empty() {
        None
    } else {
        Some(format!("{what}: {}", all.join(", ")))
    }
}

/// All problems of a configuration, with the sources they point into.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    sources: SourceSet,
    problems: Vec<Problem>,
}

impl Diagnostics {
    pub(crate) fn new(sources: SourceSet, mut problems: Vec<Problem>) -> Self {
        // Report in reading order: by file, then position.
        problems.sort_by_key(|p| p.span.map(|s| (s.file, s.offset)));
        Self { sources, problems }
    }

    /// The problems, in the order they were found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The files the problems point into.
    pub fn sources(&self) -> &SourceSet {
        &self.sources
    }

    /// Each problem as a [`miette::Diagnostic`] carrying its file, for rendering.
    pub fn reports(&self) -> impl Iterator<Item = Report<'_>> {
        self.problems.iter().map(|p| Report::new(p, &self.sources))
    }

    /// The machine-readable form: `{"ok":false,"problems":[{…}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let problems: Vec<JsonProblem<'_>> = self
            .problems
            .iter()
            .map(|p| JsonProblem::new(p, &self.sources))
            .collect();
        serde_json::json!({ "ok": false, "problems": problems })
    }

    /// `file:line:col` of a span.
    pub fn location(&self, span: Span) -> String {
        let f = self.sources.file(span.file);
        let (l, c) = line_col(&f.text, span.offset);
        format!("{}:{l}:{c}", f.name)
    }
}

impl fmt::Display for Diagnostics {
    /// One line per problem: `file:line:col: error[code]: message (help)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            match p.span {
                Some(s) => write!(f, "{}: ", self.location(s))?,
                None => write!(f, "<config>: ")?,
            }
            write!(f, "error[{}]: {}", p.code.as_str(), p.message)?;
            if let Some(h) = &p.help {
                write!(f, " (help: {h})")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[derive(Serialize)]
struct JsonLocation<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    offset: usize,
    length: usize,
}

impl<'a> JsonLocation<'a> {
    fn new(span: Span, sources: &'a SourceSet) -> Self {
        let f = sources.file(span.file);
        let (line, column) = line_col(&f.text, span.offset);
        Self {
            file: &f.name,
            line,
            column,
            offset: span.offset,
            length: span.len,
        }
    }
}

#[derive(Serialize)]
struct JsonProblem<'a> {
    severity: &'static str,
    code: Code,
    message: &'a str,
    #[serde(flatten)]
    location: Option<JsonLocation<'a>>,
    label: Option<&'a str>,
    help: Option<&'a str>,
    related: Vec<JsonRelated<'a>>,
}

#[derive(Serialize)]
struct JsonRelated<'a> {
    message: &'a str,
    #[serde(flatten)]
    location: JsonLocation<'a>,
}

impl<'a> JsonProblem<'a> {
    fn new(p: &'a Problem, sources: &'a SourceSet) -> Self {
        Self {
            severity: "error",
            code: p.code,
            message: &p.message,
            location: p.span.map(|s| JsonLocation::new(s, sources)),
            label: p.label.as_deref(),
            help: p.help.as_deref(),
            related: p
                .related
                .iter()
                .map(|(s, m)| JsonRelated {
                    message: m,
                    location: JsonLocation::new(*s, sources),
                })
                .collect(),
        }
    }
}

/// A problem bound to its source text, rendered by any miette handler.
#[derive(Debug)]
pub struct Report<'a> {
    problem: &'a Problem,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
    related: Vec<RelatedReport<'a>>,
}

impl<'a> Report<'a> {
    fn new(problem: &'a Problem, sources: &'a SourceSet) -> Self {
        let source = problem.span.map(|s| {
            let f = sources.file(s.file);
            NamedSource::new(&f.name, f.text.clone()).with_language("kdl")
        });
        let labels = problem
            .span
            .map(|s| LabeledSpan::new_primary_with_span(problem.label.clone(), (s.offset, s.len)))
            .into_iter()
            .collect();
        // A related span in the same file is one more label; in another file, its own report.
        let mut extra = Vec::new();
        let mut labels: Vec<LabeledSpan> = labels;
        for (span, text) in &problem.related {
            if problem.span.is_some_and(|s| s.file == span.file) {
                labels.push(LabeledSpan::new_with_span(
                    Some(text.clone()),
                    (span.offset, span.len),
                ));
            } else {
                let f = sources.file(span.file);
                extra.push(RelatedReport {
                    message: text,
                    source: NamedSource::new(&f.name, f.text.clone()).with_language("kdl"),
                    label: LabeledSpan::new_primary_with_span(None, (span.offset, span.len)),
                });
            }
        }
        Self {
            problem,
            source,
            labels,
            related: extra,
        }
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }

    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn miette::Diagnostic> + 'b>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.related.iter().map(|r| r as &dyn miette::Diagnostic),
            ))
        }
    }
}

#[derive(Debug)]
struct RelatedReport<'a> {
    message: &'a str,
    source: NamedSource<String>,
    label: LabeledSpan,
}

impl fmt::Display for RelatedReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for RelatedReport<'_> {}

impl miette::Diagnostic for RelatedReport<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Advice)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(self.label.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_but_not_strangers() {
        let keys = ["timeout-ms", "max-concurrent-calls", "events"];
        assert_eq!(closest("timout-ms", keys), Some("timeout-ms"));
        assert_eq!(closest("evnets", keys), Some("events"));
        assert_eq!(closest("colour", keys), None);
    }

    #[test]
    fn suggestion_falls_back_to_the_list() {
        let s = suggestion("zzz", ["a", "b"], "known upstreams");
        assert_eq!(s.as_deref(), Some("known upstreams: a, b"));
        assert_eq!(suggestion("zzz", std::iter::empty::<&str>(), "x"), None);
    }
}
