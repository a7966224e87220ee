//! The one place where failures become HTTP statuses, and the error responses themselves:
//! short, naming the route and the request ID, never internals.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType, Result};

/// Why the proxy answered on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No route matches (404).
    NoRoute,
    /// The request target is too long (414).
    UriTooLong,
    /// Too many or too large request headers (431).
    HeadersTooLarge,
    /// The body is larger than the limit (413).
    BodyTooLarge,
    /// The proxy or the route is at its in-flight cap (503).
    Overloaded,
    /// No target of the pool is available (503).
    NoHealthyTarget,
    /// A WebSocket upgrade on a route that does not allow it (403).
    UpgradeNotAllowed,
    /// The process is shutting down (503).
    ShuttingDown,
    /// A rate-limit filter refused the request (429).
    RateLimited,
    /// The request head is ambiguous or malformed (400); see [`Malformed`].
    BadRequest(Malformed),
    /// A method the proxy never forwards (501); see [`RefusedMethod`].
    Method(RefusedMethod),
}

/// Methods refused on every route (the checks are in `strict.rs`, the reasons in
/// `docs/security.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusedMethod {
    /// `CONNECT`: the proxy does not tunnel (RFC 9110 §9.3.6).
    Connect,
    /// `TRACE`: it would echo the request, with what the proxy added, to the client
    /// (RFC 9110 §9.3.8).
    Trace,
}

impl RefusedMethod {
    /// The short explanation in the body.
    pub fn detail(self) -> &'static str {
        let method = match self {
            Self::Connect => "CONNECT",
            Self::Trace => "TRACE",
        };
        // The text `zentinel explain` gives, from the same function.
        zentinel_config::explain::refused_method(method).unwrap_or("method not supported")
    }

    /// The reason named in the audit log.
    pub fn audit_reason(self) -> &'static str {
        match self {
            Self::Connect => "method-connect",
            Self::Trace => "method-trace",
        }
    }
}

/// What is wrong with a request head that the HTTP parser let through (the checks are in
/// `strict.rs`, the reasons in `docs/security.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// A line of the head ends in a bare LF instead of CRLF.
    BareLineFeed,
    /// `Content-Length` on more than one line, or as a list.
    ContentLength,
    /// `Content-Length` and `Transfer-Encoding` together.
    LengthAndEncoding,
    /// `Transfer-Encoding` other than one `chunked` on one line.
    TransferEncoding,
    /// An HTTP/1.1 request without `Host`.
    MissingHost,
    /// A `Host` that is not `host[:port]`.
    InvalidHost,
    /// A `Connection` option that is not a token, or too many options.
    ConnectionOption,
    /// A path the one normalisation before routing refuses (`zentinel_config::path`).
    Path(zentinel_config::path::PathError),
}

impl Malformed {
    /// The short explanation in the body.
    pub fn detail(self) -> &'static str {
        match self {
            Self::BareLineFeed => "header lines must end in CRLF",
            Self::ContentLength => "more than one Content-Length",
            Self::LengthAndEncoding => "both Content-Length and Transfer-Encoding",
            Self::TransferEncoding => "Transfer-Encoding must be chunked, once",
            Self::MissingHost => "no Host header",
            Self::InvalidHost => "invalid Host header",
            Self::ConnectionOption => "invalid Connection header",
            Self::Path(e) => e.detail(),
        }
    }

    /// The reason named in the audit log.
    pub fn audit_reason(self) -> &'static str {
        match self {
            Self::BareLineFeed => "bare-line-feed",
            Self::ContentLength => "duplicate-content-length",
            Self::LengthAndEncoding => "content-length-and-transfer-encoding",
            Self::TransferEncoding => "invalid-transfer-encoding",
            Self::MissingHost => "missing-host",
            Self::InvalidHost => "invalid-host",
            Self::ConnectionOption => "invalid-connection",
            Self::Path(e) => e.audit_reason(),
        }
    }
}

impl Refusal {
    /// The status sent.
    pub fn status(self) -> u16 {
        match self {
            Self::NoRoute => 404,
            Self::UriTooLong => 414,
            Self::HeadersTooLarge => 431,
            Self::BodyTooLarge => 413,
            Self::Overloaded | Self::NoHealthyTarget | Self::ShuttingDown => 503,
            Self::UpgradeNotAllowed => 403,
            Self::RateLimited => 429,
            Self::BadRequest(_) => 400,
            Self::Method(_) => 501,
        }
    }

