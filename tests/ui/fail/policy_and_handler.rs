use leakfree_runtime::{LeakReport, leak_checked};

fn on_leak(report: &LeakReport) {
    eprintln!("{report}");
}

#[leak_checked(policy = "log", handler = on_leak)]
async fn both() {}

#[leak_checked(handler = on_leak, grace = "1s", policy = "off")]
async fn both_reversed() {}

#[leak_checked(handler = on_leak)]
async fn fine() {}

fn main() {}
