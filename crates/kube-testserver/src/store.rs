//! Type-agnostic object storage with one global resourceVersion counter, per-resource event
//! history (for watch resumption and consistent paging) and a broadcast of live events.
//!
//! Every mutation happens under one lock, which also assigns the resourceVersion and
//! broadcasts the event, so the broadcast order is the resourceVersion order.
//!
//! The history stands for two things of a real API server ([`crate::watchcache`]): etcd's
//! revisions since its last compaction (what lists at an exact resourceVersion and continue
//! tokens read) and each resource's watch-cache window (what watches resume from).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use kube_flowcontrol::clock::SharedClock;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::pathkey::{KeyPath, PathKey};
use crate::status::ApiError;
use crate::stored::StoredObject;
use crate::watchcache::{WatchCacheSize, Window};

/// Where a resource's objects are stored: (group, plural), shared by all versions.
pub type StorageKey = (String, String);

/// (namespace, name); the namespace is empty for cluster-scoped objects.
pub type ObjectKey = (String, String);

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

/// One change, as kept in the history and broadcast to watchers.
#[derive(Debug)]
pub struct StoredEvent {
    /// What happened.
    pub kind: EventType,
    /// The resourceVersion of the change.
    pub rv: u64,
    /// Which collection.
    pub storage: StorageKey,
    /// Namespace and name.
    pub key: ObjectKey,
    /// The object after the change (for a delete: the last state, with the delete's RV).
    pub object: Arc<StoredObject>,
    /// The object before the change (none for a create).
    pub prev: Option<Arc<StoredObject>>,
}

#[derive(Debug)]
struct Collection {
    /// In etcd's order (by path), so a page is a range.
    objects: BTreeMap<PathKey, Arc<StoredObject>>,
    /// The changes a list at an older resourceVersion or a resumed watch may need.
    history: VecDeque<Arc<StoredEvent>>,
    /// etcd's floor: every event with an RV above this one is still in `history`, and a list
    /// at an older resourceVersion gets 410.
    complete_after: u64,
    /// The watch cache's window.
    window: Window,
    /// Cancelled when the watch cache relists: its watches end.
    relisted: CancellationToken,
}

impl Collection {
    fn new(size: WatchCacheSize, compacted: u64) -> Collection {
        Collection {
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            complete_after: compacted,
            window: Window::new(size, compacted),
            relisted: CancellationToken::new(),
        }
    }

    /// Drops the history nothing can read any more: past the hard limit, and behind both
    /// etcd's floor and the watch window.
    fn trim(&mut self, limit: usize) {
        while self.history.len() > limit {
            if let Some(evicted) = self.history.pop_front() {
                self.complete_after = self.complete_after.max(evicted.rv);
                self.window.forget_through(evicted.rv);
            }
        }
        let keep_after = if self.window.is_unbounded() {
            self.complete_after
        } else {
            self.complete_after.min(self.window.after())
        };
        while self.history.front().is_some_and(|e| e.rv <= keep_after) {
            self.history.pop_front();
        }
    }

    /// The watch cache relists at `rv`: its window starts there and its watches end.
    fn relist(&mut self, rv: u64) {
        self.window.relist(rv);
        std::mem::replace(&mut self.relisted, CancellationToken::new()).cancel();
    }
}

#[derive(Debug, Default)]
struct State {
    rv: u64,
    collections: HashMap<StorageKey, Collection>,
    /// etcd's compaction revision.
    compacted: u64,
    /// The revision the compactor recorded at its previous run.
    compactor_rev: Option<u64>,
}

impl State {
    fn collection_mut(&mut self, storage: &StorageKey, size: WatchCacheSize) -> &mut Collection {
        let compacted = self.compacted;
        self.collections
            .entry(storage.clone())
            .or_insert_with(|| Collection::new(size, compacted))
    }
}

/// The object store.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<StoredEvent>>,
    history_limit: usize,
    window_size: WatchCacheSize,
    clock: SharedClock,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// Synthetic ADDED events for the current objects, then changes (RV "" or "0").
    Now,
    /// Changes after this resourceVersion.
    After(u64),
}

