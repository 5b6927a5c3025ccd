//! A small HTTP service on axum with leakfree's tower layer on its router:
//! every request is a leakfree scope, and leakfree's live view and counters
//! are served over the wire.
//!
//! [`app`] is the router with [`leak_check_layer`] on it. Every request runs
//! in a scope of its own, named by its method and path (`GET /leaky`), from
//! the moment the router calls the route until the response future ends or
//! is dropped (a client that hangs up mid-request ends the scope too):
//! tasks the request starts through leakfree belong to that request alone,
//! even with hundreds running at once. When the request is done, its tasks
//! get [`HANDLER_GRACE`] to finish; survivors are leaked, and leakfree acts
//! by the build of *this* crate, as `#[leak_checked]` does for a service:
//!
//! - **debug build**: the response future panics with the report, after the
//!   grace. The outermost middleware ([`app_with`]) catches the panic, logs
//!   it (`ERROR`, target `leakfree_examples::service`, with the peer), counts
//!   it, and answers `500` with the report; the server keeps serving.
//! - **release build** (`--release`): the response goes out at once; the
//!   verdict is reached off the request path and logged through `tracing`
//!   (target `leakfree`, a `WARN` event with the scope's name in its `scope`
//!   field), and the leftovers are cancelled.
//!
//! (The layer's own default is the release behaviour in every build; this
//! example picks the build-dependent one to show both.)
//!
//! | route | what it does |
//! |-------|--------------|
//! | `GET /ping` | answers `pong` |
//! | `GET`/`POST /leaky` | starts a configuration watcher that nothing stops (the leak), reads the request body, answers |
//! | `GET`/`POST /fixed` | starts the same watcher, stopped when the request ends |
//! | `GET /debug/tasks` | [`live::snapshot`] as text: live scopes and their tasks (Go's `/debug/pprof/goroutine`) |
//! | `GET /metrics` | leakfree's counters and gauges and the server's own counters, through the `metrics` facade, in Prometheus' text format ([`prometheus_text`]) |
//!
//! `/leaky` and `/fixed` read the request body before answering, so a client
//! that streams a body keeps the request, and its scope, open until the body
//! ends ([`Client::post_held`]): that is how the demo and the tests look at
//! a live leak in `/debug/tasks`.
//!
//! The watcher of `/leaky` is a receiver on a channel that is never closed:
//! the service's configuration lives in a process-wide `watch` channel, so a
//! task waiting for the next change waits as long as the process runs. It is
//! the shape of a real leak: subscribe per request to something long-lived,
//! and forget to unsubscribe.
//!
//! # Metrics
//! `/metrics` is what a real service would serve: leakfree's `metrics`
//! feature publishes its counters (`leakfree_scopes_ended_total`,
//! `leakfree_leaked_tasks_total`, `leakfree_leaked_tasks_by_site_total{site}`,
//! …) to the `metrics` facade when each scope's verdict is reached; the
//! service's own counters ([`REQUESTS_TOTAL`], [`REQUEST_PANICS_TOTAL`]) go
//! through the same facade; a `metrics-exporter-prometheus` recorder,
//! installed once per process by [`install_metrics`] (which [`router`]
//! calls, before any request's scope ends), renders them. Each scrape first
//! calls [`leakfree_runtime::metrics::publish_gauges`] so that the gauges
//! `leakfree_live_scopes` and `leakfree_live_tracked_tasks` are current.
//! `examples/alerts/leakfree.rules.yml` holds alerting rules for them.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing;
use futures_util::FutureExt as _;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use leakfree_runtime::Policy;
use leakfree_runtime::live::{self, Metrics};
use leakfree_runtime::spawn_named;
use leakfree_runtime::tower::{LeakCheckLayer, NameRequest};
use metrics::{Unit, counter, describe_counter};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a request's tasks may take to finish after its response future
/// ends; the grace of [`leak_check_layer`].
pub const HANDLER_GRACE: Duration = Duration::from_millis(100);

/// The largest request body `/leaky` and `/fixed` read.
pub const MAX_BODY: usize = 64 * 1024;

/// The service's configuration version. The sender lives as long as the
/// process, so a receiver's `changed()` never fails: nothing in this example
/// reloads the configuration, and a watcher waits on it forever.
static CONFIG: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::Sender::new(0));

/// Configuration changes applied by watchers (stays 0 here; it is what a
/// watcher would do).
static CONFIG_APPLIED: AtomicU64 = AtomicU64::new(0);

/// Counter: requests that reached the router, over all servers of the
/// process (the scrape being answered included).
pub const REQUESTS_TOTAL: &str = "service_requests_total";

/// Counter: requests whose handling panicked, over all servers of the
/// process (in a debug build, each leak).
pub const REQUEST_PANICS_TOTAL: &str = "service_request_panics_total";

