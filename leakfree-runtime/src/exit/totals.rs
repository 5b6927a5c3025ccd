//! Process-wide totals of the verdicts reached: the counters the live view's
//! [`metrics`](crate::live::metrics) reads, and (feature `metrics`) their
//! publication through the `metrics` facade.
//!
//! # Invariants
//! - The totals only ever grow, and each verdict is counted exactly once, by
//!   [`count_verdict`], which the exit protocol calls once per scope.
//! - With the `metrics` feature, the same call adds the same amounts to the
//!   facade's counters, so a scrape and [`live::metrics`](crate::live::metrics())
//!   agree on everything counted since the recorder was installed. Nothing
//!   is published per spawn or per poll: only here, and in the gauges that
//!   `leakfree_runtime::metrics::publish_gauges` sets when it is called.
//! - The by-site counter has at most `metrics::SITE_LABEL_LIMIT` distinct
//!   `site` values plus the reserved `other` and `untracked`, for the life of
//!   the process; the sum over its sites equals the leaked-tasks counter.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::registry::{SHARDS, own_shard};
use crate::report::LeakReport;

/// Scopes ended, one counter per shard (a thread adds to its own, as with
/// the scope list), each on a cache line of its own: every request of a
/// service ends a scope, and one shared counter would bounce between the
/// workers' caches. Read as the sum.
static SCOPES_ENDED: [PaddedCounter; SHARDS] = [const { PaddedCounter(AtomicU64::new(0)) }; SHARDS];

#[repr(align(128))]
struct PaddedCounter(AtomicU64);
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
    count_scope_ended();
    let leaked = report.leaked().len() as u64 + report.untracked().unwrap_or(0) as u64;
    // Shared counters: a clean verdict touches only the one above.
    let add = |counter: &AtomicU64, n: u64| {
        if n != 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    };
    add(&LEAKS_FOUND, leaked);
    add(&ZOMBIES_FOUND, report.zombies().len() as u64);
    add(&PANICS_UNOBSERVED, report.panics().len() as u64);
    if !report.is_clean() {
        SCOPES_WITH_LEAKS.fetch_add(1, Ordering::Relaxed);
    }
    #[cfg(feature = "metrics")]
    facade::publish_verdict(report, leaked);
}

/// Counts a verdict known to be clean, with no report made: all that
/// [`count_verdict`] adds for a clean report.
pub(super) fn count_clean_verdict() {
    count_scope_ended();
    #[cfg(feature = "metrics")]
    facade::publish_scope_ended();
}

fn count_scope_ended() {
    SCOPES_ENDED[own_shard()].0.fetch_add(1, Ordering::Relaxed);
}

/// Reads the totals.
pub(crate) fn totals() -> Totals {
    Totals {
        scopes_ended: SCOPES_ENDED
            .iter()
            .map(|shard| shard.0.load(Ordering::Relaxed))
            .sum(),
        scopes_with_leaks: SCOPES_WITH_LEAKS.load(Ordering::Relaxed),
        leaks_found: LEAKS_FOUND.load(Ordering::Relaxed),
        zombies_found: ZOMBIES_FOUND.load(Ordering::Relaxed),
        panics_unobserved: PANICS_UNOBSERVED.load(Ordering::Relaxed),
    }
}

/// The verdict counters in the `metrics` facade: their names, their
/// descriptions, and the bounded `site` label. The public face (the docs,
/// the gauges) is `leakfree_runtime::metrics`, above.
#[cfg(feature = "metrics")]
pub(crate) mod facade {
    use std::panic::Location;
    use std::sync::Once;

    use ::metrics::{Key, Level, Metadata, Unit, counter, describe_counter, describe_gauge};
    use parking_lot::Mutex;

    use crate::report::LeakReport;