/// A watch's starting point: the events to send first and the live feed.
pub struct WatchFeed {
    /// Events to send before the live ones (synthetic ADDED or replayed history).
    pub initial: Vec<Arc<StoredEvent>>,
    /// The live events (all collections: filter by storage key).
    pub live: broadcast::Receiver<Arc<StoredEvent>>,
    /// The resourceVersion the feed starts at.
    pub rv: u64,
    /// Cancelled when the resource's watch cache relists: the watch must end.
    pub relisted: CancellationToken,
}

/// What a list read returns.
pub struct ListSnapshot {
    /// The resourceVersion of the snapshot.
    pub rv: u64,
    /// Objects in the order of their `namespace/name` paths, as etcd returns them.
    pub objects: Vec<Arc<StoredObject>>,
}

/// What one page of a list asks for.
pub struct PageRequest<'a, F> {
    /// Only this namespace's objects, if given.
    pub namespace: Option<&'a str>,
    /// The state as of this resourceVersion (a continue page's), if older than now.
    pub at_rv: Option<u64>,
    /// The first key the page may hold (a continue token's start), in path order.
    pub from: Option<&'a ObjectKey>,
    /// At most this many objects; 0 for all.
    pub limit: usize,
    /// Which objects the list selects.
    pub select: F,
    /// Whether to count the selected objects after a full page (the `remainingItemCount` of
    /// an unfiltered list); otherwise the walk stops at the first one.
    pub count_rest: bool,
}

/// One page of a list.
pub struct Page {
    /// The resourceVersion the page shows.
    pub rv: u64,
    /// The page's objects, in path order.
    pub objects: Vec<Arc<StoredObject>>,
    /// Whether selected objects follow the page.
    pub more: bool,
    /// How many selected objects follow (counted with `count_rest`, else 0 or 1).
    pub remaining: usize,
}

/// Merges the current objects with the states some of them had at an older version (`None`:
/// absent then); both in path order.
fn as_of<'a>(
    current: impl Iterator<Item = (&'a PathKey, &'a Arc<StoredObject>)>,
    then: impl Iterator<Item = (&'a PathKey, &'a Option<Arc<StoredObject>>)>,
) -> impl Iterator<Item = &'a Arc<StoredObject>> {
    let mut current = current.peekable();
    let mut then = then.peekable();
    std::iter::from_fn(move || {
        loop {
            let older = match (current.peek(), then.peek()) {
                (None, None) => return None,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((now, _)), Some((old, _))) => match old.cmp(now) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Equal => {
                        current.next();
                        true
                    }
                    std::cmp::Ordering::Greater => false,
                },
            };
            if !older {
                return current.next().map(|(_, object)| object);
            }
            if let Some((_, Some(object))) = then.next() {
                return Some(object);
            }
        }
    })
}

fn set_resource_version(object: &mut Value, rv: u64) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

impl Store {
    /// A store keeping at most `history_limit` events per resource, with watch-cache windows
    /// of `window_size`, aged by `clock`.
    pub fn new(history_limit: usize, window_size: WatchCacheSize, clock: SharedClock) -> Store {
        let (events, _) = broadcast::channel(65_536);
        Store {
            state: Mutex::new(State::default()),
            events,
            history_limit: history_limit.max(1),
            window_size,
            clock,
        }
    }

