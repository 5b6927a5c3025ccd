//! Names the expansion uses, defined by the user at every level it could look:
//! the expansion uses absolute paths and `__leakfree_` locals only. (A local
//! `mod tokio` is left out: it breaks `#[tokio::main]` itself.)

#![allow(dead_code, unused_macros, non_camel_case_types)]

mod core {}
mod std {}
mod leakfree_runtime {
    pub mod __private {}
}

struct Duration;
struct RuntimeOptions;
enum Flavor {}
struct ScopeBuilder;
fn run_scoped() {}
fn block_on_test() {}
fn test_scope() {}
fn service_scope() {}
fn constrain() {}
type Result = ();
struct __private;
macro_rules! test {
    () => {};
}

#[::leakfree_runtime::leak_checked(grace = "1ms")]
async fn service(body: u32, scope: u32) -> u32 {
    let __leakfree_body = body;
    __leakfree_body + scope
}

#[::leakfree_runtime::leak_checked]
#[::tokio::main(flavor = "current_thread")]
async fn entry() -> u32 {
    service(1, 2).await
}

#[::leakfree_runtime::leak_checked(flavor = "multi_thread", start_paused = false)]
#[test]
async fn self_contained() {}

#[no_implicit_prelude]
mod bare {
    #[::leakfree_runtime::leak_checked]
    pub(crate) async fn no_prelude() -> u8 {
        7
    }
}

fn main() {
    ::std::assert_eq!(entry(), 3);
    let rt = ::tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    ::std::assert_eq!(rt.block_on(bare::no_prelude()), 7);
}
