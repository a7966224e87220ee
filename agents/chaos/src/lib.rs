//! `zentinel-agent-chaos`: a test agent that misbehaves on purpose — slow, hung, crashing,
//! or breaking the wire protocol in a chosen way — so that the proxy's timeouts, failure
//! modes, breakers and protocol checks can be tested against a real process.
//!
//! - [`Script`] and [`Mode`]: what to do, for the whole process or (with
//!   [`Script::per_request`]) per request via the `x-chaos-mode` header.
//! - [`run`]: serve a script on a Unix listener, in-process or from the binary.
//!
//! Built on the protocol crate's core codec, not its SDK: the SDK cannot send broken frames.

mod connection;
mod script;

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::net::UnixListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;

pub use script::{MODE_HEADER, Mode, Script, UnknownMode};

/// State shared by every connection of one [`run`].
#[derive(Debug)]
struct Shared {
    script: Script,
    /// Calls received so far, over every connection.
    calls: AtomicU64,
    /// Signalled by the connection that spends the [`Mode::CrashAfter`] budget.
    crash: Notify,
}

/// Serves `script` on `listener` until accepting fails or, in [`Mode::CrashAfter`], the
/// call budget is spent. Then it returns an error, and every connection it accepted is
/// closed at once (dropping the future does the same): in-process, a "crash" looks like the
/// agent process dying.
pub async fn run(listener: UnixListener, script: Script) -> io::Result<()> {
    tracing::info!(mode = %script.mode, per_request = script.per_request, "chaos agent serving");
    let shared = Arc::new(Shared {
        script,
        calls: AtomicU64::new(0),
        crash: Notify::new(),
    });
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                connections.spawn(connection::serve(stream, Arc::clone(&shared)));
            }
            () = shared.crash.notified() => {
                let calls = shared.script.calls;
                return Err(io::Error::other(format!(
                    "crash-after: stopped after answering {calls} calls"
                )));
            }
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                log_close(done);
            }
        }
    }
}

fn log_close(done: Result<connection::Closed, tokio::task::JoinError>) {
    use connection::Closed;
    match done {
        Ok(Closed::Eof | Closed::Crash) => tracing::debug!("proxy connection closed"),
        Ok(Closed::Io(e)) => tracing::warn!(error = %e, "proxy connection failed"),
        Ok(Closed::Protocol(e)) => tracing::warn!(error = %e, "proxy broke the protocol"),
        Err(e) => tracing::error!(error = %e, "connection task failed"),
    }
}