/// [`REQUEST_PANICS_TOTAL`] as a plain value, for the tests and the demo.
static REQUEST_PANICS: AtomicU64 = AtomicU64::new(0);

/// How many requests have panicked in this process (in a debug build, each
/// leaky request does): what `/metrics` says as
/// `service_request_panics_total`.
pub fn request_panics() -> u64 {
    REQUEST_PANICS.load(Ordering::Relaxed)
}

/// The recorder's handle, once it is installed.
static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs a Prometheus recorder as the process's `metrics` recorder, the
/// first time it is called, and hands back its handle (what `/metrics`
/// renders). Later calls hand back the same handle.
///
/// Call it at start-up: leakfree counts into the facade only the verdicts
/// reached while a recorder is installed. [`router`] calls it. If another
/// recorder was installed first, this logs a warning and the handle renders
/// nothing.
pub fn install_metrics() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            tracing::warn!(%error, "another metrics recorder is installed; /metrics stays empty");
        }
        // leakfree describes its metrics the first time it publishes; this
        // does it now, in case a scope ended before the recorder was here.
        leakfree_runtime::metrics::describe();
        describe_counter!(
            REQUESTS_TOTAL,
            Unit::Count,
            "Requests that reached the router."
        );
        describe_counter!(
            REQUEST_PANICS_TOTAL,
            Unit::Count,
            "Requests whose handling panicked (in a debug build, each leak)."
        );
        counter!(REQUESTS_TOTAL).increment(0);
        counter!(REQUEST_PANICS_TOTAL).increment(0);
        handle
    })
}

/// The example's leak check: a scope per request named by method and path,
/// grace [`HANDLER_GRACE`]; in a debug build a leak panics the response
/// future after the grace, in a release build the verdict is reached off
/// the request path and logged.
pub fn leak_check_layer() -> LeakCheckLayer {
    let debug = cfg!(debug_assertions);
    let policy = if debug { Policy::Panic } else { Policy::Log };
    LeakCheckLayer::builder()
        .grace(HANDLER_GRACE)
        .policy(policy)
        .detach_verdict(!debug)
        .build()
        .expect("no globs, nothing to reject")
}

/// The routes, without any middleware; installs the metrics recorder
/// ([`install_metrics`]) if it is not yet.
pub fn router() -> Router {
    install_metrics();
    Router::new()
        .route("/ping", routing::get(ping))
        .route("/leaky", routing::get(leaky).post(leaky))
        .route("/fixed", routing::get(fixed).post(fixed))
        .route("/debug/tasks", routing::get(debug_tasks))
        .route("/metrics", routing::get(metrics))
        .fallback(not_found)
}

/// The service: [`router`] with [`leak_check_layer`] on it, inside
/// [`app_with`]'s panic catcher.
pub fn app() -> Router {
    app_with(leak_check_layer())
}

/// [`router`] with `layer` on every route, and outside it a middleware that
/// counts requests and turns a panic (a leak, in a debug build) into a
/// logged `500` carrying the panic's message.
pub fn app_with<N>(layer: LeakCheckLayer<N>) -> Router
where
    N: NameRequest<Request> + Clone + Send + Sync + 'static,
{
    router()
        .layer(layer)
        .layer(middleware::from_fn(count_and_catch_panics))
}

/// Serves [`app`] on `listener` until `shutdown` completes, then lets the
/// requests in flight finish and returns.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) {
    serve_app(listener, app(), shutdown).await;
}

/// Serves `app` (see [`app_with`]) on `listener` until `shutdown`
/// completes; the peer's address is in each request's extensions, for the
/// panic log.
pub async fn serve_app(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    if let Err(error) = served {
        tracing::error!(%error, "the server stopped");
    }
}

/// The outermost middleware: counts the request, and catches a panic of the
/// rest of the stack (leakfree's, in a debug build: the report is the panic
/// message), logs it with the peer and answers `500` with the message.
async fn count_and_catch_panics(request: Request, next: Next) -> HttpResponse {
    counter!(REQUESTS_TOTAL).increment(1);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let route = format!("{} {}", request.method(), request.uri().path());
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(payload) => {
            REQUEST_PANICS.fetch_add(1, Ordering::Relaxed);
            counter!(REQUEST_PANICS_TOTAL).increment(1);
            let message = panic_text(payload);
            tracing::error!(?peer, %route, "request handler panicked: {message}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("request handler panicked: {message}\n"),
            )
                .into_response()
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

async fn ping() -> &'static str {
    "pong\n"
}

async fn leaky(body: Body) -> &'static str {
    start_config_watcher();
    // A client that streams a body keeps this request (and its scope) open.
    let _ = axum::body::to_bytes(body, MAX_BODY).await;
    "started a config watcher that nothing stops: it outlives this request\n"
}

