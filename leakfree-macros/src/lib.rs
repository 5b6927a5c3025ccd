//! The `#[leak_checked]` attribute of [`leakfree-runtime`].
//!
//! Depend on `leakfree-runtime`, not on this crate: it re-exports the
//! attribute, its documentation is the user-facing one, and the code this
//! attribute generates calls `leakfree_runtime::__private`, a hidden module
//! whose items may change in any patch release (this crate is pinned to the
//! runtime's exact version).
//!
//! The crate is split as `args.rs` (the options), `test_attr.rs` (which
//! attributes make a fn a test), and `expand.rs` (the rewrite), so the whole
//! expansion is testable without a compiler run: see the snapshots in
//! `src/snapshots/`.
//!
//! # What it expands to
//!
//! ```ignore
//! #[leak_checked(grace = "250ms", ignore_name = "pool-*")]
//! #[tokio::test]
//! async fn stops_pinger() -> Result<(), Error> {
//!     body
//! }
//! ```
//!
//! becomes (the `#[tokio::test]` stays and expands afterwards):
//!
//! ```ignore
//! #[tokio::test]
//! async fn stops_pinger() -> Result<(), Error> {
//!     ::leakfree_runtime::__private::run_scoped(
//!         ::leakfree_runtime::__private::test_scope("stops_pinger")
//!             .grace(::leakfree_runtime::__private::Duration::from_nanos(250000000))
//!             .ignore_name("pool-*"),
//!         async move {
//!             // Fixes the block's output type before the body is checked, so
//!             // `return` and `?` coerce and convert as in the `async fn`.
//!             if let ::core::option::Option::Some(__leakfree_ret) =
//!                 ::core::option::Option::None::<Result<(), Error>>
//!             {
//!                 return __leakfree_ret;
//!             }
//!             let __leakfree_ret: Result<(), Error> = { body };
//!             __leakfree_ret
//!         },
//!     )
//!     .await
//! }
//! ```
//!
//! See [`leak_checked`] for every form and option.
//!
//! [`leakfree-runtime`]: https://docs.rs/leakfree-runtime

