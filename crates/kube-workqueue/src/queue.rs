//! The deduplicating work queue (client-go's `workqueue.Type`).

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use kube_flowcontrol::SharedClock;
use kube_flowcontrol::clock::Ticker;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::builder::{Plain, QueueBuilder, QueueConfig};
use crate::metrics::QueueMetrics;
use crate::runtime::{Spawner, block_on};

mod state;

use state::{Hasher, Pop, State};

pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The state shared by every handle of one queue.
struct Shared<T> {
    state: Mutex<State<T>>,
    /// Hashes items before the lock is taken.
    hasher: Hasher,
    /// Wakes getters when an item is queued or the queue shuts down.
    not_empty: Notify,
    /// Wakes `shut_down_with_drain` when the last item being processed is done.
    drained: Notify,
    /// Mirrors `State::shutting_down` for lock-free reads.
    shutting_down: AtomicBool,
    /// Cancelled when the queue shuts down or its last handle is dropped; ends background tasks.
    shutdown: CancellationToken,
    dropped: AtomicU64,
    name: Arc<str>,
    clock: SharedClock,
    metrics: Option<QueueMetrics>,
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A work queue with client-go's guarantees (`workqueue.Interface`).
///
/// * **Deduplication**: an item added several times before a worker takes it is handed out once.
/// * **No two workers**: an item is never handed out again until the worker that has it calls
///   [`done`](WorkQueue::done). An item added while it is being processed is marked dirty and
///   queued again by `done`, so it is processed once more after its last add.
/// * **FIFO** among distinct items.
/// * **Shutdown**: [`shut_down`](WorkQueue::shut_down) stops accepting items; getters keep
///   receiving what is already queued and then get `None`.
///   [`shut_down_with_drain`](WorkQueue::shut_down_with_drain) also waits until every item handed
///   out is done.
///
/// The queue is a cheap handle: clones share the same queue. Items are anything
/// `Hash + Eq + Clone + Send + Sync + 'static`, typically a `String` key like `namespace/name`.
///
/// ```
/// use kube_workqueue::WorkQueue;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let queue = WorkQueue::new();
/// queue.add("default/web");
/// queue.add("default/db");
/// queue.add("default/web"); // already waiting: deduplicated
/// assert_eq!(queue.len(), 2);
///
/// let key = queue.get().await.unwrap();
/// assert_eq!(key, "default/web");
/// queue.add("default/web"); // being processed: queued again once `done` is called
/// assert_eq!(queue.len(), 1);
/// queue.done(&key);
/// assert_eq!(queue.len(), 2);
///
/// queue.shut_down();
/// assert_eq!(queue.get().await, Some("default/db")); // what was queued is still handed out
/// # }
/// ```
pub struct WorkQueue<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        WorkQueue {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> fmt::Debug for WorkQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("WorkQueue")
            .field("name", &self.shared.name)
            .field("len", &state.len())
            .field("processing", &state.processing)
            .field("shutting_down", &state.shutting_down)
            .finish_non_exhaustive()
    }
}

