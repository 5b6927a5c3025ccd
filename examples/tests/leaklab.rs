//! leaklab's modes, judged by leakfree: each leak is reported at its spawn
//! site with the right count and state; each fix is clean and leaves the
//! runtime as it found it. Also the `leaklab` binary, end to end.

use std::process::Command;
use std::time::Duration;

use leakfree_examples::leaklab::{Counts, Mode, ModeOutcome, run_mode};
use leakfree_runtime::report::TaskState;

const SOURCE: &str = include_str!("../src/leaklab.rs");
const TASKS: usize = 5;
const LINGER: Duration = Duration::from_millis(20);

/// The line of `leaklab.rs` carrying the marker comment of `mode`'s spawn.
fn spawn_line(mode: Mode) -> u32 {
    let marker = format!("// spawn-site: {}", mode.name());
    let lines: Vec<usize> = SOURCE
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim_end().ends_with(&marker))
        .map(|(index, _)| index + 1)
        .collect();
    assert_eq!(lines.len(), 1, "exactly one `{marker}` in leaklab.rs");
    u32::try_from(lines[0]).unwrap()
}

/// Checks what every leaking mode must show; returns the leaked tasks' states.
fn assert_leak(outcome: &ModeOutcome) -> Vec<TaskState> {
    let mode = outcome.mode;
    let report = &outcome.report;
    assert!(!report.is_clean(), "{mode} must leak");
    assert_eq!(report.scope_name(), mode.name());
    assert_eq!(report.leaked().len(), TASKS, "{report}");
    let line = spawn_line(mode);
    for task in report.leaked() {
        let location = task.location();
        assert!(
            location.file().ends_with("src/leaklab.rs"),
            "spawned in {location}"
        );
        assert_eq!(location.line(), line, "{report}");
        assert!(task.state() != TaskState::BlockedForever, "{report}");
    }
    assert_eq!(
        report.groups().iter().map(|g| g.count()).sum::<usize>(),
        TASKS
    );
    assert_eq!(report.aborted(), TASKS);
    assert!(report.zombies().is_empty(), "{report}");
    assert!(report.panics().is_empty(), "{report}");
    let text = report.to_string();
    assert!(
        text.starts_with(&format!("leakfree: {TASKS} tasks leaked from `{mode}`")),
        "{text}"
    );
    assert_counts(outcome);
    report.leaked().iter().map(|t| t.state()).collect()
}

fn assert_fix(outcome: &ModeOutcome) {
    let report = &outcome.report;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.spawned(), TASKS);
    assert_eq!(report.aborted(), 0);
    assert_eq!(
        report.to_string(),
        format!(
            "leakfree: `{}` is clean ({TASKS} tasks tracked, grace 50ms)",
            outcome.mode
        )
    );
    assert_counts(outcome);
}

/// Both kinds of mode: all workers alive when the caller's work is done, and
/// nothing left of them once the scope ended (the leaks because leakfree
/// stopped them).
fn assert_counts(outcome: &ModeOutcome) {
    let before = outcome.before;
    assert_eq!(before.tracked, 0);
    assert_eq!(
        outcome.during,
        Counts {
            tracked: TASKS,
            runtime: before.runtime + TASKS,
        }
    );
    assert_eq!(outcome.after, before);
}

const WAITING_ON_ONE_WAKER: TaskState = TaskState::Waiting { wakers: 1 };

#[tokio::test]
async fn leak_recv_is_reported_waiting_at_its_spawn_site() {
    let outcome = run_mode(Mode::LeakRecv, TASKS, LINGER).await;
    // The channel holds the waker of each parked `recv`, and the worker keeps
    // the channel open itself: "waiting", not "blocked forever".
    for state in assert_leak(&outcome) {
        assert_eq!(state, WAITING_ON_ONE_WAKER, "{}", outcome.report);
    }
}

#[tokio::test]
async fn fix_recv_is_clean() {
    assert_fix(&run_mode(Mode::FixRecv, TASKS, LINGER).await);
}

#[tokio::test]
async fn leak_send_is_reported_waiting_at_its_spawn_site() {
    let outcome = run_mode(Mode::LeakSend, TASKS, LINGER).await;
    // Each blocked `send` waits in the channel's semaphore queue with its waker.
    for state in assert_leak(&outcome) {
        assert_eq!(state, WAITING_ON_ONE_WAKER, "{}", outcome.report);
    }
}

