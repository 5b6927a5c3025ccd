use leakfree_runtime::leak_checked;

#[leak_checked(worker_threads = 4)]
#[test]
async fn a() {}

fn main() {}
