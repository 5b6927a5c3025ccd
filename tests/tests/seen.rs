//! What a person running `cargo test` sees: each check runs one `#[ignore]`d
//! fixture of this very test binary in a child process, as `cargo test`
//! would (`--ignored --exact`, output captured by the test harness), and
//! reads the child's output: the harness's own "---- name stdout ----"
//! section, where the panic hook's message and everything the test printed
//! to standard error appear.
//!
//! - A body that panics *and* leaks shows both the body's assertion and the
//!   leak report.
//! - A leak's panic names the test's own file and line, not leakfree's.
//! - A hung test ends at its timeout with every task of the scope and its
//!   state; `LEAKFREE_TIMEOUT` overrides the timeout, in both directions.

use std::process::Command;
use std::time::Duration;

use leakfree_runtime::{leak_checked, spawn};
use tokio::sync::mpsc;

/// Runs one fixture of this binary in a child process; returns whether it
/// passed and everything it printed.
fn run_fixture(name: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args(["--ignored", "--exact", name, "--test-threads=1"])
        .env("RUST_BACKTRACE", "0")
        .env_remove("LEAKFREE_TIMEOUT")
        .env_remove("LEAKFREE_POLICY")
        .env_remove("LEAKFREE_GRACE");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run the fixture");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("running 1 test"),
        "the fixture `{name}` ran: {text}"
    );
    (output.status.success(), text)
}

// ---- a body that panics and leaks -----------------------------------------

#[leak_checked(grace = "10ms")]
#[tokio::test]
#[ignore = "fixture: panics and leaks on purpose; run by a_panicking_leaky_test_shows_both"]
async fn fixture_panics_and_leaks() {
    drop(spawn(std::future::pending::<()>()));
    assert_eq!(1 + 1, 3, "the body's own assertion");
}

#[test]
fn a_panicking_leaky_test_shows_both() {
    let (passed, text) = run_fixture("fixture_panics_and_leaks", &[]);
    assert!(!passed, "{text}");
    assert!(text.contains("the body's own assertion"), "{text}");
    assert!(
        text.contains("leakfree: 1 task leaked from `fixture_panics_and_leaks` (grace 10ms)"),
        "the leak report is printed too: {text}"
    );
    assert!(
        text.contains("---- fixture_panics_and_leaks stdout ----"),
        "in the test's captured output: {text}"
    );
}

// ---- the failure points at the test ----------------------------------------

/// The line of the fixture's name below.
const LEAKS_AT_LINE: u32 = line!() + 5;

#[leak_checked(grace = "10ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by a_leak_panic_names_the_test"]
async fn fixture_leaks() {
    drop(spawn(std::future::pending::<()>()));
}

#[test]
fn a_leak_panic_names_the_test() {
    let (passed, text) = run_fixture("fixture_leaks", &[]);
    assert!(!passed, "{text}");
    let at = format!("panicked at tests/tests/seen.rs:{LEAKS_AT_LINE}:");
    assert!(text.contains(&at), "expected `{at}` in: {text}");
    assert!(!text.contains("leakfree-runtime/src"), "{text}");
    assert!(
        text.contains("leakfree: 1 task leaked from `fixture_leaks`"),
        "{text}"
    );
}

// ---- a hung test ends with a report ----------------------------------------

/// The line of the worker's spawn in [`forgotten_drop`].
const FORGOTTEN_DROP_WORKER_LINE: u32 = line!() + 6;

/// The README's quickstart with `drop(tx)` forgotten: the worker waits for
/// more input, the body waits for the worker, forever.
async fn forgotten_drop() {
    let (tx, mut rx) = mpsc::channel::<u32>(8);
    let worker = spawn(async move { while rx.recv().await.is_some() {} });
    tx.send(1).await.unwrap();
    worker.await.unwrap();
    drop(tx);
}

#[leak_checked(timeout = "300ms")]
#[tokio::test]
#[ignore = "fixture: hangs on purpose; run by a_hung_test_fails_at_its_timeout_with_the_tasks"]
async fn fixture_hangs() {
    forgotten_drop().await;
}

#[test]
fn a_hung_test_fails_at_its_timeout_with_the_tasks() {
    let (passed, text) = run_fixture("fixture_hangs", &[]);
    assert!(!passed, "{text}");
    assert!(
        text.contains("leakfree: timed out after 300ms from `fixture_hangs`"),
        "{text}"
    );
    assert!(
        text.contains(
            "  timed out: the body was still running after 300ms, with 1 task in the scope"
        ),
        "{text}"
    );
    assert!(
        text.contains("waiting: 1 waker held (timer, I/O or channel)"),
        "the worker's state: {text}"
    );
    let site = format!("spawned at tests/tests/seen.rs:{FORGOTTEN_DROP_WORKER_LINE}:");
    assert!(
        text.contains(&site),
        "the worker's spawn site `{site}`: {text}"
    );
    assert!(text.contains("body stuck at: "), "{text}");
}

#[leak_checked(timeout = "3600s")]
#[tokio::test]
#[ignore = "fixture: hangs on purpose; run by the_timeout_variable_overrides_the_option"]
async fn fixture_hangs_for_an_hour() {
    forgotten_drop().await;
}

#[test]
fn the_timeout_variable_overrides_the_option() {
    let (passed, text) = run_fixture(
        "fixture_hangs_for_an_hour",
        &[("LEAKFREE_TIMEOUT", "200ms")],
    );
    assert!(!passed, "{text}");
    assert!(text.contains("leakfree: timed out after 200ms"), "{text}");
}

#[leak_checked(timeout = "200ms")]
#[tokio::test]
#[ignore = "fixture: slower than its timeout; run by the_timeout_variable_can_lift_the_timeout"]
async fn fixture_slower_than_its_timeout() {
    // Longer than the option's timeout, on the wall clock.
    tokio::time::sleep(Duration::from_millis(400)).await;
}

#[test]
fn the_timeout_variable_can_lift_the_timeout() {
    let (passed, text) = run_fixture("fixture_slower_than_its_timeout", &[]);
    assert!(!passed, "with its timeout it fails: {text}");
    let (passed, text) = run_fixture(
        "fixture_slower_than_its_timeout",
        &[("LEAKFREE_TIMEOUT", "off")],
    );
    assert!(passed, "`off` lifts it: {text}");
    let (passed, text) = run_fixture(
        "fixture_slower_than_its_timeout",
        &[("LEAKFREE_TIMEOUT", "soon")],
    );
    assert!(!passed, "{text}");
    assert!(
        text.contains("leakfree: LEAKFREE_TIMEOUT=\"soon\" is not a duration"),
        "a bad value names the variable: {text}"
    );
}

/// A paused clock runs virtual time far past the timeout: the timeout is
/// on the wall clock, so the test passes.
#[leak_checked(timeout = "2s")]
#[tokio::test(start_paused = true)]
async fn a_paused_clock_does_not_run_out_the_timeout() {
    tokio::time::sleep(Duration::from_secs(3600)).await;
}
