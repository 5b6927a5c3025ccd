//! The event bus, judged by leakfree after its close: the leaky close leaves
//! every subscriber and heartbeat running, reported in one group per spawn
//! site with the right counts; the correct close leaves nothing. Also the
//! bus itself and the `eventbus` binary.

use std::process::Command;
use std::sync::{Arc, Mutex};

use leakfree_examples::eventbus::{
    self, Bus, Checked, Close, GRACE, SCOPE, leaks_by_topic, run_checked, scenario,
};
use leakfree_runtime::report::TaskState;

const SOURCE: &str = include_str!("../src/eventbus.rs");
const TOPICS: usize = 5;
const SUBSCRIBERS: usize = 200;
/// Every subscriber, and one heartbeat per topic.
const TASKS: usize = TOPICS * SUBSCRIBERS + TOPICS;

/// The line of `eventbus.rs` carrying `// spawn-site: <which>`.
fn spawn_line(which: &str) -> u32 {
    let marker = format!("// spawn-site: {which}");
    let lines: Vec<usize> = SOURCE
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim_end().ends_with(&marker))
        .map(|(index, _)| index + 1)
        .collect();
    assert_eq!(lines.len(), 1, "exactly one `{marker}` in eventbus.rs");
    u32::try_from(lines[0]).unwrap()
}

/// Checks a leaky close's report; returns the states of the leaked tasks.
fn assert_leaky(checked: &Checked<u64>) -> Vec<TaskState> {
    let report = &checked.report;
    let everyone = (TOPICS * SUBSCRIBERS) as u64;
    assert_eq!(checked.value, everyone, "every subscriber got its event");
    assert_eq!(checked.running_before_close, TASKS);
    assert!(!report.is_clean());
    assert_eq!(report.scope_name(), SCOPE);
    assert_eq!(report.leaked().len(), TASKS, "{report}");

    // One group per spawn site and name (topic), with its count.
    let groups = report.groups();
    assert_eq!(groups.len(), 2 * TOPICS, "{report}");
    for group in &groups {
        let name = group.name().expect("bus tasks are named");
        let (line, count) = if name.ends_with("/subscriber") {
            (spawn_line("subscriber"), SUBSCRIBERS)
        } else {
            assert!(name.ends_with("/heartbeat"), "{name}");
            (spawn_line("heartbeat"), 1)
        };
        assert_eq!(group.location().line(), line, "{report}");
        assert!(group.location().file().ends_with("src/eventbus.rs"));
        assert_eq!(group.count(), count, "{report}");
    }

    // The text: a headline and one entry per group, not a line per task.
    let text = report.to_string();
    let headline = format!(
        "leakfree: {TASKS} tasks leaked from `{SCOPE}` (grace {}ms)\n",
        GRACE.as_millis()
    );
    assert!(text.starts_with(&headline), "{text}");
    let entries: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("  ") && line.trim_start().starts_with(char::is_numeric))
        .collect();
    assert_eq!(entries.len(), 2 * TOPICS, "{text}");
    for group in &groups {
        let name = group.name().unwrap();
        let entry = if group.count() == 1 {
            format!(
                "\"{name}\" spawned at examples/src/eventbus.rs:{}:",
                group.location().line()
            )
        } else {
            format!(
                "{} tasks \"{name}\" spawned at examples/src/eventbus.rs:{}:",
                group.count(),
                group.location().line()
            )
        };
        assert!(
            entries.iter().any(|e| e.contains(&entry)),
            "no `{entry}` in:\n{text}"
        );
    }
    assert!(
        text.ends_with(&format!("enforced: {TASKS} aborted, 0 zombies")),
        "{text}"
    );
    assert_eq!(report.aborted(), TASKS);
    assert!(report.zombies().is_empty());
    assert!(report.panics().is_empty());

    // The per-topic split, from the tasks' names.
    let by_topic = leaks_by_topic(report);
    let topics: Vec<String> = (0..TOPICS).map(eventbus::topic_name).collect();
    assert_eq!(by_topic.keys().cloned().collect::<Vec<_>>(), {
        let mut sorted = topics.clone();
        sorted.sort();
        sorted
    });
    assert!(
        by_topic.values().all(|&n| n == SUBSCRIBERS + 1),
        "{by_topic:?}"
    );

    report.leaked().iter().map(|t| t.state()).collect()
}

fn assert_correct(checked: &Checked<u64>) {
    let report = &checked.report;
    assert_eq!(checked.value, (TOPICS * SUBSCRIBERS) as u64);
    // Right before the close the count is the leaky run's: it proves nothing.
    assert_eq!(checked.running_before_close, TASKS);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.spawned(), TASKS);
    assert_eq!(report.aborted(), 0);
    assert_eq!(
        report.to_string(),
        format!(
            "leakfree: `{SCOPE}` is clean ({TASKS} tasks tracked, grace {}ms)",
            GRACE.as_millis()
        )
    );
}