    /// The short explanation in the body.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoRoute => "no route matches this request",
            Self::UriTooLong => "request target too long",
            Self::HeadersTooLarge => "request headers too large",
            Self::BodyTooLarge => "request body too large",
            Self::Overloaded => "too many requests in flight",
            Self::NoHealthyTarget => "no healthy upstream target",
            Self::UpgradeNotAllowed => "protocol upgrades are not allowed on this route",
            Self::ShuttingDown => "the proxy is shutting down",
            Self::RateLimited => "rate limit exceeded",
            Self::BadRequest(m) => m.detail(),
            Self::Method(m) => m.detail(),
        }
    }

    /// The reason named in the audit log, for refusals that are security decisions (a
    /// limit, a cap, a policy); `None` for the others.
    pub fn audit_reason(self) -> Option<&'static str> {
        match self {
            Self::UriTooLong => Some("uri-too-long"),
            Self::HeadersTooLarge => Some("headers-too-large"),
            Self::BodyTooLarge => Some("body-too-large"),
            Self::Overloaded => Some("max-in-flight-requests"),
            Self::UpgradeNotAllowed => Some("upgrade-not-allowed"),
            Self::RateLimited => Some("rate-limit"),
            Self::BadRequest(m) => Some(m.audit_reason()),
            Self::Method(m) => Some(m.audit_reason()),
            Self::NoRoute | Self::NoHealthyTarget | Self::ShuttingDown => None,
        }
    }

    /// As a Pingora error, for phases that can only fail.
    pub fn error(self) -> Box<Error> {
        Error::explain(ErrorType::HTTPStatus(self.status()), self.reason())
    }
}

/// The status for an error that ended a request; 0 when the client is gone.
pub fn status_of(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        ErrorType::ConnectTimedout
        | ErrorType::ConnectRefused
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::TLSHandshakeFailure
        | ErrorType::TLSHandshakeTimedout
        | ErrorType::InvalidCert
        | ErrorType::HandshakeError => 502,
        ErrorType::ReadTimedout | ErrorType::WriteTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            504
        }
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                // A client that stopped reading (`send-timeout-ms`) is gone as well.
                ErrorType::WriteError
                | ErrorType::WriteTimedout
                | ErrorType::ReadError
                | ErrorType::ConnectionClosed => 0,
                ErrorType::ReadTimedout => 408,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// Writes a proxy-generated response: status, a plain-text body naming the route and the
/// request ID, `Connection: close` when the connection must not be reused.
pub async fn respond(
    session: &mut Session,
    status: u16,
    detail: &str,
    route: Option<&str>,
    request_id: &str,
    request_id_header: &http::HeaderName,
    close: bool,
) -> Result<()> {
    let reply = Answer {
        status,
        body: explanation(status, detail, route, request_id),
        headers: &[],
        close,
    };
    answer(session, &reply, request_id, request_id_header).await
}

/// The short plain-text body of proxy-generated responses.
pub fn explanation(status: u16, detail: &str, route: Option<&str>, request_id: &str) -> Bytes {
    let mut body = format!("{status} {}: {detail}\n", reason_phrase(status));
    if let Some(r) = route {
        body.push_str(&format!("route: {r}\n"));
    }
    body.push_str(&format!("request-id: {request_id}\n"));
    Bytes::from(body)
}

/// A complete response written by the proxy itself.
#[derive(Debug)]
pub struct Answer<'a> {
    /// Its status.
    pub status: u16,
    /// Its body (plain text unless `headers` names another content type).
    pub body: Bytes,
    /// Extra headers.
    pub headers: &'a [(http::HeaderName, http::HeaderValue)],
    /// Whether the connection is closed after it.
    pub close: bool,
}

/// Writes `a`, with the request ID header and no caching.
pub async fn answer(
    session: &mut Session,
    a: &Answer<'_>,
    request_id: &str,
    request_id_header: &http::HeaderName,
) -> Result<()> {
    let mut resp = ResponseHeader::build(a.status, Some(5 + a.headers.len()))?;
    for (name, value) in a.headers {
        resp.append_header(name.clone(), value.clone())?;
    }
    if !resp.headers.contains_key(http::header::CONTENT_TYPE) {
        resp.insert_header("content-type", "text/plain; charset=utf-8")?;
    }
    resp.insert_header("content-length", a.body.len().to_string())?;
    if !resp.headers.contains_key(http::header::CACHE_CONTROL) {
        resp.insert_header("cache-control", "no-store")?;
    }
    resp.insert_header(request_id_header, request_id)?;
    if a.close {
        resp.insert_header("connection", "close")?;
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(a.body.clone()), true)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_failures_map_to_502_and_504() {
        let connect = Error::new(ErrorType::ConnectRefused).into_up();
        assert_eq!(status_of(&connect), 502);
        let timeout = Error::new(ErrorType::ReadTimedout).into_up();
        assert_eq!(status_of(&timeout), 504);
        let reset = Error::new(ErrorType::ConnectionClosed).into_up();
        assert_eq!(status_of(&reset), 502);
    }

    #[test]
    fn client_failures_and_refusals() {
        assert_eq!(
            status_of(&Error::new(ErrorType::ConnectionClosed).into_down()),
            0
        );
        assert_eq!(
            status_of(&Error::new(ErrorType::ReadTimedout).into_down()),
            408
        );
        assert_eq!(
            status_of(&Error::new(ErrorType::WriteTimedout).into_down()),
            0
        );
        assert_eq!(
            status_of(&Error::new(ErrorType::InvalidHTTPHeader).into_down()),
            400
        );
        assert_eq!(status_of(&Refusal::BodyTooLarge.error()), 413);
        assert_eq!(status_of(&Refusal::NoHealthyTarget.error()), 503);
    }
}
