//! Debug builds' check of the promise a scope's table relies on: a record
//! the table borrows (`registry/table.rs`) is never freed while the table
//! still lists it.
//!
//! The table calls [`lend`] when it takes a record's pointer and
//! [`give_back`] when it lets go; a record's drop calls [`check_not_lent`],
//! which panics if the record is still listed. Release builds compile the
//! first two to nothing and have no check (a record has no `Drop` there).

use super::record::TaskRecord;

#[cfg(debug_assertions)]
mod set {
    use std::collections::HashSet;
    use std::sync::LazyLock;

    use parking_lot::Mutex;

    /// The addresses of the records some table lists now.
    pub(super) static LENT: LazyLock<Mutex<HashSet<usize>>> = LazyLock::new(Mutex::default);
}

/// A table now lists the record at `address`.
pub(crate) fn lend(address: *const TaskRecord) {
    #[cfg(debug_assertions)]
    set::LENT.lock().insert(address as usize);
    #[cfg(not(debug_assertions))]
    let _ = address;
}

/// The table no longer lists the record at `address`.
pub(crate) fn give_back(address: *const TaskRecord) {
    #[cfg(debug_assertions)]
    set::LENT.lock().remove(&(address as usize));
    #[cfg(not(debug_assertions))]
    let _ = address;
}

/// Called as the record at `address` is dropped: panics if a table still
/// lists it.
#[cfg(debug_assertions)]
pub(crate) fn check_not_lent(address: *const TaskRecord) {
    assert!(
        !set::LENT.lock().contains(&(address as usize)),
        "a task record was dropped while its scope's table still lists it \
         (its holder must deregister first; see `registry/table.rs`)"
    );
}
