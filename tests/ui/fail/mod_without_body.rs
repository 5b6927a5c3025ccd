use leakfree_runtime::leak_checked;

#[leak_checked]
mod tests;

fn main() {}
