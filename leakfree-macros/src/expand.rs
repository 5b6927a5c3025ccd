//! Rewriting the annotated item, once `validate.rs` has decided its form and
//! accepted its options:
//!
//! | form    | item                                            | body becomes                        |
//! |---------|-------------------------------------------------|-------------------------------------|
//! | test    | `#[tokio::test(..)]` / `#[test]` `async fn`     | sync `#[test]` fn: `block_on_test(scope, runtime, body)` |
//! | main    | `#[tokio::main] async fn`                       | `run_scoped(service_scope_for, body).await` |
//! | service | any other `async fn`                            | `run_scoped(service_scope_for, body).await` |
//! | module  | inline `mod`                                    | each test `async fn` as above       |
//!
//! In the test form the test attribute is consumed: `#[tokio::test(...)]`'s
//! options become `RuntimeOptions` calls, so leakfree builds the runtime
//! (with its spawn hooks) exactly as for `#[test]`. `#[test_log::test(..)]`
//! stays, without arguments, above the generated `#[test]`.
//!
//! `service_scope_for` takes `::core::cfg!(debug_assertions)`, expanded in the
//! user's crate: the build default of a service's policy follows *their*
//! build, not this crate's. With `debug_only` a fn becomes two: the expansion
//! under `#[cfg(debug_assertions)]` and the fn as written under
//! `#[cfg(not(debug_assertions))]`.
//!
//! Durations (`grace`, `timeout`) are not parsed here: each becomes
//! `{ const __LEAKFREE_GRACE: Duration = __private::duration("250ms"); __LEAKFREE_GRACE }`
//! at the string's span, so the runtime's one parser checks it at compile
//! time and a bad one is an error at the string.
//!
//! Generated code names only `#crate::__private::…` and `::core::…` by
//! absolute path, binds only `__leakfree_`-prefixed locals, and keeps the
//! user's body in its own block inside `async move`, so that `return` and
//! `?` keep their meaning and the parameters are moved in as an `async fn`
//! would move them.

use proc_macro2::{Group, Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::visit::Visit;
use syn::{Attribute, Error, Item, ItemFn, ItemMod, LitStr, ReturnType, Type, parse_quote};

use crate::args::{Args, Flavor, PolicyOpt};
use crate::runtime_args::{RuntimeArgs, UnhandledPanic, name_literal};
use crate::test_attr::{self, TestAttr, TokioAttr};
use crate::validate::{self, Form};

/// Expands `#[leak_checked(args)] item`.
///
/// On `Err` the caller emits [`fallback`] of the item followed by the error,
/// so that the user's item survives a mistake in the attribute.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    match syn::parse2::<Item>(item)? {
        Item::Fn(f) => {
            let args = Args::parse(args)?;
            validate::check_top_fn(&f, &args)?;
            let fns = expand_fn(f, &args, &args)?;
            Ok(fns.iter().map(ToTokens::to_token_stream).collect())
        }
        Item::Mod(m) => {
            let args = Args::parse(args)?;
            validate::check_module(&args)?;
            expand_mod(m, &args).map(ToTokens::into_token_stream)
        }
        other => Err(Error::new(
            keyword_span(&other),
            "#[leak_checked] goes on an `async fn` or an inline `mod`",
        )),
    }
}

/// What to emit when [`expand`] fails: the item as written, so IDEs and the
/// rest of the crate keep working, with two changes so that the attribute's
/// error is the only one:
///
/// - an `async fn` loses the test attribute the expansion would have
///   consumed (`#[test]`, `#[tokio::test]`, `#[test_log::test]`) and becomes
///   a plain `#[allow(dead_code)]` async fn: still type-checked, but not an
///   async `#[test]` (rustc: "async functions cannot be used for tests") nor a
///   second report of a bad `#[tokio::test(...)]` option by tokio;
/// - inside a module, the fns' own `#[leak_checked]` attributes are removed
///   so they do not expand on their own and report unrelated errors.
pub(crate) fn fallback(item: TokenStream) -> TokenStream {
    match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(mut f)) => {
            if strip_test_attrs(&mut f) {
                f.into_token_stream()
            } else {
                item
            }
        }
        Ok(Item::Mod(mut m)) => {
            if let Some((_, items)) = &mut m.content {
                let mut stripped = false;
                for item in items.iter_mut() {
                    if let Item::Fn(f) = item {
                        let before = f.attrs.len();
                        f.attrs.retain(|a| !test_attr::is_leak_checked(a));
                        stripped |= f.attrs.len() != before;
                        strip_test_attrs(f);
                    }
                }
                if stripped {
                    quiet_leak_checked_imports(items);
                }
            }
            m.into_token_stream()
        }
        _ => item,
    }
}

