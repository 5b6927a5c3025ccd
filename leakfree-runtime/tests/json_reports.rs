//! Reports as JSON (feature `serde`): the exact shape of version 1 for real
//! verdicts, with only what differs between runs (task ids, ages, the text,
//! which the report's own `Display` gives) normalized.

use std::future::pending;
use std::sync::mpsc as blocking_channel;
use std::time::Duration;

use leakfree_runtime::report::json::VERSION;
use leakfree_runtime::{LeakReport, Scope, spawn, spawn_blocking, spawn_named};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

const FILE: &str = file!();

/// Leaks a named worker that nothing can wake; returns its spawn line (its
/// column is 5).
fn leak_worker() -> u32 {
    let line = line!() + 1;
    spawn_named("worker", pending::<()>());
    line
}

/// Starts a task that panics with its `JoinHandle` dropped; returns its
/// spawn line (its column is 10) and a receiver that errs once it is gone.
fn panic_unobserved() -> (u32, oneshot::Receiver<()>) {
    let (alive, gone) = oneshot::channel::<()>();
    let line = line!() + 1;
    drop(spawn(async move {
        let _alive = alive;
        panic!("boom")
    }));
    (line, gone)
}

/// The report as JSON, with ids checked to be numbers and set to 0, ages
/// checked to be numbers and set to 0, and the text checked against the
/// report's `Display` and replaced by `"<text>"`.
fn normalized(report: &LeakReport) -> Value {
    let mut value: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(value["text"], report.to_string());
    value["text"] = json!("<text>");
    for list in ["leaked", "zombies", "panics"] {
        for task in value[list].as_array_mut().unwrap() {
            normalize(task, "id");
            if list != "panics" {
                normalize(task, "age_ms");
                normalize(task, "age_ns");
            }
        }
    }
    for group in value["groups"].as_array_mut().unwrap() {
        for id in group["task_ids"].as_array_mut().unwrap() {
            assert!(id.is_u64(), "{id}");
            *id = json!(0);
        }
    }
    value
}

fn normalize(object: &mut Value, field: &str) {
    assert!(object[field].is_u64(), "{field} is a number: {object}");
    object[field] = json!(0);
}

fn location(line: u32, column: u32) -> Value {
    json!({ "file": FILE, "line": line, "column": column })
}

#[tokio::test]
async fn a_leak_and_an_unobserved_panic_have_the_documented_shape() {
    let ((worker_line, panic_line), report) = Scope::builder("worker_stops")
        .grace(Duration::ZERO)
        .build()
        .run_and_report(async {
            let worker_line = leak_worker();
            let (panic_line, gone) = panic_unobserved();
            gone.await.unwrap_err();
            (worker_line, panic_line)
        })
        .await;
    assert_eq!(
        (report.leaked().len(), report.panics().len()),
        (1, 1),
        "{report}"
    );
    // The ids are the tasks' own.
    let value: Value = serde_json::from_str(&report.to_json()).unwrap();
    let worker_id = report.leaked()[0].id().unwrap().to_string();
    assert_eq!(value["leaked"][0]["id"].to_string(), worker_id);
    assert_eq!(value["groups"][0]["task_ids"][0].to_string(), worker_id);
    let panic_id = report.panics()[0].id().unwrap().to_string();
    assert_eq!(value["panics"][0]["id"].to_string(), panic_id);

    let worker = location(worker_line, 5);
    let expected = json!({
        "version": 1,
        "scope": "worker_stops",
        "clean": false,
        "grace_ms": 0,
        "grace_ns": 0,
        "spawned": 2,
        "leaked": [{
            "id": 0,
            "name": "worker",
            "kind": "async",
            "location": worker,
            "age_ms": 0,
            "age_ns": 0,
            "state": "blocked_forever",
            "wakers": null,
            "stuck_at": [],
        }],
        "groups": [{
            "count": 1,
            "name": "worker",
            "kind": "async",
            "location": worker,
            "state": "blocked_forever",
            "wakers": null,
            "task_ids": [0],
        }],
        "zombies": [],
        "panics": [{
            "id": 0,
            "name": null,
            "location": location(panic_line, 10),
            "message": "boom",
        }],
        "untracked": null,
        "aborted": 1,
        "ignored": 0,
        "background_cancelled": 0,
        "text": "<text>",
    });
    assert_eq!(normalized(&report), expected);
    assert_eq!(VERSION, 1);
    // The fields come in the documented order.
    let text = report.to_json();
    let keys = [
        "version",
        "scope",
        "clean",
        "grace_ms",
        "grace_ns",
        "spawned",
        "leaked",
        "groups",
        "zombies",
        "panics",
        "untracked",
        "aborted",
        "ignored",
        "background_cancelled",
        "text",
    ];
    let at: Vec<usize> = keys
        .iter()
        .map(|k| {
            text.find(&format!("\n  \"{k}\": "))
                .unwrap_or_else(|| panic!("{k}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[tokio::test]
async fn a_clean_report_is_clean_in_json() {
    let (_, report) = Scope::builder("clean")
        .grace(Duration::from_millis(250))
        .build()
        .run_and_report(async { spawn(async {}).await.unwrap() })
        .await;
    assert_eq!(
        normalized(&report),
        json!({
            "version": 1,
            "scope": "clean",
            "clean": true,
            "grace_ms": 250,
            "grace_ns": 250_000_000,
            "spawned": 1,
            "leaked": [],
            "groups": [],
            "zombies": [],
            "panics": [],
            "untracked": null,
            "aborted": 0,
            "ignored": 0,
            "background_cancelled": 0,
            "text": "<text>",
        })
    );
}

#[tokio::test]
async fn states_kinds_zombies_and_untracked_use_their_stable_strings() {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let (release, released) = blocking_channel::channel::<()>();
    let (_, report) = Scope::builder("states")
        .grace(Duration::ZERO)
        .abort_timeout(Duration::ZERO)
        .build()
        .run_and_report(async move {
            let (ready, waiting) = oneshot::channel();
            spawn(async move {
                ready.send(()).unwrap();
                rx.recv().await
            });
            waiting.await.unwrap();
            let (started, running) = oneshot::channel();
            spawn_blocking(move || {
                started.send(()).unwrap();
                let _ = released.recv();
            });
            running.await.unwrap();
        })
        .await;
    let value = normalized(&report);
    release.send(()).unwrap();
    drop(tx);

    let states: Vec<(&str, &str, &Value)> = value["leaked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["kind"].as_str().unwrap(),
                t["state"].as_str().unwrap(),
                &t["wakers"],
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("async", "waiting", &json!(1)),
            ("blocking", "running", &Value::Null)
        ],
        "{report}"
    );
    assert_eq!(value["zombies"].as_array().unwrap().len(), 1);
    assert_eq!(value["zombies"][0]["kind"], "blocking");
    assert_eq!(value["untracked"], Value::Null, "not counted by this scope");
    assert_eq!(value["clean"], false);

    let (_, report) = Scope::builder("untracked")
        .grace(Duration::ZERO)
        .count_untracked(true)
        .build()
        .run_and_report(async {
            drop(tokio::spawn(pending::<()>()));
        })
        .await;
    let blocking = if cfg!(tokio_unstable) {
        json!(0)
    } else {
        Value::Null
    };
    assert_eq!(
        normalized(&report)["untracked"],
        json!({ "alive": 1, "blocking": blocking, "fails_scope": true }),
        "{report}"
    );
}
