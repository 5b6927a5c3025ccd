//! leakfree's metrics through the `metrics` facade, read the way a scraper
//! reads them: a real Prometheus recorder is installed in this test binary
//! (one process, one recorder), scopes leak or not, and the exact numbers
//! are checked in the rendered text.
//!
//! One test: the recorder and leakfree's counters are process-wide, so the
//! scenario runs in order, and no other test of this binary ends a scope.

use std::future::pending;
use std::sync::mpsc as blocking_channel;
use std::time::Duration;

use leakfree_runtime::{JoinHandle, Scope, live, metrics, spawn, spawn_blocking};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::oneshot;

const FILE: &str = file!();

/// Installs the recorder (once per process) and hands back its scrape.
fn recorder() -> PrometheusHandle {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    ::metrics::set_global_recorder(recorder).expect("the only recorder of this binary");
    handle
}

/// The value of the sample `series` (name and labels, as rendered), or
/// `None` when the scrape does not have it.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().expect("a number"))
        })
}

/// The line a scraper reads for `series`, which must be there.
fn line<'a>(scrape: &'a str, series: &str) -> &'a str {
    scrape
        .lines()
        .find(|line| {
            line.rsplit_once(' ')
                .is_some_and(|(name, _)| name == series)
        })
        .unwrap_or_else(|| panic!("no `{series}` in the scrape:\n{scrape}"))
}

fn builder(name: &'static str) -> leakfree_runtime::ScopeBuilder {
    Scope::builder(name).grace(Duration::ZERO)
}

/// Leaks one task and returns the line it was spawned on.
fn leak_one() -> u32 {
    let site = line!() + 1;
    spawn(pending::<()>());
    site
}

async fn clean_scope() {
    let (_, report) = builder("clean")
        .build()
        .run_and_report(async { spawn(async {}).await.unwrap() })
        .await;
    assert!(report.is_clean(), "{report}");
}

async fn leaky_scope() -> u32 {
    let (site, report) = builder("leaky")
        .build()
        .run_and_report(async { leak_one() })
        .await;
    assert_eq!(report.leaked().len(), 1, "{report}");
    site
}

