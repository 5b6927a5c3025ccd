//! The exit protocol every scope runs when its body is done.
//!
//! 1. **Settle**: wait, woken by task termination, until the scope's regular
//!    tasks are gone or the grace period ends; then, for scopes that count
//!    untracked tasks, until the runtime's count agrees (see `untracked.rs`).
//! 2. **Verdict**: regular tasks still alive are leaked; background tasks are
//!    not.
//! 3. **Enforce**: close the scope (cancel its token, abort every task), then
//!    wait, bounded by the abort timeout, for them to be gone. Tasks still there
//!    are zombies.
//! 4. Collect panics of tracked tasks that no `JoinHandle` observed.
//!
//! No step sleeps for a fixed time: a clean scope on a current-thread runtime
//! returns without waiting at all.

use std::sync::Arc;

use tokio::time::Instant;

use crate::record::Role;
use crate::registry::ScopeShared;
use crate::report::{LeakReport, TaskInfo, TaskPanic, UntrackedCount};
use crate::untracked::Baseline;

pub(crate) async fn run_exit_protocol(
    scope: &Arc<ScopeShared>,
    baseline: Option<&Baseline>,
) -> LeakReport {
    let settings = &scope.settings;
    let polls_at_body_end = settings.stuck_at.then(crate::poll_watch::sample);

    // 1. Settle.
    let deadline = Instant::now() + settings.grace;
    scope
        .wait_until(|s| s.regular_live() == 0 && s.hooked_live() == 0, deadline)
        .await;
    let untracked = match baseline {
        Some(baseline) => Some(UntrackedCount {
            alive: baseline.settle(scope, deadline).await,
            blocking: baseline.untracked_blocking(scope),
            fails: settings.count_untracked,
        }),
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
    let hooked = scope.hooked_tasks();
    let unabortable = hooked.len();
    leaked.extend(hooked.iter().map(|(id, task)| task.info(*id, now)));
    // After the states are read: a dump re-polls (and wakes) every task.
    if let Some(polls) = polls_at_body_end.filter(|_| !leaked.is_empty()) {
        crate::stuck_at::attach(&mut leaked, &polls).await;
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

    // 4. Unobserved panics.
    let panics = scope
        .take_unobserved_panics()
        .into_iter()
        .map(|panicked| TaskPanic {
            id: panicked.record.id(),
            name: panicked.record.name.as_deref().map(str::to_owned),
            location: panicked.record.location,
            message: panicked.message,
        })
        .collect();

    let report = LeakReport {
        scope: scope.name.to_string(),
        grace: settings.grace,
        spawned: scope.spawned_total(),
        leaked,
        zombies,
        panics,
        untracked,
        aborted,
        unabortable,
        background_cancelled,
        ignored: scope.ignored_total(),
    };
    scope.mark_ended();
    crate::live::count_verdict(&report);
    report
}
