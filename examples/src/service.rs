//! A small TCP service whose connection handler is `#[leak_checked]`: leakfree
//! at a service entrypoint, and its live view served over the wire.
//!
//! Every connection runs [`handle`], and every call of [`handle`] is a leakfree
//! scope on the server's runtime: tasks the connection starts through
//! leakfree belong to that connection alone, even with hundreds of
//! connections running at once. When the connection ends, its tasks get
//! [`HANDLER_GRACE`] to finish; survivors are leaked, and leakfree acts by the
//! build of *this* crate:
//!
//! - **debug build**: the connection task panics with the report. The
//!   accept loop catches it (tokio turns a task's panic into an error of its
//!   `JoinHandle`), logs it and counts it; the server keeps serving.
//! - **release build** (`--release`): the call returns as soon as the
//!   connection is done; the verdict is reached off the call path, logged
//!   through `tracing` (target `leakfree`, a `WARN` event with the scope's
//!   name in its `scope` field), and the leftovers are cancelled.
//!
//! The protocol is a sliver of HTTP/1.1, enough for `curl` and for a
//! line-based client (`nc`): a request line `GET /path`, with or without a
//! version and headers; the answer is an HTTP/1.1 response with a
//! `Content-Length`. Routes:
//!
//! | route | what it does |
//! |-------|--------------|
//! | `GET /ping` | answers `pong` |
//! | `GET /leaky` | starts a configuration watcher that nothing stops: the leak |
//! | `GET /fixed` | starts the same watcher, stopped when the connection ends |
//! | `GET /debug/tasks` | [`live::snapshot`] as text: live scopes and their tasks (Go's `/debug/pprof/goroutine`) |
//! | `GET /metrics` | [`live::metrics`] and the server's own counters, in Prometheus' text format |
//!
//! The watcher of `/leaky` is a receiver on a channel that is never closed:
//! the service's configuration lives in a process-wide `watch` channel, so a
//! task waiting for the next change waits as long as the process runs. It is
//! the shape of a real leak: subscribe per request to something long-lived,
//! and forget to unsubscribe.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use leakfree_runtime::live::{self, Metrics};
use leakfree_runtime::{leak_checked, spawn_named};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a connection's tasks may take to finish after the connection
/// ends; the `grace` of [`handle`]'s attribute.
pub const HANDLER_GRACE: Duration = Duration::from_millis(100);

/// The longest request or header line the server reads.
pub const MAX_LINE: usize = 8 * 1024;

/// How long the accept loop pauses after an accept error that is not about
/// one connection (out of file descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The service's configuration version. The sender lives as long as the
/// process, so a receiver's `changed()` never fails: nothing in this example
/// reloads the configuration, and a watcher waits on it forever.
static CONFIG: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::Sender::new(0));

/// Configuration changes applied by watchers (stays 0 here; it is what a
/// watcher would do).
static CONFIG_APPLIED: AtomicU64 = AtomicU64::new(0);

/// Connections accepted by [`serve`], over all servers of the process.
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// Connection tasks that panicked, over all servers of the process.
static CONNECTION_PANICS: AtomicU64 = AtomicU64::new(0);

/// How many connection tasks have panicked in this process (in a debug
/// build, each leaky connection does).
pub fn connection_panics() -> u64 {
    CONNECTION_PANICS.load(Ordering::Relaxed)
}

/// Serves connections from `listener` until `shutdown` completes, then
/// aborts the connections still open and returns.
///
/// Each connection is a task of the server's own [`JoinSet`] running
/// [`handle`]; the accept loop reaps them as they end, so a connection task
/// that panicked (a leak in a debug build) is logged with its peer (`ERROR`,
/// target `leakfree_examples::service`) and counted in
/// [`connection_panics`], and the server goes on.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let mut connections = JoinSet::new();
    let mut peers: HashMap<Id, SocketAddr> = HashMap::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(ended) = connections.join_next_with_id() => reap(ended, &mut peers),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    CONNECTIONS.fetch_add(1, Ordering::Relaxed);
                    let task = connections.spawn(handle(stream));
                    peers.insert(task.id(), peer);
                }
                Err(error) if is_per_connection(&error) => {
                    tracing::debug!(%error, "accept failed for one connection");
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    connections.shutdown().await;
}

fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// Logs how a connection ended.
fn reap(ended: Result<(Id, io::Result<()>), JoinError>, peers: &mut HashMap<Id, SocketAddr>) {
    match ended {
        Ok((id, outcome)) => {
            let peer = peers.remove(&id);
            if let Err(error) = outcome {
                tracing::debug!(?peer, %error, "connection ended with an I/O error");
            }
        }
        Err(error) => {
            let peer = peers.remove(&error.id());
            if error.is_panic() {
                CONNECTION_PANICS.fetch_add(1, Ordering::Relaxed);
                let message = panic_text(error.into_panic());
                tracing::error!(?peer, "connection handler panicked: {message}");
            }
        }
    }
}

/// The text of a panic payload (`panic!` with a message gives a `String` or
/// a `&'static str`).
pub fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_owned(),
            Err(_) => "(a panic payload that is not text)".to_owned(),
        },
    }
}

/// Serves one connection: requests one after another until the client
/// closes it (or asks to close it).
///
/// A leakfree scope named `handle`: tasks the connection starts must be gone
/// [`HANDLER_GRACE`] after it ends. In a debug build a survivor makes this
/// call panic with the report; in a release build the call returns at once
/// and the report is logged off the call path.
#[leak_checked(grace = "100ms")]
pub async fn handle<S>(stream: S) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stream = BufReader::new(stream);
    // Cancelled when this call returns, by any path: the stop signal of the
    // tasks this connection starts and owns.
    let connection_done = CancellationToken::new();
    let _stop_on_return = connection_done.clone().drop_guard();
    let mut line = String::new();
    loop {
        let Some(request_line) = read_line(&mut stream, &mut line).await? else {
            return Ok(());
        };
        let request = match Request::parse(request_line) {
            Some(request) => request,
            None if request_line.is_empty() => continue,
            None => {
                Reply::text(400, "Bad Request", "expected `GET /path`\n")
                    .write_to(&mut stream)
                    .await?;
                return Ok(());
            }
        };
        let mut close = request.close_after;
        if request.has_headers {
            while let Some(header) = read_line(&mut stream, &mut line).await? {
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.trim().eq_ignore_ascii_case("connection") {
                        close = value.trim().eq_ignore_ascii_case("close");
                    }
                }
            }
        }
        let response = if request.method == "GET" {
            route(&request.path, &connection_done)
        } else {
            Reply::text(405, "Method Not Allowed", "only GET is served\n")
        };
        response.write_to(&mut stream).await?;
        if close {
            return Ok(());
        }
    }
}

/// Reads one line (without its line ending) into `buffer`; `None` at the
/// end of the stream. A line longer than [`MAX_LINE`] is an error.
async fn read_line<'a, R>(reader: &mut R, buffer: &'a mut String) -> io::Result<Option<&'a str>>
where
    R: AsyncBufReadExt + Unpin,
{
    buffer.clear();
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX);
    let read = reader.take(limit).read_line(buffer).await?;
    if read == 0 {
        return Ok(None);
    }
    if !buffer.ends_with('\n') && read >= MAX_LINE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "request line too long",
        ));
    }
    Ok(Some(buffer.trim_end_matches(['\r', '\n'])))
}

/// A parsed request line.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    /// `HTTP/1.x` given: headers follow, up to an empty line.
    has_headers: bool,
    /// HTTP/1.0 closes after one response unless asked otherwise.
    close_after: bool,
}

impl Request {
    fn parse(line: &str) -> Option<Request> {
        let mut parts = line.split_whitespace();
        let method = parts.next()?.to_ascii_uppercase();
        let path = parts.next()?;
        let version = parts.next();
        if parts.next().is_some() || !path.starts_with('/') {
            return None;
        }
        // Query strings are not used by any route.
        let path = path.split('?').next().unwrap_or(path).to_owned();
        Some(Request {
            method,
            path,
            has_headers: version.is_some(),
            close_after: version == Some("HTTP/1.0"),
        })
    }
}

