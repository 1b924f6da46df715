//! What the queue's lock protects: the items, their dirty/processing flags and the FIFO.
//!
//! Each tracked item (dirty, or being processed) is stored once, in a slot of a slab; a
//! hashbrown `HashTable` of slot numbers finds it by value and the FIFO holds slot numbers. So
//! an add moves the caller's item into its slot without copying it, `get` reaches the item
//! through its slot without hashing it again (the one copy is the item handed out), and `done`
//! of an item added meanwhile puts its slot back in the FIFO without a copy either. Per
//! add/get/done cycle: two hashes, two probes, one copy. The hashes are computed by the
//! caller before it takes the lock ([`Hasher`]), so the lock is held only for the probes.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};
use std::time::Instant;

use hashbrown::HashTable;

use crate::metrics::QueueMetrics;

/// The item is dirty: it needs (re)processing.
const DIRTY: u8 = 1;
/// The item has been handed out by `get` and `done` has not been called for it yet.
const PROCESSING: u8 = 2;

/// One tracked item. It is in the FIFO exactly while it is dirty and not being processed.
struct Entry<T> {
    item: T,
    hash: u64,
    flags: u8,
    /// When the item became dirty (only tracked with metrics).
    added_at: Option<Instant>,
    /// When the item was handed out (only tracked with metrics).
    started_at: Option<Instant>,
}

impl<T> Entry<T> {
    /// A new dirty item.
    #[inline]
    fn new_dirty(item: T, hash: u64, metrics: Option<&QueueMetrics>) -> Entry<T> {
        let added_at = metrics.map(|metrics| {
            metrics.add();
            metrics.now()
        });
        Entry {
            item,
            hash,
            flags: DIRTY,
            added_at,
            started_at: None,
        }
    }

    /// An add for an item the queue already tracks. It never goes into the FIFO here: either it
    /// is already waiting (deduplicated) or it is being processed (`done` will queue it again).
    #[inline]
    fn mark_dirty(&mut self, metrics: Option<&QueueMetrics>) {
        if self.flags & DIRTY != 0 {
            return;
        }
        self.flags |= DIRTY;
        if let Some(metrics) = metrics {
            metrics.add();
            self.added_at.get_or_insert_with(|| metrics.now());
        }
    }
}

/// Hashes items for one queue's index; lives outside the lock, so items are hashed before it is
/// taken.
#[derive(Debug, Default)]
pub(super) struct Hasher(foldhash::fast::RandomState);

impl Hasher {
    /// The hash of `item` in the queue's index (a borrowed form hashes like its owner).
    #[inline]
    pub(super) fn hash<Q: Hash + ?Sized>(&self, item: &Q) -> u64 {
        self.0.hash_one(item)
    }
}

/// What a `get` found.
pub(super) enum Pop<T> {
    Item(T),
    Empty,
    ShutDown,
}

/// Everything behind the queue's lock.
pub(super) struct State<T> {
    /// Tracked items; `None` marks a free slot (listed in `free`).
    slots: Vec<Option<Entry<T>>>,
    free: Vec<usize>,
    /// Slot numbers, hashed by their item.
    index: HashTable<usize>,
    /// The order in which dirty items that are not being processed are handed out.
    fifo: VecDeque<usize>,
    /// How many items are being processed.
    pub(super) processing: usize,
    pub(super) shutting_down: bool,
    pub(super) drain: bool,
    /// Getters waiting for an item (so `add` only notifies when someone listens).
    pub(super) idle_getters: usize,
}

impl<T> State<T> {
    pub(super) fn new() -> State<T> {
        State {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            fifo: VecDeque::new(),
            processing: 0,
            shutting_down: false,
            drain: false,
            idle_getters: 0,
        }
    }

    /// How many items wait in the FIFO.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.fifo.len()
    }

    /// When each item being processed was handed out (tracked only with metrics).
    pub(super) fn processing_since(&self) -> impl Iterator<Item = Instant> + '_ {
        self.slots
            .iter()
            .flatten()
            .filter(|entry| entry.flags & PROCESSING != 0)
            .filter_map(|entry| entry.started_at)
    }

    /// Stores a new entry and returns its slot.
    #[inline]
    fn store(&mut self, entry: Entry<T>) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        }
    }
}

