//! `bench_table`: prints the tables of `BENCHMARKS.md` in markdown, from the
//! results the last `cargo bench` left, so the tables are regenerated rather
//! than copied by hand.
//!
//! ```text
//! bench_table [--run] [--write FILE] [--target DIR]
//! ```
//!
//! - `--run` first runs the benchmarks: the `overhead` criterion benchmarks,
//!   the spawn-join rows again in a `--cfg tokio_unstable` build (for the
//!   hook-attributed `tokio::spawn`), and the `memory` benchmark.
//! - `--write FILE` replaces the text between `<!-- bench_table:begin -->`
//!   and `<!-- bench_table:end -->` in FILE instead of printing.
//! - `--target DIR`: where the results are (default: `$CARGO_TARGET_DIR` or
//!   the workspace's `target/`; the unstable build's are in its
//!   `tokio_unstable/`).
//!
//! It reads criterion's medians (`<target>/criterion/**/new/estimates.json`)
//! and the counts the benchmarks write to `<target>/leakfree-bench/`.
//! Every ratio compares two rows of the same run.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const BEGIN: &str = "<!-- bench_table:begin -->";
const END: &str = "<!-- bench_table:end -->";

/// The command that reproduces everything below.
const RUN_ALL: &str =
    "cargo run --release -p leakfree-examples --bin bench_table -- --run --write BENCHMARKS.md";

const FLAVORS: [(&str, &str); 2] = [("ct", "current_thread"), ("mt", "multi_thread")];

fn main() -> ExitCode {
    let mut run = false;
    let mut write = None;
    let mut target = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--run" => run = true,
            "--write" => write = args.next().map(PathBuf::from),
            "--target" => target = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("usage: bench_table [--run] [--write FILE] [--target DIR]");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("bench_table: unknown argument `{other}` (see --help)");
                return ExitCode::FAILURE;
            }
        }
    }
    let root = workspace_root();
    let target = target
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| root.join("target"));
    let target = if target.is_relative() {
        root.join(target)
    } else {
        target
    };
    let unstable_target = target.join("tokio_unstable");

    if run {
        if let Err(error) = run_benchmarks(&root, &target, &unstable_target) {
            eprintln!("bench_table: {error}");
            return ExitCode::FAILURE;
        }
    }

    let results = Results {
        stable: read_criterion(&target.join("criterion")),
        unstable: read_criterion(&unstable_target.join("criterion")),
        memory: read_pairs(&target.join("leakfree-bench/memory.txt")),
        report: FLAVORS
            .iter()
            .map(|(id, _)| {
                let file = target.join(format!("leakfree-bench/report-{id}.txt"));
                (id.to_string(), read_pairs(&file))
            })
            .collect(),
    };
    if results.stable.is_empty() {
        eprintln!(
            "bench_table: no criterion results under {}; run the benchmarks first \
             (or pass --run)",
            target.display()
        );
        return ExitCode::FAILURE;
    }
    let tables = render(&results);
    match write {
        None => print!("{tables}"),
        Some(file) => {
            let file = if file.is_relative() {
                root.join(file)
            } else {
                file
            };
            if let Err(error) = splice(&file, &tables) {
                eprintln!("bench_table: {}: {error}", file.display());
                return ExitCode::FAILURE;
            }
            println!("bench_table: wrote the tables into {}", file.display());
        }
    }
    ExitCode::SUCCESS
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("examples/ is inside the workspace")
        .to_path_buf()
}

fn run_benchmarks(root: &Path, target: &Path, unstable_target: &Path) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let rustflags = match std::env::var("RUSTFLAGS") {
        Ok(flags) if !flags.is_empty() => format!("{flags} --cfg tokio_unstable"),
        _ => "--cfg tokio_unstable".to_owned(),
    };
    // (arguments, whether it is the `--cfg tokio_unstable` build)
    let steps: [(&[&str], bool); 3] = [
        (
            &["bench", "-p", "leakfree-runtime", "--bench", "overhead"],
            false,
        ),
        (
            &[
                "bench",
                "-p",
                "leakfree-runtime",
                "--bench",
                "overhead",
                "--",
                "spawn_join/.*/tokio_spawn",
            ],
            true,
        ),
        (
            &["bench", "-p", "leakfree-runtime", "--bench", "memory"],
            false,
        ),
    ];
    for (args, unstable) in steps {
        let mut command = Command::new(&cargo);
        command
            .args(args)
            .current_dir(root)
            .env("CARGO_TARGET_DIR", target);
        let shown = if unstable {
            command
                .env("RUSTFLAGS", &rustflags)
                .env("CARGO_TARGET_DIR", unstable_target);
            format!(
                "RUSTFLAGS=\"{rustflags}\" CARGO_TARGET_DIR={} cargo {}",
                unstable_target.display(),
                args.join(" ")
            )
        } else {
            format!("cargo {}", args.join(" "))
        };
        eprintln!("bench_table: running {shown}");
        let status = command
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("`{shown}` failed: {status}"));
        }
    }
    Ok(())
}

