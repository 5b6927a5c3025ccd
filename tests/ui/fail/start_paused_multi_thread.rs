//! tokio cannot pause the clock of a multi-thread runtime: a compile error
//! in both test forms, with tokio's reason (tokio's wording in tokio's
//! attribute).

use leakfree_runtime::leak_checked;

#[leak_checked(flavor = "multi_thread", start_paused = true)]
#[test]
async fn self_contained() {}

#[leak_checked]
#[tokio::test(flavor = "multi_thread", start_paused = true)]
async fn tokio_test() {}

fn main() {}