mod args;
mod expand;
mod runtime_args;
mod test_attr;
mod validate;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Checks that an `async fn` (or every test in a module) leaves no tasks behind.
///
/// Every task spawned while the function runs belongs to its scope; when the
/// function returns, panics or is dropped, the scope waits up to a grace
/// period for those tasks, then reports and cancels the ones still alive.
///
/// # Forms
///
/// In the equivalent code below, `typed!(R, body)` stands for an
/// `async move` block whose output is `R` with the body's tail and `return`s
/// coerced to `R`, exactly as in the `async fn` (see the crate docs for its
/// expansion); for `-> impl Trait` it is the plain `async move { body }`.
///
/// **Wrapping** — above `#[tokio::test]` or `#[tokio::main]` (any path ending
/// in `tokio::test` / `tokio::main`); tokio keeps building the runtime:
///
/// ```ignore
/// #[leak_checked]
/// #[tokio::test]
/// async fn a() -> R { body }
///
/// // is
///
/// #[tokio::test]
/// async fn a() -> R {
///     ::leakfree_runtime::__private::run_scoped(
///         // for `#[tokio::main]`, the service scope below
///         ::leakfree_runtime::__private::test_scope("a"),
///         typed!(R, body),
///     )
///     .await
/// }
/// ```
///
/// **Self-contained** — above the built-in `#[test]` on an `async fn`;
/// leakfree builds the runtime (and can attribute every spawn to the test):
///
/// ```ignore
/// #[leak_checked(flavor = "multi_thread", worker_threads = 2)]
/// #[test]
/// async fn b() { body }
///
/// // is
///
/// #[::core::prelude::v1::test]
/// fn b() {
///     let __leakfree_body = typed!((), body);
///     ::leakfree_runtime::__private::block_on_test(
///         ::leakfree_runtime::__private::test_scope("b"),
///         ::leakfree_runtime::__private::RuntimeOptions::new()
///             .flavor(::leakfree_runtime::__private::Flavor::MultiThread)
///             .worker_threads(2),
///         __leakfree_body,
///     )
/// }
/// ```
///
/// **Service** — any other `async fn` (free fn or method, generic or not),
/// on the caller's runtime. The signature is untouched:
///
/// ```ignore
/// #[leak_checked(grace = "2s")]
/// pub async fn handle(&self, req: Request) -> Result<Response, Error> { body }
///
/// // is
///
/// pub async fn handle(&self, req: Request) -> Result<Response, Error> {
///     ::leakfree_runtime::__private::run_scoped(
///         ::leakfree_runtime::__private::service_scope_for(
///             "handle",
///             ::core::cfg!(debug_assertions), // evaluated in *your* crate
///         )
///         .grace(::leakfree_runtime::__private::Duration::from_nanos(2000000000)),
///         typed!(Result<Response, Error>, body),
///     )
///     .await
/// }
/// ```
///
/// A service scope's policy follows your build: with `debug_assertions` a
/// leak panics when the call ends; without, the call returns as soon as the
/// body does, and the verdict is reached off the call path and logged (a
/// `tracing` warning, target `leakfree`). `policy` or `handler` replace that
/// default in every build. At run time the environment overrides every scope,
/// whatever its options: `LEAKFREE_POLICY=panic|log|off` its policy,
/// `LEAKFREE_GRACE=250ms` its grace period. `#[tokio::main]` gets the same
/// service scope. Tests always start from the `Panic` policy.
///
/// **Module** — on an inline `mod`: every `async fn` directly inside it that
/// carries `#[tokio::test]`, `#[tokio::main]` or `#[test]` is expanded as if
/// annotated with the module's options. A fn's own `#[leak_checked(...)]`
/// overrides them key by key (`policy` and `handler` count as one key: either
/// replaces the module's either); `#[leak_checked(skip)]` leaves it unchecked.
/// Runtime options set on the module apply only to self-contained tests.
/// Those inner attributes are read by the module's attribute, so they need no
/// import (a `use …::leak_checked;` there is kept from warning unused).
///
/// **`debug_only`** — on any of the forms above but the self-contained one,
/// the fn is emitted twice, with the same signature and attributes:
///
/// ```ignore
/// #[leak_checked(debug_only)]
/// #[tokio::test]
/// async fn c() { body }
///
/// // is
///
/// #[cfg(debug_assertions)]
/// #[tokio::test]
/// async fn c() { /* the wrapping form above */ }
///
/// #[cfg(not(debug_assertions))]
/// #[tokio::test]
/// async fn c() { body }
/// ```
///
/// # Options
///
/// | option | meaning |
/// |---|---|
/// | `grace = "100ms"` | how long to wait for tasks to finish (`us`, `ms`, `s`; `"1.5s"` works) |
/// | `ignore_name = "glob"` or `["a", "b*"]` | tasks with a matching name are not leaks |
/// | `ignore_location = "src/pool.rs"` or `[..]` | tasks spawned in a matching file are not leaks |
/// | `allow_untracked` | do not fail on untracked leftover tasks, only count them |
/// | `policy = "panic"` / `"log"` / `"off"` | what a leak does: panic, log a `tracing` warning, or run unchecked (default: panic; for services, log in release builds) |
/// | `handler = path` | call `path(&report)` on a leak instead: a `fn(&LeakReport)` or a `Fn(&LeakReport) + Send + Sync + 'static` value reachable by path (resolved where the fn is); replaces `policy` |
/// | `debug_only` | check only with `debug_assertions`: release builds get the fn as written, at no cost (not on `#[test] async fn`, which needs the expansion; a module's `debug_only` leaves those checked) |
/// | `crate = "path"` | path of `leakfree_runtime` if renamed (default `::leakfree_runtime`) |
/// | `flavor = "current_thread"` / `"multi_thread"` | self-contained form only |
/// | `worker_threads = N` | self-contained form with `multi_thread` only |
/// | `start_paused = true` | self-contained form only |
/// | `skip` | on a fn inside an annotated module: leave it unchecked |
///
/// # Errors
///
/// Mistakes are compile errors at the offending token, emitted next to the
/// item as written, so the rest of the crate keeps compiling. Placing the
/// attribute *below* `#[tokio::test]` is detected and explained.
#[proc_macro_attribute]
pub fn leak_checked(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match expand::expand(args.into(), item.clone()) {
        Ok(expanded) => expanded.into(),
        Err(err) => {
            let mut out = expand::fallback(item);
            out.extend(err.into_compile_error());
            out.into()
        }
    }
}
