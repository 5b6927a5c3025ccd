//! Ignore filters: task-name and spawn-location globs whose tasks are let out
//! of the scope instead of being judged.
//!
//! A glob is matched against the whole text; `*` matches any run of characters
//! (`/` included) and `?` one character. A location glob also matches any
//! path *suffix* that starts after a `/`, so `src/pool.rs` matches
//! `/home/me/.cargo/registry/src/…/pool-1.0.0/src/pool.rs`.

use std::borrow::Cow;
use std::panic::Location;
use std::sync::Arc;

use crate::report::package_relative;

/// The ignore filters of one scope. The globs sit behind one `Arc`, made at
/// the first one added: the scopes a builder makes (one per request, behind
/// the tower layer) share them, a clone costs no copy of them, and a scope
/// without filters carries none.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    /// `None` while no glob was added.
    globs: Option<Arc<Globs>>,
}

#[derive(Debug, Clone, Default)]
struct Globs {
    names: Vec<Cow<'static, str>>,
    locations: Vec<Cow<'static, str>>,
    /// Crate-name globs, with `-` written as `_`.
    crates: Vec<Cow<'static, str>>,
}

impl Filters {
    /// The globs, to add to (copied first if another builder shares them).
    fn globs_mut(&mut self) -> &mut Globs {
        Arc::make_mut(self.globs.get_or_insert_with(Arc::default))
    }

    pub(crate) fn add_name(&mut self, glob: Cow<'static, str>) {
        self.globs_mut().names.push(glob);
    }

    pub(crate) fn add_location(&mut self, glob: Cow<'static, str>) {
        self.globs_mut().locations.push(glob);
    }

    pub(crate) fn add_crate(&mut self, glob: Cow<'static, str>) {
        self.globs_mut()
            .crates
            .push(Cow::Owned(glob.replace('-', "_")));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.globs.is_none()
    }

    /// Whether a task spawned at `location` with `name` is ignored.
    pub(crate) fn ignores(&self, name: Option<&str>, location: &Location<'_>) -> bool {
        let Some(globs) = &self.globs else {
            return false;
        };
        if let Some(name) = name {
            if globs.names.iter().any(|glob| glob_matches(glob, name)) {
                return true;
            }
        }
        let file = location.file();
        if globs
            .locations
            .iter()
            .any(|glob| path_glob_matches(glob, file))
        {
            return true;
        }
        match crate_of(file) {
            Some(name) => globs.crates.iter().any(|glob| glob_matches(glob, &name)),
            None => false,
        }
    }
}

/// Whether `text` starts like a semver version: `1.2.3`, `0.9.0-rc.1`.
fn is_version(text: &str) -> bool {
    let mut parts = text.splitn(3, '.');
    let numeric =
        |part: Option<&str>| part.is_some_and(|p| p.starts_with(|c: char| c.is_ascii_digit()));
    let (major, minor, patch) = (parts.next(), parts.next(), parts.next());
    major.is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
        && minor.is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
        && numeric(patch)
}

/// The crate a source file belongs to, by its package directory, with `-`
/// written as `_`: `…/registry/src/<index>/hyper-util-0.1.10/src/pool.rs` →
/// `hyper_util`, a path dependency's `tests/leaky-dep/src/lib.rs` →
/// `leaky_dep`. `None` for a file whose package directory the path does not
/// show (the root package's own `src/x.rs`).
pub(crate) fn crate_of(file: &str) -> Option<String> {
    let relative = package_relative(file).replace('\\', "/");
    let package_dir = &relative[..relative.rfind("/src/")?];
    let dir = package_dir.rsplit('/').next()?;
    // A registry package's directory ends in `-<major>.<minor>.<patch>…`
    // (the version may hold dashes too: `-0.9.0-rc.1`).
    let name = dir
        .match_indices('-')
        .map(|(dash, _)| dash)
        .find(|&dash| is_version(&dir[dash + 1..]))
        .map_or(dir, |dash| &dir[..dash]);
    (!name.is_empty()).then(|| name.replace('-', "_"))
}

/// Matches `glob` against the whole of `path` or against any suffix of it
/// that starts right after a `/` (or `\`).
pub(crate) fn path_glob_matches(glob: &str, path: &str) -> bool {
    if glob_matches(glob, path) {
        return true;
    }
    path.char_indices()
        .filter(|(_, c)| *c == '/' || *c == '\\')
        .any(|(i, _)| glob_matches(glob, &path[i + 1..]))
}

