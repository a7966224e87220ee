//! The request an explanation is about: method, URL, headers and client address, parsed and
//! checked here (not in the CLI) so the command line and the playground read a URL the same
//! way.

use std::net::IpAddr;

use serde::Serialize;

/// How the client reaches the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Clear text: served by `http` and `h2c` listeners.
    Http,
    /// TLS: served by `https` listeners.
    Https,
}

impl Scheme {
    /// The scheme as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// The port a URL without one means.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request description was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The method is empty or has characters a method cannot have.
    Method(String),
    /// The URL does not start with `http://` or `https://`.
    Scheme(String),
    /// The URL names no host.
    NoHost,
    /// The URL carries `user:password@`.
    Credentials,
    /// The host is not a name, an IPv4 address or a bracketed IPv6 address.
    Host(String),
    /// The port is not a number from 1 to 65535.
    Port(String),
    /// The path or query has a character that must be percent-encoded.
    Character(char),
    /// A header is not written `name: value`.
    HeaderLine(String),
    /// A header name has characters a name cannot have.
    HeaderName(String),
    /// A header value has a control character.
    HeaderValue(String),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Method(m) => write!(f, "{m:?} is not an HTTP method (a token such as GET)"),
            Self::Scheme(url) => write!(
                f,
                "{url:?} is not an http:// or https:// URL (write the scheme, e.g. https://{})",
                url.split_once("://").map_or(url.as_str(), |(_, rest)| rest)
            ),
            Self::NoHost => f.write_str("the URL has no host (e.g. https://api.example.com/)"),
            Self::Credentials => f.write_str(
                "the URL carries credentials (user@); send them as a header, e.g. -H 'authorization: …'",
            ),
            Self::Host(h) => write!(
                f,
                "{h:?} is not a host name, an IPv4 address or a bracketed IPv6 address"
            ),
            Self::Port(p) => write!(f, "port {p:?} is not a number from 1 to 65535"),
            Self::Character(c) => write!(
                f,
                "the URL has {c:?}, which must be percent-encoded (e.g. space as %20)"
            ),
            Self::HeaderLine(l) => write!(f, "header {l:?} is not written 'name: value'"),
            Self::HeaderName(n) => write!(f, "{n:?} is not a valid header name"),
            Self::HeaderValue(n) => {
                write!(f, "the value of header {n:?} has a control character")
            }
        }
    }
}

impl std::error::Error for RequestError {}

/// A request to explain, as a client would send it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RequestDescription {
    /// Method, as sent (methods are case-sensitive).
    pub method: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host and optional port from the URL: the `Host` header unless one is given, and the
    /// TLS server name (SNI).
    pub authority: String,
    /// Path, as sent (not decoded); at least `/`.
    pub path: String,
    /// Query, without `?`; `None` when the URL has no `?`.
    pub query: Option<String>,
    /// Headers in the order sent, one entry per line, names lower case.
    pub headers: Vec<(String, String)>,
    /// The address the connection comes from; `None` when not known.
    pub client_ip: Option<IpAddr>,
}

impl RequestDescription {
    /// `method url`, as `curl -X METHOD URL` would send it. The fragment is dropped (clients
    /// never send it).
    pub fn from_url(method: &str, url: &str) -> Result<Self, RequestError> {
        if method.is_empty() || !method.bytes().all(is_token) {
            return Err(RequestError::Method(method.to_owned()));
        }
        let (scheme, rest) = url
            .split_once("://")
            .and_then(|(s, rest)| {
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "http" => Scheme::Http,
                    "https" => Scheme::Https,
                    _ => return None,
                };
                Some((scheme, rest))
            })
            .ok_or_else(|| RequestError::Scheme(url.to_owned()))?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        check_authority(authority)?;
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        if let Some(c) = rest.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(RequestError::Character(c));
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (rest, None),
        };
        Ok(Self {
            method: method.to_owned(),
            scheme,
            authority: authority.to_owned(),
            path: if path.is_empty() { "/" } else { path }.to_owned(),
            query,
            headers: Vec::new(),
            client_ip: None,
        })
    }

    /// Adds a header written `name: value` (as `curl -H` takes it).
    pub fn header_line(&mut self, line: &str) -> Result<(), RequestError> {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| RequestError::HeaderLine(line.to_owned()))?;
        self.push_header(name, value)
    }

    /// Adds a header; the value is trimmed of surrounding spaces and tabs.
    pub fn push_header(&mut self, name: &str, value: &str) -> Result<(), RequestError> {
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(RequestError::HeaderName(name.to_owned()));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(RequestError::HeaderValue(name.to_owned()));
        }
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        Ok(())
    }

    /// The `Host` the proxy routes on: the first `Host` header given, else the URL's.
    pub fn host(&self) -> &str {
        self.values("host").next().unwrap_or(&self.authority)
    }

    /// The values of header `name` (lower case), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The headers as they arrive: those given, with the URL's `Host` first when none is.
    pub(crate) fn wire_headers(&self) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(self.headers.len() + 1);
        if self.values("host").next().is_none() {
            out.push(("host".to_owned(), self.authority.clone()));
        }
        out.extend(self.headers.iter().cloned());
        out
    }

    /// Length of the request target (path and query), as the URI limit counts it.
    pub(crate) fn target_len(&self) -> usize {
        self.path.len() + self.query.as_ref().map_or(0, |q| q.len() + 1)
    }

    /// The port the connection goes to.
    pub(crate) fn port(&self) -> u16 {
        split_port(&self.authority)
            .1
            .and_then(|p| p.parse().ok())
            .unwrap_or(self.scheme.default_port())
    }

    /// The TLS server name a client sends: the URL's host name; none for IP addresses.
    pub(crate) fn server_name(&self) -> Option<String> {
        let host = split_port(&self.authority).0;
        let host = host.strip_suffix('.').unwrap_or(host);
        (host.parse::<IpAddr>().is_err() && !host.starts_with('['))
            .then(|| host.to_ascii_lowercase())
    }
}

/// `(host, port)` of an authority already checked by [`check_authority`].
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.split_once("]:") {
            Some((h, p)) => (&authority[..h.len() + 1], Some(p)),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    }
}

fn check_authority(authority: &str) -> Result<(), RequestError> {
    if authority.contains('@') {
        return Err(RequestError::Credentials);
    }
    if authority.is_empty() {
        return Err(RequestError::NoHost);
    }
    let (host, port) = split_port(authority);
    if let Some(p) = port
        && (p.is_empty()
            || !p.bytes().all(|b| b.is_ascii_digit())
            || !p.parse::<u16>().is_ok_and(|n| n > 0))
    {
        return Err(RequestError::Port(p.to_owned()));
    }
    let valid = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        }
    };
    if valid {
        Ok(())
    } else if host.is_empty() {
        Err(RequestError::NoHost)
    } else {
        Err(RequestError::Host(host.to_owned()))
    }
}

/// RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 idempotent methods (the ones the proxy retries on upstream statuses).
pub(crate) fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}
