//! 7. Handler latency: what a clean service scope adds to each call of a
//!    trivial async handler that spawns 0 or 1 tasks, against calling the
//!    handler without a scope.
//!
//! The scope is what `#[leak_checked]` on a service entrypoint builds:
//! `Scope::builder(name).build().run(handler)` (only tracked tasks judged).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion};
use leakfree_runtime::Scope;

use crate::{Flavor, time_rounds};

pub(crate) fn bench(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let runtime = flavor.runtime();
        let mut group = c.benchmark_group(format!("handler/{}", flavor.id()));
        for tasks in [0_usize, 1] {
            group.bench_function(BenchmarkId::new("no_scope", tasks), |b| {
                b.iter_custom(|iters| {
                    time_rounds(&runtime, iters, move || async move {
                        black_box(handler(black_box(tasks)).await);
                    })
                })
            });
            group.bench_function(BenchmarkId::new("scope", tasks), |b| {
                b.iter_custom(|iters| {
                    time_rounds(&runtime, iters, move || async move {
                        let response = Scope::builder("handler")
                            .build()
                            .run(handler(black_box(tasks)))
                            .await;
                        black_box(response);
                    })
                })
            });
        }
        group.finish();
    }
}

/// A trivial request handler that starts `tasks` helper tasks and waits for
/// them.
async fn handler(tasks: usize) -> usize {
    let mut sum = 0;
    for i in 0..tasks {
        sum += leakfree_runtime::spawn(async move { black_box(i) + 1 })
            .await
            .expect("task");
    }
    sum
}
