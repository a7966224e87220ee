//! Multi-file configurations: `include` globs, merge order, relative paths, and the errors
//! of a loader that must never guess.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use std::fs;
use std::path::Path;

use zentinel_config::diagnostic::Code;
use zentinel_config::loader::load_file;

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(p, text).expect("write");
}

const MAIN: &str = r#"
include "conf.d/*.kdl"
listeners { listener "web" { address "127.0.0.1:8080"; } }
upstreams { upstream "backend" { target "127.0.0.1:3000"; } }
routes { route "main" { upstream "backend"; } }
"#;

#[test]
fn include_merges_collections_in_sorted_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "zentinel.kdl", MAIN);
    write(
        dir.path(),
        "conf.d/20-b.kdl",
        r#"routes { route "b" { upstream "extra"; } }"#,
    );
    write(
        dir.path(),
        "conf.d/10-a.kdl",
        r#"routes { route "a" { upstream "extra"; } }
upstreams { upstream "extra" { target "127.0.0.1:3001"; } }
include "nested/*.kdl""#,
    );
    write(
        dir.path(),
        "conf.d/nested/x.kdl",
        r#"admin { address "127.0.0.1:9901"; token-file "../../admin.token"; }"#,
    );
    write(dir.path(), "conf.d/ignored.txt", "not kdl");
    let c = load_file(&dir.path().join("zentinel.kdl")).unwrap_or_else(|d| panic!("{d}"));
    let ids: Vec<&str> = c.routes.iter().map(|r| r.id.as_str()).collect();
    // Main file first, then includes depth first, glob matches sorted.
    assert_eq!(ids, ["main", "a", "b"]);
    assert_eq!(c.upstreams.len(), 2);
    // Relative paths resolve against the file they are written in.
    let token = c.admin.and_then(|a| a.token_file).expect("token");
    assert_eq!(token, dir.path().join("conf.d/nested/../../admin.token"));
}

#[test]
fn include_that_matches_nothing_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "zentinel.kdl", MAIN);
    let d = load_file(&dir.path().join("zentinel.kdl")).expect_err("must fail");
    let p = &d.problems()[0];
    assert_eq!(p.code, Code::Include);
    assert!(p.message.contains("matched no file"), "{}", p.message);
    assert!(
        d.location(p.span.expect("span"))
            .ends_with("zentinel.kdl:2:1"),
        "{d}"
    );
}

#[test]
fn include_cycles_and_double_includes_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "zentinel.kdl", MAIN);
    write(dir.path(), "conf.d/a.kdl", r#"include "../zentinel.kdl""#);
    let d = load_file(&dir.path().join("zentinel.kdl")).expect_err("cycle");
    assert!(
        d.problems()
            .iter()
            .any(|p| p.message.contains("include cycle")),
        "{d}"
    );

    write(dir.path(), "conf.d/a.kdl", r#"include "b.kdl""#);
    write(
        dir.path(),
        "conf.d/b.kdl",
        r#"routes { route "b" { upstream "backend"; } }"#,
    );
    let d = load_file(&dir.path().join("zentinel.kdl")).expect_err("b twice");
    assert!(
        d.problems()
            .iter()
            .any(|p| p.message.contains("included more than once")),
        "{d}"
    );
}

#[test]
fn problems_in_included_files_name_that_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "zentinel.kdl", MAIN);
    write(
        dir.path(),
        "conf.d/routes.kdl",
        "routes {\n    route \"x\" { upstream \"backnd\"; }\n}\n",
    );
    let d = load_file(&dir.path().join("zentinel.kdl")).expect_err("bad ref");
    let loc = d.location(d.problems()[0].span.expect("span"));
    assert!(loc.ends_with("conf.d/routes.kdl:2:26"), "{loc}");
    assert_eq!(
        d.problems()[0].help.as_deref(),
        Some("did you mean `backend`? known upstreams: backend")
    );
}

#[test]
fn singleton_blocks_may_appear_once_across_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "zentinel.kdl",
        &format!("{MAIN}\nserver {{ worker-threads 2; }}\n"),
    );
    write(dir.path(), "conf.d/s.kdl", "server { worker-threads 4; }");
    let d = load_file(&dir.path().join("zentinel.kdl")).expect_err("two servers");
    let p = &d.problems()[0];
    assert_eq!(p.code, Code::DuplicateKey);
    assert!(
        d.location(p.span.expect("span"))
            .ends_with("conf.d/s.kdl:1:1"),
        "{d}"
    );
    assert!(
        d.location(p.related[0].0).contains("zentinel.kdl"),
        "first one is pointed at"
    );
}

#[test]
fn syntax_error_in_an_include_and_unreadable_main_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "zentinel.kdl", MAIN);
    write(dir.path(), "conf.d/broken.kdl", "routes { route \"x\" { ");
    let d = load_file(&dir.path().join("zentinel.kdl")).expect_err("syntax");
    assert!(d.problems().iter().all(|p| p.code == Code::Syntax), "{d}");
    let d = load_file(&dir.path().join("missing.kdl")).expect_err("missing");
    assert!(d.problems()[0].message.starts_with("cannot read"), "{d}");
}
