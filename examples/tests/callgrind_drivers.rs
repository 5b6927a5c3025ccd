//! The callgrind drivers' smoke runs (`request_path`, `spawn_path`): every
//! mode runs and says so (a handler error, a leak, a failed join or a panic
//! would exit otherwise); a bad argument is named. No number is checked
//! (callgrind's counts are read by a person, before and after a change).

use std::process::Command;

/// Runs a driver binary: its exit code, standard output and standard error.
fn run(binary: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(binary)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("run {binary}: {error}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs a driver with a bad argument: it exits 2 and names the problem.
fn assert_usage_error(binary: &str, args: &[&str], message: &str) {
    let (code, _, stderr) = run(binary, args);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(message), "{stderr}");
}

const REQUEST_PATH: &str = env!("CARGO_BIN_EXE_request_path");
const SPAWN_PATH: &str = env!("CARGO_BIN_EXE_spawn_path");

#[test]
fn request_path_serves_its_requests_in_every_mode_and_flavor() {
    for mode in ["plain", "layer", "attribute"] {
        let (code, stdout, stderr) = run(REQUEST_PATH, &[mode, "200"]);
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert_eq!(
            stdout.trim(),
            format!("200 requests through {mode}, 1 tasks each, current_thread")
        );
        let (code, stdout, stderr) = run(REQUEST_PATH, &[mode, "50", "10", "multi"]);
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert_eq!(
            stdout.trim(),
            format!("50 requests through {mode}, 10 tasks each, multi_thread")
        );
        assert!(!stderr.contains("leak"), "{stderr}");
    }
}

#[test]
fn request_path_names_a_bad_argument_and_exits_2() {
    assert_usage_error(
        REQUEST_PATH,
        &["layered", "10"],
        "unknown mode \"layered\"; expected plain, layer or attribute",
    );
    assert_usage_error(
        REQUEST_PATH,
        &["layer", "10", "1", "threads"],
        "unknown flavor \"threads\"; expected current or multi",
    );
    assert_usage_error(
        REQUEST_PATH,
        &["layer", "10", "some"],
        "[tasks per request] takes a whole number, got \"some\"",
    );
    assert_usage_error(
        REQUEST_PATH,
        &["layer", "many"],
        "<requests> takes a whole number, got \"many\"",
    );
}

#[test]
fn spawn_path_runs_its_rounds_in_every_mode() {
    for mode in ["tokio", "tracked", "scope", "yield-tokio", "yield-tracked"] {
        let (code, stdout, stderr) = run(SPAWN_PATH, &[mode, "2"]);
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert_eq!(stdout.trim(), format!("2 rounds of {mode}"));
        assert!(!stderr.contains("leaked"), "{stderr}");
    }
}

/// `hooked` runs where tokio has task hooks, and names the build it needs
/// where it has none.
#[test]
fn spawn_path_hooked_mode_runs_only_where_tokio_has_hooks() {
    let (code, stdout, stderr) = run(SPAWN_PATH, &["hooked", "2"]);
    if cfg!(tokio_unstable) {
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert_eq!(stdout.trim(), "2 rounds of hooked");
        assert!(!stderr.contains("leaked"), "{stderr}");
    } else {
        assert_eq!(code, Some(2), "{stdout}{stderr}");
        assert!(
            stderr.contains("mode hooked needs a build with RUSTFLAGS=\"--cfg tokio_unstable\""),
            "{stderr}"
        );
    }
}

#[test]
fn spawn_path_names_a_bad_argument_and_exits_2() {
    assert_usage_error(
        SPAWN_PATH,
        &["spawn", "10"],
        "unknown mode \"spawn\"; expected tokio, tracked, scope, yield-tokio, yield-tracked or hooked",
    );
    assert_usage_error(
        SPAWN_PATH,
        &["tracked", "ten"],
        "<rounds> takes a whole number, got \"ten\"",
    );
}
