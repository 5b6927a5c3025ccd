//! The futures leakfree wraps around scoped work.
//!
//! - [`Tracked`]: a spawned task. While polled it installs its scope as the
//!   current context (so its own spawns land in the same scope), polls the
//!   user's future with the task's record as its waker, records a panic before
//!   letting it continue to tokio, and deregisters when tokio drops it.
//! - [`Ignored`]: a task an ignore filter let out of its scope: it runs
//!   outside every scope and only keeps the scope's "known tasks" count right.
//! - [`Entered`]: a scope's body (or any future run with
//!   [`Scope::enter`](crate::Scope::enter)).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::registry::ScopeShared;
use crate::registry::context::{self, TaskContext};
use crate::report::{TaskKind, panic_message};
use crate::task::{Role, TaskRecord, panic_watch};

pin_project! {
    /// A tracked task's future.
    ///
    /// Holds one reference to its scope and one to its record (see
    /// [`TaskRecord`]), whose waker each poll borrows: nothing else, so the
    /// spawn and the end of a task cost as few reference-count updates as
    /// they can. 24 bytes beside the future (whether its context is
    /// background work is its record's role): a trivial task's cell stays in
    /// tokio's smallest size, 128 bytes.
    pub(crate) struct Tracked<F> {
        // `None` once dropped in place by `PinnedDrop`.
        #[pin]
        inner: Option<F>,
        scope: Arc<ScopeShared>,
        record: Arc<TaskRecord>,
        // The task's place in its scope's table.
        key: u32,
        // Whether a poll has returned `Pending` (the record then holds the
        // runtime's waker); in the padding after `key`.
        pended: bool,
    }

    impl<F> PinnedDrop for Tracked<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // The inner future is dropped with the task's context installed,
            // so tasks its destructor spawns (a cascade during cancellation)
            // land in this scope, which aborts them if it is closing. Only
            // then does the task leave the table: the scope's live count
            // never reaches zero before those are registered.
            let mut inner = this.inner;
            let dropped = in_context(this.scope, this.record, || {
                catch_unwind(AssertUnwindSafe(|| inner.set(None)))
            });
            this.scope.deregister(*this.key as usize, this.record.kind);
            panic_watch::task_ended(this.record);
            if let Err(payload) = dropped {
                resume_unwind(payload);
            }
        }
    }
}

impl<F> Tracked<F> {
    pub(crate) fn new(inner: F, context: TaskContext, record: Arc<TaskRecord>, key: usize) -> Self {
        debug_assert_eq!(context.background, record.role == Role::Background);
        Tracked {
            inner: Some(inner),
            scope: context.scope,
            record,
            key: u32::try_from(key).expect("fewer than 2^32 live tasks in one scope"),
            pended: false,
        }
    }
}

/// Runs `f` with the task's context installed (its scope, and whether it is
/// background work, which its record's role says).
fn in_context<R>(scope: &Arc<ScopeShared>, record: &TaskRecord, f: impl FnOnce() -> R) -> R {
    context::enter(scope, record.role == Role::Background, f)
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Marks the poll before clearing `woken` (see [`TaskRecord`]): a verdict
        // taken in between must not see an idle, unwoken task with no waker.
        this.record.begin_poll(true, Some(cx.waker()));
        // The record is the waker; borrowed, it adds no reference (a clone
        // the inner future keeps does).
        let waker = futures_task::waker_ref(this.record);
        let mut probe_cx = Context::from_waker(&waker);
        let inner = this
            .inner
            .as_pin_mut()
            .expect("a tracked task is never polled after it is dropped");
        let result = in_context(this.scope, this.record, || {
            catch_unwind(AssertUnwindSafe(|| inner.poll(&mut probe_cx)))
        });
        this.record.end_poll();
        match result {
            Ok(Poll::Pending) => {
                if !*this.pended {
                    *this.pended = true;
                    this.record.poll_pending(cx.waker());
                }
                Poll::Pending
            }
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
    pub(crate) struct Ignored<F> {
        #[pin]
        inner: F,
        scope: Arc<ScopeShared>,
    }

    impl<F> PinnedDrop for Ignored<F> {
        fn drop(this: Pin<&mut Self>) {
            this.project().scope.ignored_task_ended(TaskKind::Async);
        }
    }
}

impl<F> Ignored<F> {
    pub(crate) fn new(inner: F, scope: Arc<ScopeShared>) -> Self {
        scope.ignored_task_started(TaskKind::Async);
        Ignored { inner, scope }
    }
}

impl<F: Future> Future for Ignored<F> {
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
        context: TaskContext,
    }
}

impl<F> Entered<F> {
    pub(crate) fn new(inner: F, context: TaskContext) -> Self {
        Entered { inner, context }
    }
}

