//! Which form an annotated item takes, and which options each form allows:
//! every rule that is not the syntax of one option (`args.rs`,
//! `runtime_args.rs`) lives here, so `expand.rs` only rewrites items it was
//! handed as valid.
//!
//! | attributes below `#[leak_checked]`              | form    | runtime from                |
//! |-------------------------------------------------|---------|-----------------------------|
//! | `#[tokio::test(...)]`                           | test    | tokio's options (taken over) |
//! | `#[test_log::test(tokio::test(...))]`           | test    | tokio's options (taken over) |
//! | `#[test]` / `#[test_log::test]`                 | test    | leak_checked's options       |
//! | `#[tokio::main]`                                | main    | tokio (wrapped)              |
//! | none                                            | service | the caller                   |
//!
//! Runtime options are checked by one function, [`check_runtime`], whether
//! they come from `#[leak_checked]` (a module's or a fn's) or from tokio's
//! attribute: only the wording differs, tokio's own for tokio's attribute.

use proc_macro2::Span;
use quote::ToTokens;
use syn::{Error, ItemFn};

use crate::args::{Args, Flavor, Opt};
use crate::runtime_args::{Origin, RuntimeArgs, test_log_inner};
use crate::test_attr::{self, TestAttr, TokioAttr};

/// The form of an annotated `async fn`.
#[derive(Clone)]
pub(crate) enum Form {
    /// leakfree builds the runtime and the fn becomes a sync `#[test]`.
    Test(Box<TestSite>),
    /// Above `#[tokio::main]`: tokio builds the runtime, the body is wrapped.
    Main,
    /// No test attribute: a service entrypoint on the caller's runtime.
    Service,
}

/// The test attribute the test form replaces, and the runtime it asks for.
#[derive(Clone)]
pub(crate) struct TestSite {
    /// Index of the attribute in the fn's attributes.
    pub(crate) index: usize,
    /// `#[test_log::test(...)]`: keep it (without arguments) above the
    /// generated `#[test]`, so it still sets up logging.
    pub(crate) test_log: bool,
    /// A taken-over `#[tokio::test]` (the fn as written compiles without
    /// leakfree, so `debug_only` can keep it for release builds).
    pub(crate) tokio: bool,
    /// Below `#[test_case(...)]`: the test attribute goes without a
    /// replacement, as test_case adds `#[test]` to each case it generates
    /// from the (now sync) fn.
    pub(crate) under_test_case: bool,
    /// A plain `#[test_log::test]` below the test attribute (at this index):
    /// the generated `#[test]` goes right after it, where test_log looks for
    /// one (it adds its own if it sees none, which would register the test
    /// twice).
    pub(crate) test_log_below: Option<usize>,
    pub(crate) runtime: RuntimeArgs,
}

/// Errors collected across rules, so one compile shows every mistake.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn check(&mut self, result: syn::Result<()>) {
        if let Err(e) = result {
            self.push(e);
        }
    }

    fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}

/// Rules for `#[leak_checked(args)]` directly on a fn.
pub(crate) fn check_top_fn(f: &ItemFn, args: &Args) -> syn::Result<()> {
    if let Some(skip) = &args.skip {
        return Err(Error::new(
            skip.key,
            "`skip` only applies inside a #[leak_checked] module",
        ));
    }
    if let Some(second) = f.attrs.iter().find(|a| test_attr::is_leak_checked(a)) {
        return Err(Error::new_spanned(
            second,
            "#[leak_checked] is applied twice: remove one (to merge options, put one on a `mod` and one on the fn)",
        ));
    }
    Ok(())
}

/// Rules for `#[leak_checked(args)]` on a module.
pub(crate) fn check_module(args: &Args) -> syn::Result<()> {
    if let Some(skip) = &args.skip {
        return Err(Error::new(
            skip.key,
            "`skip` goes on a fn inside a #[leak_checked] module, not on the module",
        ));
    }
    check_runtime(&RuntimeArgs::from_leak_checked(args), None)
}

/// Rules for a fn's own options inside an annotated module that say `skip`.
pub(crate) fn check_skip(own: &Args, skip: &Opt<()>) -> syn::Result<()> {
    if own.has_options_besides_skip() {
        return Err(Error::new(
            skip.key,
            "`skip` leaves the fn unchecked: remove the other options",
        ));
    }
    Ok(())
}

