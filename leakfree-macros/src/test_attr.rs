//! Recognising the attributes that decide an annotated fn's form.
//!
//! Attribute macros see paths, not resolved items, so recognition is by path
//! shape: `#[tokio::test]` under any prefix ending in `tokio`, the built-in
//! `#[test]` under the names the prelude gives it, `#[test_log::test]` under
//! a prefix ending in `test_log`, and `#[leak_checked]`, `#[rstest]` and
//! `#[test_case]` by their last segment (they may be imported or re-exported
//! under any path).

use proc_macro2::{TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, Lit, Meta, Path, Token};

/// Which runtime-owning tokio attribute a fn carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokioAttr {
    /// `#[tokio::test]`: taken over, a test scope.
    Test,
    /// `#[tokio::main]`: a service scope.
    Main,
}

/// An attribute that makes a fn a test (or an entrypoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestAttr {
    /// `#[tokio::test(...)]` (taken over) / `#[tokio::main(...)]` (wrapped).
    Tokio(TokioAttr),
    /// The built-in `#[test]`: the self-contained form.
    Builtin,
    /// `#[test_log::test]` or `#[test_log::test(inner)]`: logging set-up
    /// around another test attribute (`#[test]` without `inner`).
    TestLog,
}

/// Classifies `attr` as a test attribute, if it is one.
pub(crate) fn classify(attr: &Attribute) -> Option<TestAttr> {
    classify_meta(&attr.meta)
}

/// [`classify`] for an attribute's contents, e.g. the `tokio::test(...)`
/// inside `#[test_log::test(tokio::test(...))]`.
pub(crate) fn classify_meta(meta: &Meta) -> Option<TestAttr> {
    let path = meta.path();
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let names: Vec<&str> = segments.iter().map(String::as_str).collect();
    match names.as_slice() {
        [.., "tokio", "test"] => Some(TestAttr::Tokio(TokioAttr::Test)),
        [.., "tokio", "main"] => Some(TestAttr::Tokio(TokioAttr::Main)),
        [prefix @ .., "test"] if names_tokio_crate(meta, prefix) => {
            Some(TestAttr::Tokio(TokioAttr::Test))
        }
        [prefix @ .., "main"] if names_tokio_crate(meta, prefix) => {
            Some(TestAttr::Tokio(TokioAttr::Main))
        }
        [.., "test_log", "test"] => Some(TestAttr::TestLog),
        ["test"] if path.leading_colon.is_none() => Some(TestAttr::Builtin),
        ["core" | "std", "prelude", "v1", "test"] if matches!(meta, Meta::Path(_)) => {
            Some(TestAttr::Builtin)
        }
        _ => None,
    }
}

/// Whether a renamed tokio's attribute says so: `#[tokio1::test(crate =
/// "tokio1")]`, the path before `test` / `main` being the `crate` option's.
fn names_tokio_crate(meta: &Meta, prefix: &[&str]) -> bool {
    let Meta::List(list) = meta else {
        return false;
    };
    if prefix.is_empty() {
        return false;
    }
    let Ok(args) = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) else {
        return false;
    };
    args.iter().any(|arg| match arg {
        Meta::NameValue(nv) if nv.path.is_ident("crate") => match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => s.parse::<Path>().is_ok_and(|path| {
                path.segments.len() == prefix.len()
                    && path.segments.iter().zip(prefix).all(|(s, p)| s.ident == p)
            }),
            _ => false,
        },
        _ => false,
    })
}

/// `#[::core::prelude::v1::test]`: what `#[tokio::test]` leaves on the sync
/// fn it generates. Seeing it on a non-async fn means `#[leak_checked]` was
/// placed below `#[tokio::test]`.
pub(crate) fn is_tokio_expansion_marker(attr: &Attribute) -> bool {
    is_exact(attr.path(), true, &["core", "prelude", "v1", "test"])
}

