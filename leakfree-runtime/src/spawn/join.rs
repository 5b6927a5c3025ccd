//! [`JoinHandle`]: tokio's join handle, plus the knowledge of whether a
//! task's panic reached its owner.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::{AbortHandle, Id, JoinError};

use crate::task::panic_watch;

/// An owned permission to join a task spawned by leakfree: the same methods
/// as [`tokio::task::JoinHandle`], and awaiting it gives the same result.
///
/// The one difference: when the task panicked and this handle returns the
/// panic as a [`JoinError`], the scope learns the panic was seen, so it is not
/// reported as an unobserved panic. [`JoinHandle::into_tokio`] gives up that
/// knowledge (the panic then counts as observed).
pub struct JoinHandle<T> {
    inner: tokio::task::JoinHandle<T>,
    /// Whether the task is tracked (its panic is then looked up by id, see
    /// `task::panic_watch`: the handle holds no reference to the record).
    tracked: bool,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(inner: tokio::task::JoinHandle<T>, tracked: bool) -> Self {
        JoinHandle { inner, tracked }
    }

    /// Aborts the task (see [`tokio::task::JoinHandle::abort`]).
    pub fn abort(&self) {
        self.inner.abort();
    }

    /// Whether the task has finished (see [`tokio::task::JoinHandle::is_finished`]).
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// The task's tokio id.
    pub fn id(&self) -> Id {
        self.inner.id()
    }

    /// A handle that can abort the task without owning it.
    pub fn abort_handle(&self) -> AbortHandle {
        self.inner.abort_handle()
    }

    /// The underlying tokio handle. A panic of the task then counts as
    /// observed, since leakfree can no longer see whether it is.
    pub fn into_tokio(self) -> tokio::task::JoinHandle<T> {
        if self.tracked {
            panic_watch::waive(self.inner.id());
        }
        self.inner
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = Pin::new(&mut self.inner).poll(cx);
        if let Poll::Ready(Err(error)) = &result {
            if error.is_panic() && self.tracked {
                panic_watch::observed(error.id());
            }
        }
        result
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.inner.id())
            .field("tracked", &self.tracked)
            .finish()
    }
}