/// Decides the form of `f` with the effective options `opts`, and checks
/// that form's rules.
///
/// `own` are the options written on the fn itself (equal to `opts` outside a
/// module): options a module gives as defaults are ignored by forms they do
/// not apply to (runtime options by forms that do not take them, `timeout`
/// by non-tests), but written on the fn they are an error.
pub(crate) fn check_fn(f: &ItemFn, opts: &Args, own: &Args) -> syn::Result<Form> {
    let form = form(f, opts)?;
    let mut errors = Errors::default();
    match &form {
        Form::Main | Form::Service => {
            let main = matches!(form, Form::Main);
            for (key, span) in own.runtime_options() {
                errors.push(Error::new(
                    span,
                    if main {
                        format!(
                            "`{key}` belongs to `#[tokio::main(...)]` here; leak_checked only takes it in the self-contained form `#[leak_checked] #[test] async fn`"
                        )
                    } else {
                        format!(
                            "`{key}` only applies to the self-contained test form `#[leak_checked] #[test] async fn`; this fn runs on its caller's runtime"
                        )
                    },
                ));
            }
            if let Some(timeout) = &own.timeout {
                errors.push(Error::new(
                    timeout.key,
                    "`timeout` only applies to tests: a service fn or `main` is bounded by its caller (use `tokio::time::timeout` there)",
                ));
            }
        }
        Form::Test(site) if site.tokio => {
            for (key, span) in own.runtime_options() {
                errors.push(Error::new(
                    span,
                    format!(
                        "`{key}` belongs to `#[tokio::test(...)]` here; leak_checked only takes it in the self-contained form `#[leak_checked] #[test] async fn`"
                    ),
                ));
            }
            errors.check(check_runtime(&site.runtime, None));
        }
        Form::Test(site) => {
            if let Some(debug_only) = &own.debug_only {
                errors.push(Error::new(
                    debug_only.key,
                    "`debug_only` keeps the fn as written for release builds, and a `#[test] async fn` does not compile without #[leak_checked]: use `#[tokio::test]` with `debug_only`, or remove `debug_only`",
                ));
            }
            errors.check(check_runtime(&site.runtime, Some(own)));
        }
    }
    errors.finish(form)
}

/// The form of `f` from the attributes below `#[leak_checked]`, or why it
/// cannot be annotated.
fn form(f: &ItemFn, opts: &Args) -> syn::Result<Form> {
    if f.sig.asyncness.is_none() {
        let message = if f.attrs.iter().any(test_attr::is_tokio_expansion_marker) {
            "place #[leak_checked] above #[tokio::test], and above `#[test_log::test(tokio::test)]` and `#[test_case(...)]`, which expand to it or reorder it: #[leak_checked] has to see the async fn before tokio rewrites it"
        } else if test_attr::mentions_runtime_builder(f.block.to_token_stream()) {
            "#[leak_checked] needs an `async fn`; this looks like the output of #[tokio::main]: place #[leak_checked] above #[tokio::main], it has to see the async fn before tokio rewrites it"
        } else {
            "#[leak_checked] needs an `async fn`"
        };
        return Err(Error::new_spanned(f.sig.fn_token, message));
    }
    // The test attribute proper, and a plain `#[test_log::test]` that wraps
    // the built-in `#[test]` unless another test attribute is there.
    let mut found: Option<(usize, Form)> = None;
    let mut plain_test_log = None;
    let mut under_test_case = false;
    for (index, attr) in f.attrs.iter().enumerate() {
        match test_attr::case_generator(attr) {
            Some("rstest") => {
                return Err(Error::new_spanned(
                    attr,
                    "place #[leak_checked] below #[rstest] and its `#[case]`s, directly above the test attribute: rstest copies the attributes below it onto each case it generates, so each case gets its own scope",
                ));
            }
            Some(_) => {
                under_test_case = true;
                continue;
            }
            None => {}
        }
        let Some(kind) = test_attr::classify(attr) else {
            continue;
        };
        let this = match kind {
            TestAttr::Tokio(TokioAttr::Main) => Form::Main,
            TestAttr::Tokio(TokioAttr::Test) => {
                test_form(index, false, RuntimeArgs::from_tokio_meta(&attr.meta)?)
            }
            TestAttr::Builtin => test_form(index, false, RuntimeArgs::from_leak_checked(opts)),
            TestAttr::TestLog => match test_log_inner(attr)? {
                None => {
                    plain_test_log = Some(index);
                    continue;
                }
                Some(inner) => match test_attr::classify_meta(&inner) {
                    Some(TestAttr::Tokio(TokioAttr::Test)) => {
                        test_form(index, true, RuntimeArgs::from_tokio_meta(&inner)?)
                    }
                    Some(TestAttr::Builtin) => {
                        test_form(index, true, RuntimeArgs::from_leak_checked(opts))
                    }
                    _ => {
                        return Err(Error::new_spanned(
                            inner,
                            "#[leak_checked] builds the test's runtime, so inside `#[test_log::test(...)]` it takes `tokio::test(...)` or `test`; for another runtime's test attribute, use #[leak_checked] on a service fn the test calls",
                        ));
                    }
                },
            },
        };
        if found.is_some() {
            return Err(Error::new_spanned(
                attr,
                "second test attribute: use either `#[tokio::test]` or `#[test]`",
            ));
        }
        found = Some((index, this));
    }
    let mut form = match (found, plain_test_log) {
        (Some((_, form)), _) => form,
        (None, Some(index)) => test_form(index, true, RuntimeArgs::from_leak_checked(opts)),
        (None, None) => Form::Service,
    };
    match &mut form {
        Form::Test(site) => {
            site.under_test_case = under_test_case;
            site.test_log_below = plain_test_log.filter(|&at| at > site.index);
        }
        _ if under_test_case => {
            return Err(Error::new_spanned(
                &f.sig.ident,
                "with `#[test_case(...)]`, #[leak_checked] needs a test attribute below the cases: `#[tokio::test]` or `#[test]`",
            ));
        }
        _ => {}
    }
    Ok(form)
}

