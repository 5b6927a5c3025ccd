//! `LEAKFREE_REPORT_DIR` in real runs. The variable is process-wide, so each
//! case runs this binary again as a child process with the variable set
//! for it alone (the `child_*` tests, ignored unless a parent starts them),
//! and the parent checks the directory and the child's output. Nothing here
//! changes this process's environment.
//!
//! With the `serde` feature the files are written and parse as report JSON;
//! without it a set variable is said to need the feature, once.

use std::env;
#[cfg(feature = "serde")]
use std::fs;
use std::future::pending;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use leakfree_runtime::{Policy, Scope, spawn};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Set for a child process: the `child_*` tests run only then.
const CHILD: &str = "LEAKFREE_REPORT_DIR_TEST_CHILD";

/// Runs the ignored test `test` of this binary in a child process with
/// `LEAKFREE_REPORT_DIR=dir`.
fn run_child(test: &str, dir: &Path) -> Output {
    let output = Command::new(env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LEAKFREE_REPORT_DIR", dir)
        .env(CHILD, "1")
        .env_remove("LEAKFREE_POLICY")
        .env_remove("LEAKFREE_GRACE")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "child {test} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn is_child() -> bool {
    env::var_os(CHILD).is_some()
}

fn leaky(name: &'static str) -> leakfree_runtime::ScopeBuilder {
    Scope::builder(name).grace(Duration::ZERO)
}

/// Counts `tracing` warnings of target `leakfree`.
struct Warnings(Arc<AtomicUsize>);

impl Subscriber for Warnings {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        if meta.target() == "leakfree" && *meta.level() == Level::WARN {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// In a child: two leaky scopes under `Policy::Panic` (each must still
/// panic with its report), a clean one; prints what it saw.
#[tokio::test]
#[ignore = "run by the parent tests in a child process"]
async fn child_leaks_twice_under_panic() {
    if !is_child() {
        return;
    }
    let warnings = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::set_global_default(Warnings(warnings.clone())).unwrap();
    let mut panics = 0;
    for _ in 0..2 {
        let joined = tokio::spawn(leaky("leaks").build().run(async {
            spawn(pending::<()>());
        }))
        .await;
        let payload = joined.unwrap_err().into_panic();
        let message = payload.downcast_ref::<String>().unwrap();
        assert!(
            message.starts_with("leakfree: 1 task leaked from `leaks`"),
            "{message}"
        );
        panics += 1;
    }
    Scope::new("clean")
        .run(async { spawn(async {}).await.unwrap() })
        .await;
    println!("leak panics: {panics}");
    println!("leakfree warnings: {}", warnings.load(Ordering::SeqCst));
}

/// In a child: two leaky scopes of one name and a clean one on the call
/// path, and a leaky detached one (its verdict is reached off the path).
#[tokio::test]
#[ignore = "run by the parent tests in a child process"]
async fn child_writes_reports() {
    if !is_child() {
        return;
    }
    let acted = Arc::new(AtomicUsize::new(0));
    let count = acted.clone();
    let counting = Policy::handler(move |_| {
        count.fetch_add(1, Ordering::SeqCst);
    });
    for _ in 0..2 {
        leaky("worker stops")
            .policy(counting.clone())
            .build()
            .run(async {
                spawn(pending::<()>());
            })
            .await;
    }
    Scope::new("clean")
        .run(async { spawn(async {}).await.unwrap() })
        .await;
    let (done, mut verdict) = tokio::sync::mpsc::unbounded_channel();
    leaky("detached")
        .detach_verdict(true)
        .policy(Policy::handler(move |_| done.send(()).unwrap()))
        .build()
        .run(async {
            spawn(pending::<()>());
        })
        .await;
    verdict.recv().await.unwrap();
    // The policy acted on every leaking scope, files or not.
    assert_eq!(acted.load(Ordering::SeqCst), 2);
    println!("child pid {}", std::process::id());
}

#[cfg(feature = "serde")]
#[test]
fn a_report_dir_gets_one_file_per_leaking_scope() {
    if is_child() {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("leak-reports"); // made by leakfree
    let output = run_child("child_writes_reports", &dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // libtest prints the test's name on the same line.
    let pid = stdout
        .lines()
        .find_map(|l| {
            l.split_once("child pid ")
                .map(|(_, pid)| pid.trim().to_owned())
        })
        .expect("the child ran");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "one file per leaking scope: {names:?}");
    let scopes: Vec<&str> = names.iter().map(|n| n.split('-').next().unwrap()).collect();
    assert_eq!(scopes, ["detached", "worker_stops", "worker_stops"]);
    for name in &names {
        assert!(name.ends_with(".json"), "{name}");
        assert!(
            name.contains(&format!("-{pid}-")),
            "{name} names the process"
        );
        let text = fs::read_to_string(dir.join(name)).unwrap();
        let report: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(report["version"], 1, "{text}");
        assert_eq!(report["clean"], false);
        let scope = report["scope"].as_str().unwrap();
        assert_eq!(scope.replace(' ', "_"), name.split('-').next().unwrap());
        assert_eq!(report["leaked"].as_array().unwrap().len(), 1, "{text}");
        assert_eq!(report["leaked"][0]["state"], "blocked_forever");
        let headline = format!("leakfree: 1 task leaked from `{scope}`");
        assert!(report["text"].as_str().unwrap().starts_with(&headline));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("LEAKFREE_REPORT_DIR"),
        "no complaint: {stderr}"
    );
}

#[cfg(feature = "serde")]
#[test]
fn a_bad_report_dir_is_named_once_and_the_leak_still_panics() {
    if is_child() {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("a-file");
    fs::write(&file, "").unwrap();
    let cases = [
        (file.clone(), "it is not a directory"),
        (file.join("below-a-file"), "cannot create the directory: "),
    ];
    for (dir, why) in cases {
        let output = run_child("child_leaks_twice_under_panic", &dir);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = format!(
            "leakfree: LEAKFREE_REPORT_DIR={}: cannot keep leak reports there: {why}",
            dir.display()
        );
        assert_eq!(stderr.matches(&message).count(), 1, "once:\n{stderr}");
        assert_eq!(
            stderr.matches("LEAKFREE_REPORT_DIR=").count(),
            1,
            "{stderr}"
        );
        assert!(stdout.contains("leak panics: 2"), "{stdout}");
        assert!(stdout.contains("leakfree warnings: 1"), "{stdout}");
    }
    assert!(file.is_file(), "the file is left alone");
}

#[cfg(not(feature = "serde"))]
#[test]
fn without_serde_a_set_variable_is_said_to_need_the_feature_once() {
    if is_child() {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("leak-reports");
    let output = run_child("child_leaks_twice_under_panic", &dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = format!(
        "leakfree: LEAKFREE_REPORT_DIR={} is set, but leakfree-runtime was built without \
         its `serde` feature, so no report files are written",
        dir.display()
    );
    assert_eq!(stderr.matches(&message).count(), 1, "once:\n{stderr}");
    assert!(stdout.contains("leak panics: 2"), "{stdout}");
    assert!(stdout.contains("leakfree warnings: 1"), "{stdout}");
    assert!(!dir.exists(), "nothing is written");
}
