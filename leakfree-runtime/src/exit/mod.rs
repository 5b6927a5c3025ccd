//! The exit protocol every scope runs when its body is done (settle, verdict,
//! cancel, abort, zombies), the count of tasks leakfree did not spawn, where
//! leaked tasks are stuck, the body's timeout, and the process-wide totals of
//! verdicts.
//!
//! This layer reads the registry and the instrument layer and builds the
//! report; the public handles above call [`run_exit_protocol`].

#[cfg(any(leakfree_taskdump, test))]
mod frames;
mod protocol;
mod stuck_at;
mod timeout;
mod totals;
mod untracked;

pub(crate) use protocol::{Settled, finish_settled, run_exit_protocol};
pub(crate) use stuck_at::trace_poll;
pub(crate) use timeout::{Deadline, snapshot as timeout_snapshot};
#[cfg(feature = "metrics")]
pub(crate) use totals::facade;
pub(crate) use totals::{Totals, totals};
pub(crate) use untracked::Baseline;