impl<T> WorkQueue<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// An unnamed queue on the real clock, without metrics.
    pub fn new() -> Self {
        QueueBuilder::new().build()
    }

    /// A builder for a queue with a name, clock, metrics provider, and possibly delays and a
    /// rate limiter.
    pub fn builder() -> QueueBuilder<T, Plain> {
        QueueBuilder::new()
    }

    pub(crate) fn from_config(config: &QueueConfig, spawner: &Spawner) -> Self {
        let metrics = config.metrics_provider().map(|provider| {
            QueueMetrics::new(provider.as_ref(), &config.name, Arc::clone(&config.clock))
        });
        let has_metrics = metrics.is_some();
        let queue = WorkQueue {
            shared: Arc::new(Shared {
                state: Mutex::new(State::new()),
                hasher: Hasher::default(),
                not_empty: Notify::new(),
                drained: Notify::new(),
                shutting_down: AtomicBool::new(false),
                shutdown: CancellationToken::new(),
                dropped: AtomicU64::new(0),
                name: Arc::from(config.name.as_str()),
                clock: Arc::clone(&config.clock),
                metrics,
            }),
        };
        if has_metrics {
            // Like client-go, only a queue with metrics runs the unfinished-work updater.
            let updater = unfinished_work_loop(
                Arc::downgrade(&queue.shared),
                Arc::clone(&config.clock),
                config.unfinished_work_update_period,
                queue.shared.shutdown.clone(),
            );
            if let Err(error) = spawner.spawn("metrics", updater) {
                tracing::error!(
                    queue = %config.name,
                    error = &error as &dyn std::error::Error,
                    "kube-workqueue: unfinished-work metrics will not be updated"
                );
            }
        }
        queue
    }

    /// Marks `item` as needing processing.
    ///
    /// Does nothing if the item is already waiting. If it is being processed, it is queued again
    /// when its worker calls [`done`](WorkQueue::done). After shutdown the item is dropped: logged
    /// through `tracing` and counted by [`dropped`](WorkQueue::dropped).
    #[inline]
    pub fn add(&self, item: T) {
        let hash = self.shared.hasher.hash(&item);
        let mut state = self.shared.state.lock();
        if state.shutting_down {
            drop(state);
            self.shared.record_dropped(1, "added after shutdown");
            return;
        }
        let queued = state.insert(hash, item, self.shared.metrics.as_ref());
        let wake = queued && state.idle_getters > 0;
        drop(state);
        if wake {
            self.shared.not_empty.notify_one();
        }
    }

    /// [`add`](WorkQueue::add) from a borrowed item (say `&str` for a `String` queue): the item
    /// is copied only if the queue does not track it yet, so adding a key that is already
    /// waiting allocates nothing.
    #[inline]
    pub fn add_ref<Q>(&self, item: &Q)
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = T> + ?Sized,
    {
        // `Borrow` promises that `Q` hashes like `T`.
        let hash = self.shared.hasher.hash(item);
        let mut state = self.shared.state.lock();
        if state.shutting_down {
            drop(state);
            self.shared.record_dropped(1, "added after shutdown");
            return;
        }
        let queued = state.insert_ref(hash, item, self.shared.metrics.as_ref());
        let wake = queued && state.idle_getters > 0;
        drop(state);
        if wake {
            self.shared.not_empty.notify_one();
        }
    }

    /// Adds several items under one lock acquisition (same rules as [`add`](WorkQueue::add)).
    ///
    /// The iterator runs before the lock is taken (its items are collected first), so an
    /// iterator that looks at or adds to this queue does not deadlock.
    pub fn add_all<I: IntoIterator<Item = T>>(&self, items: I) {
        let hasher = &self.shared.hasher;
        let items: Vec<(u64, T)> = items
            .into_iter()
            .map(|item| (hasher.hash(&item), item))
            .collect();
        if items.is_empty() {
            return;
        }
        let mut state = self.shared.state.lock();
        if state.shutting_down {
            drop(state);
            self.shared
                .record_dropped(items.len() as u64, "added after shutdown");
            return;
        }
        let mut queued = 0usize;
        for (hash, item) in items {
            queued += usize::from(state.insert(hash, item, self.shared.metrics.as_ref()));
        }
        let wake = queued.min(state.idle_getters);
        drop(state);
        for _ in 0..wake {
            self.shared.not_empty.notify_one();
        }
    }

    /// How many items are waiting to be handed out (not counting items being processed).
    pub fn len(&self) -> usize {
        self.shared.state.lock().len()
    }

    /// Whether no item is waiting to be handed out.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many items have been handed out and not marked done yet.
    pub fn processing(&self) -> usize {
        self.shared.state.lock().processing
    }

    /// Waits for the next item and marks it as being processed; the caller must call
    /// [`done`](WorkQueue::done) with it once finished.
    ///
    /// Returns `None` once the queue is shut down and nothing is left to hand out: the worker
    /// should exit. Cancel-safe: dropping the future before it completes takes nothing.
    pub async fn get(&self) -> Option<T> {
        match self.try_pop() {
            Pop::Item(item) => Some(item),
            Pop::ShutDown => None,
            Pop::Empty => self.get_slow().await,
        }
    }

    /// [`get`](WorkQueue::get), with the item wrapped in a guard that marks it done when dropped
    /// — also when the worker panics or its future is cancelled, so that a failed worker never
    /// leaves its item marked as processing forever.
    ///
    /// Do not also call [`done`](WorkQueue::done) for a guarded item: as with a double `Done` in
    /// client-go, the second one could release the same key that another worker has taken
    /// since.
    ///
    /// ```
    /// use kube_workqueue::WorkQueue;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let queue = WorkQueue::new();
    /// queue.add("default/web");
    /// if let Some(key) = queue.get_guarded().await {
    ///     assert_eq!(*key, "default/web");
    ///     assert_eq!(queue.processing(), 1);
    /// } // done here
    /// assert_eq!(queue.processing(), 0);
    /// # }
    /// ```
    ///
    /// The guard owns a handle to the queue, so it can move into a task of its own:
    ///
    /// ```
    /// use kube_workqueue::WorkQueue;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let queue = WorkQueue::new();
    /// queue.add("default/web".to_string());
    /// let key = queue.get_guarded().await.unwrap();
    /// tokio::spawn(async move {
    ///     println!("reconciling {}", *key);
    /// }) // done when the task drops `key`
    /// .await
    /// .unwrap();
    /// assert_eq!(queue.processing(), 0);
    /// # }
    /// ```
    pub async fn get_guarded(&self) -> Option<Processing<T>> {
        self.get().await.map(|item| Processing {
            queue: self.clone(),
            item: Some(item),
        })
    }

    /// [`get`](WorkQueue::get) for non-async callers: blocks the current thread.
    ///
    /// Never call it from an async task; use `get().await` there.
    pub fn get_blocking(&self) -> Option<T> {
        block_on(self.get())
    }

    /// Takes the next item if one is waiting, without waiting; like [`get`](WorkQueue::get),
    /// the caller must call [`done`](WorkQueue::done) with it.
    ///
    /// `None` means nothing is waiting right now; [`shutting_down`](WorkQueue::shutting_down)
    /// tells an idle queue from a finished one.
    pub fn try_get(&self) -> Option<T> {
        match self.try_pop() {
            Pop::Item(item) => Some(item),
            Pop::Empty | Pop::ShutDown => None,
        }
    }

    #[inline]
    fn try_pop(&self) -> Pop<T> {
        self.shared.state.lock().pop(self.shared.metrics.as_ref())
    }

    async fn get_slow(&self) -> Option<T> {
        loop {
            let mut notified = pin!(self.shared.not_empty.notified());
            // Registered before looking at the queue, so no notification can be missed.
            notified.as_mut().enable();
            {
                let mut state = self.shared.state.lock();
                match state.pop(self.shared.metrics.as_ref()) {
                    Pop::Item(item) => return Some(item),
                    Pop::ShutDown => return None,
                    Pop::Empty => state.idle_getters += 1,
                }
            }
            let mut idle = IdleGetter {
                shared: &self.shared,
                counted: true,
            };
            notified.await;
            let mut state = self.shared.state.lock();
            state.idle_getters -= 1;
            idle.counted = false;
            match state.pop(self.shared.metrics.as_ref()) {
                Pop::Item(item) => return Some(item),
                Pop::ShutDown => return None,
                Pop::Empty => {} // someone else took it first: wait again
            }
        }
    }

    /// Marks `item` as done processing. If it was added again meanwhile, it is queued again.
    ///
    /// Calling `done` for an item that is not being processed does nothing (it is logged at
    /// `warn` level; client-go would queue the item a second time).
    #[inline]
    pub fn done(&self, item: &T) {
        let hash = self.shared.hasher.hash(item);
        let mut state = self.shared.state.lock();
        let Some(requeued) = state.finish(hash, item, self.shared.metrics.as_ref()) else {
            drop(state);
            tracing::warn!(
                queue = %self.shared.name,
                "kube-workqueue: done called for an item that is not being processed; ignored"
            );
            return;
        };
        let wake_getter = requeued && state.idle_getters > 0;
        let wake_drain = state.processing == 0 && state.drain;
        drop(state);
        if wake_getter {
            self.shared.not_empty.notify_one();
        }
        if wake_drain {
            self.shared.drained.notify_waiters();
        }
    }

    /// Stops accepting items and tells idle workers to exit.
    ///
    /// Items already queued are still handed out; once none is left, [`get`](WorkQueue::get)
    /// returns `None`. Also ends a [`shut_down_with_drain`](WorkQueue::shut_down_with_drain) wait
    /// early. Calling it again does nothing more.
    pub fn shut_down(&self) {
        self.start_shutdown(false);
    }

    /// Stops accepting items, then waits until every item handed out has been marked done.
    ///
    /// Workers must keep calling `done` (and keep getting items that come back because they were
    /// added while processing) or this waits forever; [`shut_down`](WorkQueue::shut_down) from
    /// elsewhere ends the wait.
    pub async fn shut_down_with_drain(&self) {
        self.start_shutdown(true);
        loop {
            let mut drained = pin!(self.shared.drained.notified());
            drained.as_mut().enable();
            {
                let state = self.shared.state.lock();
                if state.processing == 0 || !state.drain {
                    return;
                }
            }
            drained.await;
        }
    }

    /// [`shut_down_with_drain`](WorkQueue::shut_down_with_drain) for non-async callers.
    pub fn shut_down_with_drain_blocking(&self) {
        block_on(self.shut_down_with_drain());
    }

    fn start_shutdown(&self, drain: bool) {
        {
            let mut state = self.shared.state.lock();
            state.drain = drain;
            state.shutting_down = true;
            self.shared.shutting_down.store(true, Ordering::Release);
        }
        self.shared.not_empty.notify_waiters();
        if !drain {
            self.shared.drained.notify_waiters();
        }
        self.shared.shutdown.cancel();
    }
}

