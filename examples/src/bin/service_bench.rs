//! `service_bench`: what leakfree costs an HTTP service, end to end on
//! loopback. Run it in a release build:
//!
//! ```text
//! cargo run --release -p leakfree-examples --bin service_bench
//! service_bench [--rounds R] [--secs S] [--connections C] [--quick]
//! ```
//!
//! An axum server on a 2-worker `multi_thread` runtime (threads named
//! `bench-server`) answers `GET /` with a handler that spawns N trivial
//! tasks through `leakfree_runtime::spawn` and awaits them, for N = 1 and
//! N = 10, in three variants:
//!
//! - **plain**: no leak checking (`leakfree_runtime::spawn` outside any
//!   scope is `tokio::spawn` plus one thread-local read);
//! - **layer**: `leakfree_runtime::tower::LeakCheckLayer::new()` on the
//!   router (the service defaults: verdict off the request path, logged);
//! - **attribute**: `#[leak_checked]` on the handler (in a release build:
//!   verdict off the path, logged; a clean scope ends on the call path);
//! - **scope only**, a breakdown rather than a variant: the layer on the
//!   router, but the handler spawns with `tokio::spawn` (not tracked), so
//!   what it adds to plain is the per-request scope alone, and the rest of
//!   the layer's cost is the tracked tasks'.
//!
//! The load is C (default 64) keep-alive HTTP/1 connections on 127.0.0.1,
//! each a raw hyper client connection sending one request after the other,
//! on a client runtime of one thread (`bench-client`). Each run lasts S
//! seconds (default 2) from a common start; the requests in flight at the
//! end are finished and counted, and the run stops by itself. Every
//! variant is run once, discarded, to warm up; then R rounds (default 5)
//! run the three variants in an order rotated each round, so that drift of
//! the shared machine falls on all three alike.
//!
//! Per variant it prints the median over the rounds of: throughput
//! (requests/s), p99 latency, and the server threads' CPU time per request
//! (from `/proc/self/task/*/schedstat`, where available); and the ratio of
//! the medians to plain's. `--quick` (1 round of 0.2s, no warm-up) only
//! shows that it runs: its numbers mean nothing. `--variants` and `--tasks`
//! pick what runs (for a profiler: `--variants layer --tasks 10 --rounds 1
//! --secs 10`).

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use leakfree_runtime::leak_checked;
use leakfree_runtime::tower::LeakCheckLayer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;

const USAGE: &str = "\
usage: service_bench [--rounds R] [--secs S] [--connections C] [--quick]
                     [--variants plain,layer,attribute,scope-only] [--tasks 1,10]

  --rounds R        measured rounds, each running every variant once (default 5)
  --secs S          seconds per run (default 2; fractions allowed)
  --connections C   concurrent keep-alive connections (default 64)
  --quick           1 round of 0.2s without warm-up: a smoke run, numbers mean nothing
  --variants LIST   which variants run (default all four; ratios need plain)
  --tasks LIST      tasks spawned per request (default 1,10)";

/// Tasks per request, one table block each (by default).
const TASKS: [usize; 2] = [1, 10];

/// The issue's throughput targets: (N, minimum ratio to plain).
const TARGETS: [(usize, f64); 2] = [(1, 0.97), (10, 0.90)];

