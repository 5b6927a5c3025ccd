//! The floors benchmark's smoke run: `spawn_floors --quick` runs every
//! variant on both flavors and prints the table. No number is checked (a
//! benchmark is not a test); only that it runs and says what it measured.

use std::process::Command;

/// Runs `spawn_floors` with `args`: its exit code, standard output and
/// standard error.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_spawn_floors"))
        .args(args)
        .output()
        .expect("run the spawn_floors binary");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_quick_run_measures_every_variant_on_both_flavors() {
    let (code, stdout, _) = run(&["--quick"]);
    assert_eq!(code, Some(0), "{stdout}");
    for flavor in ["current_thread", "multi_thread"] {
        for variant in [
            "tokio::spawn",
            "scope reference + live count",
            "+ context per poll",
            "+ table slot (the wrapper)",
            "wrapper + probe",
            "slab records, lazy probe",
            "leakfree::spawn",
        ] {
            let row = format!("| {flavor} | {variant} | ");
            assert_eq!(
                stdout.lines().filter(|line| line.starts_with(&row)).count(),
                1,
                "{row}: {stdout}"
            );
        }
    }
    assert!(stdout.starts_with("100 trivial tasks"), "{stdout}");
}

#[test]
fn a_bad_argument_names_itself_and_exits_2() {
    let (code, _, stderr) = run(&["--rounds", "zero"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--rounds takes a positive whole number"),
        "{stderr}"
    );
}

/// `--only` runs one variant's rounds for callgrind and names itself; an
/// unknown variant is named with the ones it takes.
#[test]
fn only_runs_one_variant_and_names_a_bad_one() {
    let (code, stdout, _) = run(&["--only", "slab", "--rounds", "2", "--tasks", "50"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(stdout.trim(), "2 rounds of 50 tasks, slab");

    let (code, _, stderr) = run(&["--only", "fastest"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "--only takes one of tokio, counted, entered, wrapper, probed, slab, leakfree, got \"fastest\""
        ),
        "{stderr}"
    );
}
