//! The task: what leakfree knows of one tracked task and how it tells whether
//! the task can still be woken. The lowest layer above the report's
//! vocabulary; it knows nothing of scopes.
//!
//! - [`TaskRecord`] is the task's record *and* the waker it is polled with
//!   (one allocation), so its strong count tells how many wakers are held.
//! - `wake_state` (poll counter and woken flag) and `abort_slot` (the race
//!   between a spawn and its scope's close) are the two lock-free cores. They
//!   are written against `sync` only, so `tests/loom_wake_state.rs` and
//!   `tests/loom_close.rs` compile the very same files against loom.
//! - `lent` is debug builds' check that no record is freed while a scope's
//!   table borrows it.
//! - `panic_watch` is where a task's panic and its `JoinHandle` meet (the
//!   handle holds no reference to the record).

mod abort_slot;
pub(crate) mod lent;
pub(crate) mod panic_watch;
mod record;
mod spawn_clock;
mod sync;
mod wake_state;

pub(crate) use abort_slot::start_closing;
pub(crate) use record::{Role, TaskRecord};
pub(crate) use spawn_clock::SpawnInstant;
