//! Replays the `agent_frame` fuzz target's committed seed corpus (`fuzz/seeds/agent_frame/`:
//! the shared test vectors' frames in both encodings, edge cases of the header, and every
//! input the fuzzer ever crashed on) through the same checks the target runs
//! (`fuzz/checks/agent_frame.rs`), on stable, in every `cargo test`.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

#[path = "../../../fuzz/checks/agent_frame.rs"]
mod checks;

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
    let files = files(dir);
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| checks::check(&data)) {
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/agent_frame");
    assert!(replay(&root) >= 20, "the seed corpus has gone missing");
}
