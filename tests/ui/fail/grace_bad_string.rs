//! A duration the runtime's parser rejects: the const the expansion emits
//! fails to evaluate, at the string. (A bin drops `#[test]` fns before their
//! consts are evaluated, so these are the forms that are not tests; under
//! `cargo test` a test's `grace` fails the same way.)

use leakfree_runtime::leak_checked;

#[leak_checked(grace = "100 millis")]
async fn service() {}

#[leak_checked(grace = "1m")]
#[tokio::main]
async fn entry() {}

fn main() {
    entry();
}
