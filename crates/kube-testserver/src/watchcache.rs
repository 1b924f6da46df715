//! The emulated watch cache's window and etcd's periodic compaction.
//!
//! kube-apiserver serves a watch from a resourceVersion out of its watch cache: a bounded
//! buffer of each resource type's latest events. A watch starting before the buffer's oldest
//! event gets `410 Gone` ("too old resource version: X (Y)", Y being the oldest event's
//! resourceVersion minus one, or the resourceVersion of the cache's last (re)list when no event
//! has been evicted since). The buffer is sized dynamically (`watch_cache.go`,
//! `resizeCacheLocked`): it starts at 100 events and, when full, doubles (up to 102,400) while
//! even its oldest event is fresher than 75 seconds, and halves (down to 100) when the newest
//! quarter is older than that.
//!
//! Behind it, etcd keeps every revision until the API server's compactor (every
//! `--etcd-compaction-interval`, 5 minutes by default) compacts it to the revision it recorded
//! at its previous run (`storage/etcd3/compact.go`; recording that revision is itself a write, so
//! etcd's revision moves by one at every run). Lists at an exact older resourceVersion, and
//! continue tokens, are read from etcd and get 410 once compacted. A watch cache whose resource
//! saw no change since the compacted revision cannot resume its etcd watch (`required revision
//! has been compacted`): it relists, which starts its window at the current revision and ends
//! every watch it was serving (the cacher's `terminateAllWatchers`). That is what the recorded
//! servers answered after a quiet while: `too old resource version: 211 (367)` for a
//! resourceVersion that was the newest pod change.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many events per resource the emulated watch cache keeps for watches that resume from
/// a resourceVersion ([`TestServerBuilder::watch_cache`](crate::TestServerBuilder::watch_cache)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchCacheSize {
    /// kube-apiserver's dynamic sizing: a buffer of `lower` events that doubles when full (up
    /// to `upper`) while even its oldest event is younger than `fresh`, and halves (down to
    /// `lower`) when full and its newest quarter is older than `fresh`.
    Dynamic {
        /// The smallest buffer (kube-apiserver: 100).
        lower: usize,
        /// The largest buffer (kube-apiserver: 102,400).
        upper: usize,
        /// How long an event counts as recent (kube-apiserver: 75s).
        fresh: Duration,
    },
    /// A buffer of this many events (at least one), whatever their age.
    Fixed(usize),
    /// No watch cache (kube-apiserver with `--watch-cache=false`): watches are served from
    /// etcd's history, which only compaction shortens ("The resourceVersion for the provided
    /// watch is too old.").
    Unbounded,
}

impl Default for WatchCacheSize {
    /// kube-apiserver's: dynamic, 100 to 102,400 events, fresh for 75 seconds.
    fn default() -> Self {
        WatchCacheSize::Dynamic {
            lower: 100,
            upper: 100 * 1024,
            fresh: Duration::from_secs(75),
        }
    }
}

/// kube-apiserver's default `--etcd-compaction-interval`.
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(300);

/// One resource type's watch-cache window: which resourceVersions a watch can resume from.
#[derive(Debug)]
pub(crate) struct Window {
    /// The buffered events (resourceVersion, when recorded), oldest first; empty when unbounded.
    events: VecDeque<(u64, Instant)>,
    capacity: usize,
    /// A watch from a resourceVersion below this one gets 410.
    after: u64,
    unbounded: bool,
}

impl Window {
    /// An empty window whose cache was listed at `listed`.
    pub(crate) fn new(size: WatchCacheSize, listed: u64) -> Window {
        let (capacity, unbounded) = match size {
            WatchCacheSize::Dynamic { lower, .. } => (lower.max(1), false),
            WatchCacheSize::Fixed(events) => (events.max(1), false),
            WatchCacheSize::Unbounded => (usize::MAX, true),
        };
        Window {
            events: VecDeque::new(),
            capacity,
            after: listed,
            unbounded,
        }
    }

    /// Whether this is no cache at all (watches read etcd's history).
    pub(crate) fn is_unbounded(&self) -> bool {
        self.unbounded
    }

    /// The oldest resourceVersion a watch can resume from, minus one (the "Y" of "too old
    /// resource version: X (Y)").
    pub(crate) fn after(&self) -> u64 {
        self.after
    }

    /// The newest resourceVersion the cache has seen for its resource.
    pub(crate) fn newest(&self) -> u64 {
        self.events.back().map_or(self.after, |(rv, _)| *rv)
    }

