use leakfree_runtime::leak_checked;

#[leak_checked]
fn handler() {}

fn main() {
    handler();
}
