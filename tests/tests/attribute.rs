//! `#[leak_checked]` test functions, run for real.
//!
//! The leaking ones are fixtures marked `#[ignore]`: checker tests call them
//! (they are plain functions once expanded) and assert the exact failure text,
//! and one checker runs a fixture through this very test binary to show the
//! test harness reporting the failure. Their fixed twins run as normal tests.

use std::future::pending;
use std::panic::{Location, catch_unwind};
use std::sync::{Barrier, Mutex, OnceLock};

use leakfree_runtime::{leak_checked, spawn, spawn_named};
use tokio::sync::mpsc;

/// Where the fixture spawned its leaking task, recorded by [`spawn_here`].
static SITES: Mutex<Vec<(&'static str, &'static Location<'static>)>> = Mutex::new(Vec::new());

/// `spawn_named`, remembering the call site under `name`.
#[track_caller]
fn spawn_here<F>(name: &'static str, future: F) -> leakfree_runtime::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    SITES.lock().unwrap().push((name, Location::caller()));
    spawn_named(name, future)
}

/// The report's blind-spot line for this build.
const NOT_SEEN: &str = if cfg!(tokio_unstable) {
    "plain spawn_local tasks on a LocalSet (use leakfree_runtime::spawn_local)"
} else {
    "plain spawn_blocking work (build with --cfg tokio_unstable to count it) \
     and plain spawn_local tasks on a LocalSet (use leakfree_runtime::spawn_local)"
};

fn site(name: &str) -> String {
    let sites = SITES.lock().unwrap();
    let (_, location) = sites.iter().rev().find(|(n, _)| *n == name).unwrap();
    location.to_string()
}

/// The panic text of a fixture, with task ids and ages (which vary from run to
/// run) replaced by `<id>` and `<age>`.
fn failure_of(fixture: fn()) -> String {
    normalize(&raw_failure_of(fixture))
}

/// The panic text of a fixture, as it is.
fn raw_failure_of(fixture: fn()) -> String {
    let payload = catch_unwind(fixture).expect_err("the fixture must fail");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a text panic")
}

/// Whether this build takes task dumps (so reports carry stuck-at lines,
/// which `stuck_at.rs` checks; the exact texts here leave them out).
const DUMPS: bool = cfg!(all(
    tokio_unstable,
    feature = "taskdump",
    target_os = "linux"
));

fn normalize(text: &str) -> String {
    let mut out = String::new();
    let mut in_stack = false;
    for line in text.lines() {
        in_stack = line.starts_with("     stuck at: ")
            || (in_stack && line.starts_with("               "));
        if in_stack {
            continue;
        }
        let mut words: Vec<String> = Vec::new();
        let mut previous = "";
        for word in line.split(' ') {
            let digits = word.trim_end_matches(',');
            let replaced = if (previous == "task" || previous == "alive")
                && digits.chars().next().is_some_and(|c| c.is_ascii_digit())
            {
                let marker = if previous == "task" { "<id>" } else { "<age>" };
                format!("{marker}{}", &word[digits.len()..])
            } else {
                word.to_owned()
            };
            previous = word;
            words.push(replaced);
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out.trim_end().to_owned()
}

// ---- leak-recv: a worker keeps its own sender, so recv never ends --------

#[leak_checked]
#[tokio::test]
#[ignore = "fixture: it leaks on purpose; run by leak_recv_fails_with_the_spawn_site"]
async fn leak_recv() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    spawn_here("worker", async move {
        let _keep_alive = tx; // the bug: the worker owns a sender
        while rx.recv().await.is_some() {}
    });
}

#[leak_checked]
#[tokio::test]
async fn fix_recv() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let worker = spawn(async move { while rx.recv().await.is_some() {} });
    tx.send(1).await.unwrap();
    drop(tx); // the fix: the only sender is the caller's, and it goes away
    worker.await.unwrap();
}

#[test]
fn leak_recv_fails_with_the_spawn_site() {
    let text = raw_failure_of(leak_recv);
    let expected = format!(
        "leakfree: 1 task leaked from `leak_recv` (grace 100ms)\n  \
         1) task <id> \"worker\" spawned at {}, alive <age>\n     \
         waiting: 1 waker held (timer, I/O or channel)\n  \
         not seen: {NOT_SEEN}\n  \
         enforced: 1 aborted, 0 zombies",
        site("worker")
    );
    assert_eq!(normalize(&text), expected);
    assert!(site("worker").starts_with("tests/tests/attribute.rs:"));
    assert_eq!(text.contains("\n     stuck at: "), DUMPS, "{text}");
}

// ---- leak-send: nobody receives, so a bounded send blocks ----------------

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: it leaks on purpose; run by leak_send_fails_with_the_spawn_site"]
async fn leak_send() {
    let (tx, rx) = mpsc::channel::<u32>(1);
    for _ in 0..3 {
        let tx = tx.clone();
        spawn_here("sender", async move {
            let _ = tx.send(1).await;
            let _ = tx.send(2).await;
        });
    }
    let _never_read = rx;
    tokio::task::yield_now().await;
    std::mem::forget(_never_read); // the bug: the receiver is never read nor dropped
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
async fn fix_send() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    for _ in 0..3 {
        let tx = tx.clone();
        spawn(async move {
            let _ = tx.send(1).await;
            let _ = tx.send(2).await;
        });
    }
    drop(tx);
    let mut received = 0;
    while rx.recv().await.is_some() {
        received += 1; // the fix: the receiver drains until every sender is done
    }
    assert_eq!(received, 6);
}

#[test]
fn leak_send_fails_with_the_spawn_site() {
    let text = failure_of(leak_send);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "leakfree: 3 tasks leaked from `leak_send` (grace 20ms)"
    );
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.contains(&format!("spawned at {}", site("sender")))),
        "{text}"
    );
    assert_eq!(*lines.last().unwrap(), "  enforced: 3 aborted, 0 zombies");
}

