//! Request paths: the one normalisation applied before routing.
//!
//! A route that matches `/admin/` must not be bypassed by `/%61dmin/`, `/x/../admin/`,
//! `//admin/` or `/admin%2f`: the upstream (or a framework behind it) may decode or collapse
//! what the route matcher compared raw. So the proxy rewrites every request path once, before
//! routing, and forwards exactly the path it routed on. [`normalize`] is that rewrite; the
//! proxy, `zentinel explain` and the playground all call it.
//!
//! The rewrite (RFC 3986 §6.2.2):
//!
//! - percent-encoded unreserved characters (`A`–`Z`, `a`–`z`, `0`–`9`, `-._~`) are decoded
//!   (§6.2.2.2), and the hex digits of every other escape are upper-cased (§6.2.2.1);
//! - `.` and `..` segments are removed (§5.2.4, §6.2.2.3), after that decoding, so `%2e%2e`
//!   is a `..` too;
//! - empty segments are merged (`//` becomes `/`), as nginx does by default.
//!
//! Refused (the proxy answers 400), because servers disagree on what they mean:
//!
//! - `%2F` (an encoded `/`): some servers decode it into a separator, others do not;
//! - `\` and `%5C`: Windows servers read a backslash as `/`;
//! - control bytes, raw or encoded (`%00`–`%1F`, `%7F`): NUL truncates paths in C;
//! - a `%` not followed by two hex digits;
//! - `..` above the root (`/../x`), which no client that resolved its own URL sends;
//! - a `.` or `..` segment with parameters (`/..;/x`), which Java servers read as `..`;
//! - a byte that is not ASCII (RFC 3986 §2, RFC 9112 §3.2: a request target is ASCII, other
//!   bytes are percent-encoded), which servers decode as UTF-8 or Latin-1 as they please.
//!
//! Everything else is kept byte for byte, including `%25` (an encoded `%`: decoding it would
//! let a double-encoded `%252e` become `.` at a server that decodes twice) and the case of
//! the path (routes compare it case-sensitively).

use std::borrow::Cow;

/// Why a request path is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// The path does not start with `/` (nor is it the `*` of `OPTIONS *`).
    NotAbsolute,
    /// A `%` not followed by two hexadecimal digits.
    BadPercent,
    /// `%2F`: an encoded `/`.
    EncodedSlash,
    /// `\` or `%5C`.
    Backslash,
    /// A control byte, raw or percent-encoded (`%00`–`%1F`, `%7F`).
    ControlByte,
    /// A `..` segment that would leave the root.
    AboveRoot,
    /// A byte that is not ASCII: a request target is ASCII, anything else percent-encoded.
    NonAscii,
    /// A `.` or `..` segment with parameters (`..;x`).
    DotSegmentParameter,
    /// A `;` parameter in the path, on a listener with `path-parameters "refuse"`.
    Parameter,
}

impl PathError {
    /// The short explanation in the proxy's 400 body (and `zentinel explain`).
    pub fn detail(self) -> &'static str {
        match self {
            Self::NotAbsolute => "the path must start with /",
            Self::BadPercent => "% must be followed by two hex digits in the path",
            Self::EncodedSlash => "encoded slash (%2F) in the path",
            Self::Backslash => "backslash in the path",
            Self::ControlByte => "control character in the path",
            Self::AboveRoot => "the path climbs above the root",
            Self::NonAscii => "a request target must be ASCII (percent-encode other bytes)",
            Self::DotSegmentParameter => "dot segment with parameters in the path",
            Self::Parameter => "parameters (;) in the path are refused here",
        }
    }

    /// The reason named in the audit log.
    pub fn audit_reason(self) -> &'static str {
        match self {
            Self::NotAbsolute => "path-not-absolute",
            Self::BadPercent => "path-bad-percent",
            Self::EncodedSlash => "path-encoded-slash",
            Self::Backslash => "path-backslash",
            Self::ControlByte => "path-control-byte",
            Self::AboveRoot => "path-above-root",
            Self::NonAscii => "path-non-ascii",
            Self::DotSegmentParameter => "path-dot-segment-parameter",
            Self::Parameter => "path-parameter",
        }
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.detail())
    }
}

