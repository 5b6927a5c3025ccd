//! Identical leaks folded into one entry: tasks with the same spawn site,
//! kind, state and name, so a bus that leaks 1,026 workers from one line is
//! one entry, not 1,026.

use std::panic::Location;

use tokio::task::Id;

use super::task_info::{TaskInfo, TaskState};

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
        self.first().location()
    }
    /// Their common name, if they were spawned with one.
    pub fn name(&self) -> Option<&str> {
        self.first().name()
    }
    /// Their common state.
    pub fn state(&self) -> TaskState {
        self.first().state()
    }
    /// The tasks, ordered by id.
    pub fn tasks(&self) -> &[&'a TaskInfo] {
        &self.tasks
    }
    /// The group's first task (every group has one).
    pub(crate) fn first(&self) -> &'a TaskInfo {
        self.tasks[0]
    }
}

/// Groups tasks by spawn site, kind, state and name, in a stable order (by
/// location, then state, then name, then id).
pub(crate) fn group_tasks(tasks: &[TaskInfo]) -> Vec<LeakGroup<'_>> {
    let mut sorted: Vec<&TaskInfo> = tasks.iter().collect();
    sorted.sort_by_key(|t| sort_key(t));
    let mut groups: Vec<LeakGroup<'_>> = Vec::new();
    for task in sorted {
        match groups.last_mut() {
            Some(group) if same_group(group.first(), task) => group.tasks.push(task),
            _ => groups.push(LeakGroup { tasks: vec![task] }),
        }
    }
    groups
}

fn sort_key(task: &TaskInfo) -> (&'static str, u32, u32, u8, Option<&str>, Option<Id>) {
    let state = match task.state() {
        TaskState::BlockedForever => 0,
        TaskState::Waiting { .. } => 1,
        TaskState::Scheduled => 2,
        TaskState::Running => 3,
        _ => 4,
    };
    let location = task.location();
    (
        location.file(),
        location.line(),
        location.column(),
        state,
        task.name(),
        task.id(),
    )
}

fn same_group(a: &TaskInfo, b: &TaskInfo) -> bool {
    a.location() == b.location()
        && a.kind() == b.kind()
        && a.state() == b.state()
        && a.name() == b.name()
}
