//! [`Indexer`]: client-go's thread-safe indexed store (`Store`, `Indexer`, `ThreadSafeStore`).

use std::fmt;
use std::sync::Arc;

use kube_apimachinery::Object;
use parking_lot::{Mutex, RwLock};

use crate::index::{IndexError, IndexValues, Indexers, NAMESPACE_INDEX, meta_namespace_index};
use crate::key::{meta_namespace_key, with_key};
use crate::store::{LastRv, Set, Store};

/// A thread-safe store of objects by key, with named secondary indices (client-go's
/// `cache.Indexer` over a `ThreadSafeStore`).
///
/// Objects are kept as `Arc<K>`: reading one (get, list, by_index) clones a pointer, never
/// the object. The handle is cheap to clone; clones share the store.
///
/// **Concurrency.** The items and every index live under one `RwLock`: readers run in parallel
/// and never block each other, and a write (which updates the item and all its index entries
/// before releasing the lock) is never seen half-done. Keys and index values are computed
/// before the lock is taken, and [`replace`](Indexer::replace) builds the new content (items
/// and indices) outside the lock and swaps it in, so readers wait only for the swap.
///
/// ```
/// use std::sync::Arc;
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_apimachinery::Object;
/// use kube_cache::{Indexer, Indexers, NAMESPACE_INDEX};
///
/// fn pod(ns: &str, name: &str, app: &str) -> Pod {
///     let mut pod = Pod::default();
///     pod.meta_mut().namespace = Some(ns.into());
///     pod.meta_mut().name = Some(name.into());
///     pod.meta_mut().labels = Some([("app".to_string(), app.to_string())].into());
///     pod
/// }
///
/// let indexer = Indexer::<Pod>::builder()
///     .indexers(Indexers::new().with("app", |pod: &Pod, out| out.extend(pod.labels().get("app"))))
///     .build()
///     .unwrap();
/// indexer.add(pod("prod", "web-0", "web"));
/// indexer.add(pod("prod", "db-0", "db"));
/// indexer.add(pod("dev", "web-0", "web"));
///
/// assert_eq!(indexer.get_by_key("prod/web-0").unwrap().name(), "web-0");
/// assert_eq!(indexer.by_index(NAMESPACE_INDEX, "prod").unwrap().len(), 2);
/// assert_eq!(indexer.index_keys("app", "web").unwrap(), ["dev/web-0", "prod/web-0"]);
/// ```
pub struct Indexer<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    store: RwLock<Store<K>>,
    /// Serializes the writers that rebuild the whole content ([`Indexer::replace`],
    /// [`Indexer::add_indexers`]) without holding `store` while they compute.
    rebuild: Mutex<()>,
}

