//! The unlocked content of an [`Indexer`](crate::Indexer): items by key and one inverted index
//! per index function (client-go's `threadSafeMap` and `storeIndex`, without the lock).

use std::sync::Arc;

use crate::index::{IndexError, IndexFn, IndexValues, Indexers};

pub(crate) type Hasher = foldhash::fast::RandomState;
pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, Hasher>;
pub(crate) type Set<K> = hashbrown::HashSet<K, Hasher>;

/// One index: its function and, for each value, the keys of the items indexed under it.
pub(crate) struct Index<K> {
    pub(crate) name: String,
    pub(crate) func: IndexFn<K>,
    pub(crate) values: Map<Box<str>, Set<Arc<str>>>,
}

impl<K> Index<K> {
    fn new(name: String, func: IndexFn<K>) -> Index<K> {
        Index {
            name,
            func,
            values: Map::default(),
        }
    }

    /// Moves `key` from the values of `old` to the values of `new` (either may be absent).
    fn update(&mut self, old: Option<&K>, new: Option<&K>, key: &Arc<str>) {
        let mut old_values = IndexValues::new();
        let mut new_values = IndexValues::new();
        if let Some(old) = old {
            (self.func)(old, &mut old_values);
        }
        if let Some(new) = new {
            (self.func)(new, &mut new_values);
        }
        if old.is_some() && new.is_some() && old_values == new_values {
            return;
        }
        for value in old_values.iter() {
            if let Some(set) = self.values.get_mut(value) {
                set.remove(&**key);
                if set.is_empty() {
                    self.values.remove(value);
                }
            }
        }
        for value in new_values.iter() {
            match self.values.get_mut(value) {
                Some(set) => {
                    set.insert(Arc::clone(key));
                }
                None => {
                    let mut set = Set::default();
                    set.insert(Arc::clone(key));
                    self.values.insert(Box::from(value), set);
                }
            }
        }
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
    pub(crate) items: Map<Arc<str>, Arc<K>>,
    pub(crate) indices: Vec<Index<K>>,
    pub(crate) last_rv: LastRv<K>,
}

impl<K> Store<K> {
    pub(crate) fn new(indexers: Indexers<K>) -> Result<Store<K>, IndexError> {
        let mut store = Store {
            items: Map::default(),
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

    /// Adds or replaces the item under `key`; returns the previous one.
    pub(crate) fn upsert(&mut self, key: &str, obj: Arc<K>) -> Option<Arc<K>> {
        let (key, old) = match self.items.get_key_value_mut(key) {
            Some((existing, slot)) => {
                let old = std::mem::replace(slot, Arc::clone(&obj));
                (Arc::clone(existing), Some(old))
            }
            None => {
                let key: Arc<str> = Arc::from(key);
                self.items.insert(Arc::clone(&key), Arc::clone(&obj));
                (key, None)
            }
        };
        for index in &mut self.indices {
            index.update(old.as_deref(), Some(&obj), &key);
        }
        self.last_rv = LastRv::Object(obj);
        old
    }

    /// Removes the item under `key`; returns it.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Arc<K>> {
        let (key, old) = self.items.remove_entry(key)?;
        for index in &mut self.indices {
            index.update(Some(&old), None, &key);
        }
        Some(old)
    }

    /// Fills the store from scratch (the store must be empty).
    pub(crate) fn fill(&mut self, items: impl IntoIterator<Item = (String, Arc<K>)>) {
        let items = items.into_iter();
        self.items.reserve(items.size_hint().0);
        for (key, obj) in items {
            // A key given twice keeps the last object, as client-go's map does.
            let key: &str = &key;
            match self.items.get_key_value_mut(key) {
                Some((existing, slot)) => {
                    let old = std::mem::replace(slot, Arc::clone(&obj));
                    let existing = Arc::clone(existing);
                    for index in &mut self.indices {
                        index.update(Some(&old), Some(&obj), &existing);
                    }
                }
                None => {
                    let key: Arc<str> = Arc::from(key);
                    for index in &mut self.indices {
                        index.update(None, Some(&obj), &key);
                    }
                    self.items.insert(key, obj);
                }
            }
        }
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
            for (key, obj) in &self.items {
                index.update(None, Some(obj), key);
            }
            self.indices.push(index);
        }
        Ok(())
    }
}
