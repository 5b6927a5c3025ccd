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
use std::future::{Future, poll_fn};
use std::panic::{Location, resume_unwind};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::artifacts;
use crate::exit::{
    Baseline, Deadline, Settled, finish_settled, run_exit_protocol, timeout_snapshot, trace_poll,
};
use crate::instrument::OwnSpawn;
use crate::policy::{self, Policy};
use crate::registry::context::{self, TaskContext};
use crate::registry::{Filters, ScopeShared, Settings};
use crate::report::{LeakReport, Timeout, panic_text};
use crate::spawn::{CatchUnwind, Entered, JoinHandle, spawn_task};
use crate::task::Role;

/// How long a scope waits for its tasks to finish on their own, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(100);

/// How long the body of a `#[leak_checked]` test may run before it fails
/// with a report of what every task is doing (a hung test ends instead of
/// hanging CI); see [`ScopeBuilder::timeout`].
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(60);

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
    timeout: Option<Duration>,
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
    judge_plain_spawns: bool,
    stuck_at: bool,
    policy: Policy,
    detached: bool,
    timeout: Option<Duration>,
}

impl ScopeBuilder {
    /// Bounds how long the body may run, on the wall clock (default: no
    /// bound; `#[leak_checked]` tests get [`DEFAULT_TEST_TIMEOUT`]). When it
    /// runs out the scope reports every task it holds, with its state and,
    /// where task dumps are taken, where it and the body are stuck; then the
    /// body is dropped, the scope ends as usual, and the call panics with the
    /// report (there is no value to return). `LEAKFREE_TIMEOUT` overrides it
    /// at run time (`off` removes it).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

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

    /// Lets tasks spawned from the source of the crate `name` (a dependency,
    /// by its package name with `-` or `_`; `*` and `?` globs) out of the
    /// scope, whatever its version or where cargo keeps its source: e.g.
    /// `"hyper_util"` for a client pool's background tasks. Matched against
    /// the spawn site, so it needs the site: tracked spawns always have it,
    /// plain `tokio::spawn` under `--cfg tokio_unstable`. See
    /// [`ScopeBuilder::ignore_name`].
    pub fn ignore_crate(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.filters.add_crate(name.into());
        self
    }

    /// Also count tasks alive on the runtime that leakfree did not spawn, and
    /// fail on survivors. Only right when the scope owns its runtime (a test);
    /// on a shared runtime other scopes' tasks would count.
    pub fn count_untracked(mut self, count: bool) -> Self {
        self.count_untracked = count;
        self
    }

    /// Let tasks spawned with plain `tokio::spawn` pass, in every build: not
    /// counted from the runtime's metrics, and, where tokio's spawn hook
    /// attributes them to the scope (`--cfg tokio_unstable`), let out of the
    /// scope like an ignore filter's tasks (their own spawns too). What the
    /// attribute's `allow_untracked` sets.
    pub fn allow_untracked(mut self, allow: bool) -> Self {
        self.judge_plain_spawns = !allow;
        if allow {
            self.count_untracked = false;
        }
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

    /// The same settings under another name.
    #[cfg(feature = "tower")]
    pub(crate) fn named(mut self, name: Cow<'static, str>) -> Self {
        self.name = name;
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
        let timeout = overrides.timeout.unwrap_or(self.timeout);
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
            judge_plain_spawns: self.judge_plain_spawns,
            stuck_at: self.stuck_at,
        };
        let shared = ScopeShared::new_published(self.name, settings, parent.as_ref());
        Scope {
            shared,
            baseline,
            policy,
            detached: self.detached,
            timeout,
            finished: false,
        }
    }
}