impl<K> Clone for Indexer<K> {
    fn clone(&self) -> Self {
        Indexer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for Indexer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let store = self.shared.store.read();
        f.debug_struct("Indexer")
            .field("items", &store.items.len())
            .field(
                "indices",
                &store.indices.iter().map(|i| &i.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Builds an [`Indexer`]: the namespace index is included unless
/// [`without_namespace_index`](IndexerBuilder::without_namespace_index) is called.
pub struct IndexerBuilder<K> {
    namespace_index: bool,
    indexers: Indexers<K>,
}

impl<K: Object + Send + Sync + 'static> IndexerBuilder<K> {
    /// Leaves out the built-in namespace index (a plain client-go `Store`).
    pub fn without_namespace_index(mut self) -> Self {
        self.namespace_index = false;
        self
    }

    /// Adds index functions.
    pub fn indexers(mut self, indexers: Indexers<K>) -> Self {
        self.indexers.entries.extend(indexers.entries);
        self
    }

    /// Adds one index function.
    pub fn index<F>(mut self, name: impl Into<String>, index: F) -> Self
    where
        F: for<'a> Fn(&'a K, &mut IndexValues<'a>) + Send + Sync + 'static,
    {
        self.indexers = self.indexers.with(name, index);
        self
    }

    /// Builds the indexer; fails when two index functions share a name.
    pub fn build(self) -> Result<Indexer<K>, IndexError> {
        let mut indexers = Indexers::new();
        if self.namespace_index {
            indexers = indexers.with(NAMESPACE_INDEX, meta_namespace_index::<K>);
        }
        indexers.entries.extend(self.indexers.entries);
        Ok(Indexer {
            shared: Arc::new(Shared {
                store: RwLock::new(Store::new(indexers)?),
                rebuild: Mutex::new(()),
            }),
        })
    }
}

impl<K: Object + Send + Sync + 'static> Default for Indexer<K> {
    fn default() -> Self {
        Indexer::new()
    }
}

impl<K: Object + Send + Sync + 'static> Indexer<K> {
    /// An empty indexer with the namespace index (client-go's
    /// `NewIndexer(MetaNamespaceKeyFunc, Indexers{NamespaceIndex: MetaNamespaceIndexFunc})`).
    pub fn new() -> Indexer<K> {
        IndexerBuilder {
            namespace_index: true,
            indexers: Indexers::new(),
        }
        .build()
        .expect("a single index cannot conflict") // ok: one built-in index, no user names
    }

    /// A builder (more index functions, or none at all).
    pub fn builder() -> IndexerBuilder<K> {
        IndexerBuilder {
            namespace_index: true,
            indexers: Indexers::new(),
        }
    }

    /// Adds an object, or replaces the one with the same key (client-go's `Add`).
    pub fn add(&self, obj: impl Into<Arc<K>>) {
        let obj = obj.into();
        with_key(obj.as_ref(), |key| {
            self.shared.store.write().upsert(key, Arc::clone(&obj))
        });
    }

    /// Same as [`add`](Indexer::add) (client-go's `Update`); returns the previous object.
    pub fn update(&self, obj: impl Into<Arc<K>>) -> Option<Arc<K>> {
        let obj = obj.into();
        with_key(obj.as_ref(), |key| {
            self.shared.store.write().upsert(key, Arc::clone(&obj))
        })
    }

    /// Removes the object with this object's key; the last seen resource version becomes the
    /// given object's (client-go's `Delete`, `DeleteWithObject`). Returns the removed object.
    pub fn delete(&self, obj: impl Into<Arc<K>>) -> Option<Arc<K>> {
        let obj = obj.into();
        with_key(obj.as_ref(), |key| {
            let mut store = self.shared.store.write();
            let removed = store.remove(key);
            store.last_rv = LastRv::Object(Arc::clone(&obj));
            removed
        })
    }

    /// Removes the object under `key`; returns it (client-go's `ThreadSafeStore.Delete`).
    pub fn delete_key(&self, key: &str) -> Option<Arc<K>> {
        self.shared.store.write().remove(key)
    }

    /// The stored object with the same key as `obj` (client-go's `Get`).
    pub fn get(&self, obj: &K) -> Option<Arc<K>> {
        with_key(obj, |key| self.get_by_key(key))
    }

    /// The object under `key` (client-go's `GetByKey`).
    pub fn get_by_key(&self, key: &str) -> Option<Arc<K>> {
        self.shared.store.read().get(key).cloned()
    }

    /// Calls `f` with the object under `key`, under the read lock, and returns its result:
    /// a lookup that neither clones the `Arc` nor touches the object's reference count (a
    /// cache miss on a large store), for reads of a few fields. Keep `f` short (writers wait
    /// for it) and do not write to this indexer from inside it.
    ///
    /// ```
    /// # use k8s_openapi::api::core::v1::Pod;
    /// # use kube_apimachinery::Object;
    /// # let store = kube_cache::Indexer::<Pod>::new();
    /// # let mut pod = Pod::default();
    /// # pod.meta_mut().namespace = Some("prod".into());
    /// # pod.meta_mut().name = Some("web-0".into());
    /// # pod.meta_mut().resource_version = Some("7".into());
    /// # store.add(pod);
    /// let rv = store.read_by_key("prod/web-0", |pod| pod.resource_version().map(String::from));
    /// assert_eq!(rv, Some(Some("7".to_string())));
    /// assert_eq!(store.read_by_key("prod/web-1", |_| ()), None);
    /// ```
    pub fn read_by_key<R>(&self, key: &str, f: impl FnOnce(&K) -> R) -> Option<R> {
        self.shared.store.read().get(key).map(|obj| f(obj))
    }

    /// Whether an object is stored under `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.shared.store.read().items.contains_key(key)
    }

    /// Every object, in no particular order (client-go's `List`).
    pub fn list(&self) -> Vec<Arc<K>> {
        let store = self.shared.store.read();
        let mut out = Vec::with_capacity(store.items.len());
        out.extend(store.objects().cloned());
        out
    }

    /// Every key, in no particular order (client-go's `ListKeys`).
    pub fn list_keys(&self) -> Vec<String> {
        self.shared
            .store
            .read()
            .items
            .keys()
            .map(|k| k.to_string())
            .collect()
    }

