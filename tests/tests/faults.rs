//! Faults and edge cases the checker must survive: a cascade of spawns from
//! destructors during cancellation, a panic while being cancelled, the runtime
//! shutting down mid-scope, a tracked task on another runtime, and
//! `block_in_place`.

// Bodies hand tasks' JoinHandles out of the scope on purpose, to check them after.
#![allow(clippy::async_yields_async)]

use std::future::pending;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use leakfree_runtime::{JoinHandle, Scope, spawn};

fn scope(name: &'static str) -> leakfree_runtime::ScopeBuilder {
    Scope::builder(name).grace(Duration::ZERO)
}

/// Spawns a pending task from its destructor and hands out its handle.
struct SpawnsOnDrop(std_mpsc::Sender<JoinHandle<()>>);

impl Drop for SpawnsOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(spawn(pending::<()>()));
    }
}

#[tokio::test]
async fn tasks_spawned_from_destructors_during_cancellation_are_cancelled_too() {
    let (cascade_tx, cascade_rx) = std_mpsc::channel();
    let (_, report) = scope("cascade")
        .build()
        .run_and_report(async move {
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            spawn(async move {
                let _on_drop = SpawnsOnDrop(cascade_tx);
                ready_tx.send(()).unwrap();
                pending::<()>().await
            });
            ready_rx.await.unwrap();
        })
        .await;
    assert_eq!(report.leaked().len(), 1, "{report}");
    assert!(report.zombies().is_empty(), "{report}");
    let cascade = cascade_rx
        .try_recv()
        .expect("the destructor ran during the scope's end");
    assert!(
        cascade.await.unwrap_err().is_cancelled(),
        "the cascade landed in the closing scope and was aborted"
    );
}

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("destructor panicked during cancellation");
        }
    }
}

#[tokio::test]
async fn a_panic_while_being_cancelled_does_not_break_the_check() {
    let (handle, report) = scope("panicky drop")
        .build()
        .run_and_report(async {
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let handle = spawn(async move {
                let _bomb = PanicsOnDrop;
                ready_tx.send(()).unwrap();
                pending::<()>().await
            });
            ready_rx.await.unwrap();
            handle
        })
        .await;
    assert_eq!(report.leaked().len(), 1, "{report}");
    assert!(report.zombies().is_empty(), "{report}");
    assert!(handle.await.unwrap_err().is_panic());
}

#[test]
fn the_runtime_shutting_down_mid_scope_ends_everything_quietly() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (started_tx, started_rx) = std_mpsc::channel();
    runtime.spawn(async move {
        scope("interrupted")
            .build()
            .run(async move {
                spawn(pending::<()>());
                started_tx.send(()).unwrap();
                pending::<()>().await
            })
            .await
    });
    started_rx.recv().unwrap();
    // Dropping the runtime drops the scope mid-flight on its way down.
    runtime.shutdown_timeout(Duration::from_secs(5));
    assert_eq!(
        leakfree_runtime::live::snapshot()
            .scopes()
            .iter()
            .filter(|s| s.name() == "interrupted")
            .count(),
        0
    );
}

#[test]
fn a_tracked_task_on_another_runtime_is_still_judged_and_aborted() {
    let other = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let here = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let other_handle = other.handle().clone();
    let (handle, report) = here.block_on(async move {
        scope("two runtimes")
            .build()
            .run_and_report(async move {
                let _on_other = other_handle.enter();
                spawn(pending::<()>())
            })
            .await
    });
    assert_eq!(report.leaked().len(), 1, "{report}");
    assert!(
        report.zombies().is_empty(),
        "the other runtime dropped it: {report}"
    );
    assert!(other.block_on(handle).unwrap_err().is_cancelled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawns_inside_block_in_place_stay_in_the_scope() {
    let (_, report) = scope("block_in_place")
        .build()
        .run_and_report(async {
            tokio::task::block_in_place(|| {
                spawn(pending::<()>());
            });
        })
        .await;
    assert_eq!(report.leaked().len(), 1, "{report}");
}
