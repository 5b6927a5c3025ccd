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
//! - Every scope is in the live set from [`crate::Scope::builder`]'s `build`
//!   until its shared state is dropped; it is listed until its exit protocol
//!   has ended it.
//! - The set holds `Weak` references only; upgraded scopes are collected
//!   first and used after the set's lock is released, so dropping the last
//!   reference to a scope (which removes it from the set) never happens under
//!   the lock.
//! - Counters are process-wide and only ever grow, except the gauges, which
//!   are computed when read.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::registry::ScopeShared;
use crate::report::{LeakReport, TaskInfo, human_duration};

#[derive(Default)]
struct LiveSet {
    slots: Vec<Option<Weak<ScopeShared>>>,
    free: Vec<usize>,
}

static LIVE: Mutex<LiveSet> = Mutex::new(LiveSet {
    slots: Vec::new(),
    free: Vec::new(),
});

/// Adds a scope to the live set; returns its key.
pub(crate) fn register(scope: &Arc<ScopeShared>) -> usize {
    let weak = Arc::downgrade(scope);
    let mut live = LIVE.lock();
    match live.free.pop() {
        Some(key) => {
            live.slots[key] = Some(weak);
            key
        }
        None => {
            live.slots.push(Some(weak));
            live.slots.len() - 1
        }
    }
}

/// Removes a scope from the live set (its shared state is being dropped).
pub(crate) fn unregister(key: usize) {
    let mut live = LIVE.lock();
    if let Some(slot) = live.slots.get_mut(key) {
        if slot.take().is_some() {
            live.free.push(key);
        }
    }
}

/// How many slots the live set holds (used and free): bounded by the most
/// scopes alive at once, however many have come and gone. For tests.
#[doc(hidden)]
pub fn __live_set_slots() -> usize {
    LIVE.lock().slots.len()
}

fn live_scopes() -> Vec<Arc<ScopeShared>> {
    let live = LIVE.lock();
    live.slots
        .iter()
        .flatten()
        .filter_map(Weak::upgrade)
        .collect()
    // The lock is released before the caller drops any of these.
}

static SCOPES_ENDED: AtomicU64 = AtomicU64::new(0);
static LEAKS_FOUND: AtomicU64 = AtomicU64::new(0);
static ZOMBIES_FOUND: AtomicU64 = AtomicU64::new(0);
static PANICS_UNOBSERVED: AtomicU64 = AtomicU64::new(0);
static SCOPES_WITH_LEAKS: AtomicU64 = AtomicU64::new(0);

/// Counts a finished scope's verdict into the process-wide counters.
pub(crate) fn count_verdict(report: &LeakReport) {
    SCOPES_ENDED.fetch_add(1, Ordering::Relaxed);
    let leaked = report.leaked().len() as u64 + report.untracked().unwrap_or(0) as u64;
    LEAKS_FOUND.fetch_add(leaked, Ordering::Relaxed);
    ZOMBIES_FOUND.fetch_add(report.zombies().len() as u64, Ordering::Relaxed);
    PANICS_UNOBSERVED.fetch_add(report.panics().len() as u64, Ordering::Relaxed);
    if !report.is_clean() {
        SCOPES_WITH_LEAKS.fetch_add(1, Ordering::Relaxed);
    }
}

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
    Metrics {
        live_scopes: live.len() as u64,
        live_tracked_tasks: live.iter().map(|s| s.all_live() as u64).sum(),
        scopes_ended: SCOPES_ENDED.load(Ordering::Relaxed),
        scopes_with_leaks: SCOPES_WITH_LEAKS.load(Ordering::Relaxed),
        leaks_found: LEAKS_FOUND.load(Ordering::Relaxed),
        zombies_found: ZOMBIES_FOUND.load(Ordering::Relaxed),
        panics_unobserved: PANICS_UNOBSERVED.load(Ordering::Relaxed),
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
    /// How long the scope has been running.
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
            age: now.saturating_duration_since(scope.started),
            tasks: scope.task_infos(now),
        })
        .collect();
    scopes.sort_by_key(|scope| std::cmp::Reverse(scope.age));
    LiveSnapshot { scopes }
}

impl fmt::Display for LiveSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "leakfree: {} live, {} live",
            crate::report::plural(self.scopes.len(), "scope", "scopes"),
            crate::report::plural(self.task_count(), "task", "tasks")
        )?;
        for scope in &self.scopes {
            writeln!(
                f,
                "scope `{}`, running {}, {}",
                scope.name,
                human_duration(scope.age),
                crate::report::plural(scope.tasks.len(), "task", "tasks")
            )?;
            for group in crate::report::group_tasks(&scope.tasks) {
                let first = group.tasks()[0];
                let name = first.name().map(|n| format!(" {n:?}")).unwrap_or_default();
                writeln!(
                    f,
                    "  {} x{name} spawned at {}, oldest {}: {}",
                    group.count(),
                    first.location(),
                    human_duration(
                        group
                            .tasks()
                            .iter()
                            .map(|t| t.age())
                            .max()
                            .unwrap_or_default()
                    ),
                    first.state().explain()
                )?;
            }
        }
        Ok(())
    }
}