    /// Adds an event recorded at `now`, resizing and evicting as kube-apiserver's
    /// `updateCache` does.
    pub(crate) fn push(&mut self, size: WatchCacheSize, rv: u64, now: Instant) {
        if self.unbounded {
            return;
        }
        if let WatchCacheSize::Dynamic {
            lower,
            upper,
            fresh,
        } = size
            && self.events.len() >= self.capacity
        {
            let age = |at: Instant| now.saturating_duration_since(at);
            let oldest = self.events.front().map(|(_, at)| *at);
            let quarter = self
                .events
                .get(self.events.len() - self.capacity / 4)
                .map(|(_, at)| *at);
            if oldest.is_some_and(|at| age(at) < fresh) {
                self.capacity = (self.capacity.saturating_mul(2)).min(upper.max(lower));
            } else if quarter.is_some_and(|at| age(at) > fresh) {
                self.capacity = (self.capacity / 2).max(lower.max(1));
            }
        }
        while self.events.len() >= self.capacity {
            self.evict_oldest();
        }
        self.events.push_back((rv, now));
    }

    fn evict_oldest(&mut self) {
        if self.events.pop_front().is_some() {
            // The oldest event still buffered bounds what a watch can resume from.
            self.after = match self.events.front() {
                Some((rv, _)) => rv - 1,
                None => self.after,
            };
        }
    }

    /// Drops every buffered event up to `rv` (the history behind them is gone).
    pub(crate) fn forget_through(&mut self, rv: u64) {
        while self.events.front().is_some_and(|(first, _)| *first <= rv) {
            self.events.pop_front();
        }
        self.after = self.after.max(rv);
    }

    /// The cache relisted at `rv`: nothing before it can be resumed from.
    pub(crate) fn relist(&mut self, rv: u64) {
        self.events.clear();
        self.after = rv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamic() -> WatchCacheSize {
        WatchCacheSize::Dynamic {
            lower: 4,
            upper: 16,
            fresh: Duration::from_secs(75),
        }
    }

    #[test]
    fn a_fixed_window_evicts_its_oldest_event() {
        let now = Instant::now();
        let mut window = Window::new(WatchCacheSize::Fixed(2), 10);
        assert_eq!(window.after(), 10);
        window.push(WatchCacheSize::Fixed(2), 12, now);
        window.push(WatchCacheSize::Fixed(2), 15, now);
        assert_eq!(window.after(), 10);
        window.push(WatchCacheSize::Fixed(2), 20, now);
        // The oldest buffered event is 15: resuming from 14 or later is fine, 13 is too old
        // (kube-apiserver's "oldest - 1", even though nothing happened between 12 and 15).
        assert_eq!(window.after(), 14);
        assert_eq!(window.newest(), 20);
    }

    #[test]
    fn a_dynamic_window_grows_while_its_events_are_fresh_and_shrinks_when_they_are_not() {
        let start = Instant::now();
        let mut window = Window::new(dynamic(), 0);
        for rv in 1..=40 {
            window.push(dynamic(), rv, start);
        }
        // Fresh events: the buffer doubled 4 -> 8 -> 16 and then evicts.
        assert_eq!(window.capacity, 16);
        assert_eq!(window.after(), 24);
        // Much later, events are stale: a full buffer halves.
        let later = start + Duration::from_secs(600);
        window.push(dynamic(), 41, later);
        assert_eq!(window.capacity, 8);
        assert_eq!(window.events.len(), 8);
        assert_eq!(window.after(), 33);
        for rv in 42..=60 {
            // A quiet resource: one change every 100 seconds.
            window.push(dynamic(), rv, later + Duration::from_secs(100 * rv));
        }
        assert_eq!(window.capacity, 4);
        assert_eq!(window.after(), 56);
    }

    #[test]
    fn relisting_and_forgetting_move_the_floor() {
        let now = Instant::now();
        let mut window = Window::new(dynamic(), 0);
        for rv in [3, 5, 9] {
            window.push(dynamic(), rv, now);
        }
        window.forget_through(5);
        assert_eq!(window.after(), 5);
        assert_eq!(window.newest(), 9);
        window.relist(30);
        assert_eq!(window.after(), 30);
        assert_eq!(window.newest(), 30);
        let mut unbounded = Window::new(WatchCacheSize::Unbounded, 0);
        unbounded.push(WatchCacheSize::Unbounded, 7, now);
        assert!(unbounded.is_unbounded());
        assert_eq!(unbounded.after(), 0);
    }
}