impl<T> WorkQueue<T> {
    /// Whether the queue is shutting down (it no longer accepts items).
    #[inline]
    pub fn shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::Acquire)
    }

    /// How many items were dropped instead of queued: added after shutdown, or waiting for
    /// their delay when a delaying queue shut down.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The queue's name (empty if unnamed).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The clock the queue (and its delays and metrics) runs on.
    pub fn clock(&self) -> &SharedClock {
        &self.shared.clock
    }

    /// Cancelled once the queue is shutting down (or its last handle is gone).
    pub(crate) fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    pub(crate) fn record_dropped(&self, count: u64, why: &'static str) {
        self.shared.record_dropped(count, why);
    }
}

impl<T> Shared<T> {
    fn record_dropped(&self, count: u64, why: &'static str) {
        let before = self.dropped.fetch_add(count, Ordering::Relaxed);
        if before == 0 {
            tracing::warn!(
                queue = %self.name,
                count,
                why,
                "kube-workqueue: dropping items (later drops are logged at debug level)"
            );
        } else {
            tracing::debug!(queue = %self.name, count, why, "kube-workqueue: dropping items");
        }
    }
}

impl<T> Default for WorkQueue<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        WorkQueue::new()
    }
}

/// An item being processed, handed out by [`WorkQueue::get_guarded`]: dereferences to the item
/// and calls [`done`](WorkQueue::done) for it when dropped.
///
/// It holds its own handle to the queue (an `Arc` inside), so it is `'static` and can be moved
/// into [`tokio::spawn`] or kept past the handle it came from.
pub struct Processing<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    queue: WorkQueue<T>,
    item: Option<T>,
}

