//! Find and stop leaked tokio tasks.
//!
//! A *leaked task* outlives the work that spawned it: a loop nobody stops, a
//! receiver waiting on a channel whose sender lives on, a ticker without a
//! shutdown path. `#[leak_checked]` runs an async test (or any async fn) in a
//! [`Scope`]: tasks started inside are tracked, survivors are reported and
//! cancelled when it ends, and the test fails with a report saying which
//! tasks, where they were spawned, and whether anything can still wake them.
//!
//! ```
//! use leakfree_runtime::{leak_checked, spawn};
//!
//! #[leak_checked]
//! #[tokio::test]
//! async fn pinger_stops_with_its_client() {
//!     let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
//!     let pinger = spawn(async move { let _ = (&mut stopped).await; });
//!     drop(stop); // the pinger sees the sender gone and ends: no leak
//!     pinger.await.unwrap();
//! }
//! # fn main() {}
//! ```
//!
//! # What is seen
//! - Tasks spawned with [`spawn()`], [`spawn_named`], [`spawn_blocking`] and
//!   [`spawn_background`] (drop-ins for tokio's) are tracked with their spawn
//!   location, and so are the tasks *they* spawn: full reports.
//! - Tasks spawned with plain `tokio::spawn` are counted, not located, by
//!   scopes that own their runtime (tests): a test fails on them too, with a
//!   count and a hint.
//!
//! # Architecture
//! The modules follow the data flow, one layer per stage. Imports point
//! down this list only (a layer uses those above it in the list, never those
//! below), and `.ci/arch_check.py` checks that no two files import each
//! other, directly or through others:
//!
//! 1. `report`: the vocabulary ([`LeakReport`], [`report::TaskInfo`],
//!    [`report::TaskState`]…) and its text. Imports nothing of the crate.
//! 2. `task`: one tracked task's record, which is also its waker, and the
//!    two loom-checked cores (wake state, abort slot). Knows no scope.
//! 3. `registry`: a scope's shared state, its task table, the thread's
//!    current scope, ignore filters, the process's list of live scopes.
//!    Calls none of the layers below: they read it.
//! 4. `instrument`: what tokio's hooks add (`--cfg tokio_unstable`: the spawn
//!    hook's attribution map; task-dump builds: the poll watch), with
//!    stand-ins of the same names in builds without them.
//! 5. `spawn`: the spawn functions, the wrapper futures, [`JoinHandle`].
//! 6. `exit`: the exit protocol (settle, verdict, cancel, abort, zombies),
//!    the untracked count, stuck-at stacks, the body's timeout, verdict
//!    totals (which also feed the `metrics` facade).
//! 7. Observers, each one file, reading the layers above and called by none
//!    of them: [`live`] (the live view), `metrics` (feature `metrics`: the
//!    gauges a scrape publishes), `artifacts` (`LEAKFREE_REPORT_DIR`).
//! 8. The public handles, each one file: `scope` ([`Scope`]), `policy`
//!    ([`Policy`] and the environment overrides), `duration` (the one
//!    duration grammar, below `policy`), `runtime` (the runtime the test
//!    forms build), `hooks` (the public face of `instrument`), `tower`
//!    (feature `tower`: a scope per request), and `__private` (what
//!    generated code calls) on top.
//!
//! Three build tiers, each named by one `cfg`: plain stable; `tokio_unstable`
//! (spawn hooks); `leakfree_taskdump` (set by the build script where tokio
//! can take task dumps: `tokio_unstable`, the `taskdump` feature, Linux).

mod artifacts;
mod detached_run;
mod duration;
mod exit;
pub mod hooks;
mod instrument;
pub mod live;
#[cfg(feature = "metrics")]
pub mod metrics;
mod policy;
mod registry;
pub mod report;
mod runtime;
mod scope;
mod spawn;
mod task;
#[cfg(feature = "tower")]
pub mod tower;

/// The README's code, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[doc(inline)]
pub use leakfree_macros::leak_checked;

pub use policy::Policy;
pub use report::LeakReport;
pub use scope::{
    DEFAULT_ABORT_TIMEOUT, DEFAULT_GRACE, DEFAULT_TEST_TIMEOUT, Scope, ScopeBuilder, current_token,
};
pub use spawn::{
    Entered, JoinHandle, spawn, spawn_background, spawn_blocking, spawn_local, spawn_named,
};