    /// How many objects are stored.
    pub fn len(&self) -> usize {
        self.shared.store.read().items.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with each object under one read lock: a visit without building a `Vec` of
    /// every object. Keep `f` short (writers wait for it) and do not write to a queue that
    /// reads this indexer as its known objects from inside it: the queue takes its own lock
    /// before this one, so the reverse order can deadlock.
    pub fn for_each(&self, mut f: impl FnMut(&Arc<K>)) {
        for obj in self.shared.store.read().objects() {
            f(obj);
        }
    }

    /// Replaces the whole content with `items` (a relist) and remembers `resource_version`
    /// (client-go's `Replace`). The new items and indices are built outside the lock and
    /// swapped in at once: a reader sees the old content or the new, never a mix. An object
    /// given twice under one key keeps the last.
    pub fn replace<I>(&self, items: I, resource_version: &str)
    where
        I: IntoIterator,
        I::Item: Into<Arc<K>>,
    {
        let _rebuild = self.shared.rebuild.lock();
        let mut fresh = self.shared.store.read().empty_like();
        fresh.fill(items.into_iter().map(|obj| {
            let obj = obj.into();
            (meta_namespace_key(obj.as_ref()), obj)
        }));
        fresh.last_rv = LastRv::Explicit(resource_version.into());
        *self.shared.store.write() = fresh;
    }

    /// Does nothing: an indexer has nothing to resync (client-go's `cache.Resync` returns nil
    /// too). Resyncs happen in the queue ([`DeltaFifo::resync`](crate::DeltaFifo::resync)),
    /// which reads this store as its known objects.
    pub fn resync(&self) {}

    /// The resource version of the last write: the last object added, updated or deleted
    /// through [`delete`](Indexer::delete), or the version given to
    /// [`replace`](Indexer::replace) or [`bookmark`](Indexer::bookmark); `""` before any
    /// (client-go's `LastStoreSyncResourceVersion`, without its feature gate).
    pub fn last_sync_resource_version(&self) -> String {
        match &self.shared.store.read().last_rv {
            LastRv::Unset => String::new(),
            LastRv::Object(obj) => obj.resource_version().unwrap_or("").to_owned(),
            LastRv::Explicit(rv) => rv.to_string(),
        }
    }

    /// Records a bookmark's resource version (client-go's `Bookmark`).
    pub fn bookmark(&self, resource_version: &str) {
        self.shared.store.write().last_rv = LastRv::Explicit(resource_version.into());
    }

    /// The objects sharing at least one value of index `index_name` with `obj` (client-go's
    /// `Index`).
    pub fn index(&self, index_name: &str, obj: &K) -> Result<Vec<Arc<K>>, IndexError> {
        let store = self.shared.store.read();
        let index = store.index(index_name)?;
        let mut values = IndexValues::new();
        (index.func)(obj, &mut values);
        if values.len() == 1 {
            // One value (the common case): the bucket holds each object once.
            return Ok(values
                .iter()
                .next()
                .and_then(|value| index.values.get(value))
                .map(|bucket| {
                    bucket
                        .values()
                        .filter_map(|at| store.obj(*at).cloned())
                        .collect()
                })
                .unwrap_or_default());
        }
        let mut found: Set<usize> = Set::default();
        for value in values.iter() {
            if let Some(bucket) = index.values.get(value) {
                found.extend(bucket.values().copied());
            }
        }
        Ok(found
            .into_iter()
            .filter_map(|at| store.obj(at).cloned())
            .collect())
    }

    /// The objects indexed under `value` by index `index_name` (client-go's `ByIndex`).
    pub fn by_index(&self, index_name: &str, value: &str) -> Result<Vec<Arc<K>>, IndexError> {
        let store = self.shared.store.read();
        let index = store.index(index_name)?;
        Ok(match index.values.get(value) {
            Some(bucket) => bucket
                .values()
                .filter_map(|at| store.obj(*at).cloned())
                .collect(),
            None => Vec::new(),
        })
    }

    /// The keys of the objects indexed under `value` by index `index_name`, sorted
    /// (client-go's `IndexKeys`).
    pub fn index_keys(&self, index_name: &str, value: &str) -> Result<Vec<String>, IndexError> {
        let store = self.shared.store.read();
        let index = store.index(index_name)?;
        let mut keys: Vec<String> = match index.values.get(value) {
            Some(bucket) => bucket.keys().map(|k| k.to_string()).collect(),
            None => Vec::new(),
        };
        drop(store);
        keys.sort_unstable();
        Ok(keys)
    }

    /// Every value index `index_name` has objects under, in no particular order; empty for an
    /// unknown index (client-go's `ListIndexFuncValues`).
    pub fn list_index_func_values(&self, index_name: &str) -> Vec<String> {
        let store = self.shared.store.read();
        match store.index(index_name) {
            Ok(index) => index.values.keys().map(|v| v.to_string()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The names of the index functions, in the order installed (client-go's `GetIndexers`).
    pub fn index_names(&self) -> Vec<String> {
        let store = self.shared.store.read();
        store.indices.iter().map(|i| i.name.clone()).collect()
    }

    /// Installs more index functions and indexes the objects already stored with them
    /// (client-go's `AddIndexers`, which also indexes existing items since v1.27). A name
    /// already installed, or given twice, is refused with [`IndexError::Conflict`] and
    /// nothing is installed. The new indices are built under the write lock, so a reader
    /// never sees one half-built (readers wait for the build: add indices early).
    pub fn add_indexers(&self, indexers: Indexers<K>) -> Result<(), IndexError> {
        let _rebuild = self.shared.rebuild.lock();
        // Refuse conflicts before doing any work.
        {
            let store = self.shared.store.read();
            let mut probe = store.empty_like();
            probe.add_indexers(indexers.clone())?;
        }
        self.shared.store.write().add_indexers(indexers)
    }
}
