//! Replays the committed seed corpora of the `config_load` and `path_normalize` fuzz targets
//! (`fuzz/seeds/<target>/`, which keep every input the fuzzer ever crashed on) and the
//! examples through the same checks the targets run (`fuzz/checks/`), on stable, in every
//! `cargo test`.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

#[path = "../../../fuzz/checks/config_load.rs"]
mod checks;
#[path = "../../../fuzz/checks/path_normalize.rs"]
mod path_checks;

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(dir: &Path) -> usize {
    replay_with(dir, checks::check)
}

fn replay_with(dir: &Path, check: fn(&[u8])) -> usize {
    let files = files(dir);
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            let reason = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("{}: {reason}", path.display());
        }
    }
    files.len()
}

#[test]
fn seed_corpus_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/config_load");
    assert!(replay(&root) >= 20, "the seed corpus has gone missing");
}

#[test]
fn examples_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    assert!(replay(&root) >= 1);
}

#[test]
fn path_seed_corpus_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/path_normalize");
    assert!(
        replay_with(&root, path_checks::check) >= 18,
        "the seed corpus has gone missing"
    );
}
