//! Leak corpus, synchronisation primitives: tasks waiting forever on a
//! `Notify`, a `Semaphore`, a `Mutex`, an `RwLock`, a `Barrier` or a
//! `OnceCell`.
//!
//! Each pattern is a fixture that leaks on purpose (`#[ignore]`d, run by its
//! checker, which asserts the report's spawn sites and task counts) and a fixed
//! twin that passes as a normal `#[leak_checked]` test. Tasks signal when they
//! reach their blocking point; no test waits on a fixed sleep.

mod support;

use std::sync::Arc;
use std::time::Duration;

use leakfree_runtime::{leak_checked, spawn};
use support::{expect_leak, site, spawn_here, state_at};
use tokio::sync::{Barrier, Mutex, Notify, OnceCell, RwLock, Semaphore, oneshot};

const WAITING_ONE: &str = "waiting: 1 waker held (timer, I/O or channel)";

// ---- 1. Notify: the state changes, nobody is told ----------------------------
//
// A loader fills the cache and forgets `notify_one`, so the reader waiting for
// "ready" waits forever. Fix: notify (`notify_one` stores a permit, so it also
// works when the reader has not started waiting yet).

#[derive(Default)]
struct Cache {
    value: std::sync::Mutex<Option<u32>>,
    ready: Notify,
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by notify_never_notified_is_caught"]
async fn leak_notify_never_notified() {
    let cache = Arc::new(Cache::default());
    let reader_cache = cache.clone();
    spawn_here("cache-reader", async move {
        reader_cache.ready.notified().await;
        reader_cache.value.lock().unwrap().unwrap()
    });
    *cache.value.lock().unwrap() = Some(7); // the bug: no notify
}

#[leak_checked]
#[tokio::test]
async fn fix_notify_never_notified() {
    let cache = Arc::new(Cache::default());
    let reader_cache = cache.clone();
    let reader = spawn(async move {
        reader_cache.ready.notified().await;
        reader_cache.value.lock().unwrap().unwrap()
    });
    *cache.value.lock().unwrap() = Some(7);
    cache.ready.notify_one(); // the fix
    assert_eq!(reader.await.unwrap(), 7);
}

#[test]
fn notify_never_notified_is_caught() {
    let text = expect_leak(
        leak_notify_never_notified,
        "leak_notify_never_notified",
        "20ms",
        1,
        &[("cache-reader", 1)],
        0,
    );
    assert_eq!(state_at(&text, "cache-reader"), WAITING_ONE);
}

// ---- 2. Notify: `notify_waiters` before anyone waits (a lost wake-up) --------
//
// `notify_waiters` wakes only the tasks waiting at that moment and stores no
// permit: three listeners spawned just before it have not started waiting yet,
// and miss it for good. Fix: each listener `enable`s its `Notified` and says
// so before the broadcast.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by notify_waiters_lost_wakeup_is_caught"]
async fn leak_notify_waiters_lost_wakeup() {
    let shutdown = Arc::new(Notify::new());
    for _ in 0..3 {
        let shutdown = shutdown.clone();
        spawn_here("late-listener", async move { shutdown.notified().await });
    }
    shutdown.notify_waiters(); // the bug: none of them is waiting yet
}

#[leak_checked]
#[tokio::test]
async fn fix_notify_waiters_lost_wakeup() {
    let shutdown = Arc::new(Notify::new());
    let mut listeners = Vec::new();
    for _ in 0..3 {
        let shutdown = shutdown.clone();
        let (listening_tx, listening_rx) = oneshot::channel();
        let listener = spawn(async move {
            let notified = shutdown.notified();
            tokio::pin!(notified);
            notified.as_mut().enable(); // the fix: registered before saying so
            listening_tx.send(()).unwrap();
            notified.await;
        });
        listeners.push((listening_rx, listener));
    }
    for (listening, _) in &mut listeners {
        listening.await.unwrap();
    }
    shutdown.notify_waiters();
    for (_, listener) in listeners {
        listener.await.unwrap();
    }
}

#[test]
fn notify_waiters_lost_wakeup_is_caught() {
    let text = expect_leak(
        leak_notify_waiters_lost_wakeup,
        "leak_notify_waiters_lost_wakeup",
        "20ms",
        3,
        &[("late-listener", 3)],
        0,
    );
    assert!(
        text.contains(&format!(
            "3 tasks \"late-listener\" spawned at {}, ",
            site("late-listener")
        )),
        "{text}"
    );
}

// ---- 3. Semaphore: a permit forgotten on an early return ---------------------
//
// A call limiter takes its permit with `forget` and gives it back by hand with
// `add_permits`; the error path returns first, so the permit is gone and the
// next caller waits forever. Fix: hold the RAII permit.

async fn limited_call_by_hand(limiter: &Semaphore, fail: bool) -> Result<u32, &'static str> {
    limiter.acquire().await.unwrap().forget();
    if fail {
        return Err("bad request"); // the bug: skips the release below
    }
    limiter.add_permits(1);
    Ok(1)
}

