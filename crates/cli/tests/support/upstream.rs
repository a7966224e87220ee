//! A mock HTTP/1.1 origin on 127.0.0.1: keep-alive, Content-Length and chunked request bodies,
//! `Expect: 100-continue`, configurable status, headers and misbehaviour, and a record of every
//! request it fully received.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::wire::{self, Bound, Wire};

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target exactly as sent (`/path?query`, or absolute-form).
    pub path: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Lowercased names, values trimmed, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, chunked encoding removed.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        wire::header(&self.headers, name)
    }

    /// Every value of header `name`, one per header line, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        wire::header_all(&self.headers, name)
    }
}

/// How the mock treats the next request (or, for `CloseImmediately`, the next connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Answer normally.
    #[default]
    Respond,
    /// Read the request, wait this long, then answer.
    Delay(Duration),
    /// Accept the connection, then close it without reading or answering.
    CloseImmediately,
    /// Read the request and never answer; the socket stays open until the client closes it
    /// or the mock stops.
    Hang,
}

#[derive(Debug)]
struct Settings {
    status: u16,
    behaviour: Behaviour,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    settings: Mutex<Settings>,
    hits: AtomicUsize,
    connections: AtomicUsize,
    requests: Mutex<Vec<RecordedRequest>>,
}

/// One listening period, from `start`/`restart` to `stop`.
#[derive(Debug)]
struct Run {
    stop: Arc<AtomicBool>,
    /// A clone of every open connection, to shut them down on stop.
    streams: Mutex<HashMap<u64, TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
}

/// A mock upstream HTTP/1.1 server on `127.0.0.1`, served by background threads.
///
/// By default every request gets `200` with body `upstream=<name> path=<target>\n` and the
/// headers `content-type: text/plain` and `x-upstream: <name>`.
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<(Arc<Run>, JoinHandle<()>)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MockUpstream {
    /// Starts listening on an ephemeral port of 127.0.0.1.
    pub fn start(name: &str) -> Self {
        let listener = super::bind_loopback();
        let addr = listener.local_addr().expect("mock upstream: local_addr");
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            settings: Mutex::new(Settings {
                status: 200,
                behaviour: Behaviour::Respond,
                headers: Vec::new(),
                body: None,
            }),
            hits: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let mock = Self {
            addr,
            shared,
            running: Mutex::new(None),
        };
        mock.listen(listener);
        mock
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The status of every later response (the body stays the same).
    pub fn set_status(&self, status: u16) {
        lock(&self.shared.settings).status = status;
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        lock(&self.shared.settings).behaviour = b;
    }

    /// Sets an extra header on every later response, replacing an earlier value of the same
    /// name; `content-type` and `x-upstream` replace the defaults. (`content-length` is always
    /// computed and cannot be overridden.)
    pub fn set_response_header(&self, name: &str, value: &str) {
        let mut s = lock(&self.shared.settings);
        s.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        s.headers.push((name.to_owned(), value.to_owned()));
    }

    /// Adds one more header line (for repeated headers such as `set-cookie`).
    pub fn add_response_header(&self, name: &str, value: &str) {
        lock(&self.shared.settings)
            .headers
            .push((name.to_owned(), value.to_owned()));
    }

    pub fn clear_response_headers(&self) {
        lock(&self.shared.settings).headers.clear();
    }

    /// A fixed body for every later response; `None` goes back to the default body.
    pub fn set_body(&self, body: Option<&[u8]>) {
        lock(&self.shared.settings).body = body.map(<[u8]>::to_vec);
    }

    /// Requests fully received (head and body), whatever the behaviour did afterwards.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.requests).last().cloned()
    }

    /// Forgets the recorded requests and sets both counters back to zero.
    pub fn reset(&self) {
        let mut reqs = lock(&self.shared.requests);
        reqs.clear();
        self.shared.hits.store(0, Ordering::SeqCst);
        self.shared.connections.store(0, Ordering::SeqCst);
    }

    /// Closes the listener and every connection and waits (bounded) for the threads; later
    /// connects are refused. Does nothing when already stopped.
    pub fn stop(&self) {
        let Some((run, acceptor)) = lock(&self.running).take() else {
            return;
        };
        run.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees the flag and returns, dropping the listener.
        drop(TcpStream::connect_timeout(
            &self.addr,
            Duration::from_secs(1),
        ));
        join_bounded(acceptor, Duration::from_secs(2));
        for s in lock(&run.streams).values() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let threads = std::mem::take(&mut *lock(&run.threads));
        let deadline = Instant::now() + Duration::from_secs(2);
        for t in threads {
            join_bounded(t, deadline.saturating_duration_since(Instant::now()));
        }
    }

    /// Listens again on the same port (stopping first if running), retrying the bind for up
    /// to 5 s. Counters and recorded requests are kept.
    pub fn restart(&self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("mock upstream: cannot bind {} again: {e}", self.addr),
            }
        };
        self.listen(listener);
    }

    fn listen(&self, listener: TcpListener) {
        let run = Arc::new(Run {
            stop: Arc::new(AtomicBool::new(false)),
            streams: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        });
        let shared = Arc::clone(&self.shared);
        let r = Arc::clone(&run);
        let acceptor = thread::Builder::new()
            .name(format!("mock-{}-accept", self.shared.name))
            .spawn(move || accept_loop(&listener, &shared, &r))
            .expect("spawn mock accept thread");
        *lock(&self.running) = Some((run, acceptor));
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Joins a thread if it finishes within `timeout`; otherwise leaves it detached.
fn join_bounded(t: JoinHandle<()>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !t.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    if t.is_finished() {
        let _ = t.join();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, run: &Arc<Run>) {
    for stream in listener.incoming() {
        if run.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        if lock(&shared.settings).behaviour == Behaviour::CloseImmediately {
            drop(stream);
            continue;
        }
        let id = run.next_id.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            lock(&run.streams).insert(id, clone);
        }
        let (shared, r) = (Arc::clone(shared), Arc::clone(run));
        let handle = thread::Builder::new()
            .name(format!("mock-{}-conn-{id}", shared.name))
            .spawn(move || {
                let _ = serve(stream, &shared, &r);
                lock(&r.streams).remove(&id);
            });
        let mut threads = lock(&run.threads);
        threads.retain(|t| !t.is_finished());
        if let Ok(h) = handle {
            threads.push(h);
        }
    }
}

/// What to do with a connection after one request.
enum Next {
    KeepAlive,
    Close,
}

/// Serves requests on one connection until the client closes, asks to close, or the mock stops.
fn serve(stream: TcpStream, shared: &Shared, run: &Run) -> io::Result<()> {
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let _ = stream.set_nodelay(true);
    let mut wire = Wire::new(stream, Bound::Stop(Arc::clone(&run.stop)))?;
    while let Next::KeepAlive = serve_one(&mut wire, shared, &run.stop)? {}
    Ok(())
}

fn serve_one(wire: &mut Wire, shared: &Shared, stop: &AtomicBool) -> io::Result<Next> {
    let head = match wire.read_head() {
        Ok(Some(h)) => h,
        Ok(None) => return Ok(Next::Close),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            write_error(wire, 431)?;
            return Ok(Next::Close);
        }
        Err(e) => return Err(e),
    };
    // A keep-alive connection opened before `CloseImmediately` was set: close on its next
    // request without counting it.
    if lock(&shared.settings).behaviour == Behaviour::CloseImmediately {
        return Ok(Next::Close);
    }
    let mut parts = head.start.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        write_error(wire, 400)?;
        return Ok(Next::Close);
    };
    if version == "HTTP/1.1" && wire::has_token(&head.headers, "expect", "100-continue") {
        wire.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = match wire.read_framed_body(&head.headers) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            write_error(wire, 400)?;
            return Ok(Next::Close);
        }
        Err(e) => return Err(e),
    };
    let close = wire::has_token(&head.headers, "connection", "close")
        || (version == "HTTP/1.0" && !wire::has_token(&head.headers, "connection", "keep-alive"));
    let req = RecordedRequest {
        method: method.to_owned(),
        path: target.to_owned(),
        version: version.to_owned(),
        headers: head.headers,
        body,
    };
    lock(&shared.requests).push(req.clone());
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let behaviour = lock(&shared.settings).behaviour;
    match behaviour {
        Behaviour::Respond => {}
        Behaviour::Delay(d) => {
            if !sleep_unless(stop, d) {
                return Ok(Next::Close);
            }
        }
        Behaviour::CloseImmediately => return Ok(Next::Close),
        Behaviour::Hang => {
            // Keep the socket open, discarding input, until the client closes or we stop.
            while wire.fill()? > 0 {
                wire.buf.clear();
            }
            return Ok(Next::Close);
        }
    }
    wire.stream
        .write_all(&response_bytes(shared, &req, close))?;
    Ok(if close { Next::Close } else { Next::KeepAlive })
}

