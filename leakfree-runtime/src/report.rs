//! The verdict of a scope's exit: [`LeakReport`], as a value and as text.
//!
//! The text is what a failing test prints. Tasks with the same spawn site,
//! kind, state and name are printed as one entry with a count, so a bus that leaks
//! 1,026 workers from one line prints one entry, not 1,026; the full list stays
//! available through [`LeakReport::leaked`].

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use tokio::task::Id;

use crate::record::{TaskKind, TaskState};

/// One task as leakfree saw it at one moment: a leaked task at a verdict, or
/// a live task in a [`LiveSnapshot`](crate::live::LiveSnapshot).
#[derive(Debug, Clone)]
pub struct TaskInfo {
    pub(crate) id: Option<Id>,
    pub(crate) name: Option<String>,
    pub(crate) location: &'static Location<'static>,
    pub(crate) age: Duration,
    pub(crate) state: TaskState,
    pub(crate) kind: TaskKind,
    pub(crate) stuck_at: Vec<String>,
}

impl TaskInfo {
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

/// A tracked task that panicked where no `JoinHandle` returned the panic to
/// anyone: tokio alone would have swallowed it.
#[derive(Debug, Clone)]
pub struct TaskPanic {
    pub(crate) id: Option<Id>,
    pub(crate) name: Option<String>,
    pub(crate) location: &'static Location<'static>,
    pub(crate) message: String,
}

impl TaskPanic {
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
    pub(crate) alive: usize,
    /// Blocking-pool threads busy with plain `spawn_blocking` work; `None`
    /// where the build cannot see the pool (no `tokio_unstable`).
    pub(crate) blocking: Option<usize>,
    /// Whether leftovers fail the scope (`false` under `allow_untracked`).
    pub(crate) fails: bool,
}

/// The verdict of one scope: what leaked, what panicked unseen, what was
/// cancelled, what would not die.
#[derive(Debug, Clone)]
pub struct LeakReport {
    pub(crate) scope: String,
    pub(crate) grace: Duration,
    pub(crate) spawned: usize,
    pub(crate) leaked: Vec<TaskInfo>,
    pub(crate) zombies: Vec<TaskInfo>,
    pub(crate) panics: Vec<TaskPanic>,
    pub(crate) untracked: Option<UntrackedCount>,
    pub(crate) aborted: usize,
    /// Leaked tasks leakfree could not abort (attributed by tokio's hook).
    pub(crate) unabortable: usize,
    pub(crate) background_cancelled: usize,
    pub(crate) ignored: usize,
}

/// Leaked tasks that share spawn site, kind, state and name.
#[derive(Debug, Clone)]
pub struct LeakGroup<'a> {
    tasks: Vec<&'a TaskInfo>,
}

impl<'a> LeakGroup<'a> {
    /// How many tasks the group holds.
    pub fn count(&self) -> usize {
        self.tasks.len()
    }
    /// Their common spawn site.
    pub fn location(&self) -> &'static Location<'static> {
        self.tasks[0].location
    }
    /// Their common name, if they were spawned with one.
    pub fn name(&self) -> Option<&str> {
        self.tasks[0].name.as_deref()
    }
    /// Their common state.
    pub fn state(&self) -> TaskState {
        self.tasks[0].state
    }
    /// The tasks, ordered by id.
    pub fn tasks(&self) -> &[&'a TaskInfo] {
        &self.tasks
    }
}

impl LeakReport {
    /// The scope's name (the annotated function's name).
    pub fn scope_name(&self) -> &str {
        &self.scope
    }

