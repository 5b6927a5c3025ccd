//! An error in the self-contained form's options. The fn is emitted without
//! its `#[test]` (a plain async fn), so under `cargo test` rustc does not add
//! "async functions cannot be used for tests" to the attribute's error. (A
//! bin drops `#[test]` fns before that check either way; the snapshot
//! `fallback_test_fn` in leakfree-macros shows the emitted fn.)

use leakfree_runtime::leak_checked;

#[leak_checked(flavor = "multi_thread", worker_thread = 2)]
#[test]
async fn a() {}

fn main() {}
