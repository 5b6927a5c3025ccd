//! Leak corpus, the Go material's patterns in tokio form: an HTTP-style call
//! without a timeout, a task that should stop with its request but has no
//! token, a timer nobody stops, a debounce that forgets the timers it
//! replaces, an event bus whose `close` leaves its subscribers running, and an
//! accept loop without a shutdown path.
//!
//! Each pattern is a fixture that leaks on purpose (`#[ignore]`d, run by its
//! checker, which asserts the report's spawn sites and task counts) and a fixed
//! twin that passes as a normal `#[leak_checked]` test. The "remote server" is
//! a loopback listener that accepts connections and never answers
//! ([`support::black_hole`]).

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leakfree_runtime::{JoinHandle, current_token, leak_checked, spawn};
use support::{black_hole, expect_leak, site, spawn_here, state_at};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

const WAITING_ONE: &str = "waiting: 1 waker held (timer, I/O or channel)";

// ---- 1. an HTTP-style call without a timeout --------------------------------
//
// A handler fires a webhook from a task and returns; the webhook server takes
// the request and never answers, so the task waits on the socket forever (the
// Go material's `http.Client{}` without `Timeout`). Fix: a deadline on the
// whole call, and the handler joins the task.

async fn post_webhook(addr: SocketAddr, sent: oneshot::Sender<()>) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"POST /hook HTTP/1.1\r\nHost: hooks\r\nContent-Length: 0\r\n\r\n")
        .await?;
    let _ = sent.send(());
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    Ok(response)
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by http_call_without_timeout_is_caught"]
async fn leak_http_call_without_timeout() {
    let (sent_tx, sent_rx) = oneshot::channel();
    spawn_here("webhook-call", post_webhook(black_hole(), sent_tx)); // the bug: no deadline
    sent_rx.await.unwrap();
}

#[leak_checked]
#[tokio::test(start_paused = true)]
async fn fix_http_call_without_timeout() {
    let (sent_tx, _sent_rx) = oneshot::channel();
    let call = spawn(tokio::time::timeout(
        Duration::from_secs(30), // the fix
        post_webhook(black_hole(), sent_tx),
    ));
    assert!(call.await.unwrap().is_err(), "the call times out");
}

#[test]
fn http_call_without_timeout_is_caught() {
    let text = expect_leak(
        leak_http_call_without_timeout,
        "leak_http_call_without_timeout",
        "20ms",
        1,
        &[("webhook-call", 1)],
        0,
    );
    assert_eq!(state_at(&text, "webhook-call"), WAITING_ONE);
}

// ---- 2. a task that should stop with its request, without a token -----------
//
// The Go material's `select { case <-time.After(5 * time.Second): }` without
// `case <-ctx.Done()`: a handler starts a prefetch that waits five seconds,
// then returns early; the prefetch has no way to know. Fix: a request token,
// cancelled by a drop guard when the handler returns, that the prefetch
// selects on.

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by missing_cancellation_is_caught"]
async fn leak_missing_cancellation() {
    spawn_here("prefetch", async {
        tokio::time::sleep(Duration::from_secs(5)).await; // the bug: no token
        "prefetched"
    });
    // the handler returns early (say, the client went away)
}

#[leak_checked]
#[tokio::test]
async fn fix_missing_cancellation() {
    let request = current_token().expect("inside a scope").child_token();
    let _cancel_on_return = request.clone().drop_guard(); // the fix
    spawn(async move {
        tokio::select! {
            () = request.cancelled() => None,
            () = tokio::time::sleep(Duration::from_secs(5)) => Some("prefetched"),
        }
    });
}

#[test]
fn missing_cancellation_is_caught() {
    let text = expect_leak(
        leak_missing_cancellation,
        "leak_missing_cancellation",
        "20ms",
        1,
        &[("prefetch", 1)],
        0,
    );
    assert_eq!(state_at(&text, "prefetch"), WAITING_ONE);
}

// ---- 3. a timer nobody stops --------------------------------------------------
//
// A login schedules the session's expiry in a task sleeping half an hour, and
// the logout drops its `JoinHandle`, believing that cancels it (Go: a timer
// never stopped). Fix: abort the timer on logout.

struct Sessions {
    expiries: HashMap<u32, JoinHandle<()>>,
    expired: Arc<AtomicUsize>,
}

