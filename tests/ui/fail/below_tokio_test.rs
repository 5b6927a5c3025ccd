use leakfree_runtime::leak_checked;

#[tokio::test]
#[leak_checked]
async fn a() {}

fn main() {}
