//! Leak corpus, task lifecycles: loops without a way out, tasks that outlive
//! their owner, tasks spawned from tasks, work that cannot be aborted.
//!
//! Each pattern is a fixture that leaks on purpose (`#[ignore]`d, run by its
//! checker, which asserts the report's spawn sites and task counts) and a fixed
//! twin that passes as a normal `#[leak_checked]` test. Tasks signal when they
//! reach their blocking point; timers run on a paused clock; blocking code waits
//! at a [`support::Gate`] the checker opens after the check, so nothing hangs.

mod support;

use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leakfree_runtime::{JoinHandle, Scope, current_token, leak_checked, spawn, spawn_blocking};
use support::{Gate, black_hole, expect_leak, site, spawn_blocking_here, spawn_here, state_at};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot, watch};

const WAITING_ONE: &str = "waiting: 1 waker held (timer, I/O or channel)";
const RUNNING: &str = "running: inside a poll or blocking call";

// ---- 1. interval: a flusher whose owner forgets it ---------------------------
//
// `Metrics::start` spawns a flusher ticking every second and drops its handle:
// dropping a `JoinHandle` detaches the task, it does not stop it. Fix: the
// owner keeps the handle and aborts the flusher when dropped.

struct Metrics {
    flusher: Option<JoinHandle<()>>,
}

impl Metrics {
    fn start(flushes: mpsc::UnboundedSender<u32>, abort_on_drop: bool) -> Metrics {
        let flusher = spawn_here("metrics-flusher", async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut n = 0;
            loop {
                tick.tick().await;
                n += 1;
                let _ = flushes.send(n); // ignores that nobody listens any more
            }
        });
        Metrics {
            flusher: abort_on_drop.then_some(flusher), // the bug when `false`: detached
        }
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        if let Some(flusher) = &self.flusher {
            flusher.abort(); // the fix
        }
    }
}

#[leak_checked(grace = "20ms")]
#[tokio::test(start_paused = true)]
#[ignore = "fixture: leaks on purpose; run by interval_flusher_detached_is_caught"]
async fn leak_interval_flusher_detached() {
    let (tx, mut flushes) = mpsc::unbounded_channel();
    let metrics = Metrics::start(tx, false);
    assert_eq!(flushes.recv().await, Some(1));
    drop(metrics);
}

#[leak_checked]
#[tokio::test(start_paused = true)]
async fn fix_interval_flusher_detached() {
    let (tx, mut flushes) = mpsc::unbounded_channel();
    let metrics = Metrics::start(tx, true);
    assert_eq!(flushes.recv().await, Some(1));
    drop(metrics);
    assert_eq!(flushes.recv().await, None, "the flusher is gone");
}

#[test]
fn interval_flusher_detached_is_caught() {
    expect_leak(
        leak_interval_flusher_detached,
        "leak_interval_flusher_detached",
        "20ms",
        1,
        &[("metrics-flusher", 1)],
        0,
    );
}

// ---- 2. sleep loop: a heartbeat without a shutdown path ----------------------
//
// The Go material's `for { time.Sleep(time.Second) }`: a heartbeat loop with
// no exit. Fix: select on a stop signal.

#[leak_checked(grace = "20ms")]
#[tokio::test(start_paused = true)]
#[ignore = "fixture: leaks on purpose; run by heartbeat_without_shutdown_is_caught"]
async fn leak_heartbeat_without_shutdown() {
    let (beat_tx, beat_rx) = oneshot::channel();
    spawn_here("heartbeat", async move {
        let mut first = Some(beat_tx);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await; // the bug: no exit
            if let Some(first) = first.take() {
                let _ = first.send(());
            }
        }
    });
    beat_rx.await.unwrap();
}

