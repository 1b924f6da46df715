//! A least-recently-used cache with string keys (`k8s.io/utils/lru` as the correlator uses it).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// At most `capacity` entries; a lookup or an insert makes an entry the most recent, and an
/// insert beyond the capacity evicts the least recent one.
#[derive(Debug)]
pub(crate) struct Lru<V> {
    capacity: usize,
    entries: HashMap<Arc<str>, (V, u64), foldhash::fast::RandomState>,
    order: BTreeMap<u64, Arc<str>>,
    tick: u64,
}

impl<V> Lru<V> {
    /// An empty cache holding at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Lru<V> {
        Lru {
            capacity: capacity.max(1),
            entries: HashMap::default(),
            order: BTreeMap::new(),
            tick: 0,
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The entry for `key`, made the most recent.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let tick = self.next_tick();
        let (key, (_, last)) = self.entries.get_key_value(key)?;
        let (key, last) = (Arc::clone(key), *last);
        self.order.remove(&last);
        self.order.insert(tick, Arc::clone(&key));
        let entry = self.entries.get_mut(&key)?;
        entry.1 = tick;
        Some(&mut entry.0)
    }

    /// Inserts or replaces the entry for `key`, made the most recent; evicts the least recent
    /// entry when the cache is over capacity.
    pub(crate) fn insert(&mut self, key: &str, value: V) {
        let tick = self.next_tick();
        let found = self
            .entries
            .get_key_value(key)
            .map(|(existing, (_, last))| (Arc::clone(existing), *last));
        if let Some((existing, last)) = found {
            self.order.remove(&last);
            self.order.insert(tick, Arc::clone(&existing));
            self.entries.insert(existing, (value, tick));
            return;
        }
        let key: Arc<str> = Arc::from(key);
        self.order.insert(tick, Arc::clone(&key));
        self.entries.insert(key, (value, tick));
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }

    /// The number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert_eq!(lru.get_mut("a").copied(), Some(1)); // a is now the most recent
        lru.insert("c", 3); // evicts b
        assert_eq!(lru.len(), 2);
        assert!(lru.get_mut("b").is_none());
        assert_eq!(lru.get_mut("a").copied(), Some(1));
        lru.insert("a", 10); // replace keeps the size
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.get_mut("a").copied(), Some(10));
        lru.insert("d", 4); // evicts c (a was touched)
        assert!(lru.get_mut("c").is_none());
        assert_eq!(lru.get_mut("d").copied(), Some(4));
    }

    #[test]
    fn capacity_4096_holds_4096() {
        let mut lru = Lru::new(4096);
        for i in 0..5000 {
            lru.insert(&i.to_string(), i);
        }
        assert_eq!(lru.len(), 4096);
        assert!(lru.get_mut("903").is_none());
        assert_eq!(lru.get_mut("904").copied(), Some(904));
    }
}
