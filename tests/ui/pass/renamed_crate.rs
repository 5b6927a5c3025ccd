//! `crate = "..."`: the runtime under another name.

extern crate leakfree_runtime as lf;

#[lf::leak_checked(crate = "lf", grace = "10ms")]
async fn service() -> u8 {
    lf::spawn(async { 5 }).await.unwrap()
}

#[lf::leak_checked(crate = "::lf")]
mod tests {
    #[tokio::test]
    async fn wrapped() {}

    #[lf::leak_checked(crate = "lf")]
    #[tokio::main(flavor = "current_thread")]
    pub async fn entry() -> u8 {
        super::service().await
    }
}

fn main() {
    assert_eq!(tests::entry(), 5);
}
