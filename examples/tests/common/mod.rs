//! What the layer tests share (`tower_layer.rs`, `tonic_layer.rs`): their
//! bounds, a layer builder whose handler sends every report to a channel,
//! and the request work both serve (clean tasks, a hanging request whose
//! task tells the test when it is dropped). No test sleeps for a fixed time:
//! each waits for a report or a drop, bounded by [`LIMIT`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use leakfree_runtime::tower::{LeakCheckLayer, LeakCheckLayerBuilder};
use leakfree_runtime::{LeakReport, spawn};
use tokio::sync::{Notify, mpsc, oneshot};

/// An upper bound for every wait: never reached when things work.
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

/// Ample for a clean request's unawaited task to see its signal and end on
/// a busy machine (a shorter one can judge it leaked before it was
/// polled); every wait is for an event, so it only sets how long a leak's
/// verdict takes.
pub(crate) const GRACE: Duration = Duration::from_millis(500);

/// What the layer's handler saw of one report.
#[derive(Debug)]
pub(crate) struct Reported {
    pub(crate) scope: String,
    pub(crate) leaked: usize,
    pub(crate) aborted: usize,
    pub(crate) files: Vec<String>,
    pub(crate) text: String,
}

/// A layer builder whose handler sends every report to the receiver.
pub(crate) fn collecting() -> (LeakCheckLayerBuilder, mpsc::UnboundedReceiver<Reported>) {
    let (reports, reported) = mpsc::unbounded_channel();
    let builder = LeakCheckLayer::builder()
        .grace(GRACE)
        .handler(move |report: &LeakReport| {
            let _ = reports.send(Reported {
                scope: report.scope_name().to_owned(),
                leaked: report.leaked().len(),
                aborted: report.aborted(),
                files: report
                    .leaked()
                    .iter()
                    .map(|task| task.location().file().to_owned())
                    .collect(),
                text: report.to_string(),
            });
        });
    (builder, reported)
}

/// The next report, waited for up to [`LIMIT`].
pub(crate) async fn next_report(reported: &mut mpsc::UnboundedReceiver<Reported>) -> Reported {
    tokio::time::timeout(LIMIT, reported.recv())
        .await
        .expect("a report in time")
        .expect("the layer lives")
}

/// Sends `()` when dropped: tells a test that a task was cancelled.
struct OnDrop(Option<oneshot::Sender<()>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(dropped) = self.0.take() {
            let _ = dropped.send(());
        }
    }
}

/// A clean request's tasks: one awaited, and one that ends on a signal sent
/// before this returns (it is not awaited: the scope's settle step waits for
/// it).
pub(crate) async fn clean_tasks() {
    spawn(async {}).await.unwrap();
    let (done, finished) = oneshot::channel::<()>();
    spawn(async move {
        let _ = finished.await;
    });
    let _ = done.send(());
}

/// A request's work that never ends, and a task of it that never ends
/// either: `started` is notified once the task exists, `cancelled` fires
/// when the task is dropped.
pub(crate) async fn hang(started: Arc<Notify>, cancelled: oneshot::Sender<()>) {
    let guard = OnDrop(Some(cancelled));
    spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    });
    started.notify_one();
    std::future::pending::<()>().await;
}

/// One slot for a `oneshot::Sender` a route takes once.
pub(crate) type Slot = Arc<Mutex<Option<oneshot::Sender<()>>>>;

pub(crate) fn slot() -> (Slot, oneshot::Receiver<()>) {
    let (sender, receiver) = oneshot::channel();
    (Arc::new(Mutex::new(Some(sender))), receiver)
}

pub(crate) fn take(slot: &Slot) -> oneshot::Sender<()> {
    slot.lock().unwrap().take().expect("the route runs once")
}