#[leak_checked]
#[tokio::test(start_paused = true)]
async fn fix_heartbeat_without_shutdown() {
    let (beat_tx, beat_rx) = oneshot::channel();
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let heartbeat = spawn(async move {
        let mut first = Some(beat_tx);
        loop {
            tokio::select! {
                _ = stop_rx.wait_for(|stop| *stop) => break, // the fix
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    if let Some(first) = first.take() {
                        let _ = first.send(());
                    }
                }
            }
        }
    });
    beat_rx.await.unwrap();
    stop_tx.send(true).unwrap();
    heartbeat.await.unwrap();
}

#[test]
fn heartbeat_without_shutdown_is_caught() {
    expect_leak(
        leak_heartbeat_without_shutdown,
        "leak_heartbeat_without_shutdown",
        "20ms",
        1,
        &[("heartbeat", 1)],
        0,
    );
}

// ---- 3. a retry loop that spawns an attempt per try --------------------------
//
// Each attempt is spawned and awaited under a timeout; on timeout the loop
// retries, and the timed-out attempt, whose handle `timeout` dropped, runs on.
// Three tries, three leaked attempts. Fix: abort the attempt that timed out.

async fn call_with_retries(server: Arc<Notify>, abort_timed_out: bool) -> Result<(), &'static str> {
    for _try in 0..3 {
        let server = server.clone();
        let mut attempt = spawn_here("retry-attempt", async move { server.notified().await });
        match tokio::time::timeout(Duration::from_millis(10), &mut attempt).await {
            Ok(result) => return result.map_err(|_| "attempt failed"),
            Err(_elapsed) if abort_timed_out => {
                attempt.abort(); // the fix
                assert!(attempt.await.unwrap_err().is_cancelled());
            }
            Err(_elapsed) => {} // the bug: the attempt is left running
        }
    }
    Err("gave up after 3 tries")
}

#[leak_checked(grace = "20ms")]
#[tokio::test(start_paused = true)]
#[ignore = "fixture: leaks on purpose; run by retry_spawning_per_attempt_is_caught"]
async fn leak_retry_spawning_per_attempt() {
    let server = Arc::new(Notify::new()); // never answers
    assert!(call_with_retries(server, false).await.is_err());
}

#[leak_checked]
#[tokio::test(start_paused = true)]
async fn fix_retry_spawning_per_attempt() {
    let server = Arc::new(Notify::new());
    assert!(call_with_retries(server, true).await.is_err());
}

#[test]
fn retry_spawning_per_attempt_is_caught() {
    let text = expect_leak(
        leak_retry_spawning_per_attempt,
        "leak_retry_spawning_per_attempt",
        "20ms",
        3,
        &[("retry-attempt", 3)],
        0,
    );
    assert!(
        text.contains(&format!(
            "3 tasks \"retry-attempt\" spawned at {}, ",
            site("retry-attempt")
        )),
        "{text}"
    );
    assert_eq!(state_at(&text, "retry-attempt"), WAITING_ONE);
}

// ---- 4. a task spawned in `Drop` ---------------------------------------------
//
// An "async drop": dropping a session spawns a goodbye handshake that waits for
// the peer's acknowledgement, which never comes. Fix: an explicit async
// `close` with a deadline, awaited by the owner; `Drop` spawns nothing.

struct Peer {
    acks: Notify,
}

struct Session {
    peer: Arc<Peer>,
}

impl Drop for Session {
    fn drop(&mut self) {
        let peer = self.peer.clone();
        spawn_here("session-goodbye", async move {
            peer.acks.notified().await; // the bug: waits for an ack forever
        });
    }
}

struct ClosableSession {
    peer: Arc<Peer>,
}

impl ClosableSession {
    async fn close(self) -> Result<(), &'static str> {
        let ack = self.peer.acks.notified();
        tokio::time::timeout(Duration::from_millis(50), ack)
            .await
            .map_err(|_| "no goodbye ack")
    }
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by task_spawned_in_drop_is_caught"]
async fn leak_task_spawned_in_drop() {
    let session = Session {
        peer: Arc::new(Peer {
            acks: Notify::new(),
        }),
    };
    drop(session);
}

