//! A scope's verdict, [`LeakReport`]: what leaked, what panicked unseen, what
//! was cancelled, what would not die. Built once, by the exit protocol,
//! through the constructors below.

use std::borrow::Cow;
use std::panic::Location;
use std::time::Duration;

use tokio::task::Id;

use super::group::{LeakGroup, group_tasks};
use super::task_info::TaskInfo;

/// A tracked task that panicked where no `JoinHandle` returned the panic to
/// anyone: tokio alone would have swallowed it.
#[derive(Debug, Clone)]
pub struct TaskPanic {
    id: Option<Id>,
    name: Option<String>,
    location: &'static Location<'static>,
    message: String,
}

impl TaskPanic {
    pub(crate) fn new(
        id: Option<Id>,
        name: Option<&str>,
        location: &'static Location<'static>,
        message: String,
    ) -> TaskPanic {
        TaskPanic {
            id,
            name: name.map(str::to_owned),
            location,
            message,
        }
    }

    /// tokio's id of the task.
    pub fn id(&self) -> Option<Id> {
        self.id
    }
    /// The task's name, if it had one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// Where the task was spawned.
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }
    /// The panic message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What leakfree knows of tasks it did not spawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UntrackedCount {
    alive: usize,
    /// Blocking-pool threads busy with plain `spawn_blocking` work; `None`
    /// where the build cannot see the pool (no `tokio_unstable`).
    blocking: Option<usize>,
    /// Whether leftovers fail the scope (`false` under `allow_untracked`).
    fails: bool,
}

impl UntrackedCount {
    pub(crate) fn new(alive: usize, blocking: Option<usize>, fails: bool) -> UntrackedCount {
        UntrackedCount {
            alive,
            blocking,
            fails,
        }
    }

    pub(crate) fn alive(self) -> usize {
        self.alive
    }

    pub(crate) fn fails(self) -> bool {
        self.fails
    }

    /// How many of these tasks count against the scope.
    fn failing(self) -> usize {
        if self.fails {
            self.alive + self.blocking.unwrap_or(0)
        } else {
            0
        }
    }
}

/// A scope whose body did not finish within its timeout: what it and its
/// tasks were doing when the time ran out.
#[derive(Debug, Clone)]
pub struct Timeout {
    after: Duration,
    body_stuck_at: Vec<String>,
    tasks: Vec<TaskInfo>,
}

impl Timeout {
    pub(crate) fn new(
        after: Duration,
        body_stuck_at: Vec<String>,
        tasks: Vec<TaskInfo>,
    ) -> Timeout {
        Timeout {
            after,
            body_stuck_at,
            tasks,
        }
    }

    /// The timeout that ran out.
    pub fn after(&self) -> Duration {
        self.after
    }

    /// Where the body was suspended, root first, from a traced poll of it
    /// (builds that take task dumps); otherwise one line saying how to see it.
    pub fn body_stuck_at(&self) -> &[String] {
        &self.body_stuck_at
    }

    /// Every task of the scope alive at the timeout, with its state (and,
    /// where dumps are taken, where it was stuck).
    pub fn tasks(&self) -> &[TaskInfo] {
        &self.tasks
    }
}

/// The verdict of one scope: what leaked, what panicked unseen, what was
/// cancelled, what would not die.
#[derive(Debug, Clone)]
pub struct LeakReport {
    // Borrowed for the common `&'static str` names: a clean scope's verdict
    // allocates nothing for it.
    scope: Cow<'static, str>,
    grace: Duration,
    spawned: usize,
    leaked: Vec<TaskInfo>,
    zombies: Vec<TaskInfo>,
    panics: Vec<TaskPanic>,
    untracked: Option<UntrackedCount>,
    aborted: usize,
    /// Leaked tasks leakfree could not abort (attributed by tokio's hook).
    unabortable: usize,
    background_cancelled: usize,
    ignored: usize,
    timeout: Option<Timeout>,
}

impl LeakReport {
    /// An empty verdict of the scope `scope`, which tracked `spawned` tasks
    /// and let `ignored` out through its filters; the exit protocol adds
    /// what it found with the `with_` methods below.
    pub(crate) fn new(
        scope: Cow<'static, str>,
        grace: Duration,
        spawned: usize,
        ignored: usize,
    ) -> LeakReport {
        LeakReport {
            scope,
            grace,
            spawned,
            leaked: Vec::new(),
            zombies: Vec::new(),
            panics: Vec::new(),
            untracked: None,
            aborted: 0,
            unabortable: 0,
            background_cancelled: 0,
            ignored,
            timeout: None,
        }
    }

