//! What the controller wrote and its informer has not shown yet (client-go's
//! `UIDTrackingControllerExpectations`, by pod name).
//!
//! A worker that created two pods and finished may be asked to reconcile the same PodSet again
//! before the pod informer delivers those pods: reading the cache alone, it would create them
//! once more. So every creation and deletion is recorded here before it is sent, and the
//! reconcile reads the cache corrected by what is still pending. An entry ends when the
//! informer shows the change (the pod appears; the pod is gone), when the write fails, or
//! after a time to live (a change the informer can never show, such as a pod created and
//! deleted by someone else while the watch was down).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long an unconfirmed write is trusted (client-go: 5 minutes; the informer's relist
/// brings every change well before).
pub const DEFAULT_EXPECTATIONS_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Pending {
    creating: HashMap<String, Instant>,
    deleting: HashMap<String, Instant>,
    taken: HashMap<String, Instant>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.creating.is_empty() && self.deleting.is_empty() && self.taken.is_empty()
    }
}

/// Writes not yet seen by the informer, per PodSet key (`namespace/name`).
#[derive(Debug)]
pub struct Expectations {
    ttl: Duration,
    pending: Mutex<HashMap<String, Pending>>,
}

/// The pending writes of one PodSet, as [`Expectations::pending`] returns them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PendingWrites {
    /// Pods created (or being created) that the cache does not hold yet.
    pub creating: HashSet<String>,
    /// Pods deleted (or being deleted) that the cache still holds.
    pub deleting: HashSet<String>,
    /// Names held by pods this PodSet does not control (a creation was refused): not to be
    /// tried again before the time to live.
    pub taken: HashSet<String>,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations::new(DEFAULT_EXPECTATIONS_TTL)
    }
}