#[leak_checked]
#[tokio::test(start_paused = true)]
async fn fix_task_spawned_in_drop() {
    let session = ClosableSession {
        peer: Arc::new(Peer {
            acks: Notify::new(),
        }),
    };
    assert_eq!(session.close().await, Err("no goodbye ack"));
}

#[test]
fn task_spawned_in_drop_is_caught() {
    let text = expect_leak(
        leak_task_spawned_in_drop,
        "leak_task_spawned_in_drop",
        "20ms",
        1,
        &[("session-goodbye", 1)],
        0,
    );
    assert_eq!(state_at(&text, "session-goodbye"), WAITING_ONE);
}

// ---- 5. a client whose connection task outlives it ---------------------------
//
// `Client::connect` spawns the task that reads the socket. Dropping the client
// does not tell it: it learns only when the next frame arrives, and from a
// server that has gone quiet none ever does. Fix: the client holds the sending
// half of a shutdown signal; dropping the client ends the connection task.

struct Client {
    _shutdown: Option<oneshot::Sender<()>>,
    frames: mpsc::UnboundedReceiver<Vec<u8>>,
}

async fn read_frames(stream: &mut TcpStream, frames: mpsc::UnboundedSender<Vec<u8>>) {
    let mut buf = vec![0; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if frames.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        }
    }
}

impl Client {
    async fn connect(with_shutdown: bool) -> Client {
        let mut stream = TcpStream::connect(black_hole()).await.unwrap();
        stream.write_all(b"HELLO\r\n").await.unwrap();
        let (frames_tx, frames) = mpsc::unbounded_channel();
        let (reading_tx, reading_rx) = oneshot::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let shutdown = with_shutdown.then_some(shutdown_rx);
        spawn_here("client-connection", async move {
            reading_tx.send(()).unwrap();
            match shutdown {
                // the fix: ends when the client (and its sender) goes
                Some(shutdown) => tokio::select! {
                    _ = shutdown => {}
                    () = read_frames(&mut stream, frames_tx) => {}
                },
                // the bug: only the socket can end it
                None => read_frames(&mut stream, frames_tx).await,
            }
        });
        reading_rx.await.unwrap();
        Client {
            _shutdown: with_shutdown.then_some(shutdown_tx),
            frames,
        }
    }
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by connection_task_outlives_client_is_caught"]
async fn leak_connection_task_outlives_client() {
    let mut client = Client::connect(false).await;
    assert!(
        client.frames.try_recv().is_err(),
        "the server never answers"
    );
    drop(client);
}

#[leak_checked]
#[tokio::test]
async fn fix_connection_task_outlives_client() {
    let mut client = Client::connect(true).await;
    assert!(
        client.frames.try_recv().is_err(),
        "the server never answers"
    );
    drop(client);
}

#[test]
fn connection_task_outlives_client_is_caught() {
    let text = expect_leak(
        leak_connection_task_outlives_client,
        "leak_connection_task_outlives_client",
        "20ms",
        1,
        &[("client-connection", 1)],
        0,
    );
    assert_eq!(state_at(&text, "client-connection"), WAITING_ONE);
}

// ---- 6. a worker pool whose stop signal is never sent ------------------------
//
// Four pollers run until their pool's token is cancelled; `shutdown` cancels it
// and joins them, and the caller forgets to call it. A token, unlike a channel,
// is not cancelled by being dropped. Fix: call `shutdown`.

struct Pool {
    cancel: Box<dyn Fn() + Send + Sync>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn start(size: usize, polls: mpsc::UnboundedSender<usize>) -> Pool {
        let token = current_token().expect("inside a scope").child_token();
        let workers = (0..size)
            .map(|i| {
                let (token, polls) = (token.clone(), polls.clone());
                spawn_here("pool-worker", async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(1));
                    loop {
                        tokio::select! {
                            () = token.cancelled() => break,
                            _ = tick.tick() => { let _ = polls.send(i); }
                        }
                    }
                })
            })
            .collect();
        Pool {
            cancel: Box::new(move || token.cancel()),
            workers,
        }
    }

    async fn shutdown(self) {
        (self.cancel)();
        for worker in self.workers {
            worker.await.unwrap();
        }
    }
}

