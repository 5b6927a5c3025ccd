//! The text a person reads: a report as a failing test prints it, a state's
//! one-line explanation, and the small formatting helpers every other text
//! of the crate (the live view's) uses, so all of them read alike.

use std::any::Any;
use std::fmt;
use std::panic::Location;
use std::time::Duration;

use tokio::task::Id;

use super::group::LeakGroup;
use super::leak_report::{LeakReport, Timeout};
use super::task_info::{TaskInfo, TaskKind, TaskState};

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskState::BlockedForever => {
                f.write_str("blocked forever: no waker held, nothing can wake it")
            }
            TaskState::Waiting { wakers: 1 } => {
                f.write_str("waiting: 1 waker held (timer, I/O or channel)")
            }
            TaskState::Waiting { wakers } => {
                write!(f, "waiting: {wakers} wakers held (timer, I/O or channel)")
            }
            TaskState::Scheduled => f.write_str("scheduled: woken, waiting for a worker"),
            TaskState::Running => f.write_str("running: inside a poll or blocking call"),
            TaskState::Unknown => f.write_str(
                "state unknown: spawned with plain tokio::spawn, seen by tokio's spawn hook; \
                 leakfree cannot abort it",
            ),
        }
    }
}

/// `1 task`, `3 tasks`.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The text of a panic payload as the default panic hook prints it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    panic_text(payload)
        .unwrap_or("Box<dyn Any> (a panic payload that is not a string)")
        .to_owned()
}

/// The text of a panic payload, if it is text (what `panic!` makes).
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> Option<&str> {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        Some(text)
    } else {
        payload.downcast_ref::<String>().map(String::as_str)
    }
}

macro_rules! full_view_step {
    () => {
        "RUSTFLAGS=\"--cfg tokio_unstable\" cargo test --features leakfree-runtime/taskdump"
    };
}

/// The one step that turns on the full view (spawn sites of plain
/// `tokio::spawn`, task states, stuck-at stacks) for tests only: every hint
/// of a report names it.
/// (Builds that take dumps never need to say how to turn them on.)
#[cfg(not(leakfree_taskdump))]
pub(crate) const FULL_VIEW_STEP: &str = full_view_step!();

/// What a report suggests about tasks it could only count.
#[cfg(not(tokio_unstable))]
const UNTRACKED_HINT: &str = concat!(
    "they were started with plain tokio::spawn (here or in a library); ",
    "to see where each was spawned and what it waits on, run the tests as: ",
    full_view_step!()
);
#[cfg(tokio_unstable)]
const UNTRACKED_HINT: &str = "they were started with plain tokio::spawn on a runtime without \
     leakfree's hooks (built by hand, or by another macro such as #[sqlx::test]); call \
     leakfree_runtime::hooks::install(&mut builder) on that runtime's builder to see where \
     they were spawned";

/// How to see what a hooked task waits on, in builds that cannot.
const UNKNOWN_STATE_HINT: &str = concat!(
    "hint: to see where it is stuck and what it waits on, run the tests as: ",
    full_view_step!()
);

/// What a scope that counts untracked tasks still cannot see, by build.
#[cfg(not(tokio_unstable))]
const BLIND_SPOTS: &str = "plain spawn_blocking work (build with --cfg tokio_unstable to count it) \
     and plain spawn_local tasks on a LocalSet (use leakfree_runtime::spawn_local)";
#[cfg(tokio_unstable)]
const BLIND_SPOTS: &str =
    "plain spawn_local tasks on a LocalSet (use leakfree_runtime::spawn_local)";

/// A spawn site as reports print it: `file:line:column`, with a dependency's
/// file shown from its package directory (`hyper-util-0.1.10/src/pool.rs`)
/// instead of the machine's path to cargo's registry or git checkouts.
pub(crate) fn site(location: &Location<'_>) -> String {
    format!(
        "{}:{}:{}",
        package_relative(location.file()),
        location.line(),
        location.column()
    )
}

