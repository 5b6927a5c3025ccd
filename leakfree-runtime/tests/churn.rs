//! Scopes created and ended by the million leave the registry flat: the live
//! set's gauges return to zero and its slots stay bounded by the most scopes
//! alive at once.

use std::time::Duration;

use leakfree_runtime::{Scope, live, spawn};

/// About 35 seconds in a debug build on a 2-core machine.
const SCOPES: usize = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_scopes_leave_the_registry_flat() {
    let before = live::metrics();
    let mut leaky = 0;
    for i in 0..SCOPES {
        let (_, report) = Scope::builder("churn")
            .grace(Duration::ZERO)
            .build()
            .run_and_report(async move {
                spawn(async {}).await.unwrap();
                if i % 1000 == 0 {
                    // Some scopes leak, so the cancelling path churns too.
                    spawn(std::future::pending::<()>());
                }
            })
            .await;
        leaky += usize::from(!report.is_clean());
    }
    let after = live::metrics();
    assert_eq!(leaky, SCOPES.div_ceil(1000));
    assert_eq!(after.live_scopes, 0, "every scope left the live set");
    assert_eq!(after.live_tracked_tasks, 0, "every task left its scope");
    assert_eq!(after.scopes_ended - before.scopes_ended, SCOPES as u64);
    assert!(
        live::__live_set_slots() <= 64,
        "slots are reused: {} for {SCOPES} scopes",
        live::__live_set_slots()
    );
}
