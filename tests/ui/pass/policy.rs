//! Service options: `policy`, `handler` (a fn, an associated fn and a static
//! closure, each by path) and `debug_only`. trybuild builds and runs this
//! in debug, so the checked copy of each `debug_only` fn is the one that runs.

use std::sync::atomic::{AtomicUsize, Ordering};

use leakfree_runtime::{LeakReport, leak_checked};

static SEEN: AtomicUsize = AtomicUsize::new(0);

fn count(report: &LeakReport) {
    SEEN.fetch_add(report.leaked().len(), Ordering::SeqCst);
}

struct Alerts;

impl Alerts {
    fn on_leak(report: &LeakReport) {
        count(report);
    }
}

static BY_VALUE: fn(&LeakReport) = count;

fn leak() {
    drop(leakfree_runtime::spawn(std::future::pending::<()>()));
}

// A leak is logged, not a panic, in every build.
#[leak_checked(policy = "log", grace = "5ms")]
async fn logged() -> u32 {
    leak();
    1
}

#[leak_checked(policy = "off")]
async fn unchecked() {
    leak();
}

#[leak_checked(handler = count, grace = "5ms")]
async fn handled(n: u32) -> Result<u32, String> {
    leak();
    if n == 0 {
        return Err("zero".into());
    }
    Ok(n)
}

#[leak_checked(handler = Alerts::on_leak, grace = "5ms")]
async fn handled_by_associated_fn() {
    leak();
}

#[leak_checked(handler = BY_VALUE, grace = "5ms")]
async fn handled_by_value() {
    leak();
}

struct Service {
    name: String,
}

impl Service {
    /// Both copies keep this signature: the borrowed return coerces in each.
    #[leak_checked(debug_only, handler = crate::count, grace = "5ms")]
    async fn name(&self, leaking: bool) -> &str {
        if leaking {
            leak();
        }
        &self.name
    }
}

#[leak_checked(debug_only, policy = "panic")]
async fn clean<T: Send>(value: T) -> T {
    leakfree_runtime::spawn(async {}).await.expect("task ran");
    value
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(logged().await, 1);
        unchecked().await;
        assert_eq!(SEEN.load(Ordering::SeqCst), 0);
        assert_eq!(handled(2).await, Ok(2));
        assert_eq!(handled(0).await, Err("zero".to_owned()));
        handled_by_associated_fn().await;
        handled_by_value().await;
        assert_eq!(SEEN.load(Ordering::SeqCst), 4);
        let service = Service {
            name: "svc".to_owned(),
        };
        assert_eq!(service.name(false).await, "svc");
        assert_eq!(service.name(true).await, "svc");
        assert_eq!(
            SEEN.load(Ordering::SeqCst),
            if cfg!(debug_assertions) { 5 } else { 4 }
        );
        assert_eq!(clean(7).await, 7);
    });
}