/// What the server answers (the client reads it as a [`Response`]).
#[derive(Debug)]
struct Reply {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn text(status: u16, reason: &'static str, body: impl Into<String>) -> Reply {
        Reply {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    async fn write_to<W: AsyncWrite + Unpin>(&self, writer: &mut W) -> io::Result<()> {
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        writer.write_all(head.as_bytes()).await?;
        writer.write_all(self.body.as_bytes()).await?;
        writer.flush().await
    }
}

fn route(path: &str, connection_done: &CancellationToken) -> Reply {
    match path {
        "/ping" => Reply::text(200, "OK", "pong\n"),
        "/leaky" => {
            start_config_watcher();
            Reply::text(
                200,
                "OK",
                "started a config watcher that nothing stops: it outlives this connection\n",
            )
        }
        "/fixed" => {
            start_config_watcher_until(connection_done.clone());
            Reply::text(
                200,
                "OK",
                "started a config watcher that stops when this connection ends\n",
            )
        }
        "/debug/tasks" => Reply::text(200, "OK", live::snapshot().to_string()),
        "/metrics" => Reply {
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            ..Reply::text(200, "OK", prometheus_text())
        },
        _ => Reply::text(
            404,
            "Not Found",
            "routes: /ping /leaky /fixed /debug/tasks /metrics\n",
        ),
    }
}

/// The leak: a watcher of the configuration that nothing stops.
fn start_config_watcher() {
    let changes = CONFIG.subscribe();
    spawn_named("config-watcher", watch_config(changes)); // spawn-site: leaky
}

/// The fix: the same watcher, also watching the connection's stop signal.
/// Nothing awaits it: it ends when the connection's call returns, and
/// leakfree's settle step waits (woken by its end) for that.
fn start_config_watcher_until(stop: CancellationToken) {
    let changes = CONFIG.subscribe();
    spawn_named("config-watcher", watch_config_until(changes, stop)); // spawn-site: fixed
}

/// Applies every configuration change. The configuration's sender lives as
/// long as the process, so `changed()` never fails and this never returns.
async fn watch_config(mut changes: watch::Receiver<u64>) {
    while changes.changed().await.is_ok() {
        apply_config(*changes.borrow_and_update());
    }
}

/// [`watch_config`] that returns when `stop` is cancelled.
async fn watch_config_until(mut changes: watch::Receiver<u64>, stop: CancellationToken) {
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                apply_config(*changes.borrow_and_update());
            }
        }
    }
}

fn apply_config(_version: u64) {
    CONFIG_APPLIED.fetch_add(1, Ordering::Relaxed);
}

/// leakfree's counters and the server's own, in Prometheus' text exposition
/// format (what `/metrics` serves).
pub fn prometheus_text() -> String {
    let m = live::metrics();
    let rows: [(&str, &str, &str, u64); 9] = [
        (
            "leakfree_live_scopes",
            "gauge",
            "leakfree scopes running now.",
            m.live_scopes,
        ),
        (
            "leakfree_live_tracked_tasks",
            "gauge",
            "Tracked tasks alive now, over all live scopes.",
            m.live_tracked_tasks,
        ),
        (
            "leakfree_scopes_ended_total",
            "counter",
            "leakfree scopes that have ended.",
            m.scopes_ended,
        ),
        (
            "leakfree_scopes_with_leaks_total",
            "counter",
            "Scopes that ended with leaked, zombie or unobserved-panic tasks.",
            m.scopes_with_leaks,
        ),
        (
            "leakfree_leaks_found_total",
            "counter",
            "Leaked tasks found.",
            m.leaks_found,
        ),
        (
            "leakfree_zombies_found_total",
            "counter",
            "Tasks that did not go when aborted.",
            m.zombies_found,
        ),
        (
            "leakfree_panics_unobserved_total",
            "counter",
            "Tracked task panics that no JoinHandle observed.",
            m.panics_unobserved,
        ),
        (
            "service_connections_total",
            "counter",
            "Connections accepted.",
            CONNECTIONS.load(Ordering::Relaxed),
        ),
        (
            "service_connection_panics_total",
            "counter",
            "Connection tasks that panicked (in a debug build, each leak).",
            connection_panics(),
        ),
    ];
    let mut text = String::new();
    for (name, kind, help, value) in rows {
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} {kind}");
        let _ = writeln!(text, "{name} {value}");
    }
    text
}

