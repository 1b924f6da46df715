//! The unlocked content of an [`Indexer`](crate::Indexer): items by key and one inverted index
//! per index function (client-go's `threadSafeMap` and `storeIndex`, without the lock).
//!
//! Each item keeps the values it is indexed under (shared with the index maps), so an update
//! or a delete never recomputes the old object's values: it compares the new values with the
//! kept ones, which are hot in cache (one namespace string serves every object in it), and
//! never reads the old object. Objects live in slots (`objs`) that the items and the index
//! buckets point to: an update swaps the object in its slot and, when its index values stay
//! the same, touches no index; a read by index goes from bucket to slot to object, with no
//! lookup per key in the item map.

use std::sync::Arc;

use crate::index::{IndexError, IndexFn, IndexValues, Indexers};

pub(crate) type Hasher = foldhash::fast::RandomState;
pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, Hasher>;
pub(crate) type Set<K> = hashbrown::HashSet<K, Hasher>;

/// The values one item is indexed under by one index.
#[derive(Default)]
pub(crate) enum Values {
    #[default]
    None,
    One(Arc<str>),
    Many(Box<[Arc<str>]>),
}

impl Values {
    fn as_slice(&self) -> &[Arc<str>] {
        match self {
            Values::None => &[],
            Values::One(v) => std::slice::from_ref(v),
            Values::Many(vs) => vs,
        }
    }

    fn same_as(&self, new: &IndexValues<'_>) -> bool {
        let old = self.as_slice();
        old.len() == new.len() && old.iter().zip(new.iter()).all(|(o, n)| &**o == n)
    }
}

/// Where a stored object is (its slot in [`Store::objs`]) and the values it is indexed
/// under, one [`Values`] per index.
pub(crate) struct Entry {
    slot: usize,
    values: Box<[Values]>,
}

/// The items indexed under one value: each item's key and the slot of its object, so a read
/// by index finds the objects without a lookup per key in the item map, and a write that
/// keeps an item's values (most updates) leaves the buckets alone.
pub(crate) type Bucket = Map<Arc<str>, usize>;

/// One index: its function and, for each value, the items indexed under it.
pub(crate) struct Index<K> {
    pub(crate) name: String,
    pub(crate) func: IndexFn<K>,
    pub(crate) values: Map<Arc<str>, Bucket>,
}

impl<K> Index<K> {
    fn new(name: String, func: IndexFn<K>) -> Index<K> {
        Index {
            name,
            func,
            values: Map::default(),
        }
    }

    /// Moves the item `key`, whose object is in slot `at`, from the values in `slot` to the
    /// values of `new` (none when removing), and records the new values in `slot`.
    fn update(&mut self, slot: &mut Values, new: Option<&K>, key: &Arc<str>, at: usize) {
        let mut new_values = IndexValues::new();
        if let Some(new) = new {
            (self.func)(new, &mut new_values);
            if slot.same_as(&new_values) {
                return;
            }
        }
        for value in slot.as_slice() {
            if let Some(bucket) = self.values.get_mut(&**value) {
                bucket.remove(&**key);
                if bucket.is_empty() {
                    self.values.remove(&**value);
                }
            }
        }
        let mut kept: Vec<Arc<str>> = Vec::with_capacity(new_values.len());
        for value in new_values.iter() {
            let shared = match self.values.get_key_value_mut(value) {
                Some((shared, bucket)) => {
                    bucket.insert(Arc::clone(key), at);
                    Arc::clone(shared)
                }
                None => {
                    let shared: Arc<str> = Arc::from(value);
                    let mut bucket = Bucket::default();
                    bucket.insert(Arc::clone(key), at);
                    self.values.insert(Arc::clone(&shared), bucket);
                    shared
                }
            };
            if !kept.contains(&shared) {
                kept.push(shared);
            }
        }
        *slot = match kept.len() {
            0 => Values::None,
            1 => Values::One(kept.pop().expect("one value")), // ok: len is 1
            _ => Values::Many(kept.into_boxed_slice()),
        };
    }
}

/// The resource version the store last saw (client-go's `LastStoreSyncResourceVersion`): read
/// from the last object written, so a write never allocates for it.
pub(crate) enum LastRv<K> {
    Unset,
    Object(Arc<K>),
    Explicit(Box<str>),
}

/// Items and indices; every method keeps the indices equal to a recomputation from the items.
pub(crate) struct Store<K> {
    pub(crate) items: Map<Arc<str>, Entry>,
    /// The objects, by slot; `None` for a free slot (listed in `free`). An update swaps the
    /// object in its slot, so the index buckets, which hold slots, stay as they are.
    pub(crate) objs: Vec<Option<Arc<K>>>,
    free: Vec<usize>,
    pub(crate) indices: Vec<Index<K>>,
    pub(crate) last_rv: LastRv<K>,
}

