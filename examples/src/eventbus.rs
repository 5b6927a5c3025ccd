//! A small pub/sub event bus whose subscriptions start worker tasks, with a
//! leaky `close` and a correct one, checked by leakfree *after* close.
//!
//! This is the tokio counterpart of the Go EventBus story: a benchmark
//! counted goroutines before and after using a bus, found thousands left
//! (5 topics × 1026 subscription goroutines), and first had to rule out its
//! own mistake, because it had measured *before* the deferred `Close()` ran.
//! Here the check cannot be taken too early: [`run_checked`] creates the bus
//! inside a leakfree [`Scope`], runs the caller's body with a borrowed
//! `&Bus`, closes the bus itself, and only then lets the scope end and judge.
//! The body cannot keep the bus past the close (it only borrows it, and a
//! `Bus` cannot be cloned), so there is no "before close" to measure in.
//!
//! # The bus
//! Each topic is a `broadcast` channel. [`Bus::subscribe`] starts one worker
//! task per subscription (with [`spawn_named`], named `<topic>/subscriber`)
//! that hands every event of the topic to the subscription's handler. The
//! first subscription of a topic also starts the topic's heartbeat
//! (`<topic>/heartbeat`), which publishes an idle heartbeat on the topic
//! every [`HEARTBEAT`], as a message broker's consumers expect.
//!
//! # The leak, and the fix
//! [`Bus::close_leaky`] drops the bus's registry of topic senders, expecting
//! every worker to see its channel close and end. They do not: the heartbeat
//! of each topic holds a sender of the topic too (it publishes on it), and
//! nothing stops the heartbeat. So every heartbeat loops forever, and every
//! subscriber waits forever on a channel that stays open. One topic with `n`
//! subscribers leaks `n + 1` tasks.
//!
//! [`Bus::close`] signals every worker through the bus's stop token, then
//! awaits them all (Go's `cancel()` plus `wg.Wait()`): when it returns,
//! nothing of the bus is left running, and the scope ends clean without
//! waiting at all.
//!
//! leakfree groups identical leaks by spawn site: 5 topics × 200 subscribers
//! leaked by `close_leaky` print two entries, 1000 subscribers at one site and
//! 5 heartbeats at the other, not 1005 lines. The per-topic split is in the
//! tasks' names ([`leaks_by_topic`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::panic::resume_unwind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use leakfree_runtime::{JoinHandle, LeakReport, Scope, spawn_named};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// The name of the scope [`run_checked`] runs in (reports name it).
pub const SCOPE: &str = "eventbus";

/// How long [`run_checked`]'s scope waits after the close for the bus's
/// tasks to end on their own. A correct close leaves nothing to wait for.
pub const GRACE: Duration = Duration::from_millis(50);

/// How often a topic's heartbeat publishes. The first one is due one period
/// after the topic is created.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// How many messages a topic buffers for its slowest subscriber.
const CAPACITY: usize = 64;

/// Topic names for [`scenario`]; beyond these, `topic-6`, `topic-7`, ...
const TOPIC_NAMES: [&str; 5] = ["orders", "payments", "shipping", "billing", "audit"];

/// One published event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The topic it was published on.
    pub topic: Arc<str>,
    /// What was published.
    pub payload: Arc<str>,
}

/// What travels on a topic's channel.
#[derive(Debug, Clone)]
enum Message {
    Event(Event),
    Heartbeat,
}

type Handler = Arc<dyn Fn(&Event) + Send + Sync>;

/// A pub/sub bus: topics, and subscriptions that run as tasks.
///
/// Not `Clone`: whoever owns the bus closes it. Dropping a bus without
/// closing it leaves its tasks running, as [`Bus::close_leaky`] does.
pub struct Bus {
    topics: Mutex<HashMap<Arc<str>, broadcast::Sender<Message>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: CancellationToken,
    delivered: Arc<watch::Sender<u64>>,
}

