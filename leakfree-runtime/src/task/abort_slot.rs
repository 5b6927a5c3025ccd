//! A tracked task's abort handle, and the race between the task's spawn and
//! its scope's close.
//!
//! A record is registered in its scope before its task is handed to tokio,
//! but tokio's abort handle only exists after. So:
//! - the spawner, once tokio has the task, [`AbortSlot::attach`]es the handle,
//!   which publishes it *and then* reads the scope's `closing` flag, aborting
//!   at once if it is set;
//! - the closer calls [`start_closing`] *and then* aborts every slot it can
//!   see ([`AbortSlot::abort`]), finding either a handle or an empty slot.
//!
//! # Invariant
//! Whatever the interleaving, a task registered in a scope that closes is
//! aborted by one of the two (at least once; twice is harmless). Checked with
//! loom, spawns, finishes and the close racing, by `tests/loom_close.rs`,
//! which compiles this file against loom's primitives (`crate::sync`).

use super::sync::Mutex;
use super::sync::atomic::{AtomicBool, Ordering};

/// What can abort a task (tokio's `AbortHandle` here, a counter in the model).
pub(crate) trait Abort {
    fn abort(&self);
}

/// Where a record keeps its task's abort handle once tokio has the task.
#[derive(Debug)]
pub(crate) struct AbortSlot<H> {
    handle: Mutex<Option<H>>,
}

impl<H: Abort> AbortSlot<H> {
    pub(crate) fn new() -> Self {
        AbortSlot {
            handle: Mutex::new(None),
        }
    }

    /// Publishes the handle, then aborts the task if its scope is already
    /// closing. Returns whether it aborted.
    pub(crate) fn attach(&self, handle: H, closing: &AtomicBool) -> bool {
        *self.handle.lock() = Some(handle);
        if closing.load(Ordering::SeqCst) {
            self.abort();
            true
        } else {
            false
        }
    }

    /// Aborts the task if its handle is published; returns whether it was
    /// (if not, its spawner will see the scope closing and abort it).
    pub(crate) fn abort(&self) -> bool {
        match &*self.handle.lock() {
            Some(handle) => {
                handle.abort();
                true
            }
            None => false,
        }
    }

    /// Reads the handle, if published.
    pub(crate) fn with<R>(&self, read: impl FnOnce(Option<&H>) -> R) -> R {
        read(self.handle.lock().as_ref())
    }
}

/// Marks a scope as closing: every later [`AbortSlot::attach`] aborts. Call
/// before aborting the slots the scope can see.
pub(crate) fn start_closing(closing: &AtomicBool) {
    closing.store(true, Ordering::SeqCst);
}
