//! A library that leaks through plain `tokio::spawn` (`tests/leaky-dep`).
//!
//! On plain stable a test sees such tasks only as a count, with a hint. Built
//! with `--cfg tokio_unstable`, the self-contained form installs tokio's spawn
//! hooks and the report names the library's spawn lines, grandchildren
//! included.

use std::panic::catch_unwind;

use leakfree_runtime::leak_checked;

const LEAKY_DEP_SOURCE: &str = include_str!("../leaky-dep/src/lib.rs");

/// `file:line` of the line marked `// spawn-site: {name}` in leaky-dep.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
fn site(name: &str) -> String {
    let marker = format!("// spawn-site: {name}");
    let line = LEAKY_DEP_SOURCE
        .lines()
        .position(|l| l.contains(&marker))
        .unwrap_or_else(|| panic!("no {marker} in leaky-dep"));
    format!("tests/leaky-dep/src/lib.rs:{}:", line + 1)
}

fn failure_of(fixture: fn()) -> String {
    let payload = catch_unwind(fixture).expect_err("the fixture must fail");
    payload
        .downcast_ref::<String>()
        .cloned()
        .expect("a text panic")
}

#[leak_checked(grace = "20ms")]
#[test]
#[ignore = "fixture: the library leaks its pinger"]
async fn client_pinger_leaks() {
    let _client = leaky_dep::Client::connect();
    // The client goes out of scope here; its pinger does not.
}

