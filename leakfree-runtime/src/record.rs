//! What leakfree knows about one tracked task, and how it tells whether the
//! task can still be woken.
//!
//! Every tracked task is polled with leakfree's own waker, a [`WakerProbe`]
//! that forwards to tokio's waker. The task wrapper keeps exactly
//! [`PROBE_BASELINE`] strong references to the probe (the `Arc` and the
//! `Waker` made from it); every clone a timer, socket, channel or user future
//! stores adds one. So between polls:
//!
//! - probe references above the baseline: someone holds a waker, the task is
//!   *waiting* and may be woken;
//! - none above the baseline and not woken since the last poll started: no
//!   waker exists anywhere, nothing can ever wake the task: *blocked forever*.
//!
//! # Invariants
//! - `poll_seq` is even between polls and odd during one; it grows by one at
//!   each poll's start and end. A reader that sees the same even value before
//!   and after reading the probe saw a consistent idle task.
//! - `woken` is set *before* a waker reference is dropped by `wake`, and reset
//!   at the start of each poll, *after* `poll_seq` has turned odd (a reader
//!   that sees the reset also sees the poll), so a reader that finds no waker references and
//!   `woken == false` (after an acquire fence) knows the last poll returned
//!   `Pending` without leaving any way to be woken. This can only err towards
//!   "waiting", never towards a false "blocked forever".

use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::task::{AbortHandle, Id};

/// References to the probe that the task wrapper itself holds.
pub(crate) const PROBE_BASELINE: usize = 2;

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

/// The waker every tracked task is polled with.
#[derive(Debug, Default)]
pub(crate) struct WakerProbe {
    woken: AtomicBool,
    runtime_waker: Mutex<Option<Waker>>,
}

impl WakerProbe {
    /// Called at the start of each poll with the waker tokio gave the task.
    pub(crate) fn begin_poll(&self, runtime_waker: &Waker) {
        self.woken.store(false, Ordering::SeqCst);
        let mut slot = self.runtime_waker.lock();
        match &*slot {
            Some(existing) if existing.will_wake(runtime_waker) => {}
            _ => *slot = Some(runtime_waker.clone()),
        }
    }
}

impl Wake for WakerProbe {
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

/// One tracked task, as its scope's table holds it.
#[derive(Debug)]
pub(crate) struct TaskRecord {
    pub(crate) name: Option<Box<str>>,
    pub(crate) location: &'static Location<'static>,
    pub(crate) spawned_at: Instant,
    pub(crate) kind: TaskKind,
    pub(crate) role: Role,
    id: OnceLock<Id>,
    abort: OnceLock<AbortHandle>,
    poll_seq: AtomicU64,
    probe: OnceLock<Weak<WakerProbe>>,
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
            id: OnceLock::new(),
            abort: OnceLock::new(),
            poll_seq: AtomicU64::new(0),
            probe: OnceLock::new(),
            panic_observed: AtomicBool::new(false),
        }
    }

    /// Links the record to the task tokio created for it.
    pub(crate) fn attach(&self, id: Id, abort: AbortHandle) {
        let _ = self.id.set(id);
        let _ = self.abort.set(abort);
    }

    /// Links the record to the probe its task is polled with.
    pub(crate) fn attach_probe(&self, probe: &Arc<WakerProbe>) {
        let _ = self.probe.set(Arc::downgrade(probe));
    }

    pub(crate) fn id(&self) -> Option<Id> {
        self.id.get().copied()
    }

    /// Aborts the task; returns whether tokio's handle was known yet (a task
    /// still being spawned is aborted by its spawner, which sees the scope
    /// closing).
    pub(crate) fn abort(&self) -> bool {
        match self.abort.get() {
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
    pub(crate) fn info(&self, now: Instant) -> crate::report::TaskInfo {
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

    pub(crate) fn begin_poll(&self) {
        self.poll_seq.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn end_poll(&self) {
        self.poll_seq.fetch_add(1, Ordering::AcqRel);
    }

    /// Classifies the task now. Never answers `BlockedForever` for a task that
    /// can still be woken (see the module docs).
    pub(crate) fn state(&self) -> TaskState {
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
        let Some(probe) = self.probe.get() else {
            return TaskState::Scheduled;
        };
        let references = probe.strong_count();
        fence(Ordering::Acquire);
        let woken = probe
            .upgrade()
            .map(|p| p.woken.load(Ordering::SeqCst))
            .unwrap_or(false);
        let after = self.poll_seq.load(Ordering::Acquire);
        if after != before {
            return TaskState::Running;
        }
        if woken {
            return TaskState::Scheduled;
        }
        // `upgrade` above briefly added one reference; `references` was read
        // before it.
        match references.saturating_sub(PROBE_BASELINE) {
            0 => TaskState::BlockedForever,
            wakers => TaskState::Waiting { wakers },
        }
    }
}
