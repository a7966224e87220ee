//! What the `path_normalize` fuzz target checks for one input, shared with the stable replay
//! test (`crates/config/tests/fuzz_replay.rs`) so both run exactly the same code.
//!
//! Any byte string yields a normal path or a refusal, never a panic. A normal path is a fixed
//! point (normalising it again borrows it unchanged), starts with `/`, has no empty, `.` or
//! `..` segment inside it, no backslash, control byte or `%2F`, and only upper-case escapes of
//! reserved bytes. And it means what the request meant: decoding every escape once gives the
//! same path as decoding the request's escapes once and then resolving its dot segments and
//! merging its slashes — so what the router saw is what a decoding upstream sees. A listener
//! that refuses `;` parameters accepts exactly the normal paths without a `;`, unchanged.

use std::borrow::Cow;

use zentinel_config::path::{PathError, normalize, normalize_on};

/// Runs the checks on one input; panics (with the reason) when an invariant does not hold.
pub(crate) fn check(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(normal) = normalize(raw) else {
        assert_eq!(
            normalize_on(raw, true).err(),
            normalize(raw).err(),
            "{raw:?}: a refused path is refused for the same reason on every listener"
        );
        return;
    };
    match normalize_on(raw, true) {
        Ok(strict) => assert!(strict == normal && !normal.contains(';'), "{raw:?}"),
        Err(e) => assert!(
            e == PathError::Parameter && normal.contains(';'),
            "{raw:?}: {e:?}"
        ),
    }
    if raw == "*" {
        assert_eq!(normal, "*");
        return;
    }
    assert!(normal.starts_with('/'), "{raw:?} -> {normal:?}");
    match normalize(&normal) {
        Ok(Cow::Borrowed(again)) => assert_eq!(again, normal, "{raw:?}"),
        other => panic!("{raw:?} -> {normal:?} is not a fixed point: {other:?}"),
    }
    let inner = normal.strip_suffix('/').unwrap_or(&normal);
    if !inner.is_empty() {
        for segment in inner[1..].split('/') {
            assert!(
                !matches!(segment, "" | "." | ".."),
                "{raw:?} -> {normal:?} keeps segment {segment:?}"
            );
        }
    }
    let bytes = normal.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        assert!(b > 0x1f && b != 0x7f && b != b'\\', "{raw:?} -> {normal:?}");
        if b == b'%' {
            let escape = &normal[i + 1..i + 3];
            assert_eq!(escape, escape.to_ascii_uppercase(), "{raw:?} -> {normal:?}");
            assert_ne!(escape, "2F", "{raw:?} -> {normal:?}");
        }
    }
    assert_eq!(
        decode_once(&normal),
        resolve(&decode_once(raw)),
        "{raw:?} -> {normal:?} changed meaning"
    );
}

/// Every valid `%XX` decoded once, as bytes.
fn decode_once(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// RFC 3986 §5.2.4 dot-segment removal with empty segments merged, on bytes starting `/`.
fn resolve(path: &[u8]) -> Vec<u8> {
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut trailing = false;
    for segment in path[1..].split(|&c| c == b'/') {
        trailing = true;
        match segment {
            b"" | b"." => {}
            b".." => {
                kept.pop();
            }
            s => {
                kept.push(s);
                trailing = false;
            }
        }
    }
    let mut out = Vec::new();
    for s in &kept {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if trailing || kept.is_empty() {
        out.push(b'/');
    }
    out
}
