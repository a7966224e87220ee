//! End-to-end test harness for the `zentinel` binary: a mock upstream HTTP/1.1 server, a raw
//! HTTP client and the proxy as a child process. Loopback and ephemeral ports only; every wait
//! is bounded.
//!
//! Blocking std threads and sockets, no async runtime. Each integration test file declares
//! `pub mod support;`: the harness is part of that test crate's public surface, so the parts
//! a given file does not use are not dead code.

mod client;
pub mod pki;
mod proxy;
mod upstream;
mod wire;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

pub use self::{
    client::{CLIENT_TIMEOUT, RawConn, Response, get, request, send_raw, send_raw_with_timeout},
    proxy::{Proxy, START_TIMEOUT},
    upstream::{Behaviour, MockUpstream, RecordedRequest},
};

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
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
