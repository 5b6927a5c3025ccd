//! The stand-in for the design the hot-path issue proposes: no record
//! allocated per task. Each task's record is a slot in its scope's slab,
//! whose segments never move (so the task's wrapper, inside tokio's cell,
//! holds a plain pointer to its slot), and the probe waker is made only
//! when a waker escapes a poll (a trivial task never makes one).
//!
//! What a tracked spawn + join does here, per task:
//! - the spawner takes a slot under the scope's lock (a freed one, or one
//!   of a new segment twice the size of the last) and writes the record's
//!   fixed fields, then counts the task live, spawns it, and attaches
//!   tokio's abort handle to the slot;
//! - the wrapper polls the task with a *cell waker* that points at the
//!   slot: waking it by reference during the poll, or cloning it (the only
//!   way a waker outlives a poll), makes the slot's probe, an `Arc` whose
//!   wakers count as the record's do today; a task that never touches its
//!   waker never allocates;
//! - at its end the wrapper drops the future, counts the task gone, and the
//!   slot goes back to the free list under the lock, by whichever of the
//!   spawner (after attaching) and the task (after ending) comes second.
//!
//! Left out, as from the other stand-ins: the spawn time (a coarse clock
//! read), the panic paths and the verdict's readers (which would read the
//! slots under the lock). Not part of `leakfree_runtime`: it measures what
//! the design's hot path would cost before anyone builds it.
//!
//! # Invariants
//! - A slot on the free list is referred to by nothing else; a slot in use
//!   is referred to by its spawner until it has attached, by its task's
//!   wrapper until it has ended, and by the task's cell waker only during
//!   a poll (a `Context` lends it; its clone is a probe waker, not a cell
//!   waker). The `ATTACHED` and `ENDED` bits are set once each, by one
//!   read-modify-write each; the side that finds the other bit already set
//!   is the last user and frees the slot, with exclusive access.
//! - Segments are boxed slices that are never resized or freed before the
//!   scope is: a slot's address is stable for the scope's life, and every
//!   wrapper holds the scope.

use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicUsize, Ordering, fence};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Wake, Waker};

use parking_lot::Mutex;
use pin_project_lite::pin_project;
use tokio::task::AbortHandle;

/// The spawner has attached the abort handle.
const ATTACHED: u8 = 1;
/// The task's future is gone.
const ENDED: u8 = 2;

/// Slots in the first segment; each next one doubles the total.
const FIRST_SEGMENT: usize = 64;

/// One task's record, in its scope's slab.
struct Slot {
    /// Written by the spawner while it alone holds the slot.
    location: UnsafeCell<&'static std::panic::Location<'static>>,
    poll_seq: AtomicU32,
    state: AtomicU8,
    /// Written once by the spawner before it sets `ATTACHED`; taken by the
    /// slot's last user.
    abort: UnsafeCell<Option<AbortHandle>>,
    /// Made at the first escape of a waker (`Arc::into_raw`; null before);
    /// taken by the slot's last user.
    probe: AtomicPtr<Probe>,
    /// The waker of the poll running now (valid only during it), for a
    /// wake through the cell waker.
    poll_waker: AtomicPtr<Waker>,
}

