//! Orders of test attributes that cannot work, each explained at a token.

use leakfree_runtime::leak_checked;
use rstest::rstest;

// rstest copies the attributes below it onto each case: #[leak_checked]
// goes below it.
#[leak_checked]
#[rstest]
#[case(1)]
#[tokio::test]
async fn above_rstest(#[case] n: u32) {
    assert_eq!(n, 1);
}

// (`#[leak_checked]` below several `#[test_case]`s fails the same way as
// below `#[tokio::test]` under `cargo test`; test_case puts its cases in a
// `#[cfg(test)]` module, which a bin drops, so it cannot be shown here.)

// test_log expands to `#[tokio::test]` above everything else, so this
// #[leak_checked] would only see tokio's output.
#[test_log::test(tokio::test)]
#[leak_checked]
async fn below_test_log() {}

fn main() {}
