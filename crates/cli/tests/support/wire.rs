//! HTTP/1.1 framing shared by the mock upstream and the raw client: a buffered reader over a
//! `TcpStream` whose every read is bounded (by a deadline, or by a stop flag polled between
//! short read timeouts), head parsing and body decoding.

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Largest request or response head (start line plus headers) either side accepts.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Largest body either side buffers.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;
/// Read timeout between two looks at a stop flag.
pub(crate) const POLL: Duration = Duration::from_millis(200);

/// What bounds the reads of a [`Wire`].
#[derive(Debug)]
pub(crate) enum Bound {
    /// Fail with `TimedOut` once this instant passes.
    Deadline(Instant),
    /// Fail as soon as the flag is set (checked at least every [`POLL`]).
    Stop(Arc<AtomicBool>),
}

/// A buffered, bounded reader over one connection.
#[derive(Debug)]
pub(crate) struct Wire {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    pub bound: Bound,
}

pub(crate) fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

pub(crate) fn eof(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, msg.to_owned())
}

impl Wire {
    pub(crate) fn new(stream: TcpStream, bound: Bound) -> io::Result<Self> {
        if matches!(bound, Bound::Stop(_)) {
            stream.set_read_timeout(Some(POLL))?;
        }
        Ok(Self {
            stream,
            buf: Vec::new(),
            bound,
        })
    }

    /// Reads more bytes into the buffer; `Ok(0)` when the peer closed its side.
    pub(crate) fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match &self.bound {
                Bound::Stop(flag) => {
                    if flag.load(Ordering::SeqCst) {
                        return Err(io::Error::other("stopped"));
                    }
                }
                Bound::Deadline(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"));
                    }
                    self.stream.set_read_timeout(Some(left))?;
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Everything up to and including `delim`; `Ok(None)` when the peer closed before sending
    /// any byte of it, an error when it closed mid-way or `max` bytes came without `delim`.
    pub(crate) fn read_until(&mut self, delim: &[u8], max: usize) -> io::Result<Option<Vec<u8>>> {
        loop {
            let found = find(&self.buf, delim).map(|i| i + delim.len());
            if found.is_some_and(|end| end <= max) {
                let end = found.unwrap_or_default();
                return Ok(Some(self.buf.drain(..end).collect()));
            }
            if found.is_some() || self.buf.len() > max {
                return Err(invalid(format!("no {delim:?} within {max} bytes")));
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(eof("connection closed in the middle of a message"))
                };
            }
        }
    }

    /// A head (start line and headers, through the empty line); `Ok(None)` on a clean close.
    pub(crate) fn read_head(&mut self) -> io::Result<Option<Head>> {
        Ok(self
            .read_until(b"\r\n\r\n", MAX_HEAD)?
            .map(|raw| parse_head(&raw)))
    }

    pub(crate) fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        if n > MAX_BODY {
            return Err(invalid(format!("body of {n} bytes is over the limit")));
        }
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(eof("connection closed in the middle of a body"));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// A `Transfer-Encoding: chunked` body, decoded; trailers are read and dropped.
    pub(crate) fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self
                .read_until(b"\r\n", 4096)?
                .ok_or_else(|| eof("connection closed before a chunk size"))?;
            let line = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
            let digits = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(digits, 16)
                .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
            if size == 0 {
                while self
                    .read_until(b"\r\n", MAX_HEAD)?
                    .ok_or_else(|| eof("connection closed in the trailers"))?
                    != b"\r\n"
                {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(invalid("chunked body over the limit"));
            }
            body.extend(self.read_exact(size)?);
            if self.read_exact(2)? != b"\r\n" {
                return Err(invalid("chunk data not followed by CRLF"));
            }
        }
    }

    /// Everything until the peer closes.
    pub(crate) fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? > 0 {
            if self.buf.len() > MAX_BODY {
                return Err(invalid("body read until close is over the limit"));
            }
        }
        Ok(std::mem::take(&mut self.buf))
    }

    /// Reads the body the headers announce (chunked or Content-Length; none when neither).
    pub(crate) fn read_framed_body(&mut self, headers: &[(String, String)]) -> io::Result<Vec<u8>> {
        if is_chunked(headers) {
            self.read_chunked()
        } else if let Some(n) = content_length(headers)? {
            self.read_exact(n)
        } else {
            Ok(Vec::new())
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A parsed head: the start line and the headers with lowercased names, in order.
#[derive(Debug)]
pub(crate) struct Head {
    pub start: String,
    pub headers: Vec<(String, String)>,
}

pub(crate) fn parse_head(raw: &[u8]) -> Head {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or("").to_owned();
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), v.trim().to_owned()),
            None => (l.trim().to_ascii_lowercase(), String::new()),
        })
        .collect();
    Head { start, headers }
}

/// The first value of a header (name compared case-insensitively).
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Every value of a header, one per header line, in order.
pub(crate) fn header_all<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Whether a comma-separated header (e.g. `Connection`) carries `token`.
pub(crate) fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    header_all(headers, name)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

pub(crate) fn is_chunked(headers: &[(String, String)]) -> bool {
    header_all(headers, "transfer-encoding")
        .iter()
        .flat_map(|v| v.split(','))
        .last()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
}

pub(crate) fn content_length(headers: &[(String, String)]) -> io::Result<Option<usize>> {
    header(headers, "content-length")
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length {v:?}")))
        })
        .transpose()
}
