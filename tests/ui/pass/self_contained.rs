//! Self-contained form: `#[leak_checked] #[test] async fn`, leakfree builds the
//! runtime. (A bin drops `#[test]` fns after the attribute has expanded them,
//! so this case checks that every option is accepted; `tests/ui.rs` runs the
//! same forms under `--test`.)

use leakfree_runtime::leak_checked;

#[leak_checked]
#[test]
async fn default_runtime() {
    tokio::task::yield_now().await;
}

#[leak_checked(
    flavor = "multi_thread",
    worker_threads = 4,
    start_paused = false,
    grace = "500us"
)]
#[test]
#[ignore]
async fn every_option() -> Result<(), String> {
    if std::env::var_os("NEVER_SET_LEAKFREE").is_some() {
        return Err("early".into());
    }
    Ok(())
}

#[leak_checked]
#[should_panic(expected = "boom")]
#[test]
async fn should_panic() {
    panic!("boom")
}

#[leak_checked(flavor = "current_thread", allow_untracked)]
#[::core::prelude::v1::test]
async fn prelude_path() {}

fn main() {}
