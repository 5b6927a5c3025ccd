//! The state leakfree reports for a leaked task, primitive by primitive, on
//! real runtimes: the proof of the classifier in `src/task/record.rs`.
//!
//! What is proven, in both directions:
//!
//! - **No false "blocked forever".** A task parked on anything that can still
//!   wake it (timers, every `tokio::sync` primitive, TCP, `JoinHandle`s, user
//!   futures that keep their waker, `select!`/`join!`, self-waking loops) is
//!   reported `Waiting { wakers }` (with the exact count), `Scheduled` or
//!   `Running`, never `BlockedForever`. Each such case keeps its wake source
//!   *outside* the scope, alive across the verdict, and then [`assert_wakeable`]
//!   rebuilds the same case, parks it the same way and fires that source: the
//!   task finishes. So "waiting" is not just a label, the task really was
//!   wakeable in the state that was judged.
//! - **Truly unwakeable tasks are reported `BlockedForever`**: `pending()`, a
//!   future that returns `Pending` without keeping its waker, a future whose
//!   stored waker was dropped unwoken, a task woken once and then parked on
//!   `pending()`.
//! - The other states, deterministically: never polled and woken-not-polled
//!   (`Scheduled`, on a runtime nobody drives), inside a poll and a running
//!   blocking closure (`Running`).
//! - Documented conservative answers: a waker kept by leaked memory (a
//!   `forget`-ed oneshot sender) or by a channel only the task itself holds is
//!   still a waker: `Waiting`, as the classifier promises (it errs towards
//!   waiting, never towards blocked).
//!
//! How "parked" is made exact: the task signals [`Ready`] right before its
//! last await; on a `current_thread` runtime the signal is only received after
//! that poll returned `Pending`, and the body yields once more before it
//! returns. (The exit protocol itself yields to the scheduler once before its
//! verdict, even with grace zero: its zero deadline is a timer.) Multi-thread
//! variants either run the whole check as a task on a single worker (exact), or
//! accept only the answers a racing poll can legitimately give (`Running`),
//! and two stress tests sample many busy tasks on four workers: none may ever
//! be `BlockedForever`.

