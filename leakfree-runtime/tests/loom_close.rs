//! Model check of `src/task/abort_slot.rs` with loom: a scope's close racing with
//! spawns into it and with tasks finishing, every interleaving bounded to
//! three preemptions. The scope's table is modelled as it is in
//! `src/registry/scope_shared.rs`: a mutex-guarded list the spawner registers in before
//! tokio has the task, the finisher removes from, and the closer snapshots.
//!
//! What must hold: every task registered in a scope that closes is aborted
//! (by the closer or by its own spawner) unless it finished first.

mod sync {
    pub(crate) use loom::cell;
    pub(crate) use loom::sync::atomic;
}

#[path = "../src/task/abort_slot.rs"]
#[allow(dead_code)]
mod abort_slot;

use abort_slot::{Abort, AbortSlot, start_closing};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A task in the model: how often it was aborted, and whether it finished.
#[derive(Default)]
struct Task {
    aborts: AtomicUsize,
    finished: AtomicBool,
}

/// The model's abort handle: counts aborts of its task.
struct Handle(Arc<Task>);

impl Abort for Handle {
    fn abort(&self) {
        self.0.aborts.fetch_add(1, Ordering::SeqCst);
    }
}

type Slot = Arc<AbortSlot<Handle>>;

/// The scope: its `closing` flag and its table of registered slots.
#[derive(Default)]
struct Scope {
    closing: AtomicBool,
    table: Mutex<Vec<(usize, Slot)>>,
}

impl Scope {
    fn register(&self, key: usize, slot: &Slot) {
        self.table.lock().unwrap().push((key, slot.clone()));
    }
    fn deregister(&self, key: usize) {
        self.table.lock().unwrap().retain(|(k, _)| *k != key);
    }
    /// What `ScopeShared::close` does: flag (and fence), snapshot, abort each.
    fn close(&self) {
        start_closing(&self.closing);
        let live: Vec<Slot> = self
            .table
            .lock()
            .unwrap()
            .iter()
            .map(|(_, slot)| slot.clone())
            .collect();
        for slot in live {
            slot.abort();
        }
    }
}

fn model(body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(body);
}

/// One spawn in a thread: register, (tokio takes the task), attach.
fn spawn(scope: &Arc<Scope>, key: usize) -> (thread::JoinHandle<()>, Arc<Task>) {
    let task = Arc::new(Task::default());
    let spawner = {
        let scope = scope.clone();
        let task = task.clone();
        thread::spawn(move || {
            let slot: Slot = Arc::new(AbortSlot::new());
            scope.register(key, &slot);
            // SAFETY: the slot's one attach, by its spawner.
            unsafe { slot.attach(Handle(task), &scope.closing) };
        })
    };
    (spawner, task)
}

#[test]
fn a_spawn_racing_the_close_is_always_aborted() {
    model(|| {
        let scope = Arc::new(Scope::default());
        let (spawner, task) = spawn(&scope, 0);
        scope.close();
        spawner.join().unwrap();
        assert!(
            task.aborts.load(Ordering::SeqCst) >= 1,
            "a task registered in a closing scope escaped"
        );
    });
}

#[test]
fn two_spawns_and_a_close_from_another_thread() {
    model(|| {
        let scope = Arc::new(Scope::default());
        let (first, first_task) = spawn(&scope, 0);
        let (second, second_task) = spawn(&scope, 1);
        let closer = {
            let scope = scope.clone();
            thread::spawn(move || scope.close())
        };
        first.join().unwrap();
        second.join().unwrap();
        closer.join().unwrap();
        for task in [first_task, second_task] {
            assert!(task.aborts.load(Ordering::SeqCst) >= 1, "a task escaped");
        }
    });
}

/// A task that finishes (and leaves the table) while the scope closes is
/// either aborted harmlessly or already gone; one that has not finished is
/// aborted.
#[test]
fn a_finish_racing_the_close() {
    model(|| {
        let scope = Arc::new(Scope::default());
        let task = Arc::new(Task::default());
        let slot: Slot = Arc::new(AbortSlot::new());
        scope.register(0, &slot);
        // SAFETY: the slot's one attach.
        unsafe { slot.attach(Handle(task.clone()), &scope.closing) };

        let finisher = {
            let scope = scope.clone();
            let task = task.clone();
            thread::spawn(move || {
                task.finished.store(true, Ordering::SeqCst);
                scope.deregister(0);
            })
        };
        scope.close();
        let aborted = task.aborts.load(Ordering::SeqCst) >= 1;
        let finished = task.finished.load(Ordering::SeqCst);
        assert!(
            aborted || finished,
            "the close missed a task that had not finished"
        );
        finisher.join().unwrap();
    });
}
