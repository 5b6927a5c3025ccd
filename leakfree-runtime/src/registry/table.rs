//! A scope's table of task records: a [`Slab`] of `Weak` references, each
//! beside its [`Role`] (so removing a record never has to upgrade it), in
//! one vector. It holds `Weak` references only: a record's strong count is
//! its task's wrapper plus its wakers (see [`TaskRecord`]).

use std::sync::Weak;

use super::slab::Slab;
use crate::task::{Role, TaskRecord};

/// A live record and its role.
pub(crate) type Slot = (Weak<TaskRecord>, Role);

#[derive(Debug, Default)]
pub(crate) struct TaskTable {
    records: Slab<Slot>,
}

impl TaskTable {
    pub(crate) fn insert(&mut self, slot: Slot) -> usize {
        self.records.insert(slot)
    }

    pub(crate) fn remove(&mut self, key: usize) -> Option<Slot> {
        self.records.remove(key)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Weak<TaskRecord>> {
        self.records.iter().map(|(record, _)| record)
    }
}

#[cfg(test)]
mod tests {
    use std::panic::Location;

    use super::*;
    use crate::report::TaskKind;

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