use std::future::{Future, pending, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use leakfree_runtime::report::{TaskKind, TaskState};
use leakfree_runtime::{LeakReport, Scope, ScopeBuilder, spawn, spawn_blocking};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Barrier, Mutex, Notify, RwLock, Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::task::{Id, yield_now};

const HOUR: Duration = Duration::from_secs(3600);

/// How long a proof waits for a woken task to finish (generous: a wake that
/// works finishes it at once).
const WOKEN_WITHIN: Duration = Duration::from_secs(10);

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

fn scope(name: &'static str) -> ScopeBuilder {
    Scope::builder(name).grace(Duration::ZERO)
}

/// Handed to a case's task: signalled right before the await it parks on.
struct Ready(oneshot::Sender<()>);

impl Ready {
    fn signal(self) {
        self.0.send(()).expect("the body waits for the signal");
    }
}

/// One scenario: the task under test, its "about to park" signal, and the
/// wake source, kept unpolled (and so alive) outside the scope until fired.
struct Case {
    task: BoxFuture,
    ready: oneshot::Receiver<()>,
    wake: BoxFuture,
}

fn case<T, F, W>(task: T, wake: W) -> Case
where
    T: FnOnce(Ready) -> F,
    F: Future<Output = ()> + Send + 'static,
    W: Future<Output = ()> + Send + 'static,
{
    let (ready_tx, ready) = oneshot::channel();
    Case {
        task: Box::pin(task(Ready(ready_tx))),
        ready,
        wake: Box::pin(wake),
    }
}

/// Runs `task` as a tracked task of a grace-zero scope, returns once it has
/// signalled and the body yielded once more (then `at_end` runs, last thing in
/// the body). Answers the verdict on that task and the whole report.
async fn verdict_with(
    task: impl Future<Output = ()> + Send + 'static,
    ready: oneshot::Receiver<()>,
    at_end: impl FnOnce() + Send,
) -> (TaskState, LeakReport) {
    let (id, report) = scope("task_states")
        .build()
        .run_and_report(async move {
            let handle = spawn(task);
            ready.await.expect("the task signals before it parks");
            yield_now().await;
            at_end();
            handle.id()
        })
        .await;
    (state_of(&report, id), report)
}

async fn verdict(
    task: impl Future<Output = ()> + Send + 'static,
    ready: oneshot::Receiver<()>,
) -> TaskState {
    verdict_with(task, ready, || {}).await.0
}

fn state_of(report: &LeakReport, id: Id) -> TaskState {
    report
        .leaked()
        .iter()
        .find(|task| task.id() == Some(id))
        .unwrap_or_else(|| panic!("task {id} should be leaked:\n{report}"))
        .state()
}

/// The verdict on a case whose wake source is alive outside the scope, then
/// the proof that this source wakes it: a fresh instance of the case, parked
/// the same way, finishes once `wake` runs. Returns the verdict for the
/// caller's exact assertion.
async fn assert_wakeable<M, MF>(make: M) -> TaskState
where
    M: Fn() -> MF,
    MF: Future<Output = Case>,
{
    let Case { task, ready, wake } = make().await;
    let (state, report) = verdict_with(task, ready, || {}).await;
    assert_ne!(
        state,
        TaskState::BlockedForever,
        "false \"blocked forever\": the task's wake source was alive outside the scope\n{report}"
    );
    // Helpers the case's task spawned hold wake sources too.
    for task in report.leaked() {
        assert_ne!(task.state(), TaskState::BlockedForever, "{report}");
    }
    drop(wake);

    let Case { task, ready, wake } = make().await;
    let (_, report) = scope("task_states woken")
        .build()
        .run_and_report(async move {
            let handle = spawn(task);
            ready.await.expect("the task signals before it parks");
            yield_now().await;
            assert!(!handle.is_finished(), "the task parked before the wake");
            wake.await;
            tokio::time::timeout(WOKEN_WITHIN, handle)
                .await
                .expect("the wake source wakes the parked task")
                .expect("the woken task finishes");
        })
        .await;
    assert!(report.is_clean(), "{report}");
    state
}

/// Moves the (paused-then-resumed) clock past every timer these cases set.
async fn advance_clock() {
    tokio::time::pause();
    tokio::time::advance(2 * HOUR).await;
    tokio::time::resume();
}

/// A user future's waker storage, shared with the test: keeps the waker it
/// is polled with, replacing it only when `will_wake` says it changed.
#[derive(Default)]
struct WakerSlot {
    waker: StdMutex<Option<Waker>>,
    fired: AtomicBool,
    /// How many times a clone was stored.
    stored: AtomicUsize,
    /// How many times the future was polled.
    polls: AtomicUsize,
}

impl WakerSlot {
    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        if self.fired.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        let mut slot = self.waker.lock().unwrap();
        if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
            self.stored.fetch_add(1, Ordering::SeqCst);
        }
        Poll::Pending
    }

    fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

// ---------------------------------------------------------------------------
// Wakeable: timers
// ---------------------------------------------------------------------------

async fn sleep_case() -> Case {
    case(
        |ready| async move {
            ready.signal();
            tokio::time::sleep(HOUR).await;
        },
        advance_clock(),
    )
}