impl Expectations {
    /// Expectations trusted for `ttl`.
    pub fn new(ttl: Duration) -> Expectations {
        Expectations {
            ttl,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Records that `pod` is about to be created for `key`.
    pub fn expect_create(&self, key: &str, pod: &str) {
        let mut pending = self.pending.lock();
        let entry = pending.entry(key.to_string()).or_default();
        entry.deleting.remove(pod);
        entry.creating.insert(pod.to_string(), Instant::now());
    }

    /// Records that `pod` is about to be deleted for `key`.
    pub fn expect_delete(&self, key: &str, pod: &str) {
        let mut pending = self.pending.lock();
        let entry = pending.entry(key.to_string()).or_default();
        entry.creating.remove(pod);
        entry.deleting.insert(pod.to_string(), Instant::now());
    }

    /// The informer shows `pod` (added or updated): a pending creation of it is done.
    pub fn observed_present(&self, key: &str, pod: &str) {
        self.update(key, |p| {
            p.creating.remove(pod);
        });
    }

    /// The informer shows `pod` gone: pending writes of it are done.
    pub fn observed_gone(&self, key: &str, pod: &str) {
        self.update(key, |p| {
            p.creating.remove(pod);
            p.deleting.remove(pod);
        });
    }

    /// The creation of `pod` failed: nothing to wait for.
    pub fn create_failed(&self, key: &str, pod: &str) {
        self.update(key, |p| {
            p.creating.remove(pod);
        });
    }

    /// The deletion of `pod` failed: nothing to wait for.
    pub fn delete_failed(&self, key: &str, pod: &str) {
        self.update(key, |p| {
            p.deleting.remove(pod);
        });
    }

    /// A creation of `pod` was refused because another owner's pod has the name: it is not
    /// pending, and the name is avoided for the time to live.
    pub fn name_taken(&self, key: &str, pod: &str) {
        let mut pending = self.pending.lock();
        let entry = pending.entry(key.to_string()).or_default();
        entry.creating.remove(pod);
        entry.taken.insert(pod.to_string(), Instant::now());
    }

    /// Forgets everything about `key` (its PodSet is gone).
    pub fn forget(&self, key: &str) {
        self.pending.lock().remove(key);
    }

    /// The writes of `key` still pending, given the names of the pods the cache holds:
    /// creations the cache shows and deletions it no longer shows are done and dropped, and
    /// so are entries older than the time to live.
    pub fn pending(&self, key: &str, cached: &HashSet<&str>) -> PendingWrites {
        let now = Instant::now();
        let ttl = self.ttl;
        let mut pending = self.pending.lock();
        let Some(entry) = pending.get_mut(key) else {
            return PendingWrites::default();
        };
        let fresh = |at: &Instant| now.saturating_duration_since(*at) < ttl;
        entry
            .creating
            .retain(|name, at| !cached.contains(name.as_str()) && fresh(at));
        entry
            .deleting
            .retain(|name, at| cached.contains(name.as_str()) && fresh(at));
        entry.taken.retain(|_, at| fresh(at));
        let writes = PendingWrites {
            creating: entry.creating.keys().cloned().collect(),
            deleting: entry.deleting.keys().cloned().collect(),
            taken: entry.taken.keys().cloned().collect(),
        };
        if entry.is_empty() {
            pending.remove(key);
        }
        writes
    }

    /// How many PodSets have pending writes.
    pub fn len(&self) -> usize {
        self.pending.lock().len()
    }

    /// Whether no PodSet has pending writes.
    pub fn is_empty(&self) -> bool {
        self.pending.lock().is_empty()
    }

    fn update(&self, key: &str, f: impl FnOnce(&mut Pending)) {
        let mut pending = self.pending.lock();
        if let Some(entry) = pending.get_mut(key) {
            f(entry);
            if entry.is_empty() {
                pending.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<'a>(items: &[&'a str]) -> HashSet<&'a str> {
        items.iter().copied().collect()
    }

    #[test]
    fn a_creation_is_pending_until_the_cache_shows_it() {
        let e = Expectations::default();
        e.expect_create("ns/web", "web-0");
        let p = e.pending("ns/web", &names(&[]));
        assert!(p.creating.contains("web-0"));
        let p = e.pending("ns/web", &names(&["web-0"]));
        assert!(p.creating.is_empty());
        assert!(e.is_empty());
    }

    #[test]
    fn a_deletion_is_pending_while_the_cache_holds_the_pod() {
        let e = Expectations::default();
        e.expect_delete("ns/web", "web-1");
        assert!(
            e.pending("ns/web", &names(&["web-1"]))
                .deleting
                .contains("web-1")
        );
        assert!(e.pending("ns/web", &names(&[])).deleting.is_empty());
    }

    #[test]
    fn informer_observations_and_failures_end_entries() {
        let e = Expectations::default();
        e.expect_create("ns/web", "web-0");
        e.expect_create("ns/web", "web-1");
        e.expect_delete("ns/web", "web-2");
        e.observed_present("ns/web", "web-0");
        e.create_failed("ns/web", "web-1");
        assert_eq!(e.len(), 1);
        e.observed_gone("ns/web", "web-2");
        assert!(e.is_empty());
        e.expect_delete("ns/web", "web-3");
        e.delete_failed("ns/web", "web-3");
        assert!(e.is_empty());
    }

    #[test]
    fn taken_names_are_avoided_until_they_expire() {
        let e = Expectations::default();
        e.expect_create("ns/web", "web-0");
        e.name_taken("ns/web", "web-0");
        let p = e.pending("ns/web", &names(&[]));
        assert!(p.creating.is_empty());
        assert!(p.taken.contains("web-0"));
        let e = Expectations::new(Duration::ZERO);
        e.name_taken("ns/web", "web-0");
        assert!(e.pending("ns/web", &names(&[])).taken.is_empty());
        assert!(e.is_empty());
    }

    #[test]
    fn entries_expire() {
        let e = Expectations::new(Duration::ZERO);
        e.expect_create("ns/web", "web-0");
        assert!(e.pending("ns/web", &names(&[])).creating.is_empty());
        assert!(e.is_empty());
    }

    #[test]
    fn forget_drops_a_podset() {
        let e = Expectations::default();
        e.expect_create("ns/a", "a-0");
        e.expect_create("ns/b", "b-0");
        e.forget("ns/a");
        assert_eq!(e.len(), 1);
    }
}