impl<T> Processing<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// The item.
    pub fn item(&self) -> &T {
        self
    }

    /// Marks the item done now and returns it.
    pub fn done(mut self) -> Option<T> {
        let item = self.item.take();
        if let Some(item) = &item {
            self.queue.done(item);
        }
        item
    }
}

impl<T> std::ops::Deref for Processing<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    type Target = T;

    fn deref(&self) -> &T {
        match &self.item {
            Some(item) => item,
            // ok: `item` is only taken by `done(self)` and `drop`, after which `self` is gone.
            None => unreachable!("a Processing guard always holds its item"),
        }
    }
}

impl<T> Drop for Processing<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        if let Some(item) = self.item.take() {
            self.queue.done(&item);
        }
    }
}

impl<T> fmt::Debug for Processing<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static + fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Processing").field(&self.item).finish()
    }
}

/// Takes a cancelled getter off the idle count.
struct IdleGetter<'a, T> {
    shared: &'a Shared<T>,
    counted: bool,
}

impl<T> Drop for IdleGetter<'_, T> {
    fn drop(&mut self) {
        if self.counted {
            self.shared.state.lock().idle_getters -= 1;
        }
    }
}

/// Publishes the unfinished-work gauges every `period` until the queue shuts down or is dropped.
async fn unfinished_work_loop<T>(
    shared: Weak<Shared<T>>,
    clock: SharedClock,
    period: Duration,
    shutdown: CancellationToken,
) where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    let mut ticker = Ticker::new(clock, period);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let state = shared.state.lock();
        if state.shutting_down {
            return;
        }
        if let Some(metrics) = &shared.metrics {
            metrics.update_unfinished_work(state.processing_since());
        }
    }
}