/// Everything the benchmarks left.
struct Results {
    /// Criterion medians (ns) by full benchmark id, plain build.
    stable: HashMap<String, f64>,
    /// The same for the `--cfg tokio_unstable` build.
    unstable: HashMap<String, f64>,
    memory: HashMap<String, String>,
    report: HashMap<String, HashMap<String, String>>,
}

/// Median (ns) of every benchmark under `dir`, by criterion's full id.
fn read_criterion(dir: &Path) -> HashMap<String, f64> {
    let mut found = HashMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|name| name == "new") {
                let id = std::fs::read_to_string(path.join("benchmark.json"))
                    .ok()
                    .and_then(|json| json_string(&json, "full_id"));
                let median = std::fs::read_to_string(path.join("estimates.json"))
                    .ok()
                    .and_then(|json| median_estimate(&json));
                if let (Some(id), Some(median)) = (id, median) {
                    found.insert(id, median);
                }
            } else {
                pending.push(path);
            }
        }
    }
    found
}

/// The string value of `"key":"…"` in flat JSON (criterion's ids need no
/// unescaping beyond `\"` and `\\`).
fn json_string(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut value = String::new();
    let mut chars = json[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(value),
            '\\' => value.push(chars.next()?),
            c => value.push(c),
        }
    }
    None
}

/// `median.point_estimate` of criterion's `estimates.json`.
fn median_estimate(json: &str) -> Option<f64> {
    let median = &json[json.find("\"median\":")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

/// `key=value` lines.
fn read_pairs(file: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Replaces the generated part of `file`.
fn splice(file: &Path, tables: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        return Err(format!("no `{BEGIN}` … `{END}` markers"));
    };
    if end < begin {
        return Err("markers out of order".to_owned());
    }
    let updated = format!("{}{BEGIN}\n{tables}{}", &text[..begin], &text[end..]);
    std::fs::write(file, updated).map_err(|e| e.to_string())
}

/// A nanosecond count, as people read it.
fn time(ns: f64) -> String {
    let (value, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$} {unit}")
}

fn count(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// The cells of one measured ratio, or placeholders.
fn get(map: &HashMap<String, f64>, id: &str) -> Option<f64> {
    map.get(id).copied()
}

fn cell(value: Option<f64>) -> String {
    value.map(time).unwrap_or_else(|| "–".to_owned())
}

fn ratio(value: Option<f64>, base: Option<f64>) -> Option<f64> {
    Some(value? / base?)
}

fn ratio_cell(value: Option<f64>) -> String {
    value
        .map(|r| format!("{r:.2}×"))
        .unwrap_or_else(|| "–".to_owned())
}

fn target_cell(value: Option<f64>, met: impl Fn(f64) -> bool) -> String {
    value
        .map(|v| verdict(met(v)).to_owned())
        .unwrap_or_else(|| "not run".to_owned())
}

fn render(results: &Results) -> String {
    let mut out = String::new();
    machine(&mut out);
    spawn_join(&mut out, results);
    hooked(&mut out, results);
    clean_scope(&mut out, results);
    per_poll(&mut out, results);
    concurrency(&mut out, results);
    memory(&mut out, results);
    allocations(&mut out, results);
    report(&mut out, results);
    handler(&mut out, results);
    out
}

fn machine(out: &mut String) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, name)| name.trim().to_owned())
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| format!(", {} GiB", (kb + (1 << 19)) >> 20))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!("{} {}", std::env::consts::OS, k.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_owned());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| "rustc (unknown)".to_owned());
    let _ = writeln!(
        out,
        "Machine: {cpu}, {cores} cores{memory}; {kernel}; {rustc}; tokio 1.54, \
         criterion 0.8 (medians).\n\nReproduce every table: `{RUN_ALL}`\n"
    );
}

