//! [`Scope`]: the unit of leak checking, and the guard the attribute is sugar
//! for.
//!
//! # Invariants
//! - A scope's parent is the scope current when it was built; its token is a
//!   child of the parent's token, and tasks spawned while its code runs belong
//!   to it alone, so nested scopes judge only their own tasks.
//! - A scope ends exactly once: by [`Scope::finish`] (directly or through
//!   [`Scope::run`]), or, when dropped unfinished (its future was dropped
//!   mid-flight), by a reaper task that runs the same exit protocol off the
//!   caller's path; with no runtime left to run one, by aborting everything at
//!   once.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::{Location, resume_unwind};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::artifacts;
use crate::exit::{Baseline, run_exit_protocol};
use crate::instrument::OwnSpawn;
use crate::policy::{self, Policy};
use crate::registry::context::{self, TaskContext};
use crate::registry::{Filters, ScopeShared, Settings};
use crate::report::{LeakReport, panic_text};
use crate::spawn::{CatchUnwind, Entered, JoinHandle, spawn_task};
use crate::task::Role;

/// How long a scope waits for its tasks to finish on their own, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(100);

/// How long a scope waits for aborted tasks to be gone, by default.
pub const DEFAULT_ABORT_TIMEOUT: Duration = Duration::from_secs(1);

/// A scoped task registry: every task spawned through leakfree while the
/// scope's code runs, and every task those tasks spawn, belongs to it. When the
/// scope ends, survivors are reported and cancelled.
///
/// `#[leak_checked]` is sugar for [`Scope::run`]:
///
/// ```
/// use leakfree_runtime::{Scope, spawn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (value, report) = Scope::builder("doc example")
///     .build()
///     .run_and_report(async {
///         let pinger = spawn(std::future::pending::<()>()); // never finishes
///         drop(pinger);
///         42
///     })
///     .await;
/// assert_eq!(value, 42);
/// assert_eq!(report.leaked().len(), 1);
/// assert!(report.to_string().starts_with("leakfree: 1 task leaked from `doc example`"));
/// # }
/// ```
#[must_use = "a scope checks nothing until it is run or finished"]
pub struct Scope {
    shared: Arc<ScopeShared>,
    baseline: Option<Baseline>,
    policy: Policy,
    detached: bool,
    finished: bool,
}

/// Settings for a [`Scope`]; see [`Scope::builder`].
#[derive(Debug, Clone)]
#[must_use = "call .build() to get a Scope"]
pub struct ScopeBuilder {
    name: Cow<'static, str>,
    grace: Duration,
    abort_timeout: Duration,
    filters: Filters,
    count_untracked: bool,
    stuck_at: bool,
    policy: Policy,
    detached: bool,
}

impl ScopeBuilder {
    /// What [`Scope::run`] does with a report that is not clean (default
    /// [`Policy::Panic`]). `LEAKFREE_POLICY` overrides it at run time.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Reach the verdict off the caller's path: [`Scope::run`] returns as
    /// soon as the body does, and the settle, verdict, cancellation and
    /// policy run in a task of their own. For release-mode services, where
    /// the grace period must not add to a request's latency. A detached
    /// verdict cannot fail the caller: under [`Policy::Panic`] the report is
    /// logged and printed instead.
    pub fn detach_verdict(mut self, detach: bool) -> Self {
        self.detached = detach;
        self
    }

    /// How long to wait for the scope's tasks to finish on their own before
    /// calling the survivors leaked (default [`DEFAULT_GRACE`]). A clean scope
    /// does not wait for it: the wait ends when the last task does.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long to wait for aborted tasks to be gone before calling them
    /// zombies (default [`DEFAULT_ABORT_TIMEOUT`]).
    pub fn abort_timeout(mut self, timeout: Duration) -> Self {
        self.abort_timeout = timeout;
        self
    }

    /// Lets tasks whose name matches `glob` (`*`, `?`) out of the scope: they
    /// are neither judged nor cancelled, and their own spawns are outside the
    /// scope too.
    pub fn ignore_name(mut self, glob: impl Into<Cow<'static, str>>) -> Self {
        self.filters.add_name(glob.into());
        self
    }

    /// Lets tasks spawned in files matching `glob` out of the scope (see
    /// [`ScopeBuilder::ignore_name`]). The glob matches the whole path or any
    /// suffix starting after a `/`: `"src/pool.rs"`, `"*/metrics/*"`.
    pub fn ignore_location(mut self, glob: impl Into<Cow<'static, str>>) -> Self {
        self.filters.add_location(glob.into());
        self
    }

    /// Also count tasks alive on the runtime that leakfree did not spawn, and
    /// fail on survivors. Only right when the scope owns its runtime (a test);
    /// on a shared runtime other scopes' tasks would count.
    pub fn count_untracked(mut self, count: bool) -> Self {
        self.count_untracked = count;
        self
    }

    /// Show where each leaked task is stuck, from a tokio task dump (only in
    /// builds that can take one: `--cfg tokio_unstable` and the `taskdump`
    /// feature, on Linux). Off by default: a dump re-polls every task of the
    /// runtime, which a test can afford and a busy service should not pay on
    /// every leaky call. Test scopes made by `#[leak_checked]` turn it on.
    pub fn stuck_at(mut self, dump: bool) -> Self {
        self.stuck_at = dump;
        self
    }

