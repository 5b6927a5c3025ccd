//! The lock-free core of the blocked-forever verdict: a task's poll counter
//! and woken flag, and the one way to read them together with the task's
//! reference count.
//!
//! [`TaskRecord`](super::record::TaskRecord) says what the pieces mean (the record is the task's waker, so
//! its strong count minus the wrapper's and the reader's references is the
//! number of wakers held somewhere). This file holds only the orderings, so
//! that `tests/loom_wake_state.rs` can compile it against loom's atomics and
//! check every interleaving of poll, wake, waker drop and a concurrent read.
//!
//! # Invariants
//! - `poll_seq` is even between polls and odd during one; it changes at each
//!   poll's start and end (by one, or from the last odd value to 2 when it
//!   wraps: 0 only ever means "never polled"), written by the poller alone.
//! - `woken` is set before the waker reference that woke is dropped, and
//!   cleared only inside a poll, after `poll_seq` has turned odd. A reader that
//!   sees the cleared flag therefore also sees the odd (or a later) count.
//! - [`WakeState::observe`] reads the count, then the references, then (after
//!   an acquire fence) the flag, then the count again. It answers
//!   [`Observed::Idle`] only if both counts are the same even number and the
//!   flag was clear: then the last poll returned with exactly the references
//!   it read still alive, and no wake came since that poll started.
//!
//! Only atomics from `crate::sync` are used, so the file compiles unchanged
//! in the model test.

use super::sync::atomic::{AtomicBool, AtomicU32, Ordering, fence};

/// A task's poll counter and woken flag.
#[derive(Debug)]
pub(crate) struct WakeState {
    poll_seq: AtomicU32,
    woken: AtomicBool,
}

/// What one read of a [`WakeState`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// Not polled yet: spawned and waiting for its first poll.
    NeverPolled,
    /// Inside a poll, or a poll started or ended during the read.
    Polling,
    /// Woken since its last poll started: a poll is coming.
    Woken,
    /// Between polls, not woken since the last one started, with this many
    /// strong references alive (the caller's own included) after `polls`
    /// finished polls.
    Idle { references: usize, polls: u32 },
}

impl WakeState {
    pub(crate) fn new() -> Self {
        WakeState {
            poll_seq: AtomicU32::new(0),
            woken: AtomicBool::new(false),
        }
    }

    /// A state whose poll counter is at `seq`, for tests of the wrap.
    #[cfg(test)]
    #[allow(dead_code)] // `tests/loom_wake_state.rs` compiles this file too
    pub(crate) fn at_poll_seq(seq: u32) -> Self {
        WakeState {
            poll_seq: AtomicU32::new(seq),
            woken: AtomicBool::new(false),
        }
    }

    /// A poll starts: the count turns odd, and then, if `forget_wakes`, the
    /// wakes before it are forgotten (this poll is their answer). The order
    /// is what keeps a concurrent read from seeing a cleared flag with an
    /// even count.
    pub(crate) fn begin_poll(&self, forget_wakes: bool) {
        self.advance_poll_seq();
        // Cleared only when set: most polls find it clear (the first one,
        // and every poll after a wake that an earlier poll already
        // answered), and skip the store's full barrier. Skipping is never
        // unsafe: a flag left set only makes a read answer `Woken`, never
        // `Idle`. A wake that made this poll happened before it (through
        // the runtime's queue), so this load sees it and clears it; a wake
        // this load misses is concurrent, and the runtime polls again for it.
        if forget_wakes && self.woken.load(Ordering::Relaxed) {
            self.woken.store(false, Ordering::SeqCst);
        }
    }

    /// The poll returned (the count turns even).
    pub(crate) fn end_poll(&self) {
        self.advance_poll_seq();
    }

    /// Adds one to `poll_seq`. The poller is its only writer (a task is
    /// polled by one thread at a time), so a load and a release store do:
    /// no read-modify-write is needed. What the poll does after the count
    /// turns odd is ordered after it for any reader that sees its effects
    /// (the `woken` clear is a release store, the waker references a task
    /// drops are release decrements, and [`WakeState::observe`] reads both
    /// before an acquire fence and the second count).
    fn advance_poll_seq(&self) {
        let seq = self.poll_seq.load(Ordering::Relaxed);
        // 32 bits keep the record small; on wrapping (after 2^31 polls)
        // the count skips 0, which means "never polled".
        let next = match seq.wrapping_add(1) {
            0 => 2,
            next => next,
        };
        self.poll_seq.store(next, Ordering::Release);
    }

    /// A waker was called; before the caller drops its reference.
    pub(crate) fn note_wake(&self) {
        self.woken.store(true, Ordering::SeqCst);
    }

    /// Whether a wake came since the current (or last) poll began.
    #[allow(dead_code)] // `tests/loom_wake_state.rs` compiles this file too
    pub(crate) fn is_woken(&self) -> bool {
        self.woken.load(Ordering::SeqCst)
    }

    /// Reads the state together with the strong reference count that
    /// `references` returns (see the invariants for the order).
    pub(crate) fn observe(&self, references: impl FnOnce() -> usize) -> Observed {
        let before = self.poll_seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            return Observed::Polling;
        }
        if before == 0 {
            return Observed::NeverPolled;
        }
        let references = references();
        fence(Ordering::Acquire);
        let woken = self.woken.load(Ordering::SeqCst);
        let after = self.poll_seq.load(Ordering::Acquire);
        if after != before {
            Observed::Polling
        } else if woken {
            Observed::Woken
        } else {
            Observed::Idle {
                references,
                polls: before / 2,
            }
        }
    }
}