    /// `true` when nothing leaked, no panic went unseen, no task refused to
    /// die, and no untracked task counts against the scope.
    pub fn is_clean(&self) -> bool {
        self.leaked.is_empty()
            && self.zombies.is_empty()
            && self.panics.is_empty()
            && self.failing_untracked() == 0
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

    fn failing_untracked(&self) -> usize {
        match self.untracked {
            Some(UntrackedCount {
                alive,
                blocking,
                fails: true,
            }) => alive + blocking.unwrap_or(0),
            _ => 0,
        }
    }

    fn headline(&self) -> String {
        let mut parts = Vec::new();
        if !self.leaked.is_empty() {
            parts.push(plural(self.leaked.len(), "task", "tasks") + " leaked");
        }
        if self.failing_untracked() > 0 {
            parts.push(
                plural(
                    self.failing_untracked(),
                    "untracked task",
                    "untracked tasks",
                ) + " left running",
            );
        }
        if !self.panics.is_empty() {
            parts.push(plural(self.panics.len(), "task panic", "task panics") + " never observed");
        }
        if self.leaked.is_empty() && !self.zombies.is_empty() {
            parts.push(plural(self.zombies.len(), "zombie task", "zombie tasks"));
        }
        parts.join(" and ")
    }
}

/// Groups tasks by spawn site, kind, state and name, in a stable order.
pub(crate) fn group_tasks(tasks: &[TaskInfo]) -> Vec<LeakGroup<'_>> {
    let mut sorted: Vec<&TaskInfo> = tasks.iter().collect();
    sorted.sort_by_key(|t| sort_key(t));
    let mut groups: Vec<LeakGroup<'_>> = Vec::new();
    for task in sorted {
        match groups.last_mut() {
            Some(group) if same_group(group.tasks[0], task) => group.tasks.push(task),
            _ => groups.push(LeakGroup { tasks: vec![task] }),
        }
    }
    groups
}

fn sort_key(task: &TaskInfo) -> (&'static str, u32, u32, u8, Option<&str>, Option<Id>) {
    let state = match task.state {
        TaskState::BlockedForever => 0,
        TaskState::Waiting { .. } => 1,
        TaskState::Scheduled => 2,
        TaskState::Running => 3,
        _ => 4,
    };
    (
        task.location.file(),
        task.location.line(),
        task.location.column(),
        state,
        task.name.as_deref(),
        task.id,
    )
}

fn same_group(a: &TaskInfo, b: &TaskInfo) -> bool {
    a.location == b.location && a.kind == b.kind && a.state == b.state && a.name == b.name
}

pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// What a report suggests about tasks it could only count.
#[cfg(not(tokio_unstable))]
const UNTRACKED_HINT: &str = "they were started with plain tokio::spawn (here or in a library); \
     spawn them with leakfree_runtime::spawn, or build with RUSTFLAGS=\"--cfg tokio_unstable\" \
     and use the self-contained form (#[leak_checked] #[test] async fn), to see where they were spawned";
#[cfg(tokio_unstable)]
const UNTRACKED_HINT: &str = "they were started with plain tokio::spawn on a runtime without leakfree's hooks; \
     use the self-contained form (#[leak_checked] #[test] async fn) or install \
     leakfree_runtime::hooks on your runtime builder to see where they were spawned";

/// What a scope that counts untracked tasks still cannot see, by build.
#[cfg(not(tokio_unstable))]
const BLIND_SPOTS: &str = "plain spawn_blocking work (build with --cfg tokio_unstable to count it) \
     and plain spawn_local tasks on a LocalSet (use leakfree_runtime::spawn_local)";
#[cfg(tokio_unstable)]
const BLIND_SPOTS: &str =
    "plain spawn_local tasks on a LocalSet (use leakfree_runtime::spawn_local)";

