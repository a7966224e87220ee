//! A raw HTTP/1.1 client: writes exactly the bytes a test gives it and parses what comes back,
//! so tests can send malformed or unusual requests and see every header of the answer.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::wire::{self, Bound, Wire};

/// The default bound on connecting plus reading one response.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// `HTTP/1.1` or `HTTP/1.0`, from the status line.
    pub version: String,
    /// Lowercased names, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    /// The body, chunked encoding removed.
    pub body: Vec<u8>,
    /// Statuses of the interim (1xx, other than 101) responses that came before this one.
    pub informational: Vec<u16>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        wire::header(&self.headers, name)
    }

    /// Every value of header `name`, one per header line, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        wire::header_all(&self.headers, name)
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection, for tests that need several exchanges on it (keep-alive,
/// `Expect: 100-continue`, pipelining) or want to see when the server closes it.
#[derive(Debug)]
pub struct RawConn {
    wire: Wire,
    timeout: Duration,
}

impl RawConn {
    /// Connects with the default 10 s timeout per operation.
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        Self::connect_with_timeout(addr, CLIENT_TIMEOUT)
    }

    /// Connects; `timeout` bounds the connect and every later `read_*` call (each separately).
    pub fn connect_with_timeout(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_write_timeout(Some(timeout))?;
        let _ = stream.set_nodelay(true);
        let wire = Wire::new(stream, Bound::Deadline(Instant::now() + timeout))?;
        Ok(Self { wire, timeout })
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wire.stream.write_all(bytes)?;
        self.wire.stream.flush()
    }

    /// Closes the sending side (the server sees end of input); reading still works.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.wire.stream.shutdown(std::net::Shutdown::Write)
    }

    /// The next final response (interim 1xx ones go into `informational`), framed as a
    /// response to a non-HEAD request.
    pub fn read_response(&mut self) -> io::Result<Response> {
        self.read_response_to("GET")
    }

    /// The next final response to a request with `method` (a `HEAD` response has no body).
    pub fn read_response_to(&mut self, method: &str) -> io::Result<Response> {
        self.arm();
        let mut informational = Vec::new();
        loop {
            let mut r = self.read_one(method)?;
            if (100..200).contains(&r.status) && r.status != 101 {
                informational.push(r.status);
                continue;
            }
            r.informational = informational;
            return Ok(r);
        }
    }

    /// The next response of any kind, 1xx included (e.g. to see `100 Continue` before
    /// sending a body).
    pub fn read_next(&mut self) -> io::Result<Response> {
        self.arm();
        self.read_one("GET")
    }

    /// Whether the server closes (or resets) the connection within `within`, with no further
    /// bytes sent. Returns `false` when it stays open or sends data.
    pub fn closed_by_peer(&mut self, within: Duration) -> bool {
        if !self.wire.buf.is_empty() {
            return false;
        }
        self.wire.bound = Bound::Deadline(Instant::now() + within);
        match self.wire.fill() {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::TimedOut,
        }
    }

    fn arm(&mut self) {
        self.wire.bound = Bound::Deadline(Instant::now() + self.timeout);
    }

    fn read_one(&mut self, method: &str) -> io::Result<Response> {
        let head = match self.wire.read_head() {
            Ok(Some(h)) => h,
            Ok(None) => return Err(wire::eof("connection closed before a status line")),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no response within {:?}", self.timeout),
                ));
            }
            Err(e) => return Err(e),
        };
        let mut parts = head.start.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_owned();
        let status = parts.next().and_then(|s| s.parse::<u16>().ok());
        let Some(status) = status.filter(|_| version.starts_with("HTTP/")) else {
            return Err(wire::invalid(format!("bad status line {:?}", head.start)));
        };
        let bodiless = method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&status)
            || status == 204
            || status == 304;
        let body = if bodiless {
            Vec::new()
        } else if wire::is_chunked(&head.headers) || wire::content_length(&head.headers)?.is_some()
        {
            self.wire.read_framed_body(&head.headers)?
        } else {
            self.wire.read_to_close()?
        };
        Ok(Response {
            status,
            version,
            headers: head.headers,
            body,
            informational: Vec::new(),
        })
    }
}

/// The method of a raw request (its first word), to know whether the response has a body.
fn method_of(request: &[u8]) -> String {
    let end = request.iter().position(|&b| b == b' ').unwrap_or(0);
    String::from_utf8_lossy(&request[..end]).into_owned()
}

/// One connection: writes `request` as is and reads one final response (Content-Length,
/// chunked, or until close), all within 10 s. An error when the server closes without a
/// status line, resets, times out or answers something that is not HTTP.
pub fn send_raw(addr: SocketAddr, request: &[u8]) -> io::Result<Response> {
    send_raw_with_timeout(addr, request, CLIENT_TIMEOUT)
}

/// [`send_raw`] with another bound.
pub fn send_raw_with_timeout(
    addr: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> io::Result<Response> {
    let mut conn = RawConn::connect_with_timeout(addr, timeout)?;
    conn.send(request)?;
    conn.read_response_to(&method_of(request))
}

/// `GET path` with `Host: host` and `Connection: close`; panics on any I/O error.
pub fn get(addr: SocketAddr, host: &str, path: &str) -> Response {
    request(addr, "GET", host, path, &[], b"")
}

/// Builds and sends a request: `Host` (left out when `host` is empty), then `headers`, then
/// `Content-Length` when the body is non-empty and `headers` has neither Content-Length nor
/// Transfer-Encoding, then `Connection: close` unless `headers` has a Connection header.
/// Panics on any I/O error.
pub fn request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !host.is_empty() {
        head.push_str(&format!("Host: {host}\r\n"));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() && !has("content-length") && !has("transfer-encoding") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    send_raw(addr, &bytes)
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path} (Host: {host:?}) failed: {e}"))
}
