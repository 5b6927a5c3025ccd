use leakfree_runtime::leak_checked;

#[leak_checked(grace = 100)]
#[tokio::test]
async fn a() {}

fn main() {}