    /// Counter: scopes that have ended.
    pub(crate) const SCOPES_ENDED_TOTAL: &str = "leakfree_scopes_ended_total";
    /// Counter: scopes whose report was not clean.
    pub(crate) const SCOPES_WITH_LEAKS_TOTAL: &str = "leakfree_scopes_with_leaks_total";
    /// Counter: leaked tasks (tracked, hooked and untracked).
    pub(crate) const LEAKED_TASKS_TOTAL: &str = "leakfree_leaked_tasks_total";
    /// Counter: leaked tasks by spawn site, label `site`.
    pub(crate) const LEAKED_TASKS_BY_SITE_TOTAL: &str = "leakfree_leaked_tasks_by_site_total";
    /// Counter: tasks still alive after being aborted.
    pub(crate) const ZOMBIE_TASKS_TOTAL: &str = "leakfree_zombie_tasks_total";
    /// Counter: tracked task panics no `JoinHandle` observed.
    pub(crate) const UNOBSERVED_PANICS_TOTAL: &str = "leakfree_unobserved_panics_total";
    /// Gauge: scopes running now.
    pub(crate) const LIVE_SCOPES: &str = "leakfree_live_scopes";
    /// Gauge: tracked tasks alive now, over all live scopes.
    pub(crate) const LIVE_TRACKED_TASKS: &str = "leakfree_live_tracked_tasks";

    /// How many distinct spawn sites get a `site` label value of their own.
    pub(crate) const SITE_LABEL_LIMIT: usize = 32;
    /// The `site` of leaks from sites past the limit.
    pub(crate) const OTHER_SITE: &str = "other";
    /// The `site` of untracked leaks (counted, never located).
    pub(crate) const UNTRACKED_SITE: &str = "untracked";

    /// The sites that have a label value of their own, first come first
    /// served, never more than [`SITE_LABEL_LIMIT`].
    static SITES: Mutex<SiteLabels> = Mutex::new(SiteLabels::new(SITE_LABEL_LIMIT));

    /// Describes every metric and registers the counters at zero, the
    /// first time leakfree publishes anything.
    pub(crate) fn announce() {
        static ONCE: Once = Once::new();
        ONCE.call_once(describe_all);
    }

    /// Describes every metric to the installed recorder and registers the
    /// counters at zero (so a rate over a window sees the first leak).
    pub(crate) fn describe_all() {
        let counters = [
            (SCOPES_ENDED_TOTAL, "Scopes that have ended."),
            (
                SCOPES_WITH_LEAKS_TOTAL,
                "Scopes whose report was not clean (leaks, zombies, unobserved panics).",
            ),
            (
                LEAKED_TASKS_TOTAL,
                "Tasks still alive at their scope's end (tracked, hooked and untracked).",
            ),
            (ZOMBIE_TASKS_TOTAL, "Tasks still alive after being aborted."),
            (
                UNOBSERVED_PANICS_TOTAL,
                "Tracked task panics that no JoinHandle observed.",
            ),
        ];
        for (name, help) in counters {
            describe_counter!(name, Unit::Count, help);
            counter!(name).increment(0);
        }
        describe_counter!(
            LEAKED_TASKS_BY_SITE_TOTAL,
            Unit::Count,
            format!(
                "Leaked tasks by spawn site (file:line); sites past the first \
                 {SITE_LABEL_LIMIT} count under site=\"{OTHER_SITE}\", untracked tasks \
                 under site=\"{UNTRACKED_SITE}\"."
            )
        );
        describe_gauge!(LIVE_SCOPES, Unit::Count, "Scopes running now.");
        describe_gauge!(
            LIVE_TRACKED_TASKS,
            Unit::Count,
            "Tracked tasks alive now, over all live scopes."
        );
    }

