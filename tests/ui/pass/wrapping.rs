//! Wrapping form: above `#[tokio::test]` / `#[tokio::main]`, under the paths
//! tokio is written with.
//!
//! A bin drops `#[test]` fns before type checking, so `#[tokio::main]` on a
//! plain fn is what makes this case type-check the wrapping expansion;
//! `tests/ui.rs` compiles the `#[tokio::test]` forms under `--test`.

use leakfree_runtime::leak_checked;

#[leak_checked]
#[tokio::test]
async fn plain() {}

#[leak_checked(grace = "250ms", ignore_name = ["pool-*", "metrics"], ignore_location = "src/*.rs", allow_untracked)]
#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "documents the options"]
async fn with_options() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "7".parse()?;
    assert_eq!(n, 7);
    Ok(())
}

#[leak_checked(grace = "1.5s", ignore_location = ["src/pool.rs", "src/bus/*.rs"])]
#[tokio::main(flavor = "current_thread")]
async fn entry(input: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = input.parse()?;
    let task = leakfree_runtime::spawn(async move { n * 2 });
    Ok(task.await.expect("task ran"))
}

#[leak_checked]
#[::tokio::main]
async fn opaque() -> impl std::fmt::Debug {
    "unnameable return type"
}

fn main() {
    assert_eq!(entry("21"), Ok(42));
    assert!(entry("x").is_err());
    println!("{:?}", opaque());
}
