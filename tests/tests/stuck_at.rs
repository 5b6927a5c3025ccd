//! With tokio task dumps (`--cfg tokio_unstable` and the `taskdump` feature
//! of this crate, on Linux), a leak report shows where each leaked task is
//! stuck: the test's own frames and the tokio call they wait in.
#![cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]

use std::panic::catch_unwind;

use leakfree_runtime::{leak_checked, spawn};
use tokio::sync::mpsc;

async fn ping_loop(mut rx: mpsc::Receiver<u32>, _keep: mpsc::Sender<u32>) {
    while rx.recv().await.is_some() {} // stuck-here
}

async fn waits_outside_tokio() {
    std::future::pending::<()>().await
}

#[leak_checked(grace = "0ms")]
#[tokio::test]
#[ignore = "fixture: run by the_report_shows_where_the_task_is_stuck"]
async fn pinger_leaks() {
    let (tx, rx) = mpsc::channel(1);
    spawn(ping_loop(rx, tx));
    spawn(waits_outside_tokio());
    tokio::task::yield_now().await;
}

#[test]
fn the_report_shows_where_the_task_is_stuck() {
    let payload = catch_unwind(pinger_leaks).expect_err("the fixture leaks");
    let text = payload.downcast_ref::<String>().unwrap();
    let line = include_str!("stuck_at.rs")
        .lines()
        .position(|l| l.ends_with("// stuck-here"))
        .unwrap()
        + 1;
    let expected = format!("     stuck at: stuck_at::ping_loop at tests/tests/stuck_at.rs:{line}:");
    assert!(text.contains(&expected), "{text}");
    assert!(
        text.contains("\n               tokio::sync::mpsc::bounded::Receiver<T>::recv\n"),
        "{text}"
    );
    assert!(
        text.contains("stuck at: no tokio await point"),
        "a task awaiting a non-tokio future says so: {text}"
    );
}

// ---- a worker stuck inside a poll ---------------------------------------------
//
// tokio's dump waits for every worker of a multi-thread runtime; one spinning
// inside a poll never joins, and the waiting workers would stall the runtime
// (the check's own timers included). The check must finish anyway, without a
// dump, and say why the stacks are missing.

static SPIN_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Ends every fixture's busy loop when the calling test is done.
struct StopSpinning;

impl Drop for StopSpinning {
    fn drop(&mut self) {
        SPIN_STOP.store(true, std::sync::atomic::Ordering::Release);
    }
}

async fn spin(started: tokio::sync::oneshot::Sender<()>) {
    started.send(()).unwrap();
    while !SPIN_STOP.load(std::sync::atomic::Ordering::Acquire) {
        std::hint::spin_loop();
    }
}

#[leak_checked(flavor = "multi_thread", grace = "20ms")]
#[test]
#[ignore = "fixture: run by a_tracked_task_stuck_in_a_poll_is_reported_without_a_dump"]
async fn tracked_spinner_leaks() {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    spawn(spin(started_tx));
    started_rx.await.unwrap();
}

#[test]
fn a_tracked_task_stuck_in_a_poll_is_reported_without_a_dump() {
    let _stop = StopSpinning;
    let payload = catch_unwind(tracked_spinner_leaks).expect_err("the fixture leaks");
    let text = payload.downcast_ref::<String>().unwrap();
    assert!(
        text.contains(
            "stuck at: not known: no task dump was taken, a leaked task is inside a poll"
        ),
        "{text}"
    );
}

#[leak_checked(flavor = "multi_thread", grace = "20ms")]
#[test]
#[ignore = "fixture: run by a_worker_stuck_in_an_untracked_poll_is_reported_without_a_dump"]
async fn plain_spinner_leaks() {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    // Plain tokio: seen by the spawn hook, but with no state of its own.
    tokio::spawn(spin(started_tx));
    started_rx.await.unwrap();
    let (_keep, rx) = mpsc::channel::<u32>(1);
    spawn(ping_loop(rx, _keep.clone()));
}

#[test]
fn a_worker_stuck_in_an_untracked_poll_is_reported_without_a_dump() {
    let _stop = StopSpinning;
    let payload = catch_unwind(plain_spinner_leaks).expect_err("the fixture leaks");
    let text = payload.downcast_ref::<String>().unwrap();
    assert!(
        text.contains(
            "stuck at: not known: no task dump was taken, a worker thread has been inside one poll"
        ),
        "{text}"
    );
}
