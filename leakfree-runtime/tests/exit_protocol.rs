//! The exit protocol on real runtimes: what is leaked, cancelled, ignored,
//! zombie, panicked; both directions (a leak is caught, a clean scope passes).

// Bodies hand tasks' JoinHandles out of the scope on purpose, to await them after.
#![allow(clippy::async_yields_async)]

use std::future::pending;
use std::time::Duration;

use leakfree_runtime::report::{TaskKind, TaskState};
use leakfree_runtime::{LeakReport, Scope, spawn, spawn_background, spawn_blocking, spawn_named};
use tokio::sync::{mpsc, oneshot};

fn scope(name: &'static str) -> leakfree_runtime::ScopeBuilder {
    Scope::builder(name).grace(Duration::ZERO)
}

#[tokio::test]
async fn a_clean_scope_reports_clean() {
    let (value, report) = scope("clean")
        .build()
        .run_and_report(async {
            let a = spawn(async { 1 });
            let b = spawn(async { spawn(async { 2 }).await.unwrap() });
            a.await.unwrap() + b.await.unwrap()
        })
        .await;
    assert_eq!(value, 3);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.spawned(), 3);
    assert_eq!(report.aborted(), 0);
}

#[tokio::test]
async fn a_finished_but_unawaited_task_is_not_a_leak() {
    let (_, report) = Scope::new("fire and forget")
        .run_and_report(async {
            let (done_tx, done_rx) = oneshot::channel();
            drop(spawn(async move { done_tx.send(()).unwrap() }));
            done_rx.await.unwrap();
        })
        .await;
    assert!(report.is_clean(), "{report}");
}

#[tokio::test]
async fn a_task_that_outlives_the_grace_is_leaked_and_aborted() {
    let (handle, report) = scope("leaky")
        .build()
        .run_and_report(async { spawn(pending::<()>()) })
        .await;
    assert!(!report.is_clean());
    assert_eq!(report.leaked().len(), 1);
    assert_eq!(report.leaked()[0].state(), TaskState::BlockedForever);
    assert_eq!(report.leaked()[0].id(), Some(handle.id()));
    assert_eq!(report.aborted(), 1);
    assert!(report.zombies().is_empty());
    let joined = handle.await.unwrap_err();
    assert!(
        joined.is_cancelled(),
        "nothing of the scope is left running"
    );
}

#[tokio::test]
async fn a_task_waiting_on_a_live_channel_is_waiting_not_blocked() {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let (_, report) = scope("recv")
        .build()
        .run_and_report(async move {
            let (ready_tx, ready_rx) = oneshot::channel();
            spawn(async move {
                ready_tx.send(()).unwrap();
                rx.recv().await
            });
            ready_rx.await.unwrap();
            tokio::task::yield_now().await;
        })
        .await;
    assert_eq!(report.leaked().len(), 1);
    assert_eq!(report.leaked()[0].state(), TaskState::Waiting { wakers: 1 });
    drop(tx);
}

#[tokio::test]
async fn tasks_spawned_by_tasks_belong_to_the_same_scope() {
    let (child_line, report) = scope("grandchildren")
        .build()
        .run_and_report(async {
            let (line_tx, line_rx) = oneshot::channel();
            spawn(async move {
                let line = line!() + 1;
                drop(spawn(pending::<()>()));
                line_tx.send(line).unwrap();
            });
            line_rx.await.unwrap()
        })
        .await;
    assert_eq!(report.leaked().len(), 1, "{report}");
    assert_eq!(report.leaked()[0].location().line(), child_line);
    assert!(
        report.leaked()[0]
            .location()
            .file()
            .ends_with("exit_protocol.rs")
    );
}

#[tokio::test]
async fn background_work_is_cancelled_but_not_a_leak() {
    let (handle, report) = scope("background")
        .build()
        .run_and_report(async {
            let (spawned_tx, spawned_rx) = oneshot::channel();
            let handle = spawn_background(async move {
                // Its children are background work too.
                drop(spawn(pending::<()>()));
                spawned_tx.send(()).unwrap();
                pending::<()>().await
            });
            spawned_rx.await.unwrap();
            handle
        })
        .await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.background_cancelled(), 2);
    assert!(handle.await.unwrap_err().is_cancelled());
}

