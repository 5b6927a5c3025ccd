//! The service example, judged by leakfree's tower layer over real HTTP on
//! loopback: a leaky request panics with the report in a debug build (the
//! server logs it and answers 500) and is logged off the request path in a
//! release build; the server keeps serving; the live view and the metrics
//! show it (a scrape of a fresh `service` process counts every verdict
//! exactly); and 300 concurrent requests are judged each on its own.
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
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use leakfree_examples::service::{self, Client, HANDLER_GRACE, request_panics, wait_for_metrics};
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

/// The first line of the report on a leaky request.
fn headline(scope: &str, grace: Duration) -> String {
    format!(
        "leakfree: 1 task leaked from `{scope}` (grace {}ms)",
        grace.as_millis()
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

/// leakfree's off-path verdict on a scope called `scope`.
fn is_leakfree_warning(event: &Captured, scope: &str) -> bool {
    event.level == Level::WARN
        && event.target == "leakfree"
        && event.field("scope") == Some(scope)
        && event.field("report").is_some()
}

// ---------------------------------------------------------------------------
// A server on loopback
// ---------------------------------------------------------------------------

struct Server {
    client: Client,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    /// The example's service ([`service::app`]) on an ephemeral port.
    async fn start() -> Server {
        Server::start_app(service::app()).await
    }

    async fn start_app(app: Router) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(service::serve_app(listener, app, async {
            let _ = stopped.await;
        }));
        Server {
            client: Client::new(addr),
            stop,
            task,
        }
    }

    async fn get(&self, path: &str) -> service::Response {
        self.client
            .get(path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn stop(self) {
        // Idle keep-alive connections close with the client's pool.
        drop(self.client);
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

/// Prometheus text as `series -> value`, a series being the name and its
/// labels as rendered (`leakfree_leaked_tasks_by_site_total{site="…"}`).
fn parse_metrics(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().expect("a counter or gauge");
            assert_eq!(value.fract(), 0.0, "a count: {line}");
            (series.to_owned(), value as u64)
        })
        .collect()
}

/// The series of the by-site leak counter for the leaky handler's spawn
/// site (`file:line`, no column).
fn leaky_site_series() -> String {
    format!(
        "leakfree_leaked_tasks_by_site_total{{site=\"examples/src/service.rs:{}\"}}",
        spawn_line("leaky")
    )
}

/// The report in a debug build's `500` answer to a leaky request.
fn report_in_500(response: &service::Response) -> &str {
    assert_eq!(response.status, 500, "{}", response.body);
    response
        .body
        .strip_prefix("request handler panicked: ")
        .unwrap_or_else(|| panic!("{}", response.body))
        .trim_end()
}

// ---------------------------------------------------------------------------
// One request at a time
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_fixed_request_is_clean() {
    let _serial = SERIAL.lock().await;
    let server = Server::start().await;
    let before = live::metrics();
    let response = server.get("/fixed").await;
    assert_eq!(response.status, 200);
    assert!(response.body.contains("stops when this request ends"));
    let after = settled(&before, 1).await;
    assert_eq!(after.scopes_ended, before.scopes_ended + 1);
    assert_eq!(after.scopes_with_leaks, before.scopes_with_leaks);
    assert_eq!(after.leaks_found, before.leaks_found);
    server.stop().await;
}

#[cfg(debug_assertions)]
#[tokio::test]
async fn a_leaky_request_panics_with_the_report_in_a_debug_build() {
    let _serial = SERIAL.lock().await;
    let server = Server::start().await;
    let before = live::metrics();
    // The client asks for the leak and reads the answer: after the grace,
    // the response future panicked with the report, and the outer
    // middleware answered 500 with it.
    let response = server.get("/leaky").await;
    let message = report_in_500(&response);
    assert!(
        message.starts_with(&headline("GET /leaky", HANDLER_GRACE)),
        "{message}"
    );
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
    server.stop().await;
}

#[cfg(not(debug_assertions))]
#[tokio::test]
async fn a_leaky_request_logs_off_the_request_path_in_a_release_build() {
    // A grace far above the time the answer takes to reach the client, so
    // that "answered before the verdict" does not depend on the machine's
    // speed; the example's own grace is checked by the server test.
    const LONG_GRACE: Duration = Duration::from_secs(2);
    let _serial = SERIAL.lock().await;
    let capture = Capture::new();
    let _default = tracing::subscriber::set_default(capture.clone());
    let layer = leakfree_runtime::tower::LeakCheckLayer::builder()
        .grace(LONG_GRACE)
        .build()
        .unwrap();
    let server = Server::start_app(service::app_with(layer)).await;
    let before = live::metrics();
    let response = server.get("/leaky").await;
    // The answer came while the leaked watcher was alive and its scope
    // open: the verdict had not been reached.
    let answered = live::metrics();
    assert_eq!(response.status, 200, "no panic in a release build");
    assert_eq!(
        answered.live_tracked_tasks,
        before.live_tracked_tasks + 1,
        "{answered:?}"
    );
    assert_eq!(answered.live_scopes, before.live_scopes + 1);
    assert_eq!(answered.scopes_ended, before.scopes_ended);
    assert!(
        capture
            .find(&|e| is_leakfree_warning(e, "GET /leaky"))
            .is_none()
    );

    let warning = capture
        .wait_for(|e| is_leakfree_warning(e, "GET /leaky"))
        .await
        .expect("leakfree's WARN event for `GET /leaky`");
    assert_eq!(warning.field("leaked"), Some("1"));
    assert_eq!(warning.field("zombies"), Some("0"));
    let report = warning.field("report").unwrap_or_default();
    assert!(
        report.starts_with(&headline("GET /leaky", LONG_GRACE)),
        "{report}"
    );
    assert!(report.contains(&leaked_watcher_site()), "{report}");
    let group = capture
        .wait_for(|e| {
            e.target == "leakfree"
                && e.field("scope") == Some("GET /leaky")
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
    server.stop().await;
}

#[tokio::test]
async fn the_server_reports_a_leaky_request_and_keeps_serving() {
    let _serial = SERIAL.lock().await;
    // This runtime has one thread, so the server's and leakfree's events are
    // all emitted here, where the capture is installed.
    let capture = Capture::new();
    let _default = tracing::subscriber::set_default(capture.clone());
    let server = Server::start().await;
    let before = live::metrics();
    let panics_before = request_panics();

    let pong = server.get("/ping").await;
    assert_eq!((pong.status, pong.body.as_str()), (200, "pong\n"));
    let missing = server.get("/nope").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("/debug/tasks"), "{}", missing.body);

    // A request starts the leak and stays open while its body is sent.
    let leaky = server.client.post_held("/leaky").unwrap();
    wait_for_metrics(
        |m| m.live_tracked_tasks == before.live_tracked_tasks + 1,
        LIMIT,
    )
    .await
    .expect("the /leaky handler starts its watcher");

    // The live view shows the watcher, where it was spawned and its state.
    let tasks = server.get("/debug/tasks").await;
    assert_eq!(tasks.status, 200);
    assert!(tasks.body.starts_with("leakfree: "), "{}", tasks.body);
    assert!(tasks.body.contains("scope `POST /leaky`"), "{}", tasks.body);
    assert!(
        tasks.body.contains("scope `GET /debug/tasks`"),
        "{}",
        tasks.body
    );
    let watcher = format!("1 x {}", leaked_watcher_site());
    assert!(tasks.body.contains(&watcher), "{}", tasks.body);
    assert!(
        tasks.body.contains("waiting: 1 waker held"),
        "{}",
        tasks.body
    );

    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let values = parse_metrics(&metrics.body);
    for name in [
        "leakfree_scopes_ended_total",
        "leakfree_scopes_with_leaks_total",
        "leakfree_leaked_tasks_total",
        "leakfree_zombie_tasks_total",
        "leakfree_unobserved_panics_total",
        "leakfree_live_scopes",
        "leakfree_live_tracked_tasks",
        "service_requests_total",
        "service_request_panics_total",
    ] {
        assert!(values.contains_key(name), "no {name}:\n{}", metrics.body);
    }
    assert!(values["leakfree_live_tracked_tasks"] > before.live_tracked_tasks);
    // The held /leaky request and this one.
    assert!(values["leakfree_live_scopes"] >= 2, "{}", metrics.body);
    let leaks_before = values["leakfree_leaked_tasks_total"];
    let site_before = values.get(&leaky_site_series()).copied().unwrap_or(0);

    // The leaky request ends: after the grace, leakfree judges it.
    let answered = leaky.finish().await.expect("an answer to /leaky");
    let after = wait_for_metrics(
        |m| {
            m.scopes_with_leaks > before.scopes_with_leaks
                && m.live_tracked_tasks == before.live_tracked_tasks
        },
        LIMIT,
    )
    .await
    .expect("the leaky request's verdict, and the watcher cancelled");
    assert_eq!(after.scopes_with_leaks, before.scopes_with_leaks + 1);
    assert_eq!(after.leaks_found, before.leaks_found + 1);

    let headline = headline("POST /leaky", HANDLER_GRACE);
    if cfg!(debug_assertions) {
        // The response future panicked with the report; the outer
        // middleware logged it and answered 500 with it.
        let report = report_in_500(&answered);
        assert!(report.starts_with(&headline), "{report}");
        let logged = capture
            .wait_for(|e| {
                e.level == Level::ERROR
                    && e.target == "leakfree_examples::service"
                    && e.field("message")
                        .is_some_and(|m| m.contains("request handler panicked"))
            })
            .await
            .expect("the server's log of the panicked request");
        let message = logged.field("message").unwrap_or_default();
        assert!(message.contains(&headline), "{message}");
        assert!(message.contains(&leaked_watcher_site()), "{message}");
        assert!(
            logged
                .field("peer")
                .is_some_and(|p| p.contains("127.0.0.1")),
            "{logged:?}"
        );
        assert_eq!(logged.field("route"), Some("POST /leaky"));
        assert_eq!(request_panics(), panics_before + 1);
        assert!(
            capture
                .find(&|e| is_leakfree_warning(e, "POST /leaky"))
                .is_none()
        );
    } else {
        assert_eq!(answered.status, 200, "{}", answered.body);
        let warning = capture
            .wait_for(|e| is_leakfree_warning(e, "POST /leaky"))
            .await
            .expect("leakfree's WARN event for `POST /leaky`");
        let report = warning.field("report").unwrap_or_default();
        assert!(report.starts_with(&headline), "{report}");
        assert!(report.contains(&leaked_watcher_site()), "{report}");
        assert_eq!(request_panics(), panics_before);
    }

    // Still serving.
    let pong = server.get("/ping").await;
    assert_eq!((pong.status, pong.body.as_str()), (200, "pong\n"));
    // The recorder is process-wide: compared with the scrape above.
    let metrics = parse_metrics(&server.get("/metrics").await.body);
    assert_eq!(metrics["leakfree_leaked_tasks_total"], leaks_before + 1);
    assert_eq!(metrics[&leaky_site_series()], site_before + 1);
    assert_eq!(metrics["service_request_panics_total"], request_panics());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_concurrent_requests_are_judged_each_on_its_own() {
    const REQUESTS: usize = 300;
    // Every third request leaks; the others ping, or start a watcher that
    // stops with their request (tracked tasks that end in time).
    const ROUTES: [&str; 3] = ["/leaky", "/fixed", "/ping"];
    let _serial = SERIAL.lock().await;
    let server = Server::start().await;
    let before = live::metrics();
    let panics_before = request_panics();

    let mut clients = JoinSet::new();
    for i in 0..REQUESTS {
        let (client, route) = (server.client.clone(), ROUTES[i % ROUTES.len()]);
        clients.spawn(async move { (route, client.get(route).await) });
    }
    let mut leaky = 0;
    while let Some(joined) = clients.join_next().await {
        let (route, response) = joined.expect("the client task");
        let response = response.unwrap_or_else(|e| panic!("GET {route}: {e}"));
        if route == "/leaky" && cfg!(debug_assertions) {
            let report = report_in_500(&response);
            assert!(
                report.starts_with(&headline("GET /leaky", HANDLER_GRACE)),
                "{report}"
            );
        } else {
            assert_eq!(response.status, 200, "GET {route}: {}", response.body);
        }
        leaky += u64::from(route == "/leaky");
    }
    assert_eq!(leaky, 100);

    // Every request's scope ends (the leaky ones after the grace), and
    // every leaked watcher is cancelled.
    let after = settled(&before, REQUESTS as u64).await;
    assert_eq!(after.scopes_ended, before.scopes_ended + REQUESTS as u64);
    // Exactly the leaky requests were found leaking, one task each; the
    // clean ones, running at the same time, never were.
    assert_eq!(after.scopes_with_leaks, before.scopes_with_leaks + leaky);
    assert_eq!(after.leaks_found, before.leaks_found + leaky);
    assert_eq!(after.zombies_found, before.zombies_found);
    assert_eq!(after.panics_unobserved, before.panics_unobserved);

    // The panics were caught before each answer went out.
    let expected_panics = if cfg!(debug_assertions) { leaky } else { 0 };
    assert_eq!(request_panics(), panics_before + expected_panics);

    let pong = server.get("/ping").await;
    assert_eq!(pong.body, "pong\n");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// `/metrics` of a fresh process: exact numbers
// ---------------------------------------------------------------------------

/// The `service` binary serving on an ephemeral loopback port; killed (and
/// reaped) when dropped. A process of its own, so its recorder has counted
/// nothing but the requests of the test.
struct ServiceProcess {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl ServiceProcess {
    fn start() -> ServiceProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_service"))
            .args(["--addr", "127.0.0.1:0"])
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the service binary");
        let stderr = child.stderr.take().expect("piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, listening) = std::sync::mpsc::channel::<SocketAddr>();
        let keep = Arc::clone(&log);
        // Reads the log to its end (so the pipe never fills), handing over
        // the address from `service: listening on ADDR (…)`.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("service: listening on ") {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    if let Ok(addr) = addr.parse() {
                        let _ = found.send(addr);
                    }
                }
                let mut log = keep.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = listening.recv_timeout(LIMIT);
        let mut process = ServiceProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: log,
        };
        match addr {
            Ok(addr) => process.addr = addr,
            Err(_) => panic!(
                "the service did not say where it listens:\n{}",
                process.log()
            ),
        }
        process
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The line of `scrape` for `series` (name and labels), which must be there.
fn scrape_line<'a>(scrape: &'a str, series: &str) -> &'a str {
    scrape
        .lines()
        .find(|line| line.rsplit_once(' ').is_some_and(|(s, _)| s == series))
        .unwrap_or_else(|| panic!("no `{series}` in the scrape:\n{scrape}"))
}

#[tokio::test]
async fn a_scrape_of_a_fresh_service_counts_every_verdict_exactly() {
    const CLEAN: [&str; 4] = ["/fixed", "/ping", "/fixed", "/fixed"];
    let service = ServiceProcess::start();
    let client = Client::new(service.addr);
    let mut made = 0_u64;
    for path in CLEAN {
        let response = client.get(path).await.unwrap();
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        made += 1;
    }
    let leaky = client.get("/leaky").await.unwrap();
    let expected_status = if cfg!(debug_assertions) { 500 } else { 200 };
    assert_eq!(leaky.status, expected_status, "{}", leaky.body);
    made += 1;

    // Scrape until the leaky request's verdict is in and its watcher gone
    // (a release build reaches it off the request path, after the grace).
    // Every scrape is a request too, whose scope ends before its answer
    // goes out: a scrape sees every earlier request's scope ended, and its
    // own live.
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut pause = Duration::from_millis(1);
    let (scrape, before_it) = loop {
        let response = client.get("/metrics").await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(
            response.content_type.as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let before_it = made;
        made += 1;
        let values = parse_metrics(&response.body);
        let value = |series: &str| values.get(series).copied();
        if value("leakfree_leaked_tasks_total") == Some(1)
            && value("leakfree_live_tracked_tasks") == Some(0)
            && value("leakfree_live_scopes") == Some(1)
        {
            break (response.body, before_it);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no verdict on the leaky request in the scrape:\n{}\nservice log:\n{}",
            response.body,
            service.log()
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    };

    let panics = u64::from(cfg!(debug_assertions));
    let expected = [
        ("leakfree_scopes_ended_total", before_it),
        ("leakfree_scopes_with_leaks_total", 1),
        ("leakfree_leaked_tasks_total", 1),
        (leaky_site_series().as_str(), 1),
        ("leakfree_zombie_tasks_total", 0),
        ("leakfree_unobserved_panics_total", 0),
        ("leakfree_live_scopes", 1),
        ("leakfree_live_tracked_tasks", 0),
        ("service_requests_total", before_it + 1),
        ("service_request_panics_total", panics),
    ]
    .map(|(series, value)| (series.to_owned(), value));
    for (series, value) in &expected {
        assert_eq!(
            scrape_line(&scrape, series),
            format!("{series} {value}"),
            "{scrape}"
        );
    }
    // One leaking site: the by-site counter has no other series.
    let sites = scrape
        .lines()
        .filter(|line| line.starts_with("leakfree_leaked_tasks_by_site_total{"))
        .count();
    assert_eq!(sites, 1, "{scrape}");
    for (name, kind) in [
        ("leakfree_scopes_ended_total", "counter"),
        ("leakfree_leaked_tasks_by_site_total", "counter"),
        ("leakfree_live_tracked_tasks", "gauge"),
        ("service_requests_total", "counter"),
    ] {
        assert!(
            scrape.contains(&format!("# TYPE {name} {kind}\n")),
            "{scrape}"
        );
        assert!(scrape.contains(&format!("# HELP {name} ")), "{scrape}");
    }
    drop(client);
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
    assert!(stdout.contains("scope `POST /leaky`"), "{stdout}");
    assert!(stdout.contains(&leaked_watcher_site()), "{stdout}");
    assert!(stdout.contains("pong (still serving)"), "{stdout}");
    assert!(
        stdout.contains("leakfree_scopes_with_leaks_total 1"),
        "{stdout}"
    );
    assert!(stdout.contains("leakfree_live_tracked_tasks 0"), "{stdout}");
    // The report on standard error: the panic the server logged (debug) or
    // leakfree's WARN event (release).
    let headline = headline("POST /leaky", HANDLER_GRACE);
    assert!(stderr.contains(&headline), "{stderr}");
    if cfg!(debug_assertions) {
        assert!(
            stderr.contains("ERROR leakfree_examples::service: request handler panicked"),
            "{stderr}"
        );
        assert!(
            stdout.contains("-> 500 request handler panicked"),
            "{stdout}"
        );
        assert!(
            stdout.contains("service_request_panics_total 1"),
            "{stdout}"
        );
    } else {
        assert!(stderr.contains("WARN leakfree"), "{stderr}");
        assert!(
            stdout.contains("POST /leaky (body sent) -> 200"),
            "{stdout}"
        );
        assert!(
            stdout.contains("service_request_panics_total 0"),
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
