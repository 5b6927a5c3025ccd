//! Expansion snapshots: `expand()` called directly, the output formatted with
//! prettyplease and compared with `src/snapshots/*.snap` by insta.
//!
//! Inputs are source strings rather than `quote!` so that tokens carry real
//! positions (`proc-macro2/span-locations`) and each error snapshot shows the
//! exact source text its span covers.
//!
//! Regenerate after an intended change with
//! `INSTA_UPDATE=always cargo test -p leakfree-macros` and review the diff.

use proc_macro2::TokenStream;

use crate::expand::{expand, fallback};

/// `#[leak_checked(args)] item` expanded and formatted, or its errors, each
/// with the source text it points at.
fn render(args: &str, item: &str) -> String {
    let args: TokenStream = args.parse().expect("args tokenize");
    let item: TokenStream = item.parse().expect("item tokenizes");
    match expand(args, item) {
        Ok(tokens) => pretty(tokens),
        Err(errors) => errors
            .into_iter()
            .map(|e| {
                let at = e
                    .span()
                    .source_text()
                    .unwrap_or_else(|| "<no source>".into());
                format!("error: {e}\n  at: {at}\n")
            })
            .collect(),
    }
}

fn pretty(tokens: TokenStream) -> String {
    let file = syn::parse2::<syn::File>(tokens.clone())
        .unwrap_or_else(|e| panic!("expansion is not a valid file: {e}\n{tokens}"));
    prettyplease::unparse(&file)
}

macro_rules! snapshot {
    ($name:ident, $args:expr, $item:expr $(,)?) => {
        #[test]
        fn $name() {
            let (args, item): (&str, &str) = ($args, $item);
            let description = format!("#[leak_checked({args})]\n{}", item.trim());
            insta::with_settings!({ description => description, omit_expression => true }, {
                insta::assert_snapshot!(stringify!($name), render(args, item));
            });
        }
    };
}

// ---- #[tokio::test], taken over --------------------------------------------

snapshot!(
    tokio_test_default,
    "",
    r#"
    #[tokio::test]
    async fn client_drop_stops_pinger() {
        let client = Client::connect().await;
        drop(client);
    }
    "#,
);

snapshot!(
    tokio_test_scope_options,
    r#"grace = "250ms", ignore_name = ["pool-*", "metrics"], ignore_location = "src/pool.rs", allow_untracked"#,
    r#"
    /// Doc comments and other attributes stay, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "slow"]
    async fn fallible() -> Result<(), Error> {
        step().await?;
        Ok(())
    }
    "#,
);

snapshot!(
    tokio_test_absolute_path,
    r#"grace = "1.5s""#,
    r#"
    #[::tokio::test(start_paused = true)]
    async fn paused() -> u32 { 7 }
    "#,
);

snapshot!(
    tokio_test_every_option,
    r#"grace = "10ms""#,
    r#"
    #[tokio1::test(flavor = "current_thread", start_paused = true, unhandled_panic = "shutdown_runtime", name = "rt", crate = "tokio1")]
    async fn every_option() {}
    "#,
);

snapshot!(
    tokio_test_unhandled_panic_default_tokio_path,
    "",
    r#"
    #[tokio::test(unhandled_panic = "ignore")]
    async fn ignores() {}
    "#,
);

snapshot!(
    tokio_test_local_flavor,
    "",
    r#"
    #[tokio::test(flavor = "local")]
    async fn local() {}
    "#,
);

snapshot!(
    test_log_wrapping_tokio_test,
    "",
    r#"
    #[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
    async fn logged() {}
    "#,
);

snapshot!(
    test_log_below_tokio_test,
    "",
    r#"
    #[tokio::test]
    #[test_log::test]
    async fn logged() {}
    "#,
);

snapshot!(
    test_log_self_contained,
    r#"flavor = "multi_thread""#,
    r#"
    #[test_log::test]
    async fn logged() {}
    "#,
);

snapshot!(
    timeout_on_a_test,
    r#"timeout = "30s", grace = "1s""#,
    r#"
    #[tokio::test]
    async fn bounded() {}
    "#,
);

snapshot!(
    timeout_from_module_only_on_tests,
    r#"timeout = "30s""#,
    r#"
    mod tests {
        #[test]
        async fn bounded() {}

        // Not a test: the module's `timeout` does not apply.
        #[leak_checked]
        async fn helper() {}
    }
    "#,
);

