//! A small runtime of its own for the connections of one part of the proxy (agents, a shared
//! rate-limit backend), so their I/O never runs on, or waits for, the request workers.

use crate::BuildError;

/// One worker thread named `name`; shut down without blocking when dropped, which may happen
/// on a request worker (after a reload, the last request holding the old runtime drops it).
#[derive(Debug)]
pub(crate) struct IoRuntime(Option<tokio::runtime::Runtime>);

impl IoRuntime {
    /// `what` names the runtime in the error when it cannot be started.
    pub(crate) fn new(name: &str, what: &str) -> Result<Self, BuildError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
            .map_err(|e| BuildError::Internal(format!("{what} I/O runtime: {e}")))
    }

    /// The runtime's handle, to spawn on it or enter it.
    pub(crate) fn get(&self) -> Option<&tokio::runtime::Runtime> {
        self.0.as_ref()
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
