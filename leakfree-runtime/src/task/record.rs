//! What leakfree knows about one tracked task, and how it tells whether the
//! task can still be woken.
//!
//! Every tracked task is polled with leakfree's own waker: the task's
//! [`TaskRecord`] itself (it implements [`ArcWake`]), which forwards to
//! tokio's waker. One allocation per task holds both. The task wrapper keeps
//! exactly [`WRAPPER_REFS`] strong reference to the record (an `Arc`, whose
//! waker each poll borrows with `futures_task::waker_ref`, adding none); the
//! scope's table borrows it (a pointer, no count; see `registry/table.rs`)
//! and the `JoinHandle` holds none; a reader holds one while it looks.
//! Every waker clone that a timer,
//! socket, channel or user future stores adds one. So between polls:
//!
//! - strong references above the wrapper's and the reader's: someone holds a
//!   waker, the task is *waiting* and may be woken;
//! - none above them and not woken since the last poll started: no waker
//!   exists anywhere, nothing can ever wake the task: *blocked forever*.
//!
//! # Invariants
//! - The poll counter and woken flag live in [`WakeState`] (model-checked by
//!   `tests/loom_wake_state.rs`): a reader that finds no
//!   waker references and no wake since the last poll started knows that poll
//!   returned `Pending` without leaving any way to be woken. Extra readers
//!   holding references at the same time can only make it err towards
//!   "waiting", never towards a false "blocked forever".
//! - Only the wrapper and waker clones hold strong references while the task
//!   lives (and, after a panic, the scope's panic list, when no waker matters).

use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use futures_task::ArcWake;
use tokio::task::{AbortHandle, Id};

use super::abort_slot::{Abort, AbortSlot};
use super::spawn_clock::SpawnInstant;
use super::wake_state::{Observed, WakeState};
use crate::report::{TaskInfo, TaskKind, TaskState};

/// Strong references to a record that its task's wrapper holds.
pub(crate) const WRAPPER_REFS: usize = 1;

/// Strong references a reader of [`TaskRecord::state`] holds (its own).
const READER_REFS: usize = 1;

/// Whether a task's survival is a leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Must finish before the scope ends; a survivor is a leak.
    Regular,
    /// Started on purpose to run until the scope ends; cancelled, never a leak.
    Background,
}

/// One tracked task: what reports say about it, and the waker it is polled
/// with.
#[derive(Debug)]
pub(crate) struct TaskRecord {
    pub(crate) name: Option<Box<str>>,
    pub(crate) location: &'static Location<'static>,
    spawned_at: SpawnInstant,
    pub(crate) kind: TaskKind,
    pub(crate) role: Role,
    abort: AbortSlot<AbortHandle>,
    wake_state: WakeState,
    runtime_waker: RuntimeWaker,
    /// Set when a `JoinHandle` returned the task's panic to its owner.
    panic_observed: AtomicBool,
}

impl TaskRecord {
    pub(crate) fn new(
        name: Option<Box<str>>,
        location: &'static Location<'static>,
        kind: TaskKind,
        role: Role,
    ) -> Self {
        TaskRecord {
            name,
            location,
            spawned_at: SpawnInstant::now(),
            kind,
            role,
            abort: AbortSlot::new(),
            wake_state: WakeState::new(),
            runtime_waker: RuntimeWaker::default(),
            panic_observed: AtomicBool::new(false),
        }
    }

    /// Links the record to the task tokio created for it; aborts the task at
    /// once if its scope is `closing` (see [`AbortSlot`]).
    ///
    /// # Safety
    /// Called at most once per record: by its task's spawner, once tokio
    /// has the task ([`AbortSlot::attach`]'s contract).
    pub(crate) unsafe fn attach(&self, abort: AbortHandle, closing: &AtomicBool) {
        // SAFETY: this function's contract is the slot's.
        unsafe { self.abort.attach(abort, closing) };
    }

    pub(crate) fn id(&self) -> Option<Id> {
        self.abort.with(|handle| handle.map(AbortHandle::id))
    }

    /// Aborts the task; returns whether tokio's handle was known yet (a task
    /// still being spawned is aborted by its spawner, which sees the scope
    /// closing).
    pub(crate) fn abort(&self) -> bool {
        self.abort.abort()
    }

