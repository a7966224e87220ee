//! The events sent to agents, built from what the proxy knows about a request — the true
//! facts: the trusted client address without its port, the socket peer, the real protocol
//! version, TLS version and cipher, the route and its upstream.

use std::time::{SystemTime, UNIX_EPOCH};

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use zentinel_agent_protocol::{
    Headers, RequestComplete, RequestHeaders, RequestMetadata, ResponseHeaders,
};

use crate::proxy::Ctx;
use crate::tls::ServerName;

/// Correlation ID of a request's first call to an agent; later calls of the same request
/// to the same agent add a suffix.
pub(crate) fn correlation(ctx: &Ctx, suffix: &str) -> String {
    if suffix.is_empty() {
        ctx.request_id.clone()
    } else {
        format!("{}.{suffix}", ctx.request_id)
    }
}

fn headers_of(map: &http::HeaderMap) -> Headers {
    let mut out = Headers::new();
    for (name, value) in map {
        out.entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    out
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// The request-headers event of the current request.
pub(crate) fn request_headers(session: &Session, ctx: &Ctx) -> RequestHeaders {
    let req: &RequestHeader = session.req_header();
    let rt = &ctx.rt;
    let (route_id, upstream_id) = ctx.route.map_or((String::new(), None), |i| {
        let route = &rt.config.routes[i];
        (route.id.to_string(), Some(route.upstream.to_string()))
    });
    let forwarding = ctx.forwarding.as_ref();
    let client_ip = forwarding.and_then(|f| f.client_ip);
    let peer = session.client_addr().and_then(|a| a.as_inet());
    // The port is known only when the client is the socket peer itself.
    let client_port = peer
        .filter(|p| Some(p.ip()) == client_ip)
        .map_or(0, |p| p.port());
    let tls = session.digest().and_then(|d| d.ssl_digest.as_ref());
    let id = correlation(ctx, "");
    let metadata = RequestMetadata {
        correlation_id: id.clone(),
        request_id: ctx.request_id.clone(),
        client_ip: client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        client_port,
        peer_ip: peer.map(|p| p.ip().to_string()).unwrap_or_default(),
        server_name: tls
            .and_then(|t| t.extension.get::<ServerName>())
            .map(|n| n.0.clone()),
        protocol: protocol(req.version).to_owned(),
        // rustls names versions `TLSv1_3`; the protocol writes `TLSv1.3`.
        tls_version: tls.map(|t| t.version.replace('_', ".")),
        tls_cipher: tls.map(|t| t.cipher.to_string()),
        route_id,
        upstream_id,
        timestamp: rfc3339_now(),
        traceparent: Some(ctx.trace.traceparent()),
    };
    RequestHeaders {
        correlation_id: id,
        metadata,
        method: req.method.as_str().to_owned(),
        uri: req
            .uri
            .path_and_query()
            .map_or_else(|| req.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: headers_of(&req.headers),
    }
}

/// The response-headers event for `resp`.
pub(crate) fn response_headers(ctx: &Ctx, resp: &ResponseHeader) -> ResponseHeaders {
    ResponseHeaders {
        correlation_id: correlation(ctx, "response"),
        status: resp.status.as_u16(),
        headers: headers_of(&resp.headers),
    }
}

/// The request-complete event.
pub(crate) fn request_complete(
    session: &Session,
    ctx: &Ctx,
    error: Option<&str>,
) -> RequestComplete {
    RequestComplete {
        correlation_id: correlation(ctx, ""),
        status: session.response_written().map_or(0, |r| r.status.as_u16()),
        duration_ms: u64::try_from(ctx.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        request_body_size: ctx.body_bytes,
        response_body_size: session.body_bytes_sent() as u64,
        upstream_attempts: ctx.attempt.count,
        error: error.map(str::to_owned),
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Days to civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_396_400), "2026-12-04T15:00:00Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn multi_valued_headers_are_lists() {
        let mut map = http::HeaderMap::new();
        map.append("x-a", http::HeaderValue::from_static("1"));
        map.append("x-a", http::HeaderValue::from_static("2"));
        map.append("host", http::HeaderValue::from_static("h"));
        let h = headers_of(&map);
        assert_eq!(h["x-a"], ["1", "2"]);
        assert_eq!(h["host"], ["h"]);
    }
}
