//! The `#[leak_checked]` attribute of [`leakfree-runtime`].
//!
//! Depend on `leakfree-runtime`, not on this crate: it re-exports the
//! attribute, its documentation is the user-facing one, and the code this
//! attribute generates calls `leakfree_runtime::__private`, a hidden module
//! whose items may change in any patch release (this crate is pinned to the
//! runtime's exact version).
//!
//! The crate is split as `args.rs` (the options' syntax), `runtime_args.rs`
//! (the runtime options, including those of a taken-over `#[tokio::test]`),
//! `test_attr.rs` (which attributes make a fn a test), `validate.rs` (the
//! form and which options it allows) and `expand.rs` (the rewrite), so the
//! whole expansion is testable without a compiler run: see the snapshots in
//! `src/snapshots/`.
//!
//! # What it expands to
//!
//! ```ignore
//! #[leak_checked(grace = "250ms", ignore_name = "pool-*")]
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn stops_pinger() -> Result<(), Error> {
//!     body
//! }
//! ```
//!
//! becomes (the `#[tokio::test]` is consumed: leakfree builds the runtime
//! with tokio's options, and its spawn hooks where the build has them):
//!
//! ```ignore
//! #[::core::prelude::v1::test]
//! fn stops_pinger() -> Result<(), Error> {
//!     let __leakfree_body = async move {
//!         // Fixes the block's output type before the body is checked, so
//!         // `return` and `?` coerce and convert as in the `async fn`.
//!         if let ::core::option::Option::Some(__leakfree_ret) =
//!             ::core::option::Option::None::<Result<(), Error>>
//!         {
//!             return __leakfree_ret;
//!         }
//!         let __leakfree_ret: Result<(), Error> = { body };
//!         __leakfree_ret
//!     };
//!     ::leakfree_runtime::__private::block_on_test(
//!         ::leakfree_runtime::__private::test_scope("stops_pinger")
//!             // The runtime's duration parser, run at compile time: a bad
//!             // string fails the build here, at the string.
//!             .grace({
//!                 const __LEAKFREE_GRACE: ::leakfree_runtime::__private::Duration =
//!                     ::leakfree_runtime::__private::duration("250ms");
//!                 __LEAKFREE_GRACE
//!             })
//!             .ignore_name("pool-*"),
//!         ::leakfree_runtime::__private::RuntimeOptions::new()
//!             .flavor(::leakfree_runtime::__private::Flavor::MultiThread)
//!             .worker_threads(2),
//!         __leakfree_body,
//!     )
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
/// **Test** — above `#[tokio::test(...)]` (any path ending in
/// `tokio::test`, or `tokio1::test(crate = "tokio1")`) or the built-in
/// `#[test]` on an `async fn`. leakfree builds the runtime (so it installs its
/// spawn hooks and can attribute every spawn to the test); the test attribute
/// is consumed and the fn becomes a sync `#[test]`:
///
/// ```ignore
/// #[leak_checked]
/// #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// async fn b() { body }
///
/// // is, as for
/// // #[leak_checked(flavor = "multi_thread", worker_threads = 2)] #[test]:
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
/// `#[tokio::test]`'s options keep tokio's meaning and tokio's error
/// messages: `flavor` (`"current_thread"`, `"multi_thread"`, `"local"`: the
/// last runs `block_on_test_local` on a `LocalRuntime`), `worker_threads`,
/// `start_paused`, `name` (`RuntimeOptions::name`), `unhandled_panic =
/// "ignore" | "shutdown_runtime"` (`RuntimeOptions::unhandled_panic(
/// tokio::runtime::UnhandledPanic::…)`; like tokio's, it only compiles with
/// `--cfg tokio_unstable`) and `crate = "path"` (where tokio is: used for
/// `UnhandledPanic`, and resolved so the path is checked). Options tokio
/// would reject at run time are compile errors here: `start_paused` or
/// `unhandled_panic` on `multi_thread`, `worker_threads` without it. Without
/// `worker_threads`, a `multi_thread` runtime leakfree builds has 2 workers
/// (tokio's attribute: one per CPU). In this form the runtime options go in
/// tokio's attribute; `#[leak_checked(flavor = ...)]` is for `#[test]`.
///
/// **Main** — above `#[tokio::main]`: tokio keeps building the runtime (a
/// service's runtime is its own), and the body runs in a service scope:
///
/// ```ignore
/// #[leak_checked]
/// #[tokio::main]
/// async fn main() -> R { body }
///
/// // is
///
/// #[tokio::main]
/// async fn main() -> R {
///     ::leakfree_runtime::__private::run_scoped(
///         ::leakfree_runtime::__private::service_scope_for("main", ::core::cfg!(debug_assertions)),
///         typed!(R, body),
///     )
///     .await
/// }
/// ```
///
/// **Stacked with other test macros**:
///
/// - `#[test_log::test]`: put `#[leak_checked]` above it, in either of
///   test-log's forms, `#[test_log::test(tokio::test(...))]` or stacked with
///   `#[tokio::test]` (either order). leakfree takes over the `tokio::test`
///   and keeps `#[test_log::test]` (without arguments) on the generated
///   `#[test]`. Write test-log's attribute by a path ending in
///   `test_log::test`: an imported bare `#[test]` reads as the built-in one.
/// - `#[rstest]`: put `#[leak_checked]` below `#[rstest]` and its `#[case]`s,
///   directly above `#[tokio::test]`: rstest copies it onto each case, so each
///   case is its own scope (above `#[rstest]` is a compile error).
/// - `#[test_case(...)]`: put `#[leak_checked]` above the cases: it takes
///   over the `#[tokio::test]` below them and leaves a sync fn without a
///   test attribute, from which test_case generates one `#[test]` per case
///   (the scope is named after the fn). Below several cases it cannot work:
///   test_case reorders the attributes below them.
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
///         .grace({
///             const __LEAKFREE_GRACE: ::leakfree_runtime::__private::Duration =
///                 ::leakfree_runtime::__private::duration("2s");
///             __LEAKFREE_GRACE
///         }),
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
/// Runtime options set on the module apply only to `#[test]` fns (a
/// `#[tokio::test]` fn takes its runtime from its own attribute), and the
/// module's `timeout` only to tests.
/// Those inner attributes are read by the module's attribute, so they need no
/// import (a `use …::leak_checked;` there is kept from warning unused).
///
/// **`debug_only`** — on any of the forms above but `#[test] async fn`
/// (which does not compile as written), the fn is emitted twice, with the
/// same signature and attributes:
///
/// ```ignore
/// #[leak_checked(debug_only)]
/// #[tokio::test]
/// async fn c() { body }
///
/// // is
///
/// #[cfg(debug_assertions)]
/// #[::core::prelude::v1::test]
/// fn c() { /* the test form above */ }
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
/// | `grace = "100ms"` | how long to wait for tasks to finish (`us`, `ms`, `s`; `"1.5s"` works; the runtime's grammar, the one `LEAKFREE_GRACE` reads, checked at compile time) |
/// | `timeout = "30s"` | tests only: how long the body may run (same grammar; the scope's `timeout`) |
/// | `ignore_name = "glob"` or `["a", "b*"]` | tasks with a matching name are not leaks |
/// | `ignore_location = "src/pool.rs"` or `[..]` | tasks spawned in a matching file are not leaks |
/// | `ignore_crate = "hyper_util"` or `[..]` | tasks spawned from that crate's source (any version, any path; `-` or `_`) are not leaks |
/// | `allow_untracked` | do not fail on untracked leftover tasks, only count them |
/// | `policy = "panic"` / `"log"` / `"off"` | what a leak does: panic, log a `tracing` warning, or run unchecked (default: panic; for services, log in release builds) |
/// | `handler = path` | call `path(&report)` on a leak instead: a `fn(&LeakReport)` or a `Fn(&LeakReport) + Send + Sync + 'static` value reachable by path (resolved where the fn is); replaces `policy` |
/// | `debug_only` | check only with `debug_assertions`: release builds get the fn as written, at no cost (not on `#[test] async fn`, which needs the expansion; a module's `debug_only` leaves those checked) |
/// | `crate = "path"` | path of `leakfree_runtime` if renamed (default `::leakfree_runtime`) |
/// | `flavor = "current_thread"` / `"multi_thread"` / `"local"` | `#[test]` form only (above `#[tokio::test]`, write it there) |
/// | `worker_threads = N` | `#[test]` form with `multi_thread` only |
/// | `start_paused = true` | `#[test]` form, not with `multi_thread` |
/// | `skip` | on a fn inside an annotated module: leave it unchecked |
///
/// # Errors
///
/// Mistakes are compile errors at the offending token, emitted next to the
/// item as written, so the rest of the crate keeps compiling; an unknown
/// option's error suggests the closest valid one. On an error a test
/// `async fn` is emitted without its test attribute (a plain, still
/// type-checked `async fn`), so the attribute's error is the only one: no
/// "async functions cannot be used for tests", no second report by tokio.
/// Placing the attribute *below* `#[tokio::test]` (or `#[test_log::test(tokio::test)]`,
/// or above `#[rstest]`) is detected and explained.
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