async fn first_polls(polls: &mut mpsc::UnboundedReceiver<usize>, size: usize) {
    let mut seen = vec![false; size];
    while seen.contains(&false) {
        seen[polls.recv().await.unwrap()] = true;
    }
}

#[leak_checked(grace = "20ms")]
#[tokio::test(start_paused = true)]
#[ignore = "fixture: leaks on purpose; run by pool_never_stopped_is_caught"]
async fn leak_pool_never_stopped() {
    let (tx, mut polls) = mpsc::unbounded_channel();
    let pool = Pool::start(4, tx);
    first_polls(&mut polls, 4).await;
    drop(pool); // the bug: no `shutdown`
}

#[leak_checked]
#[tokio::test(start_paused = true)]
async fn fix_pool_never_stopped() {
    let (tx, mut polls) = mpsc::unbounded_channel();
    let pool = Pool::start(4, tx);
    first_polls(&mut polls, 4).await;
    pool.shutdown().await; // the fix
}

#[test]
fn pool_never_stopped_is_caught() {
    expect_leak(
        leak_pool_never_stopped,
        "leak_pool_never_stopped",
        "20ms",
        4,
        &[("pool-worker", 4)],
        0,
    );
}

// ---- 7. a grandchild outlives its parent and grandparent ---------------------
//
// A parent spawns a child that spawns a grandchild and returns; both ancestors
// finish cleanly, the grandchild waits forever. It still belongs to the test's
// scope. Fix: the child joins what it spawned.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by grandchild_outlives_ancestors_is_caught"]
async fn leak_grandchild_outlives_ancestors() {
    let upstream = Arc::new(Notify::new());
    spawn_here("gc-parent", async move {
        spawn_here("gc-child", async move {
            spawn_here("gc-grandchild", async move { upstream.notified().await });
            // the bug: returns without joining the grandchild
        })
        .await
        .unwrap();
    })
    .await
    .unwrap();
}

#[leak_checked]
#[tokio::test]
async fn fix_grandchild_outlives_ancestors() {
    let upstream = Arc::new(Notify::new());
    let signal = upstream.clone();
    let parent = spawn(async move {
        spawn(async move {
            let grandchild = spawn(async move { upstream.notified().await });
            grandchild.await.unwrap(); // the fix
        })
        .await
        .unwrap();
    });
    signal.notify_one();
    parent.await.unwrap();
}

#[test]
fn grandchild_outlives_ancestors_is_caught() {
    let text = expect_leak(
        leak_grandchild_outlives_ancestors,
        "leak_grandchild_outlives_ancestors",
        "20ms",
        1,
        &[("gc-grandchild", 1)],
        0,
    );
    assert!(
        !text.contains("gc-parent") && !text.contains("gc-child"),
        "{text}"
    );
    assert_eq!(state_at(&text, "gc-grandchild"), WAITING_ONE);
}

// ---- 8. a grandchild spawned after the body returned -------------------------
//
// The parent is told to go on as the body returns, and spawns its child while
// the scope is already settling. The late child is the scope's too. Fix: the
// parent joins its child.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by grandchild_spawned_while_settling_is_caught"]
async fn leak_grandchild_spawned_while_settling() {
    let (go_tx, go_rx) = oneshot::channel::<()>();
    spawn_here("late-parent", async move {
        if go_rx.await.is_ok() {
            spawn_here("late-grandchild", pending::<()>());
        }
    });
    go_tx.send(()).unwrap(); // the parent runs only once the body has returned
}

