//! [`DeltaFifo`]: client-go's `DeltaFIFO`.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use kube_apimachinery::Object;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::delta::{Delta, DeltaType, Deltas, KeyListerGetter};
use crate::key::{
    DeletedFinalStateUnknown, KeyBuf, ObjectOrTombstone, meta_namespace_key, with_key,
};
use crate::queue::{PopError, ProcessError, SyncState, Wakeup, wait_synced};
use crate::store::{Map, Set};

/// A producer-consumer queue of per-object delta lists (client-go's `DeltaFIFO`).
///
/// * Each key is queued once; every change made while it waits is appended to its
///   [`Deltas`], so a consumer sees everything that happened since it last looked.
/// * Two trailing deletions collapse into one (the one that is not a tombstone wins).
/// * [`replace`](DeltaFifo::replace) (a relist) queues `Sync` (or `Replaced`, with
///   [`emit_delta_type_replaced`](DeltaFifoBuilder::emit_delta_type_replaced)) for every
///   listed object, and a `Deleted` [`DeletedFinalStateUnknown`] for every object that is
///   queued or known but not listed.
/// * [`resync`](DeltaFifo::resync) queues `Sync` for every known object without pending
///   deltas.
/// * [`pop`](DeltaFifo::pop) hands one key's whole delta list to a process function, which
///   runs under the queue lock (so it can update the known-objects store atomically with
///   the pop, as client-go's informer does) and may ask for a re-queue.
/// * [`has_synced`](DeltaFifo::has_synced) is true once the items of the first `replace`
///   have all been popped (or once anything else was written first).
///
/// The *known objects* (usually the informer's [`Indexer`](crate::Indexer)) decide which
/// objects `delete`, `replace` and `resync` consider to exist.
///
/// ```
/// use std::sync::Arc;
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kube_apimachinery::Object;
/// use kube_cache::{DeltaFifo, DeltaType, Indexer, ProcessError};
///
/// fn cm(name: &str) -> ConfigMap {
///     let mut cm = ConfigMap::default();
///     cm.meta_mut().namespace = Some("default".into());
///     cm.meta_mut().name = Some(name.into());
///     cm
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = Indexer::<ConfigMap>::new();
/// let fifo = DeltaFifo::builder().known_objects(store.clone()).build();
/// fifo.add(cm("a"));
/// fifo.update(cm("a"));
/// fifo.delete(cm("a"));
///
/// // The process function runs under the queue lock: update the store there.
/// let deltas = fifo
///     .pop(|deltas, _initial| {
///         for delta in deltas {
///             match delta.kind {
///                 DeltaType::Deleted => { store.delete_key(&delta.key()); }
///                 _ => { store.update(Arc::clone(delta.object.object().unwrap())); }
///             }
///         }
///         Ok::<(), ProcessError<()>>(())
///     })
///     .await
///     .unwrap();
/// let kinds: Vec<_> = deltas.iter().map(|d| d.kind).collect();
/// assert_eq!(kinds, [DeltaType::Added, DeltaType::Updated, DeltaType::Deleted]);
/// assert!(store.is_empty());
/// # }
/// ```
pub struct DeltaFifo<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    name: String,
    state: Mutex<State<K>>,
    wakeup: Wakeup,
    synced: watch::Sender<bool>,
    known: Option<Arc<dyn KeyListerGetter<K>>>,
    emit_delta_type_replaced: bool,
}

struct State<K> {
    /// Key → its pending deltas (never empty). A key is in `items` iff it is in `queue`.
    items: Map<Arc<str>, Deltas<K>>,
    /// Keys in FIFO order, no duplicates.
    queue: VecDeque<Arc<str>>,
    sync: SyncState,
    closed: bool,
}

impl<K> Clone for DeltaFifo<K> {
    fn clone(&self) -> Self {
        DeltaFifo {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for DeltaFifo<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("DeltaFifo")
            .field("name", &self.shared.name)
            .field("queued", &state.queue.len())
            .field("closed", &state.closed)
            .field("synced", &state.sync.synced)
            .finish()
    }
}

/// Builds a [`DeltaFifo`] (client-go's `DeltaFIFOOptions`).
pub struct DeltaFifoBuilder<K> {
    name: String,
    known: Option<Arc<dyn KeyListerGetter<K>>>,
    emit_delta_type_replaced: bool,
}

impl<K: Object + Send + Sync + 'static> DeltaFifoBuilder<K> {
    /// The name used in logs (default `DeltaFIFO`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The store of objects the consumer knows (client-go's `KnownObjects`); without one,
    /// `replace` only detects deletions of queued objects and `resync` does nothing.
    pub fn known_objects(mut self, known: impl KeyListerGetter<K> + 'static) -> Self {
        self.known = Some(Arc::new(known));
        self
    }