async fn fixed(body: Body) -> &'static str {
    // Cancelled when this handler returns, by any path (also when its future
    // is dropped): the stop signal of the tasks this request starts.
    let request_done = CancellationToken::new();
    let _stop_on_return = request_done.clone().drop_guard();
    start_config_watcher_until(request_done);
    let _ = axum::body::to_bytes(body, MAX_BODY).await;
    "started a config watcher that stops when this request ends\n"
}

async fn debug_tasks() -> String {
    live::snapshot().to_string()
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prometheus_text(),
    )
}

async fn not_found() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_FOUND,
        "routes: /ping /leaky /fixed /debug/tasks /metrics\n",
    )
}

/// The leak: a watcher of the configuration that nothing stops.
fn start_config_watcher() {
    let changes = CONFIG.subscribe();
    spawn_named("config-watcher", watch_config(changes)); // spawn-site: leaky
}

/// The fix: the same watcher, also watching the request's stop signal.
/// Nothing awaits it: it ends when the request's handler returns, and
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

/// leakfree's counters and gauges and the server's own counters, in
/// Prometheus' text exposition format (what `/metrics` serves): the gauges
/// set from the live scopes now ([`leakfree_runtime::metrics::publish_gauges`],
/// as its docs ask of each scrape), then the recorder's rendering.
pub fn prometheus_text() -> String {
    let handle = install_metrics();
    leakfree_runtime::metrics::publish_gauges();
    handle.render()
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

/// What can go wrong on the client side (connecting, or a broken response).
pub type ClientError = Box<dyn std::error::Error + Send + Sync>;

/// A response as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body, as text.
    pub body: String,
}

/// An HTTP/1 client of the service (hyper-util's, with its keep-alive
/// connection pool); cheap to clone, clones share the pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: HyperClient<HttpConnector, Body>,
    addr: SocketAddr,
}

impl Client {
    /// A client of the server at `addr`.
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
            addr,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Response, ClientError> {
        self.send(self.request(Method::GET, path).body(Body::empty())?)
            .await
    }

    /// A request builder for `path` on this client's server.
    pub fn request(&self, method: Method, path: &str) -> axum::http::request::Builder {
        axum::http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
    }

    /// Sends `request` and reads the whole response.
    pub async fn send(&self, request: axum::http::Request<Body>) -> Result<Response, ClientError> {
        let response = self.http.request(request).await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response.into_body().collect().await?.to_bytes();
        let body = String::from_utf8(body.to_vec())?;
        Ok(Response {
            status,
            content_type,
            body,
        })
    }

    /// `POST path` with a body that is not finished until
    /// [`HeldRequest::finish`]: the server's handler runs (and `/leaky`'s
    /// scope stays open) while the body is held.
    pub fn post_held(&self, path: &str) -> Result<HeldRequest, ClientError> {
        let (release, released) = oneshot::channel::<()>();
        let body = Body::from_stream(futures_util::stream::once(async move {
            let _ = released.await;
            Ok::<_, Infallible>(Bytes::from_static(b"done"))
        }));
        let request = self.request(Method::POST, path).body(body)?;
        let client = self.clone();
        let response = tokio::spawn(async move { client.send(request).await });
        Ok(HeldRequest { release, response })
    }
}

/// A request whose body is still being sent; see [`Client::post_held`].
#[derive(Debug)]
pub struct HeldRequest {
    release: oneshot::Sender<()>,
    response: tokio::task::JoinHandle<Result<Response, ClientError>>,
}

impl HeldRequest {
    /// Sends the rest of the body and reads the response.
    pub async fn finish(self) -> Result<Response, ClientError> {
        let _ = self.release.send(());
        self.response.await?
    }
}

/// `GET path` from the server at `addr`, on a connection of its own.
pub async fn get(addr: SocketAddr, path: &str) -> Result<Response, ClientError> {
    Client::new(addr).get(path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_prometheus_text() {
        let text = prometheus_text();
        for line in text.lines() {
            let ok = line.starts_with("# HELP ")
                || line.starts_with("# TYPE ")
                || line.is_empty()
                || line
                    .rsplit_once(' ')
                    .is_some_and(|(_, value)| value.parse::<f64>().is_ok());
            assert!(ok, "not exposition format: {line}");
        }
        assert!(text.contains("# TYPE leakfree_scopes_with_leaks_total counter\n"));
        assert!(text.contains("# TYPE leakfree_leaked_tasks_total counter\n"));
        assert!(text.contains("# TYPE leakfree_live_tracked_tasks gauge\n"));
        assert!(text.contains("# TYPE service_request_panics_total counter\n"));
        assert!(text.contains("\nservice_requests_total 0\n"), "{text}");
    }
}
