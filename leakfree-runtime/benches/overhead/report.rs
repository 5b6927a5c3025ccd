//! 6. Report cost: 10,000 leaked tasks from 10 spawn sites (1,000 each, all
//!    blocked forever). Times the scope's end with grace 0 (verdict, cancel,
//!    abort and wait, building the report) and the report's `Display`, and
//!    writes the text's size and its number of entries to
//!    `target/leakfree-bench/report-<flavor>.txt` for `bench_table` (and the
//!    text itself to `report-<flavor>-text.txt`).

use std::future::{Future, pending};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use leakfree_runtime::{LeakReport, Scope};
use tokio::runtime::Runtime;

use crate::{Flavor, results_file};

const LEAKS: usize = 10_000;
const SITES: usize = 10;

pub(crate) fn bench(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let runtime = flavor.runtime();
        // The last report the Display benchmark formatted, for its size.
        let last: Arc<Mutex<Option<(LeakReport, String)>>> = Arc::default();
        let mut group = c.benchmark_group(format!("report/{}", flavor.id()));
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(200));
        group.measurement_time(Duration::from_secs(1));
        group.bench_function("exit_10k_leaks", |b| {
            b.iter_custom(|iters| {
                rounds(&runtime, iters, |scope| async move {
                    let start = Instant::now();
                    let report = scope.finish().await;
                    let elapsed = start.elapsed();
                    assert_eq!(report.leaked().len(), LEAKS);
                    elapsed
                })
            })
        });
        group.bench_function("display_10k_leaks", |b| {
            b.iter_custom(|iters| {
                let last = last.clone();
                rounds(&runtime, iters, move |scope| {
                    let last = last.clone();
                    async move {
                        let report = scope.finish().await;
                        let start = Instant::now();
                        let text = report.to_string();
                        let elapsed = start.elapsed();
                        *last.lock().expect("last report") = Some((report, black_box(text)));
                        elapsed
                    }
                })
            })
        });
        group.finish();
        // Only when the Display benchmark ran (not filtered out).
        if let Some((report, text)) = last.lock().expect("last report").take() {
            record_size(flavor, &report, &text);
        }
    }
}

/// Runs `iters` rounds on a task of `runtime`, each on a fresh scope with
/// 10,000 leaks; sums the times the rounds report.
fn rounds<R, Fut>(runtime: &Runtime, iters: u64, round: R) -> Duration
where
    R: Fn(Scope) -> Fut + Send + 'static,
    Fut: Future<Output = Duration> + Send + 'static,
{
    runtime.block_on(async move {
        tokio::spawn(async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let scope = leaky_scope().await;
                total += round(scope).await;
            }
            total
        })
        .await
        .expect("benchmark task")
    })
}

/// A scope whose 10,000 tasks have all been polled once and will never end.
async fn leaky_scope() -> Scope {
    let scope = Scope::builder("report bench").grace(Duration::ZERO).build();
    let polled = Arc::new(AtomicUsize::new(0));
    scope
        .enter(async {
            for i in 0..LEAKS {
                let polled = polled.clone();
                spawn_at_site(i % SITES, async move {
                    polled.fetch_add(1, Ordering::Relaxed);
                    pending::<()>().await;
                });
            }
        })
        .await;
    while polled.load(Ordering::Relaxed) < LEAKS {
        tokio::task::yield_now().await;
    }
    scope
}

/// Ten spawn sites, one a line.
fn spawn_at_site<F: Future<Output = ()> + Send + 'static>(site: usize, task: F) {
    let _handle = match site {
        0 => leakfree_runtime::spawn(task),
        1 => leakfree_runtime::spawn(task),
        2 => leakfree_runtime::spawn(task),
        3 => leakfree_runtime::spawn(task),
        4 => leakfree_runtime::spawn(task),
        5 => leakfree_runtime::spawn(task),
        6 => leakfree_runtime::spawn(task),
        7 => leakfree_runtime::spawn(task),
        8 => leakfree_runtime::spawn(task),
        _ => leakfree_runtime::spawn(task),
    };
}

/// Writes the report's size and entries, and its text.
fn record_size(flavor: Flavor, report: &LeakReport, text: &str) {
    let entries = text
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            line.split_once(") ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    let summary = format!(
        "leaked={}\ngroups={}\nentries={entries}\nbytes={}\nlines={}\naborted={}\n",
        report.leaked().len(),
        report.groups().len(),
        text.len(),
        text.lines().count(),
        report.aborted(),
    );
    results_file(&format!("report-{}.txt", flavor.id()), &summary);
    results_file(&format!("report-{}-text.txt", flavor.id()), text);
}
