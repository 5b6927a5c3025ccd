//! What leakfree knows about one tracked task, and how it tells whether the
//! task can still be woken.
//!
//! Every tracked task is polled with leakfree's own waker: the task's
//! [`TaskRecord`] itself (it implements [`Wake`]), which forwards to tokio's
//! waker. One allocation per task holds both. The task wrapper keeps exactly
//! [`WRAPPER_REFS`] strong references to the record (an `Arc` and the `Waker`
//! made from it); the scope's table and the `JoinHandle` keep only `Weak`
//! ones; a reader holds one while it looks. Every waker clone that a timer,
//! socket, channel or user future stores adds one. So between polls:
//!
//! - strong references above the wrapper's and the reader's: someone holds a
//!   waker, the task is *waiting* and may be woken;
//! - none above them and not woken since the last poll started: no waker
//!   exists anywhere, nothing can ever wake the task: *blocked forever*.
//!
//! # Invariants
//! - `poll_seq` is even between polls and odd during one; it grows by one at
//!   each poll's start and end. A reader that sees the same even value before
//!   and after reading the references saw a consistent idle task.
//! - `woken` is set *before* a waker reference is dropped by `wake`, and reset
//!   at the start of each poll, *after* `poll_seq` has turned odd (a reader
//!   that sees the reset also sees the poll), so a reader that finds no waker
//!   references and `woken == false` (after an acquire fence) knows the last
//!   poll returned `Pending` without leaving any way to be woken. Extra
//!   readers holding references at the same time can only make it err towards
//!   "waiting", never towards a false "blocked forever".
//! - Only the wrapper and waker clones hold strong references while the task
//!   lives (and, after a panic, the scope's panic list, when no waker matters).

use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::task::{AbortHandle, Id};

/// Strong references to a record that its task's wrapper holds.
pub(crate) const WRAPPER_REFS: usize = 2;

/// Strong references a reader of [`TaskRecord::state`] holds (its own).
const READER_REFS: usize = 1;

/// What kind of work a tracked task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// A future spawned onto the runtime.
    Async,
    /// A closure run on tokio's blocking pool (`spawn_blocking`).
    Blocking,
}

/// Whether a task's survival is a leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Must finish before the scope ends; a survivor is a leak.
    Regular,
    /// Started on purpose to run until the scope ends; cancelled, never a leak.
    Background,
}

/// Where a task stood when leakfree looked at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskState {
    /// Pending, and no waker for it exists anywhere: nothing can ever wake it.
    BlockedForever,
    /// Pending, with this many wakers held (timers, I/O, channels, user code).
    Waiting {
        /// How many clones of the task's waker were alive.
        wakers: usize,
    },
    /// Woken or newly spawned, waiting for a worker to poll it.
    Scheduled,
    /// Being polled (or, for blocking work, running) at that moment.
    Running,
    /// Spawned with plain `tokio::spawn` and seen through tokio's spawn hook
    /// (`--cfg tokio_unstable`): leakfree holds no waker probe for it, and no
    /// abort handle.
    Unknown,
}

impl TaskState {
    /// A one-line explanation for reports.
    pub fn explain(&self) -> String {
        match self {
            TaskState::BlockedForever => {
                "blocked forever: no waker held, nothing can wake it".to_owned()
            }
            TaskState::Waiting { wakers: 1 } => {
                "waiting: 1 waker held (timer, I/O or channel)".to_owned()
            }
            TaskState::Waiting { wakers } => {
                format!("waiting: {wakers} wakers held (timer, I/O or channel)")
            }
            TaskState::Scheduled => "scheduled: woken, waiting for a worker".to_owned(),
            TaskState::Running => "running: inside a poll or blocking call".to_owned(),
            TaskState::Unknown => {
                "state unknown: spawned with plain tokio::spawn, seen by tokio's spawn hook; \
                 leakfree cannot abort it"
                    .to_owned()
            }
        }
    }
}

