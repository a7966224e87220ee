//! A bound on nesting, checked before the KDL parser runs. The `kdl` crate parses children
//! blocks and chains of slashdash comments (`/- /- …`) recursively, with no limit of its own,
//! so a deep enough text overflows the stack and aborts the process (about 2,000 levels in a
//! release build on an 8 MiB main thread; far fewer on a 2 MiB thread or in WebAssembly).
//! No configuration needs more than a few levels, so deeper text is refused with a problem.
//!
//! Two counts, and either refuses: one skips strings and comments, so balanced configurations
//! with braces in regexes or comments pass; one counts every `{` and `}`, so text on which
//! the first goes out of step with the parser (an unterminated string, which the parser
//! recovers from and goes on parsing blocks; found by the `config_load` fuzz target) cannot
//! hide depth. Only more than 32 unclosed `{` inside strings would be refused wrongly.

/// Deepest `{ … }` nesting accepted (the schema itself needs at most 5).
pub(crate) const MAX_DEPTH: usize = 32;

/// Longest run of consecutive slashdash comments accepted.
pub(crate) const MAX_SLASHDASH_RUN: usize = 8;

/// Where a text first goes beyond a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TooDeep {
    /// The `{` at this byte offset opens a block deeper than [`MAX_DEPTH`].
    Blocks(usize),
    /// The `/-` at this byte offset is one more than [`MAX_SLASHDASH_RUN`] in a row.
    Slashdash(usize),
}

/// The first place `text` nests beyond a bound, if any.
pub(crate) fn check(text: &str) -> Option<TooDeep> {
    raw_depth(text).or_else(|| lexed_depth(text))
}

/// Every `{` and `}` counted, wherever it is.
fn raw_depth(text: &str) -> Option<TooDeep> {
    let mut depth = 0usize;
    for (i, c) in text.bytes().enumerate() {
        match c {
            b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(TooDeep::Blocks(i));
                }
            }
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Blocks and slashdash runs, with strings and comments skipped.
fn lexed_depth(text: &str) -> Option<TooDeep> {
    let b = text.as_bytes();
    let (mut i, mut depth, mut run) = (0, 0usize, 0usize);
    while let Some(&c) = b.get(i) {
        let next = b.get(i + 1).copied();
        match (c, next) {
            (b'"', _) => i = skip_quoted(b, i + 1),
            (b'#', _) if raw_hashes(b, i).is_some() => i = skip_raw(b, i),
            (b'/', Some(b'/')) => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |n| i + n)
            }
            (b'/', Some(b'*')) => i = skip_block_comment(b, i),
            (b'/', Some(b'-')) => {
                run += 1;
                if run > MAX_SLASHDASH_RUN {
                    return Some(TooDeep::Slashdash(i));
                }
                i += 2;
            }
            _ => {
                match c {
                    b'{' => {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return Some(TooDeep::Blocks(i));
                        }
                    }
                    b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                if !c.is_ascii_whitespace() {
                    run = 0;
                }
                i += 1;
            }
        }
        if c == b'"' || c == b'#' {
            run = 0;
        }
    }
    None
}

/// The index after the `"` (or the newline, which a one-line string cannot hold) ending a
/// quoted string whose content starts at `i`, backslash escapes skipped.
fn skip_quoted(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' | b'\n' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The number of `#` at `i` when they open a raw string (`#"`, `##"`, …).
fn raw_hashes(b: &[u8], i: usize) -> Option<usize> {
    let n = b[i..].iter().take_while(|&&c| c == b'#').count();
    (b.get(i + n) == Some(&b'"')).then_some(n)
}

/// The index after a raw string starting at `i`: its closing `"` followed by as many `#`.
fn skip_raw(b: &[u8], i: usize) -> usize {
    let Some(n) = raw_hashes(b, i) else {
        return i + 1;
    };
    let mut j = i + n + 1;
    while let Some(&c) = b.get(j) {
        if c == b'"' && b.len() >= j + 1 + n && b[j + 1..j + 1 + n].iter().all(|&h| h == b'#') {
            return j + 1 + n;
        }
        j += 1;
    }
    b.len()
}

/// The index after a (possibly nested) `/* … */` comment starting at `i`.
fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut open = 0usize;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied()) {
            (b'/', Some(b'*')) => {
                open += 1;
                i += 2;
            }
            (b'*', Some(b'/')) => {
                open -= 1;
                i += 2;
                if open == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "test code fails loudly"
    )]

    use super::*;

    #[test]
    fn deep_blocks_and_long_slashdash_runs_are_found() {
        let deep = "a {".repeat(MAX_DEPTH + 1);
        assert_eq!(check(&deep), Some(TooDeep::Blocks(3 * MAX_DEPTH + 2)));
        assert_eq!(check(&"a {".repeat(MAX_DEPTH)), None);
        let run = "/- ".repeat(MAX_SLASHDASH_RUN + 1) + "a";
        assert_eq!(check(&run), Some(TooDeep::Slashdash(3 * MAX_SLASHDASH_RUN)));
        assert_eq!(
            check(&"/- a\n".repeat(100)),
            None,
            "separate slashdashes do not add up"
        );
    }

    #[test]
    fn braces_in_strings_and_comments_do_not_count_when_lexed() {
        let braces = "{".repeat(100);
        for text in [
            format!("a \"{braces}\""),
            format!("a \"\\\"{braces}\""),
            format!("a #\"\"{braces}\"#"),
            format!("a ##\"\"#{braces}\"##"),
            format!("// {braces}\na"),
            format!("/* /* {braces} */ {braces} */ a"),
            format!("a \"/-/-/-/-/-/-/-/-/-/-/-\" {}", "/-".repeat(3)),
        ] {
            assert_eq!(lexed_depth(&text), None, "{text}");
        }
        let deeper = format!("a #\"x\"# {}", "{".repeat(33));
        assert_eq!(lexed_depth(&deeper), Some(TooDeep::Blocks(40)));
        // Balanced braces in a regex pass both counts.
        assert_eq!(check(&format!("a \"{}\"", "x{1,2}".repeat(100))), None);
    }

    #[test]
    fn an_unterminated_string_does_not_hide_blocks() {
        // Found by the fuzz target: the parser recovers from the string and nests the blocks.
        let text = format!("a \"x\nb {}", "{".repeat(40));
        assert_eq!(lexed_depth(&text), Some(TooDeep::Blocks(39)));
        let text = format!("a \"x\nb \"{}", "{".repeat(40));
        assert_eq!(check(&text), Some(TooDeep::Blocks(40)));
    }

    #[test]
    fn a_deep_text_is_a_syntax_problem_not_a_stack_overflow() {
        for text in ["a {".repeat(100_000), "/- ".repeat(100_000) + "a"] {
            let d = crate::load_str("deep.kdl", &text).unwrap_err();
            assert_eq!(d.problems().len(), 1);
            assert_eq!(d.problems()[0].code, crate::diagnostic::Code::Syntax);
        }
    }
}
