//! The per-scope task registry: which tracked tasks belong to a scope, how
//! many are still alive, and the events the exit protocol waits on.
//!
//! # Invariants
//! - A record is in `tasks` from just before its task is handed to tokio until
//!   the task's future is dropped (completion, abort, or runtime shutdown).
//!   Dropping the future is the one event that removes it, so "in the table"
//!   means "tokio still owns the future".
//! - `live` counts the table's records: all of them in its low half, the
//!   `Role::Regular` ones in its high half ([`LiveCount`]). It changes only
//!   under the table lock, together with the table, so its writers need no
//!   read-modify-write: a load and a release store, which readers outside
//!   the lock see whole (one word) with an acquire load.
//! - `changed` is notified (`notify_waiters`) whenever either counter reaches
//!   zero; waiters register (`Notified::enable`) before checking the counters,
//!   so no wake-up is lost.
//! - Once `closing` is set it stays set. A spawn that registers after it is
//!   aborted by the spawner itself: either the spawner sees `closing`, or the
//!   closer sees the spawner's abort handle (see [`task::start_closing`],
//!   loom-checked).
//!
//! - Every published scope is in the process's scope list (which the live
//!   view reads) until its shared state is dropped, which removes it. The
//!   list holds `Weak` references; [`live_scopes`] upgrades them under a
//!   shard's lock and returns them, so the last reference to a scope (whose
//!   drop takes that lock to leave the list) is never dropped while it is
//!   held.
//! - The token exists only once asked for. `close` sets `closing` before it
//!   looks for the token, and [`ScopeShared::token`] makes the token before
//!   it looks at `closing`, each with a `SeqCst` fence in between: a token
//!   made while the scope closes is cancelled by one of the two.
//!
//! # Deadlock safety
//! Only one lock is taken at a time: the table lock is never held while
//! calling into tokio (aborting happens on a snapshot taken under the lock), and
//! the panics lock is independent.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::filter::Filters;
use super::slab::Slab;
use super::table::TaskTable;
use crate::report::TaskKind;
use crate::task::{self, Role, SpawnInstant, TaskRecord};

/// What the exit protocol is configured with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) grace: Duration,
    pub(crate) abort_timeout: Duration,
    pub(crate) filters: Filters,
    pub(crate) count_untracked: bool,
    /// Whether tasks tokio's spawn hook attributes to the scope are judged
    /// (`false`: let out, as `allow_untracked` asks).
    pub(crate) judge_plain_spawns: bool,
    /// Take a task dump for the stuck-at stacks of leaked tasks.
    pub(crate) stuck_at: bool,
}

impl Drop for ScopeShared {
    fn drop(&mut self) {
        if let Some(place) = self.list_key {
            list_remove(place);
        }
        // Panics no verdict took (a scope ended without a runtime, or never
        // judged) leave the watch with it.
        for panicked in self.panics.get_mut().iter() {
            if let Some(id) = panicked.id {
                task::panic_watch::unwatch(id);
            }
        }
    }
}

/// A blocking closure's place in its scope's table, given up when this is
/// dropped: the one event that removes its record (see the invariants
/// above; an async task's wrapper deregisters itself).
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) scope: Arc<ScopeShared>,
    key: usize,
    /// The strong reference the table's borrowed pointer relies on
    /// ([`ScopeShared::register`]'s contract), dropped only after the
    /// deregistration.
    record: Arc<TaskRecord>,
}

impl Registration {
    /// Takes over the place `key` that `record` was registered at in `scope`.
    pub(crate) fn new(scope: Arc<ScopeShared>, key: usize, record: Arc<TaskRecord>) -> Self {
        Registration { scope, key, record }
    }

    /// The closure's record.
    pub(crate) fn record(&self) -> &Arc<TaskRecord> {
        &self.record
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Before the fields (the record among them) are dropped.
        self.scope.deregister(self.key, TaskKind::Blocking);
    }
}

/// Whether tasks of `kind` are in the runtime's `num_alive_tasks`, against
/// which the known count is compared: async tasks are; blocking closures
/// run on the blocking pool, which tokio does not count there, so counting
/// them as known would hide as many untracked tasks.
fn in_runtime_count(kind: TaskKind) -> bool {
    kind == TaskKind::Async
}

/// The scope's two live counts packed in one word, so that a task's start and
/// end update both with one atomic operation: all live records in the low 32
/// bits, the `Role::Regular` ones in the high 32 bits.
#[derive(Debug, Clone, Copy)]
struct LiveCount(u64);

impl LiveCount {
    const REGULAR: u64 = 1 << 32;

    /// What one record of `role` adds.
    fn of(role: Role) -> LiveCount {
        match role {
            Role::Regular => LiveCount(1 + Self::REGULAR),
            Role::Background => LiveCount(1),
        }
    }