#[tokio::test]
async fn a_leaky_close_leaves_every_worker_reported_by_spawn_site() {
    let checked = scenario(Close::Leaky, TOPICS, SUBSCRIBERS).await;
    // Subscribers wait on their topic and the stop token that nobody
    // cancels; heartbeats on their timer and the same token: two wakers
    // each, nothing to wake them before the verdict.
    for state in assert_leaky(&checked) {
        assert_eq!(
            state,
            TaskState::Waiting { wakers: 2 },
            "{}",
            checked.report
        );
    }
}

#[tokio::test]
async fn a_correct_close_leaves_nothing() {
    assert_correct(&scenario(Close::Correct, TOPICS, SUBSCRIBERS).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_closes_on_a_multi_thread_runtime() {
    let leaky = scenario(Close::Leaky, TOPICS, SUBSCRIBERS).await;
    for state in assert_leaky(&leaky) {
        assert_ne!(state, TaskState::BlockedForever, "{}", leaky.report);
    }
    assert_correct(&scenario(Close::Correct, TOPICS, SUBSCRIBERS).await);
}

#[tokio::test]
async fn subscribers_get_what_is_published_on_their_topic() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let checked = run_checked(Close::Correct, async |bus: &Bus| {
        for topic in ["a", "b"] {
            let seen = seen.clone();
            bus.subscribe(topic, move |event| {
                seen.lock()
                    .unwrap()
                    .push(format!("{}:{}", event.topic, event.payload));
            });
        }
        assert_eq!(bus.publish("nobody-listens", "lost"), 0);
        assert_eq!(bus.publish("a", "one"), 1);
        assert_eq!(bus.publish("b", "two"), 1);
        bus.wait_delivered(2).await;
        assert_eq!(bus.delivered(), 2);
        // Two subscribers and two heartbeats.
        bus.running_tasks()
    })
    .await;
    assert_eq!(checked.value, 4);
    assert!(checked.report.is_clean(), "{}", checked.report);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["a:one", "b:two"]);
}

#[tokio::test]
async fn a_bus_with_no_subscriptions_is_clean_either_way() {
    for close in [Close::Leaky, Close::Correct] {
        let checked = run_checked(close, async |bus: &Bus| bus.publish("x", "y")).await;
        assert_eq!(checked.value, 0);
        assert!(checked.report.is_clean(), "{}", checked.report);
        assert_eq!(checked.report.spawned(), 0);
    }
}

fn eventbus_binary(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_eventbus"))
        .args(args)
        .output()
        .expect("run the eventbus binary")
}

#[test]
fn the_binary_prints_the_leaky_and_the_fixed_run() {
    let output = eventbus_binary(&["--topics", "3", "--subscribers", "50"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let expected = [
        "== close_leaky(): 3 topics x 50 subscribers".to_owned(),
        "handled 150 events".to_owned(),
        "running right before the close: 153 tasks".to_owned(),
        "leakfree: 153 tasks leaked from `eventbus` (grace 50ms)".to_owned(),
        format!(
            "50 tasks \"orders/subscriber\" spawned at examples/src/eventbus.rs:{}:",
            spawn_line("subscriber")
        ),
        format!(
            "\"shipping/heartbeat\" spawned at examples/src/eventbus.rs:{}:",
            spawn_line("heartbeat")
        ),
        "enforced: 153 aborted, 0 zombies".to_owned(),
        "leaked per topic (from the tasks' names): orders 51, payments 51, shipping 51".to_owned(),
        "== close(): 3 topics x 50 subscribers".to_owned(),
        "leakfree: `eventbus` is clean (153 tasks tracked, grace 50ms)".to_owned(),
    ];
    for text in &expected {
        assert!(stdout.contains(text.as_str()), "no `{text}` in:\n{stdout}");
    }
    assert_eq!(
        stdout
            .matches("running right before the close: 153")
            .count(),
        2
    );
}

#[test]
fn a_single_close_exits_1_on_a_leak_and_0_when_clean_2_on_bad_arguments() {
    let leaky = eventbus_binary(&["--close", "leaky", "--topics=1", "--subscribers=2"]);
    let stdout = String::from_utf8_lossy(&leaky.stdout);
    assert_eq!(leaky.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("leakfree: 3 tasks leaked from `eventbus`"),
        "{stdout}"
    );

    let correct = eventbus_binary(&["--close=correct", "--topics=1", "--subscribers=2"]);
    let stdout = String::from_utf8_lossy(&correct.stdout);
    assert_eq!(correct.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("is clean (3 tasks tracked"), "{stdout}");

    let bad = eventbus_binary(&["--subscribers", "none"]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("bad value `none` for `--subscribers`"),
        "{stderr}"
    );
}