// ---- leak-ticker: an interval loop without a shutdown path ---------------

#[leak_checked(grace = "20ms")]
#[tokio::test(start_paused = true)]
#[ignore = "fixture: it leaks on purpose; run by leak_ticker_fails_with_the_spawn_site"]
async fn leak_ticker() {
    spawn_here("ticker", async {
        // 7ms does not divide the 20ms grace: at the verdict (paused clock)
        // the ticker is waiting on its timer, not just woken by it.
        let mut interval = tokio::time::interval(std::time::Duration::from_millis(7));
        loop {
            interval.tick().await; // the bug: no way out of the loop
        }
    });
}

#[leak_checked(grace = "20ms")]
#[tokio::test(start_paused = true)]
async fn fix_ticker() {
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let ticker = spawn(async move {
        let mut interval = tokio::time::interval(std::time::Duration::from_millis(5));
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = &mut stop_rx => break, // the fix: a shutdown path
            }
        }
    });
    stop_tx.send(()).unwrap();
    ticker.await.unwrap();
}

#[test]
fn leak_ticker_fails_with_the_spawn_site() {
    let text = failure_of(leak_ticker);
    let expected = format!(
        "leakfree: 1 task leaked from `leak_ticker` (grace 20ms)\n  \
         1) task <id> \"ticker\" spawned at {}, alive <age>\n     \
         waiting: 1 waker held (timer, I/O or channel)\n  \
         not seen: {NOT_SEEN}\n  \
         enforced: 1 aborted, 0 zombies",
        site("ticker")
    );
    assert_eq!(text, expected);
}

// ---- blocked forever, untracked, panics ------------------------------------

#[leak_checked(grace = "0ms")]
#[tokio::test]
#[ignore = "fixture: it leaks on purpose"]
async fn leak_blocked_forever() {
    spawn_here("stuck", pending::<()>());
}

#[test]
fn a_task_nothing_can_wake_is_blocked_forever() {
    let text = failure_of(leak_blocked_forever);
    assert!(
        text.contains("\n     blocked forever: no waker held, nothing can wake it\n"),
        "{text}"
    );
}

