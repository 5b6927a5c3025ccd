//! `service`: an axum service with leakfree's tower layer on its router.
//!
//! ```text
//! service [--addr ADDR]    serve until Ctrl-C (default 127.0.0.1:7878)
//! service --demo           serve on a free port, drive it, print what it says
//! ```
//!
//! See [`leakfree_examples::service`] for the routes and what leakfree does
//! with a leaky connection in a debug and in a release build.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use leakfree_examples::service::{self, Client};
use leakfree_runtime::live;
use tokio::net::TcpListener;

const USAGE: &str = "\
usage: service [--addr ADDR] | --demo

Serves HTTP/1 (axum); every request runs in a leakfree scope (the
leakfree_runtime::tower::LeakCheckLayer on the router):
  GET /ping           pong
  GET /leaky          starts a task that outlives the request (the leak)
  GET /fixed          the same task, stopped when the request ends
  GET /debug/tasks    leakfree's live scopes and tasks
  GET /metrics        leakfree's counters and gauges and the server's own
                      (the metrics facade, rendered by a Prometheus recorder)

A leaky request panics with leakfree's report in a debug build (the server
logs it, answers 500 and goes on) and is logged in a release build
(--release).

OPTIONS
  --addr ADDR   where to listen (default 127.0.0.1:7878); serves until Ctrl-C
  --demo        listen on a free port, make each request once, print the
                answers and the verdict on the leaky connection, and exit
  -h, --help    this text

Try: curl localhost:7878/leaky; curl localhost:7878/debug/tasks";

const DEFAULT_ADDR: &str = "127.0.0.1:7878";

/// How long the demo waits for the leaky request's verdict (the handler's
/// grace plus scheduling).
const VERDICT_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Serve(String),
    Demo,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut command = Command::Serve(DEFAULT_ADDR.to_owned());
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--demo" | "-demo" => command = Command::Demo,
            "--addr" | "-addr" => {
                let addr = args.next().ok_or("`--addr` needs a value: HOST:PORT")?;
                command = Command::Serve(addr);
            }
            other => match other.split_once('=') {
                Some(("--addr" | "-addr", addr)) => command = Command::Serve(addr.to_owned()),
                _ => return Err(format!("unknown argument `{other}`")),
            },
        }
    }
    Ok(command)
}

#[tokio::main]
async fn main() -> ExitCode {
    // Colours only on a terminal: the tests read this output as text.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true)
        .init();
    // The metrics recorder before any request's scope can end: leakfree
    // counts into the recorder installed when each verdict is reached.
    service::install_metrics();
    match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Serve(addr)) => match TcpListener::bind(&addr).await {
            Ok(listener) => {
                let local = listener.local_addr().map_or(addr, |a| a.to_string());
                let build = if cfg!(debug_assertions) {
                    "debug build: a leak panics the request"
                } else {
                    "release build: a leak is logged"
                };
                eprintln!("service: listening on {local} ({build}); Ctrl-C stops it");
                service::serve(listener, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await;
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("service: cannot listen on {addr}: {error}");
                ExitCode::FAILURE
            }
        },
        Ok(Command::Demo) => match demo().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("service: demo failed: {error}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("service: {error}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Serves on a free port and makes each request once.
async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(service::serve(listener, async {
        let _ = stopped.await;
    }));
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("== service on {addr} ({build} build)");
    let client = Client::new(addr);

    let ping = client.get("/ping").await?;
    println!("GET /ping -> {} {}", ping.status, ping.body.trim_end());

    // A request that starts the leak and stays open while its body is
    // being sent: its scope is live, and so is the watcher it started.
    let before = live::metrics();
    let leaky = client.post_held("/leaky")?;
    let started = service::wait_for_metrics(
        |m| m.live_tracked_tasks > before.live_tracked_tasks,
        VERDICT_LIMIT,
    )
    .await;
    println!(
        "POST /leaky -> (body still being sent; {})",
        if started.is_ok() {
            "its handler started the watcher"
        } else {
            "no watcher seen yet"
        }
    );

    let tasks = client.get("/debug/tasks").await?;
    println!("GET /debug/tasks ->\n{}", indent(&tasks.body));

    // The leaky request ends: after the grace, leakfree judges it.
    let answered = leaky.finish().await?;
    println!(
        "POST /leaky (body sent) -> {} {}",
        answered.status,
        first_line(&answered.body)
    );
    println!("waiting for leakfree's verdict on the /leaky request");
    let verdict = service::wait_for_metrics(
        |m| m.scopes_with_leaks > before.scopes_with_leaks && m.live_tracked_tasks == 0,
        VERDICT_LIMIT,
    )
    .await;
    match verdict {
        Ok(_) if cfg!(debug_assertions) => println!(
            "verdict: the response future panicked with the report after the grace; the \
             server logged it (stderr) and answered 500; the leaked watcher was cancelled"
        ),
        Ok(_) => println!(
            "verdict: logged off the request path (WARN leakfree, see stderr); \
             the leaked watcher was cancelled"
        ),
        Err(m) => println!("verdict: none yet after {VERDICT_LIMIT:?} ({m:?})"),
    }

    let ping = client.get("/ping").await?;
    println!(
        "GET /ping -> {} {} (still serving)",
        ping.status,
        ping.body.trim_end()
    );
    let metrics = client.get("/metrics").await?;
    println!("GET /metrics ->\n{}", indent(&metrics.body));

    drop(client);
    let _ = stop.send(());
    server.await?;
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("   {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn arguments() {
        assert_eq!(parse(&[]), Ok(Command::Serve(DEFAULT_ADDR.to_owned())));
        assert_eq!(parse(&["--demo"]), Ok(Command::Demo));
        assert_eq!(
            parse(&["--addr", "0.0.0.0:80"]),
            Ok(Command::Serve("0.0.0.0:80".to_owned()))
        );
        assert_eq!(
            parse(&["-addr=[::1]:9"]),
            Ok(Command::Serve("[::1]:9".to_owned()))
        );
        assert_eq!(parse(&["-h"]), Ok(Command::Help));
        assert!(parse(&["--addr"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--bogus"]).unwrap_err().contains("`--bogus`"));
    }
}