    /// Creates the scope. Its parent is the scope the caller runs in, if any.
    ///
    /// # Panics
    /// When `LEAKFREE_POLICY` or `LEAKFREE_GRACE` holds a value that does not
    /// parse; the message names the variable and the accepted values.
    pub fn build(self) -> Scope {
        let overrides = policy::overrides();
        let grace = overrides.grace.unwrap_or(self.grace);
        let policy = overrides.policy.clone().unwrap_or(self.policy);
        let parent = context::current().map(|c| c.scope);
        let baseline = if self.count_untracked {
            Baseline::capture()
        } else {
            None
        };
        let settings = Settings {
            grace,
            abort_timeout: self.abort_timeout,
            filters: self.filters,
            count_untracked: self.count_untracked,
            stuck_at: self.stuck_at,
        };
        let shared = Arc::new(ScopeShared::new(self.name, settings, parent.as_ref()));
        shared.publish();
        Scope {
            shared,
            baseline,
            policy,
            detached: self.detached,
            finished: false,
        }
    }
}

/// The cancellation token of the scope the caller runs in: cancelled when
/// that scope ends. `None` outside any scope.
pub fn current_token() -> Option<CancellationToken> {
    context::current().map(|c| c.scope.token.clone())
}

impl Scope {
    /// Starts configuring a scope called `name` (reports name it).
    pub fn builder(name: impl Into<Cow<'static, str>>) -> ScopeBuilder {
        ScopeBuilder {
            name: name.into(),
            grace: DEFAULT_GRACE,
            abort_timeout: DEFAULT_ABORT_TIMEOUT,
            filters: Filters::default(),
            count_untracked: false,
            stuck_at: false,
            policy: Policy::Panic,
            detached: false,
        }
    }

    /// A scope with default settings.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Scope {
        Scope::builder(name).build()
    }

    /// The scope's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The scope's cancellation token: cancelled when the scope ends, before
    /// its leftover tasks are aborted. A child of the enclosing scope's token.
    pub fn token(&self) -> CancellationToken {
        self.shared.token.clone()
    }

    /// How many of the scope's tracked tasks are alive now.
    pub fn live_tasks(&self) -> usize {
        self.shared.all_live()
    }

    /// Runs `future` with this scope as the current one: tasks it spawns
    /// through leakfree belong to this scope. Can be called many times.
    pub fn enter<F: Future>(&self, future: F) -> Entered<F> {
        Entered::new(future, self.context())
    }

    /// Spawns a task into this scope from anywhere (also from code outside
    /// it), on the current tokio runtime.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn_task(
            Some(self.context()),
            None,
            Role::Regular,
            Location::caller(),
            future,
        )
    }

    /// Ends the scope: settle, verdict, cancel, and the report. Does not
    /// panic on leaks; see [`Scope::run`] for that.
    pub async fn finish(mut self) -> LeakReport {
        let report = run_exit_protocol(&self.shared, self.baseline.as_ref()).await;
        self.finished = true;
        report
    }

    /// Runs `body` in the scope, ends the scope, and acts on the report by
    /// the scope's [`Policy`] (by default: panics if anything leaked). This
    /// is what `#[leak_checked]` expands to.
    ///
    /// If `body` panics, the scope still ends (its tasks are checked and
    /// cancelled) and the body's panic continues, with the leak report appended
    /// to its message when there is one. Under [`Policy::Off`] the body runs
    /// without the scope.
    pub async fn run<F: Future>(mut self, body: F) -> F::Output {
        if matches!(self.policy, Policy::Off) {
            self.finished = true;
            self.shared.mark_ended();
            return body.await;
        }
        if self.detached {
            let outcome = CatchUnwind::new(self.enter(body)).await;
            self.finish_off_path();
            return match outcome {
                Ok(value) => value,
                Err(payload) => resume_unwind(payload),
            };
        }
        let policy = self.policy.clone();
        let (value, report) = self.run_and_report(body).await;
        artifacts::keep(&report);
        policy.act(&report);
        value
    }

    /// Like [`Scope::run`], but hands the report back instead of panicking
    /// on a leak (a body's panic still continues after the scope ended).
    pub async fn run_and_report<F: Future>(self, body: F) -> (F::Output, LeakReport) {
        let outcome = CatchUnwind::new(self.enter(body)).await;
        let report = self.finish().await;
        match outcome {
            Ok(value) => (value, report),
            Err(payload) => resume_unwind(append_report(payload, &report)),
        }
    }

    /// Hands the rest of the exit protocol to a task of its own (or, with no
    /// runtime left, aborts everything at once).
    fn finish_off_path(&mut self) {
        self.finished = true;
        let shared = self.shared.clone();
        let baseline = self.baseline.take();
        let policy = self.policy.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let _own = OwnSpawn::enter();
                drop(handle.spawn(async move {
                    let report = run_exit_protocol(&shared, baseline.as_ref()).await;
                    artifacts::keep(&report);
                    policy.act_off_path(&report);
                }));
            }
            Err(_) => {
                shared.close();
                shared.mark_ended();
            }
        }
    }

    fn context(&self) -> TaskContext {
        TaskContext {
            scope: self.shared.clone(),
            background: false,
        }
    }
}

/// Adds the report to a panic payload that is text; other payloads are kept
/// as they are and the report goes to standard error.
fn append_report(
    payload: Box<dyn std::any::Any + Send>,
    report: &LeakReport,
) -> Box<dyn std::any::Any + Send> {
    if report.is_clean() {
        return payload;
    }
    match panic_text(&*payload).map(str::to_owned) {
        Some(text) => Box::new(format!("{text}\n\n{report}")),
        None => {
            eprintln!("{report}");
            payload
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if !self.finished {
            // The scope's future was dropped mid-flight: end it off this path,
            // exactly as on return.
            self.finish_off_path();
        }
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("name", &self.shared.name)
            .field("live_tasks", &self.shared.all_live())
            .field("grace", &self.shared.settings.grace)
            .field("policy", &self.policy)
            .finish()
    }
}