    /// The body ran out of time (see [`Timeout`]).
    pub(crate) fn with_timeout(mut self, timeout: Option<Timeout>) -> LeakReport {
        self.timeout = timeout;
        self
    }

    /// The leaked tasks, of which `unabortable` (hooked ones) leakfree holds
    /// no abort handle for.
    pub(crate) fn with_leaked(mut self, leaked: Vec<TaskInfo>, unabortable: usize) -> LeakReport {
        self.leaked = leaked;
        self.unabortable = unabortable;
        self
    }

    /// What the runtime's count says of tasks leakfree did not spawn.
    pub(crate) fn with_untracked(mut self, untracked: Option<UntrackedCount>) -> LeakReport {
        self.untracked = untracked;
        self
    }

    /// What the cancellation did: tasks aborted, background tasks among them,
    /// and the tasks still alive after it.
    pub(crate) fn with_enforcement(
        mut self,
        aborted: usize,
        background_cancelled: usize,
        zombies: Vec<TaskInfo>,
    ) -> LeakReport {
        self.aborted = aborted;
        self.background_cancelled = background_cancelled;
        self.zombies = zombies;
        self
    }

    /// Panics no `JoinHandle` observed.
    pub(crate) fn with_panics(mut self, panics: Vec<TaskPanic>) -> LeakReport {
        self.panics = panics;
        self
    }

    pub(crate) fn grace(&self) -> Duration {
        self.grace
    }

    pub(crate) fn untracked_count(&self) -> Option<UntrackedCount> {
        self.untracked
    }

    pub(crate) fn unabortable(&self) -> usize {
        self.unabortable
    }

    /// The scope's name (the annotated function's name).
    pub fn scope_name(&self) -> &str {
        &self.scope
    }

    /// `true` when the body finished in time, nothing leaked, no panic went
    /// unseen, no task refused to die, and no untracked task counts against
    /// the scope.
    pub fn is_clean(&self) -> bool {
        self.timeout.is_none()
            && self.leaked.is_empty()
            && self.zombies.is_empty()
            && self.panics.is_empty()
            && self.failing_untracked() == 0
    }

    /// When the body did not finish within the scope's timeout: what it and
    /// the scope's tasks were doing then. The scope was then ended as usual,
    /// so [`LeakReport::leaked`] lists what was still alive after the grace.
    pub fn timeout(&self) -> Option<&Timeout> {
        self.timeout.as_ref()
    }

    /// Every leaked tracked task.
    pub fn leaked(&self) -> &[TaskInfo] {
        &self.leaked
    }

    /// Tasks still alive after being aborted (blocking code, or a poll that
    /// never returns).
    pub fn zombies(&self) -> &[TaskInfo] {
        &self.zombies
    }

    /// Panics of tracked tasks that no `JoinHandle` observed.
    pub fn panics(&self) -> &[TaskPanic] {
        &self.panics
    }

    /// Tasks alive on the runtime that leakfree did not spawn, when the scope
    /// counts them (a test owning its runtime); `None` otherwise.
    pub fn untracked(&self) -> Option<usize> {
        self.untracked.map(|u| u.alive)
    }

    /// How many tasks the scope aborted at its end (leaked and background).
    pub fn aborted(&self) -> usize {
        self.aborted
    }

    /// How many background tasks were cancelled at the scope's end (not
    /// leaks).
    pub fn background_cancelled(&self) -> usize {
        self.background_cancelled
    }

    /// How many tasks ignore filters let out of the scope (left running).
    pub fn ignored(&self) -> usize {
        self.ignored
    }

    /// How many tasks the scope tracked over its life.
    pub fn spawned(&self) -> usize {
        self.spawned
    }

    /// Leaked tasks grouped by spawn site, kind, state and name, in a stable
    /// order (by location, then state, then name).
    pub fn groups(&self) -> Vec<LeakGroup<'_>> {
        group_tasks(&self.leaked)
    }

    /// Blocking-pool threads busy at the verdict with work leakfree did not
    /// spawn (plain `spawn_blocking`); `None` unless the scope counts
    /// untracked work and the build is `--cfg tokio_unstable`.
    pub fn untracked_blocking(&self) -> Option<usize> {
        self.untracked.and_then(|u| u.blocking)
    }

    pub(crate) fn failing_untracked(&self) -> usize {
        self.untracked.map_or(0, UntrackedCount::failing)
    }
}
