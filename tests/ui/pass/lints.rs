//! Generated code must not trip the user's lints: every form that survives in
//! a bin, under `deny` of the default lints and of strict allow-by-default ones.
//! (`clippy::` lints are accepted by rustc and only checked by clippy.)

#![deny(warnings, unused, rust_2018_idioms, missing_docs, unreachable_pub)]
#![deny(
    unused_results,
    unused_qualifications,
    unused_lifetimes,
    single_use_lifetimes
)]
#![deny(let_underscore_drop, unsafe_code, trivial_casts, trivial_numeric_casts)]
#![deny(clippy::all, clippy::pedantic)]

use leakfree_runtime::leak_checked;

/// A handler returning a value.
#[leak_checked]
async fn handler(input: u32) -> u32 {
    input + 1
}

/// A handler with `?`.
#[leak_checked(grace = "5ms", allow_untracked)]
async fn fallible(input: &str) -> Result<u32, std::num::ParseIntError> {
    let n = input.parse::<u32>()?;
    Ok(n)
}

/// A handler with no return value.
#[leak_checked(ignore_name = ["a", "b*"], ignore_location = "x.rs")]
async fn unit() {}

/// Where leak reports go.
fn on_leak(report: &leakfree_runtime::LeakReport) {
    eprintln!("{report}");
}

/// A handler checked in debug builds only, reporting to [`on_leak`].
#[leak_checked(debug_only, handler = on_leak)]
async fn debug_checked(input: u32) -> u32 {
    input
}

/// A handler whose leaks are logged.
#[leak_checked(policy = "log")]
async fn logged() {}

/// The entrypoint of a service.
#[leak_checked(policy = "panic")]
#[tokio::main(flavor = "current_thread")]
async fn serve() -> u32 {
    unit().await;
    logged().await;
    handler(1).await + fallible("2").await.unwrap_or(0) + debug_checked(0).await
}

#[leak_checked(debug_only)]
mod checked {
    #[tokio::test]
    async fn wrapped() {}

    #[test]
    async fn self_contained() {}
}

fn main() {
    assert_eq!(serve(), 4);
}
