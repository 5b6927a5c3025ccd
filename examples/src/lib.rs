//! Runnable examples of leakfree: the leak patterns it exists to catch, in
//! tokio form, each next to its fix.
//!
//! - [`leaklab`]: blocked receive, blocked send and a ticker loop that never
//!   exits, each with a leaking and a fixed mode; run them with
//!   `cargo run -p leakfree-examples --bin leaklab`.

pub mod leaklab;
