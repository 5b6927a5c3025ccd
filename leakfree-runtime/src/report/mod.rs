//! The report's vocabulary: what leakfree says about tasks, as values and as
//! text. The bottom layer: it imports nothing else of the crate, and every
//! value here is built through its own constructors, so the layers above
//! fill reports without knowing their fields.
//!
//! - [`TaskInfo`], [`TaskKind`], [`TaskState`]: one task as seen at one moment.
//! - [`LeakReport`], [`TaskPanic`]: a scope's verdict.
//! - [`LeakGroup`]: identical leaks folded into one entry with a count.
//! - The text a person reads (`Display` of the report and of states) lives in
//!   one file, with the helpers every other text of the crate uses.

mod group;
#[cfg(feature = "serde")]
pub mod json;
mod leak_report;
mod task_info;
mod text;

pub use group::LeakGroup;
pub(crate) use group::group_tasks;
pub(crate) use leak_report::UntrackedCount;
pub use leak_report::{LeakReport, TaskPanic, Timeout};
pub use task_info::{TaskInfo, TaskKind, TaskState};
#[cfg(not(leakfree_taskdump))]
pub(crate) use text::FULL_VIEW_STEP;
pub(crate) use text::{human_duration, package_relative, panic_message, panic_text, plural, site};
