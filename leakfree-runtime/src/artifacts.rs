//! `LEAKFREE_REPORT_DIR`: leak reports kept as files, so that CI can keep
//! them as artifacts of a failed run.
//!
//! When the variable is set (and not empty), every scope whose report a
//! policy acts on ([`Scope::run`](crate::Scope::run): the attribute, the
//! tower layer, detached and dropped scopes) and is not clean writes one
//! JSON file there, in the shape `report::json` documents
//! (feature `serde`), named from the scope's name, the time, the process
//! and a counter:
//!
//! ```text
//! worker_stops-20261201T221530.123Z-4711-3.json
//! ```
//!
//! # Invariants
//! - Clean reports cost one branch: the variable is read only for a report
//!   that is not clean (then at every such report, so a test can set it
//!   before its first leak).
//! - A file name is never used twice: within a process the counter differs,
//!   between processes the pid does; the time only sorts them. A file is
//!   written under a hidden temporary name and renamed into place, so a
//!   reader never sees half a report.
//! - Writing never panics and never stands between the report and its
//!   policy: the hook runs first, returns whatever happens, and the policy
//!   then panics, logs or calls its handler as it would without it.
//! - A directory that cannot be used (missing and cannot be created, a
//!   file, not writable), and a build without the `serde` feature, are said
//!   once per process, on standard error and as a `tracing` warning (target
//!   `leakfree`), naming the variable and the path; never silently ignored.

use std::env;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(feature = "serde")]
use std::fs;
#[cfg(feature = "serde")]
use std::path::PathBuf;
#[cfg(feature = "serde")]
use std::process;
#[cfg(feature = "serde")]
use std::sync::atomic::AtomicU64;
#[cfg(feature = "serde")]
use std::time::{SystemTime, UNIX_EPOCH};

use crate::report::LeakReport;

/// The variable naming the directory.
pub(crate) const VARIABLE: &str = "LEAKFREE_REPORT_DIR";

/// Keeps a report that is not clean in `LEAKFREE_REPORT_DIR`, if set. Called
/// where a scope's report is acted on, before the policy acts.
pub(crate) fn keep(report: &LeakReport) {
    if report.is_clean() {
        return;
    }
    if let Some(dir) = env::var_os(VARIABLE).filter(|dir| !dir.is_empty()) {
        keep_in(report, Path::new(&dir));
    }
}

/// Writes the report's file in `dir`; a failure is said once per process.
#[cfg(feature = "serde")]
fn keep_in(report: &LeakReport, dir: &Path) {
    if let Err(why) = write_report(report, dir, SystemTime::now()) {
        say_once(&format!(
            "leakfree: {VARIABLE}={}: cannot keep leak reports there: {why}; \
             no report files are written (the scope's policy still acts)",
            dir.display()
        ));
    }
}

/// Without the `serde` feature there is nothing to write: says so, once.
#[cfg(not(feature = "serde"))]
fn keep_in(_report: &LeakReport, dir: &Path) {
    say_once(&format!(
        "leakfree: {VARIABLE}={} is set, but leakfree-runtime was built without its \
         `serde` feature, so no report files are written; enable it: \
         leakfree-runtime = {{ version = \"0.1\", features = [\"serde\"] }}",
        dir.display()
    ));
}

/// The first problem with the variable, on standard error and as a warning.
fn say_once(message: &str) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if SAID.swap(true, Ordering::Relaxed) {
        return;
    }
    eprintln!("{message}");
    tracing::warn!(target: "leakfree", variable = VARIABLE, "{message}");
}

