//! Which scope the code on this thread is running in.
//!
//! A [`TaskContext`] is installed in a thread-local only while a scoped future
//! (a scope's body, or a tracked task) is being polled, and while a tracked
//! blocking closure runs. Tracked spawns read it to learn their scope.
//!
//! # Invariants
//! - The context is *moved* into the thread-local for the duration of a poll and
//!   moved back afterwards (no reference-count traffic on the hot path).
//! - Installation is strictly nested: [`enter`] restores the previous value when
//!   it returns or unwinds, so nested scopes and tasks polled inside other
//!   tasks' polls see the innermost context.
//! - Outside any poll the thread-local is `None`: code on a thread that is not
//!   polling scoped work is outside every scope.

use std::cell::Cell;
use std::sync::Arc;

use super::scope_shared::ScopeShared;

/// The scope a piece of running code belongs to, and whether it is part of
/// background work (whose children are background work too).
#[derive(Clone, Debug)]
pub(crate) struct TaskContext {
    pub(crate) scope: Arc<ScopeShared>,
    pub(crate) background: bool,
}

thread_local! {
    static CURRENT: Cell<Option<TaskContext>> = const { Cell::new(None) };
}

/// Runs `f` with the context in `slot` installed as current; puts it back into
/// `slot` afterwards, also when `f` panics. If the thread-local is gone (the
/// thread is exiting), `f` runs with the context left in `slot`.
pub(crate) fn enter<R>(slot: &mut Option<TaskContext>, f: impl FnOnce() -> R) -> R {
    struct Restore<'a> {
        slot: &'a mut Option<TaskContext>,
        previous: Option<TaskContext>,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let previous = self.previous.take();
            if let Ok(mine) = CURRENT.try_with(|current| current.replace(previous)) {
                *self.slot = mine;
            }
        }
    }
    let mut installed = slot.take();
    match CURRENT.try_with(|current| current.replace(installed.take())) {
        Ok(previous) => {
            let _restore = Restore { slot, previous };
            f()
        }
        Err(_) => {
            *slot = installed;
            f()
        }
    }
}

/// Runs `f` with a reference to the current context, without cloning it.
/// `f` must not enter another context (it runs with the slot emptied).
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&TaskContext>) -> R) -> R {
    struct PutBack<'a> {
        cell: &'a Cell<Option<TaskContext>>,
        value: Option<TaskContext>,
    }
    impl Drop for PutBack<'_> {
        fn drop(&mut self) {
            self.cell.set(self.value.take());
        }
    }
    let mut f = Some(f);
    let result = CURRENT.try_with(|current| {
        let guard = PutBack {
            cell: current,
            value: current.take(),
        };
        (f.take().expect("called once"))(guard.value.as_ref())
    });
    match result {
        Ok(value) => value,
        Err(_) => (f.take().expect("not called yet"))(None),
    }
}

/// A clone of the current context, if code on this thread runs inside a scope.
pub(crate) fn current() -> Option<TaskContext> {
    CURRENT
        .try_with(|current| {
            let value = current.take();
            let copy = value.clone();
            current.set(value);
            copy
        })
        .ok()
        .flatten()
}
