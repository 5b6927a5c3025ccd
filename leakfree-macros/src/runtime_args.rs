//! The runtime a test gets when leakfree builds it: from `#[leak_checked]`'s
//! own `flavor` / `worker_threads` / `start_paused` (the self-contained form),
//! or from the `#[tokio::test(...)]` it takes over, whose options are parsed
//! here with tokio's rules and tokio's messages (tokio-macros' `entry.rs`):
//! the user wrote tokio's attribute, so its mistakes read as tokio's.

use proc_macro2::Span;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Attribute, Error, Expr, ExprLit, Lit, LitStr, Meta, Path, Token};

use crate::args::{Args, Flavor, Opt};

/// Where the runtime options were written, which decides the wording (and the
/// spans) of their errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `#[leak_checked(flavor = ...)] #[test]`: errors point at the key.
    LeakChecked,
    /// `#[tokio::test(flavor = ...)]`: tokio's messages, at the value.
    TokioTest,
}

/// tokio's `unhandled_panic` behaviours (`tokio::runtime::UnhandledPanic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnhandledPanic {
    Ignore,
    ShutdownRuntime,
}

/// The runtime of one test, as written; checked by `validate.rs`.
#[derive(Clone)]
pub(crate) struct RuntimeArgs {
    pub(crate) origin: Origin,
    pub(crate) flavor: Option<Opt<Flavor>>,
    pub(crate) worker_threads: Option<Opt<usize>>,
    pub(crate) start_paused: Option<Opt<bool>>,
    /// tokio's `unhandled_panic` (needs `--cfg tokio_unstable`, as in tokio).
    pub(crate) unhandled_panic: Option<Opt<UnhandledPanic>>,
    /// tokio's `name`: the runtime's name.
    pub(crate) name: Option<Opt<String>>,
    /// tokio's `crate`: where the tokio crate is, for generated code that
    /// names a tokio item (`unhandled_panic`'s value). Default `tokio`, as in
    /// tokio's own expansion.
    pub(crate) tokio_crate: Option<Opt<Path>>,
}

/// The option names `#[tokio::test]` takes, as tokio lists them.
const TOKIO_KEYS: &str =
    "`flavor`, `worker_threads`, `start_paused`, `crate`, `unhandled_panic`, `name`";

impl RuntimeArgs {
    /// The runtime options written in `#[leak_checked(...)]`.
    pub(crate) fn from_leak_checked(args: &Args) -> Self {
        RuntimeArgs {
            origin: Origin::LeakChecked,
            flavor: args.flavor.clone(),
            worker_threads: args.worker_threads.clone(),
            start_paused: args.start_paused.clone(),
            unhandled_panic: None,
            name: None,
            tokio_crate: None,
        }
    }

    /// The options of a `#[tokio::test]` / `#[tokio::test(...)]` attribute,
    /// or of the `tokio::test(...)` inside `#[test_log::test(...)]`.
    pub(crate) fn from_tokio_meta(meta: &Meta) -> syn::Result<Self> {
        let mut rt = RuntimeArgs {
            origin: Origin::TokioTest,
            flavor: None,
            worker_threads: None,
            start_paused: None,
            unhandled_panic: None,
            name: None,
            tokio_crate: None,
        };
        let list = match meta {
            Meta::Path(_) => return Ok(rt),
            Meta::List(list) => list,
            Meta::NameValue(nv) => {
                return Err(Error::new_spanned(nv, "Unknown attribute inside the macro"));
            }
        };
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(list.tokens.clone())?;
        for meta in metas {
            rt.set(meta)?;
        }
        Ok(rt)
    }

