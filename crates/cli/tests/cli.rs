//! The `zentinel` binary: exit codes, diagnostics as an operator sees them, JSON output, and
//! every example configuration in the repository.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn zentinel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zentinel"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run zentinel")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_example_validates() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .flat_map(|p| {
            if p.is_dir() {
                vec![p.join("zentinel.kdl")]
            } else {
                vec![p]
            }
        })
        .filter(|p| p.extension().is_some_and(|e| e == "kdl") && p.exists())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        let out = zentinel(&["validate", &f.to_string_lossy()]);
        assert!(
            out.status.success(),
            "{}:\n{}",
            f.display(),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("configuration OK"));
    }
}

#[test]
fn typo_fails_with_location_key_and_suggestion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = std::fs::read_to_string(repo().join("examples/seed.kdl")).expect("seed");
    let bad = seed.replace("timeout-ms 50", "timout-ms 50");
    let line = bad
        .lines()
        .position(|l| l.starts_with("timout-ms"))
        .expect("line")
        + 1;
    let path = dir.path().join("typo.kdl");
    std::fs::write(&path, bad).expect("write");
    let out = zentinel(&["validate", &path.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("typo.kdl:{line}:1: error[unknown-key]")),
        "{err}"
    );
    assert!(
        err.contains("unknown key `timout-ms` in agent \"waf\""),
        "{err}"
    );
    assert!(err.contains("help: did you mean `timeout-ms`?"), "{err}");
    assert!(
        err.contains("timout-ms 50"),
        "the source line is shown:\n{err}"
    );
}

#[test]
fn json_format_for_machines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.kdl");
    std::fs::write(&path, "listeners { listener \"web\" { address \"127.0.0.1:80\"; } }\nroutes { route \"r\" { upstream \"nope\"; } }\nupstreams { upstream \"u\" { target \"127.0.0.1:1\"; } }\n").expect("write");
    let out = zentinel(&["validate", "--format", "json", &path.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["code"], "unknown-reference");
    assert_eq!(v["problems"][0]["line"], 2);
    assert_eq!(v["problems"][0]["column"], 31);
    let out = zentinel(&[
        "validate",
        "--format",
        "json",
        &repo().join("examples/seed.kdl").to_string_lossy(),
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["config"]["agents"][0]["timeout"], 50);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(zentinel(&["validate"]).status.code(), Some(2));
    assert_eq!(
        zentinel(&["validate", "--format", "yaml", "x.kdl"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(zentinel(&["frobnicate"]).status.code(), Some(2));
    let help = zentinel(&["--help"]);
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("validate"));
}

#[test]
fn missing_file_exits_1_naming_it() {
    let out = zentinel(&["validate", "/nonexistent/zentinel.kdl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read /nonexistent/zentinel.kdl"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn run_prints_the_same_diagnostics_as_validate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("zentinel.kdl");
    std::fs::write(
        &path,
        "listeners { listener \"web\" { adress \"127.0.0.1:80\"; } }\n",
    )
    .expect("write");
    let p = path.to_string_lossy();
    let validate = text(&zentinel(&["validate", &p]).stderr);
    let run = zentinel(&["run", "-c", &p]);
    assert_eq!(run.status.code(), Some(1));
    let run_err = text(&run.stderr);
    let diagnostics = validate
        .rsplit_once(&format!("{p}: configuration invalid"))
        .map(|(d, _)| d)
        .expect("summary");
    assert!(
        run_err.starts_with(diagnostics),
        "run:\n{run_err}\nvalidate:\n{validate}"
    );
    assert!(run_err.contains("did you mean `address`?"));
}

#[test]
fn config_defaults_and_docs() {
    let out = zentinel(&["config", "defaults"]);
    assert!(out.status.success());
    let t = text(&out.stdout);
    assert!(
        t.lines()
            .any(|l| l.starts_with("agents.agent.timeout-ms") && l.contains("100")),
        "{t}"
    );
    let docs = zentinel(&["config", "docs"]);
    let on_disk = std::fs::read_to_string(repo().join("docs/config.md")).expect("docs");
    assert_eq!(text(&docs.stdout), on_disk);
}

#[test]
fn kdl_snippets_in_the_readme_validate() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let blocks: Vec<&str> = readme
        .split("```kdl\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert!(!blocks.is_empty());
    for b in blocks {
        if let Err(d) = zentinel_config::load_str("README.md", b) {
            panic!("README snippet does not validate:\n{d}\n{b}");
        }
    }
}

#[test]
fn a_reader_that_stops_early_ends_validate_quietly() {
    use std::io::{BufRead, BufReader};
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed.kdl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zentinel"))
        .arg("validate")
        .args(std::iter::repeat_n(seed, 2000))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The read end is closed here, as `| head -1` does.
    let out = child.wait_with_output().unwrap();
    assert!(first.contains("configuration OK"), "{first}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        out.status.code(),
        Some(141),
        "the shell's status for SIGPIPE"
    );
}
