//! 4. Concurrency: 10,000 scopes in flight at once on a multi-thread runtime,
//!    each spawning 10 tasks and joining them, against the same work with
//!    plain `tokio::spawn` and no scopes.
//!
//! `scopes_only` splits the cost: every request in its own scope, but its 10
//! tasks spawned with plain `tokio::spawn` (not tracked): what the scopes
//! alone cost.

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use leakfree_runtime::Scope;

use crate::{Flavor, time_rounds};

const SCOPES: usize = 10_000;
const TASKS_PER_SCOPE: usize = 10;

pub(crate) fn bench(c: &mut Criterion) {
    let runtime = Flavor::MultiThread.runtime();
    let mut group = c.benchmark_group(format!("concurrent_scopes/{}", Flavor::MultiThread.id()));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(15);
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements((SCOPES * TASKS_PER_SCOPE) as u64));
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| time_rounds(&runtime, iters, || requests(Mode::Tokio)))
    });
    group.bench_function("leakfree", |b| {
        b.iter_custom(|iters| time_rounds(&runtime, iters, || requests(Mode::Leakfree)))
    });
    group.bench_function("scopes_only", |b| {
        b.iter_custom(|iters| time_rounds(&runtime, iters, || requests(Mode::ScopesOnly)))
    });
    group.finish();
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Tokio,
    Leakfree,
    ScopesOnly,
}

/// Starts every request, then waits for all of them.
async fn requests(mode: Mode) {
    let requests: Vec<_> = (0..SCOPES)
        .map(|_| {
            tokio::spawn(async move {
                match mode {
                    Mode::Tokio => request(false).await,
                    Mode::Leakfree => Scope::builder("request").build().run(request(false)).await,
                    Mode::ScopesOnly => Scope::builder("request").build().run(request(true)).await,
                }
            })
        })
        .collect();
    for request in requests {
        request.await.expect("request");
    }
}

/// One request: 10 tasks, all joined. Outside a scope the spawns are
/// `tokio::spawn`; `untracked` spawns with `tokio::spawn` in any case.
async fn request(untracked: bool) {
    if untracked {
        let handles: Vec<_> = (0..TASKS_PER_SCOPE)
            .map(|i| tokio::spawn(async move { std::hint::black_box(i) }))
            .collect();
        for handle in handles {
            handle.await.expect("task");
        }
    } else {
        let handles: Vec<_> = (0..TASKS_PER_SCOPE)
            .map(|i| leakfree_runtime::spawn(async move { std::hint::black_box(i) }))
            .collect();
        for handle in handles {
            handle.await.expect("task");
        }
    }
}
