//! One request after another through a tower `service_fn` whose handler
//! spawns T tracked tasks (default 1) and awaits them, on a `current_thread`
//! runtime (or a 2-worker `multi_thread` one, `multi`): the request path
//! alone, with no network, made to be counted with callgrind. Three modes: `plain` (no leak checking), `layer` (behind
//! `LeakCheckLayer` with its service defaults) and `attribute` (the
//! handler's work under `#[leak_checked]`, the service form).
//!
//! ```text
//! cargo build --release -p leakfree-examples --bin request_path
//! valgrind --tool=callgrind target/release/request_path layer 10000
//! valgrind --tool=callgrind target/release/request_path layer 20000
//! ```
//!
//! The difference of the two totals over 10,000 is the instructions one
//! request costs (start-up cancels out); the same for `plain` gives what the
//! leak checking adds. Instruction counts, not times: they do not move with
//! the machine's load, which is what a before/after of one change needs.

use std::convert::Infallible;
use std::process::ExitCode;

use leakfree_runtime::leak_checked;
use leakfree_runtime::tower::LeakCheckLayer;
use tower::{Layer, Service, ServiceExt, service_fn};

const USAGE: &str =
    "usage: request_path <plain|layer|attribute> <requests> [tasks per request] [current|multi]";

/// Which leak checking the handler gets.
#[derive(Clone, Copy)]
enum Mode {
    Plain,
    Layer,
    Attribute,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Layer => "layer",
            Mode::Attribute => "attribute",
        }
    }
}

/// What the command line asks for.
struct Run {
    mode: Mode,
    requests: u64,
    tasks: usize,
    /// A 2-worker `multi_thread` runtime instead of `current_thread`.
    multi: bool,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = match parse(&args) {
        Ok(run) => run,
        Err(message) => {
            eprintln!("request_path: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = if run.multi {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("a runtime");
    let (requests, tasks) = (run.requests, run.tasks);
    let mode = run.mode;
    // On a spawned task: on the `multi_thread` runtime, a worker's, as a
    // server's connection task is.
    let requests_sent = runtime.spawn(async move {
        match mode {
            Mode::Plain => send(service_fn(move |_| handler(tasks)), requests).await,
            Mode::Layer => {
                let layered = LeakCheckLayer::new().layer(service_fn(move |_| handler(tasks)));
                send(layered, requests).await;
            }
            Mode::Attribute => send(service_fn(move |_| annotated(tasks)), requests).await,
        }
    });
    runtime
        .block_on(requests_sent)
        .expect("the requests are sent");
    let flavor = if run.multi {
        "multi_thread"
    } else {
        "current_thread"
    };
    println!(
        "{requests} requests through {}, {tasks} tasks each, {flavor}",
        mode.name()
    );
    ExitCode::SUCCESS
}

/// Spawns `tasks` tracked tasks and awaits them.
async fn work(tasks: usize) {
    let mut handles = Vec::with_capacity(tasks);
    for i in 0..tasks {
        handles.push(leakfree_runtime::spawn(async move { i + 1 }));
    }
    for handle in handles {
        handle.await.expect("the task returns");
    }
}

async fn handler(tasks: usize) -> Result<(), Infallible> {
    work(tasks).await;
    Ok(())
}

/// [`handler`] with its work in the attribute's service form.
async fn annotated(tasks: usize) -> Result<(), Infallible> {
    checked_work(tasks).await;
    Ok(())
}

#[leak_checked]
async fn checked_work(tasks: usize) {
    work(tasks).await;
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

fn parse(args: &[String]) -> Result<Run, String> {
    let (mode, requests, tasks, flavor) = match args {
        [mode, requests] => (mode, requests, None, None),
        [mode, requests, tasks] => (mode, requests, Some(tasks), None),
        [mode, requests, tasks, flavor] => (mode, requests, Some(tasks), Some(flavor)),
        _ => return Err(format!("expected 2 to 4 arguments, got {}", args.len())),
    };
    let mode = match mode.as_str() {
        "plain" => Mode::Plain,
        "layer" => Mode::Layer,
        "attribute" => Mode::Attribute,
        other => {
            return Err(format!(
                "unknown mode {other:?}; expected plain, layer or attribute"
            ));
        }
    };
    let requests = requests
        .parse()
        .map_err(|_| format!("<requests> takes a whole number, got {requests:?}"))?;
    let tasks = match tasks {
        None => 1,
        Some(tasks) => tasks
            .parse()
            .map_err(|_| format!("[tasks per request] takes a whole number, got {tasks:?}"))?,
    };
    let multi = match flavor.map(String::as_str) {
        None | Some("current") => false,
        Some("multi") => true,
        Some(other) => {
            return Err(format!(
                "unknown flavor {other:?}; expected current or multi"
            ));
        }
    };
    Ok(Run {
        mode,
        requests,
        tasks,
        multi,
    })
}
