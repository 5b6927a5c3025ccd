//! A stand-in for a third-party library that knows nothing of leakfree: it
//! spawns with plain `tokio::spawn`, and its client forgets to stop its
//! background tasks. Lines marked `spawn-site:` are looked up by the tests.

use std::time::Duration;

/// A client whose pinger task outlives it.
#[derive(Debug)]
pub struct Client {
    _private: (),
}

impl Client {
    /// "Connects": starts a pinger that ticks forever (the leak: `Drop` does
    /// not stop it).
    pub fn connect() -> Client {
        tokio::spawn(ping_forever()); // spawn-site: pinger
        Client { _private: () }
    }
}

/// Starts a supervisor task that starts a worker task: both leak.
pub fn start_supervisor() {
    tokio::spawn(supervise()); // spawn-site: supervisor
}

async fn ping_forever() {
    let mut interval = tokio::time::interval(Duration::from_millis(7));
    loop {
        interval.tick().await;
    }
}

async fn supervise() {
    tokio::spawn(std::future::pending::<()>()); // spawn-site: worker
    std::future::pending::<()>().await
}

/// Does its work in a task that finishes: no leak.
pub async fn well_behaved() -> u32 {
    tokio::spawn(async { 7 }).await.unwrap()
}
