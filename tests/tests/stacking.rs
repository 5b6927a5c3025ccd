//! `#[leak_checked]` stacked with other test macros, in the order each of
//! them documents:
//!
//! - **rstest** turns one fn into several cases and copies the attributes
//!   below it onto each case: `#[leak_checked]` goes below `#[rstest]` and
//!   its `#[case]`s, directly above `#[tokio::test]`, so every case is its own
//!   scope (above `#[rstest]` is a compile error).
//! - **test-case** reorders the attributes below its cases when it has more
//!   than one: `#[leak_checked]` goes above the `#[test_case(...)]`s; it
//!   takes over the `#[tokio::test]` below them and test_case generates one
//!   `#[test]` per case from the sync fn (below them is a compile error).
//! - **test-log** either wraps (`#[test_log::test(tokio::test)]`) or is
//!   stacked with `#[tokio::test]`: `#[leak_checked]` goes above both; it
//!   takes over the `tokio::test` and keeps `#[test_log::test]` on the
//!   generated `#[test]`.
//!
//! Wrong orders are `ui/fail/stacking_wrong_order.rs`. Each stacking has a
//! clean test that passes and a leaking twin that must
//! fail with leakfree's report, so a stacking where leakfree silently drops
//! out fails here.

use std::future::pending;

use leakfree_runtime::{leak_checked, spawn};
use rstest::{fixture, rstest};
use test_case::test_case;

// ---- rstest ----------------------------------------------------------------

#[fixture]
fn base() -> u32 {
    40
}

#[fixture]
async fn offset() -> u32 {
    spawn(async { 2 }).await.unwrap()
}

#[rstest]
#[case(1)]
#[case(2)]
#[leak_checked(grace = "10ms")]
#[tokio::test]
async fn rstest_cases_and_fixtures(#[case] n: u32, base: u32, #[future(awt)] offset: u32) {
    let doubled = spawn(async move { n * 2 }).await.unwrap();
    assert_eq!(doubled, n * 2);
    assert_eq!(base + offset, 42);
}

#[rstest]
#[case(1)]
#[case(2)]
#[leak_checked(grace = "10ms")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "leakfree: 1 task leaked")]
async fn rstest_cases_leaking(#[case] n: u32, base: u32) {
    assert_eq!(base, 40);
    drop(spawn(async move {
        pending::<()>().await;
        n
    }));
}

// ---- test-log --------------------------------------------------------------

/// test-log's set-up ran: its tracing subscriber is installed.
fn logging_is_set_up() {
    assert!(tracing::dispatcher::has_been_set());
    tracing::info!("logged from a leak-checked test");
}

#[leak_checked(grace = "10ms")]
#[test_log::test(tokio::test)]
async fn test_log_wrapping() {
    logging_is_set_up();
    spawn(async {}).await.unwrap();
}

#[leak_checked(grace = "10ms")]
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
#[should_panic(expected = "leakfree: 1 task leaked")]
async fn test_log_wrapping_leaking() {
    logging_is_set_up();
    drop(spawn(pending::<()>()));
}

/// test-log's README order: `#[tokio::test]` above `#[test_log::test]`.
#[leak_checked(grace = "10ms")]
#[tokio::test]
#[test_log::test]
async fn test_log_stacked() {
    logging_is_set_up();
    spawn(async {}).await.unwrap();
}

#[leak_checked(grace = "10ms")]
#[tokio::test]
#[test_log::test]
#[should_panic(expected = "leakfree: 1 task leaked")]
async fn test_log_stacked_leaking() {
    logging_is_set_up();
    drop(spawn(pending::<()>()));
}

/// The other order works the same: leakfree takes the `#[tokio::test]`.
#[leak_checked(grace = "10ms")]
#[test_log::test]
#[tokio::test]
async fn test_log_stacked_above() {
    logging_is_set_up();
    spawn(async {}).await.unwrap();
}

#[leak_checked(grace = "10ms")]
#[test_log::test]
#[tokio::test]
#[should_panic(expected = "leakfree: 1 task leaked")]
async fn test_log_stacked_above_leaking() {
    logging_is_set_up();
    drop(spawn(pending::<()>()));
}

// ---- test-case ------------------------------------------------------------

// `#[leak_checked]` goes above the cases: it takes over the `#[tokio::test]`
// and leaves a sync fn that test_case turns into one `#[test]` per case.
// (Below them it would not work: with several cases test_case reorders the
// attributes below it, which can put `#[tokio::test]` above `#[leak_checked]`.)

#[leak_checked(grace = "10ms")]
#[test_case(1 ; "one")]
#[test_case(2 ; "two")]
#[tokio::test]
async fn test_case_cases(n: u32) {
    assert_eq!(spawn(async move { n + 1 }).await.unwrap(), n + 1);
}

#[leak_checked(grace = "10ms")]
#[test_case(1 ; "one")]
#[test_case(2 ; "two")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "leakfree: 1 task leaked")]
async fn test_case_cases_leaking(n: u32) {
    drop(spawn(async move {
        pending::<()>().await;
        n
    }));
}
