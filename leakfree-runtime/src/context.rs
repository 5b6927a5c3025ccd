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

use crate::registry::ScopeShared;

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
/// `slot` afterwards, also when `f` panics.
pub(crate) fn enter<R>(slot: &mut Option<TaskContext>, f: impl FnOnce() -> R) -> R {
    struct Restore<'a> {
        slot: &'a mut Option<TaskContext>,
        previous: Option<TaskContext>,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let previous = self.previous.take();
            let mine = CURRENT
                .try_with(|current| current.replace(previous))
                .ok()
                .flatten();
            *self.slot = mine;
        }
    }
    let installed = slot.take();
    let previous = CURRENT
        .try_with(|current| current.replace(installed))
        .ok()
        .flatten();
    let _restore = Restore { slot, previous };
    f()
}

/// Installs a context for the rest of a value's drop: [`install_for_drop`]
/// puts `context` in place and remembers what it replaced; dropping this
/// guard restores that. A tracked task's wrapper declares this guard after its
/// future, so the future's destructor (which may spawn) runs inside the scope.
#[derive(Debug, Default)]
pub(crate) struct RestoreAfterDrop {
    previous: Option<Option<TaskContext>>,
}

impl RestoreAfterDrop {
    pub(crate) fn install_for_drop(&mut self, context: Option<TaskContext>) {
        let previous = CURRENT.try_with(|current| current.replace(context)).ok();
        self.previous = previous;
    }
}

impl Drop for RestoreAfterDrop {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            let _ = CURRENT.try_with(|current| current.set(previous));
        }
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
