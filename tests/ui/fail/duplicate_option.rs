use leakfree_runtime::leak_checked;

#[leak_checked(ignore_name = "a", grace = "1s", ignore_name = "b")]
#[tokio::test]
async fn a() {}

fn main() {}
