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
//! - Tasks spawned with [`spawn`], [`spawn_named`], [`spawn_blocking`] and
//!   [`spawn_background`] (drop-ins for tokio's) are tracked with their spawn
//!   location, and so are the tasks *they* spawn: full reports.
//! - Tasks spawned with plain `tokio::spawn` are counted, not located, by
//!   scopes that own their runtime (tests): a test fails on them too, with a
//!   count and a hint.
//!
//! # Crate layout
//! One concept per module; this file only re-exports.

mod abort_slot;
mod context;
mod duration;
mod env;
mod exit;
mod filter;
#[cfg(tokio_unstable)]
pub mod hooks;
#[cfg(tokio_unstable)]
mod id_hash;
mod join;
pub mod live;
mod policy;
mod poll_watch;
mod record;
mod registry;
mod report;
mod runtime;
mod scope;
mod spawn;
mod stuck_at;
mod sync;
mod table;
#[cfg(feature = "tower")]
pub mod tower;
mod tracked;
mod untracked;
mod wake_state;

/// The README's code, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[doc(inline)]
pub use leakfree_macros::leak_checked;

pub use join::JoinHandle;
pub use policy::Policy;
pub use record::{TaskKind, TaskState};
pub use report::{LeakGroup, LeakReport, TaskInfo, TaskPanic};
pub use runtime::{Flavor, RuntimeOptions};
pub use scope::{DEFAULT_ABORT_TIMEOUT, DEFAULT_GRACE, Scope, ScopeBuilder};
pub use spawn::{spawn, spawn_background, spawn_blocking, spawn_local, spawn_named};
pub use tracked::Entered;

/// The cancellation token of the scope the caller runs in: cancelled when
/// that scope ends. `None` outside any scope.
pub fn current_token() -> Option<tokio_util::sync::CancellationToken> {
    context::current().map(|c| c.scope.token.clone())
}