    fn all(self) -> usize {
        (self.0 & (Self::REGULAR - 1)) as usize
    }

    fn regular(self) -> usize {
        (self.0 >> 32) as usize
    }
}

/// A tracked task that panicked, kept until the verdict.
#[derive(Debug)]
pub(crate) struct PanickedTask {
    /// tokio's id of the task, by which its `JoinHandle` finds it.
    id: Option<tokio::task::Id>,
    pub(crate) record: Arc<TaskRecord>,
    pub(crate) message: String,
}

/// The shared state of one scope.
#[derive(Debug)]
pub(crate) struct ScopeShared {
    pub(crate) name: Cow<'static, str>,
    pub(crate) settings: Settings,
    /// Made at the first [`ScopeShared::token`] call (most scopes never
    /// need one); a child of the parent scope's token.
    token: OnceLock<CancellationToken>,
    /// The enclosing scope, kept only to derive the token from its own.
    parent: Option<Arc<ScopeShared>>,
    /// When the scope started, by the clock tasks' spawn times are read
    /// with (coarse, so that a request's scope skips the fine read: an age
    /// is at most one kernel tick longer than the truth).
    pub(crate) started: SpawnInstant,
    /// Set when the exit protocol has ended the scope (the live view stops
    /// listing it).
    ended: AtomicBool,
    /// Place in the process's scope list, removed when this is dropped
    /// (`None`: never published).
    list_key: Option<ListKey>,
    /// The nearest scope (this one or an ancestor) that counts untracked
    /// tasks; it must also count this scope's tracked tasks as known.
    untracked_root: Option<Arc<ScopeShared>>,
    tasks: Mutex<TaskTable>,
    live: AtomicU64,
    /// Tasks ever tracked here; written only under the table lock.
    spawned: AtomicUsize,
    /// Tasks alive in this scope's subtree that leakfree knows of (tracked
    /// anywhere below, or ignored by a filter); only kept by scopes that count
    /// untracked tasks.
    known_live: AtomicUsize,
    ignored: AtomicUsize,
    /// Tasks spawned with plain `tokio::spawn`, attributed to this scope by
    /// tokio's spawn hook (whose attribution map keeps them); zero without
    /// `tokio_unstable`.
    hooked_live: AtomicUsize,
    hooked_spawned: AtomicUsize,
    changed: Notify,
    closing: AtomicBool,
    panics: Mutex<Vec<PanickedTask>>,
}

impl ScopeShared {
    pub(crate) fn new(
        name: Cow<'static, str>,
        settings: Settings,
        parent: Option<&Arc<ScopeShared>>,
    ) -> Self {
        let untracked_root = parent.and_then(|p| p.untracked_root());
        ScopeShared {
            name,
            settings,
            token: OnceLock::new(),
            parent: parent.cloned(),
            started: SpawnInstant::now(),
            ended: AtomicBool::new(false),
            list_key: None,
            untracked_root,
            tasks: Mutex::new(TaskTable::default()),
            live: AtomicU64::new(0),
            spawned: AtomicUsize::new(0),
            known_live: AtomicUsize::new(0),
            ignored: AtomicUsize::new(0),
            hooked_live: AtomicUsize::new(0),
            hooked_spawned: AtomicUsize::new(0),
            changed: Notify::new(),
            closing: AtomicBool::new(false),
            panics: Mutex::new(Vec::new()),
        }
    }

    /// A scope's state for unit tests: default filters, zero grace and
    /// abort timeout, outside the scope list.
    #[cfg(test)]
    pub(crate) fn for_test(name: &'static str) -> Arc<Self> {
        let settings = Settings {
            grace: std::time::Duration::ZERO,
            abort_timeout: std::time::Duration::ZERO,
            filters: super::Filters::default(),
            count_untracked: false,
            judge_plain_spawns: true,
            stuck_at: false,
        };
        Arc::new(ScopeShared::new(Cow::Borrowed(name), settings, None))
    }