impl Default for Bus {
    fn default() -> Bus {
        Bus::new()
    }
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("topics", &lock(&self.topics).len())
            .field("running_tasks", &self.running_tasks())
            .field("delivered", &self.delivered())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Bus {
    /// An empty bus. Its tasks start with the first subscription, on the
    /// current tokio runtime.
    pub fn new() -> Bus {
        Bus {
            topics: Mutex::default(),
            tasks: Mutex::default(),
            stop: CancellationToken::new(),
            delivered: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Subscribes `handler` to `topic`: starts a worker task that calls it
    /// with each event published on the topic from now on. The topic's first
    /// subscription also starts the topic's heartbeat.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn subscribe(&self, topic: &str, handler: impl Fn(&Event) + Send + Sync + 'static) {
        let handler: Handler = Arc::new(handler);
        let mut topics = lock(&self.topics);
        let mut tasks = lock(&self.tasks);
        let sender = match topics.get(topic) {
            Some(sender) => sender.clone(),
            None => {
                let (sender, _) = broadcast::channel(CAPACITY);
                let stop = self.stop.clone();
                let beats = sender.clone();
                let name = format!("{topic}/heartbeat");
                tasks.push(spawn_named(&name, heartbeat(beats, stop))); // spawn-site: heartbeat
                topics.insert(Arc::from(topic), sender.clone());
                sender
            }
        };
        let events = sender.subscribe();
        let (stop, delivered) = (self.stop.clone(), self.delivered.clone());
        let name = format!("{topic}/subscriber");
        let worker = deliver(events, handler, delivered, stop);
        tasks.push(spawn_named(&name, worker)); // spawn-site: subscriber
    }

    /// Publishes `payload` on `topic`; returns how many subscriptions will
    /// get it (0 for a topic nobody subscribed to).
    pub fn publish(&self, topic: &str, payload: &str) -> usize {
        let topics = lock(&self.topics);
        let Some((name, sender)) = topics.get_key_value(topic) else {
            return 0;
        };
        let event = Event {
            topic: name.clone(),
            payload: Arc::from(payload),
        };
        sender.send(Message::Event(event)).unwrap_or(0)
    }

    /// How many events handlers have been called with, over all
    /// subscriptions.
    pub fn delivered(&self) -> u64 {
        *self.delivered.borrow()
    }

    /// Waits until handlers have been called with at least `count` events
    /// (woken by each delivery).
    pub async fn wait_delivered(&self, count: u64) {
        let mut delivered = self.delivered.subscribe();
        // The sender lives in `self`: `wait_for` cannot fail.
        let _ = delivered.wait_for(|&n| n >= count).await;
    }

    /// How many of the bus's tasks (subscribers and heartbeats) are running:
    /// the counterpart of Go's `runtime.NumGoroutine()` for this bus.
    pub fn running_tasks(&self) -> usize {
        lock(&self.tasks)
            .iter()
            .filter(|t| !t.is_finished())
            .count()
    }

    /// The leaky close: drops the registry of topic senders, expecting the
    /// workers to see their channels close. They never do (each topic's
    /// heartbeat keeps a sender, and nothing stops the heartbeat), and
    /// nothing waits for them: every task of the bus keeps running.
    pub async fn close_leaky(self) {
        lock(&self.topics).clear();
        // The workers' handles are dropped with `self`: detached, running.
    }

    /// The correct close: stops every worker and waits until all are gone.
    /// Returns how many tasks it stopped.
    ///
    /// # Panics
    /// When a subscription's handler panicked: that panic continues here,
    /// after every task has been stopped.
    pub async fn close(self) -> usize {
        self.stop.cancel();
        lock(&self.topics).clear();
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        let stopped = tasks.len();
        let mut panic = None;
        for task in tasks {
            if let Err(error) = task.await {
                if error.is_panic() && panic.is_none() {
                    panic = Some(error.into_panic());
                }
            }
        }
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
        stopped
    }
}

/// A subscription's worker: hands each event to the handler until the bus
/// stops it or the topic's channel closes.
async fn deliver(
    mut events: broadcast::Receiver<Message>,
    handler: Handler,
    delivered: Arc<watch::Sender<u64>>,
    stop: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            received = events.recv() => received,
        };
        match received {
            Ok(Message::Event(event)) => {
                handler(&event);
                delivered.send_modify(|n| *n += 1);
            }
            // Heartbeats are for liveness only; a lagging subscriber skips
            // what it missed.
            Ok(Message::Heartbeat) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// A topic's heartbeat: publishes on the topic every [`HEARTBEAT`] until
/// the bus stops it. Holding `beats`, it keeps the topic's channel open.
async fn heartbeat(beats: broadcast::Sender<Message>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = ticker.tick() => {
                // No subscriber left is not an error for a heartbeat.
                let _ = beats.send(Message::Heartbeat);
            }
        }
    }
}

/// How [`run_checked`] closes the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Close {
    /// [`Bus::close_leaky`].
    Leaky,
    /// [`Bus::close`].
    Correct,
}

