//! Every scope alive in the process: the list the live view reads.
//!
//! # Invariants
//! - A scope is in the list from [`ScopeShared::publish`] until its shared
//!   state is dropped, which removes it; the registry keeps the list itself,
//!   so the scope never calls up into the observers that read it.
//! - The list holds `Weak` references only. [`live_scopes`] upgrades them
//!   under the lock and returns them, so the last reference to a scope (whose
//!   drop takes this lock to leave the list) is never dropped while the lock
//!   is held.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::scope_shared::ScopeShared;
use super::slab::Slab;

static SCOPES: Mutex<Slab<Weak<ScopeShared>>> = Mutex::new(Slab::new());

/// Adds a scope; returns its key for [`remove`].
pub(super) fn insert(scope: &Arc<ScopeShared>) -> usize {
    let weak = Arc::downgrade(scope);
    SCOPES.lock().insert(weak)
}

/// Removes a scope (its shared state is being dropped).
pub(super) fn remove(key: usize) {
    let removed = SCOPES.lock().remove(key);
    drop(removed);
}

/// The scopes alive now, in no particular order.
pub(crate) fn live_scopes() -> Vec<Arc<ScopeShared>> {
    let scopes = SCOPES.lock();
    scopes.iter().filter_map(Weak::upgrade).collect()
    // The lock is released before the caller drops any of these.
}

/// Slots the list holds, used and free: bounded by the most scopes alive at
/// once, however many have come and gone.
#[cfg(test)]
pub(crate) fn slots() -> usize {
    SCOPES.lock().capacity_used()
}