impl<F: Future> Future for Entered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        context::enter_context(this.context, || inner.poll(cx))
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

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::task::{Poll, Waker};

    use parking_lot::Mutex;
    use tokio_test::{assert_pending, assert_ready, task};

    use super::*;
    use crate::report::{TaskKind, TaskState};
    use crate::task::Role;

    fn scope() -> Arc<ScopeShared> {
        ScopeShared::for_test("unit")
    }

    /// Wraps `future` as a tracked task of a fresh scope, without a runtime.
    fn tracked<F: Future>(future: F) -> (Tracked<F>, Arc<TaskRecord>, Arc<ScopeShared>) {
        let scope = scope();
        let record = Arc::new(TaskRecord::new(
            None,
            std::panic::Location::caller(),
            TaskKind::Async,
            Role::Regular,
        ));
        // SAFETY: the `Tracked` made below holds `record` and deregisters
        // in its drop, before its record field is dropped.
        let key = unsafe { scope.register(&record) };
        let context = TaskContext {
            scope: scope.clone(),
            background: false,
        };
        (
            Tracked::new(future, context, record.clone(), key),
            record,
            scope,
        )
    }

    /// Where a task's future keeps the waker of its latest poll.
    type WakerSlot = Arc<Mutex<Option<Waker>>>;

    /// A tracked task whose future stores the waker of each poll in the
    /// returned slot and stays pending.
    fn storing_task() -> (
        Tracked<impl Future<Output = ()>>,
        Arc<TaskRecord>,
        Arc<ScopeShared>,
        WakerSlot,
    ) {
        let slot = WakerSlot::default();
        let stored = slot.clone();
        let (future, record, scope) = tracked(poll_fn(move |cx| {
            *stored.lock() = Some(cx.waker().clone());
            Poll::<()>::Pending
        }));
        (future, record, scope, slot)
    }

    #[test]
    fn a_task_never_polled_is_scheduled() {
        let (_task, record, _scope) = tracked(std::future::pending::<()>());
        assert_eq!(record.state(), TaskState::Scheduled);
    }

    #[test]
    fn pending_without_a_waker_is_blocked_forever() {
        let (future, record, _scope) = tracked(std::future::pending::<()>());
        let mut task = task::spawn(future);
        assert_pending!(task.poll());
        assert_eq!(record.state(), TaskState::BlockedForever);
    }

    #[test]
    fn a_stored_waker_means_waiting_until_it_is_dropped() {
        let (future, record, _scope, slot) = storing_task();
        let mut task = task::spawn(future);
        assert_pending!(task.poll());
        assert_eq!(record.state(), TaskState::Waiting { wakers: 1 });

        let extra = slot.lock().clone();
        assert_eq!(record.state(), TaskState::Waiting { wakers: 2 });
        drop(extra);

        slot.lock().take();
        assert_eq!(record.state(), TaskState::BlockedForever);
    }

    #[test]
    fn a_wake_makes_it_scheduled_and_reaches_the_runtime_waker() {
        let (future, record, _scope, slot) = storing_task();
        let mut task = task::spawn(future);
        assert_pending!(task.poll());
        assert!(!task.is_woken());
        slot.lock().take().unwrap().wake();
        assert!(task.is_woken(), "the runtime's waker was called");
        assert_eq!(record.state(), TaskState::Scheduled);
    }

    /// tokio polls a task with one waker for its whole life, so the first
    /// one is stored for good (see `RuntimeWaker` in `task/record.rs`);
    /// every poll with it keeps forwarding wakes to it.
    #[test]
    fn wakes_reach_the_waker_tokio_polls_with() {
        let (future, record, _scope, slot) = storing_task();
        let counter = Arc::new(Counting::default());
        let mut future = std::pin::pin!(future);
        let waker = Waker::from(counter.clone());
        for round in 1..=3 {
            let poll = future.as_mut().poll(&mut Context::from_waker(&waker));
            assert!(poll.is_pending());
            slot.lock().as_ref().unwrap().wake_by_ref();
            assert_eq!(counter.count(), round);
        }
        assert_eq!(record.state(), TaskState::Scheduled);
    }

    /// A poll with a waker that wakes another task breaks that premise: a
    /// debug build says so at once instead of forwarding wakes to a stale
    /// waker.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "polled with a waker other than")]
    fn a_poll_with_another_waker_fails_a_debug_build() {
        let (future, _record, _scope, _slot) = storing_task();
        let mut future = std::pin::pin!(future);
        for poller in [Arc::new(Counting::default()), Arc::new(Counting::default())] {
            let waker = Waker::from(poller);
            let _ = future.as_mut().poll(&mut Context::from_waker(&waker));
        }
    }

    /// A runtime waker that counts its wakes.
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl Counting {
        fn count(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl std::task::Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The wrapper adds 24 bytes to a small future (so a trivial task's cell
    /// stays in tokio's 128-byte size, table 5b of `BENCHMARKS.md`).
    #[test]
    fn the_wrapper_adds_24_bytes() {
        assert_eq!(std::mem::size_of::<Tracked<std::future::Ready<()>>>(), 24);
    }

    /// As `yield_now` does: the future wakes itself during its first poll,
    /// before any runtime waker is stored, and returns `Pending`.
    #[test]
    fn a_wake_inside_the_first_poll_reaches_the_runtime_waker() {
        let mut first = true;
        let (future, _record, _scope) = tracked(poll_fn(move |cx| {
            if std::mem::take(&mut first) {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        }));
        let mut task = task::spawn(future);
        assert_pending!(task.poll());
        assert!(task.is_woken(), "forwarded once the poll returned");
        assert_ready!(task.poll());
    }

    /// Another thread wakes a clone while the first poll is still running
    /// (it is joined inside the poll): the wake finds no runtime waker, and
    /// the poller forwards it.
    #[test]
    fn a_wake_from_another_thread_during_the_first_poll_is_not_lost() {
        let (future, _record, _scope) = tracked(poll_fn(|cx| {
            let waker = cx.waker().clone();
            std::thread::spawn(move || waker.wake()).join().unwrap();
            Poll::<()>::Pending
        }));
        let mut task = task::spawn(future);
        assert_pending!(task.poll());
        assert!(task.is_woken());
    }

    /// A task that finishes in its first poll never clones the runtime's
    /// waker; one that returns `Pending` keeps exactly one clone.
    #[test]
    fn only_a_pending_task_keeps_a_clone_of_the_runtime_waker() {
        use std::task::Wake;

        struct Quiet;
        impl Wake for Quiet {
            fn wake(self: Arc<Self>) {}
        }
        let runtime = Arc::new(Quiet);
        let waker = Waker::from(runtime.clone());
        let mut cx = Context::from_waker(&waker);

        let (done, _record, _scope) = tracked(async {});
        let mut done = Box::pin(done);
        assert!(done.as_mut().poll(&mut cx).is_ready());
        assert_eq!(Arc::strong_count(&runtime), 2, "ours and `waker` only");

        let (pending, _record, _scope) = tracked(std::future::pending::<()>());
        let mut pending = Box::pin(pending);
        assert!(pending.as_mut().poll(&mut cx).is_pending());
        assert!(pending.as_mut().poll(&mut cx).is_pending());
        assert_eq!(Arc::strong_count(&runtime), 3, "one stored clone");
    }

    /// The poll borrows the record's waker; a clone the future keeps owns
    /// a reference of its own, so it can outlive the task (and be woken and
    /// dropped after it) without reaching a freed record.
    #[test]
    fn a_waker_clone_outlives_its_task() {
        let (future, record, scope, slot) = storing_task();
        let weak = Arc::downgrade(&record);
        drop(record);
        let mut task = task::spawn(future);
        assert_pending!(task.poll());
        assert_eq!(weak.strong_count(), 2, "the wrapper's and the clone's");
        drop(task);
        assert_eq!(scope.all_live(), 0);
        assert_eq!(weak.strong_count(), 1, "only the clone keeps the record");
        let waker = slot.lock().take().unwrap();
        waker.wake_by_ref();
        drop(waker);
        assert_eq!(weak.strong_count(), 0, "the last clone frees it");
    }

    #[test]
    fn a_self_wake_during_poll_is_scheduled_not_blocked() {
        // What `yield_now` and coop budget exhaustion do.
        let (future, record, _scope) = tracked(poll_fn(|cx| {
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        }));
        let mut task = task::spawn(future);
        assert_pending!(task.poll());
        assert_eq!(record.state(), TaskState::Scheduled);
    }

    #[test]
    fn the_task_sees_itself_running_and_inside_its_scope() {
        let seen: Arc<Mutex<Option<(TaskState, bool)>>> = Arc::default();
        let (future, record, scope) = {
            let seen = seen.clone();
            let cell: Arc<Mutex<Option<Arc<TaskRecord>>>> = Arc::default();
            let inner_cell = cell.clone();
            let (future, record, scope) = tracked(poll_fn(move |_| {
                let record = inner_cell.lock().clone().unwrap();
                let in_scope = context::current().is_some();
                *seen.lock() = Some((record.state(), in_scope));
                Poll::Ready(())
            }));
            *cell.lock() = Some(record.clone());
            (future, record, scope)
        };
        assert!(context::current().is_none());
        let mut task = task::spawn(future);
        assert_ready!(task.poll());
        assert_eq!(*seen.lock(), Some((TaskState::Running, true)));
        assert!(context::current().is_none(), "context restored after poll");
        drop(task);
        assert_eq!(scope.all_live(), 0, "dropping the task deregisters it");
        drop(record);
    }

    #[test]
    fn a_panic_is_recorded_and_continues() {
        let (future, _record, scope) = tracked(async { panic!("boom") });
        let mut task = task::spawn(future);
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| task.poll()));
        assert!(caught.is_err());
        let panics = scope.take_unobserved_panics();
        assert_eq!(panics.len(), 1);
        assert_eq!(panics[0].message, "boom");
        assert!(
            context::current().is_none(),
            "context restored after a panic"
        );
    }
}