impl Close {
    /// The method's name, for output.
    pub fn name(self) -> &'static str {
        match self {
            Close::Leaky => "close_leaky()",
            Close::Correct => "close()",
        }
    }
}

/// What [`run_checked`] saw.
#[derive(Debug)]
pub struct Checked<T> {
    /// What the body returned.
    pub value: T,
    /// The bus's running tasks right before the close: where the Go
    /// benchmark first measured. It is the same for a leaky and a correct
    /// close, which is why it proves nothing.
    pub running_before_close: usize,
    /// leakfree's verdict, reached after the close.
    pub report: LeakReport,
}

/// Creates a bus in a leakfree scope named [`SCOPE`], runs `body` with it,
/// closes it as `close` says, and only then ends the scope: the verdict
/// covers exactly what the close left running. Leftovers are reported and
/// then cancelled.
///
/// The body borrows the bus, so it cannot outlive the close. Must be called
/// inside a tokio runtime with the time driver enabled.
pub async fn run_checked<T>(close: Close, body: impl AsyncFnOnce(&Bus) -> T) -> Checked<T> {
    let scope = Scope::builder(SCOPE).grace(GRACE).build();
    let ((value, running_before_close), report) = scope
        .run_and_report(async move {
            let bus = Bus::new();
            let value = body(&bus).await;
            let running = bus.running_tasks();
            match close {
                Close::Leaky => bus.close_leaky().await,
                Close::Correct => {
                    bus.close().await;
                }
            }
            (value, running)
        })
        .await;
    Checked {
        value,
        running_before_close,
        report,
    }
}

/// The name of topic `index` (0-based) in [`scenario`].
pub fn topic_name(index: usize) -> String {
    match TOPIC_NAMES.get(index) {
        Some(name) => (*name).to_owned(),
        None => format!("topic-{}", index + 1),
    }
}

/// The benchmark's use of the bus, checked: `topics` topics with
/// `subscribers` subscriptions each, one event published per topic, and the
/// body returns once every subscription has handled it. The value is the
/// number of events the handlers saw.
pub async fn scenario(close: Close, topics: usize, subscribers: usize) -> Checked<u64> {
    run_checked(close, async |bus: &Bus| {
        let seen = Arc::new(AtomicU64::new(0));
        for topic in (0..topics).map(topic_name) {
            for _ in 0..subscribers {
                let seen = seen.clone();
                bus.subscribe(&topic, move |_event| {
                    seen.fetch_add(1, Ordering::Relaxed);
                });
            }
        }
        let mut expected = 0;
        for topic in (0..topics).map(topic_name) {
            expected += bus.publish(&topic, &format!("hello, {topic}")) as u64;
        }
        bus.wait_delivered(expected).await;
        seen.load(Ordering::Relaxed)
    })
    .await
}

/// Leaked tasks counted by topic, from their names (`<topic>/subscriber`,
/// `<topic>/heartbeat`): the per-topic split that the report's grouping by
/// spawn site folds together. Unnamed tasks count under `""`.
pub fn leaks_by_topic(report: &LeakReport) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for task in report.leaked() {
        let name = task.name().unwrap_or_default();
        let topic = name.split_once('/').map_or(name, |(topic, _)| topic);
        *counts.entry(topic.to_owned()).or_default() += 1;
    }
    counts
}
