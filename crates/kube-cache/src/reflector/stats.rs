//! What a running reflector shares with its [`ReflectorHandle`]s: the last synced
//! resourceVersion, whether it has synced, and its counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;

/// A snapshot of a reflector's counters ([`ReflectorHandle::stats`]). Every count starts at
/// zero when the reflector is built and only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReflectorStats {
    /// List operations started: a paged list, a full list after an expired continue token,
    /// and the retry at the latest resourceVersion after an expired or too-large one each
    /// count once.
    pub lists: u64,
    /// List requests sent (one per page).
    pub list_pages: u64,
    /// List operations that failed (the cycle ends, the reflector backs off and retries).
    pub list_errors: u64,
    /// Paged lists whose continue token expired mid-way and were redone as one full list
    /// (client-go's pager `FullListIfExpired`).
    pub expired_continue_fallbacks: u64,
    /// Streaming lists started (`sendInitialEvents=true` watches).
    pub streaming_lists: u64,
    /// Streaming lists given up for a plain list (an error, or a server without watch-list).
    pub streaming_fallbacks: u64,
    /// Syncs (a list or a streaming list replacing the store's content) after the first one.
    pub relists: u64,
    /// Watch requests sent (streaming lists included).
    pub watches_started: u64,
    /// Watches that failed to start or ended with an error (an `ERROR` event such as
    /// `410 Gone`, a decoding error, a very short watch).
    pub watch_errors: u64,
    /// Watches cut mid-stream (connection lost) and resumed from the last resourceVersion.
    pub watch_cuts: u64,
    /// Backoff waits (before each relist, and before retrying a watch refused with 429 or a
    /// refused connection).
    pub backoffs: u64,
    /// Resyncs asked of the store.
    pub resyncs: u64,
    /// Watch events applied (bookmarks included).
    pub events: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) lists: AtomicU64,
    pub(crate) list_pages: AtomicU64,
    pub(crate) list_errors: AtomicU64,
    pub(crate) expired_continue_fallbacks: AtomicU64,
    pub(crate) streaming_lists: AtomicU64,
    pub(crate) streaming_fallbacks: AtomicU64,
    pub(crate) relists: AtomicU64,
    pub(crate) watches_started: AtomicU64,
    pub(crate) watch_errors: AtomicU64,
    pub(crate) watch_cuts: AtomicU64,
    pub(crate) backoffs: AtomicU64,
    pub(crate) resyncs: AtomicU64,
    pub(crate) events: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> ReflectorStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ReflectorStats {
            lists: get(&self.lists),
            list_pages: get(&self.list_pages),
            list_errors: get(&self.list_errors),
            expired_continue_fallbacks: get(&self.expired_continue_fallbacks),
            streaming_lists: get(&self.streaming_lists),
            streaming_fallbacks: get(&self.streaming_fallbacks),
            relists: get(&self.relists),
            watches_started: get(&self.watches_started),
            watch_errors: get(&self.watch_errors),
            watch_cuts: get(&self.watch_cuts),
            backoffs: get(&self.backoffs),
            resyncs: get(&self.resyncs),
            events: get(&self.events),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: String,
    last_sync_resource_version: RwLock<String>,
    synced: AtomicBool,
    pub(crate) counters: Counters,
}

impl Shared {
    pub(crate) fn new(name: String) -> Shared {
        Shared {
            name,
            last_sync_resource_version: RwLock::new(String::new()),
            synced: AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    pub(crate) fn last_sync_resource_version(&self) -> String {
        self.last_sync_resource_version.read().clone()
    }

    pub(crate) fn set_last_sync_resource_version(&self, rv: &str) {
        let mut guard = self.last_sync_resource_version.write();
        if *guard != rv {
            guard.clear();
            guard.push_str(rv);
        }
    }

    /// Records a completed sync; counts a relist when it is not the first.
    pub(crate) fn synced(&self) {
        if self.synced.swap(true, Ordering::AcqRel) {
            bump(&self.counters.relists);
        }
    }
}

/// A cheap, cloneable view of a running [`Reflector`](crate::Reflector): its name, the
/// resourceVersion it last synced to, whether it has synced once, and its counters.
#[derive(Debug, Clone)]
pub struct ReflectorHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ReflectorHandle {
    /// The reflector's name (for logs).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The resourceVersion observed when the reflector last synced with its store: a list's,
    /// then each watch event's and bookmark's (client-go's `LastSyncResourceVersion`); `""`
    /// before the first list.
    pub fn last_sync_resource_version(&self) -> String {
        self.shared.last_sync_resource_version()
    }

    /// Whether a first list (or streaming list) has been written to the store.
    pub fn has_synced(&self) -> bool {
        self.shared.synced.load(Ordering::Acquire)
    }

    /// The counters so far.
    pub fn stats(&self) -> ReflectorStats {
        self.shared.counters.snapshot()
    }
}
