//! Per-key exponential backoff: client-go's `flowcontrol.Backoff`.
//!
//! Each key has its own delay. [`next`](PerKeyBackoff::next) records a failure: the first one
//! (or the first after the entry expired) sets the delay to the initial duration, each further
//! one doubles it, capped at the maximum. An entry expires when an event comes more than twice
//! the maximum after its last update; [`gc`](PerKeyBackoff::gc) drops entries idle that long.
//! With a jitter factor `j > 0`, each step adds a random `[0, j) x delay` (the first step too;
//! the first step's jitter is not capped, exactly as in client-go).
//!
//! ```
//! use std::time::Duration;
//! use kube_flowcontrol::backoff::PerKeyBackoff;
//! use kube_flowcontrol::clock::{Clock, FakeClock};
//!
//! let clock = FakeClock::new();
//! let backoff = PerKeyBackoff::<String>::with_clock(
//!     Duration::from_secs(1), Duration::from_secs(4), clock.shared());
//! for expected in [1, 2, 4, 4] {
//!     backoff.next("pod-a", clock.now());
//!     assert_eq!(backoff.get("pod-a"), Duration::from_secs(expected));
//! }
//! backoff.reset("pod-a");
//! assert_eq!(backoff.get("pod-a"), Duration::ZERO);
//! ```

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::clock::{RealClock, SharedClock, signed_nanos_between};

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: Instant,
}

type EntryMap<K> = HashMap<K, Entry, foldhash::fast::RandomState>;

/// Exponential backoff tracked per key (client-go's `flowcontrol.Backoff`).
#[doc(alias = "Backoff")]
pub struct PerKeyBackoff<K = String> {
    clock: SharedClock,
    initial: Duration,
    max: Duration,
    max_jitter_factor: f64,
    entries: RwLock<EntryMap<K>>,
}

impl<K> fmt::Debug for PerKeyBackoff<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerKeyBackoff")
            .field("initial", &self.initial)
            .field("max", &self.max)
            .field("max_jitter_factor", &self.max_jitter_factor)
            .field("entries", &self.entries.read().len())
            .finish()
    }
}

/// Whether an entry last updated at `last_update` is stale for an event at `event_time`: true
/// when the event is more than twice the maximum backoff after the update.
fn has_expired(event_time: Instant, last_update: Instant, max: Duration) -> bool {
    i128::from(signed_nanos_between(event_time, last_update)) > 2 * max.as_nanos() as i128
}

