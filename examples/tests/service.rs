//! The service example, judged by leakfree: a leaky connection panics with
//! the report in a debug build and is logged (not panicked) in a release
//! build; the server keeps serving; the live view and the metrics show it;
//! and 300 concurrent connections are judged each on its own.
//!
//! Run both builds:
//!
//! ```text
//! cargo test -p leakfree-examples --test service
//! cargo test -p leakfree-examples --release --test service
//! ```
//!
//! leakfree's counters are process-wide, so the tests of this file take
//! turns (`SERIAL`) and compare counters before and after.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leakfree_examples::service::{
    self, Client, HANDLER_GRACE, connection_panics, handle, wait_for_metrics,
};
use leakfree_runtime::live::{self, Metrics};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

const SOURCE: &str = include_str!("../src/service.rs");

/// An upper bound for waiting on a verdict: far above the handler's grace,
/// never reached when things work.
const LIMIT: Duration = Duration::from_secs(20);

/// leakfree's counters are process-wide: one test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The line of `service.rs` carrying `// spawn-site: <which>`.
fn spawn_line(which: &str) -> usize {
    let marker = format!("// spawn-site: {which}");
    let lines: Vec<usize> = SOURCE
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim_end().ends_with(&marker))
        .map(|(index, _)| index + 1)
        .collect();
    assert_eq!(lines.len(), 1, "exactly one `{marker}` in service.rs");
    lines[0]
}

/// How the leaked watcher appears in a report or the live view.
fn leaked_watcher_site() -> String {
    format!(
        "\"config-watcher\" spawned at examples/src/service.rs:{}:",
        spawn_line("leaky")
    )
}

fn headline() -> String {
    format!(
        "leakfree: 1 task leaked from `handle` (grace {}ms)",
        HANDLER_GRACE.as_millis()
    )
}

// ---------------------------------------------------------------------------
// A capturing `tracing` subscriber
// ---------------------------------------------------------------------------

/// One `tracing` event, its fields as text (`str` fields without quotes).
#[derive(Debug, Clone)]
struct Captured {
    level: Level,
    target: String,
    fields: BTreeMap<String, String>,
}

impl Captured {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// Records every event; installed for one thread with
/// `tracing::subscriber::set_default`.
#[derive(Clone)]
struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
    count: Arc<watch::Sender<usize>>,
}

impl Capture {
    fn new() -> Capture {
        Capture {
            events: Arc::default(),
            count: Arc::new(watch::Sender::new(0)),
        }
    }

    fn find(&self, matches: &impl Fn(&Captured) -> bool) -> Option<Captured> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .find(|e| matches(e))
            .cloned()
    }

    /// Waits (woken by each new event, bounded by [`LIMIT`]) for an event
    /// that `matches`.
    async fn wait_for(&self, matches: impl Fn(&Captured) -> bool) -> Option<Captured> {
        let mut recorded = self.count.subscribe();
        let wait = async {
            loop {
                if let Some(event) = self.find(&matches) {
                    return event;
                }
                // The sender lives in `self`: `changed` cannot fail.
                let _ = recorded.changed().await;
            }
        };
        tokio::time::timeout(LIMIT, wait).await.ok()
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.events.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
        self.count.send_modify(|n| *n += 1);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// leakfree's release-mode verdict on a scope called `handle`.
fn is_leakfree_warning(event: &Captured) -> bool {
    event.level == Level::WARN
        && event.target == "leakfree"
        && event.field("scope") == Some("handle")
        && event.field("report").is_some()
}

// ---------------------------------------------------------------------------
// A server on loopback
// ---------------------------------------------------------------------------

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start() -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(service::serve(listener, async {
            let _ = stopped.await;
        }));
        Server { addr, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("the server task ends cleanly");
    }
}

/// Waits until every scope begun since `before` has ended and nothing
/// tracked is left alive; returns the metrics then.
async fn settled(before: &Metrics, scopes: u64) -> Metrics {
    wait_for_metrics(
        |m| {
            m.scopes_ended >= before.scopes_ended + scopes
                && m.live_tracked_tasks == before.live_tracked_tasks
                && m.live_scopes == before.live_scopes
        },
        LIMIT,
    )
    .await
    .unwrap_or_else(|m| panic!("{scopes} scopes did not end: before {before:?}, now {m:?}"))
}