impl<K> Store<K> {
    pub(crate) fn new(indexers: Indexers<K>) -> Result<Store<K>, IndexError> {
        let mut store = Store {
            items: Map::default(),
            objs: Vec::new(),
            free: Vec::new(),
            indices: Vec::new(),
            last_rv: LastRv::Unset,
        };
        store.add_indexers(indexers)?;
        Ok(store)
    }

    /// An empty store with the same index functions.
    pub(crate) fn empty_like(&self) -> Store<K> {
        Store {
            items: Map::default(),
            objs: Vec::new(),
            free: Vec::new(),
            indices: self
                .indices
                .iter()
                .map(|index| Index::new(index.name.clone(), Arc::clone(&index.func)))
                .collect(),
            last_rv: LastRv::Unset,
        }
    }

    pub(crate) fn index(&self, name: &str) -> Result<&Index<K>, IndexError> {
        self.indices
            .iter()
            .find(|index| index.name == name)
            .ok_or_else(|| IndexError::NoSuchIndex {
                name: name.to_owned(),
            })
    }

    /// The object under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Arc<K>> {
        self.items.get(key).and_then(|entry| self.obj(entry.slot))
    }

    /// The object in slot `at`.
    pub(crate) fn obj(&self, at: usize) -> Option<&Arc<K>> {
        self.objs.get(at).and_then(Option::as_ref)
    }

    /// Every stored object.
    pub(crate) fn objects(&self) -> impl Iterator<Item = &Arc<K>> + '_ {
        self.objs.iter().flatten()
    }

    /// Adds or replaces the item under `key`; returns the previous one.
    pub(crate) fn upsert(&mut self, key: &str, obj: Arc<K>) -> Option<Arc<K>> {
        let old = match self.items.get_key_value_mut(key) {
            Some((existing, entry)) => {
                let existing = Arc::clone(existing);
                for (index, slot) in self.indices.iter_mut().zip(entry.values.iter_mut()) {
                    index.update(slot, Some(&*obj), &existing, entry.slot);
                }
                self.objs
                    .get_mut(entry.slot)
                    .and_then(|held| held.replace(Arc::clone(&obj)))
            }
            None => {
                let key: Arc<str> = Arc::from(key);
                let entry = self.new_entry(&key, Arc::clone(&obj));
                self.items.insert(key, entry);
                None
            }
        };
        self.last_rv = LastRv::Object(obj);
        old
    }

    fn new_entry(&mut self, key: &Arc<str>, obj: Arc<K>) -> Entry {
        let at = match self.free.pop() {
            Some(at) => at,
            None => {
                self.objs.push(None);
                self.objs.len() - 1
            }
        };
        let mut values: Box<[Values]> = self.indices.iter().map(|_| Values::None).collect();
        for (index, slot) in self.indices.iter_mut().zip(values.iter_mut()) {
            index.update(slot, Some(&*obj), key, at);
        }
        self.objs[at] = Some(obj);
        Entry { slot: at, values }
    }

    /// Removes the item under `key`; returns it.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Arc<K>> {
        let (key, mut entry) = self.items.remove_entry(key)?;
        for (index, slot) in self.indices.iter_mut().zip(entry.values.iter_mut()) {
            index.update(slot, None, &key, entry.slot);
        }
        self.free.push(entry.slot);
        self.objs.get_mut(entry.slot).and_then(Option::take)
    }

    /// Fills the store from scratch (the store must be empty). A key given twice keeps the
    /// last object, as client-go's map does.
    pub(crate) fn fill(&mut self, items: impl IntoIterator<Item = (String, Arc<K>)>) {
        let items = items.into_iter();
        self.items.reserve(items.size_hint().0);
        for (key, obj) in items {
            self.upsert(&key, obj);
        }
        self.last_rv = LastRv::Unset;
    }

    /// Installs index functions and indexes the items already stored with them.
    pub(crate) fn add_indexers(&mut self, indexers: Indexers<K>) -> Result<(), IndexError> {
        let mut conflicts: Vec<String> = Vec::new();
        for (i, (name, _)) in indexers.entries.iter().enumerate() {
            let taken = self.indices.iter().any(|index| &index.name == name)
                || indexers.entries[..i].iter().any(|(other, _)| other == name);
            if taken && !conflicts.contains(name) {
                conflicts.push(name.clone());
            }
        }
        if !conflicts.is_empty() {
            conflicts.sort();
            return Err(IndexError::Conflict { names: conflicts });
        }
        for (name, func) in indexers.entries {
            let mut index = Index::new(name, func);
            for (key, entry) in self.items.iter_mut() {
                let mut values = std::mem::take(&mut entry.values).into_vec();
                let mut slot = Values::None;
                let obj = self.objs.get(entry.slot).and_then(Option::as_deref);
                index.update(&mut slot, obj, key, entry.slot);
                values.push(slot);
                entry.values = values.into_boxed_slice();
            }
            self.indices.push(index);
        }
        Ok(())
    }
}