    /// The current (latest) resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.state.lock().rv
    }

    /// How many live watch feeds are subscribed.
    pub fn watcher_count(&self) -> usize {
        self.events.receiver_count()
    }

    /// The live change feed of every collection, from now on (no initial events).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.events.subscribe()
    }

    fn record(&self, state: &mut State, event: StoredEvent) {
        let event = Arc::new(event);
        let now = self.clock.now();
        let collection = state.collection_mut(&event.storage, self.window_size);
        collection.window.push(self.window_size, event.rv, now);
        collection.history.push_back(Arc::clone(&event));
        collection.trim(self.history_limit);
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    /// Drops all history up to now: watches and continue tokens from older versions get 410
    /// (open watches go on).
    pub fn compact(&self) {
        let mut state = self.state.lock();
        let rv = state.rv;
        state.compacted = rv;
        for collection in state.collections.values_mut() {
            collection.history.clear();
            collection.complete_after = rv;
            collection.window.relist(rv);
        }
    }

    /// One run of kube-apiserver's etcd compactor: records the current revision (a write:
    /// the revision moves by one) and compacts to the one recorded at the previous run. Watch
    /// caches whose resource did not change since then relist. Returns the revision compacted
    /// to, if any.
    pub fn compactor_run(&self) -> Option<u64> {
        let mut state = self.state.lock();
        state.rv += 1;
        let current = state.rv;
        let target = state.compactor_rev.replace(current)?;
        state.compacted = state.compacted.max(target);
        let mut relisted = 0usize;
        for collection in state.collections.values_mut() {
            collection.complete_after = collection.complete_after.max(target);
            // The cache's etcd watch resumes after its newest event: compacted away?
            if !collection.window.is_unbounded() && collection.window.newest() + 1 < target {
                collection.relist(current);
                relisted += 1;
            }
            collection.trim(self.history_limit);
        }
        tracing::debug!(
            revision = target,
            relisted,
            "etcd compaction (emulated); idle watch caches relisted"
        );
        Some(target)
    }

    /// An API server restart: every watch cache is rebuilt by a list at the current revision
    /// (watches resuming from before it get 410 and open ones end); etcd's data and history
    /// are kept. Returns how many caches were rebuilt.
    pub fn restart_watch_caches(&self) -> usize {
        let mut state = self.state.lock();
        let rv = state.rv;
        let mut rebuilt = 0;
        for collection in state.collections.values_mut() {
            if !collection.window.is_unbounded() {
                collection.relist(rv);
                rebuilt += 1;
            }
        }
        rebuilt
    }

    /// etcd's compaction revision (0 before the first compaction).
    pub fn compacted_revision(&self) -> u64 {
        self.state.lock().compacted
    }

    /// The object at `key`.
    pub fn get(&self, storage: &StorageKey, key: &ObjectKey) -> Option<Arc<Value>> {
        self.get_stored(storage, key)
            .map(|stored| Arc::new(stored.value()))
    }

    /// The object at `key` as stored.
    pub fn get_stored(&self, storage: &StorageKey, key: &ObjectKey) -> Option<Arc<StoredObject>> {
        self.state
            .lock()
            .collections
            .get(storage)
            .and_then(|c| c.objects.get(key as &dyn KeyPath).cloned())
    }

    /// Stores a new object (`make` gets the new resourceVersion and returns the object, or an
    /// error that aborts the create). Fails with `exists` if the key is taken.
    pub fn create(
        &self,
        storage: &StorageKey,
        key: ObjectKey,
        exists: impl FnOnce() -> ApiError,
        make: impl FnOnce(u64) -> Result<Value, ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        let mut state = self.state.lock();
        if state
            .collections
            .get(storage)
            .is_some_and(|c| c.objects.contains_key(&key as &dyn KeyPath))
        {
            return Err(exists());
        }
        let rv = state.rv + 1;
        let mut object = make(rv)?;
        set_resource_version(&mut object, rv);
        state.rv = rv;
        let stored = Arc::new(StoredObject::encode(&object));
        state
            .collection_mut(storage, self.window_size)
            .objects
            .insert(PathKey(key.clone()), Arc::clone(&stored));
        self.record(
            &mut state,
            StoredEvent {
                kind: EventType::Added,
                rv,
                storage: storage.clone(),
                key,
                object: stored,
                prev: None,
            },
        );
        Ok(Arc::new(object))
    }

    /// Replaces the object at `key` with what `change` makes of it. `change` returns
    /// `Ok(None)` for "nothing changed" (no new resourceVersion, no event) and may ask for the
    /// object to be deleted instead ([`Change::Delete`]).
    pub fn update(
        &self,
        storage: &StorageKey,
        key: &ObjectKey,
        missing: impl FnOnce() -> ApiError,
        change: impl FnOnce(&Value) -> Result<Change, ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        let mut state = self.state.lock();
        let Some(current) = state
            .collections
            .get(storage)
            .and_then(|c| c.objects.get(key as &dyn KeyPath).cloned())
        else {
            return Err(missing());
        };
        let rv = state.rv + 1;
        let value = current.value();
        match change(&value)? {
            Change::Unchanged => Ok(Arc::new(value)),
            Change::Replace(mut object) => {
                set_resource_version(&mut object, rv);
                state.rv = rv;
                let stored = Arc::new(StoredObject::encode(&object));
                if let Some(collection) = state.collections.get_mut(storage) {
                    collection
                        .objects
                        .insert(PathKey(key.clone()), Arc::clone(&stored));
                }
                self.record(
                    &mut state,
                    StoredEvent {
                        kind: EventType::Modified,
                        rv,
                        storage: storage.clone(),
                        key: key.clone(),
                        object: stored,
                        prev: Some(current),
                    },
                );
                Ok(Arc::new(object))
            }
            Change::Delete(mut last) => {
                set_resource_version(&mut last, rv);
                state.rv = rv;
                let stored = Arc::new(StoredObject::encode(&last));
                if let Some(collection) = state.collections.get_mut(storage) {
                    collection.objects.remove(key as &dyn KeyPath);
                }
                self.record(
                    &mut state,
                    StoredEvent {
                        kind: EventType::Deleted,
                        rv,
                        storage: storage.clone(),
                        key: key.clone(),
                        object: stored,
                        prev: Some(current),
                    },
                );
                Ok(Arc::new(last))
            }
        }
    }

    /// The objects of a collection (of one namespace, if given) as of now, or as of `at_rv`
    /// when the history still covers it.
    pub fn list(
        &self,
        storage: &StorageKey,
        namespace: Option<&str>,
        at_rv: Option<u64>,
    ) -> Result<ListSnapshot, ApiError> {
        let page = self.list_page(
            storage,
            PageRequest {
                namespace,
                at_rv,
                from: None,
                limit: 0,
                select: |_: &StoredObject| true,
                count_rest: false,
            },
        )?;
        Ok(ListSnapshot {
            rv: page.rv,
            objects: page.objects,
        })
    }

    /// One page of a collection, as of now or as of `at_rv` when the history still covers
    /// it (etcd's consistent read at a revision, which continue tokens use). The page is a
    /// range of the path-ordered objects from `from` on; at an older version, the changes
    /// made since are undone for the keys they touched only, not by copying the collection.
    pub fn list_page<F: Fn(&StoredObject) -> bool>(
        &self,
        storage: &StorageKey,
        request: PageRequest<'_, F>,
    ) -> Result<Page, ApiError> {
        let state = self.state.lock();
        let empty = Collection::new(self.window_size, state.compacted);
        let collection = state.collections.get(storage).unwrap_or(&empty);
        // The first key of the range: the continue token's, else the namespace's first.
        let namespace_start: ObjectKey;
        let from: Bound<&dyn KeyPath> = match (request.from, request.namespace) {
            (Some(from), _) => Bound::Included(from),
            (None, Some(namespace)) => {
                namespace_start = (namespace.to_string(), String::new());
                Bound::Included(&namespace_start)
            }
            (None, None) => Bound::Unbounded,
        };
        let range = (from, Bound::Unbounded);
        let in_namespace = |key: &PathKey| {
            request
                .namespace
                .is_none_or(|namespace| key.0.0 == namespace)
        };
        let current = collection
            .objects
            .range::<dyn KeyPath, _>(range)
            .take_while(|(key, _)| in_namespace(key));
        // A version not older than now reads the current state.
        let (rv, then) = match request.at_rv.filter(|rv| *rv < state.rv) {
            None => (state.rv, BTreeMap::new()),
            Some(rv) => {
                if rv < collection.complete_after {
                    // etcd's ErrCompacted, as the API server words it for a list.
                    return Err(ApiError::expired(
                        "The resourceVersion for the provided list is too old.",
                    ));
                }
                // Each key changed after `rv` as it was then: the state before its oldest
                // change since (none if that change created it).
                let mut then: BTreeMap<PathKey, Option<Arc<StoredObject>>> = BTreeMap::new();
                for event in collection.history.iter().rev() {
                    if event.rv <= rv {
                        break;
                    }
                    then.insert(PathKey(event.key.clone()), event.prev.clone());
                }
                (rv, then)
            }
        };
        let then_range = then
            .range::<dyn KeyPath, _>(range)
            .take_while(|(key, _)| in_namespace(key));
        let mut page = Page {
            rv,
            objects: Vec::new(),
            more: false,
            remaining: 0,
        };
        for object in as_of(current, then_range) {
            if !(request.select)(object) {
                continue;
            }
            if request.limit > 0 && page.objects.len() == request.limit {
                page.more = true;
                page.remaining += 1;
                if !request.count_rest {
                    break;
                }
                continue;
            }
            page.objects.push(Arc::clone(object));
        }
        Ok(page)
    }

    /// Starts a watch on a collection: the first events and the live feed, taken atomically.
    pub fn watch(&self, storage: &StorageKey, start: WatchStart) -> Result<WatchFeed, ApiError> {
        let mut state = self.state.lock();
        let live = self.events.subscribe();
        let rv = state.rv;
        let collection = state.collection_mut(storage, self.window_size);
        let initial = match start {
            WatchStart::Now => collection
                .objects
                .iter()
                .map(|(key, object)| {
                    Arc::new(StoredEvent {
                        kind: EventType::Added,
                        rv,
                        storage: storage.clone(),
                        key: key.0.clone(),
                        object: Arc::clone(object),
                        prev: None,
                    })
                })
                .collect(),
            WatchStart::After(from) => {
                if collection.window.is_unbounded() {
                    // Served from etcd, which resumes at the next revision.
                    if from + 1 < collection.complete_after {
                        return Err(ApiError::expired(
                            "The resourceVersion for the provided watch is too old.",
                        ));
                    }
                } else if from < collection.window.after() {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {from} ({})",
                        collection.window.after()
                    )));
                }
                collection
                    .history
                    .iter()
                    .filter(|e| e.rv > from)
                    .cloned()
                    .collect()
            }
        };
        Ok(WatchFeed {
            initial,
            live,
            rv,
            relisted: collection.relisted.clone(),
        })
    }

    /// Every object key of every collection in `namespace` (for namespace cleanup).
    pub fn keys_in_namespace(&self, namespace: &str) -> Vec<(StorageKey, ObjectKey)> {
        let state = self.state.lock();
        state
            .collections
            .iter()
            .flat_map(|(storage, c)| {
                c.objects
                    .keys()
                    .filter(|k| k.0.0 == namespace)
                    .map(move |k| (storage.clone(), k.0.clone()))
            })
            .collect()
    }

    /// How many objects are stored in all.
    pub fn object_count(&self) -> usize {
        self.state
            .lock()
            .collections
            .values()
            .map(|c| c.objects.len())
            .sum()
    }
}

