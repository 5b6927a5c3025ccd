//! Rewriting the annotated item.
//!
//! The attribute sees the item with every attribute *below* it still
//! attached, so the form is decided by those attributes:
//!
//! | item                                     | form           | body becomes                       |
//! |------------------------------------------|----------------|------------------------------------|
//! | `#[tokio::test]` / `#[tokio::main]` `async fn` | wrapping | `run_scoped(test_scope/service_scope_for, body).await` |
//! | `#[test] async fn`                       | self-contained | sync fn: `block_on_test(scope, runtime, body)` |
//! | any other `async fn`                     | service        | `run_scoped(service_scope_for, body).await` |
//! | inline `mod`                             | module         | each test `async fn` as above      |
//!
//! `service_scope_for` takes `::core::cfg!(debug_assertions)`, expanded in the
//! user's crate: the build default of a service's policy follows *their*
//! build, not this crate's. With `debug_only` a fn becomes two: the expansion
//! under `#[cfg(debug_assertions)]` and the fn as written under
//! `#[cfg(not(debug_assertions))]`.
//!
//! Generated code names only `#crate::__private::…` and `::core::…` by
//! absolute path, binds only `__leakfree_`-prefixed locals, and keeps the
//! user's body in its own block inside `async move`, so that `return` and
//! `?` keep their meaning and the parameters are moved in as an `async fn`
//! would move them.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, format_ident, quote};
use syn::ext::IdentExt;
use syn::visit_mut::VisitMut;
use syn::{Attribute, Error, Item, ItemFn, ItemMod, LitStr, ReturnType, Type, parse_quote};

use crate::args::{Args, Flavor, PolicyOpt};
use crate::test_attr::{self, TestAttr, TokioAttr};

const WORKER_THREADS_NEED_MULTI_THREAD: &str = "`worker_threads` needs `flavor = \"multi_thread\"`: a `current_thread` runtime has no worker threads";

/// Expands `#[leak_checked(args)] item`.
///
/// On `Err` the caller emits [`fallback`] of the item followed by the error,
/// so that the user's item survives a mistake in the attribute.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    match syn::parse2::<Item>(item)? {
        Item::Fn(f) => {
            let args = Args::parse(args)?;
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
            let fns = expand_fn(f, &args, &args)?;
            Ok(fns.iter().map(ToTokens::to_token_stream).collect())
        }
        Item::Mod(m) => {
            let args = Args::parse(args)?;
            expand_mod(m, &args).map(ToTokens::into_token_stream)
        }
        other => Err(Error::new(
            keyword_span(&other),
            "#[leak_checked] goes on an `async fn` or an inline `mod`",
        )),
    }
}