#[leak_checked]
#[tokio::test]
async fn fix_grandchild_spawned_while_settling() {
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let parent = spawn(async move {
        if go_rx.await.is_ok() {
            spawn(async {}).await.unwrap(); // the fix: joined
        }
    });
    go_tx.send(()).unwrap();
    parent.await.unwrap();
}

#[test]
fn grandchild_spawned_while_settling_is_caught() {
    let text = expect_leak(
        leak_grandchild_spawned_while_settling,
        "leak_grandchild_spawned_while_settling",
        "20ms",
        1,
        &[("late-grandchild", 1)],
        0,
    );
    assert_eq!(
        state_at(&text, "late-grandchild"),
        "blocked forever: no waker held, nothing can wake it"
    );
}

// ---- 9. a supervisor joined to a stuck child ---------------------------------
//
// A supervisor awaits the child it supervises, with no deadline; the child waits
// on an upstream that never answers. Both leak, each at its own spawn site.
// Fix: a deadline, then abort the child.

async fn supervise(upstream: Arc<Notify>, deadline: Option<Duration>) -> &'static str {
    let mut child = spawn_here("supervised-child", async move { upstream.notified().await });
    match deadline {
        None => {
            let _ = (&mut child).await; // the bug: no deadline
            "done"
        }
        Some(deadline) => match tokio::time::timeout(deadline, &mut child).await {
            Ok(_) => "done",
            Err(_) => {
                child.abort(); // the fix
                assert!(child.await.unwrap_err().is_cancelled());
                "child timed out"
            }
        },
    }
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by supervisor_joined_to_stuck_child_is_caught"]
async fn leak_supervisor_joined_to_stuck_child() {
    let upstream = Arc::new(Notify::new());
    spawn_here("supervisor", supervise(upstream, None));
}

#[leak_checked]
#[tokio::test(start_paused = true)]
async fn fix_supervisor_joined_to_stuck_child() {
    let upstream = Arc::new(Notify::new());
    let supervisor = spawn(supervise(upstream, Some(Duration::from_millis(50))));
    assert_eq!(supervisor.await.unwrap(), "child timed out");
}

#[test]
fn supervisor_joined_to_stuck_child_is_caught() {
    let text = expect_leak(
        leak_supervisor_joined_to_stuck_child,
        "leak_supervisor_joined_to_stuck_child",
        "20ms",
        2,
        &[("supervisor", 1), ("supervised-child", 1)],
        0,
    );
    assert_eq!(state_at(&text, "supervisor"), WAITING_ONE);
    assert_eq!(state_at(&text, "supervised-child"), WAITING_ONE);
}

// ---- 10. spawn_blocking that outlives the scope (a zombie) -------------------
//
// A blocking export waits on something that has not happened when the test
// ends. It cannot be aborted: leakfree reports it as leaked and as a zombie,
// and the self-contained form shuts its runtime down without waiting for it.
// Fix: join the blocking work before the scope ends.

static EXPORT_GATE: Gate = Gate::new();
static FIX_EXPORT_GATE: Gate = Gate::new();

#[leak_checked(grace = "20ms")]
#[test]
#[ignore = "fixture: leaks on purpose; run by spawn_blocking_outlives_scope_is_caught"]
async fn leak_spawn_blocking_outlives_scope() {
    let (started_tx, started_rx) = oneshot::channel();
    spawn_blocking_here("blocking-export", move || {
        started_tx.send(()).unwrap();
        EXPORT_GATE.wait(); // the bug: nobody waits for this to end
    });
    started_rx.await.unwrap();
}

#[leak_checked]
#[test]
async fn fix_spawn_blocking_outlives_scope() {
    let (started_tx, started_rx) = oneshot::channel();
    let export = spawn_blocking(move || {
        started_tx.send(()).unwrap();
        FIX_EXPORT_GATE.wait();
    });
    started_rx.await.unwrap();
    FIX_EXPORT_GATE.open();
    export.await.unwrap(); // the fix
}