const SERVER_THREAD: &str = "bench-server";
const CLIENT_THREAD: &str = "bench-client";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    Layer,
    Attribute,
    ScopeOnly,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::Plain,
        Variant::Layer,
        Variant::Attribute,
        Variant::ScopeOnly,
    ];

    fn label(self) -> &'static str {
        match self {
            Variant::Plain => "plain (no leak checking)",
            Variant::Layer => "`LeakCheckLayer` on the router",
            Variant::Attribute => "`#[leak_checked]` on the handler",
            Variant::ScopeOnly => "breakdown: the layer, tasks by `tokio::spawn` (the scope alone)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Layer => "layer",
            Variant::Attribute => "attribute",
            Variant::ScopeOnly => "scope-only",
        }
    }

    /// Whether the issue's targets apply to it.
    fn has_target(self) -> bool {
        matches!(self, Variant::Layer | Variant::Attribute)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Options {
    rounds: usize,
    run: Duration,
    connections: usize,
    warm_up: bool,
    variants: Vec<Variant>,
    tasks: Vec<usize>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            rounds: 5,
            run: Duration::from_secs(2),
            connections: 64,
            warm_up: true,
            variants: Variant::ALL.to_vec(),
            tasks: TASKS.to_vec(),
        }
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("`{name}` needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quick" => {
                options.rounds = 1;
                options.run = Duration::from_millis(200);
                options.warm_up = false;
            }
            "--rounds" => {
                let text = value("--rounds")?;
                options.rounds = text
                    .parse()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or(format!("`--rounds {text}`: a whole number above 0"))?;
            }
            "--secs" => {
                let text = value("--secs")?;
                options.run = text
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0 && *s <= 600.0)
                    .map(Duration::from_secs_f64)
                    .ok_or(format!("`--secs {text}`: seconds, above 0 and at most 600"))?;
            }
            "--connections" => {
                let text = value("--connections")?;
                options.connections = text
                    .parse()
                    .ok()
                    .filter(|c| (1..=4096).contains(c))
                    .ok_or(format!("`--connections {text}`: 1 to 4096"))?;
            }
            "--variants" => {
                let text = value("--variants")?;
                options.variants = text
                    .split(',')
                    .map(|name| {
                        Variant::ALL
                            .into_iter()
                            .find(|v| v.short() == name)
                            .ok_or(format!(
                                "`--variants {text}`: plain, layer, attribute, scope-only"
                            ))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--tasks" => {
                let text = value("--tasks")?;
                options.tasks = text
                    .split(',')
                    .map(|n| n.parse().ok().filter(|n| (1..=1000).contains(n)))
                    .collect::<Option<_>>()
                    .ok_or(format!("`--tasks {text}`: numbers from 1 to 1000"))?;
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Some(options))
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// The handler's work: `n` trivial tasks through leakfree's spawn, each
/// awaited. Inside a scope they are tracked; outside, plain tokio tasks.
async fn work(n: usize) -> &'static str {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tasks.push(leakfree_runtime::spawn(async move { black_box(i) }));
    }
    for task in tasks {
        black_box(task.await.expect("a trivial task does not fail"));
    }
    "ok"
}

async fn plain(State(n): State<usize>) -> &'static str {
    work(n).await
}

/// [`work`] with `tokio::spawn`: tasks no scope tracks.
async fn untracked(State(n): State<usize>) -> &'static str {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tasks.push(tokio::spawn(async move { black_box(i) }));
    }
    for task in tasks {
        black_box(task.await.expect("a trivial task does not fail"));
    }
    "ok"
}

#[leak_checked]
async fn checked(n: State<usize>) -> &'static str {
    work(n.0).await
}

fn app(variant: Variant, n: usize) -> Router {
    match variant {
        Variant::Plain => Router::new().route("/", get(plain)).with_state(n),
        Variant::Layer => Router::new()
            .route("/", get(plain))
            .with_state(n)
            .layer(LeakCheckLayer::new()),
        Variant::Attribute => Router::new().route("/", get(checked)).with_state(n),
        Variant::ScopeOnly => Router::new()
            .route("/", get(untracked))
            .with_state(n)
            .layer(LeakCheckLayer::new()),
    }
}

/// One server per variant and N, all on `runtime`, each on a port of its
/// own; they serve until the runtime shuts down.
fn start_servers(
    runtime: &tokio::runtime::Runtime,
    options: &Options,
) -> std::io::Result<Vec<(Variant, usize, SocketAddr)>> {
    let mut servers = Vec::new();
    for &n in &options.tasks {
        for &variant in &options.variants {
            let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
            let addr = listener.local_addr()?;
            let app = app(variant, n);
            runtime.spawn(async move {
                if let Err(error) = axum::serve(listener, app).await {
                    eprintln!("service_bench: the server on {addr} stopped: {error}");
                }
            });
            servers.push((variant, n, addr));
        }
    }
    Ok(servers)
}

