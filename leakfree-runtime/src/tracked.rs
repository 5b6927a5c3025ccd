//! The futures leakfree wraps around scoped work.
//!
//! - [`Tracked`]: a spawned task. While polled it installs its scope as the
//!   current context (so its own spawns land in the same scope), polls the
//!   user's future with the task's [`WakerProbe`], records a panic before
//!   letting it continue to tokio, and deregisters when tokio drops it.
//! - [`Released`]: a task an ignore filter let out of its scope: it runs
//!   outside every scope and only keeps the scope's "known tasks" count right.
//! - [`Entered`]: a scope's body (or any future run with
//!   [`Scope::enter`](crate::Scope::enter)).

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;

use crate::context::{self, TaskContext};
use crate::record::{TaskRecord, WakerProbe};
use crate::registry::ScopeShared;

pin_project! {
    /// A tracked task's future.
    pub(crate) struct Tracked<F> {
        #[pin]
        inner: F,
        // `None` only while moved into the thread-local during a poll.
        context: Option<TaskContext>,
        scope: Arc<ScopeShared>,
        record: Arc<TaskRecord>,
        probe: Arc<WakerProbe>,
        waker: Waker,
        key: usize,
    }

    impl<F> PinnedDrop for Tracked<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.scope.deregister(*this.key);
        }
    }
}

impl<F> Tracked<F> {
    pub(crate) fn new(inner: F, context: TaskContext, record: Arc<TaskRecord>, key: usize) -> Self {
        let probe = Arc::new(WakerProbe::default());
        record.attach_probe(&probe);
        let waker = Waker::from(probe.clone());
        let scope = context.scope.clone();
        Tracked {
            inner,
            context: Some(context),
            scope,
            record,
            probe,
            waker,
            key,
        }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        this.probe.begin_poll(cx.waker());
        this.record.begin_poll();
        let mut probe_cx = Context::from_waker(this.waker);
        let inner = this.inner;
        let result = context::enter(this.context, || {
            catch_unwind(AssertUnwindSafe(|| inner.poll(&mut probe_cx)))
        });
        this.record.end_poll();
        match result {
            Ok(poll) => poll,
            Err(payload) => {
                this.scope
                    .record_panic(this.record.clone(), panic_message(&*payload));
                resume_unwind(payload)
            }
        }
    }
}

pin_project! {
    /// A task an ignore filter let out of its scope.
    pub(crate) struct Released<F> {
        #[pin]
        inner: F,
        scope: Arc<ScopeShared>,
    }

    impl<F> PinnedDrop for Released<F> {
        fn drop(this: Pin<&mut Self>) {
            this.project().scope.ignored_task_ended();
        }
    }
}

impl<F> Released<F> {
    pub(crate) fn new(inner: F, scope: Arc<ScopeShared>) -> Self {
        scope.ignored_task_started();
        Released { inner, scope }
    }
}

impl<F: Future> Future for Released<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

pin_project! {
    /// A future run with a scope as its context.
    #[derive(Debug)]
    pub struct Entered<F> {
        #[pin]
        inner: F,
        context: Option<TaskContext>,
    }
}

impl<F> Entered<F> {
    pub(crate) fn new(inner: F, context: TaskContext) -> Self {
        Entered {
            inner,
            context: Some(context),
        }
    }
}

impl<F: Future> Future for Entered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        context::enter(this.context, || inner.poll(cx))
    }
}

pin_project! {
    /// Polls a future and turns its panic into an `Err`.
    pub(crate) struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F> CatchUnwind<F> {
    pub(crate) fn new(inner: F) -> Self {
        CatchUnwind { inner }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// The text of a panic payload, as the default panic hook would print it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "Box<dyn Any> (a panic payload that is not a string)".to_owned()
    }
}
