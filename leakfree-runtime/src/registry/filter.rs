//! Ignore filters: task-name and spawn-location globs whose tasks are let out
//! of the scope instead of being judged.
//!
//! A glob is matched against the whole text; `*` matches any run of characters
//! (`/` included) and `?` one character. A location glob also matches any
//! path *suffix* that starts after a `/`, so `src/pool.rs` matches
//! `/home/me/.cargo/registry/src/…/pool-1.0.0/src/pool.rs`.

use std::borrow::Cow;
use std::panic::Location;

/// The ignore filters of one scope.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    names: Vec<Cow<'static, str>>,
    locations: Vec<Cow<'static, str>>,
}

impl Filters {
    pub(crate) fn add_name(&mut self, glob: Cow<'static, str>) {
        self.names.push(glob);
    }

    pub(crate) fn add_location(&mut self, glob: Cow<'static, str>) {
        self.locations.push(glob);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.names.is_empty() && self.locations.is_empty()
    }

    /// Whether a task spawned at `location` with `name` is ignored.
    pub(crate) fn ignores(&self, name: Option<&str>, location: &Location<'_>) -> bool {
        if let Some(name) = name {
            if self.names.iter().any(|glob| glob_matches(glob, name)) {
                return true;
            }
        }
        let file = location.file();
        self.locations
            .iter()
            .any(|glob| path_glob_matches(glob, file))
    }
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