    pub(crate) fn age(&self, now: Instant) -> Duration {
        self.spawned_at.age(now)
    }

    /// The record as a report or the live view shows it.
    pub(crate) fn info(self: &Arc<Self>, now: Instant) -> TaskInfo {
        TaskInfo::tracked(
            self.id(),
            self.name.as_deref(),
            self.location,
            self.age(now),
            self.state(),
            self.kind,
        )
    }

    /// Notes that a `JoinHandle` returned the task's panic to its owner (or
    /// gave up knowing whether it would), so the panic is not reported.
    pub(crate) fn mark_panic_observed(&self) {
        self.panic_observed.store(true, Ordering::Release);
    }

    pub(crate) fn panic_observed(&self) -> bool {
        self.panic_observed.load(Ordering::Acquire)
    }

    /// Marks the start of a poll (or of a blocking closure's run). The poll
    /// is made visible before `woken` is cleared (see the invariants);
    /// `forget_wakes` is true for a real poll, whose waker the wakes before
    /// it were answered by. `poller` is the waker the poll was given (`None`
    /// for a blocking closure); debug builds check that it wakes the same
    /// task as the one stored (see [`RuntimeWaker`]), which is only stored
    /// by [`TaskRecord::poll_pending`].
    pub(crate) fn begin_poll(&self, forget_wakes: bool, poller: Option<&Waker>) {
        self.wake_state.begin_poll(forget_wakes);
        if let Some(waker) = poller {
            self.runtime_waker.check_same(waker);
        }
    }

    /// After the first poll that returned `Pending`, with the waker it was
    /// given (the wrapper calls it once): stores it if none is stored, then
    /// forwards any wake that came during the poll and found no waker to
    /// forward to. A task that finishes in its first poll never stores one
    /// (no clone of tokio's waker, no `OnceLock` to fill).
    pub(crate) fn poll_pending(&self, poller: &Waker) {
        if self.runtime_waker.publish_first(poller) {
            // Pairs with the fence in `RuntimeWaker::wake`: either that
            // wake sees the waker just stored, or this sees its `woken`
            // (see `RuntimeWaker`'s invariant).
            fence(Ordering::SeqCst);
            if self.wake_state.is_woken() {
                poller.wake_by_ref();
            }
        }
    }

    pub(crate) fn end_poll(&self) {
        self.wake_state.end_poll();
    }

    /// Classifies the task now; `self` is the reader's own reference. Never
    /// answers `BlockedForever` for a task that can still be woken (see the
    /// module docs).
    pub(crate) fn state(self: &Arc<Self>) -> TaskState {
        if self.kind == TaskKind::Blocking {
            // A closure has no waker: it is queued (never started) or running.
            return match self.wake_state.observe(|| 0) {
                Observed::NeverPolled => TaskState::Scheduled,
                _ => TaskState::Running,
            };
        }
        match self.wake_state.observe(|| Arc::strong_count(self)) {
            Observed::NeverPolled => TaskState::Scheduled,
            Observed::Polling => TaskState::Running,
            Observed::Woken => TaskState::Scheduled,
            Observed::Idle { references, .. } => {
                match references.saturating_sub(WRAPPER_REFS + READER_REFS) {
                    0 => TaskState::BlockedForever,
                    wakers => TaskState::Waiting { wakers },
                }
            }
        }
    }
}

/// The waker tokio polls a task with, which the record's wakes forward to.
///
/// A tracked task's wrapper is only ever polled by tokio's task harness
/// (it is crate-private and handed only to tokio's spawn functions), and
/// tokio polls a task with the same waker every time: one made from the
/// task's header and one static vtable (`runtime/task/waker.rs`). So the
/// first one is kept for good in a `OnceLock`, and a wake reads it with one
/// acquire load: no lock, no clone, and nothing to compare at each poll.
/// Debug builds check at every poll that the poll's waker wakes the same
/// task as the stored one (`Waker::will_wake`), so a change in that
/// premise fails the tests rather than sending wakes to a stale waker.
///
/// The first waker is stored only after the first poll that returns
/// `Pending` ([`TaskRecord::poll_pending`]): most short tasks finish in their
/// first poll and never need one.
///
/// # Invariant
/// No wake is lost. A wake can only come from a waker the task handed out
/// during a poll. One that comes after the first waker was stored finds it.
/// One that comes during the first `Pending` poll (another thread holding a
/// clone, or the future waking itself, as `yield_now` does) may find the
/// slot empty; it has already set the record's `woken` flag. The poller
/// stores the waker, then (after a `SeqCst` fence) reads `woken`; the wake
/// set `woken`, then (after a `SeqCst` fence) reads the slot again. The two
/// fences order the pairs: at least one side sees the other's write, so
/// either the wake forwards to the stored waker or the poller wakes it
/// itself (at worst both: one extra poll).
#[derive(Debug, Default)]
struct RuntimeWaker {
    first: OnceLock<Waker>,
}