    fn set(&mut self, meta: Meta) -> syn::Result<()> {
        let nv = match meta {
            Meta::NameValue(nv) => nv,
            Meta::Path(path) => {
                let name = ident_of(&path)?;
                let msg = match name.as_str() {
                    "threaded_scheduler" | "multi_thread" => {
                        "Set the runtime flavor with #[tokio::test(flavor = \"multi_thread\")]."
                            .to_owned()
                    }
                    "basic_scheduler" | "current_thread" | "single_threaded" => {
                        "Set the runtime flavor with #[tokio::test(flavor = \"current_thread\")]."
                            .to_owned()
                    }
                    "flavor" | "worker_threads" | "start_paused" | "crate" | "unhandled_panic"
                    | "name" => format!("The `{name}` attribute requires an argument."),
                    name => unknown(name),
                };
                return Err(Error::new_spanned(path, msg));
            }
            other => {
                return Err(Error::new_spanned(
                    other,
                    "Unknown attribute inside the macro",
                ));
            }
        };
        let name = ident_of(&nv.path)?;
        let lit = match &nv.value {
            Expr::Lit(ExprLit { lit, .. }) => lit.clone(),
            expr => return Err(Error::new_spanned(expr, "Must be a literal")),
        };
        let span = lit.span();
        match name.as_str() {
            "flavor" => {
                let text = string(&lit, "flavor")?;
                let flavor = Flavor::from_name(&text).map_err(|e| Error::new(span, e))?;
                put(&mut self.flavor, "flavor", flavor, span)
            }
            "worker_threads" => {
                let threads = match &lit {
                    Lit::Int(int) => int.base10_parse::<usize>().map_err(|e| {
                        Error::new(
                            span,
                            format!("Failed to parse value of `worker_threads` as integer: {e}"),
                        )
                    })?,
                    _ => {
                        return Err(Error::new(
                            span,
                            "Failed to parse value of `worker_threads` as integer.",
                        ));
                    }
                };
                if self.worker_threads.is_none() && threads == 0 {
                    return Err(Error::new(span, "`worker_threads` may not be 0."));
                }
                put(&mut self.worker_threads, "worker_threads", threads, span)
            }
            "start_paused" => {
                let Lit::Bool(paused) = &lit else {
                    return Err(Error::new(
                        span,
                        "Failed to parse value of `start_paused` as bool.",
                    ));
                };
                put(&mut self.start_paused, "start_paused", paused.value, span)
            }
            "crate" => {
                let path = match &lit {
                    Lit::Str(s) => s.parse::<Path>().map_err(|_| {
                        Error::new(
                            span,
                            format!(
                                "Failed to parse value of `crate` as path: \"{}\"",
                                s.value()
                            ),
                        )
                    })?,
                    _ => {
                        return Err(Error::new(
                            span,
                            "Failed to parse value of `crate` as path.",
                        ));
                    }
                };
                put(&mut self.tokio_crate, "crate", path, span)
            }
            "unhandled_panic" => {
                let text = string(&lit, "unhandled_panic")?;
                let behaviour = match text.as_str() {
                    "ignore" => UnhandledPanic::Ignore,
                    "shutdown_runtime" => UnhandledPanic::ShutdownRuntime,
                    other => {
                        return Err(Error::new(
                            span,
                            format!(
                                "No such unhandled panic behavior `{other}`. The unhandled panic behaviors are `ignore` and `shutdown_runtime`."
                            ),
                        ));
                    }
                };
                put(
                    &mut self.unhandled_panic,
                    "unhandled_panic",
                    behaviour,
                    span,
                )
            }
            "name" => {
                let text = string(&lit, "name")?;
                put(&mut self.name, "name", text, span)
            }
            "core_threads" => Err(Error::new_spanned(
                nv,
                "Attribute `core_threads` is renamed to `worker_threads`",
            )),
            name => Err(Error::new_spanned(nv, unknown(name))),
        }
    }
}

/// Fills `slot`, or reports tokio's "set multiple times" at the second one.
fn put<T>(slot: &mut Option<Opt<T>>, name: &str, value: T, span: Span) -> syn::Result<()> {
    if slot.is_some() {
        return Err(Error::new(span, format!("`{name}` set multiple times.")));
    }
    *slot = Some(Opt { value, key: span });
    Ok(())
}

/// tokio's names are matched lower-cased, as tokio does.
fn ident_of(path: &Path) -> syn::Result<String> {
    path.get_ident()
        .map(|ident| ident.to_string().to_lowercase())
        .ok_or_else(|| Error::new_spanned(path, "Must have specified ident"))
}

fn string(lit: &Lit, field: &str) -> syn::Result<String> {
    match lit {
        Lit::Str(s) => Ok(s.value()),
        Lit::Verbatim(v) => Ok(v.to_string()),
        _ => Err(Error::new(
            lit.span(),
            format!("Failed to parse value of `{field}` as string."),
        )),
    }
}

/// tokio's "unknown attribute" message, with the closest key when there is one.
fn unknown(name: &str) -> String {
    let keys = [
        "flavor",
        "worker_threads",
        "start_paused",
        "crate",
        "unhandled_panic",
        "name",
    ];
    let hint = crate::args::closest(name, &keys)
        .map(|close| format!(" Did you mean `{close}`?"))
        .unwrap_or_default();
    format!("Unknown attribute {name} is specified; expected one of: {TOKIO_KEYS}.{hint}")
}

/// The `tokio::test(...)` inside `#[test_log::test(tokio::test(...))]`.
pub(crate) fn test_log_inner(attr: &Attribute) -> syn::Result<Option<Meta>> {
    match &attr.meta {
        Meta::Path(_) => Ok(None),
        Meta::List(list) => list.parse_args::<Meta>().map(Some),
        Meta::NameValue(nv) => Err(Error::new_spanned(nv, "expected `#[test_log::test(...)]`")),
    }
}

/// A string literal at `span`, for the runtime's `name`.
pub(crate) fn name_literal(name: &Opt<String>) -> LitStr {
    LitStr::new(&name.value, name.key)
}
