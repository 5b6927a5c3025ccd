//! Tracked spawns: drop-ins for `tokio::spawn` and `spawn_blocking` that put
//! the new task in the current scope.
//!
//! Outside any scope each of these is `tokio::spawn` (or
//! `tokio::task::spawn_blocking`) plus one thread-local read, so a library can
//! call them unconditionally and its users' leak-checked tests see its tasks.
//!
//! # Invariants
//! - A record is registered *before* its task is handed to tokio, so a task
//!   can never run (or finish) unregistered.
//! - After handing the task to tokio the spawner attaches the abort handle,
//!   which aborts at once if the scope is closing; the closer sets `closing`
//!   before aborting the handles it sees. So a task spawned into a closing
//!   scope is always aborted by one of the two (loom-checked; see
//!   [`crate::task::start_closing`]).

use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::task::AbortHandle;

use super::join::JoinHandle;
use super::wrappers::{Ignored, Tracked};
use crate::instrument::OwnSpawn;
use crate::registry::context::{self, TaskContext};
use crate::registry::{Registration, ScopeShared};
use crate::report::{TaskKind, panic_message};
use crate::task::{Role, TaskRecord, panic_watch};

/// Spawns a task in the current scope; a drop-in for [`tokio::spawn`].
///
/// The task, and every task it spawns through leakfree, belongs to the scope
/// the caller runs in. Outside any scope this is `tokio::spawn`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let handle = leakfree_runtime::spawn(async { 1 + 1 });
/// assert_eq!(handle.await.unwrap(), 2);
/// # }
/// ```
///
/// # Panics
/// Like `tokio::spawn`, when called outside a tokio runtime.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_task(None, None, Role::Regular, Location::caller(), future)
}

/// Spawns a named task in the current scope. The name appears in leak reports.
#[track_caller]
pub fn spawn_named<F>(name: &str, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_task(None, Some(name), Role::Regular, Location::caller(), future)
}

/// Spawns background work: a task meant to run until the scope ends (a
/// heartbeat, an accept loop). At the scope's end it is cancelled, and its
/// survival is not a leak. Tasks it spawns are background work too.
///
/// Outside any scope this is `tokio::spawn`.
#[track_caller]
pub fn spawn_background<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_task(None, None, Role::Background, Location::caller(), future)
}

/// Runs a blocking closure on tokio's blocking pool, tracked in the current
/// scope; a drop-in for [`tokio::task::spawn_blocking`].
///
/// A blocking closure cannot be aborted once it runs: one still running when
/// the scope ends is reported as a zombie.
#[track_caller]
pub fn spawn_blocking<F, R>(function: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    spawn_blocking_task(None, Location::caller(), function)
}

/// Spawns a `!Send` task on the current [`LocalSet`](tokio::task::LocalSet),
/// tracked in the current scope; a drop-in for [`tokio::task::spawn_local`].
/// Tasks spawned with plain `spawn_local` are invisible to leakfree (a
/// `LocalSet` keeps its own task list, outside the runtime's count).
///
/// # Panics
/// Like `tokio::task::spawn_local`, outside a `LocalSet`.
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let location = Location::caller();
    match place(None, None, Role::Regular, TaskKind::Async, location) {
        Placement::Outside => JoinHandle::new(tokio::task::spawn_local(future), false),
        Placement::Ignored(scope) => {
            JoinHandle::new(tokio::task::spawn_local(Ignored::new(future, scope)), false)
        }
        Placement::Tracked {
            context,
            record,
            key,
            explicit,
        } => {
            let handle =
                tokio::task::spawn_local(Tracked::new(future, context, record.clone(), key));
            // SAFETY: the one attach of this new record, by its spawner.
            unsafe { Placement::attach(explicit.as_deref(), &record, handle.abort_handle()) };
            JoinHandle::new(handle, true)
        }
    }
}

/// Where a new task goes, decided from the explicit or current context.
enum Placement {
    Outside,
    /// Let out of the scope by an ignore filter.
    Ignored(Arc<ScopeShared>),
    Tracked {
        context: TaskContext,
        record: Arc<TaskRecord>,
        key: usize,
        /// The scope again, when it was given explicitly; `None` when it is
        /// the thread's current one, which is read in place after the spawn
        /// (no second reference-count update on a shared counter).
        explicit: Option<Arc<ScopeShared>>,
    },
}

