//! Helpers shared by the `corpus_*` test files.
//!
//! A leak pattern is written twice: a fixture that leaks on purpose (an
//! `#[ignore]`d `#[leak_checked]` test, a plain `fn()` once expanded) and a
//! fixed twin that runs as a normal test. A checker test calls the fixture
//! under `catch_unwind` with [`expect_leak`] and asserts the report's
//! headline, the spawn sites (recorded by [`spawn_here`] and
//! [`spawn_blocking_here`] at the spawn call), how many tasks leaked at each,
//! and the enforcement line.
//!
//! Each corpus file is its own crate and uses a different subset of these.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::panic::{Location, catch_unwind};
use std::sync::{Condvar, Mutex, OnceLock};

use leakfree_runtime::JoinHandle;

/// Spawn sites recorded by [`spawn_here`] and [`spawn_blocking_here`], by
/// name; a name is used by one fixture only.
static SITES: Mutex<Vec<(&'static str, &'static Location<'static>)>> = Mutex::new(Vec::new());

#[track_caller]
fn record(name: &'static str) {
    SITES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((name, Location::caller()));
}

/// `leakfree_runtime::spawn_named`, remembering the call site under `name`.
#[track_caller]
pub(crate) fn spawn_here<F>(name: &'static str, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    record(name);
    leakfree_runtime::spawn_named(name, future)
}

/// `leakfree_runtime::spawn_blocking`, remembering the call site under
/// `name` (blocking tasks carry no name in reports).
#[track_caller]
pub(crate) fn spawn_blocking_here<F, R>(name: &'static str, function: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    record(name);
    leakfree_runtime::spawn_blocking(function)
}

/// `file:line:col` of the last spawn recorded under `name`.
pub(crate) fn site(name: &str) -> String {
    let sites = SITES.lock().unwrap_or_else(|e| e.into_inner());
    let (_, location) = sites
        .iter()
        .rev()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no spawn recorded under {name:?}"));
    location.to_string()
}

/// The panic text of a fixture that must fail.
pub(crate) fn failure_of(fixture: fn()) -> String {
    let payload = catch_unwind(fixture).expect_err("the fixture must fail");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .expect("a text panic")
}

/// `1 task` / `3 tasks`, as reports write counts.
pub(crate) fn tasks(n: usize) -> String {
    if n == 1 {
        "1 task".to_owned()
    } else {
        format!("{n} tasks")
    }
}

/// The leaked-task groups of a report: `(count, site, the group's lines)`.
/// A group is a line `  N) …` and the indented lines under it.
pub(crate) fn groups(text: &str) -> Vec<(usize, String, String)> {
    let mut out: Vec<(usize, String, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let numbered = line.starts_with("  ")
            && trimmed
                .split_once(") ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if numbered {
            let rest = trimmed.split_once(") ").unwrap().1;
            let first = rest.split(' ').next().unwrap_or_default();
            let count = first.parse::<usize>().unwrap_or(1);
            let site = rest
                .split_once(" spawned at ")
                .and_then(|(_, s)| s.split_once(", alive "))
                .map(|(s, _)| s.to_owned())
                .unwrap_or_else(|| panic!("no spawn site in {line:?}"));
            out.push((count, site, format!("{line}\n")));
        } else if let Some(last) = out.last_mut().filter(|_| line.starts_with("     ")) {
            last.2.push_str(line);
            last.2.push('\n');
        }
    }
    out
}

/// How many leaked tasks the report lists at the site recorded as `name`.
pub(crate) fn leaked_at(text: &str, name: &str) -> usize {
    let site = site(name);
    groups(text)
        .iter()
        .filter(|(_, s, _)| *s == site)
        .map(|(n, _, _)| n)
        .sum()
}

/// Runs `fixture` (named `scope`, with `grace`), which must fail with a leak
/// report: the headline names `leaked` tasks, each `(name, count)` of `sites`
/// has exactly `count` tasks reported `spawned at` its recorded call site, no
/// other site appears, and the enforcement line counts `leaked` aborted tasks
/// and `zombies` zombies. Returns the report for further checks.
#[track_caller]
pub(crate) fn expect_leak(
    fixture: fn(),
    scope: &str,
    grace: &str,
    leaked: usize,
    sites: &[(&str, usize)],
    zombies: usize,
) -> String {
    let text = failure_of(fixture);
    let headline = text.lines().next().unwrap_or_default();
    let expected = format!("leakfree: {} leaked", tasks(leaked));
    assert!(headline.starts_with(&expected), "headline: {text}");
    assert!(
        headline.ends_with(&format!(" from `{scope}` (grace {grace})")),
        "headline: {text}"
    );
    for (name, count) in sites {
        let spawned_at = format!("spawned at {}, ", site(name));
        assert!(text.contains(&spawned_at), "no `{spawned_at}` in: {text}");
        assert_eq!(leaked_at(&text, name), *count, "tasks at {name}: {text}");
    }
    let listed: usize = groups(&text).iter().map(|(n, _, _)| n).sum();
    assert_eq!(listed, leaked, "tasks listed: {text}");
    let enforced = format!(
        "  enforced: {leaked} aborted, {zombies} {}",
        if zombies == 1 { "zombie" } else { "zombies" }
    );
    assert!(
        text.lines().any(|l| l.starts_with(&enforced)),
        "no `{enforced}` in: {text}"
    );
    text
}

/// The state line (`waiting: …`, `blocked forever: …`, `running: …`) of the
/// group spawned at the site recorded as `name`.
pub(crate) fn state_at(text: &str, name: &str) -> String {
    let site = site(name);
    let (_, _, lines) = groups(text)
        .into_iter()
        .find(|(_, s, _)| *s == site)
        .unwrap_or_else(|| panic!("no group at {site} in: {text}"));
    lines
        .lines()
        .map(str::trim)
        .find(|l| {
            [
                "blocked forever:",
                "waiting:",
                "scheduled:",
                "running:",
                "state unknown:",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .unwrap_or_else(|| panic!("no state line at {site} in: {text}"))
        .to_owned()
}

/// A loopback address that accepts connections (the kernel's accept queue
/// completes them) and never reads or answers: a server that hangs. It lives
/// for the whole test process.
pub(crate) fn black_hole() -> SocketAddr {
    static LISTENER: OnceLock<std::net::TcpListener> = OnceLock::new();
    LISTENER
        .get_or_init(|| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .local_addr()
        .expect("a local address")
}

/// A door that blocking code (a `spawn_blocking` closure, a blocking call in
/// an async task) waits at until the test opens it, after the leak check.
/// Opening never blocks, so a failing assertion cannot hang the test.
pub(crate) struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    pub(crate) const fn new() -> Gate {
        Gate {
            open: Mutex::new(false),
            opened: Condvar::new(),
        }
    }

    /// Blocks the calling thread until the gate is open.
    pub(crate) fn wait(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while !*open {
            open = self.opened.wait(open).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub(crate) fn open(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.opened.notify_all();
    }

    /// Opens the gate when dropped: at the end of a checker, or as it unwinds.
    pub(crate) fn open_on_drop(&'static self) -> OpenOnDrop {
        OpenOnDrop(self)
    }
}

/// See [`Gate::open_on_drop`].
pub(crate) struct OpenOnDrop(&'static Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}