fn spawn_join(out: &mut String, results: &Results) {
    let s = &results.stable;
    out.push_str(
        "### 1. Spawn + join of N trivial tasks\n\n\
         Targets: a tracked spawn + join ≤ 1.15× `tokio::spawn` + join; tasks left to finish by \
         the scope's end (spawned, never joined: the scope's end waits for them) ≤ 1.00× \
         `TaskTracker` spawn + close + wait. Both flavors, every N. leakfree includes building \
         and ending its scope.\n\n\
         Command: `cargo bench -p leakfree-runtime --bench overhead -- spawn_join/`\n\n\
         | flavor | N | tokio::spawn | JoinSet | TaskTracker | leakfree | leakfree / tokio::spawn | target | leakfree, left to the scope | / TaskTracker | target |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (id, flavor) in FLAVORS {
        for n in [1_000, 100_000, 1_000_000] {
            let key = |f: &str| format!("spawn_join/{id}/{f}/{n}");
            let tokio = get(s, &key("tokio_spawn"));
            let joinset = get(s, &key("joinset"));
            let tracker = get(s, &key("task_tracker"));
            let leakfree = get(s, &key("leakfree_spawn"));
            let left = get(s, &key("leakfree_scope_wait"));
            let vs_tokio = ratio(leakfree, tokio);
            let vs_tracker = ratio(left, tracker);
            let met = |r: Option<f64>, target: f64| match r {
                Some(r) => verdict(r <= target).to_owned(),
                None => "not run".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {flavor} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                count(n),
                cell(tokio),
                cell(joinset),
                cell(tracker),
                cell(leakfree),
                ratio_cell(vs_tokio),
                met(vs_tokio, 1.15),
                cell(left),
                ratio_cell(vs_tracker),
                met(vs_tracker, 1.0),
            );
        }
    }
    out.push('\n');
}

fn hooked(out: &mut String, results: &Results) {
    let s = &results.unstable;
    out.push_str(
        "### 1b. Plain `tokio::spawn` attributed through hooks (`--cfg tokio_unstable`)\n\n\
         Spawn + join of N trivial `tokio::spawn` tasks inside a scope on a runtime with \
         `leakfree_runtime::hooks::install`, against the same without hooks or scope, both in \
         the `tokio_unstable` build. Target: ≤ 1.30×.\n\n\
         Command (an absolute target directory: criterion resolves a relative one from the \
         benchmark's package directory): `RUSTFLAGS=\"--cfg tokio_unstable\" \
         CARGO_TARGET_DIR=$PWD/target/tokio_unstable \
         cargo bench -p leakfree-runtime --bench overhead -- spawn_join/.*/tokio_spawn`\n\n\
         | flavor | N | tokio::spawn, no hooks | tokio::spawn, hooks + scope | ratio | target |\n\
         |---|---|---|---|---|---|\n",
    );
    for (id, flavor) in FLAVORS {
        for n in [1_000, 100_000, 1_000_000] {
            let plain = get(s, &format!("spawn_join/{id}/tokio_spawn/{n}"));
            let hooked = get(s, &format!("spawn_join/{id}/tokio_spawn_hooked/{n}"));
            let r = ratio(hooked, plain);
            let _ = writeln!(
                out,
                "| {flavor} | {} | {} | {} | {} | {} |",
                count(n),
                cell(plain),
                cell(hooked),
                ratio_cell(r),
                target_cell(r, |r| r <= 1.30),
            );
        }
    }
    out.push('\n');
}

fn clean_scope(out: &mut String, results: &Results) {
    let s = &results.stable;
    out.push_str(
        "### 2. Scope overhead of a clean test\n\n\
         A body whose 0, 10 or 1,000 tasks all finished, in \
         `Scope::builder(..).build().run_and_report(body)` against the body alone. \
         *test scope* adds `count_untracked(true)`, what `#[leak_checked]` on a test uses. \
         Target: < 20 µs added with 0 tasks, < 100 µs with 1,000.\n\n\
         Command: `cargo bench -p leakfree-runtime --bench overhead -- clean_scope/`\n\n\
         | flavor | tasks | no scope | scope | added | ratio | test scope | added | target (scope) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for (id, flavor) in FLAVORS {
        for n in [0, 10, 1_000] {
            let key = |f: &str| format!("clean_scope/{id}/{f}/{n}");
            let base = get(s, &key("no_scope"));
            let scope = get(s, &key("scope"));
            let test = get(s, &key("test_scope"));
            let added = scope.zip(base).map(|(a, b)| a - b);
            let added_test = test.zip(base).map(|(a, b)| a - b);
            let limit = match n {
                0 => Some(20_000.0),
                1_000 => Some(100_000.0),
                _ => None,
            };
            let target = match limit {
                Some(limit) => target_cell(added, |a| a < limit),
                None => "–".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {flavor} | {} | {} | {} | {} | {} | {} | {} | {target} |",
                count(n),
                cell(base),
                cell(scope),
                signed(added),
                ratio_cell(ratio(scope, base)),
                cell(test),
                signed(added_test),
            );
        }
    }
    out.push('\n');
}

