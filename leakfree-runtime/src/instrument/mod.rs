//! Instrumentation through tokio's hooks, one tier per build:
//!
//! | build | what runs |
//! |---|---|
//! | stable | nothing: [`stand_ins`] give the same names, doing nothing |
//! | `--cfg tokio_unstable` | the spawn and terminate hooks' attribution map: every `tokio::spawn` attributed to its scope |
//! | `cfg(leakfree_taskdump)` (also the `taskdump` feature, on Linux; set by the build script) | the poll hooks' watch of workers inside a poll, which guards task dumps |
//!
//! The layers above call [`hooked_tasks`], [`OwnSpawn`] and [`sample`]
//! without a `cfg` of their own. This layer reads the registry (a scope's
//! settings and counters, the current context) and is read by the exit
//! protocol, the live view and the public `hooks` module.

#[cfg(tokio_unstable)]
mod attribution;
#[cfg(tokio_unstable)]
mod id_hash;
#[cfg(leakfree_taskdump)]
mod poll_watch;
mod stand_ins;

use tokio::runtime::Builder;

#[cfg(tokio_unstable)]
pub(crate) use attribution::{OwnSpawn, hooked_tasks, install_spawn_hooks};
#[cfg(tokio_unstable)]
pub use attribution::{on_task_spawn, on_task_terminate};
#[cfg(leakfree_taskdump)]
pub(crate) use poll_watch::{PollSample, install_poll_hooks, sample};
#[cfg(leakfree_taskdump)]
pub use poll_watch::{on_after_task_poll, on_before_task_poll};
#[cfg(not(tokio_unstable))]
pub(crate) use stand_ins::{OwnSpawn, hooked_tasks, install_spawn_hooks};
#[cfg(not(leakfree_taskdump))]
pub(crate) use stand_ins::{PollSample, install_poll_hooks, sample};

/// Installs leakfree's spawn and terminate hooks on a runtime builder, and in
/// builds that take task dumps (the `taskdump` feature, on Linux) its poll
/// hooks too (they tell which workers are stuck inside a poll, so a task dump
/// is never requested while one is: tokio's dump would wait for that worker
/// forever). In builds without `--cfg tokio_unstable` it installs nothing.
///
/// ```
/// # #[cfg(tokio_unstable)] {
/// let runtime = leakfree_runtime::hooks::install(&mut tokio::runtime::Builder::new_multi_thread())
///     .enable_all()
///     .build()
///     .unwrap();
/// # drop(runtime);
/// # }
/// ```
pub fn install(builder: &mut Builder) -> &mut Builder {
    install_poll_hooks(install_spawn_hooks(builder))
}