#[tokio::test]
async fn sleep_is_waiting() {
    assert_eq!(
        assert_wakeable(sleep_case).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn interval_tick_is_waiting() {
    async fn make() -> Case {
        case(
            |ready| async move {
                let mut interval = tokio::time::interval(HOUR);
                interval.tick().await; // the first tick completes at once
                ready.signal();
                interval.tick().await;
            },
            advance_clock(),
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn timeout_around_pending_is_waiting_on_its_timer() {
    async fn make() -> Case {
        case(
            |ready| async move {
                ready.signal();
                let elapsed = tokio::time::timeout(HOUR, pending::<()>()).await;
                assert!(elapsed.is_err());
            },
            advance_clock(),
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

// ---------------------------------------------------------------------------
// Wakeable: channels
// ---------------------------------------------------------------------------

async fn mpsc_recv_case() -> Case {
    let (tx, mut rx) = mpsc::channel::<u8>(1);
    case(
        |ready| async move {
            ready.signal();
            assert_eq!(rx.recv().await, Some(1));
        },
        async move { tx.send(1).await.unwrap() },
    )
}

#[tokio::test]
async fn mpsc_bounded_recv_is_waiting() {
    assert_eq!(
        assert_wakeable(mpsc_recv_case).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn mpsc_unbounded_recv_is_waiting() {
    async fn make() -> Case {
        let (tx, mut rx) = mpsc::unbounded_channel::<u8>();
        case(
            |ready| async move {
                ready.signal();
                assert_eq!(rx.recv().await, Some(1));
            },
            async move { tx.send(1).unwrap() },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn mpsc_send_on_a_full_channel_is_waiting() {
    async fn make() -> Case {
        let (tx, mut rx) = mpsc::channel::<u8>(1);
        tx.try_send(0).unwrap();
        case(
            |ready| async move {
                ready.signal();
                tx.send(1).await.expect("a slot was freed");
            },
            async move {
                assert_eq!(rx.recv().await, Some(0)); // frees the slot
                assert_eq!(rx.recv().await, Some(1)); // the woken send's value
            },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

async fn oneshot_case() -> Case {
    let (tx, rx) = oneshot::channel::<()>();
    case(
        |ready| async move {
            ready.signal();
            rx.await.expect("sent");
        },
        async move { tx.send(()).unwrap() },
    )
}

#[tokio::test]
async fn oneshot_recv_is_waiting() {
    assert_eq!(
        assert_wakeable(oneshot_case).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn broadcast_recv_is_waiting() {
    async fn make() -> Case {
        let (tx, mut rx) = broadcast::channel::<u8>(4);
        case(
            |ready| async move {
                ready.signal();
                assert_eq!(rx.recv().await.unwrap(), 1);
            },
            async move {
                tx.send(1).unwrap();
            },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn watch_changed_is_waiting() {
    async fn make() -> Case {
        let (tx, mut rx) = watch::channel(0u8);
        case(
            |ready| async move {
                ready.signal();
                rx.changed().await.expect("changed");
            },
            async move { tx.send(1).unwrap() },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

// ---------------------------------------------------------------------------
// Wakeable: synchronisation primitives
// ---------------------------------------------------------------------------

async fn notify_case() -> Case {
    let notify = Arc::new(Notify::new());
    let notifier = notify.clone();
    case(
        |ready| async move {
            ready.signal();
            notify.notified().await;
        },
        async move { notifier.notify_one() },
    )
}

#[tokio::test]
async fn notify_notified_is_waiting() {
    assert_eq!(
        assert_wakeable(notify_case).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn semaphore_acquire_without_permits_is_waiting() {
    async fn make() -> Case {
        let semaphore = Arc::new(Semaphore::new(0));
        let adder = semaphore.clone();
        case(
            |ready| async move {
                ready.signal();
                drop(semaphore.acquire().await.unwrap());
            },
            async move { adder.add_permits(1) },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn mutex_lock_held_outside_the_scope_is_waiting() {
    async fn make() -> Case {
        let mutex = Arc::new(Mutex::new(()));
        // Taken outside the scope, held across the verdict, released by the wake.
        let guard = mutex.clone().try_lock_owned().unwrap();
        case(
            |ready| async move {
                ready.signal();
                drop(mutex.lock().await);
            },
            async move { drop(guard) },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn rwlock_write_while_read_held_is_waiting() {
    async fn make() -> Case {
        let lock = Arc::new(RwLock::new(()));
        let read = lock.clone().try_read_owned().unwrap();
        case(
            |ready| async move {
                ready.signal();
                drop(lock.write().await);
            },
            async move { drop(read) },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn barrier_with_a_missing_party_is_waiting() {
    async fn make() -> Case {
        let barrier = Arc::new(Barrier::new(2));
        let other = barrier.clone();
        case(
            |ready| async move {
                ready.signal();
                barrier.wait().await;
            },
            async move {
                other.wait().await;
            },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn join_handle_of_a_pending_task_is_waiting() {
    async fn make() -> Case {
        let (tx, rx) = oneshot::channel::<()>();
        case(
            |ready| async move {
                // A second tracked task, itself wakeable by `tx`.
                let inner = spawn(async move { rx.await.expect("sent") });
                ready.signal();
                inner.await.expect("the inner task finishes");
            },
            async move { tx.send(()).unwrap() },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

// ---------------------------------------------------------------------------
// Wakeable: I/O
// ---------------------------------------------------------------------------

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[tokio::test]
async fn tcp_accept_is_waiting() {
    async fn make() -> Case {
        let (listener, addr) = listener().await;
        case(
            |ready| async move {
                ready.signal();
                listener.accept().await.expect("accepted");
            },
            async move {
                TcpStream::connect(addr).await.unwrap();
            },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn tcp_read_with_the_peer_open_is_waiting() {
    async fn make() -> Case {
        let (listener, addr) = listener().await;
        let (peer, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (mut peer, (mut stream, _)) = (peer.unwrap(), accepted.unwrap());
        case(
            |ready| async move {
                let mut byte = [0u8; 1];
                ready.signal();
                assert_eq!(stream.read(&mut byte).await.unwrap(), 1);
            },
            async move { peer.write_all(b"x").await.unwrap() },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

// ---------------------------------------------------------------------------
// Wakeable: user futures and combinators
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_user_future_keeping_its_waker_is_waiting() {
    async fn make() -> Case {
        let slot = Arc::new(WakerSlot::default());
        let holder = slot.clone();
        case(
            |ready| async move {
                ready.signal();
                poll_fn(|cx| slot.poll(cx)).await;
            },
            async move { holder.fire() },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 1 }
    );
}

/// Polled five times (it wakes itself the first four): the probe waker is the
/// same across polls, so `will_wake` holds and one clone is ever stored.
fn will_wake_case(slot: Arc<WakerSlot>) -> Case {
    let holder = slot.clone();
    case(
        |ready| async move {
            let mut ready = Some(ready);
            poll_fn(|cx| {
                let polls = slot.polls.load(Ordering::SeqCst);
                let result = slot.poll(cx);
                if polls < 4 {
                    cx.waker().wake_by_ref();
                } else if let Some(ready) = ready.take() {
                    ready.signal();
                }
                result
            })
            .await;
        },
        async move { holder.fire() },
    )
}

#[tokio::test]
async fn a_user_future_replacing_its_waker_only_when_it_changes_holds_one() {
    let slot = Arc::new(WakerSlot::default());
    let Case { task, ready, wake } = will_wake_case(slot.clone());
    let state = verdict(task, ready).await;
    assert_eq!(state, TaskState::Waiting { wakers: 1 });
    assert_eq!(slot.polls.load(Ordering::SeqCst), 5);
    assert_eq!(slot.stored.load(Ordering::SeqCst), 1, "will_wake held");
    drop(wake);
    // And the stored waker wakes it.
    assert_eq!(
        assert_wakeable(|| async { will_wake_case(Arc::default()) }).await,
        TaskState::Waiting { wakers: 1 }
    );
}

#[tokio::test]
async fn select_over_two_pending_branches_holds_two_wakers() {
    async fn make() -> Case {
        let (tx1, mut rx1) = mpsc::channel::<u8>(1);
        let (tx2, mut rx2) = mpsc::channel::<u8>(1);
        case(
            |ready| async move {
                ready.signal();
                tokio::select! {
                    got = rx1.recv() => assert_eq!(got, Some(1)),
                    _ = rx2.recv() => unreachable!("nothing is sent on the second channel"),
                }
                drop(tx2);
            },
            async move { tx1.send(1).await.unwrap() },
        )
    }
    assert_eq!(
        assert_wakeable(make).await,
        TaskState::Waiting { wakers: 2 }
    );
}

#[tokio::test]
async fn join_of_two_pending_futures_holds_a_waker_for_each() {
    async fn make() -> Case {
        let (tx1, mut rx1) = mpsc::channel::<u8>(1);
        let (tx2, mut rx2) = mpsc::channel::<u8>(1);
        case(
            |ready| async move {
                ready.signal();
                assert_eq!(tokio::join!(rx1.recv(), rx2.recv()), (Some(1), Some(2)));
            },
            async move {
                tx1.send(1).await.unwrap();
                tx2.send(2).await.unwrap();
            },
        )
    }
    let state = assert_wakeable(make).await;
    assert!(
        matches!(state, TaskState::Waiting { wakers } if wakers >= 1),
        "{state:?}"
    );
    assert_eq!(state, TaskState::Waiting { wakers: 2 });
}

// ---------------------------------------------------------------------------
// Wakeable by itself: yield and coop budget loops
// ---------------------------------------------------------------------------

/// A task that keeps waking itself. On `current_thread` its waker is deferred
/// by tokio and woken when the scheduler yields, which happens right before the
/// body (and the verdict) is polled: `Scheduled`.
async fn self_waking(task: impl Future<Output = ()> + Send + 'static) -> TaskState {
    let (ready_tx, ready) = oneshot::channel();
    verdict(
        async move {
            Ready(ready_tx).signal();
            task.await;
        },
        ready,
    )
    .await
}

#[tokio::test]
async fn a_yield_now_loop_is_scheduled() {
    let state = self_waking(async {
        loop {
            yield_now().await;
        }
    })
    .await;
    assert_ne!(state, TaskState::BlockedForever);
    assert_eq!(state, TaskState::Scheduled);
}

#[tokio::test]
async fn a_consume_budget_loop_is_scheduled() {
    let state = self_waking(async {
        loop {
            tokio::task::coop::consume_budget().await;
        }
    })
    .await;
    assert_ne!(state, TaskState::BlockedForever);
    assert_eq!(state, TaskState::Scheduled);
}

#[tokio::test]
async fn a_recv_loop_that_exhausts_the_coop_budget_is_scheduled() {
    let state = self_waking(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
        for i in 0..1000 {
            tx.send(i).unwrap();
        }
        // Never empty: every recv is ready until tokio's budget forces a yield.
        while let Some(i) = rx.recv().await {
            tx.send(i).unwrap();
        }
    })
    .await;
    assert_ne!(state, TaskState::BlockedForever);
    assert_eq!(state, TaskState::Scheduled);
}

// ---------------------------------------------------------------------------
// Waiting by a held waker nobody will use: conservative, documented
// ---------------------------------------------------------------------------

/// The sender is `forget`-ed: the channel's memory leaks with the receiver's
/// waker in it. A waker exists, so `Waiting`, the answer the classifier
/// promises (it can only err towards waiting).
#[tokio::test]
async fn oneshot_whose_sender_was_forgotten_is_waiting() {
    let (tx, rx) = oneshot::channel::<()>();
    std::mem::forget(tx);
    let state = verdict(
        async move {
            let _ = rx.await;
        },
        ready_now(),
    )
    .await;
    assert_eq!(state, TaskState::Waiting { wakers: 1 });
}

/// A task that holds both ends of a channel can never be woken by anyone
/// else, but the channel holds its waker: `Waiting`. Reachability is beyond
/// the classifier; it only claims "no waker exists" when none does.
#[tokio::test]
async fn a_channel_only_the_task_holds_is_waiting() {
    let (ready_tx, ready) = oneshot::channel();
    let state = verdict(
        async move {
            let (_tx, mut rx) = mpsc::channel::<()>(1);
            Ready(ready_tx).signal();
            rx.recv().await;
        },
        ready,
    )
    .await;
    assert_eq!(state, TaskState::Waiting { wakers: 1 });
}

/// A ready signal already sent: for tasks whose first await is the one they
/// park on (the body still yields once before returning).
fn ready_now() -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    tx.send(()).unwrap();
    rx
}

// ---------------------------------------------------------------------------
// Truly unwakeable: blocked forever
// ---------------------------------------------------------------------------

#[tokio::test]
async fn pending_is_blocked_forever() {
    assert_eq!(
        verdict(pending::<()>(), ready_now()).await,
        TaskState::BlockedForever
    );
}

#[tokio::test]
async fn a_future_that_drops_its_waker_is_blocked_forever() {
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = polls.clone();
    let state = verdict(
        poll_fn(move |_cx: &mut Context<'_>| {
            counted.fetch_add(1, Ordering::SeqCst);
            Poll::<()>::Pending
        }),
        ready_now(),
    )
    .await;
    assert_eq!(state, TaskState::BlockedForever);
    assert_eq!(polls.load(Ordering::SeqCst), 1, "polled, then never again");
}

#[tokio::test]
async fn a_stored_waker_dropped_unwoken_is_blocked_forever() {
    let slot = Arc::new(WakerSlot::default());
    let in_task = slot.clone();
    let holder = slot.clone();
    let (state, report) = verdict_with(
        poll_fn(move |cx| in_task.poll(cx)),
        ready_now(),
        move || {
            let waker = holder.waker.lock().unwrap().take();
            assert!(waker.is_some(), "the task stored its waker");
            drop(waker); // dropped, never woken
        },
    )
    .await;
    assert_eq!(state, TaskState::BlockedForever, "{report}");
    assert_eq!(slot.polls.load(Ordering::SeqCst), 1);
}

/// A past wake does not count: the task was woken, polled again, and parked
/// where nothing can wake it.
#[tokio::test]
async fn woken_once_then_parked_on_pending_is_blocked_forever() {
    let (tx, rx) = oneshot::channel::<()>();
    let (parked_tx, parked) = oneshot::channel();
    let (ready_tx, ready) = oneshot::channel();
    let (id, report) = scope("woken once")
        .build()
        .run_and_report(async move {
            let handle = spawn(async move {
                Ready(parked_tx).signal();
                rx.await.expect("sent");
                Ready(ready_tx).signal();
                pending::<()>().await;
            });
            parked.await.unwrap();
            yield_now().await; // parked on `rx`, its waker in the channel
            tx.send(()).unwrap(); // woken
            ready.await.unwrap(); // polled again
            yield_now().await;
            handle.id()
        })
        .await;
    assert_eq!(state_of(&report, id), TaskState::BlockedForever, "{report}");
}

// ---------------------------------------------------------------------------
// Scheduled and Running, exactly
// ---------------------------------------------------------------------------

/// A current-thread runtime nobody drives: tasks put on it are never polled.
fn undriven_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_task_never_polled_is_scheduled() {
    let foreign = undriven_runtime();
    let (id, report) = scope("never polled")
        .abort_timeout(Duration::ZERO)
        .build()
        .run_and_report(async {
            // Tracked by this scope, queued on a runtime that never runs it.
            let _enter = foreign.enter();
            spawn(pending::<()>()).id()
        })
        .await;
    assert_eq!(state_of(&report, id), TaskState::Scheduled, "{report}");
    foreign.shutdown_background();
}

#[tokio::test]
async fn a_woken_task_not_yet_polled_is_scheduled() {
    let foreign = undriven_runtime();
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let ((id, foreign, _tx), report) = scope("woken, not polled")
        .abort_timeout(Duration::ZERO)
        .build()
        .run_and_report(async move {
            let (ready_tx, ready) = oneshot::channel();
            let handle = {
                let _enter = foreign.enter();
                spawn(async move {
                    Ready(ready_tx).signal();
                    while rx.recv().await.is_some() {}
                })
            };
            // Drive the foreign runtime until the task is parked, then stop.
            let foreign = tokio::task::spawn_blocking(move || {
                foreign.block_on(async {
                    ready.await.unwrap();
                    yield_now().await;
                });
                foreign
            })
            .await
            .unwrap();
            tx.send(()).unwrap(); // woken; its runtime will not poll it
            (handle.id(), foreign, tx)
        })
        .await;
    assert_eq!(state_of(&report, id), TaskState::Scheduled, "{report}");
    foreign.shutdown_background();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_inside_its_poll_is_running() {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready) = oneshot::channel();
    let (id, report) = scope("inside a poll")
        .abort_timeout(Duration::ZERO)
        .build()
        .run_and_report(async move {
            let handle = spawn(async move {
                Ready(ready_tx).signal();
                // Blocks its worker inside this poll until the test releases it.
                released.recv().unwrap();
            });
            ready.await.unwrap();
            handle.id()
        })
        .await;
    assert_eq!(state_of(&report, id), TaskState::Running, "{report}");
    release.send(()).unwrap();
}

#[tokio::test]
async fn a_running_blocking_closure_is_running() {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready) = oneshot::channel();
    let (id, report) = scope("blocking")
        .abort_timeout(Duration::ZERO)
        .build()
        .run_and_report(async move {
            let handle = spawn_blocking(move || {
                Ready(ready_tx).signal();
                released.recv().unwrap();
            });
            ready.await.unwrap();
            handle.id()
        })
        .await;
    let task = &report.leaked()[0];
    assert_eq!(task.id(), Some(id));
    assert_eq!(task.kind(), TaskKind::Blocking);
    assert_eq!(task.state(), TaskState::Running, "{report}");
    release.send(()).unwrap();
}

// ---------------------------------------------------------------------------
// Multi-thread runtimes
// ---------------------------------------------------------------------------

/// The whole check run as a task on a one-worker multi-thread runtime: the
/// multi-thread scheduler's wake and defer paths, with exact answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn multi_thread_one_worker_exact_states() {
    tokio::spawn(async {
        let one = TaskState::Waiting { wakers: 1 };
        assert_eq!(assert_wakeable(mpsc_recv_case).await, one);
        assert_eq!(assert_wakeable(oneshot_case).await, one);
        assert_eq!(assert_wakeable(notify_case).await, one);
        assert_eq!(
            assert_wakeable(|| async { will_wake_case(Arc::default()) }).await,
            one
        );
        assert_eq!(
            verdict(pending::<()>(), ready_now()).await,
            TaskState::BlockedForever
        );
    })
    .await
    .unwrap();
}

/// Body and task on different threads: the task may still be finishing the
/// poll that signalled, so `Running` is a legitimate answer; `BlockedForever`
/// never is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_thread_wakeable_is_never_blocked() {
    fn judged(state: TaskState) {
        assert!(
            matches!(state, TaskState::Waiting { wakers: 1 } | TaskState::Running),
            "{state:?}"
        );
    }
    judged(assert_wakeable(mpsc_recv_case).await);
    judged(assert_wakeable(oneshot_case).await);
    judged(assert_wakeable(notify_case).await);
    judged(assert_wakeable(|| async { will_wake_case(Arc::default()) }).await);
}

/// Samples many tasks that wake themselves on four workers, at arbitrary
/// moments of their poll/defer/wake cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_thread_yield_loops_are_never_blocked() {
    let mut false_blocked = 0;
    let mut sampled = 0;
    for _ in 0..200 {
        let (_, report) = scope("yield stress")
            .build()
            .run_and_report(async {
                for _ in 0..64 {
                    drop(spawn(async {
                        loop {
                            yield_now().await;
                        }
                    }));
                }
                yield_now().await;
            })
            .await;
        sampled += report.leaked().len();
        false_blocked += report
            .leaked()
            .iter()
            .filter(|task| task.state() == TaskState::BlockedForever)
            .count();
    }
    assert_eq!(
        false_blocked, 0,
        "{false_blocked} of {sampled} self-waking tasks reported blocked forever"
    );
}

/// Receivers and senders on full bounded channels waking each other across
/// workers, sampled at arbitrary moments.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_thread_cross_thread_wakes_are_never_blocked() {
    let mut false_blocked = 0;
    let mut sampled = 0;
    for _ in 0..200 {
        let (_, report) = scope("wake stress")
            .build()
            .run_and_report(async {
                for _ in 0..32 {
                    let (tx, mut rx) = mpsc::channel::<()>(1);
                    drop(spawn(async move { while rx.recv().await.is_some() {} }));
                    drop(spawn(async move { while tx.send(()).await.is_ok() {} }));
                }
                yield_now().await;
            })
            .await;
        sampled += report.leaked().len();
        false_blocked += report
            .leaked()
            .iter()
            .filter(|task| task.state() == TaskState::BlockedForever)
            .count();
    }
    assert_eq!(
        false_blocked, 0,
        "{false_blocked} of {sampled} tasks woken across threads reported blocked forever"
    );
}
