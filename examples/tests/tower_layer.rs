//! `leakfree_runtime::tower::LeakCheckLayer` with real servers on loopback:
//! an axum router, tower's `ServiceBuilder` on a plain hyper server, a
//! client that hangs up mid-request and a timeout that gives up on one.
//!
//! Reports are collected with `Policy::handler` and waited for on a
//! channel; no test sleeps for a fixed time. Each test has its own layer and
//! its own channel, so they can run at the same time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::routing::get;
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use leakfree_examples::service::Client;
use leakfree_runtime::spawn;
use leakfree_runtime::tower::LeakCheckLayer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower::ServiceBuilder;

mod common;

use common::{LIMIT, clean_tasks, collecting, hang, next_report, slot, take};

async fn serve_axum(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The leaky route: a task that nothing stops.
async fn leaky(Path(n): Path<u32>) -> String {
    spawn(std::future::pending::<()>());
    format!("leaked {n}\n")
}

/// The clean route: a clean request's tasks ([`clean_tasks`]).
async fn clean() -> &'static str {
    clean_tasks().await;
    "clean\n"
}

#[tokio::test]
async fn an_axum_router_reports_each_leaky_request_once_and_clean_ones_never() {
    let (builder, mut reported) = collecting();
    let app = Router::new()
        .route("/leaky/{n}", get(leaky))
        .route("/clean", get(clean))
        .layer(builder.build().unwrap());
    let client = Client::new(serve_axum(app).await);

    for _ in 0..5 {
        assert_eq!(client.get("/clean").await.unwrap().body, "clean\n");
    }
    assert_eq!(client.get("/leaky/1").await.unwrap().body, "leaked 1\n");
    for _ in 0..5 {
        assert_eq!(client.get("/clean").await.unwrap().body, "clean\n");
    }
    let first = next_report(&mut reported).await;
    assert_eq!(first.scope, "GET /leaky/1", "{}", first.text);
    assert_eq!((first.leaked, first.aborted), (1, 1), "{}", first.text);
    assert!(
        first.files[0].ends_with("examples/tests/tower_layer.rs"),
        "{first:?}"
    );
    assert!(
        first
            .text
            .starts_with("leakfree: 1 task leaked from `GET /leaky/1` (grace 500ms)"),
        "{}",
        first.text
    );

    // A second leak, made after every clean request was answered: its
    // verdict comes a grace after its own end, so any verdict on the clean
    // requests (reached as each ended) would have come before it.
    client.get("/leaky/2").await.unwrap();
    let second = next_report(&mut reported).await;
    assert_eq!(second.scope, "GET /leaky/2", "{}", second.text);
    assert_eq!(second.leaked, 1);
    assert!(
        reported.try_recv().is_err(),
        "no report on the clean requests"
    );
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_request_ends_the_scope_and_its_task_is_cancelled() {
    let (builder, mut reported) = collecting();
    let started = Arc::new(Notify::new());
    let (cancel_slot, cancelled) = slot();
    let app = {
        let started = started.clone();
        Router::new().route(
            "/hang",
            get(move || hang(started.clone(), take(&cancel_slot))),
        )
    };
    let addr = serve_axum(app.layer(builder.build().unwrap())).await;

    // A real HTTP/1 client on a connection of its own, so that the test
    // decides when the connection goes.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request = Request::get("/hang")
        .header("host", "127.0.0.1")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::spawn(async move { sender.send_request(request).await });
    tokio::time::timeout(LIMIT, started.notified())
        .await
        .expect("the handler starts");

    // The client hangs up: the request future and the connection go, and
    // with them the socket.
    response.abort();
    connection.abort();
    let _ = response.await;
    let _ = connection.await;

    let report = next_report(&mut reported).await;
    assert_eq!(report.scope, "GET /hang", "{}", report.text);
    assert_eq!((report.leaked, report.aborted), (1, 1), "{}", report.text);
    tokio::time::timeout(LIMIT, cancelled)
        .await
        .expect("the request's task is cancelled")
        .expect("dropped, not forgotten");
}

/// The hyper-facing handler of the plain-hyper test.
async fn hyper_route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.uri().path() {
        "/leaky" => {
            spawn(std::future::pending::<()>());
            "leaked\n"
        }
        _ => clean().await,
    };
    Ok(Response::new(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))))
}