impl std::error::Error for PathError {}

/// The path routed on and forwarded for `raw` (a request's path, without the query), or why
/// it is refused. Borrows `raw` when it is already normal, which is the common case: then
/// nothing is allocated.
pub fn normalize(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if raw == "*" {
        return Ok(Cow::Borrowed(raw));
    }
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_normal(raw)? {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = decode_unreserved(raw)?;
    remove_dot_segments(&decoded).map(Cow::Owned)
}

/// [`normalize`], then the listener's rule for `;` parameters: with `refuse_parameters`, a
/// path that still has a `;` (an encoded one, `%3B`, is data, not a parameter) is refused.
pub fn normalize_on(raw: &str, refuse_parameters: bool) -> Result<Cow<'_, str>, PathError> {
    let path = normalize(raw)?;
    if refuse_parameters && path.contains(';') {
        return Err(PathError::Parameter);
    }
    Ok(path)
}

/// Whether `raw` needs no rewrite; refuses the bytes that are refused wherever they are.
fn is_normal(raw: &str) -> Result<bool, PathError> {
    let bytes = raw.as_bytes();
    // The whole path is scanned even once it is known to need a rewrite: a refused byte
    // anywhere refuses it.
    let mut escapes_normal = true;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        refuse_raw(b)?;
        if b == b'%' {
            let (hi, lo) = (bytes.get(i + 1).copied(), bytes.get(i + 2).copied());
            let value = escape(hi, lo)?;
            escapes_normal &= !(is_unreserved(value)
                || hi.is_some_and(|h| h.is_ascii_lowercase())
                || lo.is_some_and(|l| l.is_ascii_lowercase()));
            i += 3;
        } else {
            i += 1;
        }
    }
    if !escapes_normal {
        return Ok(false);
    }
    // The first byte is `/`, so every segment follows one. An empty last segment is a
    // trailing slash, which is normal.
    let mut segments = raw[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if (segment.is_empty() && !last)
            || matches!(segment, "." | "..")
            || is_dot_with_parameters(segment)
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `.;x` or `..;x`.
fn is_dot_with_parameters(segment: &str) -> bool {
    segment
        .split_once(';')
        .is_some_and(|(name, _)| matches!(name, "." | ".."))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Refuses a byte that is refused wherever it appears unencoded.
fn refuse_raw(b: u8) -> Result<(), PathError> {
    match b {
        b'\\' => Err(PathError::Backslash),
        0..=0x1f | 0x7f => Err(PathError::ControlByte),
        0x80.. => Err(PathError::NonAscii),
        _ => Ok(()),
    }
}

/// The byte the escape `%` `hi` `lo` stands for; refuses a malformed escape and the escapes
/// of `/`, `\` and control bytes.
fn escape(hi: Option<u8>, lo: Option<u8>) -> Result<u8, PathError> {
    let (Some(hi), Some(lo)) = (hi.and_then(hex), lo.and_then(hex)) else {
        return Err(PathError::BadPercent);
    };
    match hi << 4 | lo {
        b'/' => Err(PathError::EncodedSlash),
        b'\\' => Err(PathError::Backslash),
        0..=0x1f | 0x7f => Err(PathError::ControlByte),
        value => Ok(value),
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Decodes escapes of unreserved characters and upper-cases the others; refuses what
/// [`escape`] refuses.
fn decode_unreserved(raw: &str) -> Result<String, PathError> {
    const UPPER: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = raw.as_bytes();
    // Bytes, not chars: a multi-byte character of `raw` is copied byte for byte, and every
    // byte written in place of an escape is ASCII, so the result is UTF-8 again.
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            refuse_raw(b)?;
            out.push(b);
            i += 1;
            continue;
        }
        let value = escape(bytes.get(i + 1).copied(), bytes.get(i + 2).copied())?;
        if is_unreserved(value) {
            out.push(value);
        } else {
            out.extend_from_slice(&[
                b'%',
                UPPER[usize::from(value >> 4)],
                UPPER[usize::from(value & 0xf)],
            ]);
        }
        i += 3;
    }
    String::from_utf8(out).map_err(|_| PathError::BadPercent)
}

/// Removes `.` and `..` segments and merges empty ones. `path` starts with `/`.
fn remove_dot_segments(path: &str) -> Result<String, PathError> {
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path[1..].split('/') {
        trailing_slash = true;
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop().ok_or(PathError::AboveRoot)?;
            }
            s if is_dot_with_parameters(s) => return Err(PathError::DotSegmentParameter),
            s => {
                kept.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || kept.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code fails loudly")]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        normalize(raw)
            .unwrap_or_else(|e| panic!("{raw:?}: {e}"))
            .into_owned()
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for raw in [
            "/",
            "/a",
            "/a/",
            "/a/b.c",
            "/a/.b",
            "/a/b..",
            "/a;b",
            "/a/..b/",
            "*",
            "/a%20b",
            "/%25",
            "/caf%C3%A9",
        ] {
            assert!(
                matches!(normalize(raw), Ok(Cow::Borrowed(p)) if p == raw),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn dot_segments_and_empty_segments() {
        let cases = [
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/..", "/"),
            ("/.", "/"),
            ("//", "/"),
            ("//admin", "/admin"),
            ("/a//b///c", "/a/b/c"),
            ("/a/b//", "/a/b/"),
            ("/a/./../b/./c/..", "/b/"),
            ("/a//b/", "/a/b/"),
        ];
        for (raw, want) in cases {
            assert_eq!(ok(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn escapes_of_unreserved_characters_are_decoded_before_dot_segments() {
        let cases = [
            ("/%61dmin", "/admin"),
            ("/%41%5a%7E%2d%5F", "/AZ~-_"),
            ("/x/%2e%2e/admin", "/admin"),
            ("/x/%2E/admin", "/x/admin"),
            ("/x/.%2e/admin", "/admin"),
            ("/a%3ab", "/a%3Ab"),
            ("/a%3fb", "/a%3Fb"),
            ("/a%25b", "/a%25b"),
            ("/a%252e%252e/b", "/a%252e%252e/b"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/a%20b", "/a%20b"),
        ];
        for (raw, want) in cases {
            assert_eq!(ok(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        use PathError::*;
        let cases = [
            ("", NotAbsolute),
            ("a/b", NotAbsolute),
            ("http://x/", NotAbsolute),
            ("/a%2fb", EncodedSlash),
            ("/a%2Fb", EncodedSlash),
            ("/a\\b", Backslash),
            ("/a%5cb", Backslash),
            ("/a%00b", ControlByte),
            ("/a%0d%0a", ControlByte),
            ("/a%7f", ControlByte),
            ("/caf\u{e9}", NonAscii),
            ("/%41/\u{e9}", NonAscii),
            ("//.\u{48b};//y", NonAscii),
            ("/a\0b", ControlByte),
            ("/a\tb", ControlByte),
            ("/a%fff\u{1c}b", ControlByte),
            ("/%61\\b", Backslash),
            ("/a%", BadPercent),
            ("/a%4", BadPercent),
            ("/a%zz", BadPercent),
            ("/a%%41", BadPercent),
            ("/..", AboveRoot),
            ("/../admin", AboveRoot),
            ("/a/../../admin", AboveRoot),
            ("/%2e%2e/admin", AboveRoot),
            ("/x/..;/admin", DotSegmentParameter),
            ("/x/.;x/admin", DotSegmentParameter),
            ("/x/%2e%2e;/admin", DotSegmentParameter),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn a_trailing_dot_dot_with_parameters_is_refused_even_last() {
        assert_eq!(
            normalize("/a/..;jsessionid=1"),
            Err(PathError::DotSegmentParameter)
        );
    }

    #[test]
    fn parameters_are_refused_only_where_the_listener_says_so() {
        for raw in [
            "/admin;x/secret",
            "/a;jsessionid=1",
            "/a/b;",
            "/%61dmin;v=1/x",
        ] {
            assert!(normalize_on(raw, false).is_ok(), "{raw:?}");
            assert_eq!(
                normalize_on(raw, true),
                Err(PathError::Parameter),
                "{raw:?}"
            );
        }
        // An encoded `;` is data; the query is not the path.
        assert_eq!(normalize_on("/a%3Bb", true).as_deref(), Ok("/a%3Bb"));
        assert_eq!(normalize_on("/a/../b", true).as_deref(), Ok("/b"));
        // The path's own errors come first.
        assert_eq!(
            normalize_on("/x/..;/admin", true),
            Err(PathError::DotSegmentParameter)
        );
    }

    #[test]
    fn reasons_are_distinct() {
        use PathError::*;
        let all = [
            NotAbsolute,
            BadPercent,
            EncodedSlash,
            Backslash,
            ControlByte,
            AboveRoot,
            NonAscii,
            DotSegmentParameter,
            Parameter,
        ];
        let mut reasons: Vec<_> = all.iter().map(|e| e.audit_reason()).collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), all.len());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// Paths built from the pieces that matter: separators, dots, escapes, letters.
        fn path() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("/".to_owned()),
                Just(".".to_owned()),
                Just("..".to_owned()),
                Just(";".to_owned()),
                Just("%2e".to_owned()),
                Just("%2E".to_owned()),
                Just("%2f".to_owned()),
                Just("%25".to_owned()),
                Just("%41".to_owned()),
                Just("%3a".to_owned()),
                Just("%".to_owned()),
                "[a-c]{1,2}",
                "%[0-9a-fA-F]{2}",
            ];
            proptest::collection::vec(piece, 0..12).prop_map(|v| format!("/{}", v.concat()))
        }

        proptest! {
            /// Normalising twice changes nothing, and a normal path has no dot or empty
            /// segment, no encoded unreserved byte and no lower-case escape.
            #[test]
            fn idempotent_and_normal(raw in path()) {
                if let Ok(once) = normalize(&raw) {
                    let twice = normalize(&once);
                    prop_assert_eq!(twice.as_deref(), Ok(once.as_ref()));
                    prop_assert!(matches!(twice, Ok(Cow::Borrowed(_))));
                    prop_assert!(once.starts_with('/'));
                    let inner = once.trim_end_matches('/');
                    if !inner.is_empty() {
                        for seg in inner[1..].split('/') {
                            prop_assert!(!matches!(seg, "" | "." | ".."), "{once}");
                        }
                    }
                    let b = once.as_bytes();
                    for (i, _) in once.match_indices('%') {
                        let (hi, lo) = (b[i + 1], b[i + 2]);
                        prop_assert!(!hi.is_ascii_lowercase() && !lo.is_ascii_lowercase());
                        let v = hex(hi).unwrap() << 4 | hex(lo).unwrap();
                        prop_assert!(!is_unreserved(v) && v != b'/');
                    }
                }
            }

            /// A route on a prefix cannot be reached by an encoding of that prefix: the
            /// encoded form normalises to the same path as the plain one.
            #[test]
            fn encodings_of_a_path_normalise_alike(
                mask in proptest::collection::vec(any::<bool>(), 5),
                dots in 0usize..3,
            ) {
                let plain = "/admin";
                let mut encoded = String::from("/");
                for _ in 0..dots {
                    encoded.push_str("x/%2e%2e//");
                }
                for (c, enc) in "admin".chars().zip(&mask) {
                    if *enc {
                        encoded.push_str(&format!("%{:02x}", c as u8));
                    } else {
                        encoded.push(c);
                    }
                }
                let got = normalize(&encoded);
                prop_assert_eq!(got.as_deref(), Ok(plain));
            }
        }
    }
}
