//! The primitives that the model-checked cores ([`super::wake_state`],
//! [`super::abort_slot`]) are written against: std's here; loom's in
//! `tests/loom_*.rs`, which compile the same source files with their own
//! `crate::sync`.

pub(crate) use std::sync::atomic;

/// loom's `UnsafeCell` shape (access through `with` and `with_mut`, which
/// loom checks in the model) over std's.
pub(crate) mod cell {
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// Reads through a pointer valid for `f`'s call.
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Writes through a pointer valid for `f`'s call.
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}