snapshot!(
    wrapping_main_is_a_service_scope,
    "",
    r#"
    #[tokio::main]
    async fn main() -> Result<(), Box<dyn std::error::Error>> {
        serve().await?;
        Ok(())
    }
    "#,
);

snapshot!(
    tokio_test_impl_trait_return_is_not_constrained,
    "",
    r#"
    #[tokio::test]
    async fn opaque() -> Box<impl std::fmt::Debug> { Box::new(1) }
    "#,
);

// ---- self-contained form ---------------------------------------------------

snapshot!(
    self_contained_default,
    "",
    r#"
    #[test]
    async fn plain() {
        tokio::task::yield_now().await;
    }
    "#,
);

snapshot!(
    self_contained_runtime_options,
    r#"flavor = "multi_thread", worker_threads = 4, grace = "500us""#,
    r#"
    #[cfg_attr(miri, ignore)]
    #[test]
    #[ignore = "slow"]
    async fn options() -> Result<(), String> {
        if fail() { return Err("early".into()); }
        Ok(())
    }
    "#,
);

snapshot!(
    self_contained_should_panic,
    "",
    r#"
    #[test]
    #[should_panic(expected = "boom")]
    async fn panics() {
        panic!("boom")
    }
    "#,
);

snapshot!(
    self_contained_explicit_current_thread,
    r#"flavor = "current_thread", start_paused = false"#,
    r#"
    #[::core::prelude::v1::test]
    async fn prelude_path() {}
    "#,
);

// ---- service form ----------------------------------------------------------

snapshot!(
    service_method,
    r#"grace = "2s""#,
    r#"
    pub async fn handle(&mut self, req: Request) -> Result<Response, Error> {
        let response = self.inner.call(req).await?;
        Ok(response)
    }
    "#,
);

snapshot!(
    service_generic_with_impl_trait_argument,
    "",
    r#"
    pub(crate) async fn load<T: std::str::FromStr>(src: impl AsRef<str>) -> Result<T, T::Err>
    where
        T: Send,
    {
        let value = src.as_ref().parse::<T>()?;
        Ok(value)
    }
    "#,
);

snapshot!(
    service_raw_identifier_name,
    "",
    r#"
    async fn r#type(mut n: u32) -> u32 { n += 1; n }
    "#,
);

snapshot!(
    renamed_crate,
    r#"crate = "lf", ignore_name = "ticker""#,
    r#"
    #[tokio::test]
    async fn renamed() {}
    "#,
);

// ---- policy, handler, debug_only -------------------------------------------

snapshot!(
    service_policy_log,
    r#"policy = "log", grace = "20ms""#,
    r#"
    async fn serve(port: u16) -> std::io::Result<()> {
        listen(port).await
    }
    "#,
);

snapshot!(
    tokio_test_policy_off,
    r#"policy = "off""#,
    r#"
    #[tokio::test]
    async fn unchecked() {}
    "#,
);

snapshot!(
    wrapping_main_handler,
    "handler = crate::alerts::on_leak",
    r#"
    #[tokio::main]
    async fn main() {}
    "#,
);

snapshot!(
    self_contained_handler_and_renamed_crate,
    r#"crate = "lf", handler = Alerts::<Pager>::ON_LEAK, flavor = "multi_thread""#,
    r#"
    #[test]
    async fn paged() {}
    "#,
);

snapshot!(
    debug_only_tokio_test,
    r#"debug_only, policy = "panic""#,
    r#"
    /// Docs and attributes are on both copies, in order.
    #[tokio::test(flavor = "multi_thread")]
    #[cfg_attr(miri, ignore)]
    async fn checked_in_debug() -> Result<(), Error> {
        step().await?;
        Ok(())
    }
    "#,
);

snapshot!(
    debug_only_service,
    "debug_only",
    r#"
    pub async fn handle<T: Send>(&self, item: T) -> usize {
        self.queue.push(item).await
    }
    "#,
);

