//! `timeout` bounds a test; a service fn or `main` is bounded by its caller.

use leakfree_runtime::leak_checked;

#[leak_checked(timeout = "30s")]
async fn service() {}

#[leak_checked(timeout = "30s")]
#[tokio::main]
async fn entry() {}

#[leak_checked(timeout = 30s)]
#[tokio::test]
async fn suffixed() {}

#[leak_checked(timeout = 30)]
#[tokio::test]
async fn no_unit() {}

fn main() {}