#[leak_checked(grace = "0ms")]
#[test]
#[ignore = "fixture: the library leaks a supervisor and its worker"]
async fn supervisor_tree_leaks() {
    leaky_dep::start_supervisor();
    // Let the supervisor start its worker.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

#[leak_checked]
#[test]
async fn a_well_behaved_library_passes() {
    assert_eq!(leaky_dep::well_behaved().await, 7);
}

#[cfg(not(tokio_unstable))]
#[test]
fn on_stable_the_library_leak_is_counted_with_a_hint() {
    let text = failure_of(client_pinger_leaks);
    assert!(
        text.starts_with("leakfree: 1 untracked task left running from `client_pinger_leaks`"),
        "{text}"
    );
    assert!(text.contains("--cfg tokio_unstable"), "{text}");
    let text = failure_of(supervisor_tree_leaks);
    assert!(
        text.starts_with("leakfree: 2 untracked tasks left running"),
        "{text}"
    );
}

#[cfg(tokio_unstable)]
#[test]
fn with_hooks_the_report_names_the_library_spawn_line() {
    let text = failure_of(client_pinger_leaks);
    assert!(
        text.starts_with("leakfree: 1 task leaked from `client_pinger_leaks` (grace 20ms)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("spawned at {}", site("pinger"))),
        "{text}"
    );
    assert!(
        text.contains("state unknown: spawned with plain tokio::spawn"),
        "{text}"
    );
    assert!(
        text.contains("1 hooked task left to the runtime's shutdown"),
        "{text}"
    );
}

#[cfg(tokio_unstable)]
#[test]
fn with_hooks_grandchildren_are_attributed_too() {
    let text = failure_of(supervisor_tree_leaks);
    assert!(
        text.starts_with("leakfree: 2 tasks leaked from `supervisor_tree_leaks`"),
        "{text}"
    );
    assert!(
        text.contains(&format!("spawned at {}", site("supervisor"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("spawned at {}", site("worker"))),
        "{text}"
    );
}

#[cfg(tokio_unstable)]
#[test]
fn hooks_install_on_a_users_own_runtime() {
    let runtime =
        leakfree_runtime::hooks::install(&mut tokio::runtime::Builder::new_multi_thread())
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
    let report = runtime.block_on(async {
        leakfree_runtime::Scope::builder("users_runtime")
            .grace(std::time::Duration::ZERO)
            .count_untracked(true)
            .build()
            .run_and_report(async {
                let _client = leaky_dep::Client::connect();
            })
            .await
            .1
    });
    assert_eq!(report.leaked().len(), 1, "{report}");
    assert!(
        report.leaked()[0]
            .location()
            .file()
            .ends_with("leaky-dep/src/lib.rs")
    );
    assert_eq!(
        report.untracked(),
        Some(0),
        "attributed, so not untracked: {report}"
    );
}

#[cfg(tokio_unstable)]
#[test]
fn hooked_tasks_that_finish_wake_the_settle_and_pass() {
    // Many rounds on a multi-thread runtime: the terminate hook must account
    // for every finished task, or a round would report a false leak.
    let runtime =
        leakfree_runtime::hooks::install(&mut tokio::runtime::Builder::new_multi_thread())
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
    runtime.block_on(async {
        for round in 0..200 {
            let (_, report) = leakfree_runtime::Scope::builder("rounds")
                .count_untracked(true)
                .build()
                .run_and_report(async {
                    drop(tokio::spawn(async { tokio::task::yield_now().await }));
                    leaky_dep::well_behaved().await
                })
                .await;
            assert!(report.is_clean(), "round {round}: {report}");
        }
    });
}

// ---- the form people write: #[leak_checked] #[tokio::test] -----------------

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: the library leaks its pinger, under #[tokio::test]"]
async fn tokio_test_client_pinger_leaks() {
    let _client = leaky_dep::Client::connect();
}

#[leak_checked(grace = "20ms")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fixture: the library leaks a supervisor and its worker, multi-thread"]
async fn tokio_test_supervisor_tree_leaks() {
    leaky_dep::start_supervisor();
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

#[cfg(not(tokio_unstable))]
#[test]
fn on_stable_the_tokio_test_form_counts_and_names_the_one_step() {
    let text = failure_of(tokio_test_client_pinger_leaks);
    assert!(
        text.starts_with(
            "leakfree: 1 untracked task left running from `tokio_test_client_pinger_leaks`"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "run the tests as: RUSTFLAGS=\"--cfg tokio_unstable\" cargo test --features leakfree-runtime/taskdump"
        ),
        "{text}"
    );
}

#[cfg(tokio_unstable)]
#[test]
fn under_tokio_test_the_report_names_the_library_spawn_line() {
    let text = failure_of(tokio_test_client_pinger_leaks);
    assert!(
        text.starts_with(
            "leakfree: 1 task leaked from `tokio_test_client_pinger_leaks` (grace 20ms)"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("spawned at {}", site("pinger"))),
        "{text}"
    );
    let text = failure_of(tokio_test_supervisor_tree_leaks);
    assert!(
        text.starts_with("leakfree: 2 tasks leaked from `tokio_test_supervisor_tree_leaks`"),
        "{text}"
    );
    assert!(
        text.contains(&format!("spawned at {}", site("supervisor"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("spawned at {}", site("worker"))),
        "{text}"
    );
}

/// With task dumps the stack says what a hooked task waits on: the pinger's
/// interval is a timer.
#[cfg(all(tokio_unstable, feature = "taskdump"))]
#[test]
fn with_dumps_a_hooked_task_says_what_it_waits_on() {
    let text = failure_of(tokio_test_client_pinger_leaks);
    assert!(
        text.contains("     waits on a timer: tokio::time::"),
        "{text}"
    );
}

/// Without dumps, the report says how to see it.
#[cfg(all(tokio_unstable, not(feature = "taskdump")))]
#[test]
fn without_dumps_a_hooked_task_names_the_step_to_see_it() {
    let text = failure_of(tokio_test_client_pinger_leaks);
    assert!(
        text.contains(
            "hint: to see where it is stuck and what it waits on, run the tests as: RUSTFLAGS="
        ),
        "{text}"
    );
}

#[leak_checked(grace = "20ms", ignore_crate = "leaky-dep")]
#[tokio::test]
#[ignore = "fixture: the library's pinger, let out by crate"]
async fn tokio_test_ignores_the_library_by_crate() {
    let _client = leaky_dep::Client::connect();
}

#[leak_checked(grace = "20ms", ignore_crate = "some_other_crate")]
#[tokio::test]
#[ignore = "fixture: a crate filter that does not match"]
async fn tokio_test_ignores_another_crate() {
    let _client = leaky_dep::Client::connect();
}

#[cfg(tokio_unstable)]
#[test]
fn a_library_is_ignored_by_its_crate_name() {
    tokio_test_ignores_the_library_by_crate();
    let text = failure_of(tokio_test_ignores_another_crate);
    assert!(
        text.starts_with("leakfree: 1 task leaked from `tokio_test_ignores_another_crate`"),
        "a filter for another crate lets nothing out: {text}"
    );
}
