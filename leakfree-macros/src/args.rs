//! The options of `#[leak_checked(...)]`, parsed into a plain [`Args`].
//!
//! Parsing checks each option's syntax and knows nothing about the item the
//! attribute is on: which options make sense for which form is checked in
//! `validate.rs`, after module options and a fn's own options have been
//! merged. A duration's grammar is not checked here at all: the expansion
//! hands the string to the runtime's parser in a constant (see `expand.rs`).

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Error, Expr, ExprLit, ExprPath, Lit, LitStr, Meta, Path, Token};

/// Every key, in the order the "unknown option" error lists them.
const KEYS: &[&str] = &[
    "grace",
    "timeout",
    "ignore_name",
    "ignore_location",
    "ignore_crate",
    "allow_untracked",
    "policy",
    "handler",
    "debug_only",
    "crate",
    "flavor",
    "worker_threads",
    "start_paused",
    "skip",
];

/// One option's value and the span errors about the option as a whole
/// (wrong form, conflicts) point at: the key in `#[leak_checked(...)]`, the
/// value in `#[tokio::test(...)]` (where tokio points).
#[derive(Clone)]
pub(crate) struct Opt<T> {
    pub(crate) value: T,
    pub(crate) key: Span,
}

/// The runtime flavor of a test leakfree builds the runtime for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    CurrentThread,
    MultiThread,
    /// tokio's `LocalRuntime`: a current-thread runtime that can
    /// `spawn_local` without a `LocalSet`.
    Local,
}

impl Flavor {
    /// Parses a flavor name; `Err` is tokio's message for a wrong one.
    pub(crate) fn from_name(name: &str) -> Result<Flavor, String> {
        match name {
            "current_thread" => Ok(Flavor::CurrentThread),
            "multi_thread" => Ok(Flavor::MultiThread),
            "local" => Ok(Flavor::Local),
            "single_thread" => {
                Err("The single threaded runtime flavor is called `current_thread`.".to_owned())
            }
            "basic_scheduler" => Err(
                "The `basic_scheduler` runtime flavor has been renamed to `current_thread`."
                    .to_owned(),
            ),
            "threaded_scheduler" => Err(
                "The `threaded_scheduler` runtime flavor has been renamed to `multi_thread`."
                    .to_owned(),
            ),
            other => Err(format!(
                "No such runtime flavor `{other}`. The runtime flavors are `current_thread`, `local`, and `multi_thread`."
            )),
        }
    }
}

/// What the scope does with a report that is not clean: `policy = "..."` or
/// `handler = path`. One slot, because a handler *is* a policy: the two keys
/// exclude each other, and a fn's own either one overrides a module's.
#[derive(Clone)]
pub(crate) enum PolicyOpt {
    Panic,
    Log,
    Off,
    /// `handler = path`: the path as written, resolved where the fn is.
    Handler(ExprPath),
}

impl PolicyOpt {
    /// The key that sets this value.
    fn key_name(&self) -> &'static str {
        match self {
            PolicyOpt::Handler(_) => "handler",
            _ => "policy",
        }
    }
}

/// The options of one `#[leak_checked(...)]`; `None` means "not given".
#[derive(Clone, Default)]
pub(crate) struct Args {
    /// Grace period, as written: its grammar is checked by the runtime.
    pub(crate) grace: Option<Opt<LitStr>>,
    /// How long the test body may run (test forms only), as written.
    pub(crate) timeout: Option<Opt<LitStr>>,
    pub(crate) ignore_name: Option<Opt<Vec<LitStr>>>,
    pub(crate) ignore_location: Option<Opt<Vec<LitStr>>>,
    /// `ignore_crate = "name"` or `[...]`: crate-name globs.
    pub(crate) ignore_crate: Option<Opt<Vec<LitStr>>>,
    pub(crate) allow_untracked: Option<Opt<()>>,
    /// `policy` or `handler`.
    pub(crate) policy: Option<Opt<PolicyOpt>>,
    pub(crate) debug_only: Option<Opt<()>>,
    pub(crate) crate_path: Option<Opt<Path>>,
    pub(crate) flavor: Option<Opt<Flavor>>,
    pub(crate) worker_threads: Option<Opt<usize>>,
    pub(crate) start_paused: Option<Opt<bool>>,
    pub(crate) skip: Option<Opt<()>>,
}

