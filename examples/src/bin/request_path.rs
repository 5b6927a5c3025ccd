//! One request after another through a tower `service_fn` whose handler
//! spawns one tracked task and awaits it, plain or behind `LeakCheckLayer`
//! (its service defaults), on a `current_thread` runtime: the request path
//! alone, with no network, made to be counted with callgrind.
//!
//! ```text
//! cargo build --release -p leakfree-examples --bin request_path
//! valgrind --tool=callgrind target/release/request_path layer 10000
//! valgrind --tool=callgrind target/release/request_path layer 20000
//! ```
//!
//! The difference of the two totals over 10,000 is the instructions one
//! request costs (start-up cancels out); `plain` is the same without the
//! layer. Instruction counts, not times: they do not move with the
//! machine's load, which is what a before/after of one change needs.

use std::convert::Infallible;
use std::process::ExitCode;

use leakfree_runtime::tower::LeakCheckLayer;
use tower::{Layer, Service, ServiceExt, service_fn};

const USAGE: &str = "usage: request_path <plain|layer> <requests>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (layered, requests) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("request_path: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current_thread runtime");
    runtime.block_on(async move {
        let handler = service_fn(|_request: http::Request<()>| async {
            leakfree_runtime::spawn(async { 1 + 1 })
                .await
                .expect("the task returns");
            Ok::<_, Infallible>(())
        });
        if layered {
            send(LeakCheckLayer::new().layer(handler), requests).await;
        } else {
            send(handler, requests).await;
        }
    });
    let mode = if layered { "layer" } else { "plain" };
    println!("{requests} requests through {mode}");
    ExitCode::SUCCESS
}

async fn send<S>(mut service: S, requests: u64)
where
    S: Service<http::Request<()>, Response = (), Error = Infallible>,
{
    for _ in 0..requests {
        let request = http::Request::get("/work").body(()).expect("a request");
        let ready = service.ready().await.expect("infallible");
        ready.call(request).await.expect("infallible");
    }
}

fn parse(args: &[String]) -> Result<(bool, u64), String> {
    let [mode, requests] = args else {
        return Err(format!("expected 2 arguments, got {}", args.len()));
    };
    let layered = match mode.as_str() {
        "plain" => false,
        "layer" => true,
        other => return Err(format!("unknown mode {other:?}; expected plain or layer")),
    };
    let requests = requests
        .parse()
        .map_err(|_| format!("<requests> takes a whole number, got {requests:?}"))?;
    Ok((layered, requests))
}