/// The [`WorkQueue`] methods, forwarded by the queues that wrap one (through `self.queue()`).
macro_rules! forward_queue_methods {
    () => {
        /// Marks `item` as needing processing now: see [`WorkQueue::add`].
        #[inline]
        pub fn add(&self, item: T) {
            self.queue().add(item)
        }

        /// Adds a borrowed item, copying it only if new: see [`WorkQueue::add_ref`].
        #[inline]
        pub fn add_ref<Q>(&self, item: &Q)
        where
            T: std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ToOwned<Owned = T> + ?Sized,
        {
            self.queue().add_ref(item)
        }

        /// Adds several items under one lock: see [`WorkQueue::add_all`].
        pub fn add_all<I: IntoIterator<Item = T>>(&self, items: I) {
            self.queue().add_all(items)
        }

        /// How many items are waiting to be handed out: see [`WorkQueue::len`].
        pub fn len(&self) -> usize {
            self.queue().len()
        }

        /// Whether no item is waiting to be handed out: see [`WorkQueue::is_empty`].
        pub fn is_empty(&self) -> bool {
            self.queue().is_empty()
        }

        /// How many items are being processed: see [`WorkQueue::processing`].
        pub fn processing(&self) -> usize {
            self.queue().processing()
        }

        /// Waits for the next item; `None` once shut down and empty: see [`WorkQueue::get`].
        pub async fn get(&self) -> Option<T> {
            self.queue().get().await
        }

        /// Waits for the next item, marked done when the guard drops: see
        /// [`WorkQueue::get_guarded`].
        pub async fn get_guarded(&self) -> Option<$crate::queue::Processing<T>> {
            self.queue().get_guarded().await
        }

        /// Blocking [`get`](Self::get) for non-async callers: see [`WorkQueue::get_blocking`].
        pub fn get_blocking(&self) -> Option<T> {
            self.queue().get_blocking()
        }

        /// Takes the next item if one is waiting: see [`WorkQueue::try_get`].
        pub fn try_get(&self) -> Option<T> {
            self.queue().try_get()
        }

        /// Marks `item` as done processing: see [`WorkQueue::done`].
        #[inline]
        pub fn done(&self, item: &T) {
            self.queue().done(item)
        }

        /// Stops accepting items (and stops the waiting loop): see [`WorkQueue::shut_down`].
        pub fn shut_down(&self) {
            self.queue().shut_down()
        }

        /// Shuts down and waits until every item handed out is done: see
        /// [`WorkQueue::shut_down_with_drain`].
        pub async fn shut_down_with_drain(&self) {
            self.queue().shut_down_with_drain().await
        }

        /// Blocking [`shut_down_with_drain`](Self::shut_down_with_drain): see
        /// [`WorkQueue::shut_down_with_drain_blocking`].
        pub fn shut_down_with_drain_blocking(&self) {
            self.queue().shut_down_with_drain_blocking()
        }

        /// Whether the queue is shutting down: see [`WorkQueue::shutting_down`].
        pub fn shutting_down(&self) -> bool {
            self.queue().shutting_down()
        }

        /// How many items were dropped instead of queued: see [`WorkQueue::dropped`].
        pub fn dropped(&self) -> u64 {
            self.queue().dropped()
        }

        /// The queue's name: see [`WorkQueue::name`].
        pub fn name(&self) -> &str {
            self.queue().name()
        }

        /// The queue's clock: see [`WorkQueue::clock`].
        pub fn clock(&self) -> &kube_flowcontrol::SharedClock {
            self.queue().clock()
        }
    };
}

pub(crate) use forward_queue_methods;
