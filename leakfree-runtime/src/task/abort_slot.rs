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
//! The slot is written once, by its spawner, and only read after that: the
//! handle goes into a cell, then a `published` flag is stored. No lock: the
//! spawner pays one `SeqCst` fence instead of a lock's two
//! read-modify-writes.
//!
//! # Invariants
//! - Whatever the interleaving, a task registered in a scope that closes is
//!   aborted by one of the two (at least once; twice is harmless). Each side
//!   stores its flag (`published`, `closing`), then passes a `SeqCst` fence,
//!   then reads the other's: of two such fences one comes first in their
//!   single total order, and the read after the later one sees the store
//!   before the earlier one.
//! - The cell is written only by [`AbortSlot::attach`], at most once, before
//!   `published` is set (its callers' contract); it is read only after a
//!   load of `published` saw it set, whose ordering makes the write visible.
//!
//! Both are checked with loom, spawns, finishes and the close racing, by
//! `tests/loom_close.rs`, which compiles this file against loom's
//! primitives (`crate::sync`, whose cell checks every access).

use std::mem::MaybeUninit;

use super::sync::atomic::{AtomicBool, Ordering, fence};
use super::sync::cell::UnsafeCell;

/// What can abort a task (tokio's `AbortHandle` here, a counter in the model).
pub(crate) trait Abort {
    fn abort(&self);
}

/// Where a record keeps its task's abort handle once tokio has the task.
pub(crate) struct AbortSlot<H> {
    handle: UnsafeCell<MaybeUninit<H>>,
    published: AtomicBool,
}

// SAFETY: the cell is written once, by one thread, before `published` is
// set with a release store, and read only after an acquire load of
// `published` saw it set (see the invariants): no access races with the
// write. A
// shared slot hands out `&H` on any thread (`Sync` is needed of `H`), and
// the handle may be dropped on the thread that drops the slot (`Send`).
unsafe impl<H: Send + Sync> Sync for AbortSlot<H> {}
// SAFETY: moving the slot moves the handle with it.
unsafe impl<H: Send> Send for AbortSlot<H> {}

impl<H> std::fmt::Debug for AbortSlot<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbortSlot")
            .field("published", &self.published.load(Ordering::Acquire))
            .finish()
    }
}

impl<H: Abort> AbortSlot<H> {
    pub(crate) fn new() -> Self {
        AbortSlot {
            handle: UnsafeCell::new(MaybeUninit::uninit()),
            published: AtomicBool::new(false),
        }
    }

    /// Publishes the handle, then aborts the task if its scope is already
    /// closing. Returns whether it aborted.
    ///
    /// # Safety
    /// Called at most once per slot (by the task's spawner, once tokio has
    /// the task).
    pub(crate) unsafe fn attach(&self, handle: H, closing: &AtomicBool) -> bool {
        debug_assert!(
            !self.published.load(Ordering::Relaxed),
            "an abort slot was attached twice"
        );
        // SAFETY: the caller's contract: this is the one write, and no
        // reader looks before `published` is set just below.
        self.handle
            .with_mut(|cell| unsafe { (*cell).write(handle) });
        self.published.store(true, Ordering::Release);
        // Pairs with the fence in `start_closing`: either this sees
        // `closing`, or the closer's reads of `published` see this store.
        fence(Ordering::SeqCst);
        if closing.load(Ordering::Relaxed) {
            self.abort();
            true
        } else {
            false
        }
    }

    /// Aborts the task if its handle is published; returns whether it was
    /// (if not, its spawner will see the scope closing and abort it).
    pub(crate) fn abort(&self) -> bool {
        self.with(|handle| match handle {
            Some(handle) => {
                handle.abort();
                true
            }
            None => false,
        })
    }

    /// Reads the handle, if published.
    pub(crate) fn with<R>(&self, read: impl FnOnce(Option<&H>) -> R) -> R {
        if !self.published.load(Ordering::Acquire) {
            return read(None);
        }
        // SAFETY: `published` is set, so the one write happened before it
        // (the load synchronizes with the store) and none comes after.
        self.handle
            .with(|cell| read(Some(unsafe { (*cell).assume_init_ref() })))
    }
}

impl<H> Drop for AbortSlot<H> {
    fn drop(&mut self) {
        if self.published.load(Ordering::Acquire) {
            // SAFETY: published, so written; `&mut self` excludes every
            // other access, and the handle is dropped once, here.
            self.handle
                .with_mut(|cell| unsafe { (*cell).assume_init_drop() });
        }
    }
}

/// Marks a scope as closing: every later [`AbortSlot::attach`] aborts. Call
/// before aborting the slots the scope can see; its fence orders every
/// read the caller makes after it (see the invariants).
pub(crate) fn start_closing(closing: &AtomicBool) {
    closing.store(true, Ordering::SeqCst);
    fence(Ordering::SeqCst);
}
