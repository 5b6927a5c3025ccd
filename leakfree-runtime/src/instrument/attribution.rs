//! The spawn hook's attribution map (`--cfg tokio_unstable`): every
//! `tokio::spawn`, third-party code included, attributed to the scope it was
//! spawned in.
//!
//! `on_task_spawn` runs on the spawning thread before the child is scheduled:
//! - inside scoped work (a scope's body or a tracked task being polled) the
//!   current context names the scope;
//! - inside a task that was itself attributed by this hook, `task::try_id()`
//!   is that parent, and the attribution map names its scope: grandchildren
//!   of any depth land in the same scope.
//!
//! Tasks leakfree spawns itself are skipped here (an [`OwnSpawn`] guard is
//! held around its own `tokio::spawn` calls): their records already say more.
//! `on_task_terminate` removes the attribution and tells the scope, so a
//! scope's settle is woken by these tasks' ends too, not only by polling.
//!
//! # Invariants
//! - An id is in the attribution map from its spawn hook to its terminate
//!   hook (which tokio also calls for a task its runtime's shutdown drops).
//!   The map holds a strong reference to the task's scope, as a tracked
//!   task's wrapper does: a scope's shared state lives until its last
//!   attributed task ends (a reference taken and released once per task;
//!   a `Weak` cost a `downgrade` loop, an `upgrade` loop and two drops).
//! - The map is sharded by id; one shard lock is held at a time, and never
//!   while calling into a scope.
//! - The map is the only record of a hooked task's location and age; its
//!   scope keeps counts, and [`hooked_tasks`] finds its tasks by scanning the
//!   map, which only reports and the live view do.

use std::cell::Cell;
use std::hash::{BuildHasher, BuildHasherDefault};
use std::panic::Location;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::runtime::{Builder, TaskMeta};
use tokio::task::Id;

use super::id_hash::{IdHasher, IdMap};
use crate::registry::ScopeShared;
use crate::registry::context;
use crate::report::{TaskInfo, TaskKind};
use crate::task::SpawnInstant;

/// A task attributed by the spawn hook.
struct Attribution {
    scope: Arc<ScopeShared>,
    /// Let out of the scope by a location filter: counted as known, not judged.
    ignored: bool,
    location: &'static Location<'static>,
    spawned_at: SpawnInstant,
}

/// Shards of the attribution map, so that workers spawning and ending tasks
/// at the same time rarely wait for each other.
const SHARDS: usize = 16;

type Shard = Mutex<IdMap<Id, Attribution>>;

static ATTRIBUTIONS: LazyLock<[Shard; SHARDS]> =
    LazyLock::new(|| std::array::from_fn(|_| Mutex::new(IdMap::default())));

/// The shard that holds `id`.
fn shard(id: Id) -> &'static Shard {
    let hash = BuildHasherDefault::<IdHasher>::default().hash_one(id);
    // Bits the shard's own table does not use: it takes its bucket from the
    // low bits and its control bytes from the top seven.
    &ATTRIBUTIONS[(hash >> 40) as usize % SHARDS]
}

/// A task leakfree did not spawn, attributed to a scope by tokio's spawn hook.
#[derive(Debug, Clone)]
pub(crate) struct HookedTask {
    id: Id,
    location: &'static Location<'static>,
    spawned_at: SpawnInstant,
}

impl HookedTask {
    /// The task as a report or the live view shows it.
    pub(crate) fn info(&self, now: Instant) -> TaskInfo {
        TaskInfo::hooked(self.id, self.location, self.spawned_at.age(now))
    }
}

/// The hooked tasks attributed to `scope` and alive now (the map is the one
/// place that keeps their locations and ages; reports and the live view read
/// it here).
pub(crate) fn hooked_tasks(scope: &ScopeShared) -> Vec<HookedTask> {
    let mut tasks = Vec::new();
    if scope.hooked_live() == 0 {
        return tasks;
    }
    for shard in ATTRIBUTIONS.iter() {
        let shard = shard.lock();
        tasks.extend(
            shard
                .iter()
                .filter(|(_, a)| !a.ignored && std::ptr::eq(Arc::as_ptr(&a.scope), scope))
                .map(|(id, a)| HookedTask {
                    id: *id,
                    location: a.location,
                    spawned_at: a.spawned_at,
                }),
        );
    }
    tasks
}

thread_local! {
    static SPAWNING_OWN: Cell<bool> = const { Cell::new(false) };
}