/// Whole-text glob match with `*` and `?`.
pub(crate) fn glob_matches(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point for the last `*`.
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && (glob[g] == '?' || glob[g] == text[t]) {
            g += 1;
            t += 1;
        } else if g < glob.len() && glob[g] == '*' {
            star = Some((g, t));
            g += 1;
        } else if let Some((star_g, star_t)) = star {
            g = star_g + 1;
            t = star_t + 1;
            star = Some((star_g, star_t + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_text() {
        assert!(glob_matches("pinger", "pinger"));
        assert!(!glob_matches("pinger", "pinger-2"));
        assert!(glob_matches("pinger*", "pinger-2"));
        assert!(glob_matches("*-?", "worker-7"));
        assert!(!glob_matches("*-?", "worker-17"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "a-b-b-c"));
        assert!(!glob_matches("a*b*c", "a-b-b-d"));
    }

    #[test]
    fn location_globs_match_path_suffixes() {
        let registry = "/root/.cargo/registry/src/index/pool-1.0.0/src/pool.rs";
        assert!(path_glob_matches("src/pool.rs", registry));
        assert!(path_glob_matches("pool-*/src/*.rs", registry));
        assert!(path_glob_matches("/root/*", registry));
        assert!(!path_glob_matches("pool.r", registry));
        assert!(
            !path_glob_matches("ool.rs", registry),
            "suffixes start after a /"
        );
    }

    #[test]
    fn crates_are_read_from_package_directories() {
        let registry = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f";
        assert_eq!(
            crate_of(&format!(
                "{registry}/hyper-util-0.1.10/src/client/legacy/pool.rs"
            ))
            .as_deref(),
            Some("hyper_util")
        );
        assert_eq!(
            crate_of(&format!("{registry}/tokio-1.54.1/src/task/spawn.rs")).as_deref(),
            Some("tokio")
        );
        assert_eq!(
            crate_of(&format!("{registry}/bb8-0.9.0-rc.1/src/inner.rs")).as_deref(),
            Some("bb8")
        );
        assert_eq!(
            crate_of("tests/leaky-dep/src/lib.rs").as_deref(),
            Some("leaky_dep")
        );
        assert_eq!(crate_of("src/lib.rs"), None, "the root package's own files");
        assert_eq!(crate_of("tests/tests/attribute.rs"), None);
    }

    #[test]
    fn a_clone_shares_the_globs_until_one_side_adds() {
        let mut template = Filters::default();
        assert!(template.is_empty());
        template.add_name("pinger*".into());
        let mut copy = template.clone();
        let shared = |a: &Filters, b: &Filters| match (&a.globs, &b.globs) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        assert!(shared(&template, &copy), "a clone copies no glob");
        copy.add_name("worker-?".into());
        assert!(!shared(&template, &copy));
        let here = Location::caller();
        assert!(copy.ignores(Some("worker-7"), here));
        assert!(
            !template.ignores(Some("worker-7"), here),
            "adding to the clone leaves the template as it was"
        );
        assert!(template.ignores(Some("pinger-2"), here));
    }

    #[test]
    fn crate_filters_match_by_name_whatever_the_path_or_version() {
        let mut filters = Filters::default();
        filters.add_crate("hyper-util".into());
        let pool = Location::caller();
        assert!(
            !filters.ignores(None, pool),
            "this file is leakfree_runtime's, not hyper_util's"
        );
        assert!(!filters.is_empty());
        let mut by_glob = Filters::default();
        by_glob.add_crate("leakfree_*".into());
        assert!(
            by_glob.ignores(None, Location::caller()),
            "leakfree-runtime/src/registry/filter.rs is leakfree_runtime's"
        );
    }

    #[test]
    fn filters_check_names_and_locations() {
        let mut filters = Filters::default();
        assert!(filters.is_empty());
        filters.add_name("metrics-*".into());
        filters.add_location("src/pool.rs".into());
        let here = Location::caller();
        assert!(filters.ignores(Some("metrics-flush"), here));
        assert!(!filters.ignores(Some("pinger"), here));
        assert!(!filters.ignores(None, here));
        filters.add_location("*/filter.rs".into());
        assert!(filters.ignores(None, here));
    }
}
