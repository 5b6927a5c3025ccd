//! Which scope the code on this thread is running in.
//!
//! A context is installed in a thread-local only while a scoped future (a
//! scope's body, or a tracked task) is being polled, and while a tracked
//! blocking closure runs. Tracked spawns read it to learn their scope.
//!
//! # Invariants
//! - The thread-local holds a *borrowed* pointer: the scope of the innermost
//!   [`enter`] on this thread's stack, whose caller lends the `Arc` for the
//!   whole call. Installing and restoring it is a copy of two words, with no
//!   reference-count traffic and no drop check on the hot path.
//! - Installation is strictly nested: [`enter`] restores the previous value when
//!   it returns or unwinds, so nested scopes and tasks polled inside other
//!   tasks' polls see the innermost context, and the pointer never outlives
//!   the borrow it came from.
//! - Outside any poll the thread-local is `None`: code on a thread that is not
//!   polling scoped work is outside every scope.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

use super::scope_shared::ScopeShared;

/// The scope a piece of running code belongs to, and whether it is part of
/// background work (whose children are background work too).
#[derive(Clone, Debug)]
pub(crate) struct TaskContext {
    pub(crate) scope: Arc<ScopeShared>,
    pub(crate) background: bool,
}

/// What the thread-local holds: a [`TaskContext`] whose `Arc` is lent by
/// an [`enter`] below on the stack (see the invariants).
#[derive(Clone, Copy)]
struct Installed {
    /// `Arc::as_ptr` of the lent `Arc`.
    scope: NonNull<ScopeShared>,
    background: bool,
}

thread_local! {
    // `Copy` and without `Drop`: never destroyed, so every access works,
    // also while the thread exits.
    static CURRENT: Cell<Option<Installed>> = const { Cell::new(None) };
}

/// Runs `f` with `scope` installed as current, and `background` saying
/// whether it runs background work; restores the previous context
/// afterwards, also when `f` panics.
pub(crate) fn enter<R>(scope: &Arc<ScopeShared>, background: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Installed>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.set(self.0);
        }
    }
    let installed = Installed {
        // From `as_ptr`, not from `&**scope`: the pointer must keep the
        // provenance of the whole allocation, counts included.
        scope: NonNull::new(Arc::as_ptr(scope).cast_mut()).expect("an `Arc` is never null"),
        background,
    };
    let _restore = Restore(CURRENT.replace(Some(installed)));
    f()
}

/// [`enter`] with a whole context.
pub(crate) fn enter_context<R>(context: &TaskContext, f: impl FnOnce() -> R) -> R {
    enter(&context.scope, context.background, f)
}

/// Runs `f` with a reference to the current context, without cloning it.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&TaskContext>) -> R) -> R {
    let Some(installed) = CURRENT.get() else {
        return f(None);
    };
    // SAFETY: `installed.scope` is `Arc::as_ptr` of the `Arc` that the
    // innermost `enter` on this thread's stack borrows for as long as it
    // runs, and this runs inside it (`enter` restores the previous value
    // before it returns or unwinds; see the invariants): the `Arc` is alive,
    // so its count is at least one during `f`. The copy made here is never
    // dropped (`ManuallyDrop`), so the count is what it was afterwards;
    // `f` can only clone it, which takes a reference of its own.
    let scope = unsafe { Arc::from_raw(installed.scope.as_ptr().cast_const()) };
    let context = ManuallyDrop::new(TaskContext {
        scope,
        background: installed.background,
    });
    f(Some(&context))
}

/// A clone of the current context, if code on this thread runs inside a scope.
pub(crate) fn current() -> Option<TaskContext> {
    with_current(|current| current.cloned())
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::*;

    fn scope(name: &'static str) -> Arc<ScopeShared> {
        ScopeShared::for_test(name)
    }

    fn current_name() -> Option<String> {
        with_current(|current| current.map(|c| c.scope.name.to_string()))
    }

    /// The lent `Arc`'s count is what it was after every read, and a clone
    /// takes exactly one reference of its own: the counts the borrowed
    /// pointer's safety rests on.
    #[test]
    fn reading_the_context_leaves_the_count_alone_and_a_clone_takes_one() {
        let outer = scope("outer");
        assert_eq!(Arc::strong_count(&outer), 1);
        let kept = enter(&outer, true, || {
            for _ in 0..3 {
                with_current(|current| {
                    let current = current.expect("inside a scope");
                    assert!(Arc::ptr_eq(&current.scope, &outer));
                    assert!(current.background);
                });
            }
            assert_eq!(Arc::strong_count(&outer), 1, "reads take no reference");
            let clone = current().expect("inside a scope");
            assert_eq!(Arc::strong_count(&outer), 2, "a clone takes one");
            clone
        });
        assert!(current().is_none(), "restored after the call");
        assert_eq!(Arc::strong_count(&outer), 2);
        drop(kept);
        assert_eq!(Arc::strong_count(&outer), 1);
    }

    #[test]
    fn nested_contexts_are_restored_in_order_also_when_unwinding() {
        let outer = scope("outer");
        let inner = scope("inner");
        enter(&outer, false, || {
            assert_eq!(current_name().as_deref(), Some("outer"));
            let unwound = catch_unwind(AssertUnwindSafe(|| {
                enter(&inner, false, || {
                    assert_eq!(current_name().as_deref(), Some("inner"));
                    panic!("inside the inner scope");
                })
            }));
            assert!(unwound.is_err());
            assert_eq!(
                current_name().as_deref(),
                Some("outer"),
                "the outer context is back after the inner one unwound"
            );
        });
        assert_eq!(current_name(), None);
        assert_eq!(Arc::strong_count(&outer), 1);
        assert_eq!(Arc::strong_count(&inner), 1);
    }
}