async fn limited_call(limiter: &Semaphore, fail: bool) -> Result<u32, &'static str> {
    let _permit = limiter.acquire().await.unwrap(); // the fix: released on every path
    if fail {
        return Err("bad request");
    }
    Ok(1)
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by semaphore_permit_forgotten_is_caught"]
async fn leak_semaphore_permit_forgotten() {
    let limiter = Arc::new(Semaphore::new(1));
    assert!(limited_call_by_hand(&limiter, true).await.is_err());
    spawn_here("limited-caller", async move {
        limited_call_by_hand(&limiter, false).await
    });
}

#[leak_checked]
#[tokio::test]
async fn fix_semaphore_permit_forgotten() {
    let limiter = Arc::new(Semaphore::new(1));
    assert!(limited_call(&limiter, true).await.is_err());
    let caller = spawn(async move { limited_call(&limiter, false).await });
    assert_eq!(caller.await.unwrap(), Ok(1));
}

#[test]
fn semaphore_permit_forgotten_is_caught() {
    let text = expect_leak(
        leak_semaphore_permit_forgotten,
        "leak_semaphore_permit_forgotten",
        "20ms",
        1,
        &[("limited-caller", 1)],
        0,
    );
    assert_eq!(state_at(&text, "limited-caller"), WAITING_ONE);
}

// ---- 4. Semaphore: asking for more permits than exist ------------------------
//
// A batch of five asks a limiter of four for all its permits at once: tokio
// queues the request, and it can never be granted. Fix: ask for at most the
// limiter's size.

const CONNECTIONS: usize = 4;

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by semaphore_asks_for_too_many_is_caught"]
async fn leak_semaphore_asks_for_too_many() {
    let limiter = Arc::new(Semaphore::new(CONNECTIONS));
    let batch = 5u32;
    spawn_here("bulk-acquire", async move {
        let _permits = limiter.acquire_many(batch).await.unwrap(); // the bug
    });
}

#[leak_checked]
#[tokio::test]
async fn fix_semaphore_asks_for_too_many() {
    let limiter = Arc::new(Semaphore::new(CONNECTIONS));
    let batch = 5u32;
    let task = spawn(async move {
        let wanted = batch.min(CONNECTIONS as u32); // the fix
        let _permits = limiter.acquire_many(wanted).await.unwrap();
    });
    task.await.unwrap();
}

#[test]
fn semaphore_asks_for_too_many_is_caught() {
    let text = expect_leak(
        leak_semaphore_asks_for_too_many,
        "leak_semaphore_asks_for_too_many",
        "20ms",
        1,
        &[("bulk-acquire", 1)],
        0,
    );
    assert_eq!(state_at(&text, "bulk-acquire"), WAITING_ONE);
}

