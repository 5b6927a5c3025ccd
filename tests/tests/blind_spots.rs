//! What leakfree cannot see is said in the report, never silent: plain
//! `spawn_blocking` work (counted as busy pool threads under
//! `--cfg tokio_unstable`, named as unseen otherwise) and `LocalSet` tasks
//! (visible when spawned with `leakfree_runtime::spawn_local`).

use std::panic::catch_unwind;
use std::sync::Barrier;

use leakfree_runtime::{Scope, leak_checked, spawn_local};

fn failure_of(fixture: fn()) -> String {
    let payload = catch_unwind(fixture).expect_err("the fixture must fail");
    payload
        .downcast_ref::<String>()
        .cloned()
        .expect("a text panic")
}

static RELEASE: Barrier = Barrier::new(2);

#[leak_checked(grace = "0ms")]
#[test]
#[ignore = "fixture: run by plain_spawn_blocking_is_named"]
async fn plain_spawn_blocking() {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        started_tx.send(()).unwrap();
        RELEASE.wait();
    });
    started_rx.await.unwrap();
    // A tracked task leaks too, so the report fails on every build.
    leakfree_runtime::spawn(std::future::pending::<()>());
}

#[test]
fn plain_spawn_blocking_is_named() {
    let text = failure_of(plain_spawn_blocking);
    RELEASE.wait();
    if cfg!(tokio_unstable) {
        assert!(
            text.contains(
                "untracked: 1 blocking-pool thread busy with blocking work leakfree did not spawn"
            ),
            "{text}"
        );
        assert!(text.contains("1 untracked task left running"), "{text}");
    } else {
        assert!(
            text.contains(
                "not seen: plain spawn_blocking work (build with --cfg tokio_unstable to count it)"
            ),
            "{text}"
        );
    }
}

#[tokio::test]
async fn local_set_tasks_are_tracked_through_spawn_local() {
    let local = tokio::task::LocalSet::new();
    let report = local
        .run_until(async {
            Scope::builder("local")
                .grace(std::time::Duration::ZERO)
                .build()
                .run_and_report(async {
                    let not_send = std::rc::Rc::new(());
                    spawn_local(async move {
                        let _held = not_send;
                        std::future::pending::<()>().await
                    });
                    spawn_local(async {}).await.unwrap();
                })
                .await
                .1
        })
        .await;
    assert_eq!(report.leaked().len(), 1, "{report}");
    assert_eq!(report.aborted(), 1);
    assert_eq!(report.spawned(), 2);
}
