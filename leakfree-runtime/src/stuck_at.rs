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
//! worker has been inside one poll since the body ended (`poll_watch.rs`);
//! the report then says the stack is not known and why. A dump that starts is
//! still bounded by a timeout.
//!
//! A backtrace is trimmed to the frames that matter: the user's own frames
//! (outside the cargo registry, the standard library and leakfree), root
//! first, then the one library call they wait in (e.g.
//! `tokio::sync::mpsc::bounded::Receiver<T>::recv`).
//!
//! Without dumps in the build only the trimming (tested on its own) remains.
#![cfg_attr(
    not(all(
        tokio_unstable,
        feature = "taskdump",
        target_os = "linux",
        any(
            target_arch = "aarch64",
            target_arch = "x86",
            target_arch = "x86_64",
            target_arch = "s390x"
        )
    )),
    allow(dead_code, unused_imports)
)]

use std::collections::HashMap;
use std::time::Duration;

use tokio::task::Id;

use crate::poll_watch::PollSample;
use crate::record::{TaskKind, TaskState};
use crate::report::TaskInfo;

/// How long a dump may take before the report goes without it.
pub(crate) const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

/// Fills in each leaked task's stuck-at lines from a dump of the current
/// runtime, unless a worker may be stuck inside a poll (then a dump would stall
/// the runtime: every task gets one line saying why there is no stack).
/// `since` was sampled when the scope's body ended.
#[cfg(all(
    tokio_unstable,
    feature = "taskdump",
    target_os = "linux",
    any(
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "s390x"
    )
))]
pub(crate) async fn attach(leaked: &mut [TaskInfo], since: &PollSample) {
    if let Some(reason) = dump_blocker(leaked, since) {
        for task in leaked.iter_mut() {
            task.stuck_at = vec![reason.to_owned()];
        }
        return;
    }
    let ids: Vec<Id> = leaked.iter().filter_map(|task| task.id).collect();
    let mut stacks = stacks(&ids).await;
    for task in leaked.iter_mut() {
        if let Some(stack) = task.id.and_then(|id| stacks.remove(&id)) {
            task.stuck_at = stack;
        }
    }
}

#[cfg(not(all(
    tokio_unstable,
    feature = "taskdump",
    target_os = "linux",
    any(
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "s390x"
    )
)))]
pub(crate) async fn attach(_leaked: &mut [TaskInfo], _since: &PollSample) {}

/// Why a dump must not be requested now, if it must not: a leaked async task
/// is inside a poll (on a runtime without leakfree's poll hooks this is the
/// only sign of a stuck worker there is), or a worker thread has been inside
/// one poll since `since` was sampled.
pub(crate) fn dump_blocker(leaked: &[TaskInfo], since: &PollSample) -> Option<&'static str> {
    let polled_now = leaked
        .iter()
        .any(|task| task.kind == TaskKind::Async && task.state == TaskState::Running);
    if polled_now {
        Some(NOT_TAKEN_TASK_IN_POLL)
    } else if since.still_inside() > 0 {
        Some(NOT_TAKEN_WORKER_IN_POLL)
    } else {
        None
    }
}

pub(crate) const NOT_TAKEN_TASK_IN_POLL: &str = "not known: no task dump was taken, a leaked task \
     is inside a poll that has not returned (a dump would wait for it)";
pub(crate) const NOT_TAKEN_WORKER_IN_POLL: &str = "not known: no task dump was taken, a worker \
     thread has been inside one poll since the scope's body ended (a dump would wait for it)";

/// Stuck-at frames per task id, for the ids asked about; empty if the dump
/// timed out.
#[cfg(all(
    tokio_unstable,
    feature = "taskdump",
    target_os = "linux",
    any(
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "s390x"
    )
))]
async fn stacks(ids: &[Id]) -> HashMap<Id, Vec<String>> {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return HashMap::new();
    };
    let Ok(dump) = tokio::time::timeout(DUMP_TIMEOUT, handle.dump()).await else {
        return HashMap::new();
    };
    let root = workspace_root();
    dump.tasks()
        .iter()
        .filter(|task| ids.contains(&task.id()))
        .map(|task| {
            let mut lines = Vec::new();
            for backtrace in task.trace().resolve_backtraces() {
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
                    "no tokio await point: it awaits a future outside tokio (or none at all)"
                        .to_owned(),
                );
            }
            (task.id(), lines)
        })
        .collect()
}

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

/// One resolved frame of a backtrace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Frame {
    pub(crate) name: String,
    pub(crate) file: String,
    pub(crate) line: Option<u32>,
    pub(crate) column: Option<u32>,
}

