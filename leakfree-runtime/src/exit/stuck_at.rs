//! Where leaked tasks are stuck: their await-point stacks from tokio's task
//! dumps (`--cfg tokio_unstable` + the `taskdump` feature, on Linux).
//!
//! A dump re-polls every task of the runtime in a tracing mode (tokio's leaf
//! futures record a backtrace, return `Pending` and wake the task), so it is
//! taken *after* the verdict has read each task's state, and only when
//! something leaked. That poll is real: a leaked task whose future would be
//! ready if only it were polled (its waker was lost) may finish during the
//! dump, and is then not among the aborted.
//!
//! tokio's dump on a multi-thread runtime waits for every worker, and stalls
//! the whole runtime (timers too) while one is inside a poll that does not
//! return. So no dump is requested when a leaked task is inside a poll or a
//! worker has been inside one poll since the body ended ([`PollSample`]);
//! the report then says the stack is not known and why. A dump that starts is
//! still bounded by a timeout.
//!
//! A backtrace is trimmed to the frames that matter: the user's own frames
//! (outside the cargo registry, the standard library and leakfree), root
//! first, then the one library call they wait in (e.g.
//! `tokio::sync::mpsc::bounded::Receiver<T>::recv`).
//!
//! Without dumps in the build (`cfg(leakfree_taskdump)` unset) [`attach`]
//! leaves the tasks as they are, and only the trimming's own tests compile
//! the trimming.
#[cfg(leakfree_taskdump)]
use std::collections::HashMap;
#[cfg(leakfree_taskdump)]
use std::time::Duration;

#[cfg(leakfree_taskdump)]
use tokio::runtime::dump::Trace;
#[cfg(leakfree_taskdump)]
use tokio::task::Id;

#[cfg(leakfree_taskdump)]
use super::frames::{Frame, trim};
use crate::instrument::PollSample;
#[cfg(not(leakfree_taskdump))]
use crate::report::FULL_VIEW_STEP;
use crate::report::TaskInfo;
#[cfg(leakfree_taskdump)]
use crate::report::{TaskKind, TaskState};

/// How long a dump may take before the report goes without it.
#[cfg(leakfree_taskdump)]
const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

/// Fills in each leaked task's stuck-at lines from a dump of the current
/// runtime, unless a worker may be stuck inside a poll (then a dump would stall
/// the runtime: every task gets one line saying why there is no stack).
/// `since` was sampled when the scope's body ended.
#[cfg(leakfree_taskdump)]
pub(crate) async fn attach(leaked: Vec<TaskInfo>, since: &PollSample) -> Vec<TaskInfo> {
    if let Some(reason) = dump_blocker(&leaked, since) {
        return leaked
            .into_iter()
            .map(|task| task.with_stuck_at(vec![reason.to_owned()]))
            .collect();
    }
    let ids: Vec<Id> = leaked.iter().filter_map(TaskInfo::id).collect();
    let mut stacks = stacks(&ids).await;
    leaked
        .into_iter()
        .map(|task| match task.id().and_then(|id| stacks.remove(&id)) {
            Some(stack) => task.with_stuck_at(stack),
            None => task,
        })
        .collect()
}

#[cfg(not(leakfree_taskdump))]
pub(crate) async fn attach(leaked: Vec<TaskInfo>, _since: &PollSample) -> Vec<TaskInfo> {
    leaked
}

/// Why a dump must not be requested now, if it must not: a leaked async task
/// is inside a poll (on a runtime without leakfree's poll hooks this is the
/// only sign of a stuck worker there is), or a worker thread has been inside
/// one poll since `since` was sampled.
#[cfg(leakfree_taskdump)]
fn dump_blocker(leaked: &[TaskInfo], since: &PollSample) -> Option<&'static str> {
    let polled_now = leaked
        .iter()
        .any(|task| task.kind() == TaskKind::Async && task.state() == TaskState::Running);
    if polled_now {
        Some(NOT_TAKEN_TASK_IN_POLL)
    } else if since.still_inside() > 0 {
        Some(NOT_TAKEN_WORKER_IN_POLL)
    } else {
        None
    }
}

#[cfg(leakfree_taskdump)]
const NOT_TAKEN_TASK_IN_POLL: &str = "not known: no task dump was taken, a leaked task \
     is inside a poll that has not returned (a dump would wait for it)";
#[cfg(leakfree_taskdump)]
const NOT_TAKEN_WORKER_IN_POLL: &str = "not known: no task dump was taken, a worker \
     thread has been inside one poll since the scope's body ended (a dump would wait for it)";

/// Stuck-at frames per task id, for the ids asked about; empty if the dump
/// timed out.
#[cfg(leakfree_taskdump)]
async fn stacks(ids: &[Id]) -> HashMap<Id, Vec<String>> {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return HashMap::new();
    };
    let Ok(dump) = tokio::time::timeout(DUMP_TIMEOUT, handle.dump()).await else {
        return HashMap::new();
    };
    dump.tasks()
        .iter()
        .filter(|task| ids.contains(&task.id()))
        .map(|task| (task.id(), trace_lines(task.trace())))
        .collect()
}

/// A trace's stuck-at lines: the user's frames root first and the library
/// call they wait in, or one line saying there is no tokio await point.
#[cfg(leakfree_taskdump)]
fn trace_lines(trace: &Trace) -> Vec<String> {
    let root = workspace_root();
    let mut lines = Vec::new();
    for backtrace in trace.resolve_backtraces() {
        let frames: Vec<Frame> = backtrace
            .frames()
            .flat_map(|frame| frame.symbols())
            .map(|symbol| Frame {
                name: symbol.name_demangled().unwrap_or("?").to_owned(),
                file: symbol
                    .filename()
                    .map(|path| path.display().to_string())
                    .unwrap_or_default(),
                line: symbol.lineno(),
                column: symbol.colno(),
            })
            .collect();
        lines.extend(trim(&frames, root.as_deref()));
    }
    if lines.is_empty() {
        lines.push(
            "no tokio await point recorded: it awaits a future outside tokio, a tokio future without a trace point (such as a socket's readiness), or one a combinator did not poll".to_owned(),
        );
    }
    lines
}

/// Runs `poll` (one poll of a future that is not a task, such as a scope's
/// body) in tokio's tracing mode, and returns its result with the stuck-at
/// lines of where that future is suspended. A traced poll is a real poll:
/// tokio's leaf futures record where they are, return `Pending` and wake.
#[cfg(leakfree_taskdump)]
pub(crate) fn trace_poll<R>(poll: impl FnOnce() -> R) -> (R, Vec<String>) {
    let (result, trace) = Trace::capture(poll);
    (result, trace_lines(&trace))
}

/// Without task dumps a poll is only a poll, and the line says how to see
/// where the future waits.
#[cfg(not(leakfree_taskdump))]
pub(crate) fn trace_poll<R>(poll: impl FnOnce() -> R) -> (R, Vec<String>) {
    let line =
        format!("not known without task dumps; to see it, run the tests as: {FULL_VIEW_STEP}");
    (poll(), vec![line])
}

#[cfg(leakfree_taskdump)]
/// The directory frame paths are shown relative to, so that they read like
/// spawn locations (which rustc records relative to the workspace root): the
/// outermost ancestor of the working directory whose `Cargo.toml` declares a
/// `[workspace]`, else the working directory.
fn workspace_root() -> Option<std::path::PathBuf> {
    static ROOT: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let cwd = std::env::current_dir().ok()?;
        let workspace = cwd.ancestors().filter(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.contains("[workspace]"))
        });
        Some(workspace.last().unwrap_or(&cwd).to_path_buf())
    })
    .clone()
}