fn signed(ns: Option<f64>) -> String {
    match ns {
        Some(ns) if ns < 0.0 => format!("−{}", time(-ns)),
        Some(ns) => format!("+{}", time(ns)),
        None => "–".to_owned(),
    }
}

fn per_poll(out: &mut String, results: &Results) {
    let s = &results.stable;
    out.push_str(
        "### 3. Per-poll overhead\n\n\
         One task that yields 10,000 times: `leakfree_runtime::spawn` in a scope against \
         `tokio::spawn`. Target: ≤ 1.05×.\n\n\
         Command: `cargo bench -p leakfree-runtime --bench overhead -- per_poll/`\n\n\
         | flavor | tokio::spawn | per poll | leakfree | per poll | ratio | target |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (id, flavor) in FLAVORS {
        let tokio = get(s, &format!("per_poll/{id}/tokio_spawn"));
        let leakfree = get(s, &format!("per_poll/{id}/leakfree_spawn"));
        let r = ratio(leakfree, tokio);
        let _ = writeln!(
            out,
            "| {flavor} | {} | {} | {} | {} | {} | {} |",
            cell(tokio),
            cell(tokio.map(|t| t / 10_001.0)),
            cell(leakfree),
            cell(leakfree.map(|t| t / 10_001.0)),
            ratio_cell(r),
            target_cell(r, |r| r <= 1.05),
        );
    }
    out.push('\n');
}

fn concurrency(out: &mut String, results: &Results) {
    let s = &results.stable;
    let tokio = get(s, "concurrent_scopes/mt/tokio");
    let leakfree = get(s, "concurrent_scopes/mt/leakfree");
    let scopes_only = get(s, "concurrent_scopes/mt/scopes_only");
    let throughput = ratio(tokio, leakfree);
    let fmt = |r: Option<f64>| r.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}"));
    let _ = write!(
        out,
        "### 4. Concurrency: 10,000 scopes in flight\n\n\
         10,000 requests started at once on a 2-worker `multi_thread` runtime, each spawning \
         10 tasks and joining them; leakfree runs each request in its own scope. \
         *Scopes only* keeps the scopes but spawns with plain `tokio::spawn`: the scopes' own \
         share. Throughput ratio = tokio time / leakfree time. Target: ≥ 0.85.\n\n\
         Command: `cargo bench -p leakfree-runtime --bench overhead -- concurrent_scopes/`\n\n\
         | flavor | tokio | leakfree | throughput ratio | scopes only | its ratio | target |\n\
         |---|---|---|---|---|---|---|\n\
         | multi_thread | {} | {} | {} | {} | {} | {} |\n\n",
        cell(tokio),
        cell(leakfree),
        fmt(throughput),
        cell(scopes_only),
        fmt(ratio(tokio, scopes_only)),
        target_cell(throughput, |r| r >= 0.85),
    );
}

fn memory(out: &mut String, results: &Results) {
    let m = &results.memory;
    let num = |key: &str| m.get(key).and_then(|v| v.parse::<f64>().ok());
    let tasks = num("tasks").unwrap_or(0.0);
    let _ = write!(
        out,
        "### 5. Memory\n\n\
         {} live tasks (each polled once, then pending with no waker), counted by a global \
         allocator (bytes requested, not yet freed). \"Peak at end\" is the high-water mark \
         while the scope ends and builds its report. Target: ≤ 64 bytes per live tracked task \
         beyond tokio's own; every task reported and cancelled at the scope's end.\n\n\
         Command: `cargo bench -p leakfree-runtime --bench memory`\n\n\
         | flavor | tokio B/task | leakfree B/task | added B/task | tokio peak | leakfree peak | leakfree peak at end | reported / aborted / zombies | target |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        count(tasks as usize),
    );
    if tasks == 0.0 {
        out.push_str("| – | not run | | | | | | | |\n\n");
        return;
    }
    let mib = |bytes: Option<f64>| {
        bytes
            .map(|b| format!("{:.0} MiB", b / f64::from(1 << 20)))
            .unwrap_or_else(|| "–".to_owned())
    };
    for (id, flavor) in FLAVORS {
        let tokio = num(&format!("{id}.tokio.live")).map(|b| b / tasks);
        let leakfree = num(&format!("{id}.leakfree.live")).map(|b| b / tasks);
        let added = leakfree.zip(tokio).map(|(a, b)| a - b);
        let leaked = num(&format!("{id}.leakfree.leaked"));
        let aborted = num(&format!("{id}.leakfree.aborted"));
        let zombies = num(&format!("{id}.leakfree.zombies"));
        let all_cancelled = leaked == Some(tasks) && aborted == Some(tasks) && zombies == Some(0.0);
        let fmt = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.0}"));
        let _ = writeln!(
            out,
            "| {flavor} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} |",
            fmt(tokio),
            fmt(leakfree),
            added.map_or("–".to_owned(), |a| format!("+{a:.0}")),
            mib(num(&format!("{id}.tokio.peak"))),
            mib(num(&format!("{id}.leakfree.peak"))),
            mib(num(&format!("{id}.leakfree.peak_exit"))),
            fmt(leaked),
            fmt(aborted),
            fmt(zombies),
            target_cell(added, |a| a <= 64.0 && all_cancelled),
        );
    }
    out.push('\n');
}

