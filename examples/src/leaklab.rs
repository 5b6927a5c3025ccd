//! The three classic task-leak patterns, each as a leaking and a fixed mode.
//!
//! This is the tokio counterpart of the Go "leaklab" program: every mode starts
//! `tasks` workers with [`leakfree_runtime::spawn`], lets its caller do
//! `linger` worth of (simulated) work, and returns. The whole run happens in a
//! [`Scope`], so when the caller returns leakfree says which workers outlived
//! it, where they were spawned and whether anything can still wake them, and
//! then stops them.
//!
//! | pattern | leaking mode | fixed mode |
//! |---------|--------------|------------|
//! | blocked receive | `leak-recv`: each worker waits for jobs on a queue it keeps open itself (it holds a sender for retries), so dropping the caller's sender never closes it | `fix-recv`: the worker also watches a stop token the caller cancels before returning |
//! | blocked send | `leak-send`: each worker reports progress on a bounded channel (capacity 1) whose receiver the caller keeps but no longer reads; the second report blocks | `fix-send`: every send races the caller's stop token |
//! | ticker loop | `leak-ticker`: `loop { interval.tick().await; .. }` with no way out | `fix-ticker`: the loop `select!`s on the stop token |
//!
//! In Go the blocked receive and send leaks happen when the other side of a
//! channel is simply gone. Rust channels close when one side is dropped, which
//! wakes the other side, so in tokio these leaks need the other half to be kept
//! alive by someone: a clone held by the worker itself, a receiver parked in a
//! long-lived struct. That is exactly how they happen in real code.
//!
//! Every fix is event-driven: the caller fires the stop token and then awaits
//! its workers (Go's `cancel()` plus `wg.Wait()`), so the fixed modes end
//! without any timing assumption.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use leakfree_runtime::{JoinHandle, LeakReport, Scope, spawn};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// How long each mode's scope waits for workers to end on their own before
/// calling the survivors leaked. A clean scope does not wait for it.
pub const GRACE: Duration = Duration::from_millis(50);

/// Default number of workers per mode (`-n`).
pub const DEFAULT_TASKS: usize = 3;

/// Default time the caller works before returning (`--linger`).
pub const DEFAULT_LINGER: Duration = Duration::from_millis(80);

/// The shortest ticker period; `linger / 4` is used when it is longer.
const MIN_TICK: Duration = Duration::from_millis(1);

/// Upper bound on waiting for tokio's task count to catch up after the scope
/// ended (see [`settled_alive`]).
const SETTLE_LIMIT: Duration = Duration::from_millis(100);

/// One leaklab mode: a leak pattern, leaking or fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Workers wait forever on a queue they keep open themselves.
    LeakRecv,
    /// Workers wait on their queue or a stop token; the caller cancels it.
    FixRecv,
    /// Workers block sending progress that nobody reads.
    LeakSend,
    /// Workers stop trying to send when the caller's stop token fires.
    FixSend,
    /// Ticker loops that never exit.
    LeakTicker,
    /// Ticker loops that stop on the caller's signal.
    FixTicker,
}

impl Mode {
    /// Every mode, each leak followed by its fix (the order `demo` runs them).
    pub const ALL: [Mode; 6] = [
        Mode::LeakRecv,
        Mode::FixRecv,
        Mode::LeakSend,
        Mode::FixSend,
        Mode::LeakTicker,
        Mode::FixTicker,
    ];

