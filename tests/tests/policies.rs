//! Policies, run-time overrides, off-path verdicts, the live view, and many
//! concurrent service scopes on one runtime.

// Bodies hand tasks' JoinHandles out of the scope on purpose, to check them after.
#![allow(clippy::async_yields_async)]

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leakfree_runtime::{LeakReport, Policy, Scope, leak_checked, live, spawn};

// ---- environment overrides, read once per process: checked in a child ----

#[leak_checked(grace = "0ms")]
#[tokio::test]
#[ignore = "fixture: run by the environment override tests in a child process"]
async fn env_fixture_leaks() {
    spawn(pending::<()>());
}

fn run_fixture_with(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "env_fixture_leaks",
            "--test-threads=1",
        ])
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text)
}

#[test]
fn leakfree_policy_off_turns_checking_off_without_a_rebuild() {
    let (code, text) = run_fixture_with(&[("LEAKFREE_POLICY", "off")]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run_fixture_with(&[]);
    assert_eq!(code, Some(101), "{text}");
    assert!(text.contains("leakfree: 1 task leaked from `env_fixture_leaks` (grace 0us)"));
}

#[test]
fn leakfree_grace_overrides_the_annotation() {
    let (code, text) = run_fixture_with(&[("LEAKFREE_GRACE", "7ms")]);
    assert_eq!(code, Some(101), "{text}");
    assert!(
        text.contains("from `env_fixture_leaks` (grace 7ms)"),
        "{text}"
    );
}

#[test]
fn a_bad_environment_value_names_the_fix() {
    let (code, text) = run_fixture_with(&[("LEAKFREE_POLICY", "loud")]);
    assert_eq!(code, Some(101), "{text}");
    assert!(
        text.contains("LEAKFREE_POLICY=\"loud\" is not a policy; use one of `panic`, `log`, `off`, or unset it"),
        "{text}"
    );
    let (_, text) = run_fixture_with(&[("LEAKFREE_GRACE", "fast")]);
    assert!(
        text.contains("LEAKFREE_GRACE=\"fast\" is not a duration"),
        "{text}"
    );
}

// ---- policies ---------------------------------------------------------

#[tokio::test]
async fn a_handler_policy_receives_the_report() {
    let seen: Arc<Mutex<Vec<usize>>> = Arc::default();
    let sink = seen.clone();
    Scope::builder("handled")
        .grace(Duration::ZERO)
        .policy(Policy::handler(move |report: &LeakReport| {
            sink.lock().unwrap().push(report.leaked().len())
        }))
        .build()
        .run(async {
            spawn(pending::<()>());
        })
        .await;
    assert_eq!(*seen.lock().unwrap(), vec![1]);
}

#[tokio::test]
async fn the_off_policy_runs_the_body_without_a_scope() {
    let handle = Scope::builder("off")
        .policy(Policy::Off)
        .build()
        .run(async { spawn(pending::<()>()) })
        .await;
    assert!(!handle.is_finished(), "nothing was cancelled: no scope");
    handle.abort();
}

#[tokio::test]
async fn a_detached_verdict_returns_before_the_leftovers_are_cancelled() {
    let (reported_tx, reported_rx) = tokio::sync::oneshot::channel::<usize>();
    let reported_tx = Mutex::new(Some(reported_tx));
    let leaked = Scope::builder("detached")
        .grace(Duration::from_millis(20))
        .detach_verdict(true)
        .policy(Policy::handler(move |report: &LeakReport| {
            if let Some(tx) = reported_tx.lock().unwrap().take() {
                let _ = tx.send(report.leaked().len());
            }
        }))
        .build()
        .run(async { spawn(pending::<()>()) })
        .await;
    // The call is back while its leaked task is still alive: the grace
    // period and the verdict are off the call path.
    assert!(!leaked.is_finished());
    assert_eq!(reported_rx.await.unwrap(), 1);
    assert!(leaked.await.unwrap_err().is_cancelled());
}

// ---- the live view ------------------------------------------------------

#[tokio::test]
async fn the_live_view_lists_scopes_and_their_tasks() {
    let scope = Scope::builder("live-view-request").build();
    let snapshot = scope
        .enter(async {
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            leakfree_runtime::spawn_named("poller", async move {
                ready_tx.send(()).unwrap();
                pending::<()>().await
            });
            ready_rx.await.unwrap();
            tokio::task::yield_now().await;
            live::snapshot()
        })
        .await;
    let view = snapshot
        .scopes()
        .iter()
        .find(|s| s.name() == "live-view-request")
        .expect("the scope is live");
    assert_eq!(view.tasks().len(), 1);
    assert_eq!(view.tasks()[0].name(), Some("poller"));
    assert!(view.tasks()[0].location().file().ends_with("policies.rs"));
    let text = snapshot.to_string();
    assert!(text.contains("scope `live-view-request`"), "{text}");
    assert!(
        text.contains("1 x \"poller\" spawned at tests/tests/policies.rs:"),
        "{text}"
    );
    let before = live::metrics();
    let report = scope.finish().await;
    assert_eq!(report.leaked().len(), 1);
    let after = live::metrics();
    assert!(after.leaks_found > before.leaks_found);
    assert!(after.scopes_with_leaks > before.scopes_with_leaks);
    assert!(
        !live::snapshot()
            .scopes()
            .iter()
            .any(|s| s.name() == "live-view-request"),
        "an ended scope leaves the live view"
    );
}

// ---- many concurrent service scopes on one runtime ------------------------

#[leak_checked(grace = "10ms", handler = count_leaky_call)]
async fn handler(call: usize, leak: bool) -> usize {
    let worker = spawn(async move { call * 2 });
    if leak {
        spawn(pending::<()>());
    }
    worker.await.unwrap()
}

static LEAKY_CALLS_SEEN: AtomicUsize = AtomicUsize::new(0);

fn count_leaky_call(report: &LeakReport) {
    assert_eq!(report.leaked().len(), 1, "{report}");
    assert_eq!(report.scope_name(), "handler");
    LEAKY_CALLS_SEEN.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn hundreds_of_concurrent_scopes_stay_isolated() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let calls = 600;
    let results = runtime.block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(calls));
        let tasks: Vec<_> = (0..calls)
            .map(|call| {
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await; // all calls in flight at once
                    handler(call, call % 3 == 0).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    assert_eq!(results, (0..calls).map(|c| c * 2).collect::<Vec<_>>());
    // Exactly the leaky calls were judged leaky, each with its own one task.
    assert_eq!(LEAKY_CALLS_SEEN.load(Ordering::SeqCst), calls.div_ceil(3));
}
