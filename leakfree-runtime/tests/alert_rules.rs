//! `examples/alerts/leakfree.rules.yml` names only metrics leakfree really
//! publishes: every metric in an `expr:` of the rule file is looked up in
//! the text a real Prometheus recorder renders after leaky and clean
//! scopes. The rule file is read with a small scan (rules, `alert:` and
//! `expr:` lines, folded or literal blocks), not a YAML library.

use std::future::pending;
use std::time::Duration;

use leakfree_runtime::{Scope, metrics, spawn};
use metrics_exporter_prometheus::PrometheusBuilder;

const RULES: &str = include_str!("../../examples/alerts/leakfree.rules.yml");

/// One rule of the file: its alert name and its expression.
#[derive(Debug)]
struct Rule {
    alert: String,
    expr: String,
}

/// The rules of a Prometheus rule file: each `- alert:` item with the
/// `expr:` that follows it (inline, quoted, or a `|`/`>` block).
fn rules(yaml: &str) -> Vec<Rule> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut rules: Vec<Rule> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(alert) = trimmed.strip_prefix("alert:") {
            rules.push(Rule {
                alert: unquote(alert),
                expr: String::new(),
            });
        } else if let Some(expr) = trimmed.strip_prefix("expr:") {
            let rule = rules.last_mut().expect("an expr belongs to an alert");
            let expr = expr.trim();
            if expr.starts_with('|') || expr.starts_with('>') {
                let indent = line.len() - line.trim_start().len();
                while i + 1 < lines.len() {
                    let next = lines[i + 1];
                    let next_indent = next.len() - next.trim_start().len();
                    if !next.trim().is_empty() && next_indent <= indent {
                        break;
                    }
                    rule.expr.push_str(next.trim());
                    rule.expr.push(' ');
                    i += 1;
                }
            } else {
                rule.expr = unquote(expr);
            }
        }
        i += 1;
    }
    rules
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value)
        .to_owned()
}

/// The metric names a PromQL expression selects: identifiers that are not
/// functions, aggregation keywords, label lists, label matchers, ranges,
/// strings or numbers.
fn metric_names(expr: &str) -> Vec<String> {
    // Binary operators and modifiers, and the aggregation operators (which
    // may stand before a `by (...)` instead of their parenthesis).
    const KEYWORDS: [&str; 17] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const GROUPINGS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let skip_to = |open: char, close: char, mut i: usize| {
        let mut depth = 0;
        while i < chars.len() {
            if chars[i] == open {
                depth += 1;
            } else if chars[i] == close {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            } else if chars[i] == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += 1 + usize::from(chars[i] == '\\');
                }
            }
            i += 1;
        }
        i
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = skip_to('{', '}', i);
        } else if c == '[' {
            i = skip_to('[', ']', i);
        } else if c == '"' || c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1 + usize::from(chars[i] == '\\');
            }
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = next < chars.len() && chars[next] == '(';
            if GROUPINGS.contains(&word.as_str()) {
                if call {
                    i = skip_to('(', ')', next);
                }
            } else if !call && !KEYWORDS.contains(&word.as_str()) {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Whether the scrape has a sample of `metric` (any labels).
fn in_scrape(scrape: &str, metric: &str) -> bool {
    scrape.lines().filter(|l| !l.starts_with('#')).any(|l| {
        let name = l.split(['{', ' ']).next().unwrap_or_default();
        name == metric
    })
}

/// What a service's scrape holds after a leaky and a clean scope, with its
/// gauges published.
async fn real_scrape() -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    ::metrics::set_global_recorder(recorder).expect("the only recorder of this binary");
    let leaky = Scope::builder("leaky").grace(Duration::ZERO).build();
    let (_, report) = leaky
        .run_and_report(async {
            spawn(pending::<()>());
        })
        .await;
    assert!(!report.is_clean());
    let (_, report) = Scope::new("clean")
        .run_and_report(async { spawn(async {}).await.unwrap() })
        .await;
    assert!(report.is_clean());
    metrics::publish_gauges();
    handle.render()
}

#[test]
fn the_scan_finds_metrics_and_skips_the_rest() {
    assert_eq!(
        metric_names(
            "sum by (site) (increase(leakfree_leaked_tasks_by_site_total{site=~\"src/.*\"}[10m])) \
             > 0.5 and on(instance) up offset 5m"
        ),
        ["leakfree_leaked_tasks_by_site_total", "up"]
    );
    let parsed = rules(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: |\n          \
         rate(x_total[5m])\n            > 0\n        for: 1m\n      - alert: \"B\"\n        \
         expr: 'y'\n",
    );
    assert_eq!(parsed.len(), 2);
    assert_eq!(
        (parsed[0].alert.as_str(), parsed[0].expr.trim()),
        ("A", "rate(x_total[5m]) > 0")
    );
    assert_eq!(
        (parsed[1].alert.as_str(), parsed[1].expr.as_str()),
        ("B", "y")
    );
}

#[tokio::test]
async fn every_metric_in_the_rule_file_is_in_a_real_scrape() {
    let scrape = real_scrape().await;
    let rules = rules(RULES);
    let alerts: Vec<&str> = rules.iter().map(|r| r.alert.as_str()).collect();
    assert_eq!(
        alerts,
        [
            "LeakfreeTasksLeaking",
            "LeakfreeZombieTasks",
            "LeakfreeLiveTasksGrowing"
        ]
    );
    let mut checked = Vec::new();
    for rule in &rules {
        let names = metric_names(&rule.expr);
        assert!(!names.is_empty(), "{rule:?} selects no metric");
        for name in names {
            assert!(
                in_scrape(&scrape, &name),
                "alert {} uses `{name}`, which leakfree does not publish:\n{scrape}",
                rule.alert
            );
            checked.push(name);
        }
    }
    assert!(checked.iter().any(|n| n == "leakfree_leaked_tasks_total"));
    assert!(checked.iter().any(|n| n == "leakfree_live_tracked_tasks"));
    // The check can fail: a name leakfree does not publish is not found.
    assert!(!in_scrape(&scrape, "leakfree_leaks_total"));
    assert!(!in_scrape(&scrape, "leakfree_leaked_tasks"));
}
