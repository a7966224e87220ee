//! The conversion corpus: real configurations (the ones Debian's nginx and haproxy packages
//! install) and realistic ones written for these tests. For each file:
//!
//! - the converted KDL validates with `zentinel_config::load_str`, or the conversion says
//!   why it cannot (only the files listed in `EXPECTED_INVALID`);
//! - every source directive is in the report exactly once;
//! - the KDL and the report match the snapshot in `tests/snapshots/`, so every change in
//!   the output is reviewed. Regenerate with `ZENTINEL_BLESS=1 cargo test -p zentinel-convert
//!   --test corpus`.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use zentinel_convert::{Conversion, ConvertOptions, Outcome, Source, TraefikFormat, convert_with};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Files that cannot give a valid configuration, and a word of the reason they must give.
const EXPECTED_INVALID: &[(&str, &str)] = &[
    // Serves files only: no proxy_pass, so no upstream.
    ("nginx/debian-sites-default.conf", "no route"),
    // Only includes and global settings.
    ("nginx/debian-nginx.conf", "no listener"),
    // global + defaults only, no frontend.
    ("haproxy/debian-haproxy.cfg", "no listener"),
    // Names an entry point and is converted without any address.
    ("traefik/no-address.yaml", "no address"),
];

fn corpus() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["nginx", "haproxy", "traefik"] {
        let mut here: Vec<PathBuf> = fs::read_dir(Path::new(ROOT).join("tests/corpus").join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        here.sort();
        files.extend(here);
    }
    files
}

fn rel(p: &Path) -> String {
    p.strip_prefix(Path::new(ROOT).join("tests/corpus"))
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

fn source_of(rel: &str) -> Source {
    match rel.split('/').next() {
        Some("nginx") => Source::Nginx,
        Some("haproxy") => Source::Haproxy,
        _ => Source::Traefik {
            format: TraefikFormat::from_file_name(rel),
        },
    }
}

/// Traefik files name entry points; the corpus gives them addresses, except files whose
/// name says they test the `default_listen` fallback or the missing address.
fn options_for(rel: &str) -> ConvertOptions {
    let mut o = ConvertOptions::default();
    if rel.contains("no-address") {
        return o;
    }
    if rel.contains("default-listen") {
        o.default_listen = Some("127.0.0.1:8080".parse().unwrap());
        return o;
    }
    o.entry_points = vec![
        ("web".to_owned(), "0.0.0.0:80".parse().unwrap()),
        ("websecure".to_owned(), "0.0.0.0:443".parse().unwrap()),
    ];
    o
}

fn snapshot(c: &Conversion) -> String {
    let mut s = String::new();
    s.push_str(if c.is_valid() {
        "== kdl (valid) ==\n"
    } else {
        "== kdl (does not validate) ==\n"
    });
    s.push_str(&c.kdl);
    if !c.blockers.is_empty() {
        s.push_str("== blockers ==\n");
        for b in &c.blockers {
            s.push_str(b);
            s.push('\n');
        }
    }
    if let Some(d) = &c.diagnostics {
        s.push_str("== diagnostics ==\n");
        s.push_str(&d.to_string());
    }
    s.push_str("== report ==\n");
    s.push_str(&c.report_text());
    s
}

/// Counts nginx directives independently of the converter: statements end with `;` or open
/// a block with `{`, outside comments and quotes.
fn nginx_directive_count(text: &str) -> usize {
    let mut n = 0;
    let (mut quote, mut comment, mut escaped) = (None, false, false);
    let mut in_word = false;
    let mut word_prev_dollar = false;
    for c in text.chars() {
        if comment {
            comment = c != '\n';
            in_word = false;
            continue;
        }
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '#' if !in_word => {
                comment = true;
                continue;
            }
            '"' | '\'' if !in_word => quote = Some(c),
            ';' => n += 1,
            '{' if !word_prev_dollar => n += 1,
            _ => {}
        }
        in_word = !(c.is_whitespace() || c == ';' || c == '{' || c == '}');
        word_prev_dollar = c == '$';
    }
    n
}

