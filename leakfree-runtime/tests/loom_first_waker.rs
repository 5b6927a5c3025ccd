//! Model check, with loom, of the first-waker handoff in
//! `src/task/record.rs` (`RuntimeWaker`'s invariant): a task stores tokio's
//! waker only after its first poll that returns `Pending`, so a wake that
//! comes during that poll may find no waker to forward to. No such wake may
//! be lost: either the wake sees the stored waker, or the poller sees the
//! wake's `woken` flag and wakes the task itself.
//!
//! The woken flag is the real `src/task/wake_state.rs`, compiled here
//! against loom's atomics. The waker slot is modelled by its state word:
//! `OnceLock::set` completes with a release swap of it, and
//! `OnceLock::get` is an acquire load of it. The steps of
//! `TaskRecord::poll_pending` and `RuntimeWaker::wake` are replayed with the
//! same orderings and fences; `without_the_fences_a_wake_can_be_lost`
//! shows the model finds the lost wake when the fences are taken out.

mod sync {
    pub(crate) use loom::sync::atomic;
}

// Only the woken flag's half is used here (the verdict's is in
// `loom_wake_state.rs`).
#[allow(dead_code)]
#[path = "../src/task/wake_state.rs"]
mod wake_state;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use loom::thread;

use wake_state::WakeState;

/// One task in its first poll, with a waker clone handed to another thread.
struct Task {
    state: WakeState,
    /// The `OnceLock`'s state word: set once the runtime's waker is stored.
    stored: AtomicBool,
    /// Wakes that reached the runtime (the task will be polled again).
    runtime_wakes: AtomicUsize,
}

impl Task {
    fn new() -> Task {
        let task = Task {
            state: WakeState::new(),
            stored: AtomicBool::new(false),
            runtime_wakes: AtomicUsize::new(0),
        };
        task.state.begin_poll(true);
        task
    }

    fn runtime_wake(&self) {
        self.runtime_wakes.fetch_add(1, Ordering::Relaxed);
    }

    /// `RuntimeWaker::wake` through the record's `wake_by_ref`.
    fn wake(&self, fences: bool) {
        self.state.note_wake();
        if self.stored.load(Ordering::Acquire) {
            self.runtime_wake();
            return;
        }
        if fences {
            fence(Ordering::SeqCst);
        }
        if self.stored.load(Ordering::Acquire) {
            self.runtime_wake();
        }
    }

    /// The poll returns `Pending`: `end_poll`, then `poll_pending`.
    fn poll_pending(&self, fences: bool) {
        self.state.end_poll();
        self.stored.swap(true, Ordering::Release);
        if fences {
            fence(Ordering::SeqCst);
        }
        if self.state.is_woken() {
            self.runtime_wake();
        }
    }
}

fn handoff(fences: bool) {
    loom::model(move || {
        let task = Arc::new(Task::new());
        let waker = {
            let task = task.clone();
            thread::spawn(move || task.wake(fences))
        };
        task.poll_pending(fences);
        waker.join().unwrap();
        assert!(
            task.runtime_wakes.load(Ordering::Relaxed) >= 1,
            "a wake during the first poll was lost"
        );
    });
}

#[test]
fn a_wake_during_the_first_pending_poll_always_reaches_the_runtime() {
    handoff(true);
}

#[test]
#[should_panic(expected = "a wake during the first poll was lost")]
fn without_the_fences_a_wake_can_be_lost() {
    handoff(false);
}
