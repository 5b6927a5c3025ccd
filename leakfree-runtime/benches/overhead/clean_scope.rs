//! 2. Scope overhead of a clean test: a body whose 0, 10 or 1,000 tasks all
//!    finished, run in `Scope::builder(..).build().run_and_report(body)`
//!    against the same body awaited without a scope.
//!
//! The body spawns with `leakfree_runtime::spawn`, which outside a scope *is*
//! `tokio::spawn`: the difference is the scope, the tracking of its tasks and
//! its exit protocol. `test_scope` adds what `#[leak_checked]` on a test adds:
//! counting untracked tasks from the runtime's metrics.

use criterion::{BenchmarkId, Criterion};
use leakfree_runtime::Scope;

use crate::{Flavor, time_rounds};

/// Tasks the body spawns and joins.
const TASKS: [usize; 3] = [0, 10, 1_000];

pub(crate) fn bench(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let runtime = flavor.runtime();
        let mut group = c.benchmark_group(format!("clean_scope/{}", flavor.id()));
        for n in TASKS {
            group.bench_function(BenchmarkId::new("no_scope", n), |b| {
                b.iter_custom(|iters| time_rounds(&runtime, iters, move || body(n)))
            });
            group.bench_function(BenchmarkId::new("scope", n), |b| {
                b.iter_custom(|iters| {
                    time_rounds(&runtime, iters, move || async move {
                        let ((), report) = Scope::builder("clean")
                            .build()
                            .run_and_report(body(n))
                            .await;
                        assert!(report.is_clean());
                    })
                })
            });
            group.bench_function(BenchmarkId::new("test_scope", n), |b| {
                b.iter_custom(|iters| {
                    time_rounds(&runtime, iters, move || async move {
                        let ((), report) = Scope::builder("clean")
                            .count_untracked(true)
                            .build()
                            .run_and_report(body(n))
                            .await;
                        assert!(report.is_clean());
                    })
                })
            });
        }
        group.finish();
    }
}

/// A test body: `n` tasks, all joined before it returns.
async fn body(n: usize) {
    let handles: Vec<_> = (0..n)
        .map(|i| leakfree_runtime::spawn(async move { std::hint::black_box(i) }))
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
}
