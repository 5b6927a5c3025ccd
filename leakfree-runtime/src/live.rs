//! The live view: what a running service can print or serve about its
//! scopes and their tasks (the counterpart of Go's `/debug/pprof/goroutine`),
//! and counters a metrics system can scrape.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use leakfree_runtime::{Scope, live, spawn};
//!
//! let scope = Scope::new("request");
//! let text = scope.enter(async {
//!     let _worker = spawn(std::future::pending::<()>());
//!     tokio::task::yield_now().await;
//!     live::snapshot().to_string()
//! }).await;
//! assert!(text.contains("scope `request`"));
//! assert!(text.contains("blocked forever"));
//! let _ = scope.finish().await;
//! assert!(live::metrics().leaks_found >= 1);
//! # }
//! ```
//!
//! # Invariants
//! - The view only reads: the registry keeps the list of live scopes (every
//!   scope from [`ScopeBuilder::build`](crate::ScopeBuilder::build) until its
//!   shared state is dropped) and the exit protocol keeps the verdict totals;
//!   nothing below calls into this module. A scope is listed until its exit
//!   protocol has ended it.
//! - Counters are process-wide and only ever grow, except the gauges, which
//!   are computed when read.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::exit::{Totals, totals};
use crate::instrument::hooked_tasks;
use crate::registry::{ScopeShared, live_scopes};
use crate::report::{TaskInfo, group_tasks, human_duration, plural, site};

/// Process-wide counters and gauges, for a metrics system to scrape.
///
/// leakfree depends on no metrics library: read these on each scrape and set
/// your own gauges and counters from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Gauge: scopes running now.
    pub live_scopes: u64,
    /// Gauge: tracked tasks alive now, over all live scopes.
    pub live_tracked_tasks: u64,
    /// Counter: scopes that have ended.
    pub scopes_ended: u64,
    /// Counter: scopes that ended with a report that was not clean.
    pub scopes_with_leaks: u64,
    /// Counter: leaked tasks found (tracked, hooked and untracked).
    pub leaks_found: u64,
    /// Counter: tasks that did not go when aborted.
    pub zombies_found: u64,
    /// Counter: tracked task panics no `JoinHandle` observed.
    pub panics_unobserved: u64,
}

/// Reads the counters and computes the gauges.
pub fn metrics() -> Metrics {
    let scopes = live_scopes();
    let live: Vec<&Arc<ScopeShared>> = scopes.iter().filter(|s| !s.is_ended()).collect();
    let Totals {
        scopes_ended,
        scopes_with_leaks,
        leaks_found,
        zombies_found,
        panics_unobserved,
    } = totals();
    Metrics {
        live_scopes: live.len() as u64,
        live_tracked_tasks: live.iter().map(|s| s.all_live() as u64).sum(),
        scopes_ended,
        scopes_with_leaks,
        leaks_found,
        zombies_found,
        panics_unobserved,
    }
}

/// One live scope and its tracked tasks.
#[derive(Debug, Clone)]
pub struct ScopeView {
    name: String,
    age: Duration,
    tasks: Vec<TaskInfo>,
}

impl ScopeView {
    /// The scope's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// How long the scope has been running, by the clock task ages are
    /// read with: on Linux the kernel's coarse clock, so an age may be up
    /// to one kernel tick (1–10 ms) longer than the truth.
    pub fn age(&self) -> Duration {
        self.age
    }
    /// Its live tasks (tracked, and hooked ones with an unknown state).
    pub fn tasks(&self) -> &[TaskInfo] {
        &self.tasks
    }
}

/// Every live scope and its tasks at one moment. `Display` prints the
/// human form: scopes oldest first, tasks grouped by spawn site and state.
#[derive(Debug, Clone)]
pub struct LiveSnapshot {
    scopes: Vec<ScopeView>,
}

impl LiveSnapshot {
    /// The live scopes, oldest first.
    pub fn scopes(&self) -> &[ScopeView] {
        &self.scopes
    }

    /// All live tasks over all scopes.
    pub fn task_count(&self) -> usize {
        self.scopes.iter().map(|s| s.tasks.len()).sum()
    }
}

/// Takes a snapshot of every live scope and its tasks.
pub fn snapshot() -> LiveSnapshot {
    let now = Instant::now();
    let mut scopes: Vec<ScopeView> = live_scopes()
        .iter()
        .filter(|s| !s.is_ended())
        .map(|scope| ScopeView {
            name: scope.name.to_string(),
            age: scope.started.age(now),
            tasks: task_infos(scope, now),
        })
        .collect();
    scopes.sort_by_key(|scope| std::cmp::Reverse(scope.age));
    LiveSnapshot { scopes }
}

/// A scope's live tasks as the view shows them: its tracked records, then
/// the tasks tokio's spawn hook attributed to it.
fn task_infos(scope: &ScopeShared, now: Instant) -> Vec<TaskInfo> {
    let mut infos: Vec<TaskInfo> = scope
        .live_records()
        .iter()
        .map(|record| record.info(now))
        .collect();
    infos.extend(hooked_tasks(scope).iter().map(|task| task.info(now)));
    infos
}

impl fmt::Display for LiveSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "leakfree: {} live, {} live",
            plural(self.scopes.len(), "scope", "scopes"),
            plural(self.task_count(), "task", "tasks")
        )?;
        for scope in &self.scopes {
            writeln!(
                f,
                "scope `{}`, running {}, {}",
                scope.name,
                human_duration(scope.age),
                plural(scope.tasks.len(), "task", "tasks")
            )?;
            for group in group_tasks(&scope.tasks) {
                let first = group.tasks()[0];
                let name = first.name().map(|n| format!(" {n:?}")).unwrap_or_default();
                writeln!(
                    f,
                    "  {} x{name} spawned at {}, oldest {}: {}",
                    group.count(),
                    site(first.location()),
                    human_duration(
                        group
                            .tasks()
                            .iter()
                            .map(|t| t.age())
                            .max()
                            .unwrap_or_default()
                    ),
                    first.state()
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::metrics;
    use crate::registry::scope_list_slots;
    use crate::{Scope, spawn};

    /// About 35 seconds in a debug build on a 2-core machine.
    const SCOPES: usize = 1_000_000;

    /// Scopes created and ended by the million leave the registry flat: the
    /// live view's gauges return to zero and the scope list's slots stay
    /// bounded by the most scopes alive at once. A unit test, because the
    /// slot count is internal.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_million_scopes_leave_the_registry_flat() {
        let before = metrics();
        let mut leaky = 0;
        for i in 0..SCOPES {
            let (_, report) = Scope::builder("churn")
                .grace(Duration::ZERO)
                .build()
                .run_and_report(async move {
                    spawn(async {}).await.unwrap();
                    if i % 1000 == 0 {
                        // Some scopes leak, so the cancelling path churns too.
                        spawn(std::future::pending::<()>());
                    }
                })
                .await;
            leaky += usize::from(!report.is_clean());
        }
        let after = metrics();
        assert_eq!(leaky, SCOPES.div_ceil(1000));
        assert_eq!(after.live_scopes, 0, "every scope left the live set");
        assert_eq!(after.live_tracked_tasks, 0, "every task left its scope");
        // At least: other unit tests (a few short scopes, long finished
        // when this one ends) count theirs in the same process-wide total.
        assert!(after.scopes_ended - before.scopes_ended >= SCOPES as u64);
        assert!(
            scope_list_slots() <= 64,
            "slots are reused: {} for {SCOPES} scopes",
            scope_list_slots()
        );
    }
}