/// The cancellation token of the scope the caller runs in: cancelled when
/// that scope ends. `None` outside any scope.
pub fn current_token() -> Option<CancellationToken> {
    context::current().map(|c| c.scope.token())
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
            judge_plain_spawns: true,
            stuck_at: false,
            policy: Policy::Panic,
            detached: false,
            timeout: None,
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
        self.shared.token()
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
    pub async fn finish(self) -> LeakReport {
        self.finish_with(None).await
    }

    async fn finish_with(self, timeout: Option<Timeout>) -> LeakReport {
        // Bound before the await, so that no report-sized temporary is
        // kept across it.
        let protocol = match self.end(timeout) {
            Ok(report) => return report,
            Err(protocol) => protocol,
        };
        protocol.await
    }

    /// Ends a settled scope at once (`Ok`); for any other, the exit
    /// protocol to await, boxed (`Err`): its future, hundreds of bytes,
    /// stays out of every future that runs a scope, which is moved at each
    /// await, and is only made when there is something to wait for.
    #[allow(clippy::type_complexity)]
    fn end(
        mut self,
        mut timeout: Option<Timeout>,
    ) -> Result<LeakReport, Pin<Box<dyn Future<Output = LeakReport> + Send>>> {
        if self.baseline.is_none() {
            if let Some(settled) = finish_settled(&self.shared, &mut timeout) {
                self.finished = true;
                return Ok(settled.into_report(&self.shared));
            }
        }
        Err(Box::pin(async move {
            let report = run_exit_protocol(&self.shared, self.baseline.as_ref(), timeout).await;
            // Read by `Drop`, when the block ends.
            self.mark_finished();
            report
        }))
    }

    /// Runs `body` in the scope, ends the scope, and acts on the report by
    /// the scope's [`Policy`] (by default: panics if anything leaked). This
    /// is what `#[leak_checked]` expands to.
    ///
    /// If `body` panics, the scope still ends (its tasks are checked and
    /// cancelled) and the body's panic continues; a report that is not clean
    /// is printed to standard error (a test's captured output, beside the
    /// panic message) and appended to the panic's message. If the body runs
    /// out of the scope's [timeout](ScopeBuilder::timeout), the call panics
    /// with the report after the policy has acted. Under [`Policy::Off`] the
    /// body runs without the scope.
    pub async fn run<F: Future>(self, body: F) -> F::Output {
        self.run_checked(body).await.into_value()
    }

    /// [`Scope::run`], with the panic [`Policy::Panic`] calls for left to the
    /// caller ([`Checked::into_value`]), so that generated code panics at the
    /// annotated test's own location.
    pub(crate) async fn run_checked<F: Future>(mut self, body: F) -> Checked<F::Output> {
        if matches!(self.policy, Policy::Off) {
            self.finished = true;
            self.shared.mark_ended();
            return Checked::passed(body.await);
        }
        if self.detached {
            let outcome = self.run_body(body).await;
            return match outcome {
                BodyOutcome::Finished(Ok(value)) => {
                    self.finish_off_path(None);
                    Checked::passed(value)
                }
                BodyOutcome::Finished(Err(payload)) => {
                    self.finish_off_path(None);
                    resume_unwind(payload)
                }
                BodyOutcome::TimedOut(timeout) => {
                    let policy = self.policy.clone();
                    let report = self.finish_with(Some(timeout)).await;
                    artifacts::keep(&report);
                    policy.act_off_path(&report);
                    Checked::timed_out(report)
                }
            };
        }
        let policy = self.policy.clone();
        match self.run_body(body).await {
            BodyOutcome::Finished(Ok(value)) => {
                let report = self.finish().await;
                artifacts::keep(&report);
                match policy {
                    Policy::Panic if !report.is_clean() => Checked::failed(value, report),
                    policy => {
                        policy.act(&report);
                        Checked::passed(value)
                    }
                }
            }
            BodyOutcome::Finished(Err(payload)) => {
                let report = self.finish().await;
                artifacts::keep(&report);
                resume_unwind(append_report(payload, &report))
            }
            BodyOutcome::TimedOut(timeout) => {
                let report = self.finish_with(Some(timeout)).await;
                artifacts::keep(&report);
                if !matches!(policy, Policy::Panic) {
                    policy.act(&report);
                }
                Checked::timed_out(report)
            }
        }
    }

    /// Like [`Scope::run`], but hands the report back instead of panicking
    /// on a leak (a body's panic still continues after the scope ended, and a
    /// body that runs out of the scope's timeout panics with the report).
    pub async fn run_and_report<F: Future>(self, body: F) -> (F::Output, LeakReport) {
        match self.run_body(body).await {
            BodyOutcome::Finished(Ok(value)) => (value, self.finish().await),
            BodyOutcome::Finished(Err(payload)) => {
                let report = self.finish().await;
                resume_unwind(append_report(payload, &report))
            }
            BodyOutcome::TimedOut(timeout) => {
                let report = self.finish_with(Some(timeout)).await;
                panic!("{report}")
            }
        }
    }

    /// Polls the body in the scope until it finishes (or panics), or until
    /// the scope's timeout runs out; then what the scope looked like is taken
    /// before the body is dropped (when this returns).
    async fn run_body<F: Future>(&self, body: F) -> BodyOutcome<F::Output> {
        let mut body = pin!(CatchUnwind::new(self.enter(body)));
        let Some(after) = self.timeout else {
            return BodyOutcome::Finished(body.await);
        };
        let mut deadline = Deadline::new(after);
        let finished = poll_fn(|cx| {
            if let Poll::Ready(outcome) = body.as_mut().poll(cx) {
                return Poll::Ready(Ok(outcome));
            }
            if Pin::new(&mut deadline).poll(cx).is_pending() {
                return Poll::Pending;
            }
            // One traced poll, to learn where the body waits.
            match trace_poll(|| body.as_mut().poll(cx)) {
                (Poll::Ready(outcome), _) => Poll::Ready(Ok(outcome)),
                (Poll::Pending, body_stuck_at) => Poll::Ready(Err(body_stuck_at)),
            }
        })
        .await;
        match finished {
            Ok(outcome) => BodyOutcome::Finished(outcome),
            // Boxed: the rare path's future stays out of the body's.
            Err(body_stuck_at) => BodyOutcome::TimedOut(
                Box::pin(timeout_snapshot(&self.shared, &deadline, body_stuck_at)).await,
            ),
        }
    }

    /// Ends the scope without making the caller wait. A settled scope (its
    /// tasks all gone, not counting untracked ones) needs no wait at all: its
    /// exit protocol runs here, on the caller's path, synchronously
    /// ([`finish_settled`]). Any other scope hands the protocol to a task of
    /// its own, as does a settled-looking one that a task started in
    /// meanwhile. With no runtime left, aborts everything at once.
    fn finish_off_path(&mut self, mut timeout: Option<Timeout>) {
        self.finished = true;
        if self.baseline.is_none() {
            // A settled scope ends here, on the caller's path, synchronously.
            match finish_settled(&self.shared, &mut timeout) {
                Some(Settled::Clean) => return,
                Some(Settled::Report(report)) => {
                    if !report.is_clean() {
                        artifacts::keep(&report);
                        self.policy.act_off_path(&report);
                    }
                    return;
                }
                None => {}
            }
        }
        let shared = self.shared.clone();
        let baseline = self.baseline.take();
        let policy = self.policy.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let _own = OwnSpawn::enter();
                drop(handle.spawn(async move {
                    let report = run_exit_protocol(&shared, baseline.as_ref(), timeout).await;
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

    /// Whether [`Scope::run`] would run the body in this scope, with the
    /// verdict off the caller's path and no timeout: then all `run` does is
    /// poll the body in the scope (`enter`, its panic caught) and then
    /// [`Scope::end_off_path`], which [`DetachedRun`](crate::detached_run::DetachedRun)
    /// does in place.
    pub(crate) fn runs_detached_untimed(&self) -> bool {
        self.detached && self.timeout.is_none() && !matches!(self.policy, Policy::Off)
    }

    /// Ends the scope off the caller's path: what a detached `run` does
    /// once its body has returned or panicked.
    pub(crate) fn end_off_path(mut self) {
        self.finish_off_path(None);
    }

    fn mark_finished(&mut self) {
        self.finished = true;
    }

    fn context(&self) -> TaskContext {
        TaskContext {
            scope: self.shared.clone(),
            background: false,
        }
    }
}

/// What a body's panic carries on with when the scope's report is not
/// clean. The panic hook printed the body's message when it panicked, before
/// the scope ended, so the report is printed now, to standard error (the
/// test harness captures it and shows it beside the message); it is also
/// appended to a text payload, for `should_panic(expected = ..)` and code
/// that catches the panic.
fn append_report(
    payload: Box<dyn std::any::Any + Send>,
    report: &LeakReport,
) -> Box<dyn std::any::Any + Send> {
    if report.is_clean() {
        return payload;
    }
    eprintln!("{report}");
    match panic_text(&*payload).map(str::to_owned) {
        Some(text) => Box::new(format!("{text}\n\n{report}")),
        None => payload,
    }
}

/// How a body ended.
enum BodyOutcome<T> {
    /// It returned, or panicked.
    Finished(std::thread::Result<T>),
    /// It ran out of the scope's timeout.
    TimedOut(Timeout),
}

/// A finished scope's value and the report a [`Policy::Panic`] scope must
/// panic with, left to [`Checked::into_value`] so that the panic is raised
/// at its caller's location (generated code: the annotated test's).
#[derive(Debug)]
#[must_use = "a failed check panics only in into_value"]
pub struct Checked<T> {
    value: Option<T>,
    failure: Option<LeakReport>,
}

impl<T> Checked<T> {
    pub(crate) fn passed(value: T) -> Self {
        Checked {
            value: Some(value),
            failure: None,
        }
    }

    fn failed(value: T, report: LeakReport) -> Self {
        Checked {
            value: Some(value),
            failure: Some(report),
        }
    }

    fn timed_out(report: LeakReport) -> Self {
        Checked {
            value: None,
            failure: Some(report),
        }
    }

    /// The body's value; panics, at the caller's location, with the report
    /// when the scope failed.
    #[track_caller]
    pub fn into_value(self) -> T {
        if let Some(report) = self.failure {
            panic!("{report}");
        }
        self.value.expect("a scope without a failure has its value")
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if !self.finished {
            // The scope's future was dropped mid-flight: end it off this path,
            // exactly as on return.
            self.finish_off_path(None);
        }
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("name", &self.shared.name)
            .field("live_tasks", &self.shared.all_live())
            .field("grace", &self.shared.settings.grace)
            .field("allow_untracked", &!self.shared.settings.judge_plain_spawns)
            .field("policy", &self.policy)
            .finish()
    }
}