impl Args {
    /// Parses the tokens inside `#[leak_checked(...)]`.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut args = Args::default();
        syn::meta::parser(|meta| args.parse_option(meta)).parse2(tokens)?;
        Ok(args)
    }

    /// Parses a `#[leak_checked]` / `#[leak_checked(...)]` attribute found on
    /// a fn inside an annotated module.
    pub(crate) fn from_attribute(attr: &Attribute) -> syn::Result<Self> {
        match &attr.meta {
            Meta::Path(_) => Ok(Args::default()),
            Meta::List(list) => Args::parse(list.tokens.clone()),
            Meta::NameValue(nv) => Err(Error::new_spanned(
                nv.eq_token,
                "write options in parentheses, e.g. `#[leak_checked(grace = \"250ms\")]`",
            )),
        }
    }

    /// These options with `defaults` filling in every key not given here.
    pub(crate) fn or(&self, defaults: &Args) -> Args {
        fn pick<T: Clone>(own: &Option<T>, default: &Option<T>) -> Option<T> {
            own.as_ref().or(default.as_ref()).cloned()
        }
        Args {
            grace: pick(&self.grace, &defaults.grace),
            timeout: pick(&self.timeout, &defaults.timeout),
            ignore_name: pick(&self.ignore_name, &defaults.ignore_name),
            ignore_location: pick(&self.ignore_location, &defaults.ignore_location),
            ignore_crate: pick(&self.ignore_crate, &defaults.ignore_crate),
            allow_untracked: pick(&self.allow_untracked, &defaults.allow_untracked),
            policy: pick(&self.policy, &defaults.policy),
            debug_only: pick(&self.debug_only, &defaults.debug_only),
            crate_path: pick(&self.crate_path, &defaults.crate_path),
            flavor: pick(&self.flavor, &defaults.flavor),
            worker_threads: pick(&self.worker_threads, &defaults.worker_threads),
            start_paused: pick(&self.start_paused, &defaults.start_paused),
            skip: pick(&self.skip, &defaults.skip),
        }
    }

    /// The options that configure the runtime of the self-contained test
    /// form, by key name, in source order of the keys list.
    pub(crate) fn runtime_options(&self) -> Vec<(&'static str, Span)> {
        let mut found = Vec::new();
        if let Some(o) = &self.flavor {
            found.push(("flavor", o.key));
        }
        if let Some(o) = &self.worker_threads {
            found.push(("worker_threads", o.key));
        }
        if let Some(o) = &self.start_paused {
            found.push(("start_paused", o.key));
        }
        found
    }

    /// Whether any option other than `skip` is given.
    pub(crate) fn has_options_besides_skip(&self) -> bool {
        let Args {
            grace,
            timeout,
            ignore_name,
            ignore_location,
            ignore_crate,
            allow_untracked,
            policy,
            debug_only,
            crate_path,
            flavor,
            worker_threads,
            start_paused,
            skip: _,
        } = self;
        grace.is_some()
            || timeout.is_some()
            || ignore_name.is_some()
            || ignore_location.is_some()
            || ignore_crate.is_some()
            || allow_untracked.is_some()
            || policy.is_some()
            || debug_only.is_some()
            || crate_path.is_some()
            || flavor.is_some()
            || worker_threads.is_some()
            || start_paused.is_some()
    }

    fn parse_option(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let key = meta.path.get_ident().map(ToString::to_string);
        match key.as_deref() {
            Some("grace") => set(&mut self.grace, &meta, "grace", |m| {
                parse_duration_lit(m, "grace")
            }),
            Some("timeout") => set(&mut self.timeout, &meta, "timeout", |m| {
                parse_duration_lit(m, "timeout")
            }),
            Some("ignore_name") => set(&mut self.ignore_name, &meta, "ignore_name", parse_globs),
            Some("ignore_location") => set(
                &mut self.ignore_location,
                &meta,
                "ignore_location",
                parse_globs,
            ),
            Some("ignore_crate") => set(&mut self.ignore_crate, &meta, "ignore_crate", parse_globs),
            Some("allow_untracked") => {
                set(&mut self.allow_untracked, &meta, "allow_untracked", |m| {
                    parse_flag(m, "allow_untracked")
                })
            }
            Some(key @ ("policy" | "handler")) => self.set_policy(&meta, key),
            Some("debug_only") => set(&mut self.debug_only, &meta, "debug_only", |m| {
                parse_flag(m, "debug_only")
            }),
            Some("crate") => set(&mut self.crate_path, &meta, "crate", parse_crate_path),
            Some("flavor") => set(&mut self.flavor, &meta, "flavor", parse_flavor),
            Some("worker_threads") => set(
                &mut self.worker_threads,
                &meta,
                "worker_threads",
                parse_worker_threads,
            ),
            Some("start_paused") => set(&mut self.start_paused, &meta, "start_paused", parse_bool),
            Some("skip") => set(&mut self.skip, &meta, "skip", |m| parse_flag(m, "skip")),
            _ => {
                let path = meta.path.segments.iter().map(|s| s.ident.to_string());
                let path = path.collect::<Vec<_>>().join("::");
                Err(Error::new_spanned(&meta.path, unknown_key(&path, KEYS)))
            }
        }
    }

    /// `policy = "..."` or `handler = path`: both fill the one policy slot,
    /// so the second of them is a duplicate or a conflict.
    fn set_policy(&mut self, meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<()> {
        if let Some(first) = &self.policy {
            if first.value.key_name() != key {
                return Err(Error::new_spanned(
                    &meta.path,
                    "`handler` replaces the policy: give either `policy` or `handler`",
                ));
            }
        }
        if key == "policy" {
            set(&mut self.policy, meta, key, parse_policy)
        } else {
            set(&mut self.policy, meta, key, parse_handler)
        }
    }
}

