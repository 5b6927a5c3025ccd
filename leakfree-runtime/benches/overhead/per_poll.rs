//! 3. Per-poll overhead: one task that yields 10,000 times, tracked
//!    (`leakfree_runtime::spawn` in a scope) against untracked (`tokio::spawn`).

use criterion::{Criterion, Throughput};
use leakfree_runtime::Scope;

use crate::{Flavor, time_rounds};

/// Polls per task (one more than the yields).
const YIELDS: u64 = 10_000;

pub(crate) fn bench(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let runtime = flavor.runtime();
        let mut group = c.benchmark_group(format!("per_poll/{}", flavor.id()));
        group.throughput(Throughput::Elements(YIELDS));
        group.bench_function("tokio_spawn", |b| {
            b.iter_custom(|iters| {
                time_rounds(&runtime, iters, || async {
                    tokio::spawn(yielder()).await.expect("task");
                })
            })
        });
        group.bench_function("leakfree_spawn", |b| {
            b.iter_custom(|iters| {
                time_rounds(&runtime, iters, || async {
                    let ((), report) = Scope::builder("per_poll")
                        .build()
                        .run_and_report(async {
                            leakfree_runtime::spawn(yielder()).await.expect("task");
                        })
                        .await;
                    assert!(report.is_clean());
                })
            })
        });
        group.finish();
    }
}

async fn yielder() {
    for _ in 0..YIELDS {
        tokio::task::yield_now().await;
    }
}
