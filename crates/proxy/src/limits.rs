//! Request limits checked before any upstream work, and small views of request headers.

use http::HeaderMap;
use pingora::http::RequestHeader;
use zentinel_config::matcher::Headers;
use zentinel_config::model::Limits;

use crate::errors::Refusal;

/// Checks the request line and headers against the global limits.
pub(crate) fn check_head(limits: &Limits, req: &RequestHeader) -> Option<Refusal> {
    let target_len = req.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len as u64 > limits.max_uri_bytes {
        return Some(Refusal::UriTooLong);
    }
    if req.headers.len() > limits.max_header_count as usize {
        return Some(Refusal::HeadersTooLarge);
    }
    // Each header as sent on the wire: "name: value\r\n".
    let size: usize = req
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if size as u64 > limits.max_header_bytes {
        return Some(Refusal::HeadersTooLarge);
    }
    None
}

/// The body length announced by `Content-Length`, if any (an invalid one is rejected by the
/// HTTP parser before this point).
pub(crate) fn declared_body_len(req: &RequestHeader) -> Option<u64> {
    req.headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The value of cookie `name`.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Request headers as the route matcher reads them.
#[derive(Debug)]
pub(crate) struct HeaderView<'a>(pub &'a HeaderMap);

impl Headers for HeaderView<'_> {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.0.get_all(name).iter().any(|v| pred(v.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        let text = r#"listeners { listener "w" { address "127.0.0.1:1"; } }
upstreams { upstream "u" { target "127.0.0.1:2"; } }
routes { route "r" { upstream "u"; } }
limits { max-uri-bytes 64; max-header-count 3; max-header-bytes 1024; }"#;
        zentinel_config::load_str("t.kdl", text)
            .map(|c| c.limits)
            .unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn uri_and_header_limits() {
        let l = limits();
        let mut req = RequestHeader::build("GET", b"/short", None).unwrap();
        assert_eq!(check_head(&l, &req), None);
        req.set_uri(format!("/{}", "a".repeat(64)).parse().unwrap());
        assert_eq!(check_head(&l, &req), Some(Refusal::UriTooLong));
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for i in 0..4 {
            req.append_header(format!("x-{i}"), "v").unwrap();
        }
        assert_eq!(check_head(&l, &req), Some(Refusal::HeadersTooLarge));
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("x-big", "v".repeat(1100)).unwrap();
        assert_eq!(check_head(&l, &req), Some(Refusal::HeadersTooLarge));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; session=abc".parse().unwrap());
        h.append("cookie", "b=2".parse().unwrap());
        assert_eq!(cookie(&h, "session"), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
