//! `docs/config.md` is generated from the schema; this test fails when they differ.
//! Regenerate with `make docs` (or `ZENTINEL_BLESS=1 cargo test -p zentinel-config --test docs`).

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use zentinel_config::schema::{self, Default, all_blocks};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md");

#[test]
fn config_reference_matches_the_schema() {
    let want = schema::markdown();
    if std::env::var_os("ZENTINEL_BLESS").is_some() {
        std::fs::write(PATH, &want).expect("write docs/config.md");
        return;
    }
    let have = std::fs::read_to_string(PATH).unwrap_or_default();
    assert!(
        have == want,
        "docs/config.md is out of date with the schema: run `make docs`"
    );
}

#[test]
fn every_key_is_documented_with_its_default() {
    let docs = std::fs::read_to_string(PATH).expect("docs/config.md exists");
    for block in all_blocks() {
        let anchor = if block.path.is_empty() {
            "top-level".to_owned()
        } else {
            block.path.replace('.', "-")
        };
        let start = docs
            .find(&format!("<a id=\"{anchor}\"></a>"))
            .unwrap_or_else(|| panic!("no section for `{}`", block.path));
        let section = &docs[start..];
        let section = &section[..section[1..].find("<a id=").map_or(section.len(), |i| i + 1)];
        for key in block.keys {
            let row = section
                .lines()
                .find(|l| l.starts_with(&format!("| `{}`", key.name)))
                .unwrap_or_else(|| {
                    panic!("`{}.{}` is not in docs/config.md", block.path, key.name)
                });
            let default = match key.default {
                Default::Required => "required".to_owned(),
                Default::Int(i) => i.to_string(),
                Default::Bool(b) => format!("#{b}"),
                Default::Str(s) => format!("\"{s}\""),
                Default::None => "none".to_owned(),
                Default::Computed(s) => s.replace('|', "\\|"),
            };
            assert!(
                row.contains(&format!("| {default} |")),
                "`{}.{}`: default {default} missing in: {row}",
                block.path,
                key.name
            );
        }
    }
}

#[test]
fn defaults_listing_has_every_value_key() {
    let table = schema::defaults_table();
    for block in all_blocks() {
        for key in block.keys {
            if matches!(
                key.kind,
                schema::Kind::Block(_) | schema::Kind::Named { .. }
            ) {
                continue;
            }
            let path = if block.path.is_empty() {
                key.name.to_owned()
            } else {
                format!("{}.{}", block.path, key.name)
            };
            assert!(
                table
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(path.as_str())),
                "`{path}` missing from defaults"
            );
        }
    }
}