snapshot!(
    module_debug_only_and_policy,
    r#"debug_only, policy = "log""#,
    r#"
    mod tests {
        use leakfree_runtime::leak_checked;

        // Both copies, the debug one with the module's policy.
        #[tokio::test]
        async fn wrapped() {}

        // The fn's handler replaces the module's policy.
        #[leak_checked(handler = super::record)]
        #[tokio::test]
        async fn handled() {}

        // A self-contained test cannot exist without its expansion: the
        // module's `debug_only` leaves it checked in every build.
        #[test]
        async fn self_contained() {}

        #[leak_checked(skip)]
        #[tokio::test]
        async fn skipped() {}
    }
    "#,
);

snapshot!(
    module_fn_debug_only,
    r#"grace = "1s""#,
    r#"
    mod tests {
        #[leak_checked(debug_only)]
        #[tokio::test]
        async fn only_this_one() {}

        #[tokio::test]
        async fn always() {}
    }
    "#,
);

// ---- module form -----------------------------------------------------------

snapshot!(
    module_merge_and_skip,
    r#"grace = "1s", flavor = "multi_thread", ignore_name = "pool-*""#,
    r#"
    mod tests {
        use super::*;
        use leakfree_runtime::leak_checked;
        use leakfree_runtime::{spawn, spawn_named};

        // Module runtime options do not apply: tokio builds this runtime.
        #[tokio::test]
        async fn wrapped() {}

        #[test]
        async fn self_contained() {}

        // Overrides `grace` and `flavor`, keeps the module's `ignore_name`.
        #[leak_checked(grace = "5s", flavor = "current_thread")]
        #[test]
        async fn overridden() {}

        #[leakfree_runtime::leak_checked(skip)]
        #[tokio::test]
        async fn skipped() {}

        #[test]
        fn sync_test_untouched() {}

        async fn helper_untouched() {}

        // Explicitly annotated helper: service form with the module's options.
        #[leak_checked]
        async fn annotated_helper() {}

        mod nested {
            #[tokio::test]
            async fn nested_untouched() {}
        }
    }
    "#,
);

snapshot!(
    module_crate_option_per_fn,
    r#"crate = "lf""#,
    r#"
    mod tests {
        #[tokio::test]
        async fn from_module() {}

        #[leak_checked(crate = "::other::lf")]
        #[tokio::test]
        async fn overridden() {}
    }
    "#,
);

// ---- errors ----------------------------------------------------------------

snapshot!(
    error_unknown_option,
    r#"grace = "1s", graec = "1s""#,
    "#[tokio::test] async fn a() {}",
);

snapshot!(
    error_unknown_option_far_from_any,
    "deadline = 5",
    "#[tokio::test] async fn a() {}",
);

snapshot!(
    error_unknown_option_path,
    "tokio::flavor",
    "#[tokio::test] async fn a() {}",
);

snapshot!(
    error_duplicate_option,
    r#"ignore_name = "a", grace = "1s", ignore_name = "b""#,
    "#[tokio::test] async fn a() {}",
);

snapshot!(
    grace_string_is_checked_by_the_runtime,
    r#"grace = "100 ms""#,
    "#[tokio::test] async fn a() {}"
);

snapshot!(
    error_grace_integer,
    "grace = 100",
    "#[tokio::test] async fn a() {}"
);

snapshot!(
    error_grace_suffixed_integer,
    "grace = 100ms",
    "#[tokio::test] async fn a() {}"
);

snapshot!(
    error_grace_expression,
    "grace = Duration::from_millis(5)",
    "#[tokio::test] async fn a() {}"
);

snapshot!(
    error_ignore_name_not_string,
    "ignore_name = [\"a\", 7]",
    "#[tokio::test] async fn a() {}"
);

snapshot!(
    error_flag_with_value,
    "allow_untracked = true",
    "#[tokio::test] async fn a() {}"
);

snapshot!(
    error_bad_crate_path,
    r#"crate = "not a path""#,
    "#[tokio::test] async fn a() {}"
);

snapshot!(
    error_unknown_flavor,
    r#"flavor = "multi""#,
    "#[test] async fn a() {}"
);

snapshot!(
    error_worker_threads_zero,
    r#"flavor = "multi_thread", worker_threads = 0"#,
    "#[test] async fn a() {}"
);

snapshot!(
    error_runtime_options_in_wrapping_form,
    r#"flavor = "multi_thread", start_paused = true"#,
    "#[tokio::test] async fn a() {}",
);

snapshot!(
    error_runtime_option_with_tokio_main,
    "worker_threads = 2",
    "#[tokio::main] async fn main() {}"
);