    /// Queue `Replaced` instead of `Sync` for the objects of a `replace` (client-go's
    /// `EmitDeltaTypeReplaced`, default false for compatibility).
    pub fn emit_delta_type_replaced(mut self, emit: bool) -> Self {
        self.emit_delta_type_replaced = emit;
        self
    }

    /// Builds the queue.
    pub fn build(self) -> DeltaFifo<K> {
        DeltaFifo {
            shared: Arc::new(Shared {
                name: self.name,
                state: Mutex::new(State {
                    items: Map::default(),
                    queue: VecDeque::new(),
                    sync: SyncState::new(),
                    closed: false,
                }),
                wakeup: Wakeup::new(),
                synced: watch::Sender::new(false),
                known: self.known,
                emit_delta_type_replaced: self.emit_delta_type_replaced,
            }),
        }
    }
}

impl<K: Object + Send + Sync + 'static> Default for DeltaFifo<K> {
    fn default() -> Self {
        DeltaFifo::builder().build()
    }
}

/// The key of an object or tombstone (client-go's `DeltaFIFO.KeyOf`).
fn key_of<K: Object>(obj: &ObjectOrTombstone<K>) -> String {
    match obj {
        ObjectOrTombstone::Object(obj) => meta_namespace_key(obj.as_ref()),
        ObjectOrTombstone::Tombstone(t) => t.key.clone(),
    }
}

/// Collapses two trailing deletions into one: the older is kept unless it is a tombstone
/// (client-go's `dedupDeltas`/`isDeletionDup`).
fn dedup_deltas<K>(deltas: &mut Deltas<K>) {
    let n = deltas.len();
    if n < 2 {
        return;
    }
    if deltas[n - 1].kind != DeltaType::Deleted || deltas[n - 2].kind != DeltaType::Deleted {
        return;
    }
    let newer = deltas.pop().expect("two deltas"); // ok: n >= 2 checked above
    if deltas[n - 2].object.is_tombstone() {
        deltas[n - 2] = newer;
    }
}