// ---- 5. Mutex: a guard held across an await another task needs ---------------
//
// A task locks the state, then waits for a flusher; the flusher needs the same
// lock first. Both wait forever. Fix: release the guard before awaiting.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by mutex_guard_held_across_await_is_caught"]
async fn leak_mutex_guard_held_across_await() {
    let state = Arc::new(Mutex::new(0u32));
    let (locked_tx, locked_rx) = oneshot::channel();
    let (flushed_tx, flushed_rx) = oneshot::channel::<u32>();
    let holder_state = state.clone();
    spawn_here("guard-holder", async move {
        let mut guard = holder_state.lock().await;
        locked_tx.send(()).unwrap();
        let flushed = flushed_rx.await.unwrap(); // the bug: awaits with the guard held
        *guard += flushed;
    });
    locked_rx.await.unwrap();
    spawn_here("flusher", async move {
        let snapshot = *state.lock().await;
        let _ = flushed_tx.send(snapshot);
    });
}

#[leak_checked]
#[tokio::test]
async fn fix_mutex_guard_held_across_await() {
    let state = Arc::new(Mutex::new(1u32));
    let (locked_tx, locked_rx) = oneshot::channel();
    let (flushed_tx, flushed_rx) = oneshot::channel::<u32>();
    let holder_state = state.clone();
    let holder = spawn(async move {
        {
            let mut guard = holder_state.lock().await;
            *guard += 1;
        } // the fix: the guard goes before the await
        locked_tx.send(()).unwrap();
        let flushed = flushed_rx.await.unwrap();
        *holder_state.lock().await += flushed;
    });
    locked_rx.await.unwrap();
    let flush_state = state.clone();
    let flusher = spawn(async move {
        let snapshot = *flush_state.lock().await;
        let _ = flushed_tx.send(snapshot);
    });
    holder.await.unwrap();
    flusher.await.unwrap();
    assert_eq!(*state.lock().await, 4);
}

#[test]
fn mutex_guard_held_across_await_is_caught() {
    let text = expect_leak(
        leak_mutex_guard_held_across_await,
        "leak_mutex_guard_held_across_await",
        "20ms",
        2,
        &[("guard-holder", 1), ("flusher", 1)],
        0,
    );
    assert_eq!(state_at(&text, "guard-holder"), WAITING_ONE);
    assert_eq!(state_at(&text, "flusher"), WAITING_ONE);
}

// ---- 6. Mutex: locking twice in one task (tokio's Mutex is not re-entrant) ---
//
// `total` holds the inventory lock and calls a helper that locks it again: the
// task waits for itself. Fix: the helper takes the guarded data.

#[derive(Default)]
struct Inventory {
    items: Mutex<Vec<u32>>,
}

impl Inventory {
    async fn reserved(&self) -> usize {
        self.items.lock().await.iter().filter(|i| **i > 100).count()
    }

    async fn total_reentrant(&self) -> usize {
        let items = self.items.lock().await;
        items.len() + self.reserved().await // the bug: locks `items` again
    }

    async fn total(&self) -> usize {
        let items = self.items.lock().await;
        items.len() + reserved_in(&items) // the fix
    }
}