/// The line of the plain spawn in [`leak_untracked`].
#[cfg(tokio_unstable)]
const LEAK_UNTRACKED_SPAWN_LINE: u32 = line!() + 6;

#[leak_checked(grace = "0ms")]
#[tokio::test]
#[ignore = "fixture: it leaks on purpose"]
async fn leak_untracked() {
    tokio::spawn(pending::<()>());
}

#[cfg(not(tokio_unstable))]
#[test]
fn plain_tokio_spawns_are_counted_with_a_hint() {
    let text = failure_of(leak_untracked);
    assert!(
        text.starts_with("leakfree: 1 untracked task left running from `leak_untracked`"),
        "{text}"
    );
    assert!(text.contains("hint: they were started with plain tokio::spawn"));
}

/// With tokio's hooks (`--cfg tokio_unstable`) the same plain spawn is
/// attributed to the test: a leak at its spawn line, like a tracked one.
#[cfg(tokio_unstable)]
#[test]
fn plain_tokio_spawns_are_located_under_tokio_test() {
    let text = failure_of(leak_untracked);
    assert!(
        text.starts_with("leakfree: 1 task leaked from `leak_untracked`"),
        "{text}"
    );
    let line = LEAK_UNTRACKED_SPAWN_LINE;
    assert!(
        text.contains(&format!("spawned at tests/tests/attribute.rs:{line}:5")),
        "{text}"
    );
}

#[leak_checked(allow_untracked)]
#[tokio::test]
async fn allow_untracked_lets_plain_spawns_pass() {
    tokio::spawn(pending::<()>());
}

#[leak_checked]
#[tokio::test]
#[ignore = "fixture: a tracked task panics and nobody awaits it"]
async fn unobserved_panic() {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    spawn_here("exploder", async move {
        let _done = done_tx;
        panic!("the pinger exploded");
    });
    let _ = done_rx.await;
}

#[test]
fn an_unobserved_task_panic_fails_the_test() {
    let text = failure_of(unobserved_panic);
    assert!(
        text.starts_with("leakfree: 1 task panic never observed from `unobserved_panic`"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "\"exploder\" spawned at {} panicked and no JoinHandle observed it: the pinger exploded",
        site("exploder")
    )));
}

#[leak_checked]
#[tokio::test]
#[ignore = "fixture: the body fails and leaks"]
async fn body_panic_and_leak() {
    spawn_here("orphan", pending::<()>());
    assert_eq!(1 + 1, 3, "the test's own assertion");
}

#[test]
fn the_body_panic_comes_first_and_the_report_is_appended() {
    let text = failure_of(body_panic_and_leak);
    assert!(text.starts_with("assertion `left == right` failed: the test's own assertion"));
    assert!(text.contains("\n\nleakfree: 1 task leaked from `body_panic_and_leak`"));
}

// ---- the self-contained form builds its own runtime ---------------------

#[leak_checked]
#[test]
async fn self_contained_current_thread() {
    spawn(async {}).await.unwrap();
}

#[leak_checked(flavor = "multi_thread", worker_threads = 2, grace = "50ms")]
#[test]
async fn self_contained_multi_thread() {
    let handles: Vec<_> = (0..16).map(|i| spawn(async move { i * 2 })).collect();
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.unwrap();
    }
    assert_eq!(sum, 240);
}

#[leak_checked(grace = "0ms")]
#[test]
#[ignore = "fixture: leaks a blocking task that never returns until released"]
async fn self_contained_zombie() {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    leakfree_runtime::spawn_blocking(move || {
        started_tx.send(()).unwrap();
        ZOMBIE_RELEASE.wait();
    });
    started_rx.await.unwrap();
}

static ZOMBIE_RELEASE: Barrier = Barrier::new(2);

#[test]
fn a_zombie_is_reported_and_does_not_hang_the_test() {
    let text = failure_of(self_contained_zombie);
    ZOMBIE_RELEASE.wait();
    assert!(text.contains("1 zombie"), "{text}");
    assert!(text.contains("blocking code cannot be aborted"), "{text}");
}

