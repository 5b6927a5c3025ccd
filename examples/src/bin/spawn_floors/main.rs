//! `spawn_floors`: what each part of a tracked spawn costs on its own, beside
//! `tokio::spawn`, measured in one run. Run it in a release build:
//!
//! ```text
//! cargo run --release -p leakfree-examples --bin spawn_floors
//! spawn_floors [--rounds R] [--tasks N] [--quick] [--only VARIANT]
//! ```
//!
//! Each round spawns N trivial tasks (default 1,000) and joins them, on a
//! `current_thread` runtime and on a 2-worker `multi_thread` one, timed on a
//! task inside the runtime. The variants are stand-ins built here, each
//! adding one part of what `leakfree_runtime::spawn` does to the one
//! before:
//!
//! - **tokio**: `tokio::spawn` + join;
//! - **scope reference + live count**: the task's future wrapped in one that
//!   holds its scope (an `Arc`) and counts itself in the scope's live count;
//! - **+ context per poll**: the wrapper also installs the scope in a
//!   thread-local around each poll (so the task's own spawns find it);
//! - **+ table slot (the wrapper)**: and takes a slot in the scope's table
//!   under a lock: everything a scope needs to know and cancel its tasks;
//! - **wrapper + probe**: also polls the future with a waker of its own (a
//!   per-task `Arc` that forwards to tokio's waker, stored at the first
//!   poll, borrowed for each poll): the blocked-forever probe, which must outlive the task while any
//!   waker clone does, so it cannot live in tokio's cell;
//! - **slab records, lazy probe**: the design the hot-path issue proposes,
//!   built whole as a stand-in (`slab_record.rs`): the record a slot of
//!   the scope's slab (no allocation per task), the probe waker made only
//!   when a waker escapes a poll, the abort handle attached, the live count
//!   and the context per poll; no table lock at the task's end unless it
//!   is the slot's last user;
//! - **leakfree**: `leakfree_runtime::spawn` in a scope, the real thing.
//!
//! Variants alternate within each round, so the shared machine's drift falls
//! on all alike; the medians over R rounds (default 200) and their ratios to
//! tokio are printed. `--quick` (3 rounds of 100 tasks) only shows that it
//! runs. `--only VARIANT` (`tokio`, `counted`, `entered`, `wrapper`,
//! `probed`, `slab`, `leakfree`) runs that variant's R rounds alone on the
//! `current_thread` runtime and prints no times: a driver for callgrind,
//! where two round counts give one task's instructions.
//!
//! Reading (`BENCHMARKS.md`): the wrapper costs little; the probe object is
//! nearly all of the gap between a tracked spawn and `tokio::spawn`.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_util::task::{ArcWake, waker_ref};
use parking_lot::Mutex;
use pin_project_lite::pin_project;

mod slab_record;

/// What a stand-in scope keeps: a live count and a table.
#[derive(Default)]
struct StandInScope {
    live: AtomicUsize,
    table: Mutex<Vec<bool>>,
}

thread_local! {
    static CURRENT: Cell<Option<Arc<StandInScope>>> = const { Cell::new(None) };
}

pin_project! {
    /// The wrapper stand-in: scope reference, live count, thread-local
    /// context per poll, table slot.
    struct Wrapper<F> {
        #[pin]
        inner: F,
        scope: Option<Arc<StandInScope>>,
        parts: Parts,
        key: usize,
    }

    impl<F> PinnedDrop for Wrapper<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(scope) = this.scope.as_ref() {
                if this.parts.table {
                    scope.table.lock()[*this.key] = false;
                }
                scope.live.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// Which parts past the scope reference and live count a wrapper has.
#[derive(Debug, Clone, Copy)]
struct Parts {
    context: bool,
    table: bool,
}

impl<F> Wrapper<F> {
    fn new(inner: F, scope: &Arc<StandInScope>, parts: Parts) -> Self {
        scope.live.fetch_add(1, Ordering::AcqRel);
        let key = if parts.table {
            let mut table = scope.table.lock();
            table.push(true);
            table.len() - 1
        } else {
            0
        };
        Wrapper {
            inner,
            scope: Some(scope.clone()),
            parts,
            key,
        }
    }
}

impl<F: Future> Future for Wrapper<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if !this.parts.context {
            return this.inner.poll(cx);
        }
        let previous = CURRENT.with(|current| current.replace(this.scope.take()));
        let result = this.inner.poll(cx);
        *this.scope = CURRENT.with(|current| current.replace(previous));
        result
    }
}

/// The probe stand-in: a per-task waker that notes wakes and forwards them.
struct Probe {
    woken: AtomicBool,
    runtime: OnceLock<Waker>,
}

impl ArcWake for Probe {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.store(true, Ordering::SeqCst);
        if let Some(waker) = arc_self.runtime.get() {
            waker.wake_by_ref();
        }
    }
}

pin_project! {
    /// The wrapper stand-in polled with a probe waker.
    struct Probed<F> {
        #[pin]
        inner: Wrapper<F>,
        probe: Arc<Probe>,
    }
}

impl<F: Future> Future for Probed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.probe.runtime.get().is_none() {
            let _ = this.probe.runtime.set(cx.waker().clone());
        }
        // Borrowed for the poll, as the runtime's wrapper does: a clone the
        // future keeps is a reference to the probe.
        let waker = waker_ref(this.probe);
        this.inner.poll(&mut Context::from_waker(&waker))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Variant {
    Tokio,
    Counted,
    Entered,
    Wrapper,
    Probed,
    Slab,
    Leakfree,
}

