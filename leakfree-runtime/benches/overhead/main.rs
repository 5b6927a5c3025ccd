//! Time benchmarks of leakfree against plain tokio and its peers (criterion).
//!
//! Every benchmark runs on a `current_thread` runtime (`ct`) and a two-worker
//! `multi_thread` runtime (`mt`), and times its work *inside* the runtime, on
//! a spawned task (so on a worker of a multi-thread runtime), with
//! `iter_custom`: `block_on`'s own cost is not measured. Each group holds the
//! peer and leakfree side by side, so the ratios in `BENCHMARKS.md` come from
//! one run; `cargo run -p leakfree-examples --bin bench_table` prints them.
//!
//! ```text
//! cargo bench -p leakfree-runtime --bench overhead               # all groups
//! cargo bench -p leakfree-runtime --bench overhead -- spawn_join # one group
//! RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR=$PWD/target/tokio_unstable \
//!   cargo bench -p leakfree-runtime --bench overhead -- spawn_join/.*/tokio_spawn
//! ```

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::{Builder, Runtime};

mod clean_scope;
mod concurrent_scopes;
mod handler;
mod per_poll;
mod report;
mod spawn_join;

/// The two runtime flavors every benchmark runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    CurrentThread,
    MultiThread,
}

impl Flavor {
    pub(crate) const ALL: [Flavor; 2] = [Flavor::CurrentThread, Flavor::MultiThread];

    /// The short name used in benchmark ids.
    pub(crate) fn id(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "ct",
            Flavor::MultiThread => "mt",
        }
    }

    fn builder(self) -> Builder {
        let mut builder = match self {
            Flavor::CurrentThread => Builder::new_current_thread(),
            Flavor::MultiThread => {
                let mut builder = Builder::new_multi_thread();
                builder.worker_threads(2);
                builder
            }
        };
        builder.enable_all();
        builder
    }

    /// A plain runtime of this flavor.
    pub(crate) fn runtime(self) -> Runtime {
        self.builder().build().expect("runtime")
    }

    /// A runtime of this flavor with leakfree's spawn hooks installed.
    #[cfg(tokio_unstable)]
    pub(crate) fn hooked_runtime(self) -> Runtime {
        let mut builder = self.builder();
        leakfree_runtime::hooks::install(&mut builder);
        builder.build().expect("runtime")
    }
}

/// Runs `iters` rounds of `round` on a task of `runtime` and returns the time
/// they took, measured on that task.
pub(crate) fn time_rounds<R, Fut>(runtime: &Runtime, iters: u64, round: R) -> Duration
where
    R: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    runtime.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            for _ in 0..iters {
                round().await;
            }
            start.elapsed()
        })
        .await
        .expect("benchmark task")
    })
}

/// Where benchmarks leave results criterion does not keep (sizes, counts):
/// `<target>/leakfree-bench/`, next to criterion's own `<target>/criterion/`.
pub(crate) fn results_dir() -> PathBuf {
    // The bench binary is `<target>/<profile>/deps/<name>-<hash>`.
    let exe = std::env::current_exe().expect("current exe");
    let target = exe.ancestors().nth(3).expect("target dir").to_path_buf();
    target.join("leakfree-bench")
}

/// Writes `contents` to `name` in [`results_dir`].
pub(crate) fn results_file(name: &str, contents: &str) {
    let dir = results_dir();
    std::fs::create_dir_all(&dir).expect("results dir");
    std::fs::write(dir.join(name), contents).expect("results file");
}

fn config() -> Criterion {
    // A shared, noisy 2-core machine: few samples, short windows, medians.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets =
        spawn_join::bench,
        clean_scope::bench,
        per_poll::bench,
        concurrent_scopes::bench,
        report::bench,
        handler::bench,
}
criterion_main!(benches);
