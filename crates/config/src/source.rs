//! Configuration sources: the text of each file, its display name and the directory that
//! relative paths inside it are resolved against.
//!
//! This module never touches the filesystem; the `fs` loader (or a browser) supplies the text.

use std::path::{Path, PathBuf};

/// Index of a file inside a [`SourceSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub(crate) usize);

/// One configuration file's text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Name shown in diagnostics (usually the path as the operator wrote it).
    pub name: String,
    /// The file's full text.
    pub text: String,
    /// Directory that relative paths in this file (certificates, token files) are resolved
    /// against. `None` keeps them as written (for example in the browser playground).
    pub base_dir: Option<PathBuf>,
}

impl SourceFile {
    /// A file with no base directory: relative paths stay relative.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            base_dir: None,
        }
    }

    /// Sets the directory relative paths are resolved against.
    #[must_use]
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// Resolves `path` as written in this file.
    pub(crate) fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        match &self.base_dir {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }
}

/// All files of one configuration, main file first, then included files in load order.
#[derive(Clone, Debug, Default)]
pub struct SourceSet {
    files: Vec<SourceFile>,
}

impl SourceSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file and returns its id.
    pub fn push(&mut self, file: SourceFile) -> SourceId {
        self.files.push(file);
        SourceId(self.files.len() - 1)
    }

    /// The file with this id.
    pub fn file(&self, id: SourceId) -> &SourceFile {
        &self.files[id.0]
    }

    /// Files in load order.
    pub fn iter(&self) -> impl Iterator<Item = (SourceId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (SourceId(i), f))
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the set holds no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut i = offset.min(text.len());
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    let before = &text[..i];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars_from_one() {
        let text = "a\nbé c\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 2), (2, 1));
        // 'c' is after a two-byte character: byte 6, column 4.
        assert_eq!(line_col(text, 6), (2, 4));
        // An offset inside a multi-byte character snaps back to its start.
        assert_eq!(line_col(text, 4), (2, 2));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    #[test]
    fn relative_paths_resolve_against_the_base_dir() {
        let f = SourceFile::new("a.kdl", "").with_base_dir("/etc/zentinel");
        assert_eq!(
            f.resolve("certs/a.crt"),
            PathBuf::from("/etc/zentinel/certs/a.crt")
        );
        assert_eq!(f.resolve("/abs/a.crt"), PathBuf::from("/abs/a.crt"));
        assert_eq!(SourceFile::new("a", "").resolve("x"), PathBuf::from("x"));
    }
}