// ---------------------------------------------------------------------------
// The load
// ---------------------------------------------------------------------------

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What one run measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    requests_per_sec: f64,
    p99: Duration,
    /// Server threads' CPU time per request, when the platform tells.
    server_cpu: Option<Duration>,
}

/// `connections` keep-alive connections to `addr`, each sending requests
/// one after the other from a common start until `length` has passed.
async fn run_load(addr: SocketAddr, connections: usize, length: Duration) -> Result<Run, Error> {
    let barrier = Arc::new(Barrier::new(connections + 1));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let barrier = Arc::clone(&barrier);
        clients.spawn(connection(addr, barrier, length));
    }
    // Everyone connected: go.
    barrier.wait().await;
    let cpu_before = thread_cpu(SERVER_THREAD);
    let start = Instant::now();
    let mut latencies: Vec<u64> = Vec::new();
    let mut failure = None;
    while let Some(joined) = clients.join_next().await {
        match joined {
            Ok(Ok(mine)) => latencies.extend(mine),
            Ok(Err(error)) => failure = Some(error),
            Err(error) => failure = Some(error.into()),
        }
    }
    let elapsed = start.elapsed();
    let cpu_after = thread_cpu(SERVER_THREAD);
    if let Some(error) = failure {
        return Err(error);
    }
    if latencies.is_empty() {
        return Err("no request completed".into());
    }
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    let requests = latencies.len() as f64;
    Ok(Run {
        requests_per_sec: requests / elapsed.as_secs_f64(),
        p99: Duration::from_nanos(p99),
        server_cpu: cpu_before.zip(cpu_after).map(|(before, after)| {
            Duration::from_nanos(((after - before) as f64 / requests) as u64)
        }),
    })
}

/// One connection: connects, waits for the start, then `GET /` until
/// `length` has passed since the start; the latency of each request in ns.
async fn connection(
    addr: SocketAddr,
    start: Arc<Barrier>,
    length: Duration,
) -> Result<Vec<u64>, Error> {
    let connected = async {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        Ok::<_, Error>((sender, connection))
    }
    .await;
    // Wait at the barrier whatever happened, so that the others start.
    start.wait().await;
    let (mut sender, connection) = connected?;
    let driver = tokio::spawn(connection);
    let deadline = Instant::now() + length;
    let mut latencies = Vec::with_capacity(16 * 1024);
    let host = addr.to_string();
    while Instant::now() < deadline {
        sender.ready().await?;
        let request = hyper::Request::get("/")
            .header(hyper::header::HOST, host.as_str())
            .body(Empty::<Bytes>::new())?;
        let sent = Instant::now();
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != hyper::StatusCode::OK || body.as_ref() != b"ok" {
            return Err(format!("unexpected answer: {status} {body:?}").into());
        }
        latencies.push(sent.elapsed().as_nanos() as u64);
    }
    drop(sender);
    driver.await??;
    Ok(latencies)
}

/// The CPU time, in ns, of this process's threads named `name` so far
/// (`/proc/self/task/*/schedstat`: time on the CPU); `None` where there is
/// no such file.
fn thread_cpu(name: &str) -> Option<u64> {
    let mut total = 0;
    let mut found = false;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        found = true;
    }
    found.then_some(total)
}

// ---------------------------------------------------------------------------
// Rounds and the table
// ---------------------------------------------------------------------------

