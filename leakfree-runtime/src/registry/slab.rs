//! A slab: values in reusable slots, O(1) insert and remove by key, and
//! iteration over the occupied slots. Free slots form a list threaded
//! through the slots themselves, so a slab is one vector. Its first slot
//! (key 0) is inline: a slab that never holds two values at once (a
//! request's scope with one task at a time) allocates nothing, and a
//! larger one's first growth comes one value later.
//!
//! # Invariant
//! A key is either occupied or on the free list, never both; removing a key
//! twice finds nothing the second time. `free` is the head of the list
//! ([`NONE`] when empty), and each vacant slot names the next. A new slab's
//! list holds its inline slot alone; key `k > 0` is `rest[k - 1]`.

/// The end of the free list.
const NONE: usize = usize::MAX;

#[derive(Debug)]
enum Entry<T> {
    Occupied(T),
    /// Free; the next free key.
    Vacant(usize),
}

/// Values in reusable slots.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    /// Key 0.
    first: Entry<T>,
    /// Keys 1 and up.
    rest: Vec<Entry<T>>,
    free: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab::new()
    }
}

impl<T> Slab<T> {
    /// An empty slab (usable in a `static`).
    pub(crate) const fn new() -> Self {
        Slab {
            first: Entry::Vacant(NONE),
            rest: Vec::new(),
            free: 0,
        }
    }

    fn slot_mut(&mut self, key: usize) -> Option<&mut Entry<T>> {
        match key {
            0 => Some(&mut self.first),
            _ => self.rest.get_mut(key - 1),
        }
    }

    /// Stores `value`; returns its key (a freed one if there is one).
    pub(crate) fn insert(&mut self, value: T) -> usize {
        let key = self.free;
        match self.slot_mut(key) {
            Some(slot) => {
                let Entry::Vacant(next) = *slot else {
                    unreachable!("the free list holds only vacant slots");
                };
                *slot = Entry::Occupied(value);
                self.free = next;
                key
            }
            None => {
                self.rest.push(Entry::Occupied(value));
                self.rest.len()
            }
        }
    }

    /// Takes the value out of `key`'s slot, if it holds one.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let free = self.free;
        let slot = self.slot_mut(key)?;
        if let Entry::Vacant(_) = slot {
            return None;
        }
        let Entry::Occupied(value) = std::mem::replace(slot, Entry::Vacant(free)) else {
            unreachable!("checked above");
        };
        self.free = key;
        Some(value)
    }

    /// The occupied slots' values, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.first)
            .chain(&self.rest)
            .filter_map(|slot| match slot {
                Entry::Occupied(value) => Some(value),
                Entry::Vacant(_) => None,
            })
    }

    /// Slots held, occupied and free: bounded by the most values stored at
    /// once, however many have come and gone.
    #[cfg(test)]
    pub(crate) fn capacity_used(&self) -> usize {
        1 + self.rest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn keys_are_reused_and_iteration_sees_occupied_slots() {
        let mut slab = Slab::new();
        let a = slab.insert('a');
        let b = slab.insert('b');
        assert_ne!(a, b);
        assert_eq!(slab.iter().count(), 2);
        assert_eq!(slab.remove(a), Some('a'));
        assert_eq!(slab.remove(a), None, "second remove finds nothing");
        assert_eq!(slab.iter().collect::<Vec<_>>(), [&'b']);
        let c = slab.insert('c');
        assert_eq!(c, a, "freed key is reused");
        assert_eq!(slab.capacity_used(), 2);
    }

    #[test]
    fn one_value_at_a_time_stays_in_the_inline_slot() {
        let mut slab = Slab::new();
        for round in 0..100 {
            let key = slab.insert(round);
            assert_eq!(key, 0);
            assert_eq!(slab.iter().collect::<Vec<_>>(), [&round]);
            assert_eq!(slab.remove(key), Some(round));
            assert_eq!(slab.iter().count(), 0);
        }
        assert_eq!(slab.capacity_used(), 1, "the vector was never used");
        let a = slab.insert(1);
        let b = slab.insert(2);
        assert_eq!((a, b), (0, 1), "the second value goes to the vector");
        assert_eq!(slab.remove(0), Some(1));
        assert_eq!(slab.insert(3), 0, "the inline slot is reused once freed");
        assert_eq!(slab.iter().collect::<Vec<_>>(), [&3, &2]);
    }

    #[test]
    fn freed_keys_are_reused_last_freed_first_and_never_twice() {
        let mut slab = Slab::new();
        let keys: Vec<usize> = (0..5).map(|i| slab.insert(i)).collect();
        assert_eq!(slab.remove(keys[1]), Some(1));
        assert_eq!(slab.remove(keys[3]), Some(3));
        assert_eq!(slab.remove(keys[3]), None);
        assert_eq!(slab.insert(30), keys[3]);
        assert_eq!(slab.insert(10), keys[1]);
        assert_eq!(slab.insert(5), 5, "free list empty: a new slot");
        assert_eq!(
            slab.iter().copied().collect::<Vec<_>>(),
            [0, 10, 2, 30, 4, 5]
        );
        assert_eq!(slab.remove(99), None, "a key never given out");
    }
}
