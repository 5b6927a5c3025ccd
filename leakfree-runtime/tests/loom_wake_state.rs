//! Model check of `src/task/wake_state.rs`, the lock-free core of the
//! blocked-forever verdict, with loom: every interleaving of a task's polls,
//! a waker's wake or drop, and concurrent reads (and the stale reads loom
//! models for each ordering), bounded to three preemptions per execution.
//!
//! The source file is compiled here unchanged, against loom's atomics (this
//! crate's `sync` module). A task's references are counted the way std's
//! `Arc` counts them (clone: `Relaxed` add; drop: `Release` sub; count:
//! `Relaxed` load, the weakest std uses), since the real record is a std
//! `Arc` and its waker.
//!
//! What must hold: a read never answers "blocked forever" while a waker
//! exists or a wake is pending, and at quiescence it answers exactly what the
//! task's situation is.

mod sync {
    pub(crate) use loom::sync::atomic;
}

#[path = "../src/task/wake_state.rs"]
mod wake_state;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

use wake_state::{Observed, WakeState};

/// References the task wrapper holds in this model (the real wrapper holds
/// two; only the difference to the count matters).
const WRAPPER_REFS: usize = 1;
/// The reader's own reference.
const READER_REFS: usize = 1;

struct Shared {
    state: WakeState,
    strong: AtomicUsize,
}

/// One strong reference to a task, counted like std's `Arc`.
struct TaskRef(Arc<Shared>);

impl TaskRef {
    fn new() -> TaskRef {
        TaskRef(Arc::new(Shared {
            state: WakeState::new(),
            strong: AtomicUsize::new(1),
        }))
    }

    fn clone_ref(&self) -> TaskRef {
        self.0.strong.fetch_add(1, Ordering::Relaxed);
        TaskRef(self.0.clone())
    }

    /// What `Wake::wake` does: mark, wake the runtime's waker (`schedule`),
    /// then drop this reference.
    fn wake(self, schedule: impl FnOnce()) {
        self.0.state.note_wake();
        schedule();
    }

    /// What `TaskRecord::state` reads, with `self` as the reader's reference.
    fn observe(&self) -> Observed {
        self.0
            .state
            .observe(|| self.0.strong.load(Ordering::Relaxed))
    }

    /// One poll of the task; `park` leaves a waker clone behind (a timer,
    /// channel or socket keeping it), as a poll returning `Pending` does.
    fn poll(&self, park: Option<&Mutex<Option<TaskRef>>>) {
        self.0.state.begin_poll(true);
        if let Some(slot) = park {
            *slot.lock().unwrap() = Some(self.clone_ref());
        }
        self.0.state.end_poll();
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        self.0.strong.fetch_sub(1, Ordering::Release);
    }
}

fn blocked_forever(seen: Observed) -> bool {
    matches!(seen, Observed::Idle { references, .. } if references <= WRAPPER_REFS + READER_REFS)
}

fn model(body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(body);
}

/// A poll parks a waker; another thread wakes through it (or, if it comes
/// first, finds nothing and leaves). Either way the task can be woken at
/// every moment: no read may say blocked forever.
#[test]
fn a_parked_waker_is_never_blocked_forever() {
    model(|| {
        let task = TaskRef::new();
        let reader = task.clone_ref();
        let parked = Arc::new(Mutex::new(None::<TaskRef>));

        let waker_side = {
            let parked = parked.clone();
            thread::spawn(move || {
                let waker = parked.lock().unwrap().take();
                waker.map(|waker| waker.wake(|| {})).is_some()
            })
        };
        let poller = {
            let parked = parked.clone();
            thread::spawn(move || {
                task.poll(Some(&parked));
                task // the wrapper's reference lives as long as the task
            })
        };

        let seen = reader.observe();
        assert!(!blocked_forever(seen), "read {seen:?} while a waker exists");

        let woke = waker_side.join().unwrap();
        let _task = poller.join().unwrap();
        let settled = reader.observe();
        if woke {
            assert_eq!(settled, Observed::Woken);
        } else {
            assert_eq!(
                settled,
                Observed::Idle {
                    references: WRAPPER_REFS + READER_REFS + 1,
                    polls: 1
                }
            );
        }
    });
}

/// Woken, the task is polled again and this time leaves no waker: only after
/// that second poll ends is it blocked forever. A read that says so must have
/// seen two finished polls (the race between the wake, the second poll's
/// clearing of `woken` and the read).
#[test]
fn blocked_forever_only_after_the_poll_that_dropped_the_last_waker() {
    model(|| {
        let task = TaskRef::new();
        let reader = task.clone_ref();
        let parked = Arc::new(Mutex::new(None::<TaskRef>));
        let scheduled = Arc::new(AtomicBool::new(false));

        // Poll 1 happens before anyone else runs: the waker is parked.
        task.poll(Some(&parked));

        let waker_side = {
            let parked = parked.clone();
            let scheduled = scheduled.clone();
            thread::spawn(move || {
                let waker = parked.lock().unwrap().take().unwrap();
                // The runtime's waker schedules the task; the poller polls it.
                waker.wake(|| scheduled.store(true, Ordering::Release));
            })
        };
        let poller = {
            let scheduled = scheduled.clone();
            thread::spawn(move || {
                if scheduled.load(Ordering::Acquire) {
                    task.poll(None); // poll 2: returns Pending, parks nothing
                }
                task
            })
        };

        let seen = reader.observe();
        if blocked_forever(seen) {
            assert!(
                matches!(seen, Observed::Idle { polls: 2, .. }),
                "blocked forever before the second poll ended: {seen:?}"
            );
        }

        waker_side.join().unwrap();
        let _task = poller.join().unwrap();
    });
}

/// A waker clone dropped without waking (a cancelled timer): the task is
/// waiting while it exists and blocked forever once it is gone. Two readers
/// at once only ever err towards waiting.
#[test]
fn a_dropped_waker_leaves_the_task_blocked_forever() {
    model(|| {
        let task = TaskRef::new();
        let reader = task.clone_ref();
        let other_reader = task.clone_ref();
        let parked = Arc::new(Mutex::new(None::<TaskRef>));
        task.poll(Some(&parked));

        let dropper = {
            let parked = parked.clone();
            thread::spawn(move || drop(parked.lock().unwrap().take()))
        };
        let concurrent = thread::spawn(move || {
            let seen = other_reader.observe();
            assert!(matches!(seen, Observed::Idle { polls: 1, .. }), "{seen:?}");
        });

        let seen = reader.observe();
        assert!(matches!(seen, Observed::Idle { polls: 1, .. }), "{seen:?}");

        dropper.join().unwrap();
        concurrent.join().unwrap();
        assert_eq!(
            reader.observe(),
            Observed::Idle {
                references: WRAPPER_REFS + READER_REFS,
                polls: 1
            },
            "no waker left: blocked forever"
        );
        drop(task);
    });
}
