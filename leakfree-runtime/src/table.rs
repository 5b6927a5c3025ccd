//! A slab of task records: O(1) insert and remove by key, iteration over the
//! live ones. Keys are reused after removal. It holds `Weak` references only:
//! a record's strong count is its task's wrapper plus its wakers (`record.rs`).
//! Each key also keeps the task's [`Role`] (in a parallel vector of bytes, so
//! a slot stays one pointer wide), so removing a record never has to upgrade
//! it.

use std::sync::Weak;

use crate::record::{Role, TaskRecord};

/// A live record and its role.
pub(crate) type Slot = (Weak<TaskRecord>, Role);

#[derive(Debug, Default)]
pub(crate) struct TaskTable {
    slots: Vec<Option<Weak<TaskRecord>>>,
    /// `roles[key]` is the role of the record in `slots[key]`.
    roles: Vec<Role>,
    free: Vec<usize>,
}

impl TaskTable {
    pub(crate) fn insert(&mut self, (record, role): Slot) -> usize {
        match self.free.pop() {
            Some(key) => {
                self.slots[key] = Some(record);
                self.roles[key] = role;
                key
            }
            None => {
                self.slots.push(Some(record));
                self.roles.push(role);
                self.slots.len() - 1
            }
        }
    }

    pub(crate) fn remove(&mut self, key: usize) -> Option<Slot> {
        let record = self.slots.get_mut(key)?.take()?;
        self.free.push(key);
        Some((record, self.roles[key]))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Weak<TaskRecord>> {
        self.slots.iter().flatten()
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

    #[test]
    fn a_removed_record_comes_back_with_its_role() {
        let mut table = TaskTable::default();
        let (weak, _) = record();
        let regular = table.insert(record());
        let background = table.insert((weak, Role::Background));
        assert_eq!(
            table.remove(background).map(|(_, role)| role),
            Some(Role::Background)
        );
        assert_eq!(
            table.remove(regular).map(|(_, role)| role),
            Some(Role::Regular)
        );
        let reused = table.insert(record());
        assert_eq!(
            table.remove(reused).map(|(_, role)| role),
            Some(Role::Regular),
            "a reused key takes the new role"
        );
    }
}
