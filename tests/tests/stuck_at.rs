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
