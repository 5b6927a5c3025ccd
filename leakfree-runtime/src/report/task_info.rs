//! One task as leakfree saw it at one moment, and the words for its kind and
//! state.

use std::panic::Location;
use std::time::Duration;

use tokio::task::Id;

/// What kind of work a tracked task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// A future spawned onto the runtime.
    Async,
    /// A closure run on tokio's blocking pool (`spawn_blocking`).
    Blocking,
}

/// Where a task stood when leakfree looked at it. `Display` gives the
/// one-line explanation reports print.
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

/// One task as leakfree saw it at one moment: a leaked task at a verdict, or
/// a live task in a [`LiveSnapshot`](crate::live::LiveSnapshot).
#[derive(Debug, Clone)]
pub struct TaskInfo {
    id: Option<Id>,
    name: Option<String>,
    location: &'static Location<'static>,
    age: Duration,
    state: TaskState,
    kind: TaskKind,
    stuck_at: Vec<String>,
}

impl TaskInfo {
    /// A task leakfree spawned and tracks (it knows its state).
    pub(crate) fn tracked(
        id: Option<Id>,
        name: Option<&str>,
        location: &'static Location<'static>,
        age: Duration,
        state: TaskState,
        kind: TaskKind,
    ) -> TaskInfo {
        TaskInfo {
            id,
            name: name.map(str::to_owned),
            location,
            age,
            state,
            kind,
            stuck_at: Vec::new(),
        }
    }

    /// A task spawned with plain `tokio::spawn` and attributed to a scope by
    /// tokio's spawn hook: its id, spawn site and age are known, its state is
    /// not. (Only builds with tokio's hooks see such tasks.)
    #[cfg(tokio_unstable)]
    pub(crate) fn hooked(id: Id, location: &'static Location<'static>, age: Duration) -> TaskInfo {
        TaskInfo {
            id: Some(id),
            name: None,
            location,
            age,
            state: TaskState::Unknown,
            kind: TaskKind::Async,
            stuck_at: Vec::new(),
        }
    }

    /// The same task with where it is stuck (from a task dump, or the reason
    /// there is none). Only builds that take task dumps know this.
    #[cfg(leakfree_taskdump)]
    pub(crate) fn with_stuck_at(mut self, lines: Vec<String>) -> TaskInfo {
        self.stuck_at = lines;
        self
    }

    /// Where the task is suspended, root first, from a tokio task dump:
    /// the user's frames and the library call they wait in. Empty unless the
    /// build takes dumps (`--cfg tokio_unstable` and the `taskdump` feature,
    /// on Linux) and the task leaked.
    pub fn stuck_at(&self) -> &[String] {
        &self.stuck_at
    }

    /// tokio's id of the task (unknown only for a task caught mid-spawn).
    pub fn id(&self) -> Option<Id> {
        self.id
    }
    /// The name given with [`spawn_named`](crate::spawn_named).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// Where the task was spawned.
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }
    /// How long the task had been alive when it was seen.
    pub fn age(&self) -> Duration {
        self.age
    }
    /// Whether it was blocked forever, waiting, scheduled or running.
    pub fn state(&self) -> TaskState {
        self.state
    }
    /// Async task or blocking closure.
    pub fn kind(&self) -> TaskKind {
        self.kind
    }
}
