//! The registry: a scope's shared state ([`ScopeShared`]), its table of task
//! records, the thread's current scope ([`context`]), the ignore filters,
//! and the process's list of live scopes.
//!
//! Everything that happens to a scope goes through [`ScopeShared`]; the
//! layers above (spawn, instrument, exit, and the public handles) call it,
//! and it calls none of them: observers such as the live view read it.

pub(crate) mod context;
mod filter;
mod scope_shared;
mod slab;
mod table;

pub(crate) use filter::Filters;
#[cfg(test)]
pub(crate) use scope_shared::scope_list_slots;
pub(crate) use scope_shared::{
    Registration, SHARDS, ScopeShared, Settings, live_scopes, own_shard,
};
