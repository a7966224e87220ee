//! Checks of an upstream response head that Pingora 0.9.1's HTTP/1 client lets through
//! (what it refuses itself, and what neither can see, is listed in `docs/security.md`,
//! "Responses from upstreams"). A head that fails them becomes a `502` before anything
//! reaches the client, and the error ends the upstream connection: Pingora returns a
//! connection to its pool only when the exchange finished without an error.

use http::header::{CONTENT_LENGTH, UPGRADE};
use pingora::http::ResponseHeader;
use pingora::prelude::*;

/// Why an upstream head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadHead {
    /// `Content-Length` on more than one line or as a list, even with equal values: Pingora
    /// collapses equal values for its own framing but would forward every line.
    RepeatedContentLength,
    /// A `101` to a request that did not ask to upgrade (RFC 9110 §15.2.2), or one that
    /// switches to a protocol other than the WebSocket the request asked for (§7.8).
    UnsolicitedSwitch,
}

impl BadHead {
    fn explain(self) -> &'static str {
        match self {
            Self::RepeatedContentLength => {
                "upstream response with a repeated Content-Length (RFC 9110 §8.6)"
            }
            Self::UnsolicitedSwitch => {
                "upstream 101 Switching Protocols to a request that did not ask for it"
            }
        }
    }

    /// The error that turns the response into a 502 and closes the upstream connection.
    pub(crate) fn error(self) -> Box<Error> {
        Error::explain(InvalidHTTPHeader, self.explain()).into_up()
    }
}

/// Checks a response head; `asked_websocket` is whether the upstream request was a
/// WebSocket handshake (the only upgrade the proxy forwards).
pub(crate) fn check(resp: &ResponseHeader, asked_websocket: bool) -> Option<BadHead> {
    let mut lengths = resp.headers.get_all(CONTENT_LENGTH).iter();
    let first = lengths.next();
    if lengths.next().is_some() || first.is_some_and(|v| v.as_bytes().contains(&b',')) {
        return Some(BadHead::RepeatedContentLength);
    }
    if resp.status == http::StatusCode::SWITCHING_PROTOCOLS {
        let to_websocket = resp
            .headers
            .get_all(UPGRADE)
            .iter()
            .any(|v| zentinel_config::explain::names_websocket(v.as_bytes()));
        if !asked_websocket || !to_websocket {
            return Some(BadHead::UnsolicitedSwitch);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn head(status: u16, headers: &[(&'static str, &'static str)]) -> ResponseHeader {
        let mut resp = ResponseHeader::build(status, None).unwrap();
        for (n, v) in headers {
            resp.append_header(*n, *v).unwrap();
        }
        resp
    }

    #[test]
    fn one_content_length_passes() {
        assert_eq!(check(&head(200, &[("content-length", "5")]), false), None);
        assert_eq!(check(&head(200, &[]), false), None);
    }

    #[test]
    fn repeated_content_length_is_refused() {
        let twice = head(200, &[("content-length", "5"), ("Content-Length", "5")]);
        assert_eq!(check(&twice, false), Some(BadHead::RepeatedContentLength));
        let list = head(200, &[("content-length", "5, 5")]);
        assert_eq!(check(&list, false), Some(BadHead::RepeatedContentLength));
    }

    #[test]
    fn switch_only_to_the_websocket_asked_for() {
        let ws = head(101, &[("upgrade", "websocket"), ("connection", "upgrade")]);
        assert_eq!(check(&ws, true), None);
        assert_eq!(check(&ws, false), Some(BadHead::UnsolicitedSwitch));
        let h2c = head(101, &[("upgrade", "h2c"), ("connection", "upgrade")]);
        assert_eq!(check(&h2c, true), Some(BadHead::UnsolicitedSwitch));
        let bare = head(101, &[]);
        assert_eq!(check(&bare, true), Some(BadHead::UnsolicitedSwitch));
    }
}