/// Polls [`live::metrics`] until `condition` holds or `limit` has passed;
/// `Ok` with the metrics that satisfied it, `Err` with the last ones read.
///
/// leakfree gives no event for "a scope ended" to code outside the scope,
/// so this waits for the condition by polling (see [`wait_until`]).
pub async fn wait_for_metrics(
    condition: impl Fn(&Metrics) -> bool,
    limit: Duration,
) -> Result<Metrics, Metrics> {
    let mut last = live::metrics();
    let met = wait_until(
        || {
            last = live::metrics();
            condition(&last)
        },
        limit,
    )
    .await;
    if met { Ok(last) } else { Err(last) }
}

/// Checks `condition` until it holds (`true`) or `limit` has passed
/// (`false`): yielding first, then backing off up to a few milliseconds
/// between checks. A wait for a condition, never a fixed sleep. Needs tokio's
/// time driver.
pub async fn wait_until(mut condition: impl FnMut() -> bool, limit: Duration) -> bool {
    const YIELDS: u32 = 32;
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_micros(100);
    let mut attempt = 0;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        if attempt < YIELDS {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(5));
        }
        attempt += 1;
    }
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// A response as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// A keep-alive client for the service, over any byte stream (a TCP
/// connection, or one end of `tokio::io::duplex` for calling [`handle`]
/// directly).
#[derive(Debug)]
pub struct Client<S> {
    stream: BufReader<S>,
    line: String,
}

impl Client<TcpStream> {
    /// Connects to a server.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<Client<TcpStream>> {
        Ok(Client::new(TcpStream::connect(addr).await?))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// A client over `stream`.
    pub fn new(stream: S) -> Client<S> {
        Client {
            stream: BufReader::new(stream),
            line: String::new(),
        }
    }

    /// Sends `GET path` (as HTTP/1.1, keeping the connection open) and reads
    /// the response.
    pub async fn get(&mut self, path: &str) -> io::Result<Response> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: leakfree-examples\r\n\r\n");
        self.stream.write_all(request.as_bytes()).await?;
        self.stream.flush().await?;
        self.read_response().await
    }

    /// Sends `line` and a newline as they are (the line protocol: `GET
    /// /ping`), and reads the response.
    pub async fn send_line(&mut self, line: &str) -> io::Result<Response> {
        self.stream
            .write_all(format!("{line}\n").as_bytes())
            .await?;
        self.stream.flush().await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let status_line = read_line(&mut self.stream, &mut self.line)
            .await?
            .ok_or_else(|| invalid("connection closed before a response"))?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid("bad status line"))?;
        let mut length = None;
        while let Some(header) = read_line(&mut self.stream, &mut self.line).await? {
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.trim().eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let length = length.ok_or_else(|| invalid("no Content-Length"))?;
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        let body = String::from_utf8(body).map_err(|_| invalid("body is not UTF-8"))?;
        Ok(Response { status, body })
    }
}

/// Connects to `addr`, sends `GET path`, and returns the response; the
/// connection is closed when this returns.
pub async fn get(addr: impl ToSocketAddrs, path: &str) -> io::Result<Response> {
    Client::connect(addr).await?.get(path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_parse() {
        let http = Request::parse("GET /ping HTTP/1.1").unwrap();
        assert_eq!((http.method.as_str(), http.path.as_str()), ("GET", "/ping"));
        assert!(http.has_headers && !http.close_after);
        let bare = Request::parse("get /metrics?x=1").unwrap();
        assert_eq!(
            (bare.method.as_str(), bare.path.as_str()),
            ("GET", "/metrics")
        );
        assert!(!bare.has_headers);
        assert!(Request::parse("GET /ping HTTP/1.0").unwrap().close_after);
        assert!(Request::parse("").is_none());
        assert!(Request::parse("GET").is_none());
        assert!(Request::parse("GET ping").is_none());
        assert!(Request::parse("GET /a HTTP/1.1 extra").is_none());
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let text = prometheus_text();
        for line in text.lines() {
            let ok = line.starts_with("# HELP ")
                || line.starts_with("# TYPE ")
                || line
                    .split_once(' ')
                    .is_some_and(|(_, value)| value.parse::<u64>().is_ok());
            assert!(ok, "not exposition format: {line}");
        }
        assert_eq!(text.matches("# TYPE ").count(), 9);
        assert!(text.contains("# TYPE leakfree_scopes_with_leaks_total counter\n"));
        assert!(text.contains("# TYPE leakfree_live_tracked_tasks gauge\n"));
    }
}
