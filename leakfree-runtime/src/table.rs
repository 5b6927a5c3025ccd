//! A slab of task records: O(1) insert and remove by key, iteration over the
//! live ones. Keys are reused after removal. It holds `Weak` references only:
//! a record's strong count is its task's wrapper plus its wakers (`record.rs`).
//! Each slot also keeps the task's [`Role`], so removing a record never has to
//! upgrade it.

use std::sync::Weak;

use crate::record::{Role, TaskRecord};

/// A live record and its role.
pub(crate) type Slot = (Weak<TaskRecord>, Role);

#[derive(Debug, Default)]
pub(crate) struct TaskTable {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
}

impl TaskTable {
    pub(crate) fn insert(&mut self, record: Slot) -> usize {
        match self.free.pop() {
            Some(key) => {
                self.slots[key] = Some(record);
                key
            }
            None => {
                self.slots.push(Some(record));
                self.slots.len() - 1
            }
        }
    }

    pub(crate) fn remove(&mut self, key: usize) -> Option<Slot> {
        let record = self.slots.get_mut(key)?.take()?;
        self.free.push(key);
        Some(record)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Weak<TaskRecord>> {
        self.slots.iter().flatten().map(|(record, _)| record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Role, TaskKind};
    use std::panic::Location;

    fn record() -> Slot {
        let record = std::sync::Arc::new(TaskRecord::new(
            None,
            Location::caller(),
            TaskKind::Async,
            Role::Regular,
        ));
        (std::sync::Arc::downgrade(&record), Role::Regular)
    }

    #[test]
    fn keys_are_reused_and_len_tracks_live_records() {
        let mut table = TaskTable::default();
        let a = table.insert(record());
        let b = table.insert(record());
        assert_ne!(a, b);
        assert_eq!(table.iter().count(), 2);
        assert!(table.remove(a).is_some());
        assert!(table.remove(a).is_none(), "second remove finds nothing");
        assert_eq!(table.iter().count(), 1);
        let c = table.insert(record());
        assert_eq!(c, a, "freed key is reused");
        assert_eq!(table.iter().count(), 2);
    }
}