#[test]
fn spawn_blocking_outlives_scope_is_caught() {
    let _release = EXPORT_GATE.open_on_drop();
    let text = expect_leak(
        leak_spawn_blocking_outlives_scope,
        "leak_spawn_blocking_outlives_scope",
        "20ms",
        1,
        &[("blocking-export", 1)],
        1,
    );
    assert!(text.contains("\n  zombie: blocking task "), "{text}");
    assert!(
        text.contains(&format!(
            "spawned at {} still alive after abort (blocking code cannot be aborted)",
            site("blocking-export")
        )),
        "{text}"
    );
    assert_eq!(state_at(&text, "blocking-export"), RUNNING);
}

// ---- 11. a task that ignores its cancellation token --------------------------
//
// The task is handed a token and never watches it: cancelling it does nothing.
// leakfree reports it and its abort stops it (no zombie). Fix: select on
// `cancelled()`.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by task_ignores_its_token_is_caught"]
async fn leak_task_ignores_its_token() {
    let token = current_token().expect("inside a scope").child_token();
    let upstream = Arc::new(Notify::new());
    let task_token = token.clone();
    spawn_here("token-ignorer", async move {
        let _token = task_token; // the bug: held, never watched
        upstream.notified().await;
    });
    token.cancel();
}

#[leak_checked]
#[tokio::test]
async fn fix_task_ignores_its_token() {
    let token = current_token().expect("inside a scope").child_token();
    let upstream = Arc::new(Notify::new());
    let task_token = token.clone();
    let task = spawn(async move {
        tokio::select! {
            () = task_token.cancelled() => {} // the fix
            () = upstream.notified() => {}
        }
    });
    token.cancel();
    task.await.unwrap();
}

#[test]
fn task_ignores_its_token_is_caught() {
    let text = expect_leak(
        leak_task_ignores_its_token,
        "leak_task_ignores_its_token",
        "20ms",
        1,
        &[("token-ignorer", 1)],
        0,
    );
    assert_eq!(state_at(&text, "token-ignorer"), WAITING_ONE);
}

// ---- 12. a task that never yields (a zombie) ---------------------------------
//
// A busy loop polls a flag instead of awaiting: its poll never returns, so the
// abort cannot take effect. On a multi-thread runtime the check still runs
// while a worker spins; the checker sets the flag afterwards. Fix: await a
// signal instead of spinning.

static SPIN_STOP: AtomicBool = AtomicBool::new(false);

struct StopSpinning;

impl Drop for StopSpinning {
    fn drop(&mut self) {
        SPIN_STOP.store(true, Ordering::Release);
    }
}

#[leak_checked(flavor = "multi_thread", grace = "20ms")]
#[test]
#[ignore = "fixture: leaks on purpose; run by task_never_yields_is_caught"]
async fn leak_task_never_yields() {
    let (spinning_tx, spinning_rx) = oneshot::channel();
    spawn_here("busy-loop", async move {
        spinning_tx.send(()).unwrap();
        while !SPIN_STOP.load(Ordering::Acquire) {
            std::hint::spin_loop(); // the bug: never returns to the scheduler
        }
    });
    spinning_rx.await.unwrap();
}

#[leak_checked(flavor = "multi_thread")]
#[test]
async fn fix_task_never_yields() {
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let (waiting_tx, waiting_rx) = oneshot::channel();
    let task = spawn(async move {
        waiting_tx.send(()).unwrap();
        let _ = stop_rx.wait_for(|stop| *stop).await; // the fix
    });
    waiting_rx.await.unwrap();
    stop_tx.send(true).unwrap();
    task.await.unwrap();
}