/// Whether `body` names `runtime::Builder`, as the sync fn `#[tokio::main]`
/// generates does: a non-async fn holding it most likely had `#[tokio::main]`
/// above `#[leak_checked]`.
pub(crate) fn mentions_runtime_builder(body: TokenStream) -> bool {
    fn flatten(tokens: TokenStream, out: &mut Vec<String>) {
        for token in tokens {
            match token {
                TokenTree::Group(group) => flatten(group.stream(), out),
                other => out.push(other.to_string()),
            }
        }
    }
    let mut tokens = Vec::new();
    flatten(body, &mut tokens);
    tokens
        .windows(4)
        .any(|w| w == ["runtime", ":", ":", "Builder"])
}

/// `#[rstest]` or `#[test_case(...)]`: attributes that turn one fn into
/// several test cases, copying the attributes below them onto each case. The
/// name, for the error that asks for `#[leak_checked]` below them.
pub(crate) fn case_generator(attr: &Attribute) -> Option<&'static str> {
    match attr.path().segments.last()?.ident.to_string().as_str() {
        "rstest" => Some("rstest"),
        "test_case" => Some("test_case"),
        _ => None,
    }
}

/// Whether `attr` is `#[leak_checked]` under any path.
pub(crate) fn is_leak_checked(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "leak_checked")
}

fn is_exact(path: &Path, leading_colon: bool, names: &[&str]) -> bool {
    path.leading_colon.is_some() == leading_colon
        && path.segments.len() == names.len()
        && path
            .segments
            .iter()
            .zip(names)
            .all(|(s, n)| s.ident == n && s.arguments.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn recognises_paths() {
        let cases: Vec<(Attribute, Option<TestAttr>)> = vec![
            (
                parse_quote!(#[tokio::test]),
                Some(TestAttr::Tokio(TokioAttr::Test)),
            ),
            (
                parse_quote!(#[::tokio::test(flavor = "multi_thread")]),
                Some(TestAttr::Tokio(TokioAttr::Test)),
            ),
            (
                parse_quote!(#[my::tokio::main]),
                Some(TestAttr::Tokio(TokioAttr::Main)),
            ),
            (parse_quote!(#[test]), Some(TestAttr::Builtin)),
            (
                parse_quote!(#[::core::prelude::v1::test]),
                Some(TestAttr::Builtin),
            ),
            (
                parse_quote!(#[std::prelude::v1::test]),
                Some(TestAttr::Builtin),
            ),
            (parse_quote!(#[test_log::test]), Some(TestAttr::TestLog)),
            (
                parse_quote!(#[::test_log::test(tokio::test)]),
                Some(TestAttr::TestLog),
            ),
            (parse_quote!(#[tokio1::test]), None),
            (
                parse_quote!(#[tokio1::test(crate = "tokio1")]),
                Some(TestAttr::Tokio(TokioAttr::Test)),
            ),
            (
                parse_quote!(#[deps::tokio1::main(crate = "::deps::tokio1")]),
                Some(TestAttr::Tokio(TokioAttr::Main)),
            ),
            (parse_quote!(#[tokio1::test(crate = "tokio")]), None),
            (parse_quote!(#[tokio::spawn]), None),
            (parse_quote!(#[::test]), None),
            (parse_quote!(#[should_panic]), None),
        ];
        for (attr, expected) in cases {
            assert_eq!(classify(&attr), expected, "{}", quote::quote!(#attr));
        }
        assert!(is_tokio_expansion_marker(
            &parse_quote!(#[::core::prelude::v1::test])
        ));
        assert!(!is_tokio_expansion_marker(&parse_quote!(#[test])));
        assert!(is_leak_checked(
            &parse_quote!(#[leakfree_runtime::leak_checked(skip)])
        ));
        assert!(mentions_runtime_builder(quote::quote!({
            return ::tokio::runtime::Builder::new_multi_thread()
                .build()
                .unwrap()
                .block_on(body);
        })));
        assert!(!mentions_runtime_builder(quote::quote!({
            runtime();
            Builder::new()
        })));
        assert!(!is_leak_checked(&parse_quote!(#[leak_checked::other])));
        assert_eq!(case_generator(&parse_quote!(#[rstest])), Some("rstest"));
        assert_eq!(
            case_generator(&parse_quote!(#[test_case::test_case(1; "one")])),
            Some("test_case")
        );
        assert_eq!(case_generator(&parse_quote!(#[case(1)])), None);
    }
}