/// The median; NaN for no values (a variant that did not run).
fn median_f64(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn median_duration(values: &[Duration]) -> Duration {
    let mut ns: Vec<f64> = values.iter().map(|d| d.as_nanos() as f64).collect();
    Duration::from_nanos(median_f64(&mut ns) as u64)
}

fn format_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn format_signed_us(ns: f64) -> String {
    let us = ns / 1000.0;
    if us.abs() >= 1000.0 {
        format!("{:+.2} ms", us / 1000.0)
    } else {
        format!("{us:+.0} µs")
    }
}

/// Per variant and N, every round's run.
struct Results {
    runs: Vec<(Variant, usize, Vec<Run>)>,
}

impl Results {
    fn runs(&self, variant: Variant, n: usize) -> &[Run] {
        self.runs
            .iter()
            .find(|(v, m, _)| *v == variant && *m == n)
            .map(|(_, _, runs)| runs.as_slice())
            .unwrap_or_default()
    }

    fn throughput(&self, variant: Variant, n: usize) -> f64 {
        let mut values: Vec<f64> = self
            .runs(variant, n)
            .iter()
            .map(|r| r.requests_per_sec)
            .collect();
        median_f64(&mut values)
    }

    fn p99(&self, variant: Variant, n: usize) -> Duration {
        let values: Vec<Duration> = self.runs(variant, n).iter().map(|r| r.p99).collect();
        median_duration(&values)
    }

    fn server_cpu(&self, variant: Variant, n: usize) -> Option<Duration> {
        let values: Option<Vec<Duration>> =
            self.runs(variant, n).iter().map(|r| r.server_cpu).collect();
        values.map(|v| median_duration(&v))
    }
}

fn render(results: &Results, options: &Options) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| N | variant | requests/s | ratio to plain | p99 latency | p99 added | server CPU / request | CPU added | target |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for &n in &options.tasks {
        let plain_rps = results.throughput(Variant::Plain, n);
        let plain_p99 = results.p99(Variant::Plain, n);
        let plain_cpu = results.server_cpu(Variant::Plain, n);
        let target = TARGETS.iter().find(|(m, _)| *m == n).map(|(_, t)| *t);
        for &variant in &options.variants {
            let rps = results.throughput(variant, n);
            let p99 = results.p99(variant, n);
            let cpu = results.server_cpu(variant, n);
            let ratio = rps / plain_rps;
            let (ratio_text, added, cpu_added, verdict) =
                if variant == Variant::Plain || plain_rps.is_nan() {
                    (
                        "1.00×".to_owned(),
                        "–".to_owned(),
                        "–".to_owned(),
                        "–".to_owned(),
                    )
                } else {
                    let verdict = match target.filter(|_| variant.has_target()) {
                        Some(t) if ratio >= t => format!("≥ {t:.2}×: met"),
                        Some(t) => format!("≥ {t:.2}×: **missed**"),
                        None => "–".to_owned(),
                    };
                    let cpu_added = cpu.zip(plain_cpu).map_or("–".to_owned(), |(c, p)| {
                        let us = (c.as_nanos() as f64 - p.as_nanos() as f64) / 1000.0;
                        format!("{us:+.1} µs")
                    });
                    (
                        format!("{ratio:.3}×"),
                        format_signed_us(p99.as_nanos() as f64 - plain_p99.as_nanos() as f64),
                        cpu_added,
                        verdict,
                    )
                };
            let _ = writeln!(
                out,
                "| {n} | {} | {:.0} | {ratio_text} | {} | {added} | {} | {cpu_added} | {verdict} |",
                variant.label(),
                rps,
                format_duration(p99),
                cpu.map_or("–".to_owned(), format_duration_fine),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nMedians over {} rounds of {:.1}s per variant, {} connections; `cargo run --release -p leakfree-examples --bin service_bench`.",
        options.rounds,
        options.run.as_secs_f64(),
        options.connections
    );
    out
}

/// CPU per request: a few µs, so one decimal.
fn format_duration_fine(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("service_bench: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match bench(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("service_bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn bench(options: &Options) -> Result<(), Error> {
    let build = if cfg!(debug_assertions) {
        "debug build: numbers mean nothing, use --release"
    } else {
        "release build"
    };
    println!(
        "service_bench ({build}): {} rounds x {} variants x N in {:?}, {:.1}s per run, {} connections",
        options.rounds,
        options.variants.len(),
        options.tasks,
        options.run.as_secs_f64(),
        options.connections
    );
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()?;
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let servers = start_servers(&server, options)?;
    let addr = move |variant: Variant, n: usize| {
        servers
            .iter()
            .find(|(v, m, _)| *v == variant && *m == n)
            .map(|(_, _, addr)| *addr)
            .expect("a server for every variant and N")
    };
    // The client runs on a thread of its own, named so that its CPU time is
    // not the server's.
    let options_for_client = options.clone();
    let results = std::thread::Builder::new()
        .name(CLIENT_THREAD.to_owned())
        .spawn(move || {
            client.block_on(async move {
                let options = options_for_client;
                if options.warm_up {
                    for &n in &options.tasks {
                        for &variant in &options.variants {
                            run_load(addr(variant, n), options.connections, options.run / 2)
                                .await?;
                        }
                    }
                }
                let mut runs: Vec<(Variant, usize, Vec<Run>)> = Vec::new();
                for &n in &options.tasks {
                    for &variant in &options.variants {
                        runs.push((variant, n, Vec::new()));
                    }
                }
                for &n in &options.tasks {
                    for round in 0..options.rounds {
                        let mut order = options.variants.clone();
                        let len = order.len();
                        order.rotate_left(round % len);
                        let mut line = format!("N={n} round {}:", round + 1);
                        for &variant in &order {
                            let run = run_load(addr(variant, n), options.connections, options.run)
                                .await?;
                            let _ = write!(
                                line,
                                " {} {:.0}/s p99 {}",
                                variant.short(),
                                run.requests_per_sec,
                                format_duration(run.p99)
                            );
                            if let Some(cpu) = run.server_cpu {
                                let _ = write!(line, " cpu {}", format_duration_fine(cpu));
                            }
                            let slot = runs
                                .iter_mut()
                                .find(|(v, m, _)| *v == variant && *m == n)
                                .expect("a slot for every variant and N");
                            slot.2.push(run);
                        }
                        println!("{line}");
                    }
                }
                Ok::<_, Error>(Results { runs })
            })
        })?
        .join()
        .map_err(|_| "the client thread panicked")??;
    server.shutdown_timeout(Duration::from_secs(1));
    println!();
    print!("{}", render(&results, options));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        parse_args(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn arguments() {
        assert_eq!(parse(&[]), Ok(Some(Options::default())));
        let quick = parse(&["--quick"]).unwrap().unwrap();
        assert_eq!((quick.rounds, quick.warm_up), (1, false));
        let custom = parse(&["--rounds", "3", "--secs", "0.5", "--connections", "8"])
            .unwrap()
            .unwrap();
        assert_eq!(custom.rounds, 3);
        assert_eq!(custom.run, Duration::from_millis(500));
        assert_eq!(custom.connections, 8);
        let some = parse(&["--variants", "plain,scope-only", "--tasks", "3"])
            .unwrap()
            .unwrap();
        assert_eq!(some.variants, [Variant::Plain, Variant::ScopeOnly]);
        assert_eq!(some.tasks, [3]);
        assert!(
            parse(&["--variants", "fast"])
                .unwrap_err()
                .contains("scope-only")
        );
        assert!(parse(&["--tasks", "0"]).unwrap_err().contains("1 to 1000"));
        assert_eq!(parse(&["-h"]), Ok(None));
        assert!(parse(&["--rounds", "0"]).unwrap_err().contains("above 0"));
        assert!(parse(&["--secs"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--bogus"]).unwrap_err().contains("`--bogus`"));
    }

    #[test]
    fn medians() {
        assert_eq!(median_f64(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_f64(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(
            median_duration(&[
                Duration::from_micros(5),
                Duration::from_micros(1),
                Duration::from_micros(9)
            ]),
            Duration::from_micros(5)
        );
    }
}
