//! leakfree's counters and gauges in the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`), for whichever recorder the service installs
//! (Prometheus, StatsD, OpenTelemetry…). Without the feature leakfree
//! depends on no metrics crate, and [`live::metrics`](crate::live::metrics())
//! gives the same numbers as plain values.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `leakfree_scopes_ended_total` | counter | scopes that have ended |
//! | `leakfree_scopes_with_leaks_total` | counter | scopes whose report was not clean |
//! | `leakfree_leaked_tasks_total` | counter | leaked tasks (tracked, hooked and untracked) |
//! | `leakfree_leaked_tasks_by_site_total{site}` | counter | the same, by spawn site (`site="src/handler.rs:42"`) |
//! | `leakfree_zombie_tasks_total` | counter | tasks still alive after being aborted |
//! | `leakfree_unobserved_panics_total` | counter | tracked task panics no `JoinHandle` observed |
//! | `leakfree_live_scopes` | gauge | scopes running now |
//! | `leakfree_live_tracked_tasks` | gauge | tracked tasks alive now, over all live scopes |
//!
//! # When they move
//! - **Counters** are incremented when a scope's verdict is reached, by the
//!   same call that counts it for [`live::metrics`](crate::live::metrics()),
//!   whatever ends the scope (the attribute, [`Scope::run`](crate::Scope::run),
//!   [`Scope::finish`](crate::Scope::finish), the tower layer, a dropped
//!   scope's reaper). They count verdicts reached while a recorder is
//!   installed: install it at start-up, before the first scope ends.
//! - **Gauges** are set by [`publish_gauges`], and only then. Keeping them
//!   current on every spawn would add work to the hot path, which leakfree
//!   keeps close to `tokio::spawn`; reading them on demand costs one pass
//!   over the live scopes. Call it on each scrape, or from a ticker:
//!
//! ```no_run
//! # async fn service() {
//! use std::time::Duration;
//!
//! // Beside the recorder's set-up, outside any leakfree scope (tokio's
//! // own spawn: this loop is meant to run for the process's life).
//! tokio::spawn(async {
//!     let mut tick = tokio::time::interval(Duration::from_secs(10));
//!     loop {
//!         tick.tick().await;
//!         leakfree_runtime::metrics::publish_gauges();
//!     }
//! });
//! # }
//! ```
//!
//! # The `site` label's cardinality
//! The first [`SITE_LABEL_LIMIT`] (32) distinct spawn sites that leak get a
//! `site` value of their own (`file:line`, the column left out); leaks from
//! any later site count under `site="other"`, and untracked tasks (counted,
//! never located) under `site="untracked"`. So the by-site counter is at
//! most 34 series for the life of the process, whatever the code does.
//! Why 32: a leak is a bug at one spawn site, and a service usually has a
//! handful; more than a few dozen leaking sites is a systemic problem whose
//! details belong in the reports (the log events, or
//! `LEAKFREE_REPORT_DIR`), not in a time-series database where each label
//! value is a series kept for weeks. Every series appears with its first
//! leak; the sum over `site` equals `leakfree_leaked_tasks_total`.
//!
//! # Descriptions
//! leakfree describes its metrics (`describe_counter!`, `describe_gauge!`)
//! once, the first time it publishes anything, and at that moment registers
//! the unlabelled counters at zero, so that a rate or `increase()` over a
//! window sees the very first leak. A recorder installed after that misses
//! the descriptions; call [`describe`] after installing it.
//!
//! # Invariants
//! - Nothing here is called by the layers below: the verdict counters are
//!   published by the exit layer's totals (which also own the names).
//! - The gauges are what [`live::metrics`](crate::live::metrics()) reports,
//!   computed the same way from the registry's list of live scopes (a scope
//!   counts until its exit protocol has ended it). This module reads the
//!   registry rather than the live view so that no two public handles import
//!   each other; `tests/metrics_facade.rs` checks that the two agree.

use ::metrics::gauge;

use crate::exit::facade::{self, LIVE_SCOPES, LIVE_TRACKED_TASKS};
use crate::registry::live_scopes;

/// How many distinct spawn sites get a `site` label value of their own in
/// `leakfree_leaked_tasks_by_site_total`; leaks from later sites count under
/// `site="other"`.
pub const SITE_LABEL_LIMIT: usize = facade::SITE_LABEL_LIMIT;

/// Sets the gauges `leakfree_live_scopes` and `leakfree_live_tracked_tasks`
/// from the live scopes now (the gauges of
/// [`live::metrics`](crate::live::metrics())). Call it on each scrape, or
/// every few seconds from a task of its own.
pub fn publish_gauges() {
    facade::announce();
    let scopes = live_scopes();
    let (mut live, mut tasks) = (0_u64, 0_u64);
    for scope in scopes.iter().filter(|scope| !scope.is_ended()) {
        live += 1;
        tasks += scope.all_live() as u64;
    }
    drop(scopes);
    gauge!(LIVE_SCOPES).set(live as f64);
    gauge!(LIVE_TRACKED_TASKS).set(tasks as f64);
}

/// Describes every leakfree metric to the installed recorder and registers
/// the counters at zero. leakfree does this by itself the first time it
/// publishes; call this only after installing a recorder late.
pub fn describe() {
    facade::describe_all();
}