#[tokio::test]
async fn the_scope_token_is_cancelled_at_the_end() {
    let scope = scope("token").build();
    let token = scope.token();
    let (seen, report) = scope
        .run_and_report(async { leakfree_runtime::current_token().is_some() })
        .await;
    assert!(seen);
    assert!(report.is_clean());
    assert!(token.is_cancelled());
}

/// The token is made only when asked for, and a nested scope's token is
/// still a child of its parent's: the parent's end cancels it.
#[tokio::test]
async fn a_lazily_made_child_token_follows_its_parent() {
    let parent = scope("parent").build();
    let child = parent.enter(async { scope("child").build() }).await;
    let child_token = child.token();
    assert!(!child_token.is_cancelled());
    let report = parent.finish().await;
    assert!(report.is_clean(), "{report}");
    assert!(child_token.is_cancelled(), "the parent's end cancels it");
    drop(child);
}

/// A scope that ended without anyone asking for its token makes it, when
/// asked later (here, through a child scope made before the end), cancelled.
#[tokio::test]
async fn a_token_first_made_after_the_close_is_born_cancelled() {
    let parent = scope("parent").build();
    let child = parent.enter(async { scope("child").build() }).await;
    let report = parent.finish().await;
    assert!(report.is_clean(), "{report}");
    assert!(child.token().is_cancelled(), "made after its parent closed");
    drop(child);
}

#[tokio::test]
async fn ignored_tasks_are_let_out_of_the_scope() {
    let (handles, report) = scope("ignore")
        .ignore_name("metrics-*")
        .ignore_location("*/no_such_file.rs")
        .build()
        .run_and_report(async {
            (
                spawn_named("metrics-flush", pending::<()>()),
                spawn_named("pinger", pending::<()>()),
            )
        })
        .await;
    assert_eq!(report.leaked().len(), 1);
    assert_eq!(report.leaked()[0].name(), Some("pinger"));
    assert_eq!(report.ignored(), 1);
    assert!(!handles.0.is_finished(), "ignored tasks are left running");
    handles.0.abort();
    assert!(handles.1.await.unwrap_err().is_cancelled());
}

#[tokio::test]
async fn an_unobserved_panic_fails_the_scope_and_an_observed_one_does_not() {
    let (_, report) = Scope::new("unobserved")
        .run_and_report(async {
            let (done_tx, done_rx) = oneshot::channel::<()>();
            drop(spawn(async move {
                let _done = done_tx;
                panic!("pinger exploded");
            }));
            let _ = done_rx.await;
        })
        .await;
    assert_eq!(report.panics().len(), 1, "{report}");
    assert_eq!(report.panics()[0].message(), "pinger exploded");
    assert!(!report.is_clean());

    let (joined, report) = Scope::new("observed")
        .run_and_report(async { spawn(async { panic!("seen") }).await })
        .await;
    assert!(joined.unwrap_err().is_panic());
    assert!(report.is_clean(), "{report}");
}

/// A blocking closure's panic, returned by its handle, is observed too (the
/// handle finds it by task id, from inside the blocking pool's task).
#[tokio::test]
async fn a_joined_blocking_panic_is_observed() {
    let (joined, report) = Scope::new("blocking panic")
        .run_and_report(async { spawn_blocking(|| panic!("blocking boom")).await })
        .await;
    assert!(joined.unwrap_err().is_panic());
    assert!(report.is_clean(), "{report}");
}

/// A handle given up with `into_tokio` can no longer tell whether the panic
/// reached the owner, so the panic counts as observed: whether the task
/// panicked before the handle was given up or after.
#[tokio::test]
async fn a_panic_behind_a_handle_given_up_counts_as_observed() {
    let (joined, report) = Scope::new("given up before")
        .run_and_report(async {
            let (go_tx, go_rx) = oneshot::channel::<()>();
            let handle = spawn(async move {
                let _ = go_rx.await;
                panic!("after into_tokio");
            })
            .into_tokio();
            go_tx.send(()).unwrap();
            handle.await
        })
        .await;
    assert!(joined.unwrap_err().is_panic());
    assert!(report.is_clean(), "{report}");

    let (joined, report) = Scope::new("given up after")
        .run_and_report(async {
            let (done_tx, done_rx) = oneshot::channel::<()>();
            let handle = spawn(async move {
                let _done = done_tx;
                panic!("before into_tokio");
            });
            let _ = done_rx.await;
            // Panicked (the sender went with the unwinding task) and not
            // joined yet.
            handle.into_tokio()
        })
        .await;
    assert!(report.is_clean(), "{report}");
    assert!(joined.await.unwrap_err().is_panic());
}

