//! The primitives that the model-checked cores ([`super::wake_state`],
//! [`super::abort_slot`]) are written against: std's atomics and parking_lot's
//! mutex here; loom's in `tests/loom_*.rs`, which compile the same source
//! files with their own `crate::sync`.

pub(crate) use parking_lot::Mutex;
pub(crate) use std::sync::atomic;
