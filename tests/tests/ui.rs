//! Compile-time behaviour of `#[leak_checked]`.
//!
//! `ui()` runs the trybuild cases in `ui/pass` (compile and run) and
//! `ui/fail` (compile errors compared with the `.stderr` next to them). The
//! messages are rustc's, so they are pinned to one compiler: regenerate with
//! `TRYBUILD=overwrite cargo test -p leakfree-tests --test ui` and review.
//!
//! trybuild builds its cases as bins, where `#[test]` fns are dropped before
//! type checking; the `expanded` module below is the same forms compiled here
//! under `--test`, so the test expansions are type-checked and run too, and
//! the lints below are the lint case for them (`cargo clippy --all-targets`).

#![deny(
    warnings,
    unused,
    rust_2018_idioms,
    unused_qualifications,
    unused_results
)]
#![deny(clippy::all, clippy::pedantic)]

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}

/// Every test form, as the test harness compiles it. Bodies are clean: they
/// check that the expansion compiles and runs, not the detector.
mod expanded {
    use leakfree_runtime::leak_checked;

    #[leak_checked]
    #[tokio::test]
    async fn wrapping() {
        leakfree_runtime::spawn(async {}).await.unwrap();
    }

    #[leak_checked(grace = "250ms", ignore_name = ["pool-*"], ignore_location = "src/*.rs", allow_untracked)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrapping_with_options() -> Result<(), std::num::ParseIntError> {
        let n: u32 = "7".parse()?;
        assert_eq!(n, 7);
        Ok(())
    }

    /// `#[tokio::test]`'s options, taken over: leakfree builds the runtime.
    #[leak_checked]
    #[tokio::test(start_paused = true, name = "paused-rt")]
    async fn tokio_test_paused_clock() {
        let start = tokio::time::Instant::now();
        tokio::time::sleep(std::time::Duration::from_secs(90)).await;
        assert!(start.elapsed() >= std::time::Duration::from_secs(90));
    }

    /// tokio's `local` flavor: `spawn_local` without a `LocalSet`.
    #[leak_checked]
    #[tokio::test(flavor = "local")]
    async fn tokio_test_local_flavor() {
        let shared = std::rc::Rc::new(5);
        let task = tokio::task::spawn_local(async move { *shared });
        assert_eq!(task.await.unwrap(), 5);
    }

    /// A renamed tokio, as `#[tokio::test(crate = "...")]` takes it.
    #[leak_checked]
    #[tokio1::test(crate = "tokio1", flavor = "multi_thread", worker_threads = 1)]
    async fn tokio_test_renamed_tokio() {
        leakfree_runtime::spawn(async {}).await.unwrap();
    }

    use tokio as tokio1;

    #[leak_checked]
    #[test]
    async fn self_contained() {
        leakfree_runtime::spawn(async {}).await.unwrap();
    }

    #[leak_checked(flavor = "multi_thread", worker_threads = 2, grace = "50ms")]
    #[test]
    async fn self_contained_with_options() -> Result<(), String> {
        let n = leakfree_runtime::spawn(async { 2 })
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(n, 2);
        Ok(())
    }

    #[leak_checked(start_paused = true)]
    #[test]
    async fn self_contained_paused_clock() {
        let start = tokio::time::Instant::now();
        tokio::time::sleep(std::time::Duration::from_secs(2 * 60 + 5)).await;
        assert!(start.elapsed() >= std::time::Duration::from_secs(2 * 60 + 5));
    }

    #[leak_checked]
    #[should_panic(expected = "the body's own panic")]
    #[test]
    async fn self_contained_should_panic() {
        panic!("the body's own panic");
    }

    /// A typed body that ends in a diverging expression.
    #[leak_checked]
    async fn positive(n: u32) -> Result<u32, String> {
        if n > 0 {
            return Ok(n);
        }
        panic!("zero");
    }

    #[leak_checked(flavor = "multi_thread")]
    #[test]
    async fn self_contained_typed() -> Result<(), String> {
        assert_eq!(positive(3).await?, 3);
        Ok(())
    }

    /// Deref coercion of the tail and of `return`, as in a plain `async fn`.
    #[leak_checked]
    async fn borrowed(name: &String, early: bool) -> &str {
        if early {
            return name;
        }
        name
    }

    #[leak_checked]
    #[tokio::test]
    async fn service_form_coerces() {
        let name = String::from("svc");
        assert_eq!(borrowed(&name, true).await, "svc");
        assert_eq!(borrowed(&name, false).await, "svc");
    }

    /// With `debug_assertions` (a plain `cargo test`) the checked copy runs
    /// and the leak fails the test; `--release` runs the fn as written.
    #[leak_checked(debug_only, grace = "10ms")]
    #[tokio::test]
    #[cfg_attr(
        debug_assertions,
        should_panic(expected = "leakfree: 1 task leaked from `debug_only`")
    )]
    async fn debug_only() {
        drop(leakfree_runtime::spawn(std::future::pending::<()>()));
    }

    #[leak_checked(debug_only)]
    #[tokio::test]
    async fn debug_only_clean() -> Result<(), String> {
        leakfree_runtime::spawn(async {})
            .await
            .map_err(|e| e.to_string())
    }

    /// What [`on_leak`] saw: the scope's name and its leaked task count.
    static SEEN: std::sync::Mutex<Vec<(String, usize)>> = std::sync::Mutex::new(Vec::new());

    fn on_leak(report: &leakfree_runtime::LeakReport) {
        SEEN.lock()
            .unwrap()
            .push((report.scope_name().to_owned(), report.leaked().len()));
    }

    #[leak_checked(handler = on_leak, grace = "10ms")]
    async fn leaking_service(n: u32) -> u32 {
        drop(leakfree_runtime::spawn(std::future::pending::<()>()));
        n + 1
    }

    /// A debug build's service default is `Panic`; the explicit handler
    /// replaces it, so the leak reaches the handler and the call returns.
    /// (In release the verdict is reached off the call path: wait for it.)
    #[tokio::test]
    async fn handler_sees_the_leak() {
        assert_eq!(leaking_service(1).await, 2);
        if !cfg!(debug_assertions) {
            for _ in 0..200 {
                if !SEEN.lock().unwrap().is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        assert_eq!(*SEEN.lock().unwrap(), [("leaking_service".to_owned(), 1)]);
    }

    #[leak_checked(grace = "20ms", flavor = "multi_thread")]
    mod module {
        use leakfree_runtime::leak_checked;

        #[tokio::test]
        async fn wrapped() {}

        #[test]
        async fn self_contained() {}

        #[leak_checked(flavor = "current_thread", grace = "1s")]
        #[test]
        async fn overridden() {}

        #[leak_checked(skip)]
        #[tokio::test]
        async fn skipped() {}

        #[test]
        fn sync_untouched() {}
    }
}
