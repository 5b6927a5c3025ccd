use leakfree_runtime::leak_checked;

#[leak_checked(policy = "warn")]
async fn service() {}

#[leak_checked(policy = log)]
#[tokio::test]
async fn not_a_string() {}

fn main() {}
