use leakfree_runtime::leak_checked;

#[leak_checked(grace = "1s", graec = "5s")]
#[tokio::test]
async fn a() {}

fn main() {}
