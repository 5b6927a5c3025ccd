//! Which tracked tasks' panics reached their owner through a `JoinHandle`.
//!
//! A `JoinHandle` holds no reference to its task's record: one would keep
//! the record's memory until the handle is dropped and cost two
//! reference-count updates per task, for an event (a panic) most tasks never
//! have. Panics and handles meet here instead, by tokio task id, and only
//! when a panic happens or a handle is given up:
//!
//! - a tracked task that panics is *watched*: its record is entered by id
//!   ([`watch`]) before the panic continues to tokio, so before any handle
//!   can return it; the scope's verdict takes it out ([`unwatch`]), or the
//!   scope's drop if no verdict did;
//! - a `JoinHandle` that returns a panic marks the watched record observed
//!   ([`observed`]);
//! - a handle given up with `into_tokio` cannot tell any more: its id is
//!   *waived* ([`waive`]), and a later panic of that task counts as observed
//!   at once. A waived task's end takes its id out ([`task_ended`]), so the
//!   set holds only tasks alive now.
//!
//! # Invariants
//! - `WATCHED` holds exactly the panicked tracked tasks whose scope has
//!   neither judged them nor been dropped; `WAIVED` only live tasks whose handle was given up.
//! - `WAIVED_LEN` is `WAIVED`'s size, changed under its lock: a task's end
//!   reads it without the lock and takes the lock only when it is not zero,
//!   so programs that never call `into_tokio` never take that lock.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;
use tokio::task::Id;

use super::record::TaskRecord;

static WATCHED: LazyLock<Mutex<HashMap<Id, Arc<TaskRecord>>>> = LazyLock::new(Mutex::default);
static WAIVED: LazyLock<Mutex<HashSet<Id>>> = LazyLock::new(Mutex::default);
static WAIVED_LEN: AtomicUsize = AtomicUsize::new(0);

/// The task `id` (whose record is `record`) panicked; call before the panic
/// continues to tokio.
pub(crate) fn watch(id: Id, record: &Arc<TaskRecord>) {
    if WAIVED_LEN.load(Ordering::Acquire) != 0 && WAIVED.lock().contains(&id) {
        record.mark_panic_observed();
    }
    WATCHED.lock().insert(id, record.clone());
}

/// The scope judged the panic of task `id`.
pub(crate) fn unwatch(id: Id) {
    let removed = WATCHED.lock().remove(&id);
    drop(removed);
}

/// A `JoinHandle` returned the panic of task `id` to its owner.
pub(crate) fn observed(id: Id) {
    if let Some(record) = WATCHED.lock().get(&id) {
        record.mark_panic_observed();
    }
}

/// The handle of task `id` was given up: whatever it does now, its panic
/// counts as observed.
pub(crate) fn waive(id: Id) {
    // Panicked already: it is watched.
    observed(id);
    let mut waived = WAIVED.lock();
    if waived.insert(id) {
        WAIVED_LEN.store(waived.len(), Ordering::Release);
    }
}

/// The task of `record` ended (its future is gone).
pub(crate) fn task_ended(record: &TaskRecord) {
    if WAIVED_LEN.load(Ordering::Acquire) == 0 {
        return;
    }
    if let Some(id) = record.id() {
        let mut waived = WAIVED.lock();
        if waived.remove(&id) {
            WAIVED_LEN.store(waived.len(), Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{WAIVED, WATCHED};

    /// Both sets hold only what their invariants allow: once this test's
    /// panicking, joined and given-up tasks have come and gone, none of them
    /// is left in either (other tests may run beside it: only its own ids
    /// are looked for).
    #[test]
    fn the_sets_drain_when_their_tasks_are_judged_or_gone() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ids = runtime.block_on(async {
            let (ids, report) = crate::Scope::new("drain")
                .run_and_report(async {
                    let mut ids = Vec::new();
                    for _ in 0..10 {
                        let joined = crate::spawn(async { panic!("joined") });
                        ids.push(joined.id());
                        assert!(joined.await.unwrap_err().is_panic());
                        let given_up = crate::spawn(async {}).into_tokio();
                        ids.push(given_up.id());
                        given_up.await.unwrap();
                        let unjoined = crate::spawn(async { panic!("unjoined") });
                        ids.push(unjoined.id());
                        drop(unjoined);
                    }
                    tokio::task::yield_now().await;
                    ids
                })
                .await;
            assert_eq!(report.panics().len(), 10, "{report}");
            ids
        });
        let watched = WATCHED.lock();
        let waived = WAIVED.lock();
        for id in ids {
            assert!(!watched.contains_key(&id), "judged panics are unwatched");
            assert!(!waived.contains(&id), "ended tasks are no longer waived");
        }
    }

    /// A scope that never reaches a verdict takes its tasks' panics out of
    /// the watch when its state goes. Here: dropped outside any runtime
    /// while a task of it is still alive on a second, idle runtime, it can
    /// only close; its state goes with that task, when that runtime drops.
    #[test]
    fn a_scope_never_judged_unwatches_its_panics_when_it_goes() {
        let runtime = |_| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
        };
        let (first, idle) = (runtime(1), runtime(2));
        let scope = crate::Scope::new("never judged");
        let id = first.block_on(scope.enter(async {
            let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
            let handle = crate::spawn(async move {
                let _gone = gone_tx;
                panic!("never judged");
            });
            let _ = gone_rx.await;
            handle.id()
        }));
        {
            let _on_idle = idle.enter();
            drop(scope.spawn(std::future::pending::<()>()));
        }
        drop(first);
        drop(scope);
        assert!(WATCHED.lock().contains_key(&id), "no verdict was reached");
        drop(idle);
        assert!(
            !WATCHED.lock().contains_key(&id),
            "unwatched with the scope"
        );
    }
}
