use leakfree_runtime::leak_checked;

#[leak_checked(flavor = "multi_thread")]
#[tokio::test]
async fn a() {}

fn main() {}