/// What an update does.
#[derive(Debug)]
pub enum Change {
    /// Nothing: keep the object and its resourceVersion.
    Unchanged,
    /// Store this object.
    Replace(Value),
    /// Remove the object; this is its last state.
    Delete(Value),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods() -> StorageKey {
        (String::new(), "pods".into())
    }

    fn store(history_limit: usize) -> Store {
        Store::new(
            history_limit,
            WatchCacheSize::default(),
            kube_flowcontrol::clock::RealClock::shared(),
        )
    }

    fn configmaps() -> StorageKey {
        (String::new(), "configmaps".into())
    }

    fn key(name: &str) -> ObjectKey {
        ("ns".into(), name.into())
    }

    fn create(store: &Store, name: &str) -> Arc<Value> {
        store
            .create(&pods(), key(name), ApiError::path_not_found, |_| {
                Ok(json!({"metadata": {"name": name}}))
            })
            .unwrap()
    }

    #[test]
    fn resource_versions_are_global_and_increasing() {
        let store = store(100);
        assert_eq!(create(&store, "a")["metadata"]["resourceVersion"], "1");
        assert_eq!(create(&store, "b")["metadata"]["resourceVersion"], "2");
        let updated = store
            .update(&pods(), &key("a"), ApiError::path_not_found, |v| {
                let mut v = v.clone();
                v["spec"] = json!({"x": 1});
                Ok(Change::Replace(v))
            })
            .unwrap();
        assert_eq!(updated["metadata"]["resourceVersion"], "3");
        assert!(
            store
                .create(&pods(), key("a"), ApiError::path_not_found, |_| Ok(json!(
                    {}
                )))
                .is_err()
        );
    }