/// What to emit when [`expand`] fails: the item as written, except that the
/// `#[leak_checked]` attributes on fns of an annotated module are removed so
/// they do not expand on their own and report unrelated errors.
pub(crate) fn fallback(item: TokenStream) -> TokenStream {
    match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Mod(mut m)) => {
            if let Some((_, items)) = &mut m.content {
                let mut stripped = false;
                for item in items.iter_mut() {
                    if let Item::Fn(f) = item {
                        let before = f.attrs.len();
                        f.attrs.retain(|a| !test_attr::is_leak_checked(a));
                        stripped |= f.attrs.len() != before;
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

/// The form of an annotated `async fn`.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// Above `#[tokio::test]` / `#[tokio::main]`: tokio owns the runtime.
    Wrapping(TokioAttr),
    /// Above `#[test]` (the attribute at this index): leakfree builds the runtime.
    SelfContained(usize),
    /// No test attribute: a service entrypoint on the caller's runtime.
    Service,
}

/// Decides the form of `f`, or explains why it cannot be annotated.
fn form(f: &ItemFn) -> syn::Result<Form> {
    if f.sig.asyncness.is_none() {
        let message = if f.attrs.iter().any(test_attr::is_tokio_expansion_marker) {
            "place #[leak_checked] above #[tokio::test]: it has to see the async fn before tokio rewrites it"
        } else if test_attr::mentions_runtime_builder(f.block.to_token_stream()) {
            "#[leak_checked] needs an `async fn`; this looks like the output of #[tokio::main]: place #[leak_checked] above #[tokio::main], it has to see the async fn before tokio rewrites it"
        } else {
            "#[leak_checked] needs an `async fn`"
        };
        return Err(Error::new_spanned(f.sig.fn_token, message));
    }
    let mut found = None;
    for (index, attr) in f.attrs.iter().enumerate() {
        if let Some(kind) = test_attr::classify(attr) {
            if found.is_some() {
                return Err(Error::new_spanned(
                    attr,
                    "second test attribute: use either `#[tokio::test]` (wrapping form) or `#[test]` (self-contained form)",
                ));
            }
            found = Some(match kind {
                TestAttr::Tokio(tokio) => Form::Wrapping(tokio),
                TestAttr::Builtin => Form::SelfContained(index),
            });
        }
    }
    Ok(found.unwrap_or(Form::Service))
}

/// The scope constructor generated code starts from.
#[derive(Debug, Clone, Copy)]
enum ScopeKind {
    /// `test_scope("name")`: `#[tokio::test]` and `#[test]`.
    Test,
    /// `service_scope_for("name", ::core::cfg!(debug_assertions))`:
    /// `#[tokio::main]` and the service form.
    Service,
}

/// Expands one `async fn` with the effective options `opts` into the fns
/// that replace it: the expanded fn, or with `debug_only` the expanded fn for
/// debug builds followed by `f` as written for release builds.
///
/// `own` are the options written on the fn itself (equal to `opts` outside a
/// module): runtime options a module gives as defaults are ignored by forms
/// that do not build a runtime, but written on the fn they are an error; the
/// same holds for `debug_only` and the self-contained form, whose fn as
/// written (`#[test] async fn`) would not compile.
fn expand_fn(mut f: ItemFn, opts: &Args, own: &Args) -> syn::Result<Vec<ItemFn>> {
    let form = form(&f)?;
    let original = f.clone();
    let default_crate = parse_quote!(::leakfree_runtime);
    let krate = opts
        .crate_path
        .as_ref()
        .map_or(&default_crate, |o| &o.value);
    let name = LitStr::new(&f.sig.ident.unraw().to_string(), f.sig.ident.span());
    let body = typed_async_body(&f);

    match form {
        Form::Wrapping(_) | Form::Service => {
            let kind = match form {
                Form::Wrapping(TokioAttr::Test) => ScopeKind::Test,
                _ => ScopeKind::Service,
            };
            reject_runtime_options(own, |key| match form {
                Form::Wrapping(tokio) => format!(
                    "`{key}` belongs to `#[{}(...)]` here; leak_checked only takes it in the self-contained form `#[leak_checked] #[test] async fn`",
                    tokio.name()
                ),
                _ => format!(
                    "`{key}` only applies to the self-contained test form `#[leak_checked] #[test] async fn`; this fn runs on its caller's runtime"
                ),
            })?;
            let scope = scope_builder(opts, krate, &name, kind);
            *f.block = parse_quote!({
                #krate::__private::run_scoped(#scope, #body).await
            });
        }
        Form::SelfContained(index) => {
            if let Some(debug_only) = &own.debug_only {
                return Err(Error::new(
                    debug_only.key,
                    "`debug_only` keeps the fn as written for release builds, and a `#[test] async fn` does not compile without #[leak_checked]: use `#[tokio::test]` with `debug_only`, or remove `debug_only`",
                ));
            }
            if let Some(threads) = &opts.worker_threads {
                if opts.flavor.as_ref().map(|o| o.value) != Some(Flavor::MultiThread) {
                    // Blame the fn's own key when the conflict comes from
                    // overriding the module's flavor.
                    return Err(match (&own.worker_threads, &own.flavor) {
                        (None, Some(flavor)) => Error::new(
                            flavor.key,
                            "this `flavor` conflicts with the module's `worker_threads`: worker threads need `flavor = \"multi_thread\"`",
                        ),
                        _ => Error::new(threads.key, WORKER_THREADS_NEED_MULTI_THREAD),
                    });
                }
            }
            let scope = scope_builder(opts, krate, &name, ScopeKind::Test);
            let runtime = runtime_options(opts, krate);
            let span = f.attrs[index].pound_token.span;
            f.attrs[index] = parse_quote_spanned_test(span);
            f.sig.asyncness = None;
            *f.block = parse_quote!({
                let __leakfree_body = #body;
                #krate::__private::block_on_test(#scope, #runtime, __leakfree_body)
            });
            // A module's `debug_only` does not apply here (see above).
            return Ok(vec![f]);
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

/// `#[::core::prelude::v1::test]` at the span of the user's `#[test]`.
fn parse_quote_spanned_test(span: Span) -> Attribute {
    syn::parse_quote_spanned!(span=> #[::core::prelude::v1::test])
}

fn reject_runtime_options(own: &Args, message: impl Fn(&str) -> String) -> syn::Result<()> {
    let mut errors = own
        .runtime_options()
        .into_iter()
        .map(|(key, span)| Error::new(span, message(key)));
    match errors.next() {
        None => Ok(()),
        Some(mut first) => {
            errors.for_each(|e| first.combine(e));
            Err(first)
        }
    }
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
    impl VisitMut for Finder {
        fn visit_type_impl_trait_mut(&mut self, _: &mut syn::TypeImplTrait) {
            self.0 = true;
        }
        fn visit_type_never_mut(&mut self, _: &mut syn::TypeNever) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type_mut(&mut ty.clone());
    finder.0
}

/// `test_scope("name")` or `service_scope_for("name", cfg!(debug_assertions))`
/// with one call per option.
fn scope_builder(opts: &Args, krate: &syn::Path, name: &LitStr, kind: ScopeKind) -> TokenStream {
    let mut scope = match kind {
        ScopeKind::Test => quote!(#krate::__private::test_scope(#name)),
        ScopeKind::Service => quote!(
            #krate::__private::service_scope_for(#name, ::core::cfg!(debug_assertions))
        ),
    };
    if let Some(grace) = &opts.grace {
        let nanos = Literal::u64_unsuffixed(grace.value);
        scope.extend(quote!(.grace(#krate::__private::Duration::from_nanos(#nanos))));
    }
    for glob in opts.ignore_name.iter().flat_map(|o| &o.value) {
        scope.extend(quote!(.ignore_name(#glob)));
    }
    for glob in opts.ignore_location.iter().flat_map(|o| &o.value) {
        scope.extend(quote!(.ignore_location(#glob)));
    }
    if opts.allow_untracked.is_some() {
        scope.extend(quote!(.count_untracked(false)));
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

/// `RuntimeOptions::new()` with one call per runtime option given.
fn runtime_options(opts: &Args, krate: &syn::Path) -> TokenStream {
    let mut runtime = quote!(#krate::__private::RuntimeOptions::new());
    if let Some(flavor) = &opts.flavor {
        let variant = match flavor.value {
            Flavor::CurrentThread => format_ident!("CurrentThread"),
            Flavor::MultiThread => format_ident!("MultiThread"),
        };
        runtime.extend(quote!(.flavor(#krate::__private::Flavor::#variant)));
    }
    if let Some(threads) = &opts.worker_threads {
        let threads = Literal::usize_unsuffixed(threads.value);
        runtime.extend(quote!(.worker_threads(#threads)));
    }
    if let Some(paused) = &opts.start_paused {
        let paused = paused.value;
        runtime.extend(quote!(.start_paused(#paused)));
    }
    runtime
}

/// Expands every test `async fn` directly inside the module; collects the
/// errors of all of them.
fn expand_mod(mut m: ItemMod, opts: &Args) -> syn::Result<ItemMod> {
    if let Some(skip) = &opts.skip {
        return Err(Error::new(
            skip.key,
            "`skip` goes on a fn inside a #[leak_checked] module, not on the module",
        ));
    }
    if let (Some(threads), flavor) = (&opts.worker_threads, &opts.flavor) {
        if flavor.as_ref().map(|o| o.value) != Some(Flavor::MultiThread) {
            return Err(Error::new(threads.key, WORKER_THREADS_NEED_MULTI_THREAD));
        }
    }
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
        if own.has_options_besides_skip() {
            return Err(Error::new(
                skip.key,
                "`skip` leaves the fn unchecked: remove the other options",
            ));
        }
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