const VARIANTS: [Variant; 7] = [
    Variant::Tokio,
    Variant::Counted,
    Variant::Entered,
    Variant::Wrapper,
    Variant::Probed,
    Variant::Slab,
    Variant::Leakfree,
];

const ALL_PARTS: Parts = Parts {
    context: true,
    table: true,
};

impl Variant {
    /// The name `--only` takes.
    fn short(self) -> &'static str {
        match self {
            Variant::Tokio => "tokio",
            Variant::Counted => "counted",
            Variant::Entered => "entered",
            Variant::Wrapper => "wrapper",
            Variant::Probed => "probed",
            Variant::Slab => "slab",
            Variant::Leakfree => "leakfree",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Tokio => "tokio::spawn",
            Variant::Counted => "scope reference + live count",
            Variant::Entered => "+ context per poll",
            Variant::Wrapper => "+ table slot (the wrapper)",
            Variant::Probed => "wrapper + probe",
            Variant::Slab => "slab records, lazy probe",
            Variant::Leakfree => "leakfree::spawn",
        }
    }
}

/// One round of `tasks` spawns and joins; returns its time.
async fn round(variant: Variant, tasks: usize) -> Duration {
    let start = Instant::now();
    let scope = Arc::new(StandInScope::default());
    let mut handles = Vec::with_capacity(tasks);
    match variant {
        Variant::Tokio => handles.extend((0..tasks).map(|_| tokio::spawn(async {}))),
        Variant::Counted | Variant::Entered | Variant::Wrapper => {
            let parts = Parts {
                context: variant != Variant::Counted,
                table: variant == Variant::Wrapper,
            };
            handles.extend((0..tasks).map(|_| tokio::spawn(Wrapper::new(async {}, &scope, parts))));
        }
        Variant::Probed => handles.extend((0..tasks).map(|_| {
            let probe = Arc::new(Probe {
                woken: AtomicBool::new(false),
                runtime: OnceLock::new(),
            });
            tokio::spawn(Probed {
                inner: Wrapper::new(async {}, &scope, ALL_PARTS),
                probe,
            })
        })),
        Variant::Slab => {
            let scope = Arc::new(slab_record::SlabScope::default());
            handles.extend((0..tasks).map(|_| slab_record::spawn(&scope, async {})));
        }
        Variant::Leakfree => {
            let scope = leakfree_runtime::Scope::builder("floors").build();
            scope
                .run_and_report(async move {
                    let handles: Vec<_> = (0..tasks)
                        .map(|_| leakfree_runtime::spawn(async {}))
                        .collect();
                    for handle in handles {
                        handle.await.unwrap();
                    }
                })
                .await;
            return start.elapsed();
        }
    }
    for handle in handles {
        handle.await.unwrap();
    }
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn measure(runtime: &tokio::runtime::Runtime, rounds: usize, tasks: usize) -> Vec<Duration> {
    runtime.block_on(async move {
        tokio::spawn(async move {
            let mut times = vec![Vec::new(); VARIANTS.len()];
            for _ in 0..rounds {
                for (i, variant) in VARIANTS.iter().enumerate() {
                    times[i].push(round(*variant, tasks).await);
                }
            }
            times.into_iter().map(median).collect()
        })
        .await
        .unwrap()
    })
}

fn usage() -> ! {
    eprintln!("usage: spawn_floors [--rounds R] [--tasks N] [--quick] [--only VARIANT]");
    std::process::exit(2);
}

/// `--only`: `rounds` rounds of one variant on a `current_thread` runtime.
fn count_only(variant: Variant, rounds: usize, tasks: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        for _ in 0..rounds {
            round(variant, tasks).await;
        }
    });
    println!("{rounds} rounds of {tasks} tasks, {}", variant.short());
}

fn main() {
    let (mut rounds, mut tasks) = (200, 1000);
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || -> usize {
            match args.next().map(|value| value.parse()) {
                Some(Ok(n)) if n > 0 => n,
                _ => {
                    eprintln!("spawn_floors: {arg} takes a positive whole number");
                    usage()
                }
            }
        };
        match arg.as_str() {
            "--rounds" => rounds = number(),
            "--tasks" => tasks = number(),
            "--quick" => (rounds, tasks) = (3, 100),
            "--only" => {
                let name = args.next().unwrap_or_default();
                match VARIANTS.iter().find(|v| v.short() == name) {
                    Some(variant) => only = Some(*variant),
                    None => {
                        let names: Vec<_> = VARIANTS.iter().map(|v| v.short()).collect();
                        eprintln!(
                            "spawn_floors: --only takes one of {}, got {name:?}",
                            names.join(", ")
                        );
                        usage()
                    }
                }
            }
            _ => usage(),
        }
    }
    if let Some(variant) = only {
        return count_only(variant, rounds, tasks);
    }
    println!("{tasks} trivial tasks spawned and joined, medians of {rounds} rounds");
    println!();
    println!("| flavor | variant | per task | / tokio::spawn |");
    println!("|---|---|---|---|");
    for flavor in ["current_thread", "multi_thread"] {
        let runtime = if flavor == "current_thread" {
            tokio::runtime::Builder::new_current_thread().build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
        }
        .expect("a runtime");
        let medians = measure(&runtime, rounds, tasks);
        let per_task = |d: Duration| d.as_nanos() as f64 / tasks as f64;
        for (variant, time) in VARIANTS.iter().zip(&medians) {
            println!(
                "| {flavor} | {} | {:.0} ns | {:.2}× |",
                variant.label(),
                per_task(*time),
                per_task(*time) / per_task(medians[0]),
            );
        }
    }
}
