//! Reports as JSON (feature `serde`): `serde::Serialize` for [`LeakReport`]
//! and its parts, and [`LeakReport::to_json`]. The impls are written by hand
//! so that the shape is explicit here, does not follow the private fields,
//! and changes only with [`VERSION`].
//!
//! # The shape, version 1
//! ```json
//! {
//!   "version": 1,
//!   "scope": "worker_stops",
//!   "clean": false,
//!   "grace_ms": 100,
//!   "grace_ns": 100000000,
//!   "spawned": 2,
//!   "leaked": [
//!     {
//!       "id": 12,
//!       "name": "worker",
//!       "kind": "async",
//!       "location": { "file": "src/worker.rs", "line": 42, "column": 5 },
//!       "age_ms": 100,
//!       "age_ns": 100412345,
//!       "state": "waiting",
//!       "wakers": 1,
//!       "stuck_at": []
//!     }
//!   ],
//!   "groups": [
//!     {
//!       "count": 1,
//!       "name": "worker",
//!       "kind": "async",
//!       "location": { "file": "src/worker.rs", "line": 42, "column": 5 },
//!       "state": "waiting",
//!       "wakers": 1,
//!       "task_ids": [12]
//!     }
//!   ],
//!   "zombies": [],
//!   "panics": [
//!     {
//!       "id": 13,
//!       "name": null,
//!       "location": { "file": "src/worker.rs", "line": 50, "column": 9 },
//!       "message": "index out of bounds"
//!     }
//!   ],
//!   "untracked": null,
//!   "aborted": 1,
//!   "ignored": 0,
//!   "background_cancelled": 0,
//!   "text": "leakfree: 1 task leaked and 1 task panic never observed from `worker_stops` (grace 100ms)\n  1) task 12 \"worker\" ..."
//! }
//! ```
//!
//! - Every field is always present; what is unknown is `null` (a task's
//!   `id` or `name`, `wakers` outside `"waiting"`, `untracked` for scopes
//!   that do not count untracked tasks).
//! - `state` is one of `"blocked_forever"` (no waker exists: nothing can
//!   wake it), `"waiting"` (`wakers` clones of its waker are held),
//!   `"scheduled"`, `"running"`, `"unknown"` (a plain `tokio::spawn` task
//!   seen by tokio's spawn hook). `kind` is `"async"` or `"blocking"`.
//! - `leaked` and `zombies` are task objects; `groups` folds `leaked` as
//!   [`LeakReport::groups`] does; `stuck_at` lists the frames of a task
//!   dump, root first (empty without one).
//! - `untracked`, when counted: `{ "alive": 2, "blocking": null, "fails_scope":
//!   true }` (`blocking` is `null` where the build cannot see the blocking
//!   pool).
//! - Durations are given twice: whole milliseconds (rounded down) to read,
//!   nanoseconds to compute with (saturating at `u64::MAX`).
//! - `text` is the report as a failing test prints it.
//!
//! # Invariants
//! A field is added only with a new `"version"`, and none is ever renamed
//! within one; the strings of `state` and `kind` are part of the shape.

use std::panic::Location;
use std::time::Duration;

use serde::ser::{Serialize, SerializeStruct, Serializer};
use tokio::task::Id;

use super::group::LeakGroup;
use super::leak_report::{LeakReport, TaskPanic};
use super::task_info::{TaskInfo, TaskKind, TaskState};

/// The `"version"` of the JSON shape this build writes (the shape above).
pub const VERSION: u32 = 1;

impl LeakReport {
    /// The report as pretty-printed JSON, in the shape documented in
    /// [`report::json`](crate::report::json) (version 1): what the files
    /// written to `LEAKFREE_REPORT_DIR` hold.
    pub fn to_json(&self) -> String {
        // The shape has no maps and no fallible fields: it always serializes.
        serde_json::to_string_pretty(self).expect("a LeakReport always serializes to JSON")
    }
}