impl Sessions {
    fn new() -> Sessions {
        Sessions {
            expiries: HashMap::new(),
            expired: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn login(&mut self, id: u32) {
        let expired = self.expired.clone();
        let expiry = spawn_here("session-expiry", async move {
            tokio::time::sleep(Duration::from_secs(30 * 60)).await;
            expired.fetch_add(1, Ordering::Relaxed);
        });
        self.expiries.insert(id, expiry);
    }

    fn logout_leaky(&mut self, id: u32) {
        self.expiries.remove(&id); // the bug: dropping the handle detaches the timer
    }

    async fn logout(&mut self, id: u32) {
        if let Some(expiry) = self.expiries.remove(&id) {
            expiry.abort(); // the fix
            assert!(expiry.await.unwrap_err().is_cancelled());
        }
    }
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by timer_never_stopped_is_caught"]
async fn leak_timer_never_stopped() {
    let mut sessions = Sessions::new();
    sessions.login(7);
    sessions.logout_leaky(7);
}

#[leak_checked]
#[tokio::test]
async fn fix_timer_never_stopped() {
    let mut sessions = Sessions::new();
    sessions.login(7);
    sessions.logout(7).await;
    assert_eq!(sessions.expired.load(Ordering::Relaxed), 0);
}

#[test]
fn timer_never_stopped_is_caught() {
    let text = expect_leak(
        leak_timer_never_stopped,
        "leak_timer_never_stopped",
        "20ms",
        1,
        &[("session-expiry", 1)],
        0,
    );
    assert_eq!(state_at(&text, "session-expiry"), WAITING_ONE);
}

// ---- 4. a debounce that replaces timers without stopping them ---------------
//
// Every keystroke schedules a save 300ms later and drops the previous handle
// instead of aborting it: five keystrokes, five pending saves. Identical leaks
// are grouped in the report. Fix: abort the previous timer; join the last.

struct Debounce {
    pending: Option<JoinHandle<()>>,
    saves: Arc<AtomicUsize>,
}

impl Debounce {
    fn keystroke(&mut self, abort_previous: bool) {
        let saves = self.saves.clone();
        let save = spawn_here("debounced-save", async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            saves.fetch_add(1, Ordering::Relaxed);
        });
        // Without `abort_previous` (the bug), the previous save stays scheduled.
        let previous = self.pending.replace(save);
        if let Some(previous) = previous.filter(|_| abort_previous) {
            previous.abort(); // the fix
        }
    }
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by debounce_keeps_stale_timers_is_caught"]
async fn leak_debounce_keeps_stale_timers() {
    let mut debounce = Debounce {
        pending: None,
        saves: Arc::default(),
    };
    for _ in 0..5 {
        debounce.keystroke(false);
    }
}

#[leak_checked]
#[tokio::test(start_paused = true)]
async fn fix_debounce_keeps_stale_timers() {
    let mut debounce = Debounce {
        pending: None,
        saves: Arc::default(),
    };
    for _ in 0..5 {
        debounce.keystroke(true);
    }
    debounce.pending.take().unwrap().await.unwrap();
    assert_eq!(debounce.saves.load(Ordering::Relaxed), 1);
}

#[test]
fn debounce_keeps_stale_timers_is_caught() {
    let text = expect_leak(
        leak_debounce_keeps_stale_timers,
        "leak_debounce_keeps_stale_timers",
        "20ms",
        5,
        &[("debounced-save", 5)],
        0,
    );
    assert!(
        text.contains(&format!(
            "1) 5 tasks \"debounced-save\" spawned at {}, alive ",
            site("debounced-save")
        )),
        "{text}"
    );
    assert_eq!(state_at(&text, "debounced-save"), WAITING_ONE);
}

// ---- 5. an event bus whose close leaves its subscribers running --------------
//
// The Go material's EventBus: each subscription starts a worker, and the leaky
// `close` only marks the bus closed. The workers hold the bus (for its
// statistics), the bus holds their senders, so nothing ever closes. The check
// runs after `close` by construction: the measure-before-close mistake cannot
// happen. Fix: `close` drops the subscriptions' senders.

#[derive(Default)]
struct Bus {
    topics: Mutex<HashMap<&'static str, Vec<mpsc::UnboundedSender<String>>>>,
    delivered: AtomicUsize,
    closed: std::sync::atomic::AtomicBool,
}

impl Bus {
    fn subscribe(self: &Arc<Self>, topic: &'static str) {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        self.topics
            .lock()
            .unwrap()
            .entry(topic)
            .or_default()
            .push(tx);
        let bus = self.clone();
        spawn_here("bus-subscriber", async move {
            while rx.recv().await.is_some() {
                bus.delivered.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    fn publish(&self, topic: &str, event: &str) {
        if let Some(subscribers) = self.topics.lock().unwrap().get(topic) {
            for subscriber in subscribers {
                let _ = subscriber.send(event.to_owned());
            }
        }
    }

    fn close_leaky(&self) {
        self.closed.store(true, Ordering::Release); // the bug: the senders stay
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.topics.lock().unwrap().clear(); // the fix: every subscriber's recv ends
    }
}

fn busy_bus() -> Arc<Bus> {
    let bus = Arc::new(Bus::default());
    for topic in ["orders", "payments", "audit"] {
        bus.subscribe(topic);
        bus.subscribe(topic);
        bus.publish(topic, "hello");
    }
    bus
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by event_bus_leaky_close_is_caught"]
async fn leak_event_bus_leaky_close() {
    let bus = busy_bus();
    bus.close_leaky();
}

#[leak_checked]
#[tokio::test]
async fn fix_event_bus_leaky_close() {
    let bus = busy_bus();
    bus.close();
}

#[test]
fn event_bus_leaky_close_is_caught() {
    let text = expect_leak(
        leak_event_bus_leaky_close,
        "leak_event_bus_leaky_close",
        "20ms",
        6,
        &[("bus-subscriber", 6)],
        0,
    );
    assert!(
        text.contains("6 tasks \"bus-subscriber\" spawned at"),
        "{text}"
    );
    assert_eq!(state_at(&text, "bus-subscriber"), WAITING_ONE);
}

// ---- 6. an accept loop without a shutdown path -------------------------------
//
// A server's accept loop runs until the process ends (the Go material's
// `go http.ListenAndServe(...)`); each connection gets a handler task. The
// handler ends with its connection, the accept loop never does. Fix: a
// shutdown signal the accept loop selects on, and the server joins its
// handlers.

async fn handle(mut stream: TcpStream) {
    let mut buf = [0; 64];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

async fn serve(listener: TcpListener, shutdown: Option<oneshot::Receiver<()>>) {
    let mut handlers = Vec::new();
    match shutdown {
        None => loop {
            // the bug: only an accept error ends this loop
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            handlers.push(spawn_here("conn-handler", handle(stream)));
        },
        Some(mut shutdown) => loop {
            tokio::select! {
                _ = &mut shutdown => break, // the fix
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => handlers.push(spawn(handle(stream))),
                    Err(_) => break,
                },
            }
        },
    }
    for handler in handlers {
        handler.await.unwrap();
    }
}

async fn echo_once(addr: SocketAddr) {
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut answer = [0; 4];
    client.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"ping");
    client.shutdown().await.unwrap();
    // The handler closes its side when it ends: EOF here means it is gone.
    assert_eq!(client.read(&mut answer).await.unwrap(), 0);
}

#[leak_checked(grace = "20ms")]
#[tokio::test]
#[ignore = "fixture: leaks on purpose; run by accept_loop_without_shutdown_is_caught"]
async fn leak_accept_loop_without_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    spawn_here("accept-loop", serve(listener, None));
    echo_once(addr).await;
}

#[leak_checked]
#[tokio::test]
async fn fix_accept_loop_without_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let server = spawn(serve(listener, Some(shutdown_rx)));
    echo_once(addr).await;
    shutdown_tx.send(()).unwrap();
    server.await.unwrap();
}

#[test]
fn accept_loop_without_shutdown_is_caught() {
    let text = expect_leak(
        leak_accept_loop_without_shutdown,
        "leak_accept_loop_without_shutdown",
        "20ms",
        1,
        &[("accept-loop", 1)],
        0,
    );
    assert!(!text.contains("conn-handler"), "{text}");
    assert_eq!(state_at(&text, "accept-loop"), WAITING_ONE);
}
