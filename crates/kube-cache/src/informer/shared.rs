//! [`SharedIndexInformer`]: one reflector and one store per resource, any number of handlers
//! (client-go's `sharedIndexInformer`).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kube_apimachinery::Object;
use kube_flowcontrol::clock::SharedClock;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::delta::{DeltaType, Deltas};
use crate::delta_fifo::DeltaFifo;
use crate::index::{IndexError, Indexers};
use crate::indexer::Indexer;
use crate::informer::handler::{InformerEvent, ResourceEventHandler};
use crate::informer::listener::{Listener, Sink};
use crate::informer::processor::Processor;
use crate::informer::registration::{CacheSync, EventStream, HandlerRegistration, remove};
use crate::key::ObjectOrTombstone;
use crate::lister::Lister;
use crate::queue::{PopError, ProcessError};
use crate::transform::Transforms;

/// The smallest resync period a handler can ask for (client-go's `minimumResyncPeriod`).
pub const MINIMUM_RESYNC_PERIOD: Duration = Duration::from_secs(1);

/// Why an informer refused a request.
#[derive(Debug, thiserror::Error)]
pub enum InformerError {
    /// The informer has stopped: no handler can join (client-go's `handler %v was not added
    /// to shared informer because it has stopped already`).
    #[error("handler was not added to shared informer because it has stopped already")]
    Stopped,
    /// Indexers cannot be added to a stopped informer (client-go's `indexer was not added
    /// because it has stopped already`).
    #[error("indexer was not added because it has stopped already")]
    IndexerStopped,
    /// The indexers conflict with installed ones.
    #[error("adding indexers failed")]
    Index(#[source] IndexError),
}

/// The period a handler gets given the one it asked for and the informer's resync check
/// period (client-go's `determineResyncPeriod`).
pub(crate) fn determine_resync_period(desired: Duration, check: Duration) -> Duration {
    if desired.is_zero() {
        return desired;
    }
    if check.is_zero() {
        tracing::warn!(
            resync_period = ?desired,
            "The specified resyncPeriod is invalid because this shared informer doesn't support resyncing"
        );
        return Duration::ZERO;
    }
    if desired < check {
        tracing::warn!(
            resync_period = ?desired,
            resync_check_period = ?check,
            "The specified resyncPeriod is being increased to the minimum resyncCheckPeriod"
        );
        return check;
    }
    desired
}

/// What the source of an informer (its reflector) gets when the informer runs.
pub(crate) struct SourceArgs<K> {
    /// The queue to write to.
    pub(crate) fifo: DeltaFifo<K>,
    /// How often to ask `should_resync` (the resync check period; zero: never).
    pub(crate) resync_period: Duration,
    /// Whether a resync is due (marks the handlers that get it).
    pub(crate) should_resync: Arc<dyn Fn() -> bool + Send + Sync>,
    /// The transforms to apply before writing to the queue.
    pub(crate) transforms: Transforms<K>,
    /// The informer's clock.
    pub(crate) clock: SharedClock,
    /// Where the source publishes its last synced resourceVersion.
    pub(crate) last_sync_rv: Arc<OnceLock<LastSyncRv>>,
    /// Fires when the informer stops.
    pub(crate) cancel: CancellationToken,
}

/// Reads a source's last synced resourceVersion.
pub(crate) type LastSyncRv = Box<dyn Fn() -> String + Send + Sync>;

/// A future that runs an informer's source until cancelled.
pub(crate) type SourceFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts an informer's source (the reflector of a ListerWatcher, or a test feed).
pub(crate) type Source<K> = Box<dyn FnOnce(SourceArgs<K>) -> SourceFuture + Send>;

/// What the builder hands over.
pub(crate) struct Parts<K> {
    pub(crate) name: String,
    pub(crate) resync_period: Duration,
    pub(crate) indexer: Indexer<K>,
    pub(crate) transforms: Transforms<K>,
    pub(crate) clock: SharedClock,
    pub(crate) source: Source<K>,
}

struct RunState<K> {
    started: bool,
    stopped: bool,
    /// How often the reflector asks whether a resync is due (client-go's
    /// `resyncCheckPeriod`); fixed once started.
    resync_check_period: Duration,
    source: Option<Source<K>>,
}

struct Inner<K> {
    name: String,
    indexer: Indexer<K>,
    fifo: DeltaFifo<K>,
    processor: Processor<K>,
    /// client-go's `startedLock`.
    run_state: Mutex<RunState<K>>,
    default_resync_period: Duration,
    transforms: Transforms<K>,
    last_sync_rv: Arc<OnceLock<LastSyncRv>>,
}

/// One reflector and one indexed store for a resource, feeding any number of event handlers
/// (client-go's `SharedIndexInformer`).
///
/// * Handlers ([`ResourceEventHandler`], [`HandlerFuncs`](super::HandlerFuncs) or an
///   [`EventStream`]) can be added before or after [`run`](Self::run): a late handler first
///   receives an `Added` (with `is_in_initial_list`) for every cached object, then every
///   change. Each has its own unbounded buffer and task, its own resync period and its own
///   [`has_synced`](HandlerRegistration::has_synced); it is removed through its
///   [`HandlerRegistration`].
/// * Each batch of deltas popped from the queue updates the [`Indexer`] and then notifies
///   the handlers: `Sync`, `Replaced`, `Added`, `Updated` give an update if the object was
///   cached (a resync notification, for the handlers whose resync is due, when the
///   resourceVersion did not change) and an add otherwise; `Deleted` gives a delete.
/// * The handle is cheap to clone; clones share the informer.
pub struct SharedIndexInformer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for SharedIndexInformer<K> {
    fn clone(&self) -> Self {
        SharedIndexInformer {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K> fmt::Debug for SharedIndexInformer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedIndexInformer")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl<K: Object + Send + Sync + 'static> SharedIndexInformer<K> {
    /// Adds a handler with the informer's default resync period (client-go's
    /// `AddEventHandler`).
    pub fn add_event_handler(
        &self,
        handler: impl ResourceEventHandler<K>,
    ) -> Result<HandlerRegistration<K>, InformerError> {
        self.add_event_handler_with_resync(handler, self.inner.default_resync_period)
    }

    /// Adds a handler that also wants every cached object re-delivered as an update every
    /// `resync_period` (zero: never) (client-go's `AddEventHandlerWithResyncPeriod`):
    ///
    /// * a period under [`MINIMUM_RESYNC_PERIOD`] is raised to it;
    /// * before the informer starts, a period under the resync check period lowers the check
    ///   period (and the other handlers' periods are re-derived); after, it is raised to the
    ///   check period, with a warning;
    /// * an informer built with no resync period does no resyncs at all.
    pub fn add_event_handler_with_resync(
        &self,
        handler: impl ResourceEventHandler<K>,
        resync_period: Duration,
    ) -> Result<HandlerRegistration<K>, InformerError> {
        self.register(Sink::Handler(Arc::new(handler)), resync_period)
    }

    /// The notifications as a [`Stream`](futures_core::Stream), with the informer's default
    /// resync period.
    pub fn stream(&self) -> Result<EventStream<K>, InformerError> {
        self.stream_with_resync(self.inner.default_resync_period)
    }

    /// The notifications as a [`Stream`](futures_core::Stream), with a resync period of its
    /// own (same rules as [`add_event_handler_with_resync`](Self::add_event_handler_with_resync)).
    pub fn stream_with_resync(
        &self,
        resync_period: Duration,
    ) -> Result<EventStream<K>, InformerError> {
        self.register(Sink::Stream, resync_period)
            .map(EventStream::new)
    }

    fn register(
        &self,
        sink: Sink<K>,
        requested: Duration,
    ) -> Result<HandlerRegistration<K>, InformerError> {
        let inner = &self.inner;
        let processor = &inner.processor;
        let mut state = inner.run_state.lock();
        if state.stopped {
            return Err(InformerError::Stopped);
        }
        let mut requested = requested;
        if !requested.is_zero() {
            if requested < MINIMUM_RESYNC_PERIOD {
                tracing::warn!(
                    resync_period = ?requested,
                    minimum = ?MINIMUM_RESYNC_PERIOD,
                    "resyncPeriod is too small. Changing it to the minimum allowed value"
                );
                requested = MINIMUM_RESYNC_PERIOD;
            }
            if requested < state.resync_check_period {
                if state.started {
                    tracing::warn!(
                        resync_period = ?requested,
                        resync_check_period = ?state.resync_check_period,
                        "resyncPeriod is smaller than resyncCheckPeriod and the informer has already started. Changing it to resyncCheckPeriod"
                    );
                    requested = state.resync_check_period;
                } else {
                    state.resync_check_period = requested;
                    processor.resync_check_period_changed(requested);
                }
            }
        }
        let period = determine_resync_period(requested, state.resync_check_period);
        let listener = Arc::new(Listener::new(
            processor.next_id(),
            sink,
            requested,
            period,
            processor.shared.clock.now(),
            inner.fifo.clone(),
        ));
        let registration = HandlerRegistration {
            listener: Arc::clone(&listener),
            processor: Arc::downgrade(&processor.shared),
        };
        if !state.started {
            processor.add_listener(listener);
            return Ok(registration);
        }
        // Join a running informer: no delta is handled while the new handler is registered
        // and receives the cache's content, so it sees each change exactly once.
        let _block = processor.shared.block_deltas.lock();
        processor.add_listener(Arc::clone(&listener));
        inner.indexer.for_each(|obj| {
            listener.add(InformerEvent::Added {
                object: Arc::clone(obj),
                is_in_initial_list: true,
            });
        });
        Ok(registration)
    }

    /// Removes a handler; a registration of another informer, or one already removed, is
    /// ignored (client-go's `RemoveEventHandler`). Returns whether it was registered here.
    pub fn remove_event_handler(&self, registration: &HandlerRegistration<K>) -> bool {
        let _state = self.inner.run_state.lock();
        if !registration.belongs_to(&self.inner.processor) {
            return false;
        }
        remove(&self.inner.processor, registration.listener.id)
    }

    /// Whether `registration` is a handler currently registered with this informer.
    pub fn is_registered(&self, registration: &HandlerRegistration<K>) -> bool {
        registration.belongs_to(&self.inner.processor)
            && self.inner.processor.is_registered(registration.listener.id)
    }

    /// How many handlers are registered.
    pub fn handler_count(&self) -> usize {
        self.inner.processor.listener_count()
    }

    /// Installs more indices (client-go's `AddIndexers`); refused once stopped.
    pub fn add_indexers(&self, indexers: Indexers<K>) -> Result<(), InformerError> {
        let state = self.inner.run_state.lock();
        if state.stopped {
            return Err(InformerError::IndexerStopped);
        }
        self.inner
            .indexer
            .add_indexers(indexers)
            .map_err(InformerError::Index)
    }

    /// The informer's store (client-go's `GetIndexer`, `GetStore`).
    pub fn indexer(&self) -> &Indexer<K> {
        &self.inner.indexer
    }

    /// A lister over the informer's store.
    pub fn lister(&self) -> Lister<K> {
        Lister::new(self.inner.indexer.clone())
    }

    /// Whether the store has been filled by a first full list (client-go's `HasSynced`;
    /// nothing about any handler: ask its registration).
    pub fn has_synced(&self) -> bool {
        self.inner.fifo.has_synced()
    }

    /// Waits until [`has_synced`](Self::has_synced).
    pub async fn wait_for_sync(&self) {
        self.inner.fifo.wait_for_sync().await
    }

    /// The resourceVersion of the last list or watch event seen, `""` before the informer
    /// runs (client-go's `LastSyncResourceVersion`).
    pub fn last_sync_resource_version(&self) -> String {
        match self.inner.last_sync_rv.get() {
            Some(read) => read(),
            None => String::new(),
        }
    }

    /// How often the reflector checks whether a handler's resync is due (client-go's
    /// `resyncCheckPeriod`).
    pub fn resync_check_period(&self) -> Duration {
        self.inner.run_state.lock().resync_check_period
    }

    /// Whether [`run`](Self::run) was called.
    pub fn has_started(&self) -> bool {
        self.inner.run_state.lock().started
    }

    /// Whether the informer has stopped; a stopped informer never runs again (client-go's
    /// `IsStopped`).
    pub fn is_stopped(&self) -> bool {
        self.inner.run_state.lock().stopped
    }

    /// The name given to the builder.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Runs the informer until `cancel` fires: the reflector fills the queue, each popped
    /// batch updates the store and is handed to the handlers. Returns once every handler
    /// task has ended (handlers' pending notifications are dropped and counted). A second
    /// call returns at once with a warning (client-go's `Run`).
    pub async fn run(&self, cancel: CancellationToken) {
        let inner = &self.inner;
        let (source, resync_period) = {
            let mut state = inner.run_state.lock();
            if state.started {
                tracing::warn!(
                    informer = %inner.name,
                    "The sharedIndexInformer has started, run more than once is not allowed"
                );
                return;
            }
            state.started = true;
            (state.source.take(), state.resync_check_period)
        };
        inner.processor.start(tokio::runtime::Handle::current());
        let source = match source {
            Some(source) => {
                let processor = inner.processor.clone();
                source(SourceArgs {
                    fifo: inner.fifo.clone(),
                    resync_period,
                    should_resync: Arc::new(move || processor.should_resync()),
                    transforms: inner.transforms.clone(),
                    clock: Arc::clone(&inner.processor.shared.clock),
                    last_sync_rv: Arc::clone(&inner.last_sync_rv),
                    cancel: cancel.clone(),
                })
            }
            None => Box::pin(std::future::ready(())), // unreachable: `started` guards it
        };
        tokio::join!(source, self.process_loop(&cancel));
        inner.fifo.close();
        inner.run_state.lock().stopped = true;
        inner.processor.stop().await;
        tracing::debug!(informer = %inner.name, "informer stopped");
    }

    /// Pops batches of deltas until cancelled (client-go's `controller.processLoop`).
    async fn process_loop(&self, cancel: &CancellationToken) {
        let fifo = &self.inner.fifo;
        loop {
            let popped = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                popped = fifo.pop(|deltas, is_in_initial_list| {
                    self.handle_deltas(deltas, is_in_initial_list);
                    Ok::<(), ProcessError<Infallible>>(())
                }) => popped,
            };
            match popped {
                Ok(_) => {}
                Err(PopError::Closed) => break,
                Err(PopError::Process(never)) => match never {},
            }
        }
        let left = fifo.len();
        if left > 0 {
            tracing::debug!(
                informer = %self.inner.name,
                keys = left,
                "informer stopped with deltas still queued"
            );
        }
    }

    /// Updates the store with one key's deltas, oldest first, and notifies the handlers
    /// after each change (client-go's `HandleDeltas`/`processDeltas`). Runs under the
    /// queue's lock and `block_deltas`.
    pub(crate) fn handle_deltas(&self, deltas: &Deltas<K>, is_in_initial_list: bool) {
        let inner = &self.inner;
        let processor = &inner.processor;
        let _block = processor.shared.block_deltas.lock();
        for delta in deltas {
            match delta.kind {
                DeltaType::Sync | DeltaType::Replaced | DeltaType::Added | DeltaType::Updated => {
                    let ObjectOrTombstone::Object(obj) = &delta.object else {
                        tracing::error!(
                            informer = %inner.name,
                            kind = %delta.kind,
                            key = %delta.key(),
                            "a tombstone in a delta other than Deleted; skipped"
                        );
                        continue;
                    };
                    match inner.indexer.update(Arc::clone(obj)) {
                        Some(old) => {
                            // Same resourceVersion: a resync (or an unchanged relist), only
                            // for the handlers whose resync is due.
                            let is_sync = old.resource_version() == obj.resource_version();
                            processor.distribute(
                                InformerEvent::Updated {
                                    old,
                                    new: Arc::clone(obj),
                                },
                                is_sync,
                            );
                        }
                        None => processor.distribute(
                            InformerEvent::Added {
                                object: Arc::clone(obj),
                                is_in_initial_list,
                            },
                            false,
                        ),
                    }
                }
                DeltaType::Deleted => {
                    match &delta.object {
                        ObjectOrTombstone::Object(obj) => {
                            inner.indexer.delete(Arc::clone(obj));
                        }
                        ObjectOrTombstone::Tombstone(t) => {
                            inner.indexer.delete_key(&t.key);
                        }
                    }
                    processor.distribute(InformerEvent::Deleted(delta.object.clone()), false);
                }
            }
        }
    }

    /// Builds an informer (used by the builder).
    pub(crate) fn from_parts(parts: Parts<K>) -> SharedIndexInformer<K> {
        let Parts {
            name,
            resync_period,
            indexer,
            transforms,
            clock,
            source,
        } = parts;
        let queue_name = if name.is_empty() {
            "DeltaFIFO".to_owned()
        } else {
            format!("informer_{name}_queue")
        };
        let fifo = DeltaFifo::builder()
            .name(queue_name)
            .known_objects(indexer.clone())
            .emit_delta_type_replaced(true)
            .build();
        SharedIndexInformer {
            inner: Arc::new(Inner {
                name,
                indexer,
                fifo,
                processor: Processor::new(clock),
                run_state: Mutex::new(RunState {
                    started: false,
                    stopped: false,
                    resync_check_period: resync_period,
                    source: Some(source),
                }),
                default_resync_period: resync_period,
                transforms,
                last_sync_rv: Arc::new(OnceLock::new()),
            }),
        }
    }
}

impl<K: Object + Send + Sync + 'static> CacheSync for SharedIndexInformer<K> {
    fn has_synced(&self) -> bool {
        SharedIndexInformer::has_synced(self)
    }
    fn wait_for_sync(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(SharedIndexInformer::wait_for_sync(self))
    }
}