#[test]
fn task_never_yields_is_caught() {
    let _stop = StopSpinning;
    let text = expect_leak(
        leak_task_never_yields,
        "leak_task_never_yields",
        "20ms",
        1,
        &[("busy-loop", 1)],
        1,
    );
    assert!(
        text.contains(&format!(
            "spawned at {} still alive after abort (a poll that does not return)",
            site("busy-loop")
        )),
        "{text}"
    );
    assert_eq!(state_at(&text, "busy-loop"), RUNNING);
}

// ---- 13. a blocking call inside an async task (a zombie) ---------------------
//
// A synchronous wait inside `async` code holds its worker thread: like the busy
// loop, the abort cannot take effect. Fix: wait asynchronously.

static SYNC_WAIT_GATE: Gate = Gate::new();

#[leak_checked(flavor = "multi_thread", grace = "20ms")]
#[test]
#[ignore = "fixture: leaks on purpose; run by blocking_call_in_async_task_is_caught"]
async fn leak_blocking_call_in_async_task() {
    let (waiting_tx, waiting_rx) = oneshot::channel();
    spawn_here("sync-wait-in-async", async move {
        waiting_tx.send(()).unwrap();
        SYNC_WAIT_GATE.wait(); // the bug: blocks the worker thread
    });
    waiting_rx.await.unwrap();
}

#[leak_checked(flavor = "multi_thread")]
#[test]
async fn fix_blocking_call_in_async_task() {
    let gate = Arc::new(Notify::new());
    let (waiting_tx, waiting_rx) = oneshot::channel();
    let task_gate = gate.clone();
    let task = spawn(async move {
        waiting_tx.send(()).unwrap();
        task_gate.notified().await; // the fix
    });
    waiting_rx.await.unwrap();
    gate.notify_one();
    task.await.unwrap();
}

#[test]
fn blocking_call_in_async_task_is_caught() {
    let _release = SYNC_WAIT_GATE.open_on_drop();
    let text = expect_leak(
        leak_blocking_call_in_async_task,
        "leak_blocking_call_in_async_task",
        "20ms",
        1,
        &[("sync-wait-in-async", 1)],
        1,
    );
    assert!(
        text.contains(&format!(
            "spawned at {} still alive after abort (a poll that does not return)",
            site("sync-wait-in-async")
        )),
        "{text}"
    );
}

// ---- 14. a destructor that spawns while its task is aborted ------------------
//
// A leaked task owns a connection whose `Drop` spawns a clean-up task. When the
// scope aborts the leaked task, tokio drops its future outside any poll, and
// the clean-up task is spawned then: it is still work of the scope's task and
// must not outlive the scope.

struct Conn {
    cleanup_alive: Option<oneshot::Sender<()>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        let alive = self.cleanup_alive.take();
        spawn_here("abort-cleanup", async move {
            let _alive = alive;
            pending::<()>().await;
        });
    }
}

#[tokio::test]
async fn task_spawned_by_an_aborted_tasks_destructor_stays_in_the_scope() {
    let (alive_tx, mut alive_rx) = oneshot::channel::<()>();
    let (owning_tx, owning_rx) = oneshot::channel();
    let scope = Scope::builder("destructor_spawn_on_abort")
        .grace(Duration::from_millis(20))
        .build();
    let ((), report) = scope
        .run_and_report(async move {
            spawn_here("conn-owner", async move {
                let _conn = Conn {
                    cleanup_alive: Some(alive_tx),
                };
                owning_tx.send(()).unwrap();
                pending::<()>().await;
            });
            owning_rx.await.unwrap();
        })
        .await;
    let text = report.to_string();
    assert_eq!(report.leaked().len(), 1, "{text}");
    assert!(
        text.contains(&format!("spawned at {}, ", site("conn-owner"))),
        "{text}"
    );
    // The clean-up task holds `alive`: it is gone once its sender is dropped.
    assert!(
        matches!(
            alive_rx.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ),
        "the clean-up task spawned while its parent was aborted (at {}) outlived \
         the scope, and the report does not mention it:\n{text}",
        site("abort-cleanup")
    );
}
