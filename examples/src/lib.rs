//! Runnable examples of leakfree: the leak patterns it exists to catch, in
//! tokio form, each next to its fix.
//!
//! - [`leaklab`]: blocked receive, blocked send and a ticker loop that never
//!   exits, each with a leaking and a fixed mode; run them with
//!   `cargo run -p leakfree-examples --bin leaklab`.
//! - [`service`]: an axum service with leakfree's tower layer on its
//!   router, a scope per request (a leak panics the request in a debug
//!   build, is logged in a release build), serving leakfree's live view and
//!   metrics; run it with
//!   `cargo run -p leakfree-examples --bin service -- --demo`.
//! - [`eventbus`]: a pub/sub bus whose subscriptions start worker tasks, with
//!   a leaky and a correct `close`, checked after close by construction; run
//!   it with `cargo run -p leakfree-examples --bin eventbus`.

pub mod eventbus;
pub mod leaklab;
pub mod service;
