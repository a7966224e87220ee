//! Reading a configuration from disk (feature `fs`): the main file and, depth first, every
//! file its `include` nodes name, in the order written, glob matches sorted.
//!
//! This is the only part of the crate that touches the filesystem; the core works on the
//! texts it collects.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use kdl::KdlValue;

use crate::diagnostic::{Code, Problem, Span};
use crate::reader::args;
use crate::source::{SourceFile, SourceSet};
use crate::{Config, Diagnostics};

/// Deepest chain of includes followed.
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Most files one configuration may consist of.
pub const MAX_FILES: usize = 1000;
/// Largest configuration file read.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Loads and validates the configuration whose main file is `path`.
pub fn load_file(path: &Path) -> Result<Config, Diagnostics> {
    let (sources, problems) = read_all(path);
    crate::load(sources, true, problems)
}

/// Reads `path` and every file it includes, with the problems met on the way.
pub fn read_all(path: &Path) -> (SourceSet, Vec<Problem>) {
    let mut st = State {
        sources: SourceSet::new(),
        problems: Vec::new(),
        seen: HashSet::new(),
    };
    match read(path) {
        Ok(text) => {
            let mut chain = Vec::new();
            st.add(path, text, &mut chain);
        }
        Err(e) => st.problems.push(Problem::new(
            Code::Include,
            None,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
    (st.sources, st.problems)
}

fn read(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    let bytes = std::fs::read(path)?;
    String::from_utf8(bytes).map_err(|_| std::io::Error::other("not valid UTF-8"))
}

struct State {
    sources: SourceSet,
    problems: Vec<Problem>,
    seen: HashSet<PathBuf>,
}

impl State {
    fn add(&mut self, path: &Path, text: String, chain: &mut Vec<PathBuf>) {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.seen.insert(canonical.clone());
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let id = self
            .sources
            .push(SourceFile::new(path.display().to_string(), text).with_base_dir(base.clone()));
        // Syntax errors are reported by the core when it parses the set; skip includes then.
        let Ok(doc) = crate::parse(id, &self.sources.file(id).text) else {
            return;
        };
        chain.push(canonical);
        for node in doc.nodes().iter().filter(|n| n.name().value() == "include") {
            let span = Span::new(id, node.span());
            let Some(pattern) = args(node).next().and_then(|e| match e.value() {
                KdlValue::String(s) => Some(s.clone()),
                _ => None,
            }) else {
                continue; // the core reports the malformed include
            };
            self.include(&base, &pattern, span, chain);
        }
        chain.pop();
    }

    fn include(&mut self, base: &Path, pattern: &str, span: Span, chain: &mut Vec<PathBuf>) {
        let Some(matches) = self.expand(base, pattern, span) else {
            return;
        };
        for file in matches {
            let canonical = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            let refusal = if chain.contains(&canonical) {
                Some(Problem::new(
                    Code::Include,
                    Some(span),
                    format!("include cycle: {} includes itself", file.display()),
                ))
            } else if self.seen.contains(&canonical) {
                Some(
                    Problem::new(
                        Code::Include,
                        Some(span),
                        format!("{} is included more than once", file.display()),
                    )
                    .help(
                        "each file may be loaded once; its blocks would otherwise be defined twice",
                    ),
                )
            } else if chain.len() >= MAX_INCLUDE_DEPTH {
                Some(Problem::new(
                    Code::Include,
                    Some(span),
                    format!("includes are nested deeper than {MAX_INCLUDE_DEPTH} levels"),
                ))
            } else if self.sources.len() >= MAX_FILES {
                Some(Problem::new(
                    Code::Include,
                    Some(span),
                    format!("a configuration may consist of at most {MAX_FILES} files"),
                ))
            } else {
                None
            };
            if let Some(p) = refusal {
                self.problems.push(p);
                continue;
            }
            match read(&file) {
                Ok(text) => self.add(&file, text, chain),
                Err(e) => self.problems.push(Problem::new(
                    Code::Include,
                    Some(span),
                    format!("cannot read {}: {e}", file.display()),
                )),
            }
        }
    }

    /// The files `pattern` matches, sorted; `None` after reporting that it matches nothing.
    fn expand(&mut self, base: &Path, pattern: &str, span: Span) -> Option<Vec<PathBuf>> {
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let mut matches: Vec<PathBuf> = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect(),
            Err(e) => {
                let msg = format!(
                    "`include` pattern \"{pattern}\" is not a valid glob: {}",
                    e.msg
                );
                self.problems
                    .push(Problem::new(Code::Include, Some(span), msg));
                return None;
            }
        };
        matches.sort();
        if matches.is_empty() {
            self.problems.push(
                Problem::new(
                    Code::Include,
                    Some(span),
                    format!("`include \"{pattern}\"` matched no file"),
                )
                .label("nothing to include")
                .help(format!(
                    "looked for {}; include paths are relative to the including file",
                    full.display()
                )),
            );
            return None;
        }
        Some(matches)
    }
}
