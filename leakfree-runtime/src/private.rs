//! The only items generated code calls: `::leakfree_runtime::__private::…`.
//!
//! Not public API: anything here may change in a patch release. The macro in
//! `leakfree-macros` is pinned to this crate's exact version, so the two always
//! agree on these signatures.
//!
//! Every entry point returns a [`Checked`]: generated code calls
//! [`Checked::into_value`] itself, so that a leak's panic names the annotated
//! test's file and line, not this crate's.

use std::future::Future;

use crate::detached_run::DetachedRun;
use crate::duration;
pub use crate::policy::Policy;
pub use crate::runtime::{Flavor, RuntimeOptions};
use crate::runtime::{block_on_checked, block_on_checked_local};
pub use crate::scope::{Checked, ScopeBuilder};
use crate::scope::{DEFAULT_TEST_TIMEOUT, Scope};
pub use ::core::time::Duration;

/// A duration of leakfree's one grammar, evaluated in a constant the macro
/// emits: a bad `grace` is a compile error at the string, from the same
/// parser `LEAKFREE_GRACE` uses.
pub const fn duration(text: &str) -> Duration {
    match duration::parse(text) {
        Ok(duration) => duration,
        Err(why) => panic!("{}", why.compile_error()),
    }
}

/// Scope settings for a test: untracked tasks are counted (each test owns its
/// runtime), leaked tasks' stacks are dumped where the build can, leaks fail
/// the test.
pub fn test_scope(name: &'static str) -> ScopeBuilder {
    Scope::builder(name)
        .count_untracked(true)
        .stuck_at(true)
        .timeout(DEFAULT_TEST_TIMEOUT)
}

/// Service scope settings decided by the *user's* build: with
/// `debug_assertions` a leak panics at the scope's end; without, the verdict
/// is reached off the call path and logged. Generated code passes
/// `::core::cfg!(debug_assertions)` as evaluated in the user's crate.
pub fn service_scope_for(name: &'static str, debug_assertions: bool) -> ScopeBuilder {
    Scope::builder(name)
        .policy(Policy::for_build(debug_assertions))
        .detach_verdict(!debug_assertions)
}

/// The wrapping form: the body of an `async fn` that already runs on a runtime
/// (`#[tokio::main]`, or any caller).
pub async fn run_scoped<F: Future>(scope: ScopeBuilder, body: F) -> Checked<F::Output> {
    let scope = scope.build();
    if scope.runs_detached_untimed() {
        // A release build's service scope: in place, as the tower layer.
        return Checked::passed(DetachedRun::new(scope, body).await);
    }
    scope.run_checked(body).await
}

/// The self-contained test form: builds the runtime, runs the body in a scope,
/// checks, and shuts the runtime down without waiting on zombies.
pub fn block_on_test<F: Future>(
    scope: ScopeBuilder,
    runtime: RuntimeOptions,
    body: F,
) -> Checked<F::Output> {
    block_on_checked(scope, runtime, body)
}

/// The test form with tokio's `flavor = "local"`: [`block_on_test`] on a
/// `LocalRuntime`, where `spawn_local` needs no `LocalSet`.
pub fn block_on_test_local<F: Future>(
    scope: ScopeBuilder,
    runtime: RuntimeOptions,
    body: F,
) -> Checked<F::Output> {
    block_on_checked_local(scope, runtime, body)
}