/// The one setter every key goes through: rejects a second occurrence of the
/// key (at the duplicate's span) before parsing its value.
fn set<T>(
    slot: &mut Option<Opt<T>>,
    meta: &ParseNestedMeta<'_>,
    name: &str,
    parse: impl FnOnce(&ParseNestedMeta<'_>) -> syn::Result<T>,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(Error::new_spanned(
            &meta.path,
            format!("duplicate option `{name}`"),
        ));
    }
    let key = meta.path.span();
    let value = parse(meta)?;
    *slot = Some(Opt { value, key });
    Ok(())
}

fn parse_flag(meta: &ParseNestedMeta<'_>, name: &str) -> syn::Result<()> {
    if meta.input.is_empty() || meta.input.peek(Token![,]) {
        Ok(())
    } else {
        Err(Error::new(
            meta.input.span(),
            format!("`{name}` is a flag and takes no value: write just `{name}`"),
        ))
    }
}

/// The literal after `key =`, with a message naming what was expected if the
/// value is not a literal at all.
fn value_lit(meta: &ParseNestedMeta<'_>, expected: &str) -> syn::Result<Lit> {
    let input = meta.value()?;
    match input.parse::<Expr>()? {
        Expr::Lit(ExprLit { lit, .. }) => Ok(lit),
        other => Err(Error::new_spanned(other, format!("expected {expected}"))),
    }
}

/// `grace = "..."` / `timeout = "..."`: the macro checks only that the value
/// is a string; the string's grammar is checked by the runtime's
/// `__private::duration`, evaluated in a constant the expansion emits at the
/// string's span (one parser for the attribute and `LEAKFREE_GRACE`).
fn parse_duration_lit(meta: &ParseNestedMeta<'_>, name: &str) -> syn::Result<LitStr> {
    match value_lit(meta, "a duration string such as \"250ms\"")? {
        Lit::Str(lit) => Ok(lit),
        Lit::Int(lit) if ["us", "ms", "s"].contains(&lit.suffix()) => Err(Error::new(
            lit.span(),
            format!("write the duration as a string: `{name} = \"{lit}\"`"),
        )),
        lit @ (Lit::Int(_) | Lit::Float(_)) => Err(Error::new(
            lit.span(),
            format!("`{name}` needs a unit: write a string with a unit, e.g. \"250ms\""),
        )),
        lit => Err(Error::new(
            lit.span(),
            "expected a duration string such as \"250ms\"",
        )),
    }
}

const GLOBS_EXPECTED: &str =
    "expected a glob string or an array of them, e.g. \"worker-*\" or [\"a\", \"b*\"]";

fn parse_globs(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<LitStr>> {
    let input = meta.value()?;
    if input.peek(syn::token::Bracket) {
        let content;
        syn::bracketed!(content in input);
        let globs = Punctuated::<LitStr, Token![,]>::parse_terminated_with(&content, parse_glob)?;
        Ok(globs.into_iter().collect())
    } else {
        Ok(vec![parse_glob(input)?])
    }
}

fn parse_glob(input: ParseStream<'_>) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        input.parse()
    } else {
        Err(input.error(GLOBS_EXPECTED))
    }
}

fn parse_crate_path(meta: &ParseNestedMeta<'_>) -> syn::Result<Path> {
    let expected = "a string holding a path, e.g. `crate = \"lf\"`";
    match value_lit(meta, expected)? {
        Lit::Str(lit) => lit.parse::<Path>().map_err(|_| {
            Error::new(
                lit.span(),
                format!(
                    "`crate` must be a path such as \"lf\" or \"::my_crate::lf\", not \"{}\"",
                    lit.value()
                ),
            )
        }),
        lit => Err(Error::new(lit.span(), format!("expected {expected}"))),
    }
}