impl Slot {
    fn vacant() -> Slot {
        Slot {
            location: UnsafeCell::new(std::panic::Location::caller()),
            poll_seq: AtomicU32::new(0),
            state: AtomicU8::new(0),
            abort: UnsafeCell::new(None),
            probe: AtomicPtr::new(std::ptr::null_mut()),
            poll_waker: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The probe, if a waker escaped.
    fn probe(&self) -> Option<&Probe> {
        // SAFETY: a non-null pointer came from `Arc::into_raw` and is
        // released only by the slot's last user, when nothing else looks.
        unsafe { self.probe.load(Ordering::Acquire).as_ref() }
    }

    /// The probe, made now if no waker escaped before; its pointer, which
    /// `Arc::increment_strong_count` and `from_raw` accept.
    fn make_probe(&self) -> *const Probe {
        let existing = self.probe.load(Ordering::Acquire);
        if !existing.is_null() {
            return existing;
        }
        let made = Arc::into_raw(Arc::new(Probe {
            woken: AtomicBool::new(false),
            runtime: OnceLock::new(),
        }))
        .cast_mut();
        match self.probe.compare_exchange(
            std::ptr::null_mut(),
            made,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                #[cfg(test)]
                tests::PROBES_MADE.fetch_add(1, Ordering::Relaxed);
                made
            }
            Err(winner) => {
                // SAFETY: `made` came from `into_raw` just above and was not
                // published.
                drop(unsafe { Arc::from_raw(made) });
                winner
            }
        }
    }

    fn advance_poll_seq(&self) {
        let seq = self.poll_seq.load(Ordering::Relaxed);
        self.poll_seq
            .store(seq.wrapping_add(1).max(1), Ordering::Release);
    }
}

/// A pointer to a slot in use.
#[derive(Clone, Copy)]
struct SlotRef(NonNull<Slot>);

// SAFETY: a slot's shared fields are atomics, a `OnceLock` and cells that
// only one side writes at a time (see the invariants); the pointer is
// valid for the scope's life, and whoever holds one holds the scope.
unsafe impl Send for SlotRef {}
unsafe impl Sync for SlotRef {}

struct Slots {
    /// Never resized once made (pointers into them are handed out).
    segments: Vec<Vec<Slot>>,
    free: Vec<SlotRef>,
}

/// A stand-in scope whose records live in its slab.
pub(crate) struct SlabScope {
    live: AtomicUsize,
    slots: Mutex<Slots>,
}

impl Default for SlabScope {
    fn default() -> Self {
        SlabScope {
            live: AtomicUsize::new(0),
            slots: Mutex::new(Slots {
                segments: Vec::new(),
                free: Vec::new(),
            }),
        }
    }
}

impl SlabScope {
    /// Takes a slot for a task spawned where the caller's caller was
    /// called (`spawn` and this both track their caller), writes its fixed
    /// fields, and counts the task live.
    #[track_caller]
    fn register(&self) -> SlotRef {
        let location = std::panic::Location::caller();
        let mut slots = self.slots.lock();
        let slot = match slots.free.pop() {
            Some(slot) => slot,
            None => {
                let total: usize = slots.segments.iter().map(Vec::len).sum();
                let size = total.max(FIRST_SEGMENT);
                slots
                    .segments
                    .push((0..size).map(|_| Slot::vacant()).collect());
                let base = slots.segments.last().expect("just pushed").as_ptr();
                // SAFETY: `i < size`, inside the segment just made.
                let at = |i: usize| {
                    SlotRef(NonNull::new(unsafe { base.add(i) }.cast_mut()).expect("in a vector"))
                };
                slots.free.extend((1..size).map(at));
                at(0)
            }
        };
        // SAFETY: a slot off the free list is referred to by nothing else
        // (the invariants), and the lock is held.
        unsafe {
            let slot = slot.0.as_ref();
            *slot.location.get() = location;
            slot.poll_seq.store(0, Ordering::Relaxed);
            slot.state.store(0, Ordering::Relaxed);
        }
        drop(slots);
        self.live.fetch_add(1, Ordering::AcqRel);
        slot
    }

    /// The spawner's part once tokio has the task.
    fn attach(&self, slot: SlotRef, abort: AbortHandle) {
        // SAFETY: only the spawner writes `abort`, before it sets
        // `ATTACHED`; the last user reads it after seeing that bit (the
        // acquire-release read-modify-writes order the two).
        unsafe { *slot.0.as_ref().abort.get() = Some(abort) };
        let before = unsafe { slot.0.as_ref() }
            .state
            .fetch_or(ATTACHED, Ordering::AcqRel);
        if before & ENDED != 0 {
            self.free(slot);
        }
    }

    /// The task's part once its future is gone.
    fn end(&self, slot: SlotRef) {
        let before = unsafe { slot.0.as_ref() }
            .state
            .fetch_or(ENDED, Ordering::AcqRel);
        if before & ATTACHED != 0 {
            self.free(slot);
        }
        self.live.fetch_sub(1, Ordering::AcqRel);
    }

    /// Called by the slot's last user, who alone refers to it now.
    fn free(&self, slot: SlotRef) {
        // SAFETY: both bits are set, so the spawner and the wrapper are done
        // with the slot, and no poll runs (the task has ended): nothing
        // else reads or writes it.
        let slot_ref = unsafe { slot.0.as_ref() };
        drop(unsafe { (*slot_ref.abort.get()).take() });
        let probe = slot_ref.probe.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !probe.is_null() {
            // SAFETY: from `Arc::into_raw` in `make_probe`; the slot's own
            // reference, given back once.
            drop(unsafe { Arc::from_raw(probe) });
        }
        self.slots.lock().free.push(slot);
    }
}

/// A task's probe: its wakers' count and its woken flag, as leakfree's
/// record has them today, made only when a waker escapes a poll.
struct Probe {
    woken: AtomicBool,
    runtime: OnceLock<Waker>,
}

impl Wake for Probe {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if let Some(waker) = self.runtime.get() {
            return waker.wake_by_ref();
        }
        fence(Ordering::SeqCst);
        if let Some(waker) = self.runtime.get() {
            waker.wake_by_ref();
        }
    }
}

/// The cell waker's functions: `data` is the slot, valid during the poll
/// that lent the waker.
static CELL_VTABLE: RawWakerVTable =
    RawWakerVTable::new(cell_clone, cell_wake, cell_wake, cell_drop);

