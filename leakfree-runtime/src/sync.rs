//! The atomics that model-checked cores (`wake_state.rs`) are written
//! against: std's here; loom's in `tests/loom_wake_state.rs`, which compiles
//! the same source files with its own `crate::sync`.

pub(crate) use std::sync::atomic;
