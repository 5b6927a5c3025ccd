//! The runtime the self-contained test form builds
//! (`#[leak_checked] #[test] async fn`).
//!
//! Owning the runtime lets leakfree count every task on it, install tokio's
//! spawn hooks on it (built with `--cfg tokio_unstable`), and shut it down
//! without waiting on zombies: a blocking closure that never returns would
//! otherwise hang the test in the runtime's drop.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Duration;

use crate::instrument;
use crate::scope::{Checked, ScopeBuilder};

/// Which tokio scheduler a self-contained test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// One thread: the test's own (tokio's `current_thread`, the default).
    #[default]
    CurrentThread,
    /// A worker pool (tokio's `multi_thread`).
    MultiThread,
}

/// Settings of a runtime leakfree builds, mirroring `#[tokio::test]`'s.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RuntimeOptions {
    flavor: Flavor,
    worker_threads: Option<usize>,
    start_paused: bool,
    /// tokio's runtime name (`#[tokio::test(name = "...")]`).
    name: Option<String>,
    /// tokio's reaction to a panic in a spawned task
    /// (`#[tokio::test(unhandled_panic = "...")]`).
    #[cfg(tokio_unstable)]
    unhandled_panic: Option<tokio::runtime::UnhandledPanic>,
}

impl RuntimeOptions {
    /// Current-thread, two workers if multi-thread is chosen, clock running.
    pub fn new() -> Self {
        RuntimeOptions::default()
    }

    /// The scheduler.
    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// Worker threads of a multi-thread runtime.
    pub fn worker_threads(mut self, threads: usize) -> Self {
        self.worker_threads = Some(threads);
        self
    }

    /// Starts with tokio's clock paused (needs leakfree-runtime's `test-util`
    /// feature).
    pub fn start_paused(mut self, paused: bool) -> Self {
        self.start_paused = paused;
        self
    }

    /// Names the runtime, as tokio's `Builder::name` (taken over from
    /// `#[tokio::test(name = "...")]`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// What a panic in a spawned task does, as tokio's
    /// `Builder::unhandled_panic` (taken over from
    /// `#[tokio::test(unhandled_panic = "...")]`; tokio's unstable API).
    #[cfg(tokio_unstable)]
    pub fn unhandled_panic(mut self, behavior: tokio::runtime::UnhandledPanic) -> Self {
        self.unhandled_panic = Some(behavior);
        self
    }

    /// The options tokio's attribute adds to a leakfree-built runtime.
    fn apply_tokio_options(&self, builder: &mut tokio::runtime::Builder) {
        if let Some(name) = &self.name {
            builder.name(name.clone());
        }
        #[cfg(tokio_unstable)]
        if let Some(behavior) = &self.unhandled_panic {
            builder.unhandled_panic(behavior.clone());
        }
    }

    /// Builds a `LocalRuntime` (tokio's `flavor = "local"`): current-thread,
    /// and `spawn_local` works without a `LocalSet`. The flavor and worker
    /// threads set here are not used.
    ///
    /// # Panics
    /// As [`RuntimeOptions::build`].
    pub fn build_local(&self) -> tokio::runtime::LocalRuntime {
        self.configure(tokio::runtime::Builder::new_current_thread())
            .build_local(tokio::runtime::LocalOptions::default())
            .expect("leakfree: tokio could not build the test runtime")
    }

    /// Builds the runtime.
    ///
    /// # Panics
    /// With a message naming the fix, when `start_paused` is asked for without
    /// the `test-util` feature, or tokio cannot build the runtime.
    pub fn build(&self) -> tokio::runtime::Runtime {
        let builder = match self.flavor {
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            Flavor::MultiThread => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(self.worker_threads.unwrap_or(2));
                builder
            }
        };
        self.configure(builder)
            .build()
            .expect("leakfree: tokio could not build the test runtime")
    }

    /// Everything but the scheduler: drivers, leakfree's hooks, the paused
    /// clock, and the options taken over from tokio's attribute.
    fn configure(&self, mut builder: tokio::runtime::Builder) -> tokio::runtime::Builder {
        builder.enable_all();
        instrument::install(&mut builder);
        if self.start_paused {
            pause_clock(&mut builder);
        }
        self.apply_tokio_options(&mut builder);
        builder
    }
}

#[cfg(feature = "test-util")]
fn pause_clock(builder: &mut tokio::runtime::Builder) {
    builder.start_paused(true);
}

#[cfg(not(feature = "test-util"))]
fn pause_clock(_: &mut tokio::runtime::Builder) {
    panic!(
        "leakfree: `start_paused = true` needs the `test-util` feature: \
         leakfree-runtime = {{ version = \"…\", features = [\"test-util\"] }}"
    );
}

/// How long the runtime's shutdown may wait for blocking work: zombies have
/// been reported by then, so the test must not hang on them.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(100);

pub(crate) fn block_on_checked<F: Future>(
    scope: ScopeBuilder,
    options: RuntimeOptions,
    body: F,
) -> Checked<F::Output> {
    let runtime = options.build();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async move { scope.build().run_checked(body).await })
    }));
    runtime.shutdown_timeout(SHUTDOWN_TIMEOUT);
    match outcome {
        Ok(value) => value,
        Err(payload) => resume_unwind(payload),
    }
}

/// [`block_on_checked`] on a `LocalRuntime` (tokio's `flavor = "local"`).
pub(crate) fn block_on_checked_local<F: Future>(
    scope: ScopeBuilder,
    options: RuntimeOptions,
    body: F,
) -> Checked<F::Output> {
    let runtime = options.build_local();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async move { scope.build().run_checked(body).await })
    }));
    runtime.shutdown_timeout(SHUTDOWN_TIMEOUT);
    match outcome {
        Ok(value) => value,
        Err(payload) => resume_unwind(payload),
    }
}
