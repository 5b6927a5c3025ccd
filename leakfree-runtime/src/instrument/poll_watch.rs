//! Which worker threads are inside a task poll: the guard that keeps a task
//! dump from stalling a runtime (dump builds only: `cfg(leakfree_taskdump)`).
//!
//! tokio's task dump on a multi-thread runtime waits until every worker joins
//! it. A worker inside a poll that never returns (a busy loop, a blocking call
//! in async code) never joins, and the workers that did join wait for it in a
//! barrier: the whole runtime stops, timers included, so even the dump's own
//! timeout cannot fire. A scope therefore asks, before it takes a dump: has
//! some worker thread of this runtime been inside one and the same poll since
//! the scope's body ended? If so the dump is not taken, and the report says
//! why.
//!
//! The answer comes from tokio's poll hooks, which leakfree installs (next to
//! its spawn hooks) on runtimes it builds, and which
//! [`hooks::install`](crate::hooks::install) adds to a user's builder, in
//! builds that take dumps (`cfg(leakfree_taskdump)`; elsewhere the stand-in
//! in [`super::stand_ins`] samples nothing). Each thread that
//! polls tasks owns a slot with a sequence number: odd while a poll is under
//! way, bumped again when it returns. Two samples with the same odd number
//! mean one poll spanned the time between them.
//!
//! # Invariants
//! - Only a slot's own thread writes its sequence number; others only read.
//! - A slot is in the registry from its thread's first poll to the thread's
//!   exit, and records the runtime that thread works for.
//! - On a runtime without the poll hooks no slot exists: a sample is empty and
//!   nothing is ever reported stuck (leaked tracked tasks' own states remain
//!   the only guard there).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;
use tokio::runtime::{Builder, Handle, Id, TaskMeta};

#[derive(Debug)]
pub(crate) struct Slot {
    runtime: Option<Id>,
    sequence: AtomicU64,
}

static SLOTS: LazyLock<Mutex<Vec<Arc<Slot>>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// The thread's slot; leaves the registry when the thread exits.
struct Registered(Arc<Slot>);

impl Drop for Registered {
    fn drop(&mut self) {
        SLOTS.lock().retain(|slot| !Arc::ptr_eq(slot, &self.0));
    }
}

thread_local! {
    static SLOT: Registered = {
        let slot = Arc::new(Slot {
            runtime: Handle::try_current().ok().map(|handle| handle.id()),
            sequence: AtomicU64::new(0),
        });
        SLOTS.lock().push(slot.clone());
        Registered(slot)
    };
}

fn bump() {
    let _ = SLOT.try_with(|Registered(slot)| {
        let next = slot.sequence.load(Ordering::Relaxed) + 1;
        slot.sequence.store(next, Ordering::Release);
    });
}

/// Adds the poll hooks to a runtime builder.
pub(crate) fn install_poll_hooks(builder: &mut Builder) -> &mut Builder {
    builder
        .on_before_task_poll(on_before_task_poll)
        .on_after_task_poll(on_after_task_poll)
}

/// leakfree's before-poll hook; call it from your own
/// `on_before_task_poll` if you have one.
pub fn on_before_task_poll(_: &TaskMeta<'_>) {
    bump();
}

/// leakfree's after-poll hook; call it from your own
/// `on_after_task_poll` if you have one.
pub fn on_after_task_poll(_: &TaskMeta<'_>) {
    bump();
}

/// The current runtime's threads, other than the caller's own, that were
/// inside a poll when sampled.
#[derive(Debug)]
pub(crate) struct PollSample(Vec<(Arc<Slot>, u64)>);

pub(crate) fn sample() -> PollSample {
    let Ok(handle) = Handle::try_current() else {
        return PollSample(Vec::new());
    };
    let runtime = Some(handle.id());
    let own = SLOT.try_with(|Registered(slot)| Arc::as_ptr(slot)).ok();
    let inside = SLOTS
        .lock()
        .iter()
        .filter(|slot| slot.runtime == runtime && Some(Arc::as_ptr(slot)) != own)
        .map(|slot| (slot.clone(), slot.sequence.load(Ordering::Acquire)))
        .filter(|(_, sequence)| sequence % 2 == 1)
        .collect();
    PollSample(inside)
}

impl PollSample {
    /// Threads still inside the very poll they were in when sampled.
    pub(crate) fn still_inside(&self) -> usize {
        self.0
            .iter()
            .filter(|(slot, sequence)| slot.sequence.load(Ordering::Acquire) == *sequence)
            .count()
    }
}
