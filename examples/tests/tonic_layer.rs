//! `leakfree_runtime::tower::LeakCheckLayer` on tonic's gRPC server,
//! `Server::builder().layer(..)`, over HTTP/2 on loopback, called by tonic's
//! own client.
//!
//! The service is written by hand the way tonic's code generator writes one
//! (a `NamedService` that routes each method to `tonic::server::Grpc`), with
//! a codec that passes bytes through, so the test needs neither protobuf nor
//! a build script. Run with `cargo test -p leakfree-examples --features tonic
//! --test tonic_layer`; CI runs it in one build (`.ci/run`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use hyper::http;
use hyper::http::uri::PathAndQuery;
use leakfree_runtime::spawn;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};

use leakfree_runtime::tower::LeakCheckLayer;

mod common;

use common::{LIMIT, Slot, clean_tasks, collecting, hang, next_report, slot, take};

/// The service's gRPC name, and so the first part of every method's path.
const SERVICE: &str = "leakfree.test.Work";

/// A codec that sends and receives a message's bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// What a method does with its request.
#[derive(Clone)]
struct Work {
    /// Notified once the hanging method's task exists.
    started: Arc<Notify>,
    /// Fires when the hanging method's task is dropped.
    cancelled: Slot,
}

impl Work {
    /// The method named `method`, called with `message`.
    async fn call(self, method: String, message: Bytes) -> Result<Bytes, Status> {
        match method.as_str() {
            // A task that nothing stops: it outlives the call.
            "Leaky" => {
                spawn(std::future::pending::<()>());
                Ok(message)
            }
            "Clean" => {
                clean_tasks().await;
                Ok(message)
            }
            // Never answers; its task lives until it is cancelled.
            "Hang" => {
                hang(self.started, take(&self.cancelled)).await;
                unreachable!("a hanging call never returns")
            }
            _ => Err(Status::unimplemented(method)),
        }
    }
}

/// One method of [`Work`] as tonic's unary server machinery calls it.
struct Method {
    work: Work,
    name: String,
}

impl tonic::server::UnaryService<Bytes> for Method {
    type Response = Bytes;
    type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<Bytes>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let work = self.work.clone();
        let name = std::mem::take(&mut self.name);
        Box::pin(async move {
            let answer = work.call(name, request.into_inner()).await?;
            Ok(tonic::Response::new(answer))
        })
    }
}

impl NamedService for Work {
    const NAME: &'static str = SERVICE;
}

impl tower::Service<http::Request<Body>> for Work {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let name = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let method = Method {
            work: self.clone(),
            name,
        };
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec);
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// Serves `work` with tonic's server, the layer on the server builder.
async fn serve(work: Work, layer: LeakCheckLayer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        Server::builder()
            .layer(layer)
            .add_service(work)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    addr
}

/// tonic's client over one HTTP/2 connection to `addr`.
async fn client(addr: SocketAddr) -> tonic::client::Grpc<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic::client::Grpc::new(channel)
}

async fn call(
    client: &mut tonic::client::Grpc<Channel>,
    method: &str,
    message: &'static [u8],
) -> Result<Bytes, Status> {
    client
        .ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    let path = PathAndQuery::try_from(format!("/{SERVICE}/{method}")).unwrap();
    let response = client
        .unary(
            tonic::Request::new(Bytes::from_static(message)),
            path,
            RawCodec,
        )
        .await?;
    Ok(response.into_inner())
}

fn work() -> (Work, Arc<Notify>, oneshot::Receiver<()>) {
    let started = Arc::new(Notify::new());
    let (cancelled, on_cancel) = slot();
    let work = Work {
        started: started.clone(),
        cancelled,
    };
    (work, started, on_cancel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tonic_server_reports_each_leaky_call_once_and_clean_ones_never() {
    let (builder, mut reported) = collecting();
    let layer = builder.build().unwrap();
    let (work, _, _) = work();
    let mut client = client(serve(work, layer).await).await;

    for _ in 0..5 {
        assert_eq!(call(&mut client, "Clean", b"c").await.unwrap(), "c");
    }
    assert_eq!(call(&mut client, "Leaky", b"l1").await.unwrap(), "l1");
    let first = next_report(&mut reported).await;
    assert_eq!(
        first.scope,
        format!("POST /{SERVICE}/Leaky"),
        "{}",
        first.text
    );
    assert_eq!((first.leaked, first.aborted), (1, 1), "{}", first.text);
    assert!(
        first.files[0].ends_with("examples/tests/tonic_layer.rs"),
        "the spawn site is the method's own line: {first:?}"
    );

    // More clean calls, then a second leak: its verdict comes a grace after
    // its own end, so a verdict on any clean call would have come first.
    for _ in 0..5 {
        assert_eq!(call(&mut client, "Clean", b"c").await.unwrap(), "c");
    }
    call(&mut client, "Leaky", b"l2").await.unwrap();
    let second = next_report(&mut reported).await;
    assert_eq!(second.scope, format!("POST /{SERVICE}/Leaky"));
    assert_eq!(second.leaked, 1, "{}", second.text);
    assert!(
        reported.try_recv().is_err(),
        "no report on the clean calls: {:?}",
        reported.try_recv()
    );
    // An unknown method is answered by the service, in its scope, cleanly.
    let unknown = call(&mut client, "Missing", b"").await.unwrap_err();
    assert_eq!(unknown.code(), Code::Unimplemented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cancels_a_call_ends_its_scope_and_its_task_is_cancelled() {
    let (builder, mut reported) = collecting();
    let layer = builder.build().unwrap();
    let (work, started, cancelled) = work();
    let mut client = client(serve(work, layer).await).await;

    // The client drops its call: its HTTP/2 stream is reset, tonic's server
    // drops the call's future, and with it the layer's scope ends.
    let hanging = tokio::spawn(async move { call(&mut client, "Hang", b"h").await });
    tokio::time::timeout(LIMIT, started.notified())
        .await
        .expect("the method starts");
    hanging.abort();
    assert!(hanging.await.unwrap_err().is_cancelled());

    let report = next_report(&mut reported).await;
    assert_eq!(
        report.scope,
        format!("POST /{SERVICE}/Hang"),
        "{}",
        report.text
    );
    assert_eq!((report.leaked, report.aborted), (1, 1), "{}", report.text);
    tokio::time::timeout(LIMIT, cancelled)
        .await
        .expect("the call's task is cancelled")
        .expect("dropped, not forgotten");
}
