//! The service benchmark's smoke run: `service_bench --quick` serves every
//! variant on loopback, loads it, stops by itself and prints the table. No
//! number is checked (a benchmark is not a test); only that it runs and
//! says what it measured.

use std::process::Command;

#[test]
fn the_quick_run_loads_every_variant_and_prints_the_table() {
    let output = Command::new(env!("CARGO_BIN_EXE_service_bench"))
        .args(["--quick", "--connections", "4"])
        .output()
        .expect("run the service_bench binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("| 1 |") || line.starts_with("| 10 |"))
        .collect();
    assert_eq!(rows.len(), 8, "{stdout}");
    for variant in [
        "plain",
        "`LeakCheckLayer` on the router",
        "`#[leak_checked]` on the handler",
        "the scope alone",
    ] {
        assert_eq!(
            rows.iter().filter(|row| row.contains(variant)).count(),
            2,
            "{variant}: {stdout}"
        );
    }
    assert!(stdout.contains("N=1 round 1: "), "{stdout}");
    assert!(stdout.contains("N=10 round 1: "), "{stdout}");
}

#[test]
fn bad_arguments_exit_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_service_bench"))
        .args(["--rounds", "zero"])
        .output()
        .expect("run the service_bench binary");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`--rounds zero`"));
}
