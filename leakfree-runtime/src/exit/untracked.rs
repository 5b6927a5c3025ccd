//! Counting tasks leakfree did not spawn, from the runtime's own metrics.
//!
//! A scope that owns its runtime (a test) knows that every task alive on it
//! was started by its code. `RuntimeMetrics::num_alive_tasks` minus the tasks
//! alive when the scope began minus the tasks leakfree knows of is the number
//! of untracked survivors.
//!
//! tokio drops a task's future (which is when leakfree forgets it) slightly
//! before it removes the task from `num_alive_tasks`, on the worker that ran
//! it, and stable tokio gives no event for that removal. So this one wait polls:
//! it yields to the scheduler first and then backs off exponentially from
//! 50us, bounded by the scope's deadline. It ends as soon as the count holds;
//! a clean scope on a current-thread runtime needs no wait at all.

use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::Instant;

use crate::registry::ScopeShared;
#[cfg(tokio_unstable)]
use crate::report::{TaskKind, TaskState};

/// The runtime's live task count when a scope began.
#[derive(Debug, Clone)]
pub(crate) struct Baseline {
    handle: Handle,
    alive_at_start: usize,
    /// Busy blocking-pool threads when the scope began (tokio exposes the
    /// pool's metrics only under `tokio_unstable`).
    #[cfg(tokio_unstable)]
    busy_blocking_at_start: usize,
}

impl Baseline {
    /// Reads the current runtime's count, if there is a runtime.
    pub(crate) fn capture() -> Option<Baseline> {
        let handle = Handle::try_current().ok()?;
        let alive_at_start = handle.metrics().num_alive_tasks();
        Some(Baseline {
            #[cfg(tokio_unstable)]
            busy_blocking_at_start: busy_blocking_threads(&handle),
            handle,
            alive_at_start,
        })
    }

    /// Tasks alive now that neither predate the scope nor are known to it.
    pub(crate) fn untracked(&self, scope: &ScopeShared) -> usize {
        self.handle
            .metrics()
            .num_alive_tasks()
            .saturating_sub(self.alive_at_start)
            .saturating_sub(scope.known_live())
    }

    /// Blocking-pool threads busy now with work leakfree did not spawn
    /// (plain `spawn_blocking`); `None` where tokio does not expose the
    /// pool's metrics (builds without `tokio_unstable`).
    pub(crate) fn untracked_blocking(&self, scope: &ScopeShared) -> Option<usize> {
        #[cfg(tokio_unstable)]
        {
            Some(
                busy_blocking_threads(&self.handle)
                    .saturating_sub(self.busy_blocking_at_start)
                    .saturating_sub(running_blocking(scope)),
            )
        }
        #[cfg(not(tokio_unstable))]
        {
            let _ = scope;
            None
        }
    }

    /// Waits until no untracked task is alive, or `deadline`; returns the
    /// count at the end.
    pub(crate) async fn settle(&self, scope: &ScopeShared, deadline: Instant) -> usize {
        const YIELDS: u32 = 16;
        let mut backoff = Duration::from_micros(50);
        let mut attempt = 0;
        loop {
            let untracked = self.untracked(scope);
            let blocking = self.untracked_blocking(scope).unwrap_or(0);
            if (untracked == 0 && blocking == 0) || Instant::now() >= deadline {
                return untracked;
            }
            if attempt < YIELDS {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep_until(deadline.min(Instant::now() + backoff)).await;
                backoff = (backoff * 2).min(Duration::from_millis(5));
            }
            attempt += 1;
        }
    }
}

/// Tracked blocking closures running now (they occupy pool threads too).
#[cfg(tokio_unstable)]
fn running_blocking(scope: &ScopeShared) -> usize {
    scope
        .live_records()
        .iter()
        .filter(|record| record.kind == TaskKind::Blocking && record.state() == TaskState::Running)
        .count()
}

#[cfg(tokio_unstable)]
fn busy_blocking_threads(handle: &Handle) -> usize {
    let metrics = handle.metrics();
    metrics
        .num_blocking_threads()
        .saturating_sub(metrics.num_idle_blocking_threads())
}
