//! A bounded load on the service example over loopback: three rounds of 200
//! concurrent clients, each making 10 requests that alternate `/leaky` and
//! `/fixed`, every request carrying its own id. Checked:
//!
//! - every leaky request is reported exactly once, and no fixed one ever;
//! - after each round the live tracked task count is back to its baseline
//!   (waited for with a deadline, never a fixed sleep);
//! - memory stays flat: resident memory after rounds 2 and 3 is within
//!   [`RSS_BOUND`] of resident memory after round 1.
//!
//! It stops by itself after a fixed number of requests (6,000) and sends
//! nothing beyond 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;
use leakfree_examples::service::{self, Client, wait_for_metrics};
use leakfree_runtime::live;
use leakfree_runtime::tower::LeakCheckLayer;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;

const ROUNDS: usize = 3;
const CLIENTS: usize = 200;
const REQUESTS_PER_CLIENT: usize = 10;
const PER_ROUND: usize = CLIENTS * REQUESTS_PER_CLIENT;
const TOTAL: usize = ROUNDS * PER_ROUND;

/// Ample for a fixed request's watcher to see its stop signal and end,
/// however busy the two cores are; the leaky requests' verdicts come this
/// long after each, off the request path, so it adds about one grace per
/// round.
const GRACE: Duration = Duration::from_secs(1);

/// An upper bound for every wait: never reached when things work.
const LIMIT: Duration = Duration::from_secs(30);

/// How much resident memory may grow from the end of round 1 to the end of
/// rounds 2 and 3. Round 1 warms up what is reused afterwards (the
/// allocator's arenas, the client's pool of 200 connections, tokio's task
/// slabs, leakfree's live set). What a leak of per-request state would keep
/// is at least a scope (its shared state, name, table and token) and, for
/// a leaky request, its aborted watcher task; keeping even 1 KiB a request
/// would add 4 MiB over the 4,000 requests of rounds 2 and 3 and fail.
/// What is measured here (the test prints it) is about 1 MiB from round 1
/// to round 3, growing less each round: the allocator settling, not a
/// per-request cost.
const RSS_BOUND: u64 = 4 * 1024 * 1024;

fn is_leaky(id: usize) -> bool {
    // Alternating within a client, and by client, so that both kinds run at
    // the same time throughout.
    (id / REQUESTS_PER_CLIENT + id % REQUESTS_PER_CLIENT) % 2 == 0
}

/// Resident memory of this process, from `/proc/self/statm` (pages).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("statm's resident field");
    pages * 4096
}

