//! The spawn-path driver's smoke run: every mode runs its rounds and says so
//! (a leak, a failed join or a panic would exit otherwise); a bad argument
//! is named. No number is checked (callgrind's counts are read by a person,
//! before and after a change).

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_spawn_path"))
        .args(args)
        .output()
        .expect("run the spawn_path binary");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_mode_runs_its_rounds() {
    for mode in ["tokio", "tracked", "scope", "yield-tokio", "yield-tracked"] {
        let (code, stdout, stderr) = run(&[mode, "2"]);
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert_eq!(stdout.trim(), format!("2 rounds of {mode}"));
        assert!(!stderr.contains("leaked"), "{stderr}");
    }
}

#[test]
fn a_bad_argument_names_itself_and_exits_2() {
    let (code, _, stderr) = run(&["spawn", "10"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "unknown mode \"spawn\"; expected tokio, tracked, scope, yield-tokio or yield-tracked"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["tracked", "ten"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("<rounds> takes a whole number, got \"ten\""),
        "{stderr}"
    );
}