unsafe fn cell_clone(data: *const ()) -> RawWaker {
    // SAFETY: a cell waker exists only during a poll of its task, whose
    // slot is in use.
    let slot = unsafe { &*data.cast::<Slot>() };
    let probe = slot.make_probe();
    // SAFETY: the slot holds a reference to its probe, so the count is at
    // least one; the new `Arc` owns the increment.
    let probe = unsafe {
        Arc::increment_strong_count(probe);
        Arc::from_raw(probe)
    };
    let escaped = ManuallyDrop::new(Waker::from(probe));
    RawWaker::new(escaped.data(), escaped.vtable())
}

unsafe fn cell_wake(data: *const ()) {
    // SAFETY: as in `cell_clone`.
    let slot = unsafe { &*data.cast::<Slot>() };
    // SAFETY: `make_probe` returns a live probe the slot keeps.
    unsafe { &*slot.make_probe() }
        .woken
        .store(true, Ordering::SeqCst);
    let poller = slot.poll_waker.load(Ordering::Relaxed);
    // SAFETY: set by the poll running now to its own context's waker.
    unsafe { (*poller).wake_by_ref() };
}

unsafe fn cell_drop(_data: *const ()) {}

thread_local! {
    static CURRENT: Cell<*const SlabScope> = const { Cell::new(std::ptr::null()) };
}

pin_project! {
    /// A task whose record is a slot of its scope's slab.
    pub(crate) struct SlabTracked<F> {
        #[pin]
        inner: Option<F>,
        scope: Arc<SlabScope>,
        slot: SlotRef,
        pended: bool,
    }

    impl<F> PinnedDrop for SlabTracked<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            this.inner.set(None);
            this.scope.end(*this.slot);
        }
    }
}

impl<F: Future> Future for SlabTracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // SAFETY: the wrapper holds its slot until it ends.
        let slot = unsafe { this.slot.0.as_ref() };
        slot.advance_poll_seq();
        if let Some(probe) = slot.probe() {
            if probe.woken.load(Ordering::Relaxed) {
                probe.woken.store(false, Ordering::SeqCst);
            }
        }
        slot.poll_waker
            .store(std::ptr::from_ref(cx.waker()).cast_mut(), Ordering::Relaxed);
        // SAFETY: the vtable's functions only use `data` as this slot,
        // which is in use for as long as this poll lends the waker.
        let waker =
            unsafe { Waker::from_raw(RawWaker::new(this.slot.0.as_ptr().cast(), &CELL_VTABLE)) };
        let mut cell_cx = Context::from_waker(&waker);
        let inner = this.inner.as_pin_mut().expect("polled after its end");
        let previous = CURRENT.with(|current| current.replace(Arc::as_ptr(this.scope)));
        let result = inner.poll(&mut cell_cx);
        CURRENT.with(|current| current.set(previous));
        slot.advance_poll_seq();
        if result.is_pending() && !*this.pended {
            if let Some(probe) = slot.probe() {
                *this.pended = true;
                if probe.runtime.set(cx.waker().clone()).is_ok() {
                    fence(Ordering::SeqCst);
                    if probe.woken.load(Ordering::SeqCst) {
                        cx.waker().wake_by_ref();
                    }
                }
            }
        }
        result
    }
}

/// Spawns `future` as a task of `scope` with its record in the slab.
#[track_caller]
pub(crate) fn spawn<F>(scope: &Arc<SlabScope>, future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let slot = scope.register();
    let handle = tokio::spawn(SlabTracked {
        inner: Some(future),
        scope: scope.clone(),
        slot,
        pended: false,
    });
    scope.attach(slot, handle.abort_handle());
    handle
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probes made (the only test of this file counts them).
    pub(super) static PROBES_MADE: AtomicUsize = AtomicUsize::new(0);

    /// A slot is what a live task without an escaped waker costs beyond
    /// tokio's cell (and its share of the slab's spare slots): the memory
    /// row of `BENCHMARKS.md` cites it.
    #[test]
    fn a_slot_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 40);
    }

    /// Every slot goes back to the free list once its task and its spawner
    /// are done, whichever finishes first; a probe is made only when a
    /// waker escapes, and a woken task is polled again.
    #[test]
    fn slots_come_back_and_wakes_arrive() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        runtime.block_on(async {
            let scope = Arc::new(SlabScope::default());
            for _ in 0..3 {
                let handles: Vec<_> = (0..500)
                    .map(|i| {
                        spawn(&scope, async move {
                            if i % 2 == 0 {
                                tokio::task::yield_now().await;
                            }
                            i
                        })
                    })
                    .collect();
                for (i, handle) in handles.into_iter().enumerate() {
                    assert_eq!(handle.await.unwrap(), i);
                }
                // tokio drops a task's future before its output reaches the
                // handle, and each spawner attached at once.
                assert_eq!(scope.live.load(Ordering::Acquire), 0);
                let slots = scope.slots.lock();
                let total: usize = slots.segments.iter().map(Vec::len).sum();
                assert_eq!(slots.free.len(), total, "every slot is free again");
            }
        });
        assert_eq!(
            PROBES_MADE.load(Ordering::Relaxed),
            3 * 250,
            "one probe per task that yielded (its waker escaped), none for the rest"
        );
    }
}
