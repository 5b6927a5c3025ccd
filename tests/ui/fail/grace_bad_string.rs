use leakfree_runtime::leak_checked;

#[leak_checked(grace = "100 millis")]
#[tokio::test]
async fn a() {}

fn main() {}