/// `/home/me/.cargo/registry/src/index.crates.io-6f17d22bba15001f/hyper-util-0.1.10/src/pool.rs`
/// → `hyper-util-0.1.10/src/pool.rs`; a git checkout's
/// `…/.cargo/git/checkouts/<repo>-<hash>/<rev>/src/x.rs` → `<repo>-<hash>/<rev>/src/x.rs`;
/// any other path as it is.
pub(crate) fn package_relative(file: &str) -> &str {
    for marker in ["/registry/src/", "\\registry\\src\\"] {
        if let Some(at) = file.rfind(marker) {
            let rest = &file[at + marker.len()..];
            // Past the index directory.
            if let Some(slash) = rest.find(['/', '\\']) {
                return &rest[slash + 1..];
            }
        }
    }
    for marker in ["/git/checkouts/", "\\git\\checkouts\\"] {
        if let Some(at) = file.rfind(marker) {
            return &file[at + marker.len()..];
        }
    }
    file
}

/// What a task's stack says it waits on, from the library call its
/// innermost user frame is suspended in (the last stuck-at line): for tasks
/// whose state leakfree's own probe cannot read (plain `tokio::spawn`).
pub(crate) fn waits_on(stuck_at: &[String]) -> Option<String> {
    let call = stuck_at.last()?;
    let what = if call.starts_with("tokio::time") {
        "a timer"
    } else if call.starts_with("tokio::sync") {
        "a channel or lock (tokio::sync)"
    } else if call.starts_with("tokio::net")
        || call.starts_with("tokio::io")
        || call.starts_with("tokio::fs")
    {
        "I/O"
    } else if call.starts_with("tokio::task") || call.starts_with("tokio::runtime") {
        "another task"
    } else if call.starts_with("not known") || call.starts_with("no tokio await point") {
        return None;
    } else {
        "a future outside tokio"
    };
    Some(format!("{what}: {call}"))
}