snapshot!(
    error_runtime_option_in_service_form,
    r#"flavor = "multi_thread""#,
    "async fn handler() {}"
);

snapshot!(
    error_worker_threads_without_multi_thread,
    "worker_threads = 2",
    "#[test] async fn a() {}"
);

snapshot!(
    error_worker_threads_with_current_thread,
    r#"worker_threads = 2, flavor = "current_thread""#,
    "#[test] async fn a() {}",
);

snapshot!(
    error_start_paused_multi_thread,
    r#"flavor = "multi_thread", start_paused = true"#,
    "#[test] async fn a() {}",
);

snapshot!(
    error_module_start_paused_then_multi_thread,
    "start_paused = true",
    r#"
    mod tests {
        #[leak_checked(flavor = "multi_thread")]
        #[test]
        async fn conflicting_override() {}
    }
    "#,
);

snapshot!(
    error_tokio_start_paused_multi_thread,
    "",
    r#"#[tokio::test(flavor = "multi_thread", start_paused = false)] async fn a() {}"#,
);

snapshot!(
    error_tokio_worker_threads_current_thread,
    "",
    r#"#[tokio::test(worker_threads = 2)] async fn a() {}"#,
);

snapshot!(
    error_tokio_unhandled_panic_multi_thread,
    "",
    r#"#[tokio::test(flavor = "multi_thread", unhandled_panic = "ignore")] async fn a() {}"#,
);

snapshot!(
    error_tokio_bad_values,
    "",
    r#"
    mod tests {
        #[tokio::test(flavor = "multi")]
        async fn flavor() {}

        #[tokio::test(flavor = "single_thread")]
        async fn renamed_flavor() {}

        #[tokio::test(flavor = "multi_thread", worker_threads = 0)]
        async fn zero_threads() {}

        #[tokio::test(unhandled_panic = "abort")]
        async fn unhandled_panic() {}

        #[tokio::test(start_paused = "yes")]
        async fn paused() {}

        #[tokio::test(flavour = "multi_thread")]
        async fn typo() {}

        #[tokio::test(flavor = "local", flavor = "local")]
        async fn twice() {}

        #[tokio::test(multi_thread)]
        async fn bare() {}

        #[tokio::test(crate = "not a path")]
        async fn bad_crate() {}
    }
    "#,
);

snapshot!(
    error_timeout_on_service_and_main,
    r#"timeout = "1s""#,
    r#"
    mod tests {
        #[leak_checked(timeout = "1s")]
        async fn service() {}

        #[leak_checked(timeout = "1s")]
        #[tokio::main]
        async fn main() {}
    }
    "#,
);

snapshot!(
    error_timeout_suffixed_integer,
    "timeout = 30s",
    "#[tokio::test] async fn a() {}",
);