// ---- results, fallible bodies ---------------------------------------------

#[leak_checked]
#[tokio::test]
async fn a_test_returning_result_can_use_question_mark() -> Result<(), std::num::ParseIntError> {
    let n: u32 = spawn(async { "42" }).await.unwrap().parse()?;
    assert_eq!(n, 42);
    Ok(())
}

// ---- parallel tests in one process ------------------------------------------

static OVERLAP: OnceLock<Barrier> = OnceLock::new();

fn overlap() -> &'static Barrier {
    OVERLAP.get_or_init(|| Barrier::new(4))
}

#[leak_checked(grace = "0ms")]
#[tokio::test]
#[ignore = "fixture: run in parallel by parallel_tests_never_see_each_others_tasks"]
async fn parallel_leaky() {
    spawn_here("parallel", pending::<()>());
    tokio::task::yield_now().await;
    overlap().wait(); // all four fixtures are mid-test at once
}

#[leak_checked(grace = "0ms")]
#[tokio::test]
#[ignore = "fixture: run in parallel by parallel_tests_never_see_each_others_tasks"]
async fn parallel_clean() {
    spawn(async {}).await.unwrap();
    overlap().wait();
}

#[test]
fn parallel_tests_never_see_each_others_tasks() {
    // Two leaky and two clean tests run at once on four threads, each on its
    // own runtime as the test harness would run them; only the leaky fail,
    // each with its own single task.
    let fixtures: [fn(); 4] = [
        parallel_leaky,
        parallel_clean,
        parallel_leaky,
        parallel_clean,
    ];
    let threads: Vec<_> = fixtures
        .into_iter()
        .map(|fixture| std::thread::spawn(move || catch_unwind(fixture)))
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (i, result) in results.iter().enumerate() {
        match (i % 2 == 0, result) {
            (true, Err(payload)) => {
                let text = payload.downcast_ref::<String>().unwrap();
                assert!(
                    text.starts_with("leakfree: 1 task leaked from `parallel_leaky`"),
                    "{text}"
                );
            }
            (false, Ok(())) => {}
            (leaky, outcome) => panic!("fixture {i} (leaky: {leaky}) ended {:?}", outcome.is_ok()),
        }
    }
}

// ---- the test harness itself reports the failure -------------------------

#[test]
fn the_harness_fails_a_leaking_test_with_the_report() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "leak_recv", "--test-threads=1"])
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(101), "{all}");
    assert!(
        all.contains("leakfree: 1 task leaked from `leak_recv` (grace 100ms)"),
        "{all}"
    );
    assert!(
        all.contains("spawned at tests/tests/attribute.rs:"),
        "{all}"
    );
    assert!(
        all.contains("test result: FAILED. 0 passed; 1 failed"),
        "{all}"
    );
}

// ---- one line for a whole module ----------------------------------------------

#[leak_checked(grace = "0ms")]
mod module_form {
    use leakfree_runtime::spawn;

    #[tokio::test]
    async fn checked_by_the_module() {
        spawn(async {}).await.unwrap();
    }

    #[test]
    async fn self_contained_in_the_module() {
        spawn(async {}).await.unwrap();
    }

    #[leak_checked(skip)]
    #[tokio::test]
    async fn opted_out() {
        // Would fail if checked: the module's check is skipped here.
        leakfree_runtime::spawn(std::future::pending::<()>());
    }

    #[leak_checked(grace = "30ms")]
    #[tokio::test]
    #[ignore = "fixture: run by module_options_can_be_overridden"]
    pub(super) async fn overridden() {
        leakfree_runtime::spawn(std::future::pending::<()>());
    }
}

#[test]
fn module_options_can_be_overridden() {
    let text = failure_of(module_form::overridden);
    assert!(
        text.starts_with("leakfree: 1 task leaked from `overridden` (grace 30ms)"),
        "{text}"
    );
}
