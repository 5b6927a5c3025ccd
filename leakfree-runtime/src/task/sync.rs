//! The primitives that model-checked cores (`wake_state.rs`,
//! `abort_slot.rs`) are written against: std's atomics and parking_lot's
//! mutex here; loom's in `tests/loom_*.rs`, which compile the same source
//! files with their own `crate::sync`.

pub(crate) use parking_lot::Mutex;
pub(crate) use std::sync::atomic;