impl RuntimeWaker {
    /// Called by the poller with the waker of its poll: in debug builds,
    /// checks that it wakes the task the stored one wakes (see above).
    fn check_same(&self, waker: &Waker) {
        debug_assert!(
            self.first.get().is_none_or(|first| first.will_wake(waker)),
            "a tracked task was polled with a waker other than the one \
             tokio gave its first `Pending` poll"
        );
    }

    /// Called by the poller after its first `Pending` poll: stores `waker`;
    /// returns whether it did (it is stored once).
    fn publish_first(&self, waker: &Waker) -> bool {
        self.first.set(waker.clone()).is_ok()
    }

    fn wake(&self) {
        if let Some(waker) = self.first.get() {
            waker.wake_by_ref();
            return;
        }
        // None stored yet: the task is in its first `Pending` poll.
        // Pairs with the fence in `TaskRecord::poll_pending` (see the
        // invariant): look again after it.
        fence(Ordering::SeqCst);
        if let Some(waker) = self.first.get() {
            waker.wake_by_ref();
        }
    }
}

#[cfg(debug_assertions)]
impl Drop for TaskRecord {
    fn drop(&mut self) {
        super::lent::check_not_lent(self);
    }
}

impl Abort for AbortHandle {
    fn abort(&self) {
        AbortHandle::abort(self);
    }
}

impl ArcWake for TaskRecord {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.wake_state.note_wake();
        arc_self.runtime_waker.wake();
    }
}

// `WakeState`'s own test lives here: its module is also compiled into
// the loom model, where its atomics only work inside `loom::model`.
#[cfg(test)]
mod tests {
    use super::super::wake_state::{Observed, WakeState};

    /// 88 bytes, 104 with the `Arc`'s counts: glibc's 112-byte block
    /// (table 5b of `BENCHMARKS.md`); a field more moves every tracked task
    /// to the next block size.
    #[test]
    fn a_record_is_88_bytes() {
        assert_eq!(std::mem::size_of::<super::TaskRecord>(), 88);
    }

    /// The abort slot is written once, by the spawner, without a lock
    /// (`task/abort_slot.rs`): a second attach would write while readers
    /// may read. Debug builds stop it before it writes.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "an abort slot was attached twice")]
    fn attaching_a_record_twice_fails_a_debug_build() {
        use std::sync::atomic::AtomicBool;

        use crate::report::TaskKind;
        use crate::task::Role;

        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let task = runtime.spawn(std::future::pending::<()>());
        let record = super::TaskRecord::new(
            None,
            std::panic::Location::caller(),
            TaskKind::Async,
            Role::Regular,
        );
        let closing = AtomicBool::new(false);
        // SAFETY: broken on purpose by the second call, which panics before
        // it writes; nothing reads the slot meanwhile.
        unsafe {
            record.attach(task.abort_handle(), &closing);
            record.attach(task.abort_handle(), &closing);
        }
    }

    #[test]
    fn the_poll_counter_wraps_without_saying_never_polled() {
        let state = WakeState::at_poll_seq(u32::MAX - 1);
        assert!(matches!(state.observe(|| 1), Observed::Idle { .. }));
        state.begin_poll(true);
        assert_eq!(state.observe(|| 1), Observed::Polling);
        state.end_poll();
        assert!(
            matches!(state.observe(|| 1), Observed::Idle { references: 1, .. }),
            "after the wrap the task is idle, not never polled"
        );
        state.begin_poll(true);
        assert_eq!(state.observe(|| 1), Observed::Polling);
    }
}