/// Removes the test attributes of an `async fn` that the test form consumes
/// (see [`fallback`]); whether there were any.
///
/// Below `#[rstest]` / `#[test_case]` nothing is stripped: those need the
/// test attribute, and without `#[leak_checked]` the fn is valid as written.
fn strip_test_attrs(f: &mut ItemFn) -> bool {
    if f.sig.asyncness.is_none()
        || f.attrs
            .iter()
            .any(|a| test_attr::case_generator(a).is_some())
    {
        return false;
    }
    let consumed = |a: &Attribute| {
        matches!(
            test_attr::classify(a),
            Some(TestAttr::Builtin | TestAttr::TestLog | TestAttr::Tokio(TokioAttr::Test))
        )
    };
    if !f.attrs.iter().any(consumed) {
        return false;
    }
    f.attrs.retain(|a| !consumed(a));
    f.attrs.push(parse_quote!(#[allow(dead_code)]));
    true
}

/// The scope constructor generated code starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScopeKind {
    /// `test_scope("name")`: the test form.
    Test,
    /// `service_scope_for("name", ::core::cfg!(debug_assertions))`:
    /// `#[tokio::main]` and the service form.
    Service,
}

/// Expands one `async fn` with the effective options `opts` (and `own`, the
/// options written on the fn, see [`validate::check_fn`]) into the fns that
/// replace it: the expanded fn, or with `debug_only` the expanded fn for
/// debug builds followed by `f` as written for release builds.
fn expand_fn(mut f: ItemFn, opts: &Args, own: &Args) -> syn::Result<Vec<ItemFn>> {
    let form = validate::check_fn(&f, opts, own)?;
    let original = f.clone();
    let default_crate = parse_quote!(::leakfree_runtime);
    let krate = opts
        .crate_path
        .as_ref()
        .map_or(&default_crate, |o| &o.value);
    let name = LitStr::new(&f.sig.ident.unraw().to_string(), f.sig.ident.span());
    let body = typed_async_body(&f);

    match form {
        Form::Main | Form::Service => {
            let scope = scope_builder(opts, krate, &name, ScopeKind::Service);
            let into_value = into_value(&f);
            *f.block = parse_quote!({
                #krate::__private::run_scoped(#scope, #body).await #into_value
            });
        }
        Form::Test(site) => {
            let into_value = into_value(&f);
            let scope = scope_builder(opts, krate, &name, ScopeKind::Test);
            let runtime = runtime_options(&site.runtime, krate);
            let block_on = match site.runtime.flavor.as_ref().map(|o| o.value) {
                Some(Flavor::Local) => format_ident!("block_on_test_local"),
                _ => format_ident!("block_on_test"),
            };
            let test = parse_quote_spanned_test(f.attrs[site.index].pound_token.span);
            if site.under_test_case {
                // test_case generates one `#[test]` per case, calling this fn.
                f.attrs.remove(site.index);
            } else if let Some(test_log) = site.test_log_below {
                f.attrs.remove(site.index);
                f.attrs.insert(test_log, test);
            } else if site.test_log {
                let path = f.attrs[site.index].path().clone();
                f.attrs[site.index] = parse_quote!(#[#path]);
                f.attrs.insert(site.index + 1, test);
            } else {
                f.attrs[site.index] = test;
            }
            f.sig.asyncness = None;
            // tokio's `crate = "path"` names where tokio is: resolve it as
            // tokio's expansion would, so the path is checked and the
            // import it names is used.
            let tokio_crate = site.runtime.tokio_crate.as_ref().map(|o| {
                let path = &o.value;
                quote!(#[allow(unused_imports)] use #path as _;)
            });
            *f.block = parse_quote!({
                #tokio_crate
                let __leakfree_body = #body;
                #krate::__private::#block_on(#scope, #runtime, __leakfree_body) #into_value
            });
            if !site.tokio {
                // `#[test] async fn` does not compile as written, so a
                // module's `debug_only` does not apply (validate.rs rejects
                // the fn's own).
                return Ok(vec![f]);
            }
        }
    }
    if opts.debug_only.is_none() {
        return Ok(vec![f]);
    }
    let mut release = original;
    f.attrs.insert(0, parse_quote!(#[cfg(debug_assertions)]));
    release
        .attrs
        .insert(0, parse_quote!(#[cfg(not(debug_assertions))]));
    Ok(vec![f, release])
}

/// `#[::core::prelude::v1::test]` at the span of the user's test attribute.
fn parse_quote_spanned_test(span: Span) -> Attribute {
    syn::parse_quote_spanned!(span=> #[::core::prelude::v1::test])
}

/// `async move { body }` whose output is the declared return type `R`, with
/// the body's tail and every `return` in it a coercion site, as in the
/// `async fn` itself (`&self.name` still coerces from `&String` to `&str`,
/// `?` still converts into `R`'s error type).
///
/// A bound such as `constrain::<R, _>(async move { body })` only checks the
/// output after the body is type-checked, so coercions would be lost. Instead
/// (the technique of `async-trait`) a never-taken `return` of an `R` fixes
/// the block's return type before the body is checked, and the body is
/// assigned to a local of type `R`. Return types that cannot be named
/// (`impl Trait`, `!`) keep the plain block.
///
/// `clippy::diverging_sub_expression` is allowed on the `let`: a body that
/// `.into_value()` on the runtime's `Checked`, spanned at the fn's name: the
/// method is `#[track_caller]`, so a leak's panic names the annotated fn's
/// file and line, as `assert!` in the body would.
fn into_value(f: &ItemFn) -> TokenStream {
    quote_spanned!(f.sig.ident.span()=> .into_value())
}

/// ends in `panic!()` (a `should_panic` test) is a diverging initializer.
fn typed_async_body(f: &ItemFn) -> TokenStream {
    let block = &f.block;
    match &f.sig.output {
        ReturnType::Default => quote!(async move {
            #[allow(clippy::diverging_sub_expression)]
            let () = #block;
        }),
        ReturnType::Type(_, ty) if unnameable(ty) => quote!(async move #block),
        ReturnType::Type(_, ty) => quote!(async move {
            if let ::core::option::Option::Some(__leakfree_ret) = ::core::option::Option::None::<#ty> {
                #[allow(unreachable_code)]
                return __leakfree_ret;
            }
            #[allow(clippy::diverging_sub_expression)]
            let __leakfree_ret: #ty = #block;
            #[allow(unreachable_code)]
            __leakfree_ret
        }),
    }
}

/// Whether `ty` contains `impl Trait` (or is `!`), which a turbofish cannot name.
fn unnameable(ty: &Type) -> bool {
    struct Finder(bool);
    impl Visit<'_> for Finder {
        fn visit_type_impl_trait(&mut self, _: &syn::TypeImplTrait) {
            self.0 = true;
        }
        fn visit_type_never(&mut self, _: &syn::TypeNever) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

/// `test_scope("name")` or `service_scope_for("name", cfg!(debug_assertions))`
/// with one call per option. `timeout` is emitted only on test scopes and
/// only when written (see `validate.rs`).
fn scope_builder(opts: &Args, krate: &syn::Path, name: &LitStr, kind: ScopeKind) -> TokenStream {
    let mut scope = match kind {
        ScopeKind::Test => quote!(#krate::__private::test_scope(#name)),
        ScopeKind::Service => quote!(
            #krate::__private::service_scope_for(#name, ::core::cfg!(debug_assertions))
        ),
    };
    if let Some(grace) = &opts.grace {
        let grace = duration_const(krate, &grace.value, "__LEAKFREE_GRACE");
        scope.extend(quote!(.grace(#grace)));
    }
    if let (Some(timeout), ScopeKind::Test) = (&opts.timeout, kind) {
        let timeout = duration_const(krate, &timeout.value, "__LEAKFREE_TIMEOUT");
        scope.extend(quote!(.timeout(#timeout)));
    }
    for glob in opts.ignore_name.iter().flat_map(|o| &o.value) {
        scope.extend(quote!(.ignore_name(#glob)));
    }
    for glob in opts.ignore_location.iter().flat_map(|o| &o.value) {
        scope.extend(quote!(.ignore_location(#glob)));
    }
    for glob in opts.ignore_crate.iter().flat_map(|o| &o.value) {
        scope.extend(quote!(.ignore_crate(#glob)));
    }
    if opts.allow_untracked.is_some() {
        scope.extend(quote!(.allow_untracked(true)));
    }
    if let Some(policy) = &opts.policy {
        let policy = match &policy.value {
            PolicyOpt::Panic => quote!(#krate::__private::Policy::Panic),
            PolicyOpt::Log => quote!(#krate::__private::Policy::Log),
            PolicyOpt::Off => quote!(#krate::__private::Policy::Off),
            PolicyOpt::Handler(path) => quote!(#krate::__private::Policy::handler(#path)),
        };
        scope.extend(quote!(.policy(#policy)));
    }
    scope
}

/// `{ const NAME: Duration = __private::duration("…"); NAME }`, every token
/// at the string's span: the runtime's parser runs at compile time, and a
/// string it rejects fails the build with its message, at the string.
fn duration_const(krate: &syn::Path, text: &LitStr, name: &str) -> TokenStream {
    let span = text.span();
    let krate = respan(krate.to_token_stream(), span);
    let name = syn::Ident::new(name, span);
    quote_spanned!(span=> {
        const #name: #krate::__private::Duration = #krate::__private::duration(#text);
        #name
    })
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Group(group) => {
                let mut new = Group::new(group.delimiter(), respan(group.stream(), span));
                new.set_span(span);
                TokenTree::Group(new)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

/// `RuntimeOptions::new()` with one call per runtime option given. The
/// `local` flavor is not an option call: it picks `block_on_test_local`.
fn runtime_options(rt: &RuntimeArgs, krate: &syn::Path) -> TokenStream {
    let mut runtime = quote!(#krate::__private::RuntimeOptions::new());
    if let Some(flavor) = &rt.flavor {
        let variant = match flavor.value {
            Flavor::CurrentThread => Some(format_ident!("CurrentThread")),
            Flavor::MultiThread => Some(format_ident!("MultiThread")),
            Flavor::Local => None,
        };
        if let Some(variant) = variant {
            runtime.extend(quote!(.flavor(#krate::__private::Flavor::#variant)));
        }
    }
    if let Some(threads) = &rt.worker_threads {
        let threads = Literal::usize_unsuffixed(threads.value);
        runtime.extend(quote!(.worker_threads(#threads)));
    }
    if let Some(paused) = &rt.start_paused {
        let paused = paused.value;
        runtime.extend(quote!(.start_paused(#paused)));
    }
    if let Some(behaviour) = &rt.unhandled_panic {
        // tokio's own type, under the path tokio's `crate` option gives:
        // without `--cfg tokio_unstable` neither it nor the method exists,
        // and the build fails here, as with tokio's own attribute.
        let span = behaviour.key;
        let tokio = rt.tokio_crate.as_ref().map_or_else(
            || quote_spanned!(span=> tokio),
            |o| o.value.to_token_stream(),
        );
        let variant = match behaviour.value {
            UnhandledPanic::Ignore => format_ident!("Ignore", span = span),
            UnhandledPanic::ShutdownRuntime => format_ident!("ShutdownRuntime", span = span),
        };
        runtime.extend(
            quote_spanned!(span=> .unhandled_panic(#tokio::runtime::UnhandledPanic::#variant)),
        );
    }
    if let Some(name) = &rt.name {
        let name = name_literal(name);
        runtime.extend(quote!(.name(#name)));
    }
    runtime
}

/// Expands every test `async fn` directly inside the module; collects the
/// errors of all of them.
fn expand_mod(mut m: ItemMod, opts: &Args) -> syn::Result<ItemMod> {
    let Some((_, items)) = &mut m.content else {
        return Err(Error::new_spanned(
            &m.ident,
            "#[leak_checked] on a module needs its items inline: `mod name { ... }`, not `mod name;`",
        ));
    };
    let mut errors: Option<Error> = None;
    let has_own_attributes = items.iter().any(|item| match item {
        Item::Fn(f) => f.attrs.iter().any(test_attr::is_leak_checked),
        _ => false,
    });
    if has_own_attributes {
        quiet_leak_checked_imports(items);
    }
    for item in std::mem::take(items) {
        let Item::Fn(f) = item else {
            items.push(item);
            continue;
        };
        match expand_mod_fn(f.clone(), opts) {
            Ok(Some(expanded)) => items.extend(expanded.into_iter().map(Item::Fn)),
            Ok(None) => items.push(Item::Fn(f)),
            Err(e) => match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            },
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(m),
    }
}

/// Marks `use …::leak_checked;` in the module `#[allow(unused_imports)]`.
///
/// The fns' own `#[leak_checked(...)]` attributes are read and removed by the
/// module's attribute before name resolution, so an import written for them
/// would be reported unused. Only a `use` that imports nothing else is
/// marked, so other unused imports still warn.
fn quiet_leak_checked_imports(items: &mut [Item]) {
    fn only_leak_checked(tree: &syn::UseTree) -> bool {
        match tree {
            syn::UseTree::Path(path) => only_leak_checked(&path.tree),
            syn::UseTree::Name(name) => name.ident == "leak_checked",
            syn::UseTree::Rename(rename) => rename.ident == "leak_checked",
            syn::UseTree::Group(group) => {
                group.items.len() == 1 && group.items.iter().all(only_leak_checked)
            }
            syn::UseTree::Glob(_) => false,
        }
    }
    for item in items {
        if let Item::Use(u) = item {
            if only_leak_checked(&u.tree) {
                u.attrs.push(parse_quote!(#[allow(unused_imports)]));
            }
        }
    }
}

/// One fn of an annotated module: the fns that replace it, or `Ok(None)` to
/// leave it as it is.
fn expand_mod_fn(mut f: ItemFn, module: &Args) -> syn::Result<Option<Vec<ItemFn>>> {
    let mut own_attrs = f.attrs.iter().filter(|a| test_attr::is_leak_checked(a));
    let own_attr = own_attrs.next().cloned();
    if let Some(second) = own_attrs.next() {
        return Err(Error::new_spanned(
            second,
            "#[leak_checked] is applied twice to this fn",
        ));
    }
    let Some(own_attr) = own_attr else {
        let is_test = f.attrs.iter().any(|a| test_attr::classify(a).is_some());
        if f.sig.asyncness.is_none() || !is_test {
            return Ok(None);
        }
        return expand_fn(f, module, &Args::default()).map(Some);
    };
    f.attrs.retain(|a| !test_attr::is_leak_checked(a));
    let own = Args::from_attribute(&own_attr)?;
    if let Some(skip) = &own.skip {
        validate::check_skip(&own, skip)?;
        return Ok(Some(vec![f]));
    }
    expand_fn(f, &own.or(module), &own).map(Some)
}

/// The span of the keyword that names what kind of item this is, for the
/// error on items the attribute does not apply to.
fn keyword_span(item: &Item) -> Span {
    match item {
        Item::Const(i) => i.const_token.span,
        Item::Enum(i) => i.enum_token.span,
        Item::ExternCrate(i) => i.extern_token.span,
        Item::ForeignMod(i) => i.abi.extern_token.span,
        Item::Impl(i) => i.impl_token.span,
        Item::Macro(i) => i.mac.bang_token.span,
        Item::Static(i) => i.static_token.span,
        Item::Struct(i) => i.struct_token.span,
        Item::Trait(i) => i.trait_token.span,
        Item::TraitAlias(i) => i.trait_token.span,
        Item::Type(i) => i.type_token.span,
        Item::Union(i) => i.union_token.span,
        Item::Use(i) => i.use_token.span,
        other => other
            .to_token_stream()
            .into_iter()
            .next()
            .map_or_else(Span::call_site, |t| t.span()),
    }
}
