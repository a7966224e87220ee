//! A scripted HTTP/1.1 origin on 127.0.0.1 for tests of a misbehaving upstream: a script
//! decides, per request, the exact bytes written back (malformed heads, ambiguous framing,
//! answers before the request body, bytes after the body), and the origin records on which
//! connection each request arrived, so tests can prove a connection was never reused.
//!
//! Each accepted connection gets an index (0, 1, 2, … in accept order). A request head that
//! does not parse as a request line (the sign that the proxy reused a connection whose
//! previous exchange left bytes behind) is recorded as a desync and the connection closed.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::wire::{self, Bound, Wire};

/// A request head the script sees.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Index of the connection it arrived on.
    pub conn: usize,
    /// Its position on that connection (0 for the first).
    pub nth: usize,
    /// The request line, e.g. `GET /x HTTP/1.1`.
    pub line: String,
    /// Lowercased names, values trimmed, in order.
    pub headers: Vec<(String, String)>,
}

impl Exchange {
    /// The request target (second word of the request line).
    pub fn path(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        wire::header(&self.headers, name)
    }
}

/// When the origin reads a request's body (per its `Content-Length` or chunked framing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRead {
    /// Before writing the answer (a normal server).
    Before,
    /// After writing the answer: an early response, from a server that then drains the body
    /// as it must to keep the connection usable.
    After,
    /// Never: the body's bytes stay unread on the connection.
    Never,
}

/// What the origin does with one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Written as is.
    pub bytes: Vec<u8>,
    /// Written after the answer, each after its pause.
    pub later: Vec<(Duration, Vec<u8>)>,
    pub body: BodyRead,
    /// Close the connection after everything was written.
    pub close: bool,
}

impl Reply {
    /// `bytes`, the body read first, the connection kept open.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            bytes: bytes.into(),
            later: Vec::new(),
            body: BodyRead::Before,
            close: false,
        }
    }

    /// A well-formed `200` with `Content-Length` and body `text`.
    pub fn ok(text: &str) -> Self {
        Self::raw(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{text}",
            text.len()
        ))
    }

    pub fn then(mut self, pause: Duration, bytes: impl Into<Vec<u8>>) -> Self {
        self.later.push((pause, bytes.into()));
        self
    }

    pub fn body(mut self, when: BodyRead) -> Self {
        self.body = when;
        self
    }

    pub fn close(mut self) -> Self {
        self.close = true;
        self
    }
}

/// One request as the origin received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub conn: usize,
    pub nth: usize,
    pub line: String,
    /// The body, when it was read (`BodyRead::Before` or `After`); chunked framing removed.
    pub body: Option<Vec<u8>>,
}

impl Seen {
    pub fn path(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }
}

type Script = dyn Fn(&Exchange) -> Reply + Send + Sync;

#[derive(Default)]
struct Log {
    connections: usize,
    seen: Vec<Seen>,
    /// Heads that did not start with a request line: (connection, first line).
    desyncs: Vec<(usize, String)>,
    /// Connections the peer (the proxy) closed, in order.
    closed_by_peer: Vec<usize>,
}

struct Shared {
    script: Box<Script>,
    log: Mutex<Log>,
    stop: Arc<AtomicBool>,
    streams: Mutex<Vec<TcpStream>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The scripted origin; stopped (every connection shut down) on drop.
pub struct ScriptedUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ScriptedUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedUpstream")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ScriptedUpstream {
    /// Listens on an ephemeral port of 127.0.0.1 and answers every request with `script`.
    pub fn start(script: impl Fn(&Exchange) -> Reply + Send + Sync + 'static) -> Self {
        let listener = super::bind_loopback();
        let addr = listener
            .local_addr()
            .expect("scripted upstream: local_addr");
        listener
            .set_nonblocking(true)
            .expect("scripted upstream: set_nonblocking");
        let shared = Arc::new(Shared {
            script: Box::new(script),
            log: Mutex::new(Log::default()),
            stop: Arc::new(AtomicBool::new(false)),
            streams: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = thread::spawn(move || accept_loop(&listener, &s));
        Self {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.shared.log).connections
    }

    /// Every request head received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.log).seen.clone()
    }

    /// The last request received for `path`.
    pub fn last(&self, path: &str) -> Option<Seen> {
        self.seen().into_iter().rev().find(|s| s.path() == path)
    }

    /// Heads that were not requests — bytes a previous exchange left on a reused connection.
    pub fn desyncs(&self) -> Vec<(usize, String)> {
        lock(&self.shared.log).desyncs.clone()
    }

    /// Whether the proxy has closed connection `conn`.
    pub fn closed_by_peer(&self, conn: usize) -> bool {
        lock(&self.shared.log).closed_by_peer.contains(&conn)
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for s in lock(&self.shared.streams).drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut workers = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                let conn = {
                    let mut log = lock(&shared.log);
                    log.connections += 1;
                    log.connections - 1
                };
                if let Ok(clone) = stream.try_clone() {
                    lock(&shared.streams).push(clone);
                }
                let s = shared.clone();
                workers.push(thread::spawn(move || serve(stream, conn, &s)));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    for w in workers {
        let _ = w.join();
    }
}

/// Serves one connection until the peer closes it, the script closes it or the origin stops.
fn serve(stream: TcpStream, conn: usize, shared: &Shared) {
    let Ok(mut wire) = Wire::new(stream, Bound::Stop(shared.stop.clone())) else {
        return;
    };
    let mut nth = 0;
    loop {
        let head = match wire.read_head() {
            Ok(Some(h)) => h,
            Ok(None) => {
                lock(&shared.log).closed_by_peer.push(conn);
                return;
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    lock(&shared.log).closed_by_peer.push(conn);
                }
                return;
            }
        };
        let words: Vec<&str> = head.start.split(' ').collect();
        let is_request = words.len() == 3
            && !words[0].is_empty()
            && words[0].bytes().all(|b| b.is_ascii_uppercase())
            && words[2].starts_with("HTTP/1.");
        if !is_request {
            lock(&shared.log).desyncs.push((conn, head.start.clone()));
            let _ = wire.stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        let ex = Exchange {
            conn,
            nth,
            line: head.start.clone(),
            headers: head.headers,
        };
        let reply = (shared.script)(&ex);
        let index = {
            let mut log = lock(&shared.log);
            log.seen.push(Seen {
                conn,
                nth,
                line: ex.line.clone(),
                body: None,
            });
            log.seen.len() - 1
        };
        nth += 1;
        let read_body = |wire: &mut Wire| -> bool {
            match wire.read_framed_body(&ex.headers) {
                Ok(body) => {
                    lock(&shared.log).seen[index].body = Some(body);
                    true
                }
                Err(e) => {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        lock(&shared.log).closed_by_peer.push(conn);
                    }
                    false
                }
            }
        };
        if reply.body == BodyRead::Before && !read_body(&mut wire) {
            return;
        }
        if write_all(&mut wire.stream, &reply.bytes).is_err() {
            return;
        }
        if reply.body == BodyRead::After && !read_body(&mut wire) {
            return;
        }
        for (pause, bytes) in &reply.later {
            thread::sleep(*pause);
            if write_all(&mut wire.stream, bytes).is_err() {
                return;
            }
        }
        if reply.close {
            let _ = wire.stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

fn write_all(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes)?;
    stream.flush()
}
