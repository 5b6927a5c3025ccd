//! The request-path driver's smoke run: both modes serve their requests and
//! say so (a handler error or panic would exit otherwise); a bad argument is
//! named. No number is checked (callgrind's counts
//! are read by a person, before and after a change).

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_request_path"))
        .args(args)
        .output()
        .expect("run the request_path binary");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn both_modes_serve_their_requests() {
    for mode in ["plain", "layer"] {
        let (code, stdout, stderr) = run(&[mode, "200"]);
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert_eq!(stdout.trim(), format!("200 requests through {mode}"));
    }
}

#[test]
fn a_bad_argument_names_itself_and_exits_2() {
    let (code, _, stderr) = run(&["layered", "10"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown mode \"layered\"; expected plain or layer"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["layer", "many"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("<requests> takes a whole number, got \"many\""),
        "{stderr}"
    );
}