/// Marks the thread as running one of leakfree's own `tokio::spawn` calls
/// until dropped, so the spawn hook skips it. A guard rather than a closure,
/// so `#[track_caller]` still reaches tokio.
pub(crate) struct OwnSpawn {
    previous: bool,
}

impl OwnSpawn {
    pub(crate) fn enter() -> OwnSpawn {
        let previous = SPAWNING_OWN
            .try_with(|flag| flag.replace(true))
            .unwrap_or(false);
        OwnSpawn { previous }
    }
}

impl Drop for OwnSpawn {
    fn drop(&mut self) {
        let _ = SPAWNING_OWN.try_with(|flag| flag.set(self.previous));
    }
}

/// Adds the spawn and terminate hooks to a runtime builder.
pub(crate) fn install_spawn_hooks(builder: &mut Builder) -> &mut Builder {
    builder
        .on_task_spawn(on_task_spawn)
        .on_task_terminate(on_task_terminate)
}

/// leakfree's spawn hook; call it from your own `on_task_spawn` if you have one.
pub fn on_task_spawn(meta: &TaskMeta<'_>) {
    if SPAWNING_OWN.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    let location = meta.spawned_at();
    // Inside scoped work the scope is read in place (no reference taken but
    // the map's own); else the parent task's attribution names it.
    let attribution = context::with_current(|current| {
        current.map(|current| attribute(current.scope.clone(), location))
    })
    .or_else(|| spawning_scope_of_parent().map(|scope| attribute(scope, location)));
    if let Some(attribution) = attribution {
        shard(meta.id()).lock().insert(meta.id(), attribution);
    }
}

/// Counts a task spawned at `location` in `scope`, and what the map keeps.
fn attribute(scope: Arc<ScopeShared>, location: &'static Location<'static>) -> Attribution {
    let filters = &scope.settings.filters;
    let ignored = !scope.settings.judge_plain_spawns
        || (!filters.is_empty() && filters.ignores(None, location));
    if ignored {
        scope.ignored_task_started(TaskKind::Async);
    } else {
        scope.hooked_task_started();
    }
    Attribution {
        scope,
        ignored,
        location,
        spawned_at: SpawnInstant::now(),
    }
}

/// leakfree's terminate hook; call it from your own `on_task_terminate` if
/// you have one.
pub fn on_task_terminate(meta: &TaskMeta<'_>) {
    let attribution = shard(meta.id()).lock().remove(&meta.id());
    let Some(attribution) = attribution else {
        return;
    };
    if attribution.ignored {
        attribution.scope.ignored_task_ended(TaskKind::Async);
    } else {
        attribution.scope.hooked_task_ended();
    }
}

/// The scope of a `tokio::spawn` made outside scoped work: its parent
/// task's, when the parent was attributed by this hook.
fn spawning_scope_of_parent() -> Option<Arc<ScopeShared>> {
    let parent = tokio::task::try_id()?;
    let attributions = shard(parent).lock();
    let attribution = attributions.get(&parent)?;
    if attribution.ignored {
        return None;
    }
    Some(attribution.scope.clone())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::registry::context;

    /// The map holds a task's scope until the task ends: a plain
    /// `tokio::spawn` that outlives its scope keeps the scope's state (as a
    /// tracked task's wrapper does), and its end, seen by tokio's terminate
    /// hook, frees it. On a `current_thread` runtime that hook has run by
    /// the time the task's `JoinHandle` returns.
    #[test]
    fn the_map_keeps_a_scope_until_its_last_attributed_task_ends() {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        builder.enable_time();
        crate::hooks::install(&mut builder);
        let runtime = builder.build().expect("a runtime");
        runtime.block_on(async {
            let (release, released) = tokio::sync::oneshot::channel::<()>();
            let ((state, task), report) = crate::Scope::builder("outlived")
                .grace(Duration::ZERO)
                .build()
                .run_and_report(async move {
                    let state = Arc::downgrade(&context::current().expect("in the scope").scope);
                    let task = tokio::spawn(async move {
                        let _ = released.await;
                    });
                    (state, task)
                })
                .await;
            assert_eq!(
                report.leaked().len(),
                1,
                "attributed and reported: {report}"
            );
            drop(report);
            assert!(
                state.upgrade().is_some(),
                "the attributed task keeps its scope's state after the scope"
            );
            release.send(()).expect("the task waits");
            task.await.expect("the task ends");
            assert!(
                state.upgrade().is_none(),
                "the task's end gives the scope's state back"
            );
        });
    }
}
