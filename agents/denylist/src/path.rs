//! The path a rule tests: the part of the request URI before `?`, and a normalized form of it
//! so that spelling a path differently (`/%61dmin`, `//admin`, `/x/../admin`, `\admin`) does
//! not slip past a rule written for `/admin`.
//!
//! Normalization is for matching only; the request is never changed.

/// The path of `uri`: everything before `?` or `#`. An absolute-form URI
/// (`http://host/p`) gives its path (`/p`), or `/` when it has none.
pub(crate) fn of_uri(uri: &str) -> &str {
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    let target = &uri[..end];
    if target.starts_with('/') {
        return target;
    }
    match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    }
}

/// `path` percent-decoded once, with `\` read as `/`, empty and `.` segments removed and `..`
/// segments resolved; `None` when that is `path` itself.
pub(crate) fn normalize(path: &str) -> Option<String> {
    let decoded = percent_decode(path);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let trailing = decoded.ends_with(['/', '\\']) || decoded.ends_with("/.");
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push('/');
    }
    (out != path).then_some(out)
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is. Bytes that do
/// not form UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'%') {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| Some(hex(h[0])? << 4 | hex(h[1])?));
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
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
    fn the_path_stops_at_the_query() {
        assert_eq!(of_uri("/api/users?id=1"), "/api/users");
        assert_eq!(of_uri("/a#frag"), "/a");
        assert_eq!(of_uri("/"), "/");
        assert_eq!(of_uri("http://h.example/x/y?q"), "/x/y");
        assert_eq!(of_uri("http://h.example"), "/");
        assert_eq!(of_uri("*"), "*");
    }

    #[test]
    fn normalization_undoes_the_usual_disguises() {
        assert_eq!(normalize("/admin"), None);
        assert_eq!(normalize("/%61dmin").as_deref(), Some("/admin"));
        assert_eq!(normalize("//admin").as_deref(), Some("/admin"));
        assert_eq!(normalize("/x/../admin/").as_deref(), Some("/admin/"));
        assert_eq!(normalize("/./admin").as_deref(), Some("/admin"));
        assert_eq!(normalize("\\admin").as_deref(), Some("/admin"));
        assert_eq!(normalize("/../../admin").as_deref(), Some("/admin"));
        assert_eq!(normalize("/a/.").as_deref(), Some("/a/"));
        assert_eq!(normalize("/..").as_deref(), Some("/"));
        assert_eq!(normalize("/a/b/"), None);
    }

    #[test]
    fn bad_escapes_stay_and_bad_utf8_is_replaced() {
        assert_eq!(percent_decode("/100%"), "/100%");
        assert_eq!(percent_decode("/%zz%4"), "/%zz%4");
        assert_eq!(percent_decode("/%2e%2E"), "/..");
        assert_eq!(percent_decode("/%ff"), "/\u{fffd}");
    }
}
