//! The calls waiting for an answer on one connection, and the guard that forgets a call (and
//! cancels it at the agent) when its caller stops waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{CallError, Live, Shared, bump, lock};
use crate::message::Message;
use crate::message::control::{Cancel, CancelReason};
use crate::message::decision::AgentResponse;

type Answer = Result<AgentResponse, CallError>;

/// Pending calls of one connection, by correlation ID. Bounded; once closed, refuses new
/// calls so that none can slip in after the connection failed the others.
#[derive(Debug)]
pub(super) struct Pending {
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    closed: bool,
    calls: HashMap<String, oneshot::Sender<Answer>>,
}

impl Pending {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Registers call `id`; the receiver gets its answer or the connection's failure.
    pub(super) fn insert(&self, id: &str) -> Result<oneshot::Receiver<Answer>, CallError> {
        let mut inner = lock(&self.inner);
        if inner.closed {
            return Err(CallError::Disconnected);
        }
        if inner.calls.len() >= self.max {
            return Err(CallError::Overloaded);
        }
        if inner.calls.contains_key(id) {
            return Err(CallError::Invalid(format!(
                "correlation ID {id:?} is already pending"
            )));
        }
        let (tx, rx) = oneshot::channel();
        inner.calls.insert(id.to_owned(), tx);
        Ok(rx)
    }

    /// Delivers `answer` to call `id`; false when no such call is pending.
    pub(super) fn complete(&self, id: &str, answer: AgentResponse) -> bool {
        let waiter = lock(&self.inner).calls.remove(id);
        // A caller that stopped waiting between the lookup and now just drops the answer.
        waiter.is_some_and(|tx| {
            let _ = tx.send(Ok(answer));
            true
        })
    }

    /// Forgets call `id`; false when it was already answered or failed.
    pub(super) fn remove(&self, id: &str) -> bool {
        lock(&self.inner).calls.remove(id).is_some()
    }

    /// Fails every pending call with `error` and refuses new ones.
    pub(super) fn close(&self, error: &CallError) {
        let calls = {
            let mut inner = lock(&self.inner);
            inner.closed = true;
            std::mem::take(&mut inner.calls)
        };
        for (_, tx) in calls {
            let _ = tx.send(Err(error.clone()));
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        lock(&self.inner).calls.len()
    }
}

/// Lives as long as a call waits. Dropped before the answer (the caller gave up), it removes
/// the call and, when the agent asked for it, queues a `Cancel` without waiting.
#[derive(Debug)]
pub(super) struct CallGuard {
    shared: Arc<Shared>,
    live: Arc<Live>,
    id: Option<String>,
}

impl CallGuard {
    pub(super) fn new(shared: Arc<Shared>, live: Arc<Live>, id: String) -> Self {
        Self {
            shared,
            live,
            id: Some(id),
        }
    }

    /// The call ended with an answer or a failure: nothing to clean up.
    pub(super) fn answered(&mut self) {
        self.id = None;
    }

    /// The call was never sent: remove it, send no `Cancel`.
    pub(super) fn forget(&mut self) {
        if let Some(id) = self.id.take() {
            self.live.pending.remove(&id);
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        if !self.live.pending.remove(&id) || !self.live.cancellation {
            return;
        }
        let cancel = Message::Cancel(Cancel {
            correlation_id: id,
            reason: CancelReason::Abandoned,
        });
        let sent = self
            .shared
            .encode(&cancel, self.live.encoding)
            .is_ok_and(|frame| self.live.tx.try_send(frame).is_ok());
        if sent {
            bump(&self.shared.counters.cancels_sent);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "test code fails loudly"
    )]

    use super::*;

    #[test]
    fn bounded_unique_and_closed_for_good() {
        let p = Pending::new(2);
        let mut a = p.insert("a").unwrap();
        assert!(matches!(p.insert("a"), Err(CallError::Invalid(_))));
        let _b = p.insert("b").unwrap();
        assert_eq!(p.insert("c").unwrap_err(), CallError::Overloaded);
        assert!(p.complete("a", AgentResponse::allow("a")));
        assert!(!p.complete("a", AgentResponse::allow("a")), "answered once");
        assert_eq!(a.try_recv().unwrap(), Ok(AgentResponse::allow("a")));
        p.close(&CallError::Disconnected);
        assert_eq!(p.len(), 0);
        assert_eq!(p.insert("d").unwrap_err(), CallError::Disconnected);
    }
}
