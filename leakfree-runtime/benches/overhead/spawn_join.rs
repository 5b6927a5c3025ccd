//! 1. Spawn and join N trivial tasks: `tokio::spawn`, `JoinSet`,
//!    `TaskTracker`, leakfree's tracked spawn inside a scope, and (built with
//!    `--cfg tokio_unstable`) plain `tokio::spawn` inside a scope on a runtime
//!    with leakfree's hooks installed. And the tasks left to finish by the
//!    scope's end (no per-task join), the peer of `TaskTracker`'s spawn,
//!    close and wait.
//!
//! The leakfree rows include building and ending the scope: that is what a
//! caller of the tracked spawn pays.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use leakfree_runtime::Scope;
use tokio::task::JoinSet;
use tokio_util::task::TaskTracker;

use crate::{Flavor, time_rounds};

/// The task counts.
const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

pub(crate) fn bench(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let runtime = flavor.runtime();
        #[cfg(tokio_unstable)]
        let hooked = flavor.hooked_runtime();
        let mut group = c.benchmark_group(format!("spawn_join/{}", flavor.id()));
        for n in SIZES {
            group.throughput(Throughput::Elements(n as u64));
            if n >= 1_000_000 {
                // ~0.2-1 s a round: ten single rounds.
                group.sampling_mode(SamplingMode::Flat);
                group.sample_size(10);
                group.warm_up_time(Duration::from_millis(1));
                group.measurement_time(Duration::from_secs(4));
            } else if n >= 100_000 {
                group.sampling_mode(SamplingMode::Flat);
                group.sample_size(10);
                group.warm_up_time(Duration::from_millis(200));
                group.measurement_time(Duration::from_secs(2));
            } else {
                group.sampling_mode(SamplingMode::Auto);
                group.sample_size(20);
            }
            group.bench_function(BenchmarkId::new("tokio_spawn", n), |b| {
                b.iter_custom(|iters| time_rounds(&runtime, iters, move || tokio_spawn(n)))
            });
            group.bench_function(BenchmarkId::new("joinset", n), |b| {
                b.iter_custom(|iters| time_rounds(&runtime, iters, move || joinset(n)))
            });
            group.bench_function(BenchmarkId::new("task_tracker", n), |b| {
                b.iter_custom(|iters| time_rounds(&runtime, iters, move || task_tracker(n)))
            });
            group.bench_function(BenchmarkId::new("leakfree_spawn", n), |b| {
                b.iter_custom(|iters| time_rounds(&runtime, iters, move || leakfree_spawn(n)))
            });
            group.bench_function(BenchmarkId::new("leakfree_scope_wait", n), |b| {
                b.iter_custom(|iters| time_rounds(&runtime, iters, move || leakfree_scope_wait(n)))
            });
            #[cfg(tokio_unstable)]
            group.bench_function(BenchmarkId::new("tokio_spawn_hooked", n), |b| {
                b.iter_custom(|iters| time_rounds(&hooked, iters, move || tokio_spawn_hooked(n)))
            });
        }
        group.finish();
    }
}

async fn tokio_spawn(n: usize) {
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(async {})).collect();
    for handle in handles {
        handle.await.expect("task");
    }
}

async fn joinset(n: usize) {
    let mut set = JoinSet::new();
    for _ in 0..n {
        set.spawn(async {});
    }
    while let Some(result) = set.join_next().await {
        result.expect("task");
    }
}

async fn task_tracker(n: usize) {
    let tracker = TaskTracker::new();
    for _ in 0..n {
        tracker.spawn(async {});
    }
    tracker.close();
    tracker.wait().await;
}

async fn leakfree_spawn(n: usize) {
    let ((), report) = Scope::builder("spawn_join")
        .build()
        .run_and_report(async move {
            let handles: Vec<_> = (0..n).map(|_| leakfree_runtime::spawn(async {})).collect();
            for handle in handles {
                handle.await.expect("task");
            }
        })
        .await;
    assert!(report.is_clean());
}

/// The tasks are not joined: the scope's end waits for them (its settle
/// step), as `TaskTracker::wait` does. The grace is only the bound of that
/// wait (woken when the last task ends), set far above what 1M tasks take,
/// since `TaskTracker::wait` has none.
async fn leakfree_scope_wait(n: usize) {
    let ((), report) = Scope::builder("spawn_scope_wait")
        .grace(Duration::from_secs(120))
        .build()
        .run_and_report(async move {
            for _ in 0..n {
                drop(leakfree_runtime::spawn(async {}));
            }
        })
        .await;
    assert!(report.is_clean());
}

/// Plain `tokio::spawn` in a scope, attributed by leakfree's spawn hooks.
#[cfg(tokio_unstable)]
async fn tokio_spawn_hooked(n: usize) {
    let ((), report) = Scope::builder("spawn_join_hooked")
        .build()
        .run_and_report(tokio_spawn(n))
        .await;
    assert!(report.is_clean());
}