impl Serialize for LeakReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("LeakReport", 15)?;
        s.serialize_field("version", &VERSION)?;
        s.serialize_field("scope", self.scope_name())?;
        s.serialize_field("clean", &self.is_clean())?;
        s.serialize_field("grace_ms", &millis(self.grace()))?;
        s.serialize_field("grace_ns", &nanos(self.grace()))?;
        s.serialize_field("spawned", &self.spawned())?;
        s.serialize_field("leaked", self.leaked())?;
        s.serialize_field("groups", &self.groups())?;
        s.serialize_field("zombies", self.zombies())?;
        s.serialize_field("panics", self.panics())?;
        s.serialize_field("untracked", &Untracked::of(self))?;
        s.serialize_field("aborted", &self.aborted())?;
        s.serialize_field("ignored", &self.ignored())?;
        s.serialize_field("background_cancelled", &self.background_cancelled())?;
        s.serialize_field("text", &self.to_string())?;
        s.end()
    }
}

impl Serialize for TaskInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("TaskInfo", 9)?;
        s.serialize_field("id", &self.id().map(TaskId))?;
        s.serialize_field("name", &self.name())?;
        s.serialize_field("kind", &self.kind())?;
        s.serialize_field("location", &Site(self.location()))?;
        s.serialize_field("age_ms", &millis(self.age()))?;
        s.serialize_field("age_ns", &nanos(self.age()))?;
        s.serialize_field("state", &self.state())?;
        s.serialize_field("wakers", &wakers(self.state()))?;
        s.serialize_field("stuck_at", self.stuck_at())?;
        s.end()
    }
}

impl Serialize for LeakGroup<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let first = self.first();
        let ids: Vec<Option<TaskId>> = self.tasks().iter().map(|t| t.id().map(TaskId)).collect();
        let mut s = serializer.serialize_struct("LeakGroup", 7)?;
        s.serialize_field("count", &self.count())?;
        s.serialize_field("name", &self.name())?;
        s.serialize_field("kind", &first.kind())?;
        s.serialize_field("location", &Site(self.location()))?;
        s.serialize_field("state", &self.state())?;
        s.serialize_field("wakers", &wakers(self.state()))?;
        s.serialize_field("task_ids", &ids)?;
        s.end()
    }
}

impl Serialize for TaskPanic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("TaskPanic", 4)?;
        s.serialize_field("id", &self.id().map(TaskId))?;
        s.serialize_field("name", &self.name())?;
        s.serialize_field("location", &Site(self.location()))?;
        s.serialize_field("message", self.message())?;
        s.end()
    }
}

/// The state's stable name; a waiting task's waker count is a field of the
/// task beside it (`"wakers"`).
impl Serialize for TaskState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            TaskState::BlockedForever => "blocked_forever",
            TaskState::Waiting { .. } => "waiting",
            TaskState::Scheduled => "scheduled",
            TaskState::Running => "running",
            TaskState::Unknown => "unknown",
        })
    }
}

/// `"async"` or `"blocking"`.
impl Serialize for TaskKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            TaskKind::Async => "async",
            TaskKind::Blocking => "blocking",
        })
    }
}

/// A spawn site: `{ "file", "line", "column" }`.
struct Site(&'static Location<'static>);

impl Serialize for Site {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Location", 3)?;
        s.serialize_field("file", self.0.file())?;
        s.serialize_field("line", &self.0.line())?;
        s.serialize_field("column", &self.0.column())?;
        s.end()
    }
}

/// tokio's task id as the number its `Display` prints.
struct TaskId(Id);

impl Serialize for TaskId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.0.to_string();
        match text.parse::<u64>() {
            Ok(number) => serializer.serialize_u64(number),
            // tokio prints ids as numbers; should that change, keep the text.
            Err(_) => serializer.serialize_str(&text),
        }
    }
}

/// `{ "alive", "blocking", "fails_scope" }`: what a scope that counts
/// untracked tasks saw of them.
struct Untracked {
    alive: usize,
    blocking: Option<usize>,
    fails_scope: bool,
}

impl Untracked {
    /// `None` when the scope did not count untracked tasks.
    fn of(report: &LeakReport) -> Option<Untracked> {
        let count = report.untracked_count()?;
        Some(Untracked {
            alive: count.alive(),
            blocking: report.untracked_blocking(),
            fails_scope: count.fails(),
        })
    }
}

impl Serialize for Untracked {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Untracked", 3)?;
        s.serialize_field("alive", &self.alive)?;
        s.serialize_field("blocking", &self.blocking)?;
        s.serialize_field("fails_scope", &self.fails_scope)?;
        s.end()
    }
}

fn wakers(state: TaskState) -> Option<usize> {
    match state {
        TaskState::Waiting { wakers } => Some(wakers),
        _ => None,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
