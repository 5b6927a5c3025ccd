use leakfree_runtime::leak_checked;

#[leak_checked]
#[test]
#[tokio::test]
async fn a() {}

fn main() {}
