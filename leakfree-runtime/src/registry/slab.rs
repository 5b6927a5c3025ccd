//! A slab: values in reusable slots, O(1) insert and remove by key, and
//! iteration over the occupied slots. A slot is an `Option<T>`, so for the
//! `Weak` references kept here it is one pointer wide.
//!
//! # Invariant
//! A key is either occupied or on the free list, never both; removing a key
//! twice finds nothing the second time.

/// Values in reusable slots.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
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
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Stores `value`; returns its key (a freed one if there is one).
    pub(crate) fn insert(&mut self, value: T) -> usize {
        match self.free.pop() {
            Some(key) => {
                self.slots[key] = Some(value);
                key
            }
            None => {
                self.slots.push(Some(value));
                self.slots.len() - 1
            }
        }
    }

    /// Takes the value out of `key`'s slot, if it holds one.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let value = self.slots.get_mut(key)?.take()?;
        self.free.push(key);
        Some(value)
    }

    /// The occupied slots' values, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    /// Slots held, occupied and free: bounded by the most values stored at
    /// once, however many have come and gone.
    #[cfg(test)]
    pub(crate) fn capacity_used(&self) -> usize {
        self.slots.len()
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
}