    #[test]
    fn list_at_an_older_version_undoes_later_changes() {
        let store = store(100);
        create(&store, "a");
        create(&store, "b");
        store
            .update(&pods(), &key("a"), ApiError::path_not_found, |v| {
                Ok(Change::Delete(v.clone()))
            })
            .unwrap();
        create(&store, "c");
        let names = |s: ListSnapshot| -> Vec<String> {
            s.objects
                .iter()
                .map(|o| o.value()["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            names(store.list(&pods(), None, Some(2)).unwrap()),
            ["a", "b"]
        );
        assert_eq!(names(store.list(&pods(), None, None).unwrap()), ["b", "c"]);
    }

    #[test]
    fn history_limit_makes_old_versions_expire() {
        let store = store(2);
        for name in ["a", "b", "c", "d"] {
            create(&store, name);
        }
        assert!(store.watch(&pods(), WatchStart::After(2)).is_ok());
        let err = store.watch(&pods(), WatchStart::After(1)).err().unwrap();
        assert_eq!(err.code, 410);
        assert_eq!(err.message, "too old resource version: 1 (2)");
        store.compact();
        assert_eq!(
            store
                .watch(&pods(), WatchStart::After(3))
                .err()
                .unwrap()
                .code,
            410
        );
    }

    #[test]
    fn watch_now_starts_with_the_current_objects() {
        let store = store(10);
        create(&store, "a");
        create(&store, "b");
        let mut feed = store.watch(&pods(), WatchStart::Now).unwrap();
        assert_eq!(feed.initial.len(), 2);
        assert_eq!(feed.rv, 2);
        create(&store, "c");
        let live = feed.live.try_recv().unwrap();
        assert_eq!(live.rv, 3);
        assert_eq!(live.kind, EventType::Added);
    }

    #[test]
    fn a_full_watch_window_expires_watches_but_not_exact_lists() {
        let store = Store::new(
            100,
            WatchCacheSize::Fixed(2),
            kube_flowcontrol::clock::RealClock::shared(),
        );
        for name in ["a", "b", "c", "d"] {
            create(&store, name);
        }
        // The window holds 3 and 4: resuming from 2 is fine, from 1 is too old.
        assert!(store.watch(&pods(), WatchStart::After(2)).is_ok());
        let err = store.watch(&pods(), WatchStart::After(1)).err().unwrap();
        assert_eq!(err.message, "too old resource version: 1 (2)");
        // etcd still has revision 1.
        assert_eq!(store.list(&pods(), None, Some(1)).unwrap().objects.len(), 1);
    }

    #[test]
    fn compaction_expires_lists_and_relists_idle_watch_caches() {
        let store = store(1000);
        create(&store, "a"); // 1
        let busy = store
            .create(&configmaps(), key("cm"), ApiError::path_not_found, |_| {
                Ok(json!({"metadata": {"name": "cm"}}))
            })
            .unwrap(); // 2
        assert_eq!(busy["metadata"]["resourceVersion"], "2");
        let feed = store.watch(&pods(), WatchStart::After(1)).unwrap();
        // The first run only records the revision (and moves it: 3).
        assert_eq!(store.compactor_run(), None);
        assert_eq!(store.current_rv(), 3);
        store
            .update(&configmaps(), &key("cm"), ApiError::path_not_found, |v| {
                let mut v = v.clone();
                v["data"] = json!({"x": "1"});
                Ok(Change::Replace(v))
            })
            .unwrap(); // 4
        // The second compacts to 3 (and writes 5): pods saw nothing since 1, their cache
        // relists at 5 and its watches end; configmaps changed at 4 and keep their window.
        assert_eq!(store.compactor_run(), Some(3));
        assert_eq!(store.compacted_revision(), 3);
        assert!(feed.relisted.is_cancelled());
        let err = store.watch(&pods(), WatchStart::After(1)).err().unwrap();
        assert_eq!(err.code, 410);
        assert_eq!(err.message, "too old resource version: 1 (5)");
        assert!(store.watch(&configmaps(), WatchStart::After(2)).is_ok());
        let err = store.list(&configmaps(), None, Some(2)).err().unwrap();
        assert_eq!(
            err.message,
            "The resourceVersion for the provided list is too old."
        );
        assert!(store.list(&configmaps(), None, Some(4)).is_ok());
    }

    #[test]
    fn without_a_watch_cache_watches_read_etcd_history() {
        let store = Store::new(
            1000,
            WatchCacheSize::Unbounded,
            kube_flowcontrol::clock::RealClock::shared(),
        );
        for name in ["a", "b", "c"] {
            create(&store, name);
        }
        store.compactor_run(); // records 4
        create(&store, "d"); // 5
        store.compactor_run(); // compacts to 4
        assert!(store.watch(&pods(), WatchStart::After(3)).is_ok());
        let err = store.watch(&pods(), WatchStart::After(2)).err().unwrap();
        assert_eq!(
            err.message,
            "The resourceVersion for the provided watch is too old."
        );
    }
    #[test]
    fn lists_are_in_path_order_across_prefix_namespaces() {
        let store = store(100);
        for (ns, name) in [
            ("team", "a"),
            ("team-a", "b"),
            ("team", "z"),
            ("team0", "c"),
        ] {
            store
                .create(
                    &pods(),
                    (ns.into(), name.into()),
                    ApiError::path_not_found,
                    |_| Ok(json!({"metadata": {"name": name, "namespace": ns}})),
                )
                .unwrap();
        }
        let names = |s: ListSnapshot| -> Vec<String> {
            s.objects
                .iter()
                .map(|o| o.value()["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            names(store.list(&pods(), None, None).unwrap()),
            ["b", "a", "z", "c"]
        );
        assert_eq!(
            names(store.list(&pods(), Some("team"), None).unwrap()),
            ["a", "z"]
        );
        assert!(names(store.list(&pods(), Some("team-"), None).unwrap()).is_empty());
    }

    fn page(store: &Store, at_rv: Option<u64>, from: Option<&str>, limit: usize) -> Page {
        let from = from.map(key);
        store
            .list_page(
                &pods(),
                PageRequest {
                    namespace: Some("ns"),
                    at_rv,
                    from: from.as_ref(),
                    limit,
                    select: |_: &StoredObject| true,
                    count_rest: true,
                },
            )
            .unwrap()
    }

    fn page_names(page: &Page) -> Vec<String> {
        page.objects
            .iter()
            .map(|o| o.value()["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn continue_pages_show_the_first_page_version() {
        let store = store(100);
        for name in ["a", "b", "c", "d", "e"] {
            create(&store, name);
        }
        let first = page(&store, None, None, 2);
        assert_eq!(page_names(&first), ["a", "b"]);
        assert_eq!((first.rv, first.more, first.remaining), (5, true, 3));
        // Changes after the first page: none shows in the next pages.
        store
            .update(&pods(), &key("c"), ApiError::path_not_found, |_| {
                Ok(Change::Delete(json!({"metadata": {"name": "c"}})))
            })
            .unwrap();
        create(&store, "bb");
        store
            .update(&pods(), &key("d"), ApiError::path_not_found, |v| {
                let mut v = v.clone();
                v["spec"] = json!({"x": 1});
                Ok(Change::Replace(v))
            })
            .unwrap();
        store
            .update(&pods(), &key("d"), ApiError::path_not_found, |_| {
                Ok(Change::Delete(json!({"metadata": {"name": "d"}})))
            })
            .unwrap();
        create(&store, "f");
        let second = page(&store, Some(first.rv), Some("b\u{0}"), 2);
        assert_eq!(page_names(&second), ["c", "d"]);
        assert_eq!(
            second.objects[1].value()["metadata"]["resourceVersion"],
            "4"
        );
        assert_eq!((second.rv, second.more, second.remaining), (5, true, 1));
        let third = page(&store, Some(first.rv), Some("d\u{0}"), 2);
        assert_eq!(page_names(&third), ["e"]);
        assert!(!third.more);
        // The current state, for comparison.
        assert_eq!(
            page_names(&page(&store, None, Some("b\u{0}"), 0)),
            ["bb", "e", "f"]
        );
        // A filter: the walk stops at the first selected object after a full page.
        let selected = store
            .list_page(
                &pods(),
                PageRequest {
                    namespace: None,
                    at_rv: Some(first.rv),
                    from: None,
                    limit: 1,
                    select: |o: &StoredObject| o.value()["metadata"]["name"] != "a",
                    count_rest: false,
                },
            )
            .unwrap();
        assert_eq!(page_names(&selected), ["b"]);
        assert_eq!((selected.more, selected.remaining), (true, 1));
    }
}