/// What the layer's handler counts: reports per request id, and reports
/// whose scope name did not carry an id.
struct Tally {
    per_id: Vec<AtomicU8>,
    total: AtomicUsize,
    unnamed: AtomicUsize,
    reported: Notify,
    /// The text of every report on a request that should not have one.
    wrong: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    async fn wait_for_total(&self, at_least: usize) {
        let wait = async {
            loop {
                let notified = self.reported.notified();
                if self.total.load(Ordering::SeqCst) >= at_least {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(LIMIT, wait).await.unwrap_or_else(|_| {
            panic!(
                "{} reports, expected {at_least}",
                self.total.load(Ordering::SeqCst)
            )
        });
    }
}

/// The id in a scope name `GET /leaky #<id>`.
fn id_of(scope: &str) -> Option<usize> {
    scope.rsplit_once(" #")?.1.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_leak_is_reported_once_and_memory_stays_flat() {
    let tally = Arc::new(Tally {
        per_id: (0..=TOTAL).map(|_| AtomicU8::new(0)).collect(),
        total: AtomicUsize::new(0),
        unnamed: AtomicUsize::new(0),
        reported: Notify::new(),
        wrong: std::sync::Mutex::default(),
    });
    let layer = {
        let tally = tally.clone();
        LeakCheckLayer::builder()
            .grace(GRACE)
            .handler(move |report| {
                match id_of(report.scope_name()) {
                    Some(id) if id <= TOTAL && report.leaked().len() == 1 => {
                        tally.per_id[id].fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {
                        tally.unnamed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                if !report.scope_name().starts_with("GET /leaky #") {
                    tally.wrong.lock().unwrap().push(report.to_string());
                }
                tally.total.fetch_add(1, Ordering::SeqCst);
                tally.reported.notify_waiters();
            })
            .build()
            .unwrap()
            .name_with(|request: &Request| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("none");
                format!("{} {} #{id}", request.method(), request.uri().path())
            })
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(service::serve_app(
        listener,
        service::app_with(layer),
        async {
            let _ = stopped.await;
        },
    ));

    let baseline = live::metrics();
    let mut rss_after_round = Vec::new();
    let mut leaky_so_far = 0;
    for round in 0..ROUNDS {
        let before = live::metrics();
        let mut clients = JoinSet::new();
        for c in 0..CLIENTS {
            let client = client.clone();
            clients.spawn(async move {
                for r in 0..REQUESTS_PER_CLIENT {
                    let id = round * PER_ROUND + c * REQUESTS_PER_CLIENT + r;
                    let path = if is_leaky(id) { "/leaky" } else { "/fixed" };
                    let request = client
                        .request(Method::GET, path)
                        .header("x-request-id", id.to_string())
                        .body(Body::empty())
                        .unwrap();
                    let response = client
                        .send(request)
                        .await
                        .unwrap_or_else(|e| panic!("GET {path} #{id}: {e}"));
                    assert_eq!(response.status, 200, "{path} #{id}: {}", response.body);
                }
            });
        }
        while let Some(joined) = clients.join_next().await {
            joined.expect("a client");
        }
        leaky_so_far += (round * PER_ROUND..(round + 1) * PER_ROUND)
            .filter(|id| is_leaky(*id))
            .count();
        tally.wait_for_total(leaky_so_far).await;
        let after = wait_for_metrics(
            |m| {
                m.scopes_ended >= before.scopes_ended + PER_ROUND as u64
                    && m.live_tracked_tasks == baseline.live_tracked_tasks
            },
            LIMIT,
        )
        .await
        .unwrap_or_else(|m| panic!("round {round} did not settle: {m:?}"));
        assert_eq!(after.zombies_found, baseline.zombies_found);
        rss_after_round.push(rss_bytes());
    }

    // One more leak, made after every scope above has ended: its verdict
    // comes a grace after its own end, so every verdict on the requests
    // above has been acted on by the time it is.
    let sentinel = TOTAL;
    let request = client
        .request(Method::GET, "/leaky")
        .header("x-request-id", sentinel.to_string())
        .body(Body::empty())
        .unwrap();
    assert_eq!(client.send(request).await.unwrap().status, 200);
    tally.wait_for_total(leaky_so_far + 1).await;

    let wrong = tally.wrong.lock().unwrap().join("\n");
    assert!(wrong.is_empty(), "reports on fixed requests:\n{wrong}");
    assert_eq!(tally.unnamed.load(Ordering::SeqCst), 0);
    for id in 0..=TOTAL {
        let expected = u8::from(id == sentinel || is_leaky(id));
        let got = tally.per_id[id].load(Ordering::SeqCst);
        assert_eq!(got, expected, "request #{id} reported {got} times");
    }
    assert_eq!(tally.total.load(Ordering::SeqCst), leaky_so_far + 1);
    assert_eq!(leaky_so_far, TOTAL / 2);

    let end = wait_for_metrics(
        |m| m.live_tracked_tasks == baseline.live_tracked_tasks,
        LIMIT,
    )
    .await
    .expect("the sentinel's watcher cancelled too");
    assert_eq!(
        end.leaks_found,
        baseline.leaks_found + leaky_so_far as u64 + 1
    );

    let first = rss_after_round[0];
    println!("resident memory after each round: {rss_after_round:?} bytes");
    for (round, rss) in rss_after_round.iter().enumerate().skip(1) {
        assert!(
            *rss <= first + RSS_BOUND,
            "round {}: {rss} bytes resident, {} more than after round 1 (bound {RSS_BOUND})",
            round + 1,
            rss - first
        );
    }

    drop(client);
    let _ = stop.send(());
    server.await.unwrap();
}