    /// Adds one verdict to the facade's counters; `leaked` is what the
    /// totals counted as leaked.
    pub(super) fn publish_verdict(report: &LeakReport, leaked: u64) {
        publish_scope_ended();
        if report.is_clean() && leaked == 0 {
            // Nothing else to add (every counter was registered at zero by
            // `announce`): one recorder call per clean verdict, not five.
            return;
        }
        counter!(SCOPES_WITH_LEAKS_TOTAL).increment(u64::from(!report.is_clean()));
        counter!(LEAKED_TASKS_TOTAL).increment(leaked);
        counter!(ZOMBIE_TASKS_TOTAL).increment(report.zombies().len() as u64);
        counter!(UNOBSERVED_PANICS_TOTAL).increment(report.panics().len() as u64);
        if leaked == 0 {
            return;
        }
        for (site, count) in by_site(report) {
            counter!(LEAKED_TASKS_BY_SITE_TOTAL, "site" => site).increment(count);
        }
    }

    /// A clean verdict's one recorder call, on every request of a service.
    ///
    /// Its key is a `static`, hashed at compile time: `counter!` given a
    /// name that is not a literal builds and hashes a new key at each call
    /// (≈90 instructions of a request's path). The recorder is still asked
    /// for the counter each time (a handle kept across calls could outlive
    /// a thread-local recorder).
    pub(super) fn publish_scope_ended() {
        static KEY: Key = Key::from_static_name(SCOPES_ENDED_TOTAL);
        static METADATA: Metadata<'static> =
            Metadata::new(module_path!(), Level::INFO, Some(module_path!()));
        announce();
        ::metrics::with_recorder(|recorder| recorder.register_counter(&KEY, &METADATA))
            .increment(1);
    }

    /// The report's leaks summed by label value: one recorder call per
    /// site, however many tasks leaked from it.
    fn by_site(report: &LeakReport) -> Vec<(String, u64)> {
        let mut counts: Vec<(String, u64)> = Vec::new();
        let mut sites = SITES.lock();
        for task in report.leaked() {
            let site = sites.label(task.location());
            match counts.iter_mut().find(|(s, _)| *s == site) {
                Some((_, count)) => *count += 1,
                None => counts.push((site, 1)),
            }
        }
        drop(sites);
        if let Some(untracked) = report.untracked().filter(|n| *n > 0) {
            counts.push((UNTRACKED_SITE.to_owned(), untracked as u64));
        }
        counts
    }

    /// Which spawn sites have a label value of their own.
    #[derive(Debug)]
    pub(super) struct SiteLabels {
        limit: usize,
        sites: Vec<(&'static str, u32)>,
    }

    impl SiteLabels {
        pub(super) const fn new(limit: usize) -> SiteLabels {
            SiteLabels {
                limit,
                sites: Vec::new(),
            }
        }

        /// `file:line` for a known site or a new one while there is room;
        /// `other` past the limit.
        pub(super) fn label(&mut self, location: &'static Location<'static>) -> String {
            let site = (location.file(), location.line());
            let known = self.sites.contains(&site);
            if !known && self.sites.len() >= self.limit {
                return OTHER_SITE.to_owned();
            }
            if !known {
                self.sites.push(site);
            }
            format!("{}:{}", site.0, site.1)
        }
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use std::panic::Location;

    use super::facade::SiteLabels;

    #[track_caller]
    fn here() -> &'static Location<'static> {
        Location::caller()
    }

    /// The first `limit` sites keep their own label, for good; later ones
    /// share `other`; a second column on a known line is the same site.
    #[test]
    fn site_labels_are_bounded() {
        let mut labels = SiteLabels::new(2);
        let (a, same_line) = (here(), here());
        let b = here();
        let c = here();
        let label = |l: &Location<'_>| format!("{}:{}", l.file(), l.line());
        assert_ne!(a.column(), same_line.column());
        assert_eq!(labels.label(a), label(a));
        assert_eq!(labels.label(same_line), label(a), "same line: one site");
        assert_eq!(labels.label(b), label(b));
        assert_eq!(labels.label(c), "other", "past the limit");
        assert_eq!(labels.label(a), label(a), "a known site keeps its label");
        assert_eq!(labels.label(c), "other");
    }
}