/// Writes `report` as a new JSON file in `dir` (created if missing) and
/// returns its path, or says what is wrong with `dir`.
#[cfg(feature = "serde")]
fn write_report(report: &LeakReport, dir: &Path, now: SystemTime) -> Result<PathBuf, String> {
    static WRITTEN: AtomicU64 = AtomicU64::new(1);
    if dir.exists() && !dir.is_dir() {
        return Err("it is not a directory".to_owned());
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create the directory: {e}"))?;
    let name = file_name(
        report.scope_name(),
        now,
        process::id(),
        WRITTEN.fetch_add(1, Ordering::Relaxed),
    );
    let path = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    fs::write(&partial, report.to_json())
        .and_then(|()| fs::rename(&partial, &path))
        .map_err(|e| {
            let _ = fs::remove_file(&partial);
            format!("cannot write {name} in it: {e}")
        })?;
    Ok(path)
}

/// `<scope>-<UTC time>-<pid>-<counter>.json`.
#[cfg(feature = "serde")]
fn file_name(scope: &str, now: SystemTime, pid: u32, counter: u64) -> String {
    format!(
        "{}-{}-{pid}-{counter}.json",
        sanitize(scope),
        utc_timestamp(now)
    )
}

/// A scope name as a portable file-name part: ASCII letters, digits, `-`,
/// `_` and `.` kept, every other run of characters one `_`, no leading or
/// trailing `.` or `_`, at most 64 characters, `scope` if nothing is left.
#[cfg(feature = "serde")]
fn sanitize(scope: &str) -> String {
    let mut out = String::with_capacity(scope.len().min(64));
    for c in scope.chars() {
        let keep = c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        let c = if keep { c } else { '_' };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let trimmed: String = out
        .trim_matches(|c| c == '.' || c == '_')
        .chars()
        .take(64)
        .collect();
    if trimmed.is_empty() {
        "scope".to_owned()
    } else {
        trimmed
    }
}

/// `20261201T221530.123Z`: UTC, milliseconds, no characters a file system
/// refuses.
#[cfg(feature = "serde")]
fn utc_timestamp(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_date((secs / 86_400) as i64);
    let in_day = secs % 86_400;
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
#[cfg(feature = "serde")]
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use std::fs;
    use std::panic::Location;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::{file_name, sanitize, utc_timestamp, write_report};
    use crate::report::{LeakReport, TaskPanic};

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        assert_eq!(utc_timestamp(at(0, 0)), "19700101T000000.000Z");
        // 2026-12-01 22:15:30.123 UTC.
        assert_eq!(
            utc_timestamp(at(1_796_163_330, 123)),
            "20261201T221530.123Z"
        );
        // A leap day, and the last millisecond of a year.
        assert_eq!(utc_timestamp(at(951_782_400, 0)), "20000229T000000.000Z");
        assert_eq!(
            utc_timestamp(at(1_767_225_599, 999)),
            "20251231T235959.999Z"
        );
    }

    #[test]
    fn scope_names_become_portable_file_names() {
        assert_eq!(sanitize("worker_stops"), "worker_stops");
        assert_eq!(sanitize("GET /users/{id}"), "GET_users_id");
        assert_eq!(sanitize("../../etc/passwd"), "etc_passwd");
        assert_eq!(sanitize("tests::a::b"), "tests_a_b");
        assert_eq!(sanitize("ünï"), "n");
        assert_eq!(sanitize("///"), "scope");
        assert_eq!(sanitize(&"x".repeat(100)).len(), 64);
        assert_eq!(
            file_name("GET /x", at(1_796_163_330, 123), 4711, 3),
            "GET_x-20261201T221530.123Z-4711-3.json"
        );
    }

    fn leaky_report() -> LeakReport {
        let panic = TaskPanic::new(None, None, Location::caller(), "boom".into());
        LeakReport::new("a scope".into(), Duration::ZERO, 0, 0).with_panics(vec![panic])
    }

    #[test]
    fn a_report_is_written_once_per_call_and_bad_dirs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("made/by/leakfree");
        let report = leaky_report();
        let first = write_report(&report, &nested, at(0, 0)).unwrap();
        let second = write_report(&report, &nested, at(0, 0)).unwrap();
        assert_ne!(first, second, "same scope, same millisecond: two files");
        let files: Vec<_> = fs::read_dir(&nested).unwrap().collect();
        assert_eq!(files.len(), 2, "no partial file is left behind");
        let text = fs::read_to_string(&first).unwrap();
        assert!(text.contains("\"scope\": \"a scope\""), "{text}");

        let file = dir.path().join("a-file");
        fs::write(&file, "").unwrap();
        assert_eq!(
            write_report(&report, &file, at(0, 0)).unwrap_err(),
            "it is not a directory"
        );
        let under_file = file.join("sub");
        let why = write_report(&report, &under_file, at(0, 0)).unwrap_err();
        assert!(why.starts_with("cannot create the directory: "), "{why}");
    }
}