impl<K: Object + Send + Sync + 'static> DeltaFifo<K> {
    /// A builder.
    pub fn builder() -> DeltaFifoBuilder<K> {
        DeltaFifoBuilder {
            name: "DeltaFIFO".to_owned(),
            known: None,
            emit_delta_type_replaced: false,
        }
    }

    /// Queues an `Added` delta (client-go's `Add`).
    pub fn add(&self, obj: impl Into<Arc<K>>) {
        self.write(DeltaType::Added, obj.into());
    }

    /// Queues an `Updated` delta (client-go's `Update`).
    pub fn update(&self, obj: impl Into<Arc<K>>) {
        self.write(DeltaType::Updated, obj.into());
    }

    fn write(&self, kind: DeltaType, obj: Arc<K>) {
        // The key does not borrow the object, which moves into the queue without an Arc
        // clone.
        let key = KeyBuf::of(obj.as_ref());
        let mut state = self.shared.state.lock();
        state.sync.populate(&self.shared.synced);
        self.queue_action_locked(
            &mut state,
            kind,
            ObjectOrTombstone::Object(obj),
            key.as_str(),
        );
    }

    /// Queues a `Deleted` delta, unless the object is neither queued nor known: then it was
    /// presumably deleted by a relist already and is not reported twice (client-go's
    /// `Delete`).
    pub fn delete(&self, obj: impl Into<Arc<K>>) {
        let obj = obj.into();
        with_key(obj.as_ref(), |key| {
            let mut state = self.shared.state.lock();
            state.sync.populate(&self.shared.synced);
            let queued = state.items.contains_key(key);
            let known = match &self.shared.known {
                Some(known) => known.get_by_key(key).is_some(),
                None => false,
            };
            if !queued && !known {
                return;
            }
            let object = ObjectOrTombstone::Object(Arc::clone(&obj));
            self.queue_action_locked(&mut state, DeltaType::Deleted, object, key);
        });
    }

    fn queue_action_locked(
        &self,
        state: &mut State<K>,
        kind: DeltaType,
        object: ObjectOrTombstone<K>,
        key: &str,
    ) {
        let delta = Delta { kind, object };
        match state.items.get_mut(key) {
            Some(deltas) => {
                deltas.push(delta);
                dedup_deltas(deltas);
            }
            None => {
                let key: Arc<str> = Arc::from(key);
                state.queue.push_back(Arc::clone(&key));
                state.items.insert(key, vec![delta]);
                self.shared.wakeup.wake_one();
            }
        }
    }

    /// A relist (client-go's `Replace`): queues `Sync` (or `Replaced`) for each object of
    /// `list`, then a `Deleted` tombstone carrying the last known state for every queued key
    /// and every known key that `list` lacks. The first `replace` (if nothing was written
    /// before it) sets how many keys must be popped before [`has_synced`](Self::has_synced).
    /// The resource version is not used by the queue (client-go ignores it too).
    pub fn replace<I>(&self, list: I, _resource_version: &str)
    where
        I: IntoIterator,
        I::Item: Into<Arc<K>>,
    {
        let kind = if self.shared.emit_delta_type_replaced {
            DeltaType::Replaced
        } else {
            DeltaType::Sync
        };
        let list: Vec<(String, Arc<K>)> = list
            .into_iter()
            .map(|obj| {
                let obj = obj.into();
                (meta_namespace_key(obj.as_ref()), obj)
            })
            .collect();
        let mut state = self.shared.state.lock();
        let mut keys: Set<String> = Set::with_capacity_and_hasher(list.len(), Default::default());
        for (key, obj) in list {
            self.queue_action_locked(&mut state, kind, ObjectOrTombstone::Object(obj), &key);
            keys.insert(key);
        }

        // Deletions of queued objects the new list lacks.
        let mut queued_deletions = 0usize;
        let missing: Vec<(String, Option<Arc<K>>)> = state
            .items
            .iter()
            .filter(|(key, _)| !keys.contains(&***key))
            .map(|(key, deltas)| {
                let last = deltas.last().and_then(|d| d.object.object().cloned());
                (key.to_string(), last)
            })
            .collect();
        for (key, last) in missing {
            queued_deletions += 1;
            let tombstone = DeletedFinalStateUnknown {
                key: key.clone(),
                obj: last,
            };
            self.queue_action_locked(&mut state, DeltaType::Deleted, tombstone.into(), &key);
        }

        // Deletions of known objects, not queued, that the new list lacks.
        if let Some(known) = &self.shared.known {
            for key in known.list_keys() {
                if keys.contains(&key) || state.items.contains_key(key.as_str()) {
                    continue;
                }
                let last = known.get_by_key(&key);
                if last.is_none() {
                    tracing::info!(
                        fifo = %self.shared.name,
                        key = %key,
                        "Key does not exist in known objects store, placing DeleteFinalStateUnknown marker without object"
                    );
                }
                queued_deletions += 1;
                let tombstone = DeletedFinalStateUnknown {
                    key: key.clone(),
                    obj: last,
                };
                self.queue_action_locked(&mut state, DeltaType::Deleted, tombstone.into(), &key);
            }
        }

        if !state.sync.populated {
            state.sync.populated = true;
            state.sync.initial_population_count = keys.len() + queued_deletions;
            state.sync.check(&self.shared.synced);
        }
    }

    /// Queues `Sync` for every known object whose key has no pending deltas (a queued delta
    /// is newer than the store's copy, so re-delivering the store's copy would go back in
    /// time); does nothing without known objects (client-go's `Resync`).
    pub fn resync(&self) {
        let Some(known) = &self.shared.known else {
            return;
        };
        let mut state = self.shared.state.lock();
        for key in known.list_keys() {
            let Some(obj) = known.get_by_key(&key) else {
                tracing::info!(
                    fifo = %self.shared.name,
                    key = %key,
                    "Key does not exist in known objects store, unable to queue object for sync"
                );
                continue;
            };
            let id = meta_namespace_key(obj.as_ref());
            if state.items.contains_key(id.as_str()) {
                continue;
            }
            self.queue_action_locked(&mut state, DeltaType::Sync, obj.into(), &id);
        }
    }

    /// Waits (without spinning) for a queued key, removes it with its deltas and calls
    /// `process(deltas, is_in_initial_list)` under the queue lock; returns the deltas
    /// (client-go's `Pop`). Keys come out in the order they were first queued. Returns
    /// [`PopError::Closed`] once the queue is closed and empty.
    ///
    /// `process` runs under the lock that every write takes: keep it short (update a store,
    /// hand the deltas to a channel). Since it runs under the lock, one key is never handed
    /// to two poppers at once. On [`ProcessError::Requeue`] the deltas go back at the end of
    /// the queue.
    pub async fn pop<F, E>(&self, process: F) -> Result<Deltas<K>, PopError<E>>
    where
        F: FnOnce(&Deltas<K>, bool) -> Result<(), ProcessError<E>>,
    {
        let mut process = Some(process);
        self.shared
            .wakeup
            .wait_until(|| {
                let mut state = self.shared.state.lock();
                match self.pop_locked(&mut state, &mut process) {
                    Some(result) => Some(result),
                    None => state.closed.then_some(Err(PopError::Closed)),
                }
            })
            .await
    }

    /// Like [`pop`](Self::pop), but returns `Ok(None)` at once when nothing is queued.
    pub fn try_pop<F, E>(&self, process: F) -> Result<Option<Deltas<K>>, PopError<E>>
    where
        F: FnOnce(&Deltas<K>, bool) -> Result<(), ProcessError<E>>,
    {
        let mut state = self.shared.state.lock();
        match self.pop_locked(&mut state, &mut Some(process)) {
            Some(result) => result.map(Some),
            None if state.closed => Err(PopError::Closed),
            None => Ok(None),
        }
    }

    /// Pops one key if any is queued.
    fn pop_locked<F, E>(
        &self,
        state: &mut State<K>,
        process: &mut Option<F>,
    ) -> Option<Result<Deltas<K>, PopError<E>>>
    where
        F: FnOnce(&Deltas<K>, bool) -> Result<(), ProcessError<E>>,
    {
        loop {
            let id = state.queue.pop_front()?;
            let is_in_initial_list = !state.sync.synced;
            let counted = state.sync.initial_population_count > 0;
            if counted {
                state.sync.initial_population_count -= 1;
            }
            let Some(deltas) = state.items.remove(&*id) else {
                tracing::error!(
                    fifo = %self.shared.name,
                    key = %id,
                    "Inconceivable! Item was in the queue but not in the items; ignoring"
                );
                continue;
            };
            if !state.queue.is_empty() {
                // Pass the wake-up on: another popper may be waiting for the next key.
                self.shared.wakeup.wake_one();
            }
            let process = process
                .take()
                .expect("a pop calls its process function once"); // ok: returns right after
            let result = process(&deltas, is_in_initial_list);
            // Synced only once the last initial key is processed (client-go's HasSynced waits
            // for the lock that Pop holds while processing): a waiter woken now sees the
            // store with every item of the first list.
            if counted {
                state.sync.check(&self.shared.synced);
            }
            return Some(match result {
                Ok(()) => Ok(deltas),
                Err(ProcessError::Failed(error)) => Err(PopError::Process(error)),
                Err(ProcessError::Requeue(error)) => {
                    self.add_if_not_present_locked(state, id, deltas.clone());
                    match error {
                        Some(error) => Err(PopError::Process(error)),
                        None => Ok(deltas),
                    }
                }
            });
        }
    }

    /// Re-queues popped deltas unless the key was queued again meanwhile (client-go's
    /// `addIfNotPresent`).
    fn add_if_not_present_locked(&self, state: &mut State<K>, id: Arc<str>, deltas: Deltas<K>) {
        state.sync.populated = true;
        if state.items.contains_key(&*id) {
            return;
        }
        state.queue.push_back(Arc::clone(&id));
        state.items.insert(id, deltas);
        self.shared.wakeup.wake_one();
    }

    /// Whether the first `replace`'s items have all been popped, or something other than a
    /// `replace` was written first (client-go's `HasSynced`).
    pub fn has_synced(&self) -> bool {
        self.shared.state.lock().sync.synced
    }

    /// Waits until [`has_synced`](Self::has_synced) (client-go's `HasSyncedChecker().Done()`).
    pub async fn wait_for_sync(&self) {
        wait_synced(&self.shared.synced).await;
    }

    /// Closes the queue: waiting and later pops return [`PopError::Closed`] once the queue is
    /// empty (writes are still accepted, as in client-go).
    pub fn close(&self) {
        self.shared.state.lock().closed = true;
        self.shared.wakeup.wake_all();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.state.lock().closed
    }

    /// The queued keys, in pop order.
    pub fn list_keys(&self) -> Vec<String> {
        let state = self.shared.state.lock();
        state.queue.iter().map(|k| k.to_string()).collect()
    }

    /// The newest object (or tombstone) of each queued key, in pop order.
    pub fn list(&self) -> Vec<ObjectOrTombstone<K>> {
        let state = self.shared.state.lock();
        state
            .queue
            .iter()
            .filter_map(|key| state.items.get(key).and_then(|d| d.last()))
            .map(|delta| delta.object.clone())
            .collect()
    }

    /// A copy of the deltas queued under `key`.
    pub fn get_by_key(&self, key: &str) -> Option<Deltas<K>> {
        self.shared.state.lock().items.get(key).cloned()
    }

    /// How many keys are queued.
    pub fn len(&self) -> usize {
        self.shared.state.lock().queue.len()
    }

    /// Whether no key is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key of an object or tombstone (client-go's `KeyOf`).
    pub fn key_of(&self, obj: &ObjectOrTombstone<K>) -> String {
        key_of(obj)
    }
}