fn parse_flavor(meta: &ParseNestedMeta<'_>) -> syn::Result<Flavor> {
    let expected =
        "`flavor = \"current_thread\"`, `flavor = \"multi_thread\"` or `flavor = \"local\"`";
    match value_lit(meta, expected)? {
        Lit::Str(lit) => Flavor::from_name(&lit.value()).map_err(|_| {
            Error::new(
                lit.span(),
                format!(
                    "unknown flavor `{}`; expected `current_thread`, `multi_thread` or `local`",
                    lit.value()
                ),
            )
        }),
        lit => Err(Error::new(lit.span(), format!("expected {expected}"))),
    }
}

fn parse_policy(meta: &ParseNestedMeta<'_>) -> syn::Result<PolicyOpt> {
    let expected = "`policy = \"panic\"`, `policy = \"log\"` or `policy = \"off\"`";
    match value_lit(meta, expected)? {
        Lit::Str(lit) => match lit.value().as_str() {
            "panic" => Ok(PolicyOpt::Panic),
            "log" => Ok(PolicyOpt::Log),
            "off" => Ok(PolicyOpt::Off),
            other => Err(Error::new(
                lit.span(),
                format!("unknown policy `{other}`; expected `panic`, `log` or `off`"),
            )),
        },
        lit => Err(Error::new(lit.span(), format!("expected {expected}"))),
    }
}

fn parse_handler(meta: &ParseNestedMeta<'_>) -> syn::Result<PolicyOpt> {
    const EXPECTED: &str = "expected the path of a handler, e.g. `handler = crate::alerts::on_leak`: a `fn(&LeakReport)` or a `Fn(&LeakReport) + Send + Sync + 'static` value";
    match meta.value()?.parse::<Expr>()? {
        Expr::Path(path) if path.attrs.is_empty() => Ok(PolicyOpt::Handler(path)),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) if lit.parse::<Path>().is_ok() => Err(Error::new(
            lit.span(),
            format!(
                "write the handler as a path, without quotes: `handler = {}`",
                lit.value()
            ),
        )),
        other => Err(Error::new_spanned(other, EXPECTED)),
    }
}

fn parse_worker_threads(meta: &ParseNestedMeta<'_>) -> syn::Result<usize> {
    let expected = "a number of threads, e.g. `worker_threads = 4`";
    match value_lit(meta, expected)? {
        Lit::Int(lit) => match lit.base10_parse::<usize>()? {
            0 => Err(Error::new(
                lit.span(),
                "`worker_threads` must be at least 1",
            )),
            n => Ok(n),
        },
        lit => Err(Error::new(lit.span(), format!("expected {expected}"))),
    }
}

fn parse_bool(meta: &ParseNestedMeta<'_>) -> syn::Result<bool> {
    match value_lit(meta, "`true` or `false`")? {
        Lit::Bool(lit) => Ok(lit.value),
        lit => Err(Error::new(lit.span(), "expected `true` or `false`")),
    }
}

/// The "unknown option" message: the valid keys, led by the closest one
/// when it is close enough to be a typo.
pub(crate) fn unknown_key(key: &str, keys: &[&str]) -> String {
    let expected = keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>();
    let expected = expected.join(", ");
    match closest(key, keys) {
        Some(close) => {
            format!("unknown option `{key}`; did you mean `{close}`? expected one of: {expected}")
        }
        None => format!("unknown option `{key}`; expected one of: {expected}"),
    }
}

/// The key nearest to `key` by edit distance, if at most a third of its
/// length (at least 1) away.
pub(crate) fn closest<'k>(key: &str, keys: &[&'k str]) -> Option<&'k str> {
    let limit = (key.chars().count() / 3).max(1);
    keys.iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and swaps of two neighbours (`graec` is one swap from `grace`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between the first i chars of a and the first j of b.
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::{KEYS, closest, edit_distance};

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("graec", "grace"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("flavour", "flavor"), 1);
        assert_eq!(closest("graec", KEYS), Some("grace"));
        assert_eq!(closest("flavour", KEYS), Some("flavor"));
        assert_eq!(closest("worker_thread", KEYS), Some("worker_threads"));
        assert_eq!(closest("ignore", KEYS), None);
        assert_eq!(closest("x", KEYS), None);
    }
}
