use leakfree_runtime::leak_checked;

#[leak_checked]
struct Client {
    inner: u32,
}

fn main() {
    let _ = Client { inner: 1 }.inner;
}