/// HAProxy: one directive per non-blank, non-comment line.
fn haproxy_lines(text: &str) -> HashSet<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .map(|(i, _)| i + 1)
        .collect()
}

fn check_accounting(rel: &str, text: &str, c: &Conversion) {
    let mut seen = HashSet::new();
    for item in &c.report {
        assert!(
            seen.insert((item.line, item.column, item.directive.clone())),
            "{rel}: {}:{} `{}` is reported twice",
            item.line,
            item.column,
            item.directive
        );
        assert!(
            item.line >= 1 && item.line <= text.lines().count().max(1),
            "{rel}: line {} out of range",
            item.line
        );
        if let Outcome::MappedWithCaveat(r) | Outcome::NotMapped(r) = &item.outcome {
            assert!(!r.is_empty(), "{rel}: empty reason at line {}", item.line);
        }
    }
    match source_of(rel) {
        Source::Nginx => assert_eq!(
            c.report.len(),
            nginx_directive_count(text),
            "{rel}: the report does not list every directive"
        ),
        Source::Haproxy => {
            let lines: HashSet<usize> = c.report.iter().map(|i| i.line).collect();
            assert_eq!(
                lines,
                haproxy_lines(text),
                "{rel}: the report does not list every line"
            );
            assert_eq!(
                c.report.len(),
                lines.len(),
                "{rel}: a line is reported twice"
            );
        }
        _ => {
            // Every line holding a keyed value (`key: value`, `key = value`) is reported; the
            // items of a list of scalars are reported with their key.
            let lines: HashSet<usize> = c.report.iter().map(|i| i.line).collect();
            for (i, l) in text.lines().enumerate() {
                let t = l.trim();
                if t.is_empty() || t.starts_with('#') || t.starts_with('[') {
                    continue;
                }
                let item = t.strip_prefix("- ").unwrap_or(t);
                let is_value = item.contains(" = ")
                    || (!item.starts_with('"')
                        && item
                            .split_once(": ")
                            .is_some_and(|(_, v)| !v.trim().is_empty()));
                if is_value {
                    assert!(
                        lines.contains(&(i + 1)),
                        "{rel}: line {} is not in the report: {t}",
                        i + 1
                    );
                }
            }
        }
    }
}

#[test]
fn every_corpus_file_converts_validates_and_is_accounted_for() {
    let bless = std::env::var_os("ZENTINEL_BLESS").is_some();
    let mut failures = Vec::new();
    let files = corpus();
    assert!(files.len() >= 18, "the corpus has {} files", files.len());
    for path in files {
        let rel = rel(&path);
        let text = fs::read_to_string(&path).unwrap();
        let c = convert_with(source_of(&rel), &text, &options_for(&rel));
        match EXPECTED_INVALID.iter().find(|(f, _)| *f == rel) {
            Some((_, why)) => {
                assert!(!c.is_valid(), "{rel} is expected not to validate");
                assert!(
                    c.blockers.iter().any(|b| b.contains(why)),
                    "{rel}: expected a blocker mentioning {why:?}, got {:?}",
                    c.blockers
                );
            }
            None => assert!(
                c.is_valid(),
                "{rel} does not validate:\nblockers: {:?}\n{}\n{}",
                c.blockers,
                c.diagnostics
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                c.kdl
            ),
        }
        check_accounting(&rel, &text, &c);
        let snap_path = Path::new(ROOT)
            .join("tests/snapshots")
            .join(format!("{rel}.snap"));
        let want = snapshot(&c);
        if bless {
            fs::create_dir_all(snap_path.parent().unwrap()).unwrap();
            fs::write(&snap_path, &want).unwrap();
        } else if fs::read_to_string(&snap_path).unwrap_or_default() != want {
            failures.push(rel);
        }
    }
    assert!(
        failures.is_empty(),
        "snapshots differ for {failures:?}: review with ZENTINEL_BLESS=1 cargo test -p zentinel-convert --test corpus, then git diff"
    );
}