fn allocations(out: &mut String, results: &Results) {
    let m = &results.memory;
    out.push_str(
        "#### 5b. Heap allocations per operation\n\n\
         Where the bytes (and much of the allocator time in sections 1, 2 and 4) go: \
         allocations per operation by requested size, current-thread runtime, steady state \
         (after warm-up, averaged over 10,000 operations). Same command as 5.\n\n\
         | operation | allocations | bytes | sizes |\n\
         |---|---|---|---|\n",
    );
    let keys = [
        "tokio_spawn_join",
        "joinset_spawn_join",
        "leakfree_spawn_join",
        "scope_0",
        "test_scope_0",
        "scope_1",
    ];
    for key in keys {
        let field = |f: &str| m.get(&format!("alloc.{key}.{f}")).cloned();
        let Some(label) = field("label") else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {} B | {} |",
            field("count").unwrap_or_default(),
            field("bytes").unwrap_or_default(),
            field("sizes").unwrap_or_default(),
        );
    }
    if let (Some(bare), Some(scoped)) = (m.get("future.bare"), m.get("future.scoped")) {
        let _ = writeln!(
            out,
            "\nA scope adds to the future that runs it: `async {{}}` is {bare} B, \
             `Scope::run_and_report(async {{}})` is {scoped} B (held inline in, e.g., a request \
             task's cell)."
        );
    }
    out.push('\n');
}

fn report(out: &mut String, results: &Results) {
    let s = &results.stable;
    out.push_str(
        "### 6. Report cost: 10,000 leaks from 10 spawn sites\n\n\
         *Scope end* is `Scope::finish` with grace 0 (verdict, cancel, abort and wait, the \
         report value); *Display* formats it. Target: < 50 ms for both together, one entry per \
         spawn site.\n\n\
         Command: `cargo bench -p leakfree-runtime --bench overhead -- report/`\n\n\
         | flavor | scope end | Display | total | text size | lines | entries (sites) | target |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for (id, flavor) in FLAVORS {
        let exit = get(s, &format!("report/{id}/exit_10k_leaks"));
        let display = get(s, &format!("report/{id}/display_10k_leaks"));
        let total = exit.zip(display).map(|(a, b)| a + b);
        let facts = results.report.get(id);
        let fact = |key: &str| {
            facts
                .and_then(|f| f.get(key))
                .cloned()
                .unwrap_or_else(|| "–".to_owned())
        };
        let entries = fact("entries");
        let grouped = entries == "10" && fact("groups") == "10";
        let _ = writeln!(
            out,
            "| {flavor} | {} | {} | {} | {} B | {} | {entries} | {} |",
            cell(exit),
            cell(display),
            cell(total),
            fact("bytes"),
            fact("lines"),
            target_cell(total, |t| t < 50e6 && grouped),
        );
    }
    out.push('\n');
}

fn handler(out: &mut String, results: &Results) {
    let s = &results.stable;
    out.push_str(
        "### 7. Handler latency\n\n\
         A trivial async handler that spawns 0 or 1 tasks (and awaits it), called in a clean \
         service scope (`Scope::builder(..).build().run(handler)`) against called bare. \
         No target was set; *added* is the latency the scope puts on each call.\n\n\
         Command: `cargo bench -p leakfree-runtime --bench overhead -- handler/`\n\n\
         | flavor | tasks | no scope | scope | added | ratio |\n\
         |---|---|---|---|---|---|\n",
    );
    for (id, flavor) in FLAVORS {
        for n in [0, 1] {
            let base = get(s, &format!("handler/{id}/no_scope/{n}"));
            let scope = get(s, &format!("handler/{id}/scope/{n}"));
            let _ = writeln!(
                out,
                "| {flavor} | {n} | {} | {} | {} | {} |",
                cell(base),
                cell(scope),
                signed(scope.zip(base).map(|(a, b)| a - b)),
                ratio_cell(ratio(scope, base)),
            );
        }
    }
    out.push('\n');
}