/// The test form for the attribute at `index`; the stacking fields are
/// filled in once every attribute has been seen.
fn test_form(index: usize, test_log: bool, runtime: RuntimeArgs) -> Form {
    Form::Test(Box::new(TestSite {
        index,
        test_log,
        tokio: runtime.origin == Origin::TokioTest,
        under_test_case: false,
        test_log_below: None,
        runtime,
    }))
}

/// The one check of a runtime's options against its flavor: `worker_threads`
/// needs `multi_thread`; `start_paused` and `unhandled_panic` need a
/// current-thread runtime (tokio's rules, which tokio's builder would
/// otherwise enforce with a panic at run time).
///
/// With `own` (options merged from a module), a conflict between a module's
/// option and the fn's own `flavor` is blamed on the fn's `flavor`.
fn check_runtime(rt: &RuntimeArgs, own: Option<&Args>) -> syn::Result<()> {
    let flavor = rt
        .flavor
        .as_ref()
        .map_or(Flavor::CurrentThread, |o| o.value);
    let mut errors = Errors::default();
    if let Some(threads) = &rt.worker_threads {
        if flavor != Flavor::MultiThread {
            errors.push(conflict(rt, own, "worker_threads", threads.key, flavor));
        }
    }
    if let Some(paused) = &rt.start_paused {
        // tokio's macro rejects the option on `multi_thread` whatever its
        // value; leak_checked only the value that would panic.
        if flavor == Flavor::MultiThread && (paused.value || rt.origin == Origin::TokioTest) {
            errors.push(conflict(rt, own, "start_paused", paused.key, flavor));
        }
    }
    if let Some(behaviour) = &rt.unhandled_panic {
        if flavor == Flavor::MultiThread {
            errors.push(conflict(rt, own, "unhandled_panic", behaviour.key, flavor));
        }
    }
    errors.finish(())
}

/// The error for `option` (at `span`) on a runtime of the wrong `flavor`.
fn conflict(
    rt: &RuntimeArgs,
    own: Option<&Args>,
    option: &str,
    span: Span,
    flavor: Flavor,
) -> Error {
    let needs = if option == "worker_threads" {
        "multi_thread"
    } else {
        "current_thread"
    };
    if rt.origin == Origin::TokioTest {
        return Error::new(
            span,
            format!(
                "The `{option}` option requires the `{needs}` runtime flavor. Use `#[tokio::test(flavor = \"{needs}\")]`"
            ),
        );
    }
    let reason = match option {
        "worker_threads" => "worker threads need `flavor = \"multi_thread\"`",
        _ => {
            "tokio can pause time only on a current-thread runtime (building a paused `multi_thread` runtime panics)"
        }
    };
    let own_flavor = own.and_then(|own| {
        let own_option = match option {
            "worker_threads" => own.worker_threads.is_some(),
            _ => own.start_paused.is_some(),
        };
        own.flavor.as_ref().filter(|_| !own_option)
    });
    if let Some(own_flavor) = own_flavor {
        return Error::new(
            own_flavor.key,
            format!("this `flavor` conflicts with the module's `{option}`: {reason}"),
        );
    }
    let message = match option {
        "worker_threads" => format!(
            "`worker_threads` needs `flavor = \"multi_thread\"`: a `{}` runtime has no worker threads",
            flavor_name(flavor)
        ),
        _ => format!("`{option} = true` needs `flavor = \"current_thread\"`: {reason}"),
    };
    Error::new(span, message)
}

fn flavor_name(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::CurrentThread => "current_thread",
        Flavor::MultiThread => "multi_thread",
        Flavor::Local => "local",
    }
}
