//! W3C trace context. Every request gets a trace ID — the request ID the client gets back and
//! every log line of the request carries — and a span ID for this hop. An incoming
//! `traceparent` is continued only when it comes from a trusted proxy; from anyone else it
//! is replaced (and its `tracestate` dropped), so a client cannot choose the ID its request
//! is logged and audited under.

/// The trace context of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trace {
    /// 32 lower-case hex digits, never all zero.
    pub id: String,
    /// This hop's span: 16 lower-case hex digits, never all zero.
    span: String,
    /// Trace flags (bit 0: sampled).
    flags: u8,
}

/// `v`'s low `digits` hex digits, lower case, zero-padded (one per request: no `format!`).
fn hex(v: u128, digits: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(digits);
    for i in (0..digits).rev() {
        // The nibble's value is below 16.
        out.push(char::from(HEX[((v >> (4 * i)) & 0xf) as usize]));
    }
    out
}

/// A random trace ID: 32 hex digits, never all zero.
fn trace_id() -> String {
    hex(rand::random::<u128>().max(1), 32)
}

/// A random span ID: 16 hex digits, never all zero.
fn span_id() -> String {
    hex(u128::from(rand::random::<u64>().max(1)), 16)
}

fn is_id(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

impl Trace {
    /// A new trace, started here, sampled.
    pub(crate) fn new() -> Self {
        Self {
            id: trace_id(),
            span: span_id(),
            flags: 1,
        }
    }

    /// Continues the trace of a `traceparent` value (a new span for this hop); `None` when
    /// the value is not a valid version-00 (or later, read as 00) trace context.
    pub(crate) fn continue_from(traceparent: &str) -> Option<Self> {
        let mut parts = traceparent.trim().splitn(5, '-');
        let (version, id, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let rest = parts.next();
        let version_ok = is_hex_byte(version) && version != "ff";
        // Version 00 has exactly four fields; later versions may append more.
        let shape_ok = if version == "00" {
            rest.is_none()
        } else {
            true
        };
        if !(version_ok && shape_ok && is_id(id, 32) && is_id(parent, 16) && is_hex_byte(flags)) {
            return None;
        }
        Some(Self {
            id: id.to_owned(),
            span: span_id(),
            flags: u8::from_str_radix(flags, 16).ok()?,
        })
    }

    /// The `traceparent` this hop sends on.
    pub(crate) fn traceparent(&self) -> String {
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        out.push_str(&self.id);
        out.push('-');
        out.push_str(&self.span);
        out.push('-');
        out.push_str(&hex(u128::from(self.flags), 2));
        out
    }
}

fn is_hex_byte(s: &str) -> bool {
    s.len() == 2
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_are_lower_case_and_zero_padded() {
        assert_eq!(hex(0xab, 2), "ab");
        assert_eq!(hex(1, 16), "0000000000000001");
        assert_eq!(hex(u128::MAX, 32), "f".repeat(32));
        assert_eq!(hex(0x0123_4567_89ab_cdef, 16), "0123456789abcdef");
    }

    #[test]
    fn new_traces_are_well_formed_and_distinct() {
        let t = Trace::new();
        assert_ne!(t.id, Trace::new().id);
        let tp = t.traceparent();
        assert_eq!(tp.len(), 55, "{tp}");
        assert_eq!(Trace::continue_from(&tp).map(|c| c.id), Some(t.id));
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_span() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = Trace::continue_from(tp).unwrap_or_else(|| panic!("valid"));
        assert_eq!(t.id, "4bf92f3577b34da6a3ce929d0e0e4736");
        let out = t.traceparent();
        assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(out.ends_with("-01"));
        assert_ne!(out, tp, "this hop has its own span");
        // A later version with more fields is read as version 00.
        let v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra";
        assert!(Trace::continue_from(v1).is_some());
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert!(Trace::continue_from(bad).is_none(), "{bad:?}");
        }
    }
}
