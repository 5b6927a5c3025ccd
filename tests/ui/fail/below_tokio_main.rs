use leakfree_runtime::leak_checked;

#[tokio::main]
#[leak_checked]
async fn main() {}