    /// A new scope's shared state, in the process's scope list (which the
    /// live view reads) from the start: its place is taken while the state
    /// is made (where the list's `Weak` does not upgrade yet), so the place
    /// is a plain field.
    pub(crate) fn new_published(
        name: Cow<'static, str>,
        settings: Settings,
        parent: Option<&Arc<ScopeShared>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|weak| {
            let mut shared = ScopeShared::new(name, settings, parent);
            shared.list_key = Some(list_insert(weak.clone()));
            shared
        })
    }

    /// The scope's cancellation token, made now if it does not exist yet;
    /// one made after the scope closed is cancelled at once.
    pub(crate) fn token(&self) -> CancellationToken {
        if let Some(token) = self.token.get() {
            return token.clone();
        }
        let token = self
            .token
            .get_or_init(|| match &self.parent {
                Some(parent) => parent.token().child_token(),
                None => CancellationToken::new(),
            })
            .clone();
        // Pairs with the fence in `task::start_closing`, which `close` calls:
        // either the closer sees the token and cancels it, or this sees
        // `closing` (see the invariants).
        fence(Ordering::SeqCst);
        if self.closing.load(Ordering::SeqCst) {
            token.cancel();
        }
        token
    }

    pub(crate) fn mark_ended(&self) {
        self.ended.store(true, Ordering::Release);
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// This scope if it counts untracked tasks, else its nearest such ancestor.
    fn untracked_root(self: &Arc<Self>) -> Option<Arc<ScopeShared>> {
        if self.settings.count_untracked {
            Some(self.clone())
        } else {
            self.untracked_root.clone()
        }
    }

    fn known_task_started(&self) {
        if self.settings.count_untracked {
            self.known_live.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(root) = &self.untracked_root {
            root.known_live.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn known_task_ended(&self) {
        if self.settings.count_untracked {
            self.known_live.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(root) = &self.untracked_root {
            root.known_live.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Adds a record; returns its key for [`ScopeShared::deregister`].
    ///
    /// # Safety
    /// The caller (the task's holder: its wrapper, or a blocking closure's
    /// [`Registration`]) keeps a strong reference to `record` until its
    /// [`ScopeShared::deregister`] of the key has returned: the table
    /// borrows the record (see `registry/table.rs`).
    pub(crate) unsafe fn register(&self, record: &Arc<TaskRecord>) -> usize {
        let role = record.role;
        if in_runtime_count(record.kind) {
            self.known_task_started();
        }
        let mut tasks = self.tasks.lock();
        // Both only ever change under the table lock: a load and a store,
        // not a read-modify-write (see the invariants).
        let spawned = self.spawned.load(Ordering::Relaxed);
        self.spawned.store(spawned + 1, Ordering::Relaxed);
        let live = self.live.load(Ordering::Relaxed);
        self.live
            .store(live + LiveCount::of(role).0, Ordering::Release);
        // SAFETY: the caller's contract is `insert`'s, and the table's lock
        // is held here as in `deregister`.
        unsafe { tasks.insert(record, role) }
    }

    /// Removes a record of `kind` once its task's future is gone.
    pub(crate) fn deregister(&self, key: usize, kind: TaskKind) {
        let (removed, reached_zero) = {
            let mut tasks = self.tasks.lock();
            match tasks.remove(key) {
                Some(role) => {
                    let delta = LiveCount::of(role);
                    let after = LiveCount(self.live.load(Ordering::Relaxed) - delta.0);
                    self.live.store(after.0, Ordering::Release);
                    let reached_zero =
                        after.all() == 0 || (role == Role::Regular && after.regular() == 0);
                    (true, reached_zero)
                }
                None => (false, false),
            }
        };
        if removed && in_runtime_count(kind) {
            self.known_task_ended();
        }
        if reached_zero {
            self.changed.notify_waiters();
        }
    }

    /// Counts a task of `kind` that an ignore filter let out of the scope.
    pub(crate) fn ignored_task_started(&self, kind: TaskKind) {
        self.ignored.fetch_add(1, Ordering::Relaxed);
        if in_runtime_count(kind) {
            self.known_task_started();
        }
    }

    pub(crate) fn ignored_task_ended(&self, kind: TaskKind) {
        if in_runtime_count(kind) {
            self.known_task_ended();
        }
    }

    /// Counts a task the spawn hook attributed to this scope (the hook's
    /// map keeps its id, location and age).
    #[cfg(tokio_unstable)]
    pub(crate) fn hooked_task_started(&self) {
        self.known_task_started();
        self.hooked_spawned.fetch_add(1, Ordering::Relaxed);
        self.hooked_live.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a hooked task's end, once tokio says it terminated.
    #[cfg(tokio_unstable)]
    pub(crate) fn hooked_task_ended(&self) {
        let reached_zero = self.hooked_live.fetch_sub(1, Ordering::AcqRel) == 1;
        self.known_task_ended();
        if reached_zero {
            self.changed.notify_waiters();
        }
    }

    pub(crate) fn hooked_live(&self) -> usize {
        self.hooked_live.load(Ordering::Acquire)
    }

    pub(crate) fn ignored_total(&self) -> usize {
        self.ignored.load(Ordering::Relaxed)
    }

    pub(crate) fn spawned_total(&self) -> usize {
        self.spawned.load(Ordering::Relaxed) + self.hooked_spawned.load(Ordering::Relaxed)
    }

    pub(crate) fn regular_live(&self) -> usize {
        LiveCount(self.live.load(Ordering::Acquire)).regular()
    }

    pub(crate) fn all_live(&self) -> usize {
        LiveCount(self.live.load(Ordering::Acquire)).all()
    }

    pub(crate) fn known_live(&self) -> usize {
        self.known_live.load(Ordering::Acquire)
    }

    /// Gives a just-spawned task's record its abort handle; aborts the task
    /// if the scope is already closing.
    ///
    /// # Safety
    /// Called at most once per record, by its task's spawner
    /// ([`TaskRecord::attach`]'s contract).
    pub(crate) unsafe fn attach(&self, record: &TaskRecord, abort: tokio::task::AbortHandle) {
        // SAFETY: this function's contract is the record's.
        unsafe { record.attach(abort, &self.closing) };
    }

    /// The live records, in no particular order.
    pub(crate) fn live_records(&self) -> Vec<Arc<TaskRecord>> {
        self.tasks.lock().upgrade_all()
    }

    /// Stops the scope: no task may start in it any more, its token is
    /// cancelled and every live task is aborted. Returns how many were aborted.
    pub(crate) fn close(&self) -> usize {
        // Its `SeqCst` fence also orders the token's read below (see `token`).
        task::start_closing(&self.closing);
        if let Some(token) = self.token.get() {
            token.cancel();
        }
        if self.all_live() == 0 {
            // A record registered after this load is aborted by its spawner,
            // which sees `closing`.
            return 0;
        }
        let live = self.live_records();
        live.iter().filter(|record| record.abort()).count()
    }

    /// Waits until `done` holds or `deadline` passes; woken by the counters
    /// reaching zero, never by polling.
    pub(crate) async fn wait_until(
        &self,
        done: impl Fn(&Self) -> bool,
        deadline: tokio::time::Instant,
    ) -> bool {
        if done(self) {
            // Nothing to wait for: no waiter needs registering.
            return true;
        }
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(self);
            }
        }
    }

    /// Keeps a tracked task's panic for the verdict; call from inside the
    /// task (tokio's current task id is its id), before the panic continues.
    pub(crate) fn record_panic(&self, record: Arc<TaskRecord>, message: String) {
        let id = tokio::task::try_id().or_else(|| record.id());
        if let Some(id) = id {
            task::panic_watch::watch(id, &record);
        }
        self.panics.lock().push(PanickedTask {
            id,
            record,
            message,
        });
    }

    /// Whether any tracked task panicked here (observed or not) since the
    /// panics were last taken.
    pub(crate) fn has_panics(&self) -> bool {
        !self.panics.lock().is_empty()
    }

    /// Panics of tracked tasks that no `JoinHandle` handed to its owner.
    pub(crate) fn take_unobserved_panics(&self) -> Vec<PanickedTask> {
        let mut panics = std::mem::take(&mut *self.panics.lock());
        for panicked in &panics {
            if let Some(id) = panicked.id {
                task::panic_watch::unwatch(id);
            }
        }
        panics.retain(|p| !p.record.panic_observed());
        panics
    }
}

// The process's scope list, in shards so that threads starting and ending
// scopes at once (a server's workers, one scope per request) rarely take the
// same lock. A thread always uses the shard it was given first; a scope
// leaves the shard it entered, wherever it is dropped.

/// Shards of the scope list (and of the count of ended scopes).
pub(crate) const SHARDS: usize = 8;

static SCOPES: [Mutex<Slab<Weak<ScopeShared>>>; SHARDS] =
    [const { Mutex::new(Slab::new()) }; SHARDS];

/// A scope's place in the list: its shard and its key there.
#[derive(Debug, Clone, Copy)]
struct ListKey {
    shard: u8,
    key: usize,
}

/// The shard this thread uses: threads are dealt shards in turn.
pub(crate) fn own_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.try_with(|shard| *shard).unwrap_or(0)
}

/// Adds a scope to the list; returns its place for [`list_remove`].
fn list_insert(weak: Weak<ScopeShared>) -> ListKey {
    let shard = own_shard();
    let key = SCOPES[shard].lock().insert(weak);
    ListKey {
        shard: shard as u8,
        key,
    }
}

/// Removes a scope (its shared state is being dropped).
fn list_remove(place: ListKey) {
    let removed = SCOPES[usize::from(place.shard)].lock().remove(place.key);
    drop(removed);
}

/// The scopes alive now, in no particular order.
pub(crate) fn live_scopes() -> Vec<Arc<ScopeShared>> {
    let mut live = Vec::new();
    for shard in &SCOPES {
        let scopes = shard.lock();
        live.extend(scopes.iter().filter_map(Weak::upgrade));
        // Each lock is released before the caller drops any of these.
    }
    live
}

/// Slots the list holds, used and free: bounded by the most scopes alive at
/// once, however many have come and gone.
#[cfg(test)]
pub(crate) fn scope_list_slots() -> usize {
    SCOPES
        .iter()
        .map(|shard| shard.lock().capacity_used())
        .sum()
}
