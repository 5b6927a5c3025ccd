//! A scope's timeout: a wall-clock deadline on its body, and what the scope
//! looked like when it ran out.
//!
//! The deadline is kept by a thread of its own, not by tokio's timer: a test
//! with a paused clock (`start_paused`) auto-advances tokio's time whenever
//! it is idle, so a tokio timer would fire at once in exactly the hung test
//! it is meant to end, and a long (virtual) sleep would look hung. The
//! thread waits on a channel with a timeout: dropping the [`Deadline`] (the
//! body finished) disconnects the channel and ends the thread at once.
//!
//! # Invariants
//! - The waker is stored before the thread can read it: the thread is only
//!   started by the first poll, after that poll stored its waker.
//! - `fired` is set before the waker is woken, so a poll woken by the
//!   thread sees it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::stuck_at;
use crate::instrument::{self, PollSample, hooked_tasks};
use crate::registry::ScopeShared;
use crate::report::{TaskInfo, Timeout};

/// What the deadline's thread and its future share.
#[derive(Debug, Default)]
struct Shared {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// Ready once `after` has passed on the wall clock, counted from the first
/// poll.
#[derive(Debug)]
pub(crate) struct Deadline {
    after: Duration,
    shared: Arc<Shared>,
    /// Dropped with the deadline: that ends the thread's wait.
    stop: Option<mpsc::Sender<()>>,
    /// Which workers were inside a poll when the deadline was armed, so that
    /// a dump at the timeout is not requested while one has been stuck in a
    /// poll since (see [`stuck_at::attach`]).
    armed: Option<PollSample>,
}

impl Deadline {
    pub(crate) fn new(after: Duration) -> Deadline {
        Deadline {
            after,
            shared: Arc::default(),
            stop: None,
            armed: None,
        }
    }

    fn arm(&mut self) {
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = self.shared.clone();
        let after = self.after;
        let spawned = thread::Builder::new()
            .name("leakfree-timeout".to_owned())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(after) {
                    shared.fired.store(true, Ordering::Release);
                    if let Some(waker) = shared.waker.lock().take() {
                        waker.wake();
                    }
                }
            });
        if spawned.is_err() {
            // No thread, no timeout: the body runs unbounded, as it would
            // without one.
            return;
        }
        self.stop = Some(stop);
        self.armed = Some(instrument::sample());
    }
}

impl Future for Deadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *self.shared.waker.lock() = Some(cx.waker().clone());
        if self.stop.is_none() && self.armed.is_none() {
            self.arm();
        }
        // The thread may have fired between the check and the store.
        if self.shared.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// The scope at its timeout: every task alive in it (tracked and hooked),
/// with states, and where dumps are taken, where each is stuck; plus where
/// the body was (`body_stuck_at`, from a traced poll of it).
pub(crate) async fn snapshot(
    scope: &ScopeShared,
    deadline: &Deadline,
    body_stuck_at: Vec<String>,
) -> Timeout {
    let now = Instant::now();
    let mut tasks: Vec<TaskInfo> = scope
        .live_records()
        .iter()
        .map(|record| record.info(now))
        .collect();
    tasks.extend(hooked_tasks(scope).iter().map(|task| task.info(now)));
    if let Some(armed) = deadline.armed.as_ref().filter(|_| !tasks.is_empty()) {
        tasks = stuck_at::attach(tasks, armed).await;
    }
    Timeout::new(deadline.after, body_stuck_at, tasks)
}