impl<T: Hash + Eq + Clone> State<T> {
    /// Marks `item` (whose [`Hasher::hash`] is `hash`) dirty; returns whether it went into the
    /// FIFO.
    #[inline]
    pub(super) fn insert(&mut self, hash: u64, item: T, metrics: Option<&QueueMetrics>) -> bool {
        let slots = &self.slots;
        let found = self
            .index
            .find(hash, |&slot| slot_item(slots, slot) == Some(&item))
            .copied();
        if let Some(slot) = found {
            if let Some(entry) = self.slots[slot].as_mut() {
                entry.mark_dirty(metrics);
            }
            return false;
        }
        self.insert_new(Entry::new_dirty(item, hash, metrics));
        true
    }

    /// [`insert`](State::insert) from a borrowed item: copies it only if it is new.
    #[inline]
    pub(super) fn insert_ref<Q>(
        &mut self,
        hash: u64,
        item: &Q,
        metrics: Option<&QueueMetrics>,
    ) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = T> + ?Sized,
    {
        let slots = &self.slots;
        let found = self
            .index
            .find(hash, |&slot| {
                slot_item(slots, slot).is_some_and(|stored| stored.borrow() == item)
            })
            .copied();
        if let Some(slot) = found {
            if let Some(entry) = self.slots[slot].as_mut() {
                entry.mark_dirty(metrics);
            }
            return false;
        }
        self.insert_new(Entry::new_dirty(item.to_owned(), hash, metrics));
        true
    }

    #[inline]
    fn insert_new(&mut self, entry: Entry<T>) {
        let hash = entry.hash;
        let slot = self.store(entry);
        let slots = &self.slots;
        self.index
            .insert_unique(hash, slot, |&slot| slot_hash(slots, slot));
        self.fifo.push_back(slot);
    }

    #[inline]
    pub(super) fn pop(&mut self, metrics: Option<&QueueMetrics>) -> Pop<T> {
        loop {
            let Some(slot) = self.fifo.pop_front() else {
                return if self.shutting_down {
                    Pop::ShutDown
                } else {
                    Pop::Empty
                };
            };
            let Some(entry) = self.slots[slot].as_mut() else {
                // Every slot in the FIFO holds an item; should that ever not hold, skip the slot
                // rather than hand out nothing.
                tracing::error!("kube-workqueue: queued slot had no item; skipped");
                continue;
            };
            self.processing += 1;
            entry.flags = PROCESSING;
            if let Some(metrics) = metrics {
                let now = metrics.now();
                metrics.get(entry.added_at.take(), now);
                entry.started_at = Some(now);
            }
            return Pop::Item(entry.item.clone());
        }
    }

    /// Marks `item` (whose [`Hasher::hash`] is `hash`) done; returns `None` if it was not being
    /// processed, else whether it went back into the FIFO.
    #[inline]
    pub(super) fn finish(
        &mut self,
        hash: u64,
        item: &T,
        metrics: Option<&QueueMetrics>,
    ) -> Option<bool> {
        let slots = &self.slots;
        let Ok(found) = self
            .index
            .find_entry(hash, |&slot| slot_item(slots, slot) == Some(item))
        else {
            return None;
        };
        let slot = *found.get();
        let entry = self.slots[slot].as_mut()?;
        if entry.flags & PROCESSING == 0 {
            // Dirty but not handed out: `done` was called without `get`.
            return None;
        }
        self.processing -= 1;
        if let Some(metrics) = metrics {
            metrics.done(entry.started_at.take(), metrics.now());
        }
        if entry.flags & DIRTY == 0 {
            found.remove();
            self.slots[slot] = None;
            self.free.push(slot);
            return Some(false);
        }
        // Added again while it was being processed: process it again.
        entry.flags = DIRTY;
        self.fifo.push_back(slot);
        Some(true)
    }
}

#[inline]
fn slot_item<T>(slots: &[Option<Entry<T>>], slot: usize) -> Option<&T> {
    slots.get(slot)?.as_ref().map(|entry| &entry.item)
}

#[inline]
fn slot_hash<T>(slots: &[Option<Entry<T>>], slot: usize) -> u64 {
    slots
        .get(slot)
        .and_then(Option::as_ref)
        .map_or(0, |entry| entry.hash)
}
