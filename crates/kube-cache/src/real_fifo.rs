//! [`RealFifo`]: client-go's `RealFIFO` (v1.29+), every event kept in order.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use kube_apimachinery::Object;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::delta::{Delta, DeltaType, Deltas, KeyListerGetter};
use crate::key::{DeletedFinalStateUnknown, ObjectOrTombstone, meta_namespace_key};
use crate::queue::{PopError, SyncState, Wakeup, wait_synced};
use crate::store::{Map, Set};

/// A queue that hands out every notification in order, one [`Delta`] at a time, with no
/// per-key compression (client-go's `RealFIFO`): for consumers that need every intermediate
/// state, including events of objects deleted since.
///
/// Known objects are required (client-go panics without them in this mode): `replace` and
/// `resync` read them. client-go's atomic mode (`ReplacedAll`/`SyncAll` events, batch pops,
/// bookmarks) is not provided.
///
/// ```
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kube_apimachinery::Object;
/// use kube_cache::{DeltaType, Indexer, RealFifo};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut cm = ConfigMap::default();
/// cm.meta_mut().name = Some("a".into());
/// let fifo = RealFifo::new(Indexer::<ConfigMap>::new());
/// fifo.add(cm.clone());
/// fifo.update(cm.clone());
/// let first = fifo.pop(|_, _| Ok::<(), ()>(())).await.unwrap();
/// let second = fifo.pop(|_, _| Ok::<(), ()>(())).await.unwrap();
/// assert_eq!((first[0].kind, second[0].kind), (DeltaType::Added, DeltaType::Updated));
/// # }
/// ```
pub struct RealFifo<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    name: String,
    state: Mutex<State<K>>,
    wakeup: Wakeup,
    synced: watch::Sender<bool>,
    known: Arc<dyn KeyListerGetter<K>>,
}

struct State<K> {
    items: VecDeque<Delta<K>>,
    sync: SyncState,
    closed: bool,
}

impl<K> Clone for RealFifo<K> {
    fn clone(&self) -> Self {
        RealFifo {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for RealFifo<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("RealFifo")
            .field("name", &self.shared.name)
            .field("queued", &state.items.len())
            .field("closed", &state.closed)
            .field("synced", &state.sync.synced)
            .finish()
    }
}

impl<K: Object + Send + Sync + 'static> RealFifo<K> {
    /// A queue over these known objects (client-go's `NewRealFIFOWithOptions` with
    /// `KnownObjects`).
    pub fn new(known: impl KeyListerGetter<K> + 'static) -> RealFifo<K> {
        RealFifo::with_name("RealFIFO", known)
    }

    /// Same, with a name for the logs.
    pub fn with_name(name: impl Into<String>, known: impl KeyListerGetter<K> + 'static) -> Self {
        RealFifo {
            shared: Arc::new(Shared {
                name: name.into(),
                state: Mutex::new(State {
                    items: VecDeque::new(),
                    sync: SyncState::new(),
                    closed: false,
                }),
                wakeup: Wakeup::new(),
                synced: watch::Sender::new(false),
                known: Arc::new(known),
            }),
        }
    }

    /// Queues an `Added` event.
    pub fn add(&self, obj: impl Into<Arc<K>>) {
        self.write(Delta::new(DeltaType::Added, obj));
    }

    /// Queues an `Updated` event.
    pub fn update(&self, obj: impl Into<Arc<K>>) {
        self.write(Delta::new(DeltaType::Updated, obj));
    }

    /// Queues a `Deleted` event (always: unlike [`DeltaFifo`](crate::DeltaFifo), a RealFIFO
    /// does not check that the object exists).
    pub fn delete(&self, obj: impl Into<Arc<K>>) {
        self.write(Delta::new(DeltaType::Deleted, obj));
    }

    fn write(&self, delta: Delta<K>) {
        let mut state = self.shared.state.lock();
        state.sync.populate(&self.shared.synced);
        Self::push_locked(&self.shared, &mut state, delta);
    }

    fn push_locked(shared: &Shared<K>, state: &mut State<K>, delta: Delta<K>) {
        state.items.push_back(delta);
        shared.wakeup.wake_one();
    }

