//! A scope's table of task records: a [`Slab`] of borrowed record pointers,
//! each beside its [`Role`], in one vector.
//!
//! The table holds no reference count of its own: a spawn and an end each
//! skip the two atomic read-modify-writes a `Weak` costs (a `downgrade` and
//! its drop), and a record's strong count stays its task's wrapper plus its
//! wakers (see [`TaskRecord`]).
//!
//! # Invariant
//! A pointer is in the table only while its task's holder (the async task's
//! wrapper, or a blocking closure's `Registration`) keeps a strong reference
//! to the record, and the holder takes it out, under the scope's table
//! lock, before it drops that reference ([`TaskTable::insert`]'s safety
//! contract). So a pointer read under the lock is to a live record, whose
//! strong count is at least one: [`TaskTable::upgrade_all`] takes a
//! reference of its own to each, still under the lock. Debug builds check
//! the promise at every record's drop (`task/lent.rs`): a record freed while
//! a table lists it fails the test that freed it, whichever test it is.

use std::ptr::NonNull;
use std::sync::Arc;

use super::slab::Slab;
use crate::task::{Role, TaskRecord, lent};

/// A record the table borrows (see the invariant): `Arc::as_ptr` of the
/// holder's `Arc`.
#[derive(Debug, Clone, Copy)]
struct Borrowed(NonNull<TaskRecord>);

// SAFETY: a `Borrowed` is only dereferenced through `upgrade_all`, which
// makes an `Arc<TaskRecord>` of it; `TaskRecord` is `Send + Sync`, so an
// `Arc` of it may be made and used on any thread.
unsafe impl Send for Borrowed {}

/// A live record and its role.
type Slot = (Borrowed, Role);

#[derive(Debug, Default)]
pub(crate) struct TaskTable {
    records: Slab<Slot>,
}

/// A table dropped with records in it (only unit tests drop one early:
/// every holder keeps its scope, and so its table, alive) lists nothing
/// any more.
#[cfg(debug_assertions)]
impl Drop for TaskTable {
    fn drop(&mut self) {
        for (record, _) in self.records.iter() {
            lent::give_back(record.0.as_ptr());
        }
    }
}

impl TaskTable {
    /// Adds `record`; returns its key for [`TaskTable::remove`].
    ///
    /// # Safety
    /// The caller (the task's holder) keeps a strong reference to `record`
    /// until it has removed the key again, under the same lock that guards
    /// this table.
    pub(crate) unsafe fn insert(&mut self, record: &Arc<TaskRecord>, role: Role) -> usize {
        let pointer = NonNull::new(Arc::as_ptr(record).cast_mut()).expect("an `Arc` is never null");
        lent::lend(pointer.as_ptr());
        self.records.insert((Borrowed(pointer), role))
    }

    /// Takes the record of `key` out; returns its role, or `None` if it
    /// was not there.
    pub(crate) fn remove(&mut self, key: usize) -> Option<Role> {
        let (record, role) = self.records.remove(key)?;
        lent::give_back(record.0.as_ptr());
        Some(role)
    }

    /// A strong reference to every record in the table.
    pub(crate) fn upgrade_all(&self) -> Vec<Arc<TaskRecord>> {
        self.records
            .iter()
            .map(|(record, _)| {
                let pointer = record.0.as_ptr().cast_const();
                // SAFETY: the table is borrowed, so its lock is held, and a
                // pointer in it is to a record its holder still keeps a
                // strong reference to (`insert`'s contract): the count is at
                // least one. `Arc::as_ptr` made the pointer, so it is one
                // `Arc::from_raw` accepts; the increment gives the new `Arc`
                // a reference of its own.
                unsafe {
                    Arc::increment_strong_count(pointer);
                    Arc::from_raw(pointer)
                }
            })
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records.iter().count()
    }
}

#[cfg(test)]
mod tests {
    use std::panic::Location;

    use super::*;
    use crate::report::TaskKind;

    fn record() -> Arc<TaskRecord> {
        Arc::new(TaskRecord::new(
            None,
            Location::caller(),
            TaskKind::Async,
            Role::Regular,
        ))
    }

    #[test]
    fn keys_are_reused_and_len_tracks_live_records() {
        let records = [record(), record(), record()];
        let mut table = TaskTable::default();
        // SAFETY (all inserts here): `records` outlives `table`.
        let a = unsafe { table.insert(&records[0], Role::Regular) };
        let b = unsafe { table.insert(&records[1], Role::Regular) };
        assert_ne!(a, b);
        assert_eq!(table.len(), 2);
        assert!(table.remove(a).is_some());
        assert!(table.remove(a).is_none(), "second remove finds nothing");
        assert_eq!(table.len(), 1);
        let c = unsafe { table.insert(&records[2], Role::Regular) };
        assert_eq!(c, a, "freed key is reused");
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn a_removed_record_comes_back_with_its_role() {
        let records = [record(), record(), record()];
        let mut table = TaskTable::default();
        // SAFETY (all inserts here): `records` outlives `table`.
        let regular = unsafe { table.insert(&records[0], Role::Regular) };
        let background = unsafe { table.insert(&records[1], Role::Background) };
        assert_eq!(table.remove(background), Some(Role::Background));
        assert_eq!(table.remove(regular), Some(Role::Regular));
        let reused = unsafe { table.insert(&records[2], Role::Background) };
        assert_eq!(table.remove(reused), Some(Role::Background));
    }

    /// A holder that drops its record before taking it out of the table
    /// breaks the promise the table's reads rely on: a debug build fails
    /// at the record's drop.
    #[test]
    #[cfg(debug_assertions)]
    fn a_record_dropped_while_listed_fails_a_debug_build() {
        let mut table = TaskTable::default();
        let record = record();
        // SAFETY: broken on purpose; the check panics inside the drop
        // (the record's memory is then leaked, never freed), and nothing
        // reads the table.
        let key = unsafe { table.insert(&record, Role::Regular) };
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(record)));
        let message = crate::report::panic_message(&*dropped.expect_err("the drop panics"));
        assert!(
            message.contains("dropped while its scope's table still lists it"),
            "{message}"
        );
        table.remove(key);
    }

    /// Each upgraded record owns a reference of its own, and dropping them
    /// gives every one back: the holders' counts are what they were.
    #[test]
    fn upgrades_take_one_reference_each_and_give_it_back() {
        let records = [record(), record()];
        let mut table = TaskTable::default();
        for record in &records {
            // SAFETY: `records` outlives `table`.
            unsafe { table.insert(record, Role::Regular) };
        }
        let upgraded = table.upgrade_all();
        assert_eq!(upgraded.len(), 2);
        assert!(records.iter().all(|r| Arc::strong_count(r) == 2));
        assert!(
            upgraded
                .iter()
                .all(|u| records.iter().any(|r| Arc::ptr_eq(r, u)))
        );
        drop(upgraded);
        assert!(records.iter().all(|r| Arc::strong_count(r) == 1));
    }
}
