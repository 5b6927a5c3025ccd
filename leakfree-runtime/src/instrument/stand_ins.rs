//! The instrument layer in builds without tokio's hooks: the same names as
//! the real modules, doing nothing, so no call site needs a `cfg`.
//!
//! - Without `--cfg tokio_unstable` no spawn hook runs: no task is ever
//!   attributed, so a scope has no hooked tasks and leakfree's own spawns
//!   need no marking.
//! - Without task dumps (`cfg(leakfree_taskdump)`) no poll hook runs: a
//!   sample of the workers inside a poll is empty.

#[cfg(not(tokio_unstable))]
pub(crate) use no_hooks::{OwnSpawn, hooked_tasks, install_spawn_hooks};
#[cfg(not(leakfree_taskdump))]
pub(crate) use no_poll_watch::{PollSample, install_poll_hooks, sample};

#[cfg(not(tokio_unstable))]
mod no_hooks {
    use std::time::Instant;

    use tokio::runtime::Builder;

    use crate::registry::ScopeShared;
    use crate::report::TaskInfo;

    /// No hooks to install.
    pub(crate) fn install_spawn_hooks(builder: &mut Builder) -> &mut Builder {
        builder
    }

    /// A hooked task: there are none without the hooks.
    #[derive(Debug, Clone)]
    pub(crate) enum HookedTask {}

    impl HookedTask {
        pub(crate) fn info(&self, _now: Instant) -> TaskInfo {
            match *self {}
        }
    }

    pub(crate) fn hooked_tasks(_scope: &ScopeShared) -> Vec<HookedTask> {
        Vec::new()
    }

    /// Nothing to hide leakfree's own spawns from.
    #[derive(Debug)]
    pub(crate) struct OwnSpawn;

    impl OwnSpawn {
        pub(crate) fn enter() -> OwnSpawn {
            OwnSpawn
        }
    }
}

#[cfg(not(leakfree_taskdump))]
mod no_poll_watch {
    use tokio::runtime::Builder;

    /// No poll hooks to install.
    pub(crate) fn install_poll_hooks(builder: &mut Builder) -> &mut Builder {
        builder
    }

    /// Without the poll hooks nothing is watched.
    #[derive(Debug)]
    pub(crate) struct PollSample;

    pub(crate) fn sample() -> PollSample {
        PollSample
    }
}