    /// The mode's command-line name, also the name of its scope in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::LeakRecv => "leak-recv",
            Mode::FixRecv => "fix-recv",
            Mode::LeakSend => "leak-send",
            Mode::FixSend => "fix-send",
            Mode::LeakTicker => "leak-ticker",
            Mode::FixTicker => "fix-ticker",
        }
    }

    /// Whether this is the fixed version of its pattern.
    pub fn is_fix(self) -> bool {
        matches!(self, Mode::FixRecv | Mode::FixSend | Mode::FixTicker)
    }

    /// One line on what the workers do.
    pub fn summary(self) -> &'static str {
        match self {
            Mode::LeakRecv => "workers wait for jobs on queues they keep open themselves",
            Mode::FixRecv => "workers wait for jobs or the caller's stop token",
            Mode::LeakSend => "workers block reporting progress that nobody reads",
            Mode::FixSend => "workers give up reporting when the caller stops them",
            Mode::LeakTicker => "ticker loops with no way out",
            Mode::FixTicker => "ticker loops that stop on the caller's signal",
        }
    }

    /// The valid names, comma separated (for error messages).
    pub fn choices() -> String {
        Mode::ALL.map(Mode::name).join(", ")
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A mode name that is not one of [`Mode::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMode(pub String);

impl fmt::Display for UnknownMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown mode `{}`: expected one of {}",
            self.0,
            Mode::choices()
        )
    }
}

impl std::error::Error for UnknownMode {}

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(name: &str) -> Result<Mode, UnknownMode> {
        Mode::ALL
            .into_iter()
            .find(|mode| mode.name() == name)
            .ok_or_else(|| UnknownMode(name.to_owned()))
    }
}

/// Live task counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Tasks of the mode's scope that leakfree tracks and that are alive.
    pub tracked: usize,
    /// Tasks alive on the whole tokio runtime
    /// (`RuntimeMetrics::num_alive_tasks`).
    pub runtime: usize,
}

/// What one run of a mode did and what leakfree made of it.
#[derive(Debug)]
pub struct ModeOutcome {
    /// The mode that ran.
    pub mode: Mode,
    /// How many workers it started.
    pub tasks: usize,
    /// How long its caller worked before returning.
    pub linger: Duration,
    /// Counts before the scope began.
    pub before: Counts,
    /// Counts when the caller's work was done, right before it cleaned up (in
    /// the fixed modes) and returned.
    pub during: Counts,
    /// Counts after the scope ended: `tracked` is what leakfree could not stop
    /// (zombies), `runtime` is read once tokio's count has caught up.
    pub after: Counts,
    /// leakfree's verdict on the scope.
    pub report: LeakReport,
}

impl ModeOutcome {
    /// Whether leakfree found nothing wrong.
    pub fn is_clean(&self) -> bool {
        self.report.is_clean()
    }
}

/// Runs `mode` with `tasks` workers: the caller spawns them, works for
/// `linger`, and returns, all inside a [`Scope`] named after the mode whose
/// grace is [`GRACE`].
///
/// Must be called inside a tokio runtime with the time driver enabled.
pub async fn run_mode(mode: Mode, tasks: usize, linger: Duration) -> ModeOutcome {
    let runtime_before = alive_on_runtime();
    let scope = Scope::builder(mode.name()).grace(GRACE).build();
    let before = Counts {
        tracked: scope.live_tasks(),
        runtime: runtime_before,
    };
    // `enter` + `finish` rather than `run_and_report`: the caller reads the
    // scope's live count while it runs, so it borrows the scope.
    let (during, leftovers) = scope.enter(caller(mode, tasks, linger, &scope)).await;
    let report = scope.finish().await;
    // What the caller left alive lives until after the verdict, as it would in
    // a program where it outlives the call.
    drop(leftovers);
    let after = Counts {
        tracked: report.zombies().len(),
        runtime: settled_alive(runtime_before).await,
    };
    ModeOutcome {
        mode,
        tasks,
        linger,
        before,
        during,
        after,
        report,
    }
}

/// What a caller leaves behind when it returns: in `leak-send` and `fix-send`
/// the progress receivers, kept by a dashboard that no longer reads them.
#[derive(Debug, Default)]
struct Leftovers {
    _dashboard: Vec<mpsc::Receiver<Progress>>,
}

async fn caller(mode: Mode, tasks: usize, linger: Duration, scope: &Scope) -> (Counts, Leftovers) {
    match mode {
        Mode::LeakRecv => leak_recv(tasks, linger, scope).await,
        Mode::FixRecv => fix_recv(tasks, linger, scope).await,
        Mode::LeakSend => leak_send(tasks, linger, scope).await,
        Mode::FixSend => fix_send(tasks, linger, scope).await,
        Mode::LeakTicker => leak_ticker(tasks, linger, scope).await,
        Mode::FixTicker => fix_ticker(tasks, linger, scope).await,
    }
}

/// The caller's own work, simulated: it takes `linger`, then the caller
/// returns. This is part of the scenario, not a wait for the workers.
async fn work(linger: Duration) {
    tokio::time::sleep(linger).await;
}

fn snapshot(scope: &Scope) -> Counts {
    Counts {
        tracked: scope.live_tasks(),
        runtime: alive_on_runtime(),
    }
}

fn alive_on_runtime() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits for the runtime's live count to come back to `target`, bounded by
/// [`SETTLE_LIMIT`], and returns the count at the end.
///
/// tokio drops a task's future (when leakfree sees it end) slightly before it
/// removes the task from `num_alive_tasks`, on the worker thread that ran it,
/// and gives no event for that removal; so this one wait polls, yielding first
/// and then backing off. On a current-thread runtime it returns at once.
async fn settled_alive(target: usize) -> usize {
    const YIELDS: u32 = 16;
    let deadline = Instant::now() + SETTLE_LIMIT;
    let mut pause = Duration::from_micros(50);
    let mut attempt = 0;
    loop {
        let alive = alive_on_runtime();
        if alive <= target || Instant::now() >= deadline {
            return alive;
        }
        if attempt < YIELDS {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(5));
        }
        attempt += 1;
    }
}

/// Awaits every worker: the "wait" half of "cancel, then wait".
async fn join_all(workers: Vec<JoinHandle<()>>) {
    for worker in workers {
        // A worker's panic would be an error here; leakfree would report it
        // otherwise. None of these workers panics.
        let _ = worker.await;
    }
}

// ---------------------------------------------------------------------------
// Blocked receive
// ---------------------------------------------------------------------------

/// How many jobs a worker's queue holds.
const QUEUE: usize = 4;

/// A unit of work for a receive worker.
#[derive(Debug)]
struct Job {
    id: usize,
    attempt: u32,
}

/// Handles `job`; a job fails on its first attempt when its id is a multiple
/// of 7, and is handed back to be retried.
fn process(job: Job) -> Result<(), Job> {
    if job.id % 7 == 0 && job.attempt == 0 {
        Err(Job {
            attempt: job.attempt + 1,
            ..job
        })
    } else {
        Ok(())
    }
}

/// Serves jobs until the queue closes. It never closes: `retry` is a sender of
/// the same queue, so the queue stays open as long as this worker runs.
async fn recv_worker(mut jobs: mpsc::Receiver<Job>, retry: mpsc::Sender<Job>) {
    while let Some(job) = jobs.recv().await {
        if let Err(again) = process(job) {
            let _ = retry.try_send(again);
        }
    }
}

/// [`recv_worker`] with a way out: it also ends when `stop` is cancelled.
async fn recv_worker_stoppable(
    mut jobs: mpsc::Receiver<Job>,
    retry: mpsc::Sender<Job>,
    stop: CancellationToken,
) {
    loop {
        let job = tokio::select! {
            _ = stop.cancelled() => return,
            job = jobs.recv() => job,
        };
        let Some(job) = job else { return };
        if let Err(again) = process(job) {
            let _ = retry.try_send(again);
        }
    }
}

async fn leak_recv(tasks: usize, linger: Duration, scope: &Scope) -> (Counts, Leftovers) {
    let mut queues = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let retry = queue.clone();
        spawn(recv_worker(jobs, retry)); // spawn-site: leak-recv
        queues.push(queue);
    }
    for (id, queue) in queues.iter().enumerate() {
        let _ = queue.send(Job { id, attempt: 0 }).await;
    }
    work(linger).await;
    let during = snapshot(scope);
    // The caller is done and drops its senders, expecting the queues to close.
    // They do not: every worker holds a sender of its own queue.
    drop(queues);
    (during, Leftovers::default())
}

async fn fix_recv(tasks: usize, linger: Duration, scope: &Scope) -> (Counts, Leftovers) {
    let stop = CancellationToken::new();
    let mut queues = Vec::with_capacity(tasks);
    let mut workers = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let retry = queue.clone();
        let stop = stop.clone();
        let worker = spawn(recv_worker_stoppable(jobs, retry, stop)); // spawn-site: fix-recv
        workers.push(worker);
        queues.push(queue);
    }
    for (id, queue) in queues.iter().enumerate() {
        let _ = queue.send(Job { id, attempt: 0 }).await;
    }
    work(linger).await;
    let during = snapshot(scope);
    stop.cancel();
    drop(queues);
    join_all(workers).await;
    (during, Leftovers::default())
}

// ---------------------------------------------------------------------------
// Blocked send
// ---------------------------------------------------------------------------

/// A worker's progress report.
#[derive(Debug)]
enum Progress {
    Started,
    Done,
}

/// Reports `Started`, does its share, reports `Done`. The channel holds one
/// report: with nobody reading, `Done` waits forever for room.
async fn send_worker(progress: mpsc::Sender<Progress>) {
    let _ = progress.send(Progress::Started).await;
    let _ = progress.send(Progress::Done).await;
}

/// [`send_worker`] whose every report gives way to `stop`.
async fn send_worker_stoppable(progress: mpsc::Sender<Progress>, stop: CancellationToken) {
    if send_or_stop(&progress, Progress::Started, &stop).await {
        send_or_stop(&progress, Progress::Done, &stop).await;
    }
}

/// Sends `report` unless `stop` fires first; `true` when it was sent.
async fn send_or_stop(
    progress: &mpsc::Sender<Progress>,
    report: Progress,
    stop: &CancellationToken,
) -> bool {
    tokio::select! {
        biased;
        _ = stop.cancelled() => false,
        sent = progress.send(report) => sent.is_ok(),
    }
}

async fn leak_send(tasks: usize, linger: Duration, scope: &Scope) -> (Counts, Leftovers) {
    let mut dashboard = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (progress, reports) = mpsc::channel(1);
        spawn(send_worker(progress)); // spawn-site: leak-send
        dashboard.push(reports);
    }
    work(linger).await;
    let during = snapshot(scope);
    // The caller returns. The dashboard keeps the receivers, but nobody reads
    // them any more.
    (
        during,
        Leftovers {
            _dashboard: dashboard,
        },
    )
}

async fn fix_send(tasks: usize, linger: Duration, scope: &Scope) -> (Counts, Leftovers) {
    let stop = CancellationToken::new();
    let mut dashboard = Vec::with_capacity(tasks);
    let mut workers = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (progress, reports) = mpsc::channel(1);
        let stop = stop.clone();
        let worker = spawn(send_worker_stoppable(progress, stop)); // spawn-site: fix-send
        workers.push(worker);
        dashboard.push(reports);
    }
    work(linger).await;
    let during = snapshot(scope);
    stop.cancel();
    join_all(workers).await;
    // Same dashboard that nobody reads: the workers ended anyway.
    (
        during,
        Leftovers {
            _dashboard: dashboard,
        },
    )
}

// ---------------------------------------------------------------------------
// Ticker loop
// ---------------------------------------------------------------------------

fn ticker(linger: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval((linger / 4).max(MIN_TICK));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// Beats on every tick, forever.
async fn ticker_worker(linger: Duration, beats: Arc<AtomicU64>) {
    let mut ticker = ticker(linger);
    loop {
        ticker.tick().await;
        beats.fetch_add(1, Ordering::Relaxed);
    }
}

/// [`ticker_worker`] that stops when `stop` fires.
async fn ticker_worker_stoppable(linger: Duration, beats: Arc<AtomicU64>, stop: CancellationToken) {
    let mut ticker = ticker(linger);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {
                beats.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn leak_ticker(tasks: usize, linger: Duration, scope: &Scope) -> (Counts, Leftovers) {
    let beats = Arc::new(AtomicU64::new(0));
    for _ in 0..tasks {
        spawn(ticker_worker(linger, beats.clone())); // spawn-site: leak-ticker
    }
    work(linger).await;
    let during = snapshot(scope);
    (during, Leftovers::default())
}

async fn fix_ticker(tasks: usize, linger: Duration, scope: &Scope) -> (Counts, Leftovers) {
    let beats = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let mut workers = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (beats, stop) = (beats.clone(), stop.clone());
        let worker = spawn(ticker_worker_stoppable(linger, beats, stop)); // spawn-site: fix-ticker
        workers.push(worker);
    }
    work(linger).await;
    let during = snapshot(scope);
    stop.cancel();
    join_all(workers).await;
    (during, Leftovers::default())
}

// ---------------------------------------------------------------------------
// Command-line helpers
// ---------------------------------------------------------------------------

/// Parses a duration written as a number and a unit: `80ms`, `1s`, `500us`,
/// `1.5s`, `2m`. Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let expected = "expected a number and a unit, like 80ms, 1s, 500us (units: ns, us, ms, s, m)";
    if number.is_empty() {
        return Err(format!("bad duration `{text}`: {expected}"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad duration `{text}`: {expected}"))?;
    let seconds_per_unit = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "" => return Err(format!("duration `{text}` has no unit: {expected}")),
        _ => return Err(format!("unknown unit in `{text}`: {expected}")),
    };
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| format!("duration `{text}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("80ms"), Ok(Duration::from_millis(80)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert!(parse_duration("80").unwrap_err().contains("no unit"));
        assert!(parse_duration("80h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("1.2.3s").is_err());
    }

    #[test]
    fn modes_round_trip() {
        for mode in Mode::ALL {
            assert_eq!(mode.name().parse::<Mode>(), Ok(mode));
        }
        let error = "leak-foo".parse::<Mode>().unwrap_err().to_string();
        assert!(error.contains("leak-recv, fix-recv, leak-send"), "{error}");
    }
}
