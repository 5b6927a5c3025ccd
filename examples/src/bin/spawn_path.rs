//! Rounds of trivial tasks spawned and joined, with `tokio::spawn` or
//! tracked in a scope, on a `current_thread` runtime: a tracked task's own
//! path, made to be counted with callgrind.
//!
//! ```text
//! cargo build --release -p leakfree-examples --bin spawn_path
//! valgrind --tool=callgrind target/release/spawn_path tracked 10
//! valgrind --tool=callgrind target/release/spawn_path tracked 20
//! ```
//!
//! Modes, per round:
//! - `tokio`, `tracked`: 1,000 trivial tasks spawned, then joined
//!   (`tracked`: with `leakfree_runtime::spawn` inside one `Scope::run`);
//! - `scope`: one empty `Scope::run`;
//! - `yield-tokio`, `yield-tracked`: 100 tasks that each yield 100 times
//!   (a poll and a wake each), then joined;
//! - `hooked`: 1,000 plain `tokio::spawn` tasks inside one `Scope::run` on
//!   a runtime with leakfree's hooks installed (`hooks::install`), which
//!   attribute each to the scope: table 1b's path. Only in a build with
//!   `--cfg tokio_unstable` (tokio has no hooks without it); compare with
//!   `tokio` in the same build.
//!
//! The difference of two totals over the difference of the rounds is one
//! round's instructions (start-up cancels out); divide by the tasks or
//! polls of a round and subtract the `tokio` mode's figure for what
//! leakfree adds. Instruction counts, not times: they do not move with the
//! machine's load, which is what a before/after of one change needs.

use std::process::ExitCode;

use leakfree_runtime::{Policy, Scope};
use tokio::task::JoinError;

const USAGE: &str =
    "usage: spawn_path <tokio|tracked|scope|yield-tokio|yield-tracked|hooked> <rounds>";

/// Tasks per round in the spawn modes.
const TASKS: usize = 1_000;
/// Tasks per round, and yields per task, in the yield modes.
const YIELDERS: usize = 100;
const YIELDS: usize = 100;

#[derive(Clone, Copy)]
enum Mode {
    Tokio,
    Tracked,
    Scope,
    YieldTokio,
    YieldTracked,
    Hooked,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, rounds) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("spawn_path: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if matches!(mode, Mode::Hooked) {
        leakfree_runtime::hooks::install(&mut builder);
    }
    let runtime = builder.build().expect("a current_thread runtime");
    runtime.block_on(async move {
        for _ in 0..rounds {
            round(mode).await;
        }
    });
    let totals = leakfree_runtime::live::metrics();
    if totals.scopes_with_leaks > 0 {
        eprintln!(
            "spawn_path: {} scopes leaked {} tasks",
            totals.scopes_with_leaks, totals.leaks_found
        );
        return ExitCode::FAILURE;
    }
    println!("{rounds} rounds of {}", args[0]);
    ExitCode::SUCCESS
}

async fn round(mode: Mode) {
    match mode {
        Mode::Tokio => join_all((0..TASKS).map(|_| tokio::spawn(async { 1u32 }))).await,
        Mode::Tracked => {
            in_scope(join_all(
                (0..TASKS).map(|_| leakfree_runtime::spawn(async { 1u32 })),
            ))
            .await
        }
        Mode::Scope => in_scope(async {}).await,
        Mode::YieldTokio => join_all((0..YIELDERS).map(|_| tokio::spawn(yielder()))).await,
        Mode::YieldTracked => {
            in_scope(join_all(
                (0..YIELDERS).map(|_| leakfree_runtime::spawn(yielder())),
            ))
            .await
        }
        Mode::Hooked => in_scope(join_all((0..TASKS).map(|_| tokio::spawn(async { 1u32 })))).await,
    }
}

/// Spawns every task of `spawns` (when first polled: inside the scope, for
/// the tracked modes), then joins them in order.
async fn join_all<T>(spawns: impl IntoIterator<Item: Future<Output = Result<T, JoinError>>>) {
    let handles: Vec<_> = spawns.into_iter().collect();
    for handle in handles {
        handle.await.expect("the task returns");
    }
}

async fn yielder() {
    for _ in 0..YIELDS {
        tokio::task::yield_now().await;
    }
}

/// Runs `body` in a scope that logs, as a service's scope does (a leak
/// would be a bug: `main` checks the totals after the last round).
async fn in_scope(body: impl Future<Output = ()> + Send + 'static) {
    Scope::builder("spawn_path")
        .policy(Policy::Log)
        .build()
        .run(body)
        .await
}

fn parse(args: &[String]) -> Result<(Mode, u64), String> {
    let [mode, rounds] = args else {
        return Err(format!("expected 2 arguments, got {}", args.len()));
    };
    let mode = match mode.as_str() {
        "tokio" => Mode::Tokio,
        "tracked" => Mode::Tracked,
        "scope" => Mode::Scope,
        "yield-tokio" => Mode::YieldTokio,
        "yield-tracked" => Mode::YieldTracked,
        "hooked" if cfg!(tokio_unstable) => Mode::Hooked,
        "hooked" => {
            return Err(
                "mode hooked needs a build with RUSTFLAGS=\"--cfg tokio_unstable\" (tokio has no task hooks without it)"
                    .to_string(),
            );
        }
        other => {
            return Err(format!(
                "unknown mode {other:?}; expected tokio, tracked, scope, yield-tokio, yield-tracked or hooked"
            ));
        }
    };
    let rounds = rounds
        .parse()
        .map_err(|_| format!("<rounds> takes a whole number, got {rounds:?}"))?;
    Ok((mode, rounds))
}