fn reserved_in(items: &[u32]) -> usize {
    items.iter().filter(|i| **i > 100).count()
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by mutex_locked_twice_is_caught"]
async fn leak_mutex_locked_twice() {
    let inventory = Arc::new(Inventory::default());
    inventory.items.lock().await.extend([1, 200, 3]);
    spawn_here("reentrant-lock", async move {
        inventory.total_reentrant().await
    });
}

#[leak_checked]
#[tokio::test]
async fn fix_mutex_locked_twice() {
    let inventory = Arc::new(Inventory::default());
    inventory.items.lock().await.extend([1, 200, 3]);
    let total = spawn(async move { inventory.total().await });
    assert_eq!(total.await.unwrap(), 4);
}

#[test]
fn mutex_locked_twice_is_caught() {
    let text = expect_leak(
        leak_mutex_locked_twice,
        "leak_mutex_locked_twice",
        "20ms",
        1,
        &[("reentrant-lock", 1)],
        0,
    );
    assert_eq!(state_at(&text, "reentrant-lock"), WAITING_ONE);
}

// ---- 7. RwLock: a second read lock behind a queued writer --------------------
//
// tokio's `RwLock` is fair: once a writer queues, new readers wait behind it.
// A reader that takes a second read guard while holding the first waits for
// the writer, which waits for the first guard. Fix: reuse the guard.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by rwlock_recursive_read_is_caught"]
async fn leak_rwlock_recursive_read() {
    let table = Arc::new(RwLock::new(vec![1u32, 2, 3]));
    let (reading_tx, reading_rx) = oneshot::channel();
    let (queued_tx, queued_rx) = oneshot::channel();
    let reader_table = table.clone();
    spawn_here("recursive-reader", async move {
        let first = reader_table.read().await;
        reading_tx.send(()).unwrap();
        queued_rx.await.unwrap();
        let again = reader_table.read().await; // the bug: queues behind the writer
        first.len() + again.len()
    });
    reading_rx.await.unwrap();
    spawn_here("queued-writer", async move {
        queued_tx.send(()).unwrap(); // same poll as the `write()` below
        table.write().await.push(4);
    });
}

#[leak_checked]
#[tokio::test]
async fn fix_rwlock_recursive_read() {
    let table = Arc::new(RwLock::new(vec![1u32, 2, 3]));
    let (reading_tx, reading_rx) = oneshot::channel();
    let (queued_tx, queued_rx) = oneshot::channel();
    let reader_table = table.clone();
    let reader = spawn(async move {
        let first = reader_table.read().await;
        reading_tx.send(()).unwrap();
        queued_rx.await.unwrap();
        first.len() * 2 // the fix: one guard
    });
    reading_rx.await.unwrap();
    let writer_table = table.clone();
    let writer = spawn(async move {
        queued_tx.send(()).unwrap();
        writer_table.write().await.push(4);
    });
    assert_eq!(reader.await.unwrap(), 6);
    writer.await.unwrap();
    assert_eq!(table.read().await.len(), 4);
}

#[test]
fn rwlock_recursive_read_is_caught() {
    let text = expect_leak(
        leak_rwlock_recursive_read,
        "leak_rwlock_recursive_read",
        "20ms",
        2,
        &[("recursive-reader", 1), ("queued-writer", 1)],
        0,
    );
    assert_eq!(state_at(&text, "recursive-reader"), WAITING_ONE);
    assert_eq!(state_at(&text, "queued-writer"), WAITING_ONE);
}

// ---- 8. Barrier: sized for more parties than arrive --------------------------
//
// A start-up barrier is sized for three services; one is disabled by config,
// so the two that start wait forever. Fix: size it from what actually starts.

fn enabled_services() -> Vec<&'static str> {
    ["http", "grpc", "admin"]
        .into_iter()
        .filter(|s| *s != "admin")
        .collect()
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by barrier_short_a_party_is_caught"]
async fn leak_barrier_short_a_party() {
    let barrier = Arc::new(Barrier::new(3)); // the bug: every service, enabled or not
    for _service in enabled_services() {
        let barrier = barrier.clone();
        spawn_here("startup-barrier", async move {
            barrier.wait().await;
        });
    }
}

#[leak_checked]
#[tokio::test]
async fn fix_barrier_short_a_party() {
    let services = enabled_services();
    let barrier = Arc::new(Barrier::new(services.len())); // the fix
    let mut tasks = Vec::new();
    for _service in services {
        let barrier = barrier.clone();
        tasks.push(spawn(async move {
            barrier.wait().await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[test]
fn barrier_short_a_party_is_caught() {
    let text = expect_leak(
        leak_barrier_short_a_party,
        "leak_barrier_short_a_party",
        "20ms",
        2,
        &[("startup-barrier", 2)],
        0,
    );
    assert_eq!(state_at(&text, "startup-barrier"), WAITING_ONE);
}

// ---- 9. A wait group whose worker panics before `done` -----------------------
//
// The Go material's `wg.Done()` skipped by a panic: workers add a permit when
// done, a waiter waits for all three, and the second worker panics first.
// Two findings in one report: the stranded waiter, and a panic nobody saw.
// Fix: `done` in a drop guard (Go's `defer wg.Done()`), and the panic observed
// through the worker's handle.

struct Done(Arc<Semaphore>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by wait_group_with_panicking_worker_is_caught"]
async fn leak_wait_group_with_panicking_worker() {
    let done = Arc::new(Semaphore::new(0));
    for i in 0..3 {
        let done = done.clone();
        spawn_here("wg-worker", async move {
            assert_ne!(i, 1, "worker 1 failed");
            done.add_permits(1); // the bug: skipped by the panic
        });
    }
    spawn_here("wg-waiter", async move {
        let _all = done.acquire_many(3).await;
    });
}

#[leak_checked]
#[tokio::test]
async fn fix_wait_group_with_panicking_worker() {
    let done = Arc::new(Semaphore::new(0));
    let mut workers = Vec::new();
    for i in 0..3 {
        let done = Done(done.clone()); // the fix: released on unwind too
        workers.push(spawn(async move {
            let _done = done;
            assert_ne!(i, 1, "worker 1 failed");
        }));
    }
    let _all = done.acquire_many(3).await.unwrap();
    for (i, worker) in workers.into_iter().enumerate() {
        let panicked = worker.await.is_err_and(|e| e.is_panic()); // observed
        assert_eq!(panicked, i == 1);
    }
}

#[test]
fn wait_group_with_panicking_worker_is_caught() {
    let text = expect_leak(
        leak_wait_group_with_panicking_worker,
        "leak_wait_group_with_panicking_worker",
        "20ms",
        1,
        &[("wg-waiter", 1)],
        0,
    );
    assert!(
        text.starts_with(
            "leakfree: 1 task leaked and 1 task panic never observed \
             from `leak_wait_group_with_panicking_worker`"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\"wg-worker\" spawned at {} panicked and no JoinHandle observed it: \
             assertion `left != right` failed: worker 1 failed",
            site("wg-worker")
        )),
        "{text}"
    );
}

// ---- 10. OnceCell: an initialiser that never completes -----------------------
//
// Three getters share a lazily loaded value; the first runs the initialiser,
// which waits on an upstream that never answers, and the other two wait for
// the first. Fix: a deadline inside the initialiser, and a fallible init.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by once_cell_init_never_completes_is_caught"]
async fn leak_once_cell_init_never_completes() {
    let cell = Arc::new(OnceCell::<u32>::new());
    let upstream = Arc::new(Notify::new());
    for _ in 0..3 {
        let (cell, upstream) = (cell.clone(), upstream.clone());
        spawn_here("config-getter", async move {
            *cell
                .get_or_init(|| async move {
                    upstream.notified().await; // the bug: no deadline
                    1
                })
                .await
        });
    }
}

#[leak_checked]
#[tokio::test(start_paused = true)]
async fn fix_once_cell_init_never_completes() {
    let cell = Arc::new(OnceCell::<u32>::new());
    let upstream = Arc::new(Notify::new());
    let mut getters = Vec::new();
    for _ in 0..3 {
        let (cell, upstream) = (cell.clone(), upstream.clone());
        getters.push(spawn(async move {
            cell.get_or_try_init(|| async move {
                let answer = tokio::time::timeout(Duration::from_millis(50), upstream.notified());
                answer.await.map(|()| 1) // the fix
            })
            .await
            .copied()
        }));
    }
    for getter in getters {
        assert!(getter.await.unwrap().is_err());
    }
}

#[test]
fn once_cell_init_never_completes_is_caught() {
    let text = expect_leak(
        leak_once_cell_init_never_completes,
        "leak_once_cell_init_never_completes",
        "20ms",
        3,
        &[("config-getter", 3)],
        0,
    );
    assert!(
        text.contains("3 tasks \"config-getter\" spawned at"),
        "{text}"
    );
}