/// Sleeps `d` in short steps; `false` when the stop flag was set meanwhile.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        thread::sleep(left.min(Duration::from_millis(10)));
    }
    false
}

fn response_bytes(shared: &Shared, req: &RecordedRequest, close: bool) -> Vec<u8> {
    let s = lock(&shared.settings);
    let body = s
        .body
        .clone()
        .unwrap_or_else(|| format!("upstream={} path={}\n", shared.name, req.path).into_bytes());
    let overridden = |name: &str| s.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("HTTP/1.1 {} {}\r\n", s.status, reason(s.status));
    if !overridden("content-type") {
        head.push_str("content-type: text/plain\r\n");
    }
    if !overridden("x-upstream") {
        head.push_str(&format!("x-upstream: {}\r\n", shared.name));
    }
    for (n, v) in s
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    // 204 and 304 carry no body; 204 must not carry Content-Length either.
    let bodiless = matches!(s.status, 204 | 304);
    if !bodiless {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !bodiless && !req.method.eq_ignore_ascii_case("HEAD") {
        out.extend_from_slice(&body);
    }
    out
}

fn write_error(wire: &mut Wire, status: u16) -> io::Result<()> {
    let msg = format!(
        "HTTP/1.1 {status} {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        reason(status)
    );
    wire.stream.write_all(msg.as_bytes())?;
    // Half-close and drain what the client is still sending (briefly), so that closing with
    // unread input does not reset the connection before the client reads the answer.
    wire.stream.shutdown(std::net::Shutdown::Write)?;
    wire.buf.clear();
    let end = Instant::now() + Duration::from_millis(500);
    wire.stream
        .set_read_timeout(Some(Duration::from_millis(50)))?;
    while Instant::now() < end {
        match io::Read::read(&mut wire.stream, &mut [0u8; 16 * 1024]) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// A reason phrase for the status line (clients must ignore it; this is for readability).
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
