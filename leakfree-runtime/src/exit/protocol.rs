//! The exit protocol every scope runs when its body is done.
//!
//! 1. **Settle**: wait, woken by task termination, until the scope's regular
//!    tasks are gone or the grace period ends; then, for scopes that count
//!    untracked tasks, until the runtime's count agrees (see [`Baseline`]).
//! 2. **Verdict**: regular tasks still alive are leaked; background tasks are
//!    not.
//! 3. **Enforce**: close the scope (cancel its token, abort every task), then
//!    wait, bounded by the abort timeout, for them to be gone. Tasks still there
//!    are zombies.
//! 4. Collect panics of tracked tasks that no `JoinHandle` observed.
//!
//! No step sleeps for a fixed time. A scope whose tasks are all gone when its
//! body ends (and that does not count untracked tasks) is *settled*: its
//! protocol runs synchronously, in [`finish_settled`], without waiting,
//! registering a waiter or allocating, and a clean one without making a
//! report; [`run_exit_protocol`] starts with it.

use std::sync::Arc;

use tokio::time::Instant;

use super::stuck_at;
use super::totals;
use super::untracked::Baseline;
use crate::instrument::{self, PollSample};
use crate::registry::ScopeShared;
use crate::report::{LeakReport, TaskInfo, TaskPanic, Timeout, UntrackedCount};
use crate::task::Role;

/// Ends the scope and returns its verdict; `timeout` is what the scope
/// looked like if its body ran out of time (it is part of the verdict).
pub(crate) async fn run_exit_protocol(
    scope: &Arc<ScopeShared>,
    baseline: Option<&Baseline>,
    timeout: Option<Timeout>,
) -> LeakReport {
    let mut timeout = timeout;
    if baseline.is_none() {
        if let Some(settled) = finish_settled(scope, &mut timeout) {
            return settled.into_report(scope);
        }
    }
    let settings = &scope.settings;
    let polls_at_body_end: Option<PollSample> = settings.stuck_at.then(instrument::sample);

    // 1. Settle.
    let deadline = Instant::now() + settings.grace;
    scope
        .wait_until(|s| s.regular_live() == 0 && s.hooked_live() == 0, deadline)
        .await;
    let untracked = match baseline {
        Some(baseline) => Some(UntrackedCount::new(
            baseline.settle(scope, deadline).await,
            baseline.untracked_blocking(scope),
            settings.count_untracked,
        )),
        None => None,
    };

    // 2. Verdict.
    let now = std::time::Instant::now();
    let survivors = scope.live_records();
    let mut leaked: Vec<TaskInfo> = survivors
        .iter()
        .filter(|record| record.role == Role::Regular)
        .map(|record| record.info(now))
        .collect();
    let background_cancelled = survivors.len() - leaked.len();
    drop(survivors);
    let hooked = instrument::hooked_tasks(scope);
    let unabortable = hooked.len();
    leaked.extend(hooked.iter().map(|task| task.info(now)));
    // After the states are read: a dump re-polls (and wakes) every task.
    if let Some(polls) = polls_at_body_end.filter(|_| !leaked.is_empty()) {
        leaked = stuck_at::attach(leaked, &polls).await;
    }

    // 3. Enforce.
    let aborted = scope.close();
    let abort_deadline = Instant::now() + settings.abort_timeout;
    scope
        .wait_until(|s| s.all_live() == 0, abort_deadline)
        .await;
    let now = std::time::Instant::now();
    let zombies = scope
        .live_records()
        .iter()
        .map(|record| record.info(now))
        .collect();

    // The one place tracked records, hooked tasks and untracked counts meet.
    let report = empty_report(scope)
        .with_leaked(leaked, unabortable)
        .with_untracked(untracked)
        .with_enforcement(aborted, background_cancelled, zombies);
    conclude(scope, report, timeout)
}

/// How a settled scope ended ([`finish_settled`]); its verdict is counted
/// either way.
pub(crate) enum Settled {
    /// Nothing to report: no task survived, none panicked, no timeout. No
    /// report was made (so a clean request's scope copies no name and fills
    /// no report); [`Settled::into_report`] makes the clean one for callers
    /// that return it.
    Clean,
    /// A report with something in it (an unobserved panic, a timeout), or
    /// one that only turned out clean once observed panics were dropped.
    /// Boxed: the rare case does not make the common one's return bigger.
    Report(Box<LeakReport>),
}

impl Settled {
    /// The verdict as a report.
    pub(crate) fn into_report(self, scope: &ScopeShared) -> LeakReport {
        match self {
            Settled::Clean => empty_report(scope),
            Settled::Report(report) => *report,
        }
    }
}

/// The whole protocol for a settled scope (no task of its own alive, none
/// attributed by the spawn hook; the caller checks that it does not count
/// untracked tasks): nothing to settle, no survivor to judge, close at once.
/// `None` when the scope is not settled, or when a task started in it
/// between the check and the close: the caller runs the full protocol then
/// (whose close again is harmless), with `timeout` left in place for it.
pub(crate) fn finish_settled(
    scope: &ScopeShared,
    timeout: &mut Option<Timeout>,
) -> Option<Settled> {
    let settled = |scope: &ScopeShared| scope.all_live() == 0 && scope.hooked_live() == 0;
    if !settled(scope) {
        return None;
    }
    let aborted = scope.close();
    if aborted != 0 || !settled(scope) {
        return None;
    }
    if timeout.is_none() && !scope.has_panics() {
        // What `conclude` does with a clean report, without one.
        scope.mark_ended();
        totals::count_clean_verdict();
        return Some(Settled::Clean);
    }
    Some(Settled::Report(Box::new(conclude(
        scope,
        empty_report(scope),
        timeout.take(),
    ))))
}

/// The report of a scope before the verdict adds to it.
fn empty_report(scope: &ScopeShared) -> LeakReport {
    LeakReport::new(
        scope.name.clone(),
        scope.settings.grace,
        scope.spawned_total(),
        scope.ignored_total(),
    )
}

/// 4. Unobserved panics, and the verdict made final.
fn conclude(scope: &ScopeShared, report: LeakReport, timeout: Option<Timeout>) -> LeakReport {
    let panics = scope
        .take_unobserved_panics()
        .into_iter()
        .map(|panicked| {
            let record = &panicked.record;
            TaskPanic::new(
                record.id(),
                record.name.as_deref(),
                record.location,
                panicked.message,
            )
        })
        .collect();
    let report = report.with_panics(panics).with_timeout(timeout);
    scope.mark_ended();
    totals::count_verdict(&report);
    report
}
