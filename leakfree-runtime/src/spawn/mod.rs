//! How tasks get into a scope: the spawn functions (drop-ins for tokio's),
//! the futures leakfree wraps around scoped work, and [`JoinHandle`].
//!
//! A spawn reads the current scope from the registry's context, registers a
//! record before tokio has the task, and hands tokio a wrapper future that
//! deregisters when tokio drops it. Tasks an ignore filter lets out of the
//! scope are *ignored*: run outside it, only counted as known.

mod functions;
mod join;
mod wrappers;

pub(crate) use functions::spawn_task;
pub use functions::{spawn, spawn_background, spawn_blocking, spawn_local, spawn_named};
pub use join::JoinHandle;
pub(crate) use wrappers::CatchUnwind;
pub use wrappers::Entered;