/// Accepts connections and serves each with hyper's HTTP/1 server.
async fn serve_hyper<S>(service: S) -> SocketAddr
where
    S: tower::Service<Request<Incoming>, Response = Response<Full<Bytes>>> + Clone + Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                // A connection that fails (a timed-out request) just ends.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_builder_on_a_plain_hyper_server_with_named_scopes() {
    let (builder, mut reported) = collecting();
    let layer = builder
        .build()
        .unwrap()
        .name_with(|request: &Request<Incoming>| format!("hyper {}", request.uri().path()));
    let service = ServiceBuilder::new().layer(layer).service_fn(hyper_route);
    let client = Client::new(serve_hyper(service).await);

    for _ in 0..3 {
        assert_eq!(client.get("/clean").await.unwrap().body, "clean\n");
    }
    assert_eq!(client.get("/leaky").await.unwrap().body, "leaked\n");
    let report = next_report(&mut reported).await;
    assert_eq!(report.scope, "hyper /leaky", "{}", report.text);
    assert_eq!(report.leaked, 1);
    // The clean requests were all judged before the leaky one began.
    assert!(reported.try_recv().is_err(), "{:?}", reported.try_recv());
}

#[tokio::test]
async fn a_timeout_outside_the_layer_ends_the_scope_it_gives_up_on() {
    let (builder, mut reported) = collecting();
    let started = Arc::new(Notify::new());
    let (cancel_slot, cancelled) = slot();
    let service = {
        let started = started.clone();
        ServiceBuilder::new()
            // Far longer than the handler takes to start its task; the
            // handler then never answers, so the timeout always fires.
            .timeout(Duration::from_millis(200))
            .layer(builder.build().unwrap())
            .service_fn(move |_: Request<Incoming>| {
                let (started, cancelled) = (started.clone(), take(&cancel_slot));
                async move {
                    hang(started, cancelled).await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                }
            })
    };
    let client = Client::new(serve_hyper(service).await);
    let request = tokio::spawn(async move { client.get("/slow").await });
    tokio::time::timeout(LIMIT, started.notified())
        .await
        .expect("the handler starts");

    let report = next_report(&mut reported).await;
    assert_eq!(report.scope, "GET /slow", "{}", report.text);
    assert_eq!((report.leaked, report.aborted), (1, 1), "{}", report.text);
    tokio::time::timeout(LIMIT, cancelled)
        .await
        .expect("the request's task is cancelled")
        .expect("dropped, not forgotten");
    // hyper closes a connection whose service failed: no answer.
    assert!(request.await.unwrap().is_err());
}

/// With the verdict on the call path (`detach_verdict(false)`) the layer
/// runs `Scope::run`'s own future, boxed, instead of the in-place one: the
/// response waits for the verdict, so the report is there when it arrives.
#[tokio::test]
async fn the_verdict_on_the_call_path_is_reached_before_the_response() {
    let (builder, mut reported) = collecting();
    let layer = builder.detach_verdict(false).build().unwrap();
    let service = ServiceBuilder::new().layer(layer).service_fn(hyper_route);
    let client = Client::new(serve_hyper(service).await);
    assert_eq!(client.get("/clean").await.unwrap().body, "clean\n");
    assert!(
        reported.try_recv().is_err(),
        "a clean request is never reported"
    );
    assert_eq!(client.get("/leaky").await.unwrap().body, "leaked\n");
    let report = reported.try_recv().expect("reported before the response");
    assert_eq!((report.scope.as_str(), report.leaked), ("GET /leaky", 1));
}

/// A handler that panics, behind the layer's in-place future: the panic
/// reaches the caller (here tower's `oneshot`, then the test) unchanged,
/// and the scope still ends, its task judged and cancelled.
#[tokio::test]
async fn a_panicking_handler_panics_through_and_its_scope_still_ends() {
    use tower::{Layer, ServiceExt};
    let (builder, mut reported) = collecting();
    let service = builder
        .build()
        .unwrap()
        .layer(tower::service_fn(|_: Request<()>| async {
            drop(spawn(std::future::pending::<()>()));
            panic!("handler exploded");
            #[allow(unreachable_code)]
            Ok::<(), Infallible>(())
        }));
    let call = tokio::spawn(service.oneshot(Request::get("/boom").body(()).unwrap()));
    let panic = call.await.unwrap_err().into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"handler exploded"));
    let report = next_report(&mut reported).await;
    assert_eq!((report.scope.as_str(), report.leaked), ("GET /boom", 1));
    assert_eq!(report.aborted, 1, "{}", report.text);
}

#[test]
fn a_bad_glob_is_an_error_at_construction() {
    let error = LeakCheckLayer::builder()
        .ignore_name("")
        .build()
        .unwrap_err();
    assert_eq!(error.option(), "ignore_name");
    assert!(
        error
            .to_string()
            .starts_with("leakfree: `ignore_name` \"\" is empty; expected"),
        "{error}"
    );
}
