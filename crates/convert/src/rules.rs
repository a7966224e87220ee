//! What the config crate accepts, checked before a value is put in the draft, so a value it
//! would refuse is reported as not mapped instead of breaking the whole output. These mirror
//! the rules in `zentinel-config`'s decoder; the final `load_str` catches any drift.

use std::net::SocketAddr;

/// Headers the proxy owns; policies may not edit them.
const PROTECTED_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "host",
];

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A header name, lower-cased, or why it cannot be used.
pub(crate) fn header_name(name: &str) -> Result<String, String> {
    if name.is_empty() || !name.chars().all(is_tchar) {
        return Err(format!("\"{name}\" is not a valid header name"));
    }
    Ok(name.to_ascii_lowercase())
}

/// A header name that policies may edit.
pub(crate) fn editable_header(name: &str) -> Result<String, String> {
    let n = header_name(name)?;
    if PROTECTED_HEADERS.contains(&n.as_str()) {
        return Err(format!(
            "the proxy manages `{n}` itself; header policies cannot edit it"
        ));
    }
    Ok(n)
}

/// A header value Zentinel accepts.
pub(crate) fn header_value(value: &str) -> Result<(), String> {
    if value
        .chars()
        .any(|c| (c.is_control() && c != '\t') || c == '\u{7f}')
    {
        return Err("the value holds control characters".to_owned());
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Err("the value starts or ends with whitespace".to_owned());
    }
    Ok(())
}

/// A host pattern (exact or `*.suffix`), lower-cased.
pub(crate) fn host_pattern(host: &str) -> Option<String> {
    let v = host.to_ascii_lowercase();
    let name = v.strip_prefix("*.").unwrap_or(&v);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (!name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok)).then_some(v)
}

/// A target address (`ip:port` or `host:port`, port not 0), normalised.
pub(crate) fn target(host: &str, port: u16) -> Option<String> {
    if port == 0 {
        return None;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, port).to_string());
    }
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    ok.then(|| format!("{}:{port}", host.to_ascii_lowercase()))
}

/// Splits `host:port`, `[v6]:port` or `host` (with `default_port`).
pub(crate) fn split_host_port(s: &str, default_port: Option<u16>) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port?,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_owned(), p.parse().ok()?)),
        Some(_) => {
            // A bare IPv6 address without brackets has no port.
            s.parse::<std::net::Ipv6Addr>().ok()?;
            Some((s.to_owned(), default_port?))
        }
        None => Some((s.to_owned(), default_port?)),
    }
}

/// A path for `path` / `path-prefix`.
pub(crate) fn path(p: &str) -> bool {
    p.starts_with('/')
}

/// A regular expression the config crate compiles (Rust syntax, bounded size), or the error.
pub(crate) fn regex(re: &str) -> Result<(), String> {
    regex::RegexBuilder::new(re)
        .size_limit(1 << 20)
        .build()
        .map(|_| ())
        .map_err(|e| {
            let detail = e.to_string();
            detail.lines().last().unwrap_or("invalid").trim().to_owned()
        })
}

/// Escapes a literal for use inside a regular expression.
pub(crate) fn regex_escape(s: &str) -> String {
    regex::escape(s)
}

/// A request method as Zentinel matches it (case-sensitive token).
pub(crate) fn method(m: &str) -> Option<String> {
    (!m.is_empty() && m.chars().all(is_tchar)).then(|| m.to_ascii_uppercase())
}

/// A path for a health probe: starts with `/`, visible ASCII only.
pub(crate) fn probe_path(p: &str) -> bool {
    p.starts_with('/') && p.bytes().all(|b| b.is_ascii_graphic())
}

/// Clamps `v` to `lo..=hi`, saying so when it had to.
pub(crate) fn clamp(v: u64, lo: u64, hi: u64, what: &str) -> (u64, Option<String>) {
    if v < lo {
        (
            lo,
            Some(format!("{what} raised to Zentinel's minimum {lo}")),
        )
    } else if v > hi {
        (
            hi,
            Some(format!("{what} lowered to Zentinel's maximum {hi}")),
        )
    } else {
        (v, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_split() {
        assert_eq!(split_host_port("a:80", None), Some(("a".into(), 80)));
        assert_eq!(split_host_port("a", Some(8)), Some(("a".into(), 8)));
        assert_eq!(split_host_port("[::1]:9", None), Some(("::1".into(), 9)));
        assert_eq!(split_host_port("::1", Some(5)), Some(("::1".into(), 5)));
        assert_eq!(split_host_port("a:x", None), None);
        assert_eq!(target("::1", 80).as_deref(), Some("[::1]:80"));
        assert_eq!(
            target("Backend.internal", 80).as_deref(),
            Some("backend.internal:80")
        );
        assert_eq!(target("bad_host", 80), None);
    }

    #[test]
    fn headers_and_hosts() {
        assert!(editable_header("Host").is_err());
        assert_eq!(editable_header("X-A").ok().as_deref(), Some("x-a"));
        assert!(header_value(" x").is_err());
        assert_eq!(
            host_pattern("*.Example.com").as_deref(),
            Some("*.example.com")
        );
        assert_eq!(host_pattern("www.example.*"), None);
        assert!(regex("(?i)^/a").is_ok());
        assert!(regex("(?<=a)b").is_err());
    }
}