impl Placement {
    /// Gives a just-spawned task's record its abort handle (see the
    /// invariants above).
    ///
    /// # Safety
    /// Called at most once per record, by its task's spawner
    /// ([`TaskRecord::attach`]'s contract).
    unsafe fn attach(explicit: Option<&ScopeShared>, record: &TaskRecord, abort: AbortHandle) {
        // SAFETY (each arm): the caller's contract, passed on; exactly one
        // arm runs.
        match explicit {
            Some(scope) => unsafe { scope.attach(record, abort) },
            None => context::with_current(|current| match current {
                Some(current) => unsafe { current.scope.attach(record, abort) },
                // Unreachable in practice (the context was read moments
                // ago); without it the closing check cannot be made, and
                // the scope's close still sees the published handle.
                None => unsafe { record.attach(abort, &AtomicBool::new(false)) },
            }),
        }
    }
}

fn place(
    context: Option<TaskContext>,
    name: Option<&str>,
    role: Role,
    kind: TaskKind,
    location: &'static Location<'static>,
) -> Placement {
    let explicit = context.is_some();
    let Some(context) = context.or_else(context::current) else {
        return Placement::Outside;
    };
    let scope = context.scope;
    let filters = &scope.settings.filters;
    if !filters.is_empty() && filters.ignores(name, location) {
        return Placement::Ignored(scope);
    }
    let role = if context.background {
        Role::Background
    } else {
        role
    };
    let record = Arc::new(TaskRecord::new(name.map(Box::from), location, kind, role));
    // SAFETY: the record goes to its holder with the key: the task's
    // `Tracked` wrapper (which deregisters in its drop, before its record
    // field is dropped) or a blocking closure's `Registration` (the same, in
    // its `Drop`), both made before anything between here and them can
    // drop the `Placement`'s reference.
    let key = unsafe { scope.register(&record) };
    let explicit = explicit.then(|| scope.clone());
    let context = TaskContext {
        scope,
        background: role == Role::Background,
    };
    Placement::Tracked {
        context,
        record,
        key,
        explicit,
    }
}

#[track_caller]
pub(crate) fn spawn_task<F>(
    context: Option<TaskContext>,
    name: Option<&str>,
    role: Role,
    location: &'static Location<'static>,
    future: F,
) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match place(context, name, role, TaskKind::Async, location) {
        Placement::Outside => JoinHandle::new(tokio_spawn(name, future), false),
        Placement::Ignored(scope) => {
            JoinHandle::new(tokio_spawn(name, Ignored::new(future, scope)), false)
        }
        Placement::Tracked {
            context,
            record,
            key,
            explicit,
        } => {
            let handle = tokio_spawn(name, Tracked::new(future, context, record.clone(), key));
            // SAFETY: the one attach of this new record, by its spawner.
            unsafe { Placement::attach(explicit.as_deref(), &record, handle.abort_handle()) };
            JoinHandle::new(handle, true)
        }
    }
}

#[track_caller]
pub(crate) fn spawn_blocking_task<F, R>(
    context: Option<TaskContext>,
    location: &'static Location<'static>,
    function: F,
) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match place(context, None, Role::Regular, TaskKind::Blocking, location) {
        Placement::Outside => JoinHandle::new(tokio::task::spawn_blocking(function), false),
        Placement::Ignored(scope) => {
            scope.ignored_task_started(TaskKind::Blocking);
            let ended = IgnoredBlocking(scope);
            let handle = tokio::task::spawn_blocking(move || {
                let _ended = ended;
                function()
            });
            JoinHandle::new(handle, false)
        }
        Placement::Tracked {
            context,
            record,
            key,
            explicit: _,
        } => {
            let scope = context.scope.clone();
            // Dropped with the closure, whether it ran or was cancelled
            // before it started: the record leaves the table either way.
            let registration = Registration::new(scope.clone(), key, record.clone());
            let handle = tokio::task::spawn_blocking(move || {
                let registration = registration;
                let task_record = registration.record();
                task_record.begin_poll(false, None);
                let result =
                    context::enter_context(&context, || catch_unwind(AssertUnwindSafe(function)));
                match result {
                    Ok(value) => {
                        panic_watch::task_ended(task_record);
                        value
                    }
                    Err(payload) => {
                        registration
                            .scope
                            .record_panic(task_record.clone(), panic_message(&*payload));
                        resume_unwind(payload)
                    }
                }
            });
            // SAFETY: the one attach of this new record, by its spawner.
            unsafe { scope.attach(&record, handle.abort_handle()) };
            JoinHandle::new(handle, true)
        }
    }
}

struct IgnoredBlocking(Arc<ScopeShared>);

impl Drop for IgnoredBlocking {
    fn drop(&mut self) {
        self.0.ignored_task_ended(TaskKind::Blocking);
    }
}

/// `tokio::spawn`, hidden from leakfree's own spawn hook (the record says
/// more). The name stays in leakfree's record: tokio's own task names need its
/// `tracing` feature as well as `tokio_unstable`, which leakfree does not force
/// on users.
#[track_caller]
fn tokio_spawn<F>(_name: Option<&str>, future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let _own = OwnSpawn::enter();
    tokio::spawn(future)
}