/// Formats a duration the way reports print it: `850us`, `103ms`, `12.5s`.
pub(crate) fn human_duration(duration: Duration) -> String {
    if duration < Duration::from_millis(1) {
        format!("{}us", duration.as_micros())
    } else if duration < Duration::from_secs(10) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

fn task_label(task: &TaskInfo) -> String {
    let kind = match task.kind {
        TaskKind::Async => "task",
        TaskKind::Blocking => "blocking task",
    };
    let mut label = match task.id {
        Some(id) => format!("{kind} {id}"),
        None => kind.to_owned(),
    };
    if let Some(name) = &task.name {
        label.push_str(&format!(" {name:?}"));
    }
    label
}

fn write_group(f: &mut fmt::Formatter<'_>, index: usize, group: &LeakGroup<'_>) -> fmt::Result {
    let first = group.tasks[0];
    if group.count() == 1 {
        writeln!(
            f,
            "  {index}) {} spawned at {}, alive {}",
            task_label(first),
            first.location,
            human_duration(first.age)
        )?;
    } else {
        let youngest = group.tasks.iter().map(|t| t.age).min().unwrap_or_default();
        let oldest = group.tasks.iter().map(|t| t.age).max().unwrap_or_default();
        let kind = match first.kind {
            TaskKind::Async => "tasks",
            TaskKind::Blocking => "blocking tasks",
        };
        let names = first
            .name
            .as_ref()
            .map(|name| format!(" {name:?}"))
            .unwrap_or_default();
        writeln!(
            f,
            "  {index}) {} {kind}{names} spawned at {}, alive {}",
            group.count(),
            first.location,
            {
                let (youngest, oldest) = (human_duration(youngest), human_duration(oldest));
                if youngest == oldest {
                    oldest
                } else {
                    format!("{youngest} to {oldest}")
                }
            }
        )?;
        let ids: Vec<String> = group
            .tasks
            .iter()
            .filter_map(|t| t.id)
            .take(5)
            .map(|id| id.to_string())
            .collect();
        let more = group.count().saturating_sub(ids.len());
        if more > 0 {
            writeln!(f, "     ids {} and {more} more", ids.join(", "))?;
        } else {
            writeln!(f, "     ids {}", ids.join(", "))?;
        }
    }
    writeln!(f, "     {}", first.state.explain())?;
    for (i, frame) in first.stuck_at.iter().enumerate() {
        let label = if i == 0 { "stuck at: " } else { "          " };
        writeln!(f, "     {label}{frame}")?;
    }
    Ok(())
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return write!(
                f,
                "leakfree: `{}` is clean ({} tracked, grace {})",
                self.scope,
                plural(self.spawned, "task", "tasks"),
                human_duration(self.grace)
            );
        }
        writeln!(
            f,
            "leakfree: {} from `{}` (grace {})",
            self.headline(),
            self.scope,
            human_duration(self.grace)
        )?;
        for (i, group) in self.groups().iter().enumerate() {
            write_group(f, i + 1, group)?;
        }
        if let Some(untracked) = self.untracked.filter(|u| u.alive > 0) {
            let verdict = if untracked.fails {
                "fails the scope"
            } else {
                "allowed by `allow_untracked`"
            };
            writeln!(
                f,
                "  untracked: {} alive that leakfree did not spawn ({verdict})\n     \
                 hint: {UNTRACKED_HINT}",
                plural(untracked.alive, "task", "tasks"),
            )?;
        }
        if let Some(blocking) = self.untracked_blocking().filter(|b| *b > 0) {
            writeln!(
                f,
                "  untracked: {} busy with blocking work leakfree did not spawn \
                 (plain spawn_blocking): it cannot be located or aborted; \
                 spawn it with leakfree_runtime::spawn_blocking",
                plural(blocking, "blocking-pool thread", "blocking-pool threads"),
            )?;
        }
        for panic in &self.panics {
            let mut label = match panic.id {
                Some(id) => format!("task {id}"),
                None => "task".to_owned(),
            };
            if let Some(name) = &panic.name {
                label.push_str(&format!(" {name:?}"));
            }
            writeln!(
                f,
                "  panicked: {label} spawned at {} panicked and no JoinHandle observed it: {}",
                panic.location, panic.message
            )?;
        }
        for zombie in &self.zombies {
            writeln!(
                f,
                "  zombie: {} spawned at {} still alive after abort ({})",
                task_label(zombie),
                zombie.location,
                match zombie.kind {
                    TaskKind::Blocking => "blocking code cannot be aborted",
                    TaskKind::Async => "a poll that does not return",
                }
            )?;
        }
        if self.untracked.is_some() {
            writeln!(f, "  not seen: {BLIND_SPOTS}")?;
        }
        let mut left = Vec::new();
        if self.unabortable > 0 {
            left.push(plural(self.unabortable, "hooked task", "hooked tasks"));
        }
        if let Some(u) = self.untracked.filter(|u| u.alive > 0) {
            left.push(plural(u.alive, "untracked task", "untracked tasks"));
        }
        let untracked_left = if left.is_empty() {
            String::new()
        } else {
            format!(", {} left to the runtime's shutdown", left.join(" and "))
        };
        write!(
            f,
            "  enforced: {} aborted, {}{untracked_left}",
            self.aborted,
            plural(self.zombies.len(), "zombie", "zombies")
        )
    }
}
