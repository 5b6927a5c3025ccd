//! Mistakes in a taken-over `#[tokio::test(...)]`: tokio's messages, at the
//! token, reported once (the fn is emitted without its test attribute, so
//! tokio does not report them a second time).

use leakfree_runtime::leak_checked;

#[leak_checked]
mod tests {
    #[tokio::test(flavor = "multi")]
    async fn unknown_flavor() {}

    #[tokio::test(worker_threads = 2)]
    async fn worker_threads_on_current_thread() {}

    #[tokio::test(flavour = "multi_thread")]
    async fn typo() {}

    #[tokio::test(flavor = "multi_thread", unhandled_panic = "ignore")]
    async fn unhandled_panic_on_multi_thread() {}
}

fn main() {}