snapshot!(
    error_above_rstest,
    "",
    r#"
    #[rstest]
    #[case(1)]
    #[tokio::test]
    async fn cases(#[case] n: u32) {}
    "#,
);

snapshot!(
    test_case_cases_below,
    r#"grace = "10ms""#,
    r#"
    #[test_case(1; "one")]
    #[test_case(2; "two")]
    #[tokio::test(flavor = "multi_thread")]
    #[should_panic]
    async fn cases(n: u32) {}
    "#,
);

snapshot!(
    error_test_case_without_test_attribute,
    "",
    r#"
    #[test_case(1; "one")]
    async fn cases(n: u32) {}
    "#,
);

snapshot!(
    error_test_log_other_runtime,
    "",
    r#"
    #[test_log::test(async_std::test)]
    async fn other() {}
    "#,
);

snapshot!(error_not_async, "", "#[test] fn a() {}");

snapshot!(
    error_below_tokio_test,
    "",
    r#"
    #[::core::prelude::v1::test]
    fn a() {
        let body = async {};
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(body);
    }
    "#,
);

snapshot!(
    error_below_tokio_main,
    "",
    r#"
    fn main() {
        let body = async {};
        return tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(body);
    }
    "#,
);

snapshot!(
    error_on_struct,
    "",
    "#[derive(Debug)] pub struct Client { inner: u32 }"
);

snapshot!(error_on_impl, "", "impl Client { async fn a(&self) {} }");

snapshot!(
    error_two_test_attributes,
    "",
    "#[test] #[tokio::test] async fn a() {}"
);

snapshot!(
    error_skip_outside_module,
    "skip",
    "#[tokio::test] async fn a() {}"
);

snapshot!(error_skip_on_module, "skip", "mod tests {}");

snapshot!(error_module_without_body, "", "mod tests;");

snapshot!(
    error_applied_twice,
    "",
    "#[leak_checked(grace = \"1s\")] #[tokio::test] async fn a() {}"
);

snapshot!(
    error_module_reports_every_fn,
    r#"worker_threads = 2, flavor = "multi_thread""#,
    r#"
    mod tests {
        #[leak_checked(flavor = "current_thread")]
        #[test]
        async fn conflicting_override() {}

        #[leak_checked(skip, grace = "1s")]
        #[tokio::test]
        async fn skip_with_options() {}

        #[leak_checked(start_paused = true)]
        #[tokio::test]
        async fn runtime_option_in_wrapping_form() {}

        #[leak_checked]
        fn not_async() {}

        #[leak_checked(grace = 5)]
        #[tokio::test]
        async fn bad_grace() {}

        #[tokio::test]
        #[test]
        async fn two_test_attributes() {}

        #[leak_checked = "1s"]
        #[tokio::test]
        async fn name_value() {}

        #[leak_checked]
        #[leak_checked]
        #[tokio::test]
        async fn twice() {}
    }
    "#,
);

snapshot!(
    error_unknown_policy,
    r#"policy = "loud""#,
    "#[tokio::test] async fn a() {}"
);

snapshot!(error_policy_not_a_string, "policy = log", "async fn a() {}");

snapshot!(
    error_policy_and_handler,
    r#"policy = "log", grace = "1s", handler = alerts::on_leak"#,
    "async fn a() {}",
);

snapshot!(
    error_handler_and_policy,
    r#"handler = alerts::on_leak, policy = "off""#,
    "async fn a() {}",
);

snapshot!(
    error_duplicate_policy,
    r#"policy = "log", policy = "off""#,
    "async fn a() {}",
);

snapshot!(
    error_handler_quoted,
    r#"handler = "alerts::on_leak""#,
    "async fn a() {}"
);

snapshot!(
    error_handler_closure,
    "handler = |report| eprintln!(\"{report}\")",
    "async fn a() {}"
);

snapshot!(
    error_debug_only_with_value,
    "debug_only = true",
    "#[tokio::test] async fn a() {}"
);

snapshot!(
    error_debug_only_self_contained,
    "debug_only",
    "#[test] async fn a() {}"
);

snapshot!(
    error_module_fn_debug_only_self_contained_and_skip,
    "debug_only",
    r#"
    mod tests {
        #[leak_checked(debug_only)]
        #[test]
        async fn self_contained() {}

        #[leak_checked(skip, policy = "off")]
        #[tokio::test]
        async fn skipped() {}
    }
    "#,
);

snapshot!(
    error_module_worker_threads_without_flavor,
    "worker_threads = 2",
    "mod tests {}"
);

/// On error the user's item is emitted as written; inside a module the fns'
/// own `#[leak_checked]` attributes go, so they do not expand on their own.
#[test]
fn fallback_keeps_item_and_strips_inner_attributes() {
    let module: TokenStream = r#"
        mod tests {
            use super::leak_checked;
            #[leak_checked(skip)]
            #[tokio::test]
            async fn a() {}
            #[other::leak_checked(grace = "1s")]
            #[test]
            async fn b() {}
        }
    "#
    .parse()
    .unwrap();
    insta::assert_snapshot!("fallback_module", pretty(fallback(module)));

    // A test `async fn` loses the test attribute the expansion consumes, so
    // rustc's "async functions cannot be used for tests" (or tokio's second
    // report of its option) does not join the attribute's error.
    let function: TokenStream = r#"
        #[tokio::test(flavor = "multi")]
        #[ignore]
        async fn a() { body().await }
    "#
    .parse()
    .unwrap();
    insta::assert_snapshot!("fallback_test_fn", pretty(fallback(function)));

    // Anything else is emitted exactly as written.
    for item in [
        "#[tokio::main] async fn main() { body().await }",
        "async fn service() {}",
        "#[test] fn sync() {}",
    ] {
        let item: TokenStream = item.parse().unwrap();
        assert_eq!(fallback(item.clone()).to_string(), item.to_string());
    }
}
