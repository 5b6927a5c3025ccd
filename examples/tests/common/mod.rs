//! What the layer tests share (`tower_layer.rs`, `tonic_layer.rs`): their
//! bounds, a layer builder whose handler sends every report to a channel, and
//! a guard that tells a test when a task was dropped. No test sleeps for a
//! fixed time: each waits for a report or a drop, bounded by [`LIMIT`].

use std::time::Duration;

use leakfree_runtime::LeakReport;
use leakfree_runtime::tower::{LeakCheckLayer, LeakCheckLayerBuilder};
use tokio::sync::{mpsc, oneshot};

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
pub(crate) struct OnDrop(pub(crate) Option<oneshot::Sender<()>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(dropped) = self.0.take() {
            let _ = dropped.send(());
        }
    }
}