#[tokio::test]
async fn fix_send_is_clean() {
    assert_fix(&run_mode(Mode::FixSend, TASKS, LINGER).await);
}

#[tokio::test]
async fn leak_ticker_is_reported_at_its_spawn_site() {
    // On the real clock a tick may fall on the verdict and find a ticker
    // scheduled or running; it is never "blocked forever" (checked inside).
    assert_leak(&run_mode(Mode::LeakTicker, TASKS, LINGER).await);
}

#[tokio::test(start_paused = true)]
async fn leak_ticker_waits_on_its_timer() {
    // With the clock paused every instant is exact: the callers return at
    // 80ms, the verdict comes at 80ms + 50ms of grace, between ticks (every
    // 20ms), so each ticker is parked on its timer, which holds its waker.
    let outcome = run_mode(Mode::LeakTicker, TASKS, Duration::from_millis(80)).await;
    for state in assert_leak(&outcome) {
        assert_eq!(state, WAITING_ON_ONE_WAKER, "{}", outcome.report);
    }
}

#[tokio::test]
async fn fix_ticker_is_clean() {
    assert_fix(&run_mode(Mode::FixTicker, TASKS, LINGER).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_mode_behaves_on_a_multi_thread_runtime() {
    for mode in Mode::ALL {
        let outcome = run_mode(mode, TASKS, LINGER).await;
        if mode.is_fix() {
            assert_fix(&outcome);
        } else {
            assert_leak(&outcome);
        }
    }
}

fn leaklab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_leaklab"))
        .args(args)
        .output()
        .expect("run leaklab")
}

#[test]
fn demo_shows_each_leak_and_each_fix() {
    let output = leaklab(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for mode in Mode::ALL {
        let verdict = if mode.is_fix() {
            format!("leakfree: `{mode}` is clean (3 tasks tracked, grace 50ms)")
        } else {
            format!("leakfree: 3 tasks leaked from `{mode}` (grace 50ms)")
        };
        assert!(stdout.contains(&verdict), "no `{verdict}` in:\n{stdout}");
        assert!(stdout.contains(&format!("== {mode} (-n 3, linger 80ms)")));
    }
    assert_eq!(stdout.matches("leakfree: 3 tasks leaked").count(), 3);
    assert!(stdout.contains("during: 3 tracked, 3 alive on the runtime"));
    assert!(stdout.contains("3 of 3 leaking modes; 3 of 3 fixed modes clean"));
}

#[test]
fn a_single_mode_exits_1_on_a_leak_and_0_when_clean() {
    let leak = leaklab(&["leak-send", "-n", "2", "--linger", "5ms"]);
    let stdout = String::from_utf8_lossy(&leak.stdout);
    assert_eq!(leak.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("leakfree: 2 tasks leaked from `leak-send`"));
    assert!(stdout.contains("src/leaklab.rs:"), "{stdout}");

    let fix = leaklab(&["-mode=fix-send", "-n=2", "-linger=5ms"]);
    let stdout = String::from_utf8_lossy(&fix.stdout);
    assert_eq!(fix.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("leakfree: `fix-send` is clean (2 tasks tracked"));
}

#[test]
fn bad_arguments_exit_2_naming_the_valid_choices() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--bogus"],
            "valid flags are -n N, --linger DURATION, --help",
        ),
        (
            &["leak-foo"],
            "leak-recv, fix-recv, leak-send, fix-send, leak-ticker, fix-ticker, or demo",
        ),
        (&["--linger", "80"], "like 80ms, 1s, 500us"),
        (&["-n", "none"], "expected a number of workers"),
    ];
    for (args, expected) in cases {
        let output = leaklab(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }
    let help = leaklab(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: leaklab [MODE]"));
}

/// The leaks are stopped where they are found: an enclosing leak check (here
/// the test's own) sees nothing of them, and no untracked task either.
#[leakfree_runtime::leak_checked]
#[tokio::test]
async fn nothing_escapes_a_mode_scope() {
    for mode in Mode::ALL {
        let outcome = run_mode(mode, TASKS, LINGER).await;
        assert_eq!(outcome.is_clean(), mode.is_fix(), "{}", outcome.report);
    }
}