/// Prometheus text as `name -> value`.
fn parse_metrics(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.split_once(' ').expect("`name value`");
            (name.to_owned(), value.parse().expect("a counter or gauge"))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The handler, called directly
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_fixed_connection_is_clean() {
    let _serial = SERIAL.lock().await;
    let before = live::metrics();
    let (client, server) = tokio::io::duplex(4096);
    let (handled, response) = tokio::join!(handle(server), async move {
        let mut client = Client::new(client);
        client.get("/fixed").await
    });
    handled.expect("the handler ends without error");
    let response = response.expect("a response");
    assert_eq!(response.status, 200);
    assert!(response.body.contains("stops when this connection ends"));
    let after = settled(&before, 1).await;
    assert_eq!(after.scopes_ended, before.scopes_ended + 1);
    assert_eq!(after.scopes_with_leaks, before.scopes_with_leaks);
    assert_eq!(after.leaks_found, before.leaks_found);
}

#[cfg(debug_assertions)]
#[tokio::test]
async fn a_leaky_handler_panics_with_the_report_in_a_debug_build() {
    let _serial = SERIAL.lock().await;
    let before = live::metrics();
    let (client, server) = tokio::io::duplex(4096);
    let handler = tokio::spawn(handle(server));
    // The client asks for the leak, reads the answer and hangs up.
    let response = Client::new(client).get("/leaky").await.expect("a response");
    assert_eq!(response.status, 200);

    let error = handler
        .await
        .expect_err("a leak panics the call in a debug build");
    assert!(error.is_panic(), "{error}");
    let message = service::panic_text(error.into_panic());
    assert!(message.starts_with(&headline()), "{message}");
    assert!(message.contains(&leaked_watcher_site()), "{message}");
    // A `watch` receiver parked in `changed()`: its channel holds the waker.
    assert!(
        message.contains("waiting: 1 waker held (timer, I/O or channel)"),
        "{message}"
    );
    assert!(
        message.ends_with("enforced: 1 aborted, 0 zombies"),
        "{message}"
    );

    // The panic comes after the verdict and the cancellation: the leaked
    // watcher is already gone.
    let after = live::metrics();
    assert_eq!(after.live_tracked_tasks, before.live_tracked_tasks);
    assert_eq!(after.scopes_with_leaks, before.scopes_with_leaks + 1);
    assert_eq!(after.leaks_found, before.leaks_found + 1);
}

#[cfg(not(debug_assertions))]
#[tokio::test]
async fn a_leaky_handler_logs_off_the_call_path_in_a_release_build() {
    let _serial = SERIAL.lock().await;
    let capture = Capture::new();
    let _default = tracing::subscriber::set_default(capture.clone());
    let before = live::metrics();
    let (client, server) = tokio::io::duplex(4096);
    let (handled, response) = tokio::join!(handle(server), async move {
        let mut client = Client::new(client);
        client.get("/leaky").await
        // The client hangs up here.
    });
    // Nothing has awaited since the handler returned, and this runtime has
    // one thread: the off-path verdict has not even started. The handler
    // returned while the leaked watcher was alive and its scope open, that
    // is, before the grace could elapse.
    let returned = live::metrics();
    handled.expect("no panic and no error in a release build");
    assert_eq!(response.expect("a response").status, 200);
    assert_eq!(
        returned.live_tracked_tasks,
        before.live_tracked_tasks + 1,
        "{returned:?}"
    );
    assert_eq!(returned.live_scopes, before.live_scopes + 1);
    assert_eq!(returned.scopes_ended, before.scopes_ended);

    let warning = capture
        .wait_for(is_leakfree_warning)
        .await
        .expect("leakfree's WARN event for `handle`");
    assert_eq!(warning.field("leaked"), Some("1"));
    assert_eq!(warning.field("zombies"), Some("0"));
    let report = warning.field("report").unwrap_or_default();
    assert!(report.starts_with(&headline()), "{report}");
    assert!(report.contains(&leaked_watcher_site()), "{report}");
    let group = capture
        .wait_for(|e| {
            e.target == "leakfree"
                && e.field("scope") == Some("handle")
                && e.field("count") == Some("1")
        })
        .await
        .expect("the event of the leaked group");
    let location = format!("examples/src/service.rs:{}:", spawn_line("leaky"));
    assert!(
        group
            .field("location")
            .unwrap_or_default()
            .starts_with(&location),
        "{group:?}"
    );

    // The verdict cancelled the leftover.
    let after = settled(&before, 1).await;
    assert_eq!(after.scopes_with_leaks, before.scopes_with_leaks + 1);
    assert_eq!(after.leaks_found, before.leaks_found + 1);
}

// ---------------------------------------------------------------------------
// The server, over TCP
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_server_reports_a_leaky_connection_and_keeps_serving() {
    let _serial = SERIAL.lock().await;
    // This runtime has one thread, so the server's and leakfree's events are
    // all emitted here, where the capture is installed.
    let capture = Capture::new();
    let _default = tracing::subscriber::set_default(capture.clone());
    let server = Server::start().await;
    let before = live::metrics();
    let panics_before = connection_panics();

    // The line protocol, as `nc` would speak it.
    let mut line_client = Client::connect(server.addr).await.unwrap();
    let pong = line_client.send_line("GET /ping").await.unwrap();
    assert_eq!((pong.status, pong.body.as_str()), (200, "pong\n"));
    let missing = line_client.send_line("GET /nope").await.unwrap();
    assert_eq!(missing.status, 404);
    drop(line_client);

    // A connection starts the leak and stays open.
    let mut leaky = Client::connect(server.addr).await.unwrap();
    assert_eq!(leaky.get("/leaky").await.unwrap().status, 200);

    // The live view shows the watcher, where it was spawned and its state.
    let tasks = service::get(server.addr, "/debug/tasks").await.unwrap();
    assert_eq!(tasks.status, 200);
    assert!(tasks.body.starts_with("leakfree: "), "{}", tasks.body);
    assert!(tasks.body.contains("scope `handle`"), "{}", tasks.body);
    let watcher = format!("1 x {}", leaked_watcher_site());
    assert!(tasks.body.contains(&watcher), "{}", tasks.body);
    assert!(
        tasks.body.contains("waiting: 1 waker held"),
        "{}",
        tasks.body
    );

    let metrics = service::get(server.addr, "/metrics").await.unwrap();
    assert_eq!(metrics.status, 200);
    let values = parse_metrics(&metrics.body);
    assert_eq!(values.len(), 9, "{}", metrics.body);
    assert!(values["leakfree_live_tracked_tasks"] > before.live_tracked_tasks);
    assert!(values["leakfree_live_scopes"] >= 2, "{}", metrics.body);
    assert_eq!(
        values["leakfree_scopes_with_leaks_total"],
        before.scopes_with_leaks
    );

    // The leaky connection ends: after the grace, leakfree judges it.
    drop(leaky);
    let after = wait_for_metrics(
        |m| {
            m.scopes_with_leaks > before.scopes_with_leaks
                && m.live_tracked_tasks == before.live_tracked_tasks
        },
        LIMIT,
    )
    .await
    .expect("the leaky connection's verdict, and the watcher cancelled");
    assert_eq!(after.scopes_with_leaks, before.scopes_with_leaks + 1);
    assert_eq!(after.leaks_found, before.leaks_found + 1);

    if cfg!(debug_assertions) {
        // The connection's task panicked with the report; the accept loop
        // logged it.
        let logged = capture
            .wait_for(|e| {
                e.level == Level::ERROR
                    && e.target == "leakfree_examples::service"
                    && e.field("message")
                        .is_some_and(|m| m.contains("connection handler panicked"))
            })
            .await
            .expect("the server's log of the panicked connection");
        let message = logged.field("message").unwrap_or_default();
        assert!(message.contains(&headline()), "{message}");
        assert!(message.contains(&leaked_watcher_site()), "{message}");
        assert!(
            logged
                .field("peer")
                .is_some_and(|p| p.contains("127.0.0.1"))
        );
        assert_eq!(connection_panics(), panics_before + 1);
        assert!(capture.find(&is_leakfree_warning).is_none());
    } else {
        let warning = capture
            .wait_for(is_leakfree_warning)
            .await
            .expect("leakfree's WARN event for `handle`");
        let report = warning.field("report").unwrap_or_default();
        assert!(report.starts_with(&headline()), "{report}");
        assert_eq!(connection_panics(), panics_before);
    }

    // Still serving.
    let pong = service::get(server.addr, "/ping").await.unwrap();
    assert_eq!((pong.status, pong.body.as_str()), (200, "pong\n"));
    let metrics = parse_metrics(&service::get(server.addr, "/metrics").await.unwrap().body);
    assert_eq!(
        metrics["leakfree_scopes_with_leaks_total"],
        before.scopes_with_leaks + 1
    );
    assert_eq!(
        metrics["service_connection_panics_total"],
        connection_panics()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_concurrent_connections_are_judged_each_on_its_own() {
    const CONNECTIONS: usize = 300;
    // Every third connection leaks; the others ping, or start a watcher
    // that stops with their connection (tracked tasks that end in time).
    const ROUTES: [&str; 3] = ["/leaky", "/fixed", "/ping"];
    let _serial = SERIAL.lock().await;
    let server = Server::start().await;
    let before = live::metrics();
    let panics_before = connection_panics();

    let mut clients = JoinSet::new();
    for i in 0..CONNECTIONS {
        let (addr, route) = (server.addr, ROUTES[i % ROUTES.len()]);
        clients.spawn(async move { (route, service::get(addr, route).await) });
    }
    let mut leaky = 0;
    while let Some(joined) = clients.join_next().await {
        let (route, response) = joined.expect("the client task");
        let response = response.unwrap_or_else(|e| panic!("GET {route}: {e}"));
        assert_eq!(response.status, 200, "GET {route}: {}", response.body);
        leaky += u64::from(route == "/leaky");
    }
    assert_eq!(leaky, 100);

    // Every connection's scope ends (the leaky ones after the grace), and
    // every leaked watcher is cancelled.
    let after = settled(&before, CONNECTIONS as u64).await;
    assert_eq!(after.scopes_ended, before.scopes_ended + CONNECTIONS as u64);
    // Exactly the leaky connections were found leaking, one task each; the
    // clean ones, running at the same time, never were.
    assert_eq!(after.scopes_with_leaks, before.scopes_with_leaks + leaky);
    assert_eq!(after.leaks_found, before.leaks_found + leaky);
    assert_eq!(after.zombies_found, before.zombies_found);
    assert_eq!(after.panics_unobserved, before.panics_unobserved);

    let expected_panics = if cfg!(debug_assertions) { leaky } else { 0 };
    let reaped = service::wait_until(
        || connection_panics() >= panics_before + expected_panics,
        LIMIT,
    )
    .await;
    assert!(reaped, "the server reaped {} panics", connection_panics());
    assert_eq!(connection_panics(), panics_before + expected_panics);

    let pong = service::get(server.addr, "/ping").await.unwrap();
    assert_eq!(pong.body, "pong\n");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------

#[test]
fn the_demo_shows_the_leak_the_live_view_and_the_metrics() {
    let output = Command::new(env!("CARGO_BIN_EXE_service"))
        .arg("--demo")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the service binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    assert!(stdout.contains(&format!("({build} build)")), "{stdout}");
    assert!(stdout.contains("GET /ping -> 200 pong"), "{stdout}");
    assert!(stdout.contains("scope `handle`"), "{stdout}");
    assert!(stdout.contains(&leaked_watcher_site()), "{stdout}");
    assert!(stdout.contains("pong (still serving)"), "{stdout}");
    assert!(
        stdout.contains("leakfree_scopes_with_leaks_total 1"),
        "{stdout}"
    );
    assert!(stdout.contains("leakfree_live_tracked_tasks 0"), "{stdout}");
    // The report on standard error: the panic the server logged (debug) or
    // leakfree's WARN event (release).
    assert!(stderr.contains(&headline()), "{stderr}");
    if cfg!(debug_assertions) {
        assert!(stderr.contains("connection handler panicked"), "{stderr}");
        assert!(
            stdout.contains("service_connection_panics_total 1"),
            "{stdout}"
        );
    } else {
        assert!(stderr.contains("WARN leakfree"), "{stderr}");
        assert!(
            stdout.contains("service_connection_panics_total 0"),
            "{stdout}"
        );
    }
}

#[test]
fn bad_arguments_exit_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_service"))
        .arg("--bogus")
        .output()
        .expect("run the service binary");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown argument `--bogus`"));
}