/// One tracked task: what reports say about it, and the waker it is polled
/// with.
#[derive(Debug)]
pub(crate) struct TaskRecord {
    pub(crate) name: Option<Box<str>>,
    pub(crate) location: &'static Location<'static>,
    pub(crate) spawned_at: Instant,
    pub(crate) kind: TaskKind,
    pub(crate) role: Role,
    abort: Mutex<Option<AbortHandle>>,
    poll_seq: AtomicU64,
    woken: AtomicBool,
    runtime_waker: Mutex<Option<Waker>>,
    /// Set when a `JoinHandle` returned the task's panic to its owner.
    pub(crate) panic_observed: AtomicBool,
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
            spawned_at: Instant::now(),
            kind,
            role,
            abort: Mutex::new(None),
            poll_seq: AtomicU64::new(0),
            woken: AtomicBool::new(false),
            runtime_waker: Mutex::new(None),
            panic_observed: AtomicBool::new(false),
        }
    }

    /// Links the record to the task tokio created for it.
    pub(crate) fn attach(&self, abort: AbortHandle) {
        *self.abort.lock() = Some(abort);
    }

    pub(crate) fn id(&self) -> Option<Id> {
        self.abort.lock().as_ref().map(AbortHandle::id)
    }

    /// Aborts the task; returns whether tokio's handle was known yet (a task
    /// still being spawned is aborted by its spawner, which sees the scope
    /// closing).
    pub(crate) fn abort(&self) -> bool {
        match &*self.abort.lock() {
            Some(handle) => {
                handle.abort();
                true
            }
            None => false,
        }
    }

    pub(crate) fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.spawned_at)
    }

    /// The record as a report or the live view shows it.
    pub(crate) fn info(self: &Arc<Self>, now: Instant) -> crate::report::TaskInfo {
        crate::report::TaskInfo {
            id: self.id(),
            name: self.name.as_deref().map(str::to_owned),
            location: self.location,
            age: self.age(now),
            state: self.state(),
            kind: self.kind,
            stuck_at: Vec::new(),
        }
    }

    /// Marks the start of a poll with the waker tokio gave the task. The
    /// poll is made visible before `woken` is cleared (see the invariants).
    pub(crate) fn begin_poll(&self, runtime_waker: Option<&Waker>) {
        self.poll_seq.fetch_add(1, Ordering::AcqRel);
        let Some(runtime_waker) = runtime_waker else {
            return;
        };
        self.woken.store(false, Ordering::SeqCst);
        let mut slot = self.runtime_waker.lock();
        match &*slot {
            Some(existing) if existing.will_wake(runtime_waker) => {}
            _ => *slot = Some(runtime_waker.clone()),
        }
    }

    pub(crate) fn end_poll(&self) {
        self.poll_seq.fetch_add(1, Ordering::AcqRel);
    }

    /// Classifies the task now; `self` is the reader's own reference. Never
    /// answers `BlockedForever` for a task that can still be woken (see the
    /// module docs).
    pub(crate) fn state(self: &Arc<Self>) -> TaskState {
        let before = self.poll_seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            return TaskState::Running;
        }
        if before == 0 {
            return TaskState::Scheduled;
        }
        if self.kind == TaskKind::Blocking {
            return TaskState::Running;
        }
        let references = Arc::strong_count(self);
        fence(Ordering::Acquire);
        let woken = self.woken.load(Ordering::SeqCst);
        let after = self.poll_seq.load(Ordering::Acquire);
        if after != before {
            return TaskState::Running;
        }
        if woken {
            return TaskState::Scheduled;
        }
        match references.saturating_sub(WRAPPER_REFS + READER_REFS) {
            0 => TaskState::BlockedForever,
            wakers => TaskState::Waiting { wakers },
        }
    }
}

impl Wake for TaskRecord {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        // Wake outside the lock: tokio's wake may take its own locks.
        let runtime_waker = self.runtime_waker.lock().clone();
        if let Some(waker) = runtime_waker {
            waker.wake();
        }
    }
}
