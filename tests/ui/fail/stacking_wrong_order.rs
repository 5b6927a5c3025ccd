//! Orders of test attributes that cannot work, each explained at a token.

use leakfree_runtime::leak_checked;
use rstest::rstest;
use test_case::test_case;

// rstest copies the attributes below it onto each case: #[leak_checked]
// goes below it.
#[leak_checked]
#[rstest]
#[case(1)]
#[tokio::test]
async fn above_rstest(#[case] n: u32) {
    assert_eq!(n, 1);
}

// test_case, with several cases, reorders the attributes below them:
// #[leak_checked] goes above the cases.
#[test_case(1; "one")]
#[test_case(2; "two")]
#[leak_checked]
#[tokio::test]
async fn below_test_case(n: u32) {
    assert!(n > 0);
}

// test_log expands to `#[tokio::test]` above everything else, so this
// #[leak_checked] would only see tokio's output.
#[test_log::test(tokio::test)]
#[leak_checked]
async fn below_test_log() {}

fn main() {}
