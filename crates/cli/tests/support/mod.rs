//! End-to-end test harness for the `zentinel` binary: a mock upstream HTTP/1.1 server, a raw
//! HTTP client and the proxy as a child process. Loopback and ephemeral ports only; every wait
//! is bounded.
//!
//! Blocking std threads and sockets, no async runtime. Each integration test file declares
//! `pub mod support;`: the harness is part of that test crate's public surface, so the parts
//! a given file does not use are not dead code.

pub mod agent;
mod client;
pub mod llm;
mod metrics;
pub mod pki;
mod proxy;
pub mod redis;
pub mod scripted;
mod upstream;
mod wire;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use self::{
    client::{CLIENT_TIMEOUT, RawConn, Response, get, request, send_raw, send_raw_with_timeout},
    metrics::{count, metrics, value},
    proxy::{Proxy, START_TIMEOUT},
    upstream::{Behaviour, MockUpstream, RecordedRequest},
};

/// Ports this test process has handed out. A port released by `free_port` stays reserved so
/// that no later `free_port` or `bind_loopback` of a test running in parallel gets it too —
/// a shared port would let one test's proxy answer another test's client.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A listener on an ephemeral port of 127.0.0.1 that no other part of this test process has
/// been given.
pub fn bind_loopback() -> TcpListener {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    // Collisions are held open until a fresh port is found, so the kernel cannot offer them
    // again in the meantime.
    let mut collisions = Vec::new();
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        if handed_out.insert(port) {
            return listener;
        }
        collisions.push(listener);
    }
}

/// A port on 127.0.0.1 that was free a moment ago and that no other part of this test
/// process has been given.
pub fn free_port() -> u16 {
    bind_loopback().local_addr().expect("local_addr").port()
}

/// `127.0.0.1:<free_port()>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Polls `f` every 20 ms until it returns true; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