    /// A relist (client-go's `Replace` and `reconcileReplacement`): first a `Deleted`
    /// tombstone for each queued key whose last event is not a deletion and that `list`
    /// lacks, then one for each known key neither queued nor listed, then `Replaced` for each
    /// listed object. The first `replace` (if nothing was written before it) makes
    /// [`has_synced`](Self::has_synced) wait until everything queued at that point has been
    /// processed.
    pub fn replace<I>(&self, list: I, _resource_version: &str)
    where
        I: IntoIterator,
        I::Item: Into<Arc<K>>,
    {
        let list: Vec<Arc<K>> = list.into_iter().map(Into::into).collect();
        let new_keys: Set<String> = list
            .iter()
            .map(|obj| meta_namespace_key(obj.as_ref()))
            .collect();
        let mut state = self.shared.state.lock();

        // The last queued event of each key, keys in order of first appearance.
        let mut queued_keys: Vec<String> = Vec::new();
        let mut last_queued: Map<String, usize> = Map::default();
        for (i, delta) in state.items.iter().enumerate() {
            let key = delta.key();
            if last_queued.insert(key.clone(), i).is_none() {
                queued_keys.push(key);
            }
        }
        let mut tombstones = Vec::new();
        for key in &queued_keys {
            if new_keys.contains(key) {
                continue;
            }
            let last = &state.items[last_queued[key]];
            if last.kind == DeltaType::Deleted {
                continue;
            }
            tombstones.push(Delta {
                kind: DeltaType::Deleted,
                object: ObjectOrTombstone::Tombstone(DeletedFinalStateUnknown {
                    key: key.clone(),
                    obj: last.object.object().cloned(),
                }),
            });
        }
        for key in self.shared.known.list_keys() {
            if new_keys.contains(&key) || last_queued.contains_key(&key) {
                continue;
            }
            let obj = self.shared.known.get_by_key(&key);
            if obj.is_none() {
                tracing::error!(
                    fifo = %self.shared.name,
                    key = %key,
                    "Key does not exist in known objects store, placing DeleteFinalStateUnknown marker without object"
                );
            }
            tombstones.push(Delta::tombstone(key, obj));
        }
        for delta in tombstones {
            Self::push_locked(&self.shared, &mut state, delta);
        }
        for obj in list {
            Self::push_locked(
                &self.shared,
                &mut state,
                Delta::new(DeltaType::Replaced, obj),
            );
        }
        if !state.sync.populated {
            state.sync.populated = true;
            state.sync.initial_population_count = state.items.len();
            state.sync.check(&self.shared.synced);
        }
    }

    /// Queues `Sync` for every known object with no queued event (client-go's `Resync`).
    pub fn resync(&self) {
        let mut state = self.shared.state.lock();
        let queued: Set<String> = state.items.iter().map(Delta::key).collect();
        for key in self.shared.known.list_keys() {
            if queued.contains(&key) {
                continue;
            }
            let Some(obj) = self.shared.known.get_by_key(&key) else {
                tracing::error!(
                    fifo = %self.shared.name,
                    key = %key,
                    "Key does not exist in known objects store, unable to queue object for sync"
                );
                continue;
            };
            Self::push_locked(&self.shared, &mut state, Delta::new(DeltaType::Sync, obj));
        }
    }

    /// Waits (without spinning) for an event, removes it and calls
    /// `process(&[event], is_in_initial_list)` under the queue lock; returns the event as a
    /// one-delta list (client-go's `Pop`). The initial-sync count goes down after `process`
    /// returns, so [`has_synced`](Self::has_synced) never turns true while the last initial
    /// event is still being processed. Returns [`PopError::Closed`] once closed and empty.
    pub async fn pop<F, E>(&self, process: F) -> Result<Deltas<K>, PopError<E>>
    where
        F: FnOnce(&Deltas<K>, bool) -> Result<(), E>,
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
        F: FnOnce(&Deltas<K>, bool) -> Result<(), E>,
    {
        let mut state = self.shared.state.lock();
        match self.pop_locked(&mut state, &mut Some(process)) {
            Some(result) => result.map(Some),
            None if state.closed => Err(PopError::Closed),
            None => Ok(None),
        }
    }

    fn pop_locked<F, E>(
        &self,
        state: &mut State<K>,
        process: &mut Option<F>,
    ) -> Option<Result<Deltas<K>, PopError<E>>>
    where
        F: FnOnce(&Deltas<K>, bool) -> Result<(), E>,
    {
        let is_in_initial_list = !state.sync.synced;
        let deltas = vec![state.items.pop_front()?];
        if !state.items.is_empty() {
            self.shared.wakeup.wake_one();
        }
        let process = process
            .take()
            .expect("a pop calls its process function once"); // ok: returns right after
        let result = process(&deltas, is_in_initial_list);
        if state.sync.initial_population_count > 0 {
            state.sync.initial_population_count -= 1;
            state.sync.check(&self.shared.synced);
        }
        Some(result.map(|()| deltas).map_err(PopError::Process))
    }

    /// Whether the first `replace`'s events have all been processed, or something other than
    /// a `replace` was written first.
    pub fn has_synced(&self) -> bool {
        self.shared.state.lock().sync.synced
    }

    /// Waits until [`has_synced`](Self::has_synced).
    pub async fn wait_for_sync(&self) {
        wait_synced(&self.shared.synced).await;
    }

    /// Closes the queue: pops return [`PopError::Closed`] once it is empty.
    pub fn close(&self) {
        self.shared.state.lock().closed = true;
        self.shared.wakeup.wake_all();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.state.lock().closed
    }

    /// How many events are queued.
    pub fn len(&self) -> usize {
        self.shared.state.lock().items.len()
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the queued events, in order.
    pub fn list(&self) -> Vec<Delta<K>> {
        self.shared.state.lock().items.iter().cloned().collect()
    }
}
