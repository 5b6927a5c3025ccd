//! Leak corpus, channels: tasks stranded on a receive or a send that can never
//! complete (mpsc, oneshot, broadcast, watch, hand-written futures).
//!
//! Each pattern is a fixture that leaks on purpose (`#[ignore]`d, run by its
//! checker, which asserts the report's spawn sites and task counts) and a fixed
//! twin that passes as a normal `#[leak_checked]` test. No test waits on a fixed
//! sleep: tasks signal when they reach their blocking point, and timers run on
//! a paused clock where the pattern needs them.

mod support;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use leakfree_runtime::{leak_checked, spawn};
use support::{expect_leak, spawn_here, state_at};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};

const WAITING_ONE: &str = "waiting: 1 waker held (timer, I/O or channel)";

// ---- 1. mpsc: the worker holds a clone of its own sender ---------------------
//
// A worker re-queues failed jobs through a clone of the queue's sender. The
// clone keeps the queue open, so `recv` never returns `None` and the worker
// outlives every caller. Fix: re-queue through a `WeakSender`.

#[derive(Debug)]
struct Job {
    id: u32,
    retries_left: u32,
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by mpsc_sender_cloned_into_worker_is_caught"]
async fn leak_mpsc_sender_cloned_into_worker() {
    let (tx, mut rx) = mpsc::channel::<Job>(8);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let requeue = tx.clone(); // the bug: the worker keeps its own queue open
    spawn_here("requeue-worker", async move {
        while let Some(job) = rx.recv().await {
            if job.retries_left > 0 {
                let retry = Job {
                    id: job.id,
                    retries_left: job.retries_left - 1,
                };
                requeue.send(retry).await.unwrap();
            } else {
                done_tx.send(job.id).unwrap();
            }
        }
    });
    tx.send(Job {
        id: 1,
        retries_left: 1,
    })
    .await
    .unwrap();
    assert_eq!(done_rx.recv().await, Some(1));
}

#[leak_checked]
#[tokio::test]
async fn fix_mpsc_sender_cloned_into_worker() {
    let (tx, mut rx) = mpsc::channel::<Job>(8);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let requeue = tx.downgrade(); // the fix: a weak sender does not keep the queue open
    let worker = spawn(async move {
        while let Some(job) = rx.recv().await {
            match (job.retries_left, requeue.upgrade()) {
                (0, _) | (_, None) => done_tx.send(job.id).unwrap(),
                (retries, Some(requeue)) => {
                    let retry = Job {
                        id: job.id,
                        retries_left: retries - 1,
                    };
                    requeue.send(retry).await.unwrap();
                }
            }
        }
    });
    tx.send(Job {
        id: 1,
        retries_left: 1,
    })
    .await
    .unwrap();
    assert_eq!(done_rx.recv().await, Some(1));
    drop(tx);
    worker.await.unwrap();
}

#[test]
fn mpsc_sender_cloned_into_worker_is_caught() {
    let text = expect_leak(
        leak_mpsc_sender_cloned_into_worker,
        "leak_mpsc_sender_cloned_into_worker",
        "20ms",
        1,
        &[("requeue-worker", 1)],
        0,
    );
    assert_eq!(state_at(&text, "requeue-worker"), WAITING_ONE);
}

// ---- 2. mpsc: the sender is parked in a process-wide registry ----------------
//
// A request subscribes a listener to server events through a global registry
// and returns without unsubscribing: the registry keeps the sender, so the
// listener waits forever. Fix: unsubscribe (drop the sender) before returning.

type Listeners = Mutex<Vec<(&'static str, mpsc::UnboundedSender<String>)>>;

static LISTENERS: Listeners = Mutex::new(Vec::new());

fn subscribe(owner: &'static str) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    LISTENERS.lock().unwrap().push((owner, tx));
    rx
}

fn publish(owner: &str, event: &str) {
    for (_, tx) in LISTENERS
        .lock()
        .unwrap()
        .iter()
        .filter(|(o, _)| *o == owner)
    {
        let _ = tx.send(event.to_owned());
    }
}

fn unsubscribe(owner: &str) {
    LISTENERS.lock().unwrap().retain(|(o, _)| *o != owner);
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by sender_parked_in_a_registry_is_caught"]
async fn leak_sender_parked_in_a_registry() {
    let mut events = subscribe("leak_registry");
    let (seen_tx, seen_rx) = oneshot::channel();
    spawn_here("registry-listener", async move {
        let mut seen = Some(seen_tx);
        while let Some(event) = events.recv().await {
            if let Some(seen) = seen.take() {
                seen.send(event).unwrap();
            }
        }
    });
    publish("leak_registry", "config-changed");
    assert_eq!(seen_rx.await.unwrap(), "config-changed");
    // the bug: no unsubscribe, the registry keeps the sender
}

#[leak_checked]
#[tokio::test]
async fn fix_sender_parked_in_a_registry() {
    let mut events = subscribe("fix_registry");
    let (seen_tx, seen_rx) = oneshot::channel();
    let listener = spawn(async move {
        let mut seen = Some(seen_tx);
        while let Some(event) = events.recv().await {
            if let Some(seen) = seen.take() {
                seen.send(event).unwrap();
            }
        }
    });
    publish("fix_registry", "config-changed");
    assert_eq!(seen_rx.await.unwrap(), "config-changed");
    unsubscribe("fix_registry"); // the fix: the registry lets go of the sender
    listener.await.unwrap();
}

#[test]
fn sender_parked_in_a_registry_is_caught() {
    let text = expect_leak(
        leak_sender_parked_in_a_registry,
        "leak_sender_parked_in_a_registry",
        "20ms",
        1,
        &[("registry-listener", 1)],
        0,
    );
    unsubscribe("leak_registry");
    assert_eq!(state_at(&text, "registry-listener"), WAITING_ONE);
}

// ---- 3. oneshot: awaiting the answer before flushing the request -------------
//
// A batcher queues a request (carrying its reply sender) and awaits the reply
// before flushing the batch: the reply sender sits in its own batch, so the
// answer never comes, and the server waiting for the flush is stranded too.
// Fix: flush, then await.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by oneshot_awaited_before_flush_is_caught"]
async fn leak_oneshot_awaited_before_flush() {
    let (server_tx, mut server_rx) = mpsc::unbounded_channel::<oneshot::Sender<u32>>();
    spawn_here("batch-server", async move {
        while let Some(reply) = server_rx.recv().await {
            let _ = reply.send(42);
        }
    });
    spawn_here("batcher", async move {
        let mut batch = Vec::new();
        let (reply, answer) = oneshot::channel();
        batch.push(reply);
        let value = answer.await; // the bug: the reply sender is still in `batch`
        for reply in batch {
            server_tx.send(reply).unwrap();
        }
        value
    });
}

#[leak_checked]
#[tokio::test]
async fn fix_oneshot_awaited_before_flush() {
    let (server_tx, mut server_rx) = mpsc::unbounded_channel::<oneshot::Sender<u32>>();
    let server = spawn(async move {
        while let Some(reply) = server_rx.recv().await {
            let _ = reply.send(42);
        }
    });
    let batcher = spawn(async move {
        let mut batch = Vec::new();
        let (reply, answer) = oneshot::channel();
        batch.push(reply);
        for reply in batch.drain(..) {
            server_tx.send(reply).unwrap(); // the fix: flush first
        }
        drop(server_tx);
        answer.await
    });
    assert_eq!(batcher.await.unwrap(), Ok(42));
    server.await.unwrap();
}

#[test]
fn oneshot_awaited_before_flush_is_caught() {
    let text = expect_leak(
        leak_oneshot_awaited_before_flush,
        "leak_oneshot_awaited_before_flush",
        "20ms",
        2,
        &[("batch-server", 1), ("batcher", 1)],
        0,
    );
    assert_eq!(state_at(&text, "batcher"), WAITING_ONE);
    assert_eq!(state_at(&text, "batch-server"), WAITING_ONE);
}

// ---- 4. oneshot: a stuck upstream strands every waiter -----------------------
//
// An upstream collects reply senders and calls a slow dependency without a
// deadline; the callers waiting for their replies are stranded with it. Fix: a
// deadline on the dependency, after which the reply senders are dropped and
// every waiter learns the call failed.

fn upstream_with_waiters(deadline: Option<Duration>) -> Vec<leakfree_runtime::JoinHandle<()>> {
    let (requests_tx, mut requests_rx) = mpsc::unbounded_channel::<oneshot::Sender<u32>>();
    let mut tasks = vec![spawn_here("stuck-upstream", async move {
        let mut pending = Vec::new();
        while pending.len() < 3 {
            pending.push(requests_rx.recv().await.unwrap());
        }
        let slow_dependency = tokio::time::sleep(Duration::from_secs(3600));
        match deadline {
            None => slow_dependency.await, // the bug: no deadline
            Some(deadline) => {
                if tokio::time::timeout(deadline, slow_dependency)
                    .await
                    .is_err()
                {
                    return; // dropping `pending` tells every waiter
                }
            }
        }
        for reply in pending {
            let _ = reply.send(1);
        }
    })];
    for _ in 0..3 {
        let (reply, answer) = oneshot::channel();
        requests_tx.send(reply).unwrap();
        tasks.push(spawn_here("stranded-waiter", async move {
            let _ = answer.await;
        }));
    }
    tasks
}

#[leak_checked(grace = "20ms")]
#[tokio::test(start_paused = true)]
#[ignore = "fixture: leaks on purpose; run by stuck_upstream_strands_waiters_is_caught"]
async fn leak_stuck_upstream_strands_waiters() {
    let _detached = upstream_with_waiters(None);
}

#[leak_checked]
#[tokio::test(start_paused = true)]
async fn fix_stuck_upstream_strands_waiters() {
    for task in upstream_with_waiters(Some(Duration::from_millis(50))) {
        task.await.unwrap();
    }
}

#[test]
fn stuck_upstream_strands_waiters_is_caught() {
    let text = expect_leak(
        leak_stuck_upstream_strands_waiters,
        "leak_stuck_upstream_strands_waiters",
        "20ms",
        4,
        &[("stuck-upstream", 1), ("stranded-waiter", 3)],
        0,
    );
    assert!(
        text.contains("3 tasks \"stranded-waiter\" spawned at"),
        "{text}"
    );
    assert_eq!(state_at(&text, "stranded-waiter"), WAITING_ONE);
}

// ---- 5. broadcast: a relay that holds a sender of its own channel -----------
//
// A subscriber answers pings by publishing on the same channel, through a
// sender clone: the channel never reports `Closed`. Fix: a weak sender.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by broadcast_relay_holds_a_sender_is_caught"]
async fn leak_broadcast_relay_holds_a_sender() {
    let (tx, mut rx) = broadcast::channel::<String>(16);
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let relay = tx.clone(); // the bug
    spawn_here("broadcast-relay", async move {
        loop {
            match rx.recv().await {
                Ok(message) => {
                    if message == "ping" {
                        let _ = relay.send("pong".to_owned());
                    }
                    let _ = seen_tx.send(message);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    tx.send("ping".to_owned()).unwrap();
    assert_eq!(seen_rx.recv().await.as_deref(), Some("ping"));
    assert_eq!(seen_rx.recv().await.as_deref(), Some("pong"));
}

#[leak_checked]
#[tokio::test]
async fn fix_broadcast_relay_holds_a_sender() {
    let (tx, mut rx) = broadcast::channel::<String>(16);
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let relay = tx.downgrade(); // the fix
    let task = spawn(async move {
        loop {
            match rx.recv().await {
                Ok(message) => {
                    let pong = (message == "ping").then(|| relay.upgrade()).flatten();
                    if let Some(relay) = pong {
                        let _ = relay.send("pong".to_owned());
                    }
                    let _ = seen_tx.send(message);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    tx.send("ping".to_owned()).unwrap();
    assert_eq!(seen_rx.recv().await.as_deref(), Some("ping"));
    assert_eq!(seen_rx.recv().await.as_deref(), Some("pong"));
    drop(tx);
    task.await.unwrap();
}

#[test]
fn broadcast_relay_holds_a_sender_is_caught() {
    let text = expect_leak(
        leak_broadcast_relay_holds_a_sender,
        "leak_broadcast_relay_holds_a_sender",
        "20ms",
        1,
        &[("broadcast-relay", 1)],
        0,
    );
    assert_eq!(state_at(&text, "broadcast-relay"), WAITING_ONE);
}

// ---- 6. watch: a config watcher that can write the config back ---------------
//
// The watcher resets out-of-range values through a clone of the sender, so
// `changed()` never fails and the watcher never ends. Fix: clamp locally; only
// the owner holds the sender.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by watch_watcher_holds_the_sender_is_caught"]
async fn leak_watch_watcher_holds_the_sender() {
    let (tx, mut rx) = watch::channel(1u32);
    let (applied_tx, mut applied_rx) = mpsc::unbounded_channel();
    let reset = tx.clone(); // the bug
    spawn_here("config-watcher", async move {
        while rx.changed().await.is_ok() {
            let level = *rx.borrow_and_update();
            if level > 9 {
                reset.send_replace(9);
                continue;
            }
            let _ = applied_tx.send(level);
        }
    });
    tx.send(12).unwrap();
    assert_eq!(applied_rx.recv().await, Some(9));
}

#[leak_checked]
#[tokio::test]
async fn fix_watch_watcher_holds_the_sender() {
    let (tx, mut rx) = watch::channel(1u32);
    let (applied_tx, mut applied_rx) = mpsc::unbounded_channel();
    let watcher = spawn(async move {
        while rx.changed().await.is_ok() {
            let level = (*rx.borrow_and_update()).min(9); // the fix
            let _ = applied_tx.send(level);
        }
    });
    tx.send(12).unwrap();
    assert_eq!(applied_rx.recv().await, Some(9));
    drop(tx);
    watcher.await.unwrap();
}

#[test]
fn watch_watcher_holds_the_sender_is_caught() {
    let text = expect_leak(
        leak_watch_watcher_holds_the_sender,
        "leak_watch_watcher_holds_the_sender",
        "20ms",
        1,
        &[("config-watcher", 1)],
        0,
    );
    assert_eq!(state_at(&text, "config-watcher"), WAITING_ONE);
}

// ---- 7. bounded send: the only consumer feeds its own full queue -------------
//
// A crawler pushes the children of each node back into its bounded queue: with
// two children and capacity one, the second send waits for a consumer, and the
// only consumer is the crawler itself. Fix: a local frontier.

#[derive(Debug)]
struct Node {
    id: u32,
    children: Vec<Node>,
}

fn tree() -> Node {
    Node {
        id: 1,
        children: vec![
            Node {
                id: 2,
                children: vec![],
            },
            Node {
                id: 3,
                children: vec![],
            },
        ],
    }
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by send_into_own_full_queue_is_caught"]
async fn leak_send_into_own_full_queue() {
    let (tx, mut rx) = mpsc::channel::<Node>(1);
    let (visited_tx, mut visited_rx) = mpsc::unbounded_channel();
    let feed = tx.clone();
    spawn_here("crawler", async move {
        while let Some(node) = rx.recv().await {
            let _ = visited_tx.send(node.id);
            for child in node.children {
                feed.send(child).await.unwrap(); // the bug: blocks on the second child
            }
        }
    });
    tx.send(tree()).await.unwrap();
    assert_eq!(visited_rx.recv().await, Some(1));
}

#[leak_checked]
#[tokio::test]
async fn fix_send_into_own_full_queue() {
    let (tx, mut rx) = mpsc::channel::<Node>(1);
    let (visited_tx, mut visited_rx) = mpsc::unbounded_channel();
    let crawler = spawn(async move {
        while let Some(node) = rx.recv().await {
            let mut frontier = VecDeque::from([node]); // the fix
            while let Some(node) = frontier.pop_front() {
                let _ = visited_tx.send(node.id);
                frontier.extend(node.children);
            }
        }
    });
    tx.send(tree()).await.unwrap();
    drop(tx);
    crawler.await.unwrap();
    let mut visited = Vec::new();
    while let Some(id) = visited_rx.recv().await {
        visited.push(id);
    }
    assert_eq!(visited, [1, 2, 3]);
}

#[test]
fn send_into_own_full_queue_is_caught() {
    let text = expect_leak(
        leak_send_into_own_full_queue,
        "leak_send_into_own_full_queue",
        "20ms",
        1,
        &[("crawler", 1)],
        0,
    );
    assert_eq!(state_at(&text, "crawler"), WAITING_ONE);
}

// ---- 8. bounded send: a stuck consumer blocks every producer -----------------
//
// Five producers send into a queue of capacity one; the consumer takes one item
// and then waits for a downstream that never becomes ready. One item sits in
// the buffer, three producers wait on `send`. Fix: the consumer has a stop
// path; when it returns, its receiver goes and every blocked send fails.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by stuck_consumer_blocks_producers_is_caught"]
async fn leak_stuck_consumer_blocks_producers() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let downstream = Arc::new(Notify::new());
    let (first_tx, first_rx) = oneshot::channel();
    spawn_here("stuck-consumer", async move {
        first_tx.send(rx.recv().await).unwrap();
        downstream.notified().await; // the bug: no way out
        while rx.recv().await.is_some() {}
    });
    for i in 0..5 {
        let tx = tx.clone();
        spawn_here("blocked-producer", async move {
            let _ = tx.send(i).await;
        });
    }
    assert!(first_rx.await.unwrap().is_some());
}

#[leak_checked]
#[tokio::test]
async fn fix_stuck_consumer_blocks_producers() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let downstream = Arc::new(Notify::new());
    let (first_tx, first_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let consumer = spawn(async move {
        first_tx.send(rx.recv().await).unwrap();
        tokio::select! {
            _ = downstream.notified() => {}
            _ = stop_rx => return, // the fix: dropping `rx` fails every blocked send
        }
        while rx.recv().await.is_some() {}
    });
    let producers: Vec<_> = (0..5)
        .map(|i| {
            let tx = tx.clone();
            spawn(async move {
                let _ = tx.send(i).await;
            })
        })
        .collect();
    assert!(first_rx.await.unwrap().is_some());
    stop_tx.send(()).unwrap();
    consumer.await.unwrap();
    for producer in producers {
        producer.await.unwrap();
    }
}

#[test]
fn stuck_consumer_blocks_producers_is_caught() {
    let text = expect_leak(
        leak_stuck_consumer_blocks_producers,
        "leak_stuck_consumer_blocks_producers",
        "20ms",
        4,
        &[("stuck-consumer", 1), ("blocked-producer", 3)],
        0,
    );
    assert!(
        text.contains("3 tasks \"blocked-producer\" spawned at"),
        "{text}"
    );
}

// ---- 9. select!: a closed channel only disables its branch -------------------
//
// A batch flusher selects over `Some(item) = rx.recv()` and a ticker. When the
// senders go, `recv` returns `None`, the pattern does not match, the branch is
// disabled for that round, and the ticker keeps the loop alive forever. Fix:
// match `None` and break.

async fn flusher(
    mut rx: mpsc::Receiver<u32>,
    flushed: mpsc::UnboundedSender<Vec<u32>>,
    stop_on_close: bool,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut batch = Vec::new();
    let flush = |batch: &mut Vec<u32>| {
        if !batch.is_empty() {
            let _ = flushed.send(std::mem::take(batch));
        }
    };
    loop {
        if stop_on_close {
            tokio::select! {
                item = rx.recv() => match item {
                    Some(item) => batch.push(item),
                    None => break, // the fix
                },
                _ = tick.tick() => flush(&mut batch),
            }
        } else {
            tokio::select! {
                Some(item) = rx.recv() => batch.push(item), // the bug
                _ = tick.tick() => flush(&mut batch),
            }
        }
    }
    flush(&mut batch);
}

async fn flushed_items(flushed: &mut mpsc::UnboundedReceiver<Vec<u32>>, n: usize) -> Vec<u32> {
    let mut items = Vec::new();
    while items.len() < n {
        items.extend(flushed.recv().await.unwrap());
    }
    items
}

#[leak_checked(grace = "20ms")]
#[tokio::test(start_paused = true)]
#[ignore = "fixture: leaks on purpose; run by select_branch_disabled_by_close_is_caught"]
async fn leak_select_branch_disabled_by_close() {
    let (tx, rx) = mpsc::channel::<u32>(4);
    let (flushed_tx, mut flushed_rx) = mpsc::unbounded_channel();
    spawn_here("batch-flusher", flusher(rx, flushed_tx, false));
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    assert_eq!(flushed_items(&mut flushed_rx, 2).await, [1, 2]);
    drop(tx);
}

#[leak_checked]
#[tokio::test(start_paused = true)]
async fn fix_select_branch_disabled_by_close() {
    let (tx, rx) = mpsc::channel::<u32>(4);
    let (flushed_tx, mut flushed_rx) = mpsc::unbounded_channel();
    let task = spawn(flusher(rx, flushed_tx, true));
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    tx.send(3).await.unwrap();
    drop(tx);
    task.await.unwrap();
    assert_eq!(flushed_items(&mut flushed_rx, 3).await, [1, 2, 3]);
}

#[test]
fn select_branch_disabled_by_close_is_caught() {
    expect_leak(
        leak_select_branch_disabled_by_close,
        "leak_select_branch_disabled_by_close",
        "20ms",
        1,
        &[("batch-flusher", 1)],
        0,
    );
}

// ---- 10. mpsc: an Arc cycle keeps the sender alive -------------------------------
//
// A service's worker holds an `Arc` of the shared state (to count what it
// handled), and the shared state holds the worker's sender: dropping the
// service drops nothing. Fix: the worker holds a `Weak`.

struct Shared {
    events: mpsc::UnboundedSender<String>,
    handled: AtomicUsize,
}

struct Service {
    shared: Arc<Shared>,
}

impl Service {
    fn start(weak_back_reference: bool) -> (Service, leakfree_runtime::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let shared = Arc::new(Shared {
            events: tx,
            handled: AtomicUsize::new(0),
        });
        let worker = if weak_back_reference {
            let shared: Weak<Shared> = Arc::downgrade(&shared); // the fix
            spawn(async move {
                while rx.recv().await.is_some() {
                    if let Some(shared) = shared.upgrade() {
                        shared.handled.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        } else {
            let shared = shared.clone(); // the bug: a cycle through the sender
            spawn_here("stats-worker", async move {
                while rx.recv().await.is_some() {
                    shared.handled.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        (Service { shared }, worker)
    }

    fn record(&self, event: &str) {
        self.shared.events.send(event.to_owned()).unwrap();
    }
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by arc_cycle_keeps_the_sender_is_caught"]
async fn leak_arc_cycle_keeps_the_sender() {
    let (service, _worker) = Service::start(false);
    service.record("login");
    drop(service);
}

#[leak_checked]
#[tokio::test]
async fn fix_arc_cycle_keeps_the_sender() {
    let (service, worker) = Service::start(true);
    service.record("login");
    drop(service);
    worker.await.unwrap();
}

#[test]
fn arc_cycle_keeps_the_sender_is_caught() {
    let text = expect_leak(
        leak_arc_cycle_keeps_the_sender,
        "leak_arc_cycle_keeps_the_sender",
        "20ms",
        1,
        &[("stats-worker", 1)],
        0,
    );
    assert_eq!(state_at(&text, "stats-worker"), WAITING_ONE);
}

// ---- 11. bounded send: a reserved slot held across an await ------------------
//
// A task reserves the queue's only slot, then waits for a go-ahead from a
// second task, whose own send waits for that slot; an in-order consumer waits
// for both. Three tasks, one deadlock. Fix: reserve only when the value is
// ready to send.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by reserved_slot_held_across_await_is_caught"]
async fn leak_reserved_slot_held_across_await() {
    let (tx, mut rx) = mpsc::channel::<&'static str>(1);
    let (reserved_tx, reserved_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    spawn_here("ordered-consumer", async move {
        while rx.recv().await.is_some() {}
    });
    let holder_tx = tx.clone();
    spawn_here("slot-holder", async move {
        let permit = holder_tx.reserve().await.unwrap();
        reserved_tx.send(()).unwrap();
        let _ = go_rx.await; // the bug: the slot stays reserved meanwhile
        permit.send("second");
    });
    reserved_rx.await.unwrap();
    spawn_here("slot-waiter", async move {
        tx.send("first").await.unwrap();
        let _ = go_tx.send(());
    });
}

#[leak_checked]
#[tokio::test]
async fn fix_reserved_slot_held_across_await() {
    let (tx, mut rx) = mpsc::channel::<&'static str>(1);
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let consumer = spawn(async move {
        let mut seen = Vec::new();
        while let Some(item) = rx.recv().await {
            seen.push(item);
        }
        seen
    });
    let holder_tx = tx.clone();
    let holder = spawn(async move {
        let _ = go_rx.await;
        let permit = holder_tx.reserve().await.unwrap(); // the fix: reserve when ready
        permit.send("second");
    });
    let waiter = spawn(async move {
        tx.send("first").await.unwrap();
        let _ = go_tx.send(());
    });
    waiter.await.unwrap();
    holder.await.unwrap();
    assert_eq!(consumer.await.unwrap(), ["first", "second"]);
}

#[test]
fn reserved_slot_held_across_await_is_caught() {
    let text = expect_leak(
        leak_reserved_slot_held_across_await,
        "leak_reserved_slot_held_across_await",
        "20ms",
        3,
        &[
            ("ordered-consumer", 1),
            ("slot-holder", 1),
            ("slot-waiter", 1),
        ],
        0,
    );
    for name in ["ordered-consumer", "slot-holder", "slot-waiter"] {
        assert_eq!(state_at(&text, name), WAITING_ONE);
    }
}

// ---- 12. a hand-written future that loses its waker -------------------------
//
// A hand-rolled one-value slot returns `Pending` without storing the waker.
// The value arrives, but nothing will ever poll the taker again: no waker for
// it exists anywhere, which leakfree reports as *blocked forever*. Fix: store
// the waker and wake it on `put`.

#[derive(Default)]
struct Slot {
    value: Mutex<Option<u32>>,
    waker: Mutex<Option<Waker>>,
    store_waker: bool,
    polled: Notify,
}

impl Slot {
    fn put(&self, value: u32) {
        *self.value.lock().unwrap() = Some(value);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }

    fn take(self: &Arc<Self>) -> Take {
        Take(self.clone())
    }
}

struct Take(Arc<Slot>);

impl Future for Take {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        let slot = &self.0;
        if let Some(value) = slot.value.lock().unwrap().take() {
            return Poll::Ready(value);
        }
        if slot.store_waker {
            *slot.waker.lock().unwrap() = Some(cx.waker().clone()); // the fix
        }
        slot.polled.notify_one();
        Poll::Pending // the bug, without the line above: nobody can wake us
    }
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by future_that_loses_its_waker_is_caught"]
async fn leak_future_that_loses_its_waker() {
    let slot = Arc::new(Slot::default());
    let take = slot.take();
    spawn_here("slot-taker", take);
    slot.polled.notified().await;
    slot.put(7);
}

#[leak_checked]
#[tokio::test]
async fn fix_future_that_loses_its_waker() {
    let slot = Arc::new(Slot {
        store_waker: true,
        ..Slot::default()
    });
    let taker = spawn(slot.take());
    slot.polled.notified().await;
    slot.put(7);
    assert_eq!(taker.await.unwrap(), 7);
}

#[test]
fn future_that_loses_its_waker_is_caught() {
    if cfg!(all(
        tokio_unstable,
        feature = "taskdump",
        target_os = "linux"
    )) {
        // A task dump polls every task for real: the lost-waker future is
        // polled once more by the dump (after the verdict), finds its value
        // and finishes, so there is nothing left to abort. The verdict, taken
        // before the dump, is the same.
        let text = support::failure_of(leak_future_that_loses_its_waker);
        assert!(
            text.starts_with("leakfree: 1 task leaked from `leak_future_that_loses_its_waker`"),
            "{text}"
        );
        assert!(
            text.contains(&format!("spawned at {}, ", support::site("slot-taker"))),
            "{text}"
        );
        assert!(text.ends_with("  enforced: 0 aborted, 0 zombies"), "{text}");
        assert_eq!(
            state_at(&text, "slot-taker"),
            "blocked forever: no waker held, nothing can wake it"
        );
        return;
    }
    let text = expect_leak(
        leak_future_that_loses_its_waker,
        "leak_future_that_loses_its_waker",
        "20ms",
        1,
        &[("slot-taker", 1)],
        0,
    );
    assert_eq!(
        state_at(&text, "slot-taker"),
        "blocked forever: no waker held, nothing can wake it"
    );
}
