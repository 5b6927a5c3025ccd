//! Process-wide totals of the verdicts reached: the counters the live view's
//! [`metrics`](crate::live::metrics) reads. They only ever grow.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::report::LeakReport;

static SCOPES_ENDED: AtomicU64 = AtomicU64::new(0);
static LEAKS_FOUND: AtomicU64 = AtomicU64::new(0);
static ZOMBIES_FOUND: AtomicU64 = AtomicU64::new(0);
static PANICS_UNOBSERVED: AtomicU64 = AtomicU64::new(0);
static SCOPES_WITH_LEAKS: AtomicU64 = AtomicU64::new(0);

/// The totals at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Totals {
    pub(crate) scopes_ended: u64,
    pub(crate) scopes_with_leaks: u64,
    pub(crate) leaks_found: u64,
    pub(crate) zombies_found: u64,
    pub(crate) panics_unobserved: u64,
}

/// Counts a finished scope's verdict.
pub(super) fn count_verdict(report: &LeakReport) {
    SCOPES_ENDED.fetch_add(1, Ordering::Relaxed);
    let leaked = report.leaked().len() as u64 + report.untracked().unwrap_or(0) as u64;
    LEAKS_FOUND.fetch_add(leaked, Ordering::Relaxed);
    ZOMBIES_FOUND.fetch_add(report.zombies().len() as u64, Ordering::Relaxed);
    PANICS_UNOBSERVED.fetch_add(report.panics().len() as u64, Ordering::Relaxed);
    if !report.is_clean() {
        SCOPES_WITH_LEAKS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads the totals.
pub(crate) fn totals() -> Totals {
    Totals {
        scopes_ended: SCOPES_ENDED.load(Ordering::Relaxed),
        scopes_with_leaks: SCOPES_WITH_LEAKS.load(Ordering::Relaxed),
        leaks_found: LEAKS_FOUND.load(Ordering::Relaxed),
        zombies_found: ZOMBIES_FOUND.load(Ordering::Relaxed),
        panics_unobserved: PANICS_UNOBSERVED.load(Ordering::Relaxed),
    }
}