/// Formats a duration the way reports print it: `850us`, `103ms`, `12.5s`.
pub(crate) fn human_duration(duration: Duration) -> String {
    if duration < Duration::from_millis(1) {
        format!("{}us", duration.as_micros())
    } else if duration < Duration::from_secs(10) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// `task 12 "worker"`, `blocking task 7`: how a report names one task.
fn label(kind: TaskKind, id: Option<Id>, name: Option<&str>) -> String {
    let kind = match kind {
        TaskKind::Async => "task",
        TaskKind::Blocking => "blocking task",
    };
    let mut label = match id {
        Some(id) => format!("{kind} {id}"),
        None => kind.to_owned(),
    };
    if let Some(name) = name {
        label.push_str(&format!(" {name:?}"));
    }
    label
}

fn task_label(task: &TaskInfo) -> String {
    label(task.kind(), task.id(), task.name())
}

fn write_group(f: &mut fmt::Formatter<'_>, index: usize, group: &LeakGroup<'_>) -> fmt::Result {
    let first = group.first();
    if group.count() == 1 {
        writeln!(
            f,
            "  {index}) {} spawned at {}, alive {}",
            task_label(first),
            site(first.location()),
            human_duration(first.age())
        )?;
    } else {
        let youngest = group
            .tasks()
            .iter()
            .map(|t| t.age())
            .min()
            .unwrap_or_default();
        let oldest = group
            .tasks()
            .iter()
            .map(|t| t.age())
            .max()
            .unwrap_or_default();
        let kind = match first.kind() {
            TaskKind::Async => "tasks",
            TaskKind::Blocking => "blocking tasks",
        };
        let names = first
            .name()
            .map(|name| format!(" {name:?}"))
            .unwrap_or_default();
        writeln!(
            f,
            "  {index}) {} {kind}{names} spawned at {}, alive {}",
            group.count(),
            site(first.location()),
            {
                let (youngest, oldest) = (human_duration(youngest), human_duration(oldest));
                if youngest == oldest {
                    oldest
                } else {
                    format!("{youngest} to {oldest}")
                }
            }
        )?;
        let ids: Vec<String> = group
            .tasks()
            .iter()
            .filter_map(|t| t.id())
            .take(5)
            .map(|id| id.to_string())
            .collect();
        let more = group.count().saturating_sub(ids.len());
        if more > 0 {
            writeln!(f, "     ids {} and {more} more", ids.join(", "))?;
        } else {
            writeln!(f, "     ids {}", ids.join(", "))?;
        }
    }
    writeln!(f, "     {}", first.state())?;
    if first.state() == TaskState::Unknown {
        match waits_on(first.stuck_at()) {
            Some(waits) => writeln!(f, "     waits on {waits}")?,
            None if first.stuck_at().is_empty() => {
                writeln!(f, "     {UNKNOWN_STATE_HINT}")?;
            }
            None => {}
        }
    }
    for (i, frame) in first.stuck_at().iter().enumerate() {
        let label = if i == 0 { "stuck at: " } else { "          " };
        writeln!(f, "     {label}{frame}")?;
    }
    Ok(())
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return write!(
                f,
                "leakfree: `{}` is clean ({} tracked, grace {})",
                self.scope_name(),
                plural(self.spawned(), "task", "tasks"),
                human_duration(self.grace())
            );
        }
        writeln!(
            f,
            "leakfree: {} from `{}` (grace {})",
            headline(self),
            self.scope_name(),
            human_duration(self.grace())
        )?;
        if let Some(timeout) = self.timeout() {
            write_timeout(f, timeout)?;
        }
        for (i, group) in self.groups().iter().enumerate() {
            write_group(f, i + 1, group)?;
        }
        if let Some(untracked) = self.untracked_count().filter(|u| u.alive() > 0) {
            let verdict = if untracked.fails() {
                "fails the scope"
            } else {
                "allowed by `allow_untracked`"
            };
            writeln!(
                f,
                "  untracked: {} alive that leakfree did not spawn ({verdict})\n     \
                 hint: {UNTRACKED_HINT}",
                plural(untracked.alive(), "task", "tasks"),
            )?;
        }
        if let Some(blocking) = self.untracked_blocking().filter(|b| *b > 0) {
            writeln!(
                f,
                "  untracked: {} busy with blocking work leakfree did not spawn \
                 (plain spawn_blocking): it cannot be located or aborted; \
                 spawn it with leakfree_runtime::spawn_blocking",
                plural(blocking, "blocking-pool thread", "blocking-pool threads"),
            )?;
        }
        for panic in self.panics() {
            writeln!(
                f,
                "  panicked: {} spawned at {} panicked and no JoinHandle observed it: {}",
                label(TaskKind::Async, panic.id(), panic.name()),
                site(panic.location()),
                panic.message()
            )?;
        }
        for zombie in self.zombies() {
            writeln!(
                f,
                "  zombie: {} spawned at {} still alive after abort ({})",
                task_label(zombie),
                site(zombie.location()),
                match zombie.kind() {
                    TaskKind::Blocking => "blocking code cannot be aborted",
                    TaskKind::Async => "a poll that does not return",
                }
            )?;
        }
        if self.untracked_count().is_some() {
            writeln!(f, "  not seen: {BLIND_SPOTS}")?;
        }
        let mut left = Vec::new();
        if self.unabortable() > 0 {
            left.push(plural(self.unabortable(), "hooked task", "hooked tasks"));
        }
        if let Some(u) = self.untracked_count().filter(|u| u.alive() > 0) {
            left.push(plural(u.alive(), "untracked task", "untracked tasks"));
        }
        let untracked_left = if left.is_empty() {
            String::new()
        } else {
            format!(", {} left to the runtime's shutdown", left.join(" and "))
        };
        write!(
            f,
            "  enforced: {} aborted, {}{untracked_left}",
            self.aborted(),
            plural(self.zombies().len(), "zombie", "zombies")
        )
    }
}