/// The user's frames root first, then the library call the innermost one
/// waits in. `frames` come leaf first, as backtraces list them.
pub(crate) fn trim(frames: &[Frame], root: Option<&std::path::Path>) -> Vec<String> {
    let Some(innermost_user) = frames.iter().position(is_user_frame) else {
        return Vec::new();
    };
    let mut lines: Vec<String> = frames[innermost_user..]
        .iter()
        .rev()
        .filter(|frame| is_user_frame(frame))
        .map(|frame| {
            let file = match root.and_then(|root| frame.file.strip_prefix(root.to_str()?)) {
                Some(relative) => relative.trim_start_matches('/').to_owned(),
                None => frame.file.clone(),
            };
            let mut line = format!("{} at {file}", clean_name(&frame.name));
            if let Some(number) = frame.line {
                line.push_str(&format!(":{number}"));
                if let Some(column) = frame.column {
                    line.push_str(&format!(":{column}"));
                }
            }
            line
        })
        .collect();
    lines.dedup();
    // The library call the innermost user frame is suspended in: the
    // outermost library frame on the leaf side of it.
    if let Some(call) = frames[..innermost_user]
        .iter()
        .rev()
        .find(|f| !is_internal(&f.name))
    {
        lines.push(clean_name(&call.name));
    }
    lines
}

fn is_user_frame(frame: &Frame) -> bool {
    !frame.file.is_empty()
        && !frame.file.contains("/.cargo/registry/")
        && !frame.file.contains("/.cargo/git/")
        && !frame.file.starts_with("/rustc/")
        && !frame.file.contains("/library/core/")
        && !frame.file.contains("/library/std/")
        && !frame.file.contains("leakfree-runtime/src/")
}

/// Frames that are plumbing rather than an API a user called.
fn is_internal(name: &str) -> bool {
    name.starts_with('<') && (name.contains("core::future") || name.contains("PollFn"))
}

/// `tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}::h2a5f…` →
/// `tokio::sync::mpsc::bounded::Receiver<T>::recv`.
pub(crate) fn clean_name(name: &str) -> String {
    let mut name = name;
    if let Some((head, hash)) = name.rsplit_once("::h") {
        if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) {
            name = head;
        }
    }
    while let Some(head) = name.strip_suffix("::{{closure}}") {
        name = head;
    }
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, file: &str, line: u32) -> Frame {
        Frame {
            name: name.to_owned(),
            file: file.to_owned(),
            line: Some(line),
            column: Some(9),
        }
    }

    #[test]
    fn keeps_user_frames_root_first_and_the_call_they_wait_in() {
        let registry = "/root/.cargo/registry/src/index/tokio-1.54.1/src/sync/mpsc";
        let frames = vec![
            frame(
                "tokio::sync::mpsc::chan::Rx<T,S>::recv::h8eb63932efc44822",
                &format!("{registry}/chan.rs"),
                308,
            ),
            frame(
                "tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}::{{closure}}::hae3e032f0655fa8e",
                &format!("{registry}/bounded.rs"),
                245,
            ),
            frame(
                "<core::future::poll_fn::PollFn<F> as core::future::future::Future>::poll::hb7b7cae4f3e2c752",
                "/rustc/abc/library/core/src/future/poll_fn.rs",
                151,
            ),
            frame(
                "tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}::h2a5f5cc90fcab1e0",
                &format!("{registry}/bounded.rs"),
                245,
            ),
            frame(
                "app::client::ping_loop::{{closure}}::h9c7c232b1654ca21",
                "/work/app/src/client.rs",
                57,
            ),
            frame(
                "app::client::run::{{closure}}::h9c7c232b1654ca22",
                "/work/app/src/client.rs",
                40,
            ),
            frame(
                "leakfree_runtime::tracked::Tracked<F>::poll::h9c7c232b1654ca23",
                "/work/leakfree-runtime/src/tracked.rs",
                80,
            ),
        ];
        let lines = trim(&frames, Some(std::path::Path::new("/work/app")));
        assert_eq!(
            lines,
            vec![
                "app::client::run at src/client.rs:40:9",
                "app::client::ping_loop at src/client.rs:57:9",
                "tokio::sync::mpsc::bounded::Receiver<T>::recv",
            ]
        );
    }

    #[test]
    fn no_user_frame_means_nothing_to_show() {
        let frames = vec![frame(
            "tokio::x::h8eb63932efc44822",
            "/root/.cargo/registry/x.rs",
            1,
        )];
        assert!(trim(&frames, None).is_empty());
    }

    #[test]
    fn names_lose_hashes_and_closures() {
        assert_eq!(
            clean_name("a::b::{{closure}}::{{closure}}::h8eb63932efc44822"),
            "a::b"
        );
        assert_eq!(clean_name("a::hash"), "a::hash");
    }
}
