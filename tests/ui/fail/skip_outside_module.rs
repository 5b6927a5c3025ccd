use leakfree_runtime::leak_checked;

#[leak_checked(skip)]
#[tokio::test]
async fn a() {}

fn main() {}