fn headline(report: &LeakReport) -> String {
    let mut parts = Vec::new();
    if let Some(timeout) = report.timeout() {
        parts.push(format!(
            "timed out after {}",
            human_duration(timeout.after())
        ));
    }
    if !report.leaked().is_empty() {
        parts.push(plural(report.leaked().len(), "task", "tasks") + " leaked");
    }
    if report.failing_untracked() > 0 {
        parts.push(
            plural(
                report.failing_untracked(),
                "untracked task",
                "untracked tasks",
            ) + " left running",
        );
    }
    if !report.panics().is_empty() {
        parts.push(plural(report.panics().len(), "task panic", "task panics") + " never observed");
    }
    if report.leaked().is_empty() && !report.zombies().is_empty() {
        parts.push(plural(
            report.zombies().len(),
            "zombie task",
            "zombie tasks",
        ));
    }
    parts.join(" and ")
}

fn write_timeout(f: &mut fmt::Formatter<'_>, timeout: &Timeout) -> fmt::Result {
    writeln!(
        f,
        "  timed out: the body was still running after {}, with {} in the scope",
        human_duration(timeout.after()),
        plural(timeout.tasks().len(), "task", "tasks")
    )?;
    for (i, frame) in timeout.body_stuck_at().iter().enumerate() {
        let label = if i == 0 {
            "body stuck at: "
        } else {
            "               "
        };
        writeln!(f, "     {label}{frame}")?;
    }
    for task in timeout.tasks() {
        writeln!(
            f,
            "     {} spawned at {}, alive {}: {}",
            task_label(task),
            site(task.location()),
            human_duration(task.age()),
            task.state()
        )?;
        for (i, frame) in task.stuck_at().iter().enumerate() {
            let label = if i == 0 { "stuck at: " } else { "          " };
            writeln!(f, "       {label}{frame}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{package_relative, waits_on};

    #[test]
    fn a_dependency_site_is_shown_from_its_package_directory() {
        assert_eq!(
            package_relative(
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hyper-util-0.1.10/src/client/legacy/pool.rs"
            ),
            "hyper-util-0.1.10/src/client/legacy/pool.rs"
        );
        assert_eq!(
            package_relative("/home/me/.cargo/git/checkouts/bb8-4f1c2a/9d3e1f0/bb8/src/inner.rs"),
            "bb8-4f1c2a/9d3e1f0/bb8/src/inner.rs"
        );
        assert_eq!(
            package_relative("tests/tests/attribute.rs"),
            "tests/tests/attribute.rs",
            "a workspace path stays as rustc wrote it"
        );
    }

    #[test]
    fn the_innermost_library_call_says_what_a_task_waits_on() {
        let stack = |call: &str| vec!["app::run at src/main.rs:3:9".to_owned(), call.to_owned()];
        assert_eq!(
            waits_on(&stack("tokio::time::sleep::Sleep::poll")).as_deref(),
            Some("a timer: tokio::time::sleep::Sleep::poll")
        );
        assert_eq!(
            waits_on(&stack("tokio::sync::mpsc::bounded::Receiver<T>::recv")).as_deref(),
            Some("a channel or lock (tokio::sync): tokio::sync::mpsc::bounded::Receiver<T>::recv")
        );
        assert_eq!(
            waits_on(&stack("tokio::net::tcp::stream::TcpStream::read")).as_deref(),
            Some("I/O: tokio::net::tcp::stream::TcpStream::read")
        );
        assert_eq!(
            waits_on(&stack("tokio::runtime::task::join::JoinHandle<T>::poll")).as_deref(),
            Some("another task: tokio::runtime::task::join::JoinHandle<T>::poll")
        );
        assert_eq!(
            waits_on(&stack("futures_channel::oneshot::Receiver<T>::poll")).as_deref(),
            Some("a future outside tokio: futures_channel::oneshot::Receiver<T>::poll")
        );
        assert_eq!(waits_on(&[]), None);
        assert_eq!(
            waits_on(&[
                "no tokio await point recorded: it awaits a future outside tokio, a tokio future without a trace point (such as a socket's readiness), or one a combinator did not poll"
                    .to_owned()
            ]),
            None
        );
    }
}
