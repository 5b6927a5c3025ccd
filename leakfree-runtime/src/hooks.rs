//! tokio's task hooks (`--cfg tokio_unstable`): every `tokio::spawn`, third-party
//! code included, attributed to the scope it was spawned in.
//!
//! [`install`] exists in every build, so a runtime you build yourself can
//! call it unconditionally: without `--cfg tokio_unstable` it installs
//! nothing (tokio has no hooks there), with it the spawn hooks, and in builds
//! that take task dumps the poll hooks too.
//!
//! `on_task_spawn` runs on the spawning thread before the child is scheduled:
//! - inside scoped work (a scope's body or a tracked task being polled) the
//!   current context names the scope;
//! - inside a task that was itself attributed by this hook, `task::try_id()`
//!   is that parent, and the attribution map names its scope: grandchildren
//!   of any depth land in the same scope.
//!
//! Tasks leakfree spawns itself are skipped (their records already say more).
//! `on_task_terminate` removes the attribution and tells the scope, so a
//! scope's settle is woken by these tasks' ends too, not only by polling.
//!
//! Attributed tasks are reported with tokio's id and spawn location, but
//! leakfree holds no abort handle for them (tokio's hooks do not give one):
//! they are left to the runtime's shutdown, and the report says so.
//!
//! # Composing with your own hooks
//! tokio keeps one callback per hook. To keep yours, call leakfree's from it:
//!
//! ```ignore
//! builder
//!     .on_task_spawn(|meta| { leakfree_runtime::hooks::on_task_spawn(meta); my_spawn_hook(meta) })
//!     .on_task_terminate(|meta| { leakfree_runtime::hooks::on_task_terminate(meta); my_terminate_hook(meta) });
//! ```
//!
//! With the `taskdump` feature, do the same for `on_before_task_poll` and
//! `on_after_task_poll` (leakfree's `hooks::on_before_task_poll` and
//! `hooks::on_after_task_poll`): without them a dump is still guarded by the
//! leaked tasks' own states, but a worker stuck in a task leakfree does not
//! track can stall it.
//!

pub use crate::instrument::install;
#[cfg(leakfree_taskdump)]
pub use crate::instrument::{on_after_task_poll, on_before_task_poll};
#[cfg(tokio_unstable)]
pub use crate::instrument::{on_task_spawn, on_task_terminate};