impl<K: Hash + Eq> PerKeyBackoff<K> {
    /// A backoff from `initial` up to `max`, on the real clock, without jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self::with_clock(initial, max, RealClock::shared())
    }

    /// A backoff on the given clock, without jitter.
    pub fn with_clock(initial: Duration, max: Duration, clock: SharedClock) -> Self {
        Self::with_jitter(initial, max, 0.0, clock)
    }

    /// A backoff on the given clock adding up to `max_jitter_factor x delay` of random jitter
    /// to each step (`0` disables jitter).
    pub fn with_jitter(
        initial: Duration,
        max: Duration,
        max_jitter_factor: f64,
        clock: SharedClock,
    ) -> Self {
        PerKeyBackoff {
            clock,
            initial,
            max,
            max_jitter_factor: if max_jitter_factor.is_finite() {
                max_jitter_factor.max(0.0)
            } else {
                0.0
            },
            entries: RwLock::new(EntryMap::default()),
        }
    }

    fn jitter(&self, delay: Duration) -> Duration {
        if self.max_jitter_factor <= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(fastrand::f64() * self.max_jitter_factor * delay.as_secs_f64())
            .unwrap_or(Duration::MAX)
    }

    /// The current delay of `key` (zero if it has none).
    pub fn get<Q>(&self, key: &Q) -> Duration
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries
            .read()
            .get(key)
            .map_or(Duration::ZERO, |entry| entry.backoff)
    }

    /// Records a failure of `key` at `event_time`: starts or doubles its delay.
    pub fn next<Q>(&self, key: &Q, event_time: Instant)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let now = self.clock.now();
        let mut entries = self.entries.write();
        match entries.get_mut(key) {
            Some(entry) if !has_expired(event_time, entry.last_update, self.max) => {
                let delay = entry
                    .backoff
                    .saturating_mul(2)
                    .saturating_add(self.jitter(entry.backoff));
                entry.backoff = delay.min(self.max);
                entry.last_update = now;
            }
            Some(entry) => {
                entry.backoff = self.initial + self.jitter(self.initial);
                entry.last_update = now;
            }
            None => {
                let entry = Entry {
                    backoff: self.initial + self.jitter(self.initial),
                    last_update: now,
                };
                entries.insert(key.to_owned(), entry);
            }
        }
    }

    /// Forgets `key` (after a success).
    pub fn reset<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.write().remove(key);
    }

    /// Whether less than the current delay of `key` has passed since `event_time` (false when
    /// the key has no entry or its entry expired).
    pub fn is_in_backoff_since<Q>(&self, key: &Q, event_time: Instant) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.read();
        let Some(entry) = entries.get(key) else {
            return false;
        };
        if has_expired(event_time, entry.last_update, self.max) {
            return false;
        }
        let since = signed_nanos_between(self.clock.now(), event_time);
        i128::from(since) < entry.backoff.as_nanos() as i128
    }

    /// Whether `event_time` is less than the current delay of `key` after its last update
    /// (false when the key has no entry or its entry expired).
    pub fn is_in_backoff_since_update<Q>(&self, key: &Q, event_time: Instant) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.read();
        let Some(entry) = entries.get(key) else {
            return false;
        };
        if has_expired(event_time, entry.last_update, self.max) {
            return false;
        }
        let since_update = signed_nanos_between(event_time, entry.last_update);
        i128::from(since_update) < entry.backoff.as_nanos() as i128
    }

    /// Drops every entry not updated for more than twice the maximum delay.
    pub fn gc(&self) {
        let now = self.clock.now();
        self.entries
            .write()
            .retain(|_, entry| !has_expired(now, entry.last_update, self.max));
    }

    /// Removes the entry of `key` (same as [`reset`](PerKeyBackoff::reset)).
    pub fn delete_entry<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.reset(key);
    }

    /// How many keys have an entry.
    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    /// Whether no key has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FakeClock};

    const SEC: Duration = Duration::from_secs(1);

    fn fake(initial: Duration, max: Duration) -> (FakeClock, PerKeyBackoff<String>) {
        let clock = FakeClock::new();
        let backoff = PerKeyBackoff::with_clock(initial, max, clock.shared());
        (clock, backoff)
    }

    #[test]
    fn doubles_and_caps() {
        // client-go TestSlowBackoff: 1s, 2s, 4s, ... capped at 120s.
        let (clock, b) = fake(SEC, 120 * SEC);
        let mut expected = SEC;
        for _ in 0..10 {
            b.next("id", clock.now());
            assert_eq!(b.get("id"), expected);
            expected = (expected * 2).min(120 * SEC);
            clock.step(expected);
        }
        b.reset("id");
        assert_eq!(b.get("id"), Duration::ZERO);
    }

    #[test]
    fn entry_expires_after_twice_max() {
        // client-go TestBackoffReset / TestBackoffHighWaterMark.
        let (clock, b) = fake(SEC, 5 * SEC);
        for _ in 0..4 {
            b.next("id", clock.now());
        }
        assert_eq!(b.get("id"), 5 * SEC);
        // An event exactly 2 x max later is not yet expired; one nanosecond more is.
        clock.step(10 * SEC);
        b.next("id", clock.now());
        assert_eq!(b.get("id"), 5 * SEC);
        clock.step(10 * SEC + Duration::from_nanos(1));
        b.next("id", clock.now());
        assert_eq!(b.get("id"), SEC);
    }

    #[test]
    fn is_in_backoff_since() {
        // client-go TestIsInBackOffSinceUpdate shape.
        let (clock, b) = fake(SEC, 10 * SEC);
        let start = clock.now();
        assert!(!b.is_in_backoff_since("id", start));
        b.next("id", start);
        assert!(b.is_in_backoff_since("id", start));
        clock.step(SEC);
        assert!(!b.is_in_backoff_since("id", start));
        b.next("id", clock.now()); // delay 2s, updated at +1s
        assert!(b.is_in_backoff_since("id", start + SEC));
        assert!(b.is_in_backoff_since_update("id", start + 2 * SEC));
        assert!(!b.is_in_backoff_since_update("id", start + 3 * SEC));
        // An event far after the update: the entry counts as expired.
        assert!(!b.is_in_backoff_since_update("id", start + 30 * SEC));
        assert!(!b.is_in_backoff_since("id", start + 30 * SEC));
    }

    #[test]
    fn gc_drops_idle_entries() {
        let (clock, b) = fake(SEC, 5 * SEC);
        b.next("old", clock.now());
        clock.step(6 * SEC);
        b.next("fresh", clock.now());
        clock.step(5 * SEC);
        b.gc();
        assert_eq!(b.get("old"), Duration::ZERO);
        assert_eq!(b.get("fresh"), SEC);
        assert_eq!(b.len(), 1);
        b.delete_entry("fresh");
        assert!(b.is_empty());
    }

    #[test]
    fn jitter_stays_within_the_factor() {
        let clock = FakeClock::new();
        let b = PerKeyBackoff::<String>::with_jitter(SEC, 100 * SEC, 0.5, clock.shared());
        b.next("id", clock.now());
        let first = b.get("id");
        assert!(first >= SEC && first < SEC + SEC / 2, "{first:?}");
        b.next("id", clock.now());
        let second = b.get("id");
        assert!(
            second >= first * 2 && second < first * 2 + first / 2,
            "{second:?}"
        );
    }

    #[test]
    fn works_with_non_string_keys() {
        let clock = FakeClock::new();
        let b = PerKeyBackoff::<u64>::with_clock(SEC, 4 * SEC, clock.shared());
        b.next(&7, clock.now());
        b.next(&7, clock.now());
        assert_eq!(b.get(&7), 2 * SEC);
        assert_eq!(b.get(&8), Duration::ZERO);
    }
}
