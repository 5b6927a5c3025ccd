//! 5. Memory: bytes per live tracked task beyond tokio's own, and the peak
//!    with 1,000,000 live tracked tasks, against the same number of plain
//!    tokio tasks; and a check that all 1,000,000 are reported and cancelled
//!    when their scope ends.
//!
//! A counting global allocator keeps the bytes requested and not yet freed,
//! and their high-water mark (requested sizes: the system allocator's own
//! rounding and headers are not counted, on either side). Each case runs on
//! a fresh runtime; its baseline is read inside the runtime just before the
//! tasks are spawned, and "live" is read once every task has been polled once
//! and is pending for good (the steady state of a leak).
//!
//! Results are printed and written to `target/leakfree-bench/memory.txt` for
//! `bench_table`. Run: `cargo bench -p leakfree-runtime --bench memory`
//! (`-- --tasks N` for another count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::pending;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use leakfree_runtime::Scope;
use tokio::runtime::Builder;

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Allocations (and reallocations) made, by requested size; the last bucket
/// holds everything above 1 KiB.
static BY_SIZE: [AtomicUsize; BUCKETS] = [const { AtomicUsize::new(0) }; BUCKETS];
const BUCKETS: usize = 1026;

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn counted(bytes: usize) {
    BY_SIZE[bytes.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments, so
// `System`'s guarantees are the ones callers get; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
            counted(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
            counted(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (every allocation goes
        // through this type) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is the caller's, valid for
        // `layout.align()`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            shrank(layout.size());
            grew(new_size);
            counted(new_size);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    CurrentThread,
    MultiThread,
}

impl Flavor {
    fn id(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "ct",
            Flavor::MultiThread => "mt",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tokio,
    Leakfree,
}

/// What one case measured, in bytes above its baseline.
#[derive(Debug)]
struct Measured {
    /// Held once every task is alive and pending.
    live: usize,
    /// The high-water mark while spawning and polling them.
    peak_spawn: usize,
    /// The high-water mark while the scope ended (leakfree only).
    peak_exit: usize,
    /// Still held after the scope ended and its report was dropped.
    after: isize,
    /// Tasks the report called leaked, and how many it aborted.
    leaked: usize,
    aborted: usize,
    zombies: usize,
    exit_time: Duration,
}

fn main() {
    let mut tasks = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // `cargo bench` also passes `--bench` (and any filter): ignored.
        if arg == "--tasks" {
            tasks = args.next().and_then(|n| n.parse().ok()).expect("--tasks N");
        }
    }

    let mut out = format!("tasks={tasks}\n");
    for flavor in [Flavor::CurrentThread, Flavor::MultiThread] {
        let tokio = measure(flavor, Kind::Tokio, tasks);
        let leakfree = measure(flavor, Kind::Leakfree, tasks);
        let per_task_tokio = tokio.live as f64 / tasks as f64;
        let per_task_leakfree = leakfree.live as f64 / tasks as f64;
        println!(
            "memory/{}: {tasks} live tasks: tokio {:.1} B/task (peak {} MiB), leakfree {:.1} B/task \
             (peak {} MiB spawning, {} MiB at scope end); +{:.1} B/task; scope end: {} leaked, \
             {} aborted, {} zombies in {:?}; {} B still held after",
            flavor.id(),
            per_task_tokio,
            tokio.peak_spawn >> 20,
            per_task_leakfree,
            leakfree.peak_spawn >> 20,
            leakfree.peak_exit >> 20,
            per_task_leakfree - per_task_tokio,
            leakfree.leaked,
            leakfree.aborted,
            leakfree.zombies,
            leakfree.exit_time,
            leakfree.after,
        );
        assert_eq!(leakfree.leaked, tasks, "every live task reported");
        assert_eq!(leakfree.aborted, tasks, "every live task cancelled");
        assert_eq!(leakfree.zombies, 0, "no task survived the abort");
        let id = flavor.id();
        out.push_str(&format!(
            "{id}.tokio.live={}\n{id}.tokio.peak={}\n\
             {id}.leakfree.live={}\n{id}.leakfree.peak={}\n{id}.leakfree.peak_exit={}\n\
             {id}.leakfree.after={}\n{id}.leakfree.leaked={}\n{id}.leakfree.aborted={}\n\
             {id}.leakfree.zombies={}\n{id}.leakfree.exit_ns={}\n",
            tokio.live,
            tokio.peak_spawn,
            leakfree.live,
            leakfree.peak_spawn,
            leakfree.peak_exit,
            leakfree.after,
            leakfree.leaked,
            leakfree.aborted,
            leakfree.zombies,
            leakfree.exit_time.as_nanos(),
        ));
    }
    out.push_str(&allocation_profile());
    let dir = results_dir();
    std::fs::create_dir_all(&dir).expect("results dir");
    std::fs::write(dir.join("memory.txt"), out).expect("results file");
}

/// `<target>/leakfree-bench/` (the binary is `<target>/<profile>/deps/<name>`).
fn results_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .expect("target dir")
        .join("leakfree-bench")
}

static POLLED: AtomicUsize = AtomicUsize::new(0);

/// A task that counts its first poll and then waits forever, holding no waker.
async fn forever() {
    POLLED.fetch_add(1, Ordering::Relaxed);
    pending::<()>().await;
}

async fn all_polled(tasks: usize) {
    while POLLED.load(Ordering::Relaxed) < tasks {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn measure(flavor: Flavor, kind: Kind, tasks: usize) -> Measured {
    let mut builder = match flavor {
        Flavor::CurrentThread => Builder::new_current_thread(),
        Flavor::MultiThread => {
            let mut builder = Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        }
    };
    let runtime = builder.enable_all().build().expect("runtime");
    let measured = runtime.block_on(async move {
        POLLED.store(0, Ordering::Relaxed);
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        match kind {
            Kind::Tokio => {
                for _ in 0..tasks {
                    drop(tokio::spawn(forever()));
                }
                all_polled(tasks).await;
                Measured {
                    live: LIVE.load(Ordering::Relaxed) - base,
                    peak_spawn: PEAK.load(Ordering::Relaxed) - base,
                    peak_exit: 0,
                    after: 0,
                    leaked: 0,
                    aborted: 0,
                    zombies: 0,
                    exit_time: Duration::ZERO,
                }
            }
            Kind::Leakfree => {
                let scope = Scope::builder("memory").grace(Duration::ZERO).build();
                scope
                    .enter(async {
                        for _ in 0..tasks {
                            drop(leakfree_runtime::spawn(forever()));
                        }
                    })
                    .await;
                all_polled(tasks).await;
                let live = LIVE.load(Ordering::Relaxed) - base;
                let peak_spawn = PEAK.load(Ordering::Relaxed) - base;
                PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
                let start = Instant::now();
                let report = scope.finish().await;
                let exit_time = start.elapsed();
                let peak_exit = PEAK.load(Ordering::Relaxed) - base;
                let (leaked, aborted, zombies) = (
                    report.leaked().len(),
                    report.aborted(),
                    report.zombies().len(),
                );
                drop(report);
                Measured {
                    live,
                    peak_spawn,
                    peak_exit,
                    after: LIVE.load(Ordering::Relaxed) as isize - base as isize,
                    leaked,
                    aborted,
                    zombies,
                    exit_time,
                }
            }
        }
    });
    drop(runtime);
    measured
}

/// Heap allocations per operation, by size, on a current-thread runtime:
/// where the bytes and the allocator time of sections 1, 2 and 5 go.
fn allocation_profile() -> String {
    const ROUNDS: usize = 10_000;
    let runtime = Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let scope = Scope::new("allocations");
        let mut out = String::new();
        let ops: [(&str, &str); 6] = [
            ("tokio_spawn_join", "tokio::spawn + join"),
            ("leakfree_spawn_join", "leakfree::spawn + join, in a scope"),
            ("joinset_spawn_join", "JoinSet spawn + join_next"),
            ("scope_0", "clean scope, 0 tasks (run_and_report)"),
            (
                "test_scope_0",
                "clean test scope, 0 tasks (count_untracked)",
            ),
            ("scope_1", "clean scope, 1 task spawned and joined"),
        ];
        for (key, label) in ops {
            let mut set = tokio::task::JoinSet::new();
            let mut round = async || match key {
                "tokio_spawn_join" => tokio::spawn(async {}).await.expect("task"),
                "leakfree_spawn_join" => {
                    scope
                        .enter(async { leakfree_runtime::spawn(async {}).await.expect("task") })
                        .await
                }
                "joinset_spawn_join" => {
                    set.spawn(async {});
                    set.join_next().await.expect("one").expect("task");
                }
                "scope_0" => {
                    let ((), report) = Scope::new("a").run_and_report(async {}).await;
                    assert!(report.is_clean());
                }
                "test_scope_0" => {
                    let ((), report) = Scope::builder("a")
                        .count_untracked(true)
                        .build()
                        .run_and_report(async {})
                        .await;
                    assert!(report.is_clean());
                }
                _ => {
                    let ((), report) = Scope::new("a")
                        .run_and_report(async {
                            leakfree_runtime::spawn(async {}).await.expect("task");
                        })
                        .await;
                    assert!(report.is_clean());
                }
            };
            for _ in 0..100 {
                round().await;
            }
            let before: Vec<usize> = BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            for _ in 0..ROUNDS {
                round().await;
            }
            let mut sizes = Vec::new();
            let (mut count, mut bytes) = (0.0, 0.0);
            for (size, (counter, before)) in BY_SIZE.iter().zip(&before).enumerate() {
                let per_op = (counter.load(Ordering::Relaxed) - before) as f64 / ROUNDS as f64;
                if per_op > 0.0 {
                    count += per_op;
                    bytes += per_op * size as f64;
                }
                if per_op >= 0.05 {
                    let size = if size == BUCKETS - 1 {
                        ">1024".to_owned()
                    } else {
                        size.to_string()
                    };
                    sizes.push(format!("{size} B ×{per_op:.2}"));
                }
            }
            println!(
                "allocations/{key}: {label}: {count:.2} allocations, {bytes:.0} B per op [{}]",
                sizes.join(", ")
            );
            out.push_str(&format!(
                "alloc.{key}.label={label}\nalloc.{key}.count={count:.2}\n\
                 alloc.{key}.bytes={bytes:.0}\nalloc.{key}.sizes={}\n",
                sizes.join(", ")
            ));
        }
        drop(scope.finish().await);
        // What a scope adds to the future that holds it (a request task's
        // cell, for one).
        let body = async {};
        let bare = std::mem::size_of_val(&body);
        let scoped = std::mem::size_of_val(&Scope::new("size").run_and_report(body));
        println!("future size: async {{}} {bare} B; in Scope::run_and_report {scoped} B");
        out.push_str(&format!("future.bare={bare}\nfuture.scoped={scoped}\n"));
        out
    })
}
