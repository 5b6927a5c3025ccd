//! Run-time overrides from the environment, read once per process.
//!
//! - `LEAKFREE_POLICY` = `panic` | `log` | `off`: replaces every scope's
//!   policy (e.g. `log` or `off` in production without a rebuild).
//! - `LEAKFREE_GRACE` = a duration such as `250ms`, `2s`, `500us`: replaces
//!   every scope's grace period.
//!
//! A value that does not parse is not ignored: the first scope to read it
//! panics with a message naming the variable, the value and the accepted
//! forms.

use std::sync::OnceLock;
use std::time::Duration;

use crate::duration;
use crate::policy::Policy;

/// The parsed overrides.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    pub(crate) policy: Option<Policy>,
    pub(crate) grace: Option<Duration>,
}

/// The process's overrides; panics (every time) on a bad value.
pub(crate) fn overrides() -> &'static Overrides {
    static OVERRIDES: OnceLock<Result<Overrides, String>> = OnceLock::new();
    let parsed = OVERRIDES.get_or_init(|| {
        parse(
            std::env::var("LEAKFREE_POLICY").ok().as_deref(),
            std::env::var("LEAKFREE_GRACE").ok().as_deref(),
        )
    });
    match parsed {
        Ok(overrides) => overrides,
        Err(message) => panic!("{message}"),
    }
}

pub(crate) fn parse(policy: Option<&str>, grace: Option<&str>) -> Result<Overrides, String> {
    let policy = match policy.map(str::trim) {
        None | Some("") => None,
        Some("panic") => Some(Policy::Panic),
        Some("log") => Some(Policy::Log),
        Some("off") => Some(Policy::Off),
        Some(other) => {
            return Err(format!(
                "leakfree: LEAKFREE_POLICY={other:?} is not a policy; \
                 use one of `panic`, `log`, `off`, or unset it"
            ));
        }
    };
    let grace = match grace.map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(duration::parse(text).map_err(|why| {
            format!(
                "leakfree: LEAKFREE_GRACE={text:?} is not a duration: {}; write {}, or unset it",
                why.reason(),
                duration::ACCEPTED
            )
        })?),
    };
    Ok(Overrides { policy, grace })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_and_durations_parse() {
        let o = parse(Some("log"), Some("250ms")).unwrap();
        assert!(matches!(o.policy, Some(Policy::Log)));
        assert_eq!(o.grace, Some(Duration::from_millis(250)));
        let o = parse(None, Some(" ")).unwrap();
        assert!(o.policy.is_none() && o.grace.is_none());
    }

    #[test]
    fn bad_values_name_the_variable_and_the_fix() {
        let error = parse(Some("loud"), None).unwrap_err();
        assert_eq!(
            error,
            "leakfree: LEAKFREE_POLICY=\"loud\" is not a policy; use one of `panic`, `log`, `off`, or unset it"
        );
        let error = parse(None, Some("250")).unwrap_err();
        assert!(error.starts_with("leakfree: LEAKFREE_GRACE=\"250\" is not a duration"));
        assert!(error.contains("`250ms`"));
    }
}
