//! Module form: the module's options are defaults, a fn's own
//! `#[leak_checked(...)]` overrides them key by key, `skip` leaves a fn alone.

#[leakfree_runtime::leak_checked(grace = "50ms", ignore_name = "bg-*", flavor = "multi_thread")]
mod app {
    use leakfree_runtime::leak_checked;

    // Module runtime options only apply to self-contained tests.
    #[tokio::main(flavor = "current_thread")]
    pub async fn run() -> u32 {
        helper().await + annotated_helper().await
    }

    #[leak_checked(grace = "1s", crate = "::leakfree_runtime")]
    #[tokio::main(flavor = "current_thread")]
    pub async fn overridden() -> Result<u8, std::num::ParseIntError> {
        "8".parse()
    }

    #[leak_checked(skip)]
    #[tokio::main(flavor = "current_thread")]
    pub async fn skipped() -> u32 {
        3
    }

    #[test]
    async fn self_contained() {}

    #[leakfree_runtime::leak_checked(flavor = "current_thread", start_paused = false)]
    #[test]
    async fn self_contained_overridden() {}

    #[leak_checked(skip)]
    #[tokio::test]
    async fn skipped_test() {}

    #[test]
    fn sync_test_untouched() {}

    async fn helper() -> u32 {
        1
    }

    // Annotated helper: service form, with the module's scope options.
    #[leak_checked(ignore_location = "src/*.rs")]
    async fn annotated_helper() -> u32 {
        2
    }

    mod nested {
        #[tokio::test]
        async fn not_walked() {}
    }
}

fn main() {
    assert_eq!(app::run(), 3);
    assert_eq!(app::overridden(), Ok(8));
    assert_eq!(app::skipped(), 3);
}