#[tokio::test]
async fn the_body_panic_survives_with_the_report_appended() {
    let outcome = tokio::spawn(async {
        scope("panicking body")
            .build()
            .run(async {
                drop(spawn(pending::<()>()));
                panic!("assertion failed in the body");
            })
            .await
    })
    .await;
    let message = panic_text(outcome.unwrap_err());
    assert!(message.starts_with("assertion failed in the body\n\nleakfree: 1 task leaked"));
}

#[tokio::test]
async fn run_panics_with_the_report_on_a_leak() {
    let outcome = tokio::spawn(async {
        scope("run")
            .build()
            .run(async { drop(spawn(pending::<()>())) })
            .await
    })
    .await;
    let message = panic_text(outcome.unwrap_err());
    assert!(
        message.starts_with("leakfree: 1 task leaked from `run`"),
        "{message}"
    );
}

#[tokio::test]
async fn untracked_tasks_are_counted_when_the_scope_owns_the_runtime() {
    let (_, report) = scope("untracked")
        .count_untracked(true)
        .build()
        .run_and_report(async {
            drop(tokio::spawn(pending::<()>()));
            drop(spawn(async {})); // tracked and finished: not counted
        })
        .await;
    assert_eq!(report.untracked(), Some(1), "{report}");
    assert!(report.leaked().is_empty());
    assert!(!report.is_clean());
    assert!(report.to_string().contains("1 untracked task left running"));

    let (_, report) = scope("untracked")
        .build()
        .run_and_report(async { drop(tokio::spawn(pending::<()>())) })
        .await;
    assert_eq!(report.untracked(), None, "not counted unless asked");
    assert!(report.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_tasks_never_count_as_untracked_on_a_multi_thread_runtime() {
    // tokio forgets a finished task slightly after leakfree does; the settle
    // must absorb that lag. Many rounds, so a race would show.
    for round in 0..200 {
        let (_, report) = Scope::builder("lag")
            .count_untracked(true)
            .build()
            .run_and_report(async {
                let handles: Vec<_> = (0..8).map(|i| spawn(async move { i })).collect();
                for handle in handles {
                    handle.await.unwrap();
                }
                tokio::spawn(async {}).await.unwrap();
            })
            .await;
        assert!(report.is_clean(), "round {round}: {report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_task_that_outlives_the_abort_is_a_zombie() {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (started_tx, started_rx) = oneshot::channel();
    let (handle, report) = scope("zombie")
        .abort_timeout(Duration::from_millis(10))
        .build()
        .run_and_report(async move {
            let handle = spawn_blocking(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            });
            started_rx.await.unwrap();
            handle
        })
        .await;
    assert_eq!(report.leaked().len(), 1);
    assert_eq!(report.zombies().len(), 1, "{report}");
    assert_eq!(report.zombies()[0].kind(), TaskKind::Blocking);
    assert_eq!(report.zombies()[0].state(), TaskState::Running);
    assert!(
        report
            .to_string()
            .contains("blocking code cannot be aborted")
    );
    release_tx.send(()).unwrap();
    handle.await.unwrap();
}

#[tokio::test]
async fn nested_scopes_judge_only_their_own_tasks() {
    let (inner_report, outer_report) = scope("outer")
        .build()
        .run_and_report(async {
            let outer_task = spawn(async { 1 });
            let (_, inner) = scope("inner")
                .build()
                .run_and_report(async { drop(spawn(pending::<()>())) })
                .await;
            outer_task.await.unwrap();
            inner
        })
        .await;
    assert_eq!(inner_report.leaked().len(), 1);
    assert!(outer_report.is_clean(), "{outer_report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_scopes_never_see_each_others_tasks() {
    // Scope A ends while scope B's leaked task is alive, and the other way
    // round; each must judge only its own.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let run = |name: &'static str, leak: bool| {
        let barrier = barrier.clone();
        tokio::spawn(async move {
            scope(name)
                .count_untracked(false)
                .build()
                .run_and_report(async move {
                    if leak {
                        drop(spawn(pending::<()>()));
                    } else {
                        spawn(async {}).await.unwrap();
                    }
                    barrier.wait().await;
                })
                .await
                .1
        })
    };
    let clean = run("clean", false);
    let leaky = run("leaky", true);
    let (clean, leaky): (LeakReport, LeakReport) = (clean.await.unwrap(), leaky.await.unwrap());
    assert!(clean.is_clean(), "{clean}");
    assert_eq!(leaky.leaked().len(), 1);
}

#[tokio::test]
async fn a_scope_dropped_mid_flight_still_cancels_its_tasks() {
    let (handle_tx, handle_rx) = oneshot::channel();
    let scope = scope("dropped").build();
    let run = scope.run(async move {
        handle_tx.send(spawn(pending::<()>())).unwrap();
        pending::<()>().await
    });
    tokio::select! {
        _ = run => unreachable!(),
        handle = handle_rx => {
            // `run` is dropped here, mid-flight.
            let handle = handle.unwrap();
            assert!(handle.await.unwrap_err().is_cancelled());
        }
    }
}

fn panic_text(error: tokio::task::JoinError) -> String {
    let payload = error.into_panic();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

/// A detached (release-mode) scope whose tasks are all gone reaches its
/// verdict on the call path: no task is spawned for it. A current-thread
/// runtime runs nothing until the test yields, so a verdict task would still
/// be alive right after `run` returns.
#[tokio::test(flavor = "current_thread")]
async fn a_clean_detached_scope_spawns_no_verdict_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reports.clone();
    let value = scope("clean detached")
        .detach_verdict(true)
        .policy(leakfree_runtime::Policy::handler(move |r: &LeakReport| {
            seen.lock().unwrap().push(r.to_string());
        }))
        .build()
        .run(async { spawn(async { 7 }).await.unwrap() })
        .await;
    assert_eq!(value, 7);
    assert_eq!(metrics.num_alive_tasks(), before, "no verdict task");
    assert!(reports.lock().unwrap().is_empty());
}

/// The other direction: a detached scope with a task still alive hands its
/// verdict to a task (the caller does not wait out the grace), and the leak
/// is reported there.
#[tokio::test(flavor = "current_thread")]
async fn a_leaky_detached_scope_judges_off_the_call_path() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let (report_tx, mut report_rx) = mpsc::unbounded_channel();
    scope("leaky detached")
        .detach_verdict(true)
        .policy(leakfree_runtime::Policy::handler(move |r: &LeakReport| {
            let _ = report_tx.send(r.to_string());
        }))
        .build()
        .run(async { drop(spawn(pending::<()>())) })
        .await;
    assert_eq!(
        metrics.num_alive_tasks(),
        before + 2,
        "the leaked task and the verdict task"
    );
    let report = report_rx.recv().await.expect("the verdict task reports");
    assert!(
        report.starts_with("leakfree: 1 task leaked from `leaky detached`"),
        "{report}"
    );
}

/// A tracked blocking closure still running does not hide an untracked task:
/// blocking-pool tasks are not in the runtime's alive count, so they must not
/// count as known tasks there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_blocking_closure_does_not_hide_an_untracked_task() {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (_, report) = scope("blocking and untracked")
        .count_untracked(true)
        .build()
        .run_and_report(async move {
            let (started_tx, started) = oneshot::channel();
            drop(spawn_blocking(move || {
                started_tx.send(()).unwrap();
                let _ = released.recv();
            }));
            started.await.unwrap();
            drop(tokio::spawn(pending::<()>()));
        })
        .await;
    drop(release);
    assert_eq!(report.untracked(), Some(1), "{report}");
    assert_eq!(
        report.zombies().len(),
        1,
        "the closure outlived the abort: {report}"
    );

    // The other direction: with no untracked task, nothing is counted.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (_, report) = scope("blocking only")
        .count_untracked(true)
        .build()
        .run_and_report(async move {
            let (started_tx, started) = oneshot::channel();
            drop(spawn_blocking(move || {
                started_tx.send(()).unwrap();
                let _ = released.recv();
            }));
            started.await.unwrap();
        })
        .await;
    drop(release);
    assert_eq!(report.untracked(), Some(0), "{report}");
}