#[tokio::test]
async fn a_scrape_counts_verdicts_and_labels_leaks_by_site() {
    let scrape = recorder();
    assert!(
        !scrape.render().contains("leakfree_"),
        "nothing is published before a verdict or a gauge publication"
    );

    // N leaky and M clean scopes.
    const N: usize = 3;
    const M: usize = 2;
    let mut sites = Vec::new();
    for _ in 0..M {
        clean_scope().await;
    }
    for _ in 0..N {
        sites.push(leaky_scope().await);
    }
    let site = sites[0];
    assert!(sites.iter().all(|s| *s == site));

    let text = scrape.render();
    assert_eq!(
        line(&text, "leakfree_scopes_ended_total"),
        "leakfree_scopes_ended_total 5"
    );
    assert_eq!(
        line(&text, "leakfree_scopes_with_leaks_total"),
        "leakfree_scopes_with_leaks_total 3"
    );
    assert_eq!(
        line(&text, "leakfree_leaked_tasks_total"),
        "leakfree_leaked_tasks_total 3"
    );
    let by_site = format!("leakfree_leaked_tasks_by_site_total{{site=\"{FILE}:{site}\"}}");
    assert_eq!(line(&text, &by_site), format!("{by_site} 3"));
    // Registered at zero with the first verdict: a rate sees the first one.
    assert_eq!(
        line(&text, "leakfree_zombie_tasks_total"),
        "leakfree_zombie_tasks_total 0"
    );
    assert_eq!(
        line(&text, "leakfree_unobserved_panics_total"),
        "leakfree_unobserved_panics_total 0"
    );
    assert_eq!(
        sample(&text, "leakfree_leaked_tasks_by_site_total{site=\"other\"}"),
        None
    );
    for name in [
        "leakfree_scopes_ended_total",
        "leakfree_scopes_with_leaks_total",
        "leakfree_leaked_tasks_total",
        "leakfree_leaked_tasks_by_site_total",
        "leakfree_zombie_tasks_total",
        "leakfree_unobserved_panics_total",
    ] {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} is described:\n{text}"
        );
        assert!(text.contains(&format!("# TYPE {name} counter")), "{text}");
    }
    // Gauges move only when published.
    assert_eq!(sample(&text, "leakfree_live_scopes"), None);

    // A panic nobody observed, and a blocking task that will not die.
    let (_, report) = Scope::builder("panics")
        .grace(Duration::from_secs(30)) // the wait ends when the task does
        .build()
        .run_and_report(async {
            drop(spawn(async { panic!("boom") }));
        })
        .await;
    assert_eq!(report.panics().len(), 1, "{report}");
    let (release, released) = blocking_channel::channel::<()>();
    let (_, report) = builder("zombie")
        .abort_timeout(Duration::ZERO)
        .build()
        .run_and_report(async {
            let (started, running) = oneshot::channel();
            spawn_blocking(move || {
                started.send(()).unwrap();
                let _ = released.recv();
            });
            running.await.unwrap();
        })
        .await;
    assert_eq!(report.zombies().len(), 1, "{report}");
    release.send(()).unwrap();

    let text = scrape.render();
    assert_eq!(sample(&text, "leakfree_scopes_ended_total"), Some(7.0));
    assert_eq!(sample(&text, "leakfree_scopes_with_leaks_total"), Some(5.0));
    assert_eq!(sample(&text, "leakfree_leaked_tasks_total"), Some(4.0));
    assert_eq!(sample(&text, "leakfree_zombie_tasks_total"), Some(1.0));
    assert_eq!(sample(&text, "leakfree_unobserved_panics_total"), Some(1.0));
    assert_eq!(
        sample(&text, &by_site),
        Some(3.0),
        "other sites have their own series"
    );
    let site_total: f64 = text
        .lines()
        .filter(|l| l.starts_with("leakfree_leaked_tasks_by_site_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(site_total, 4.0, "the sites add up to the total:\n{text}");

    // The facade and the live view count the same verdicts.
    let live = live::metrics();
    assert_eq!(live.scopes_ended, 7);
    assert_eq!(live.leaks_found, 4);

    // Gauges: set by publish_gauges from the live scopes, in both directions.
    let scope = Scope::new("live");
    let workers: Vec<JoinHandle<()>> = scope
        .enter(async { (0..4).map(|_| spawn(pending::<()>())).collect() })
        .await;
    metrics::publish_gauges();
    let text = scrape.render();
    let live = live::metrics();
    assert_eq!(
        (live.live_scopes, live.live_tracked_tasks),
        (1, 4),
        "the live view agrees"
    );
    assert_eq!(
        line(&text, "leakfree_live_scopes"),
        "leakfree_live_scopes 1"
    );
    assert_eq!(
        line(&text, "leakfree_live_tracked_tasks"),
        "leakfree_live_tracked_tasks 4"
    );
    assert!(
        text.contains("# TYPE leakfree_live_tracked_tasks gauge"),
        "{text}"
    );
    assert!(text.contains("# HELP leakfree_live_scopes "), "{text}");
    for worker in &workers {
        worker.abort();
    }
    for worker in workers {
        assert!(worker.await.unwrap_err().is_cancelled());
    }
    let report = scope.finish().await;
    assert!(report.is_clean(), "{report}");
    metrics::publish_gauges();
    let text = scrape.render();
    assert_eq!(
        line(&text, "leakfree_live_scopes"),
        "leakfree_live_scopes 0"
    );
    assert_eq!(
        line(&text, "leakfree_live_tracked_tasks"),
        "leakfree_live_tracked_tasks 0"
    );
    assert_eq!(sample(&text, "leakfree_scopes_ended_total"), Some(8.0));
}
