//! The queueing core of both broadcasters (client-go's `watch.Broadcaster` with
//! `DropIfChannelFull`): a recorder hands an event to every watcher's bounded queue without
//! ever waiting; a full queue drops the event for that watcher (logged and counted). Watchers
//! are tokio tasks, tracked so that a shutdown can flush them within a bound.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use kube_flowcontrol::SharedClock;
use parking_lot::RwLock;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::{DropReason, Metric, MetricsHub};

/// client-go's `maxQueuedEvents`: events a watcher's queue holds before new ones are dropped.
pub const MAX_QUEUED_EVENTS: usize = 1000;

/// Why a recorder did not queue an event. Either way the event is also logged and counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A watcher's queue was full (too many queued events): the event was dropped for it.
    #[error("too many queued events: the {watcher} queue is full, event dropped")]
    QueueFull {
        /// The watcher whose queue was full (`sink`, `logging`, `watcher`, `stream`).
        watcher: &'static str,
    },
    /// The broadcaster was shut down.
    #[error("the event broadcaster is shut down, event dropped")]
    ShutDown,
}

/// Why a watcher could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Watchers are tokio tasks: start them from within a tokio runtime.
    #[error("event watchers must be started from within a tokio runtime")]
    NoRuntime,
    /// The broadcaster was shut down.
    #[error("the event broadcaster is shut down")]
    ShutDown,
    /// An events.k8s.io broadcaster records to one sink only.
    #[error("the broadcaster is already recording to a sink")]
    AlreadyRecording,
}

/// What [`shutdown`](crate::EventBroadcaster::shutdown) achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether every queued event was handled before the flush deadline.
    pub flushed: bool,
}

struct Slot<T> {
    id: u64,
    name: &'static str,
    tx: mpsc::Sender<Arc<T>>,
}

/// Removes a watcher from its broadcaster.
trait Detach: Send + Sync {
    fn detach(&self, id: u64);
}

/// A running watcher (client-go's `watch.Interface` returned by `Start*`): keep it to stop the
/// watcher, or drop it to let the watcher run until the broadcaster shuts down.
pub struct Watcher {
    id: u64,
    broadcaster: Weak<dyn Detach>,
    finished: CancellationToken,
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("id", &self.id)
            .field("finished", &self.finished.is_cancelled())
            .finish()
    }
}

impl Watcher {
    /// Stops receiving events; the events already queued are still handled.
    pub fn stop(&self) {
        if let Some(broadcaster) = self.broadcaster.upgrade() {
            broadcaster.detach(self.id);
        }
    }

    /// Waits until the watcher has handled its last event (after [`stop`](Watcher::stop) or
    /// a shutdown).
    pub async fn finished(&self) {
        self.finished.cancelled().await;
    }
}

/// The shared core of a broadcaster.
pub(crate) struct Fanout<T> {
    watchers: RwLock<Vec<Slot<T>>>,
    shut_down: AtomicBool,
    next_id: AtomicU64,
    capacity: usize,
    pub(crate) metrics: Arc<MetricsHub>,
    pub(crate) tracker: TaskTracker,
    /// Cancelled when a shutdown begins: periodic tasks stop.
    pub(crate) stopping: CancellationToken,
    /// Cancelled when the shutdown's flush deadline passes: retries stop, queues are dropped.
    pub(crate) deadline: CancellationToken,
}

impl<T> fmt::Debug for Fanout<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fanout")
            .field("watchers", &self.watchers.read().len())
            .field("shut_down", &self.shut_down.load(Ordering::Relaxed))
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Detach for Fanout<T> {
    fn detach(&self, id: u64) {
        self.watchers.write().retain(|slot| slot.id != id);
    }
}

impl<T: Send + Sync + 'static> Fanout<T> {
    pub(crate) fn new(capacity: usize, metrics: Arc<MetricsHub>) -> Fanout<T> {
        Fanout {
            watchers: RwLock::new(Vec::new()),
            shut_down: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            capacity: capacity.max(1),
            metrics,
            tracker: TaskTracker::new(),
            stopping: CancellationToken::new(),
            deadline: CancellationToken::new(),
        }
    }

    /// Queues `item` for every watcher without waiting. On a full queue the item is dropped for
    /// that watcher; the error names the (last) watcher that dropped it.
    pub(crate) fn send(&self, item: T, describe: impl Fn(&T) -> String) -> Result<(), RecordError> {
        let watchers = self.watchers.read();
        if self.shut_down.load(Ordering::Acquire) {
            drop(watchers);
            self.metrics.inc(Metric::Dropped(DropReason::ShutDown));
            tracing::error!(event = %describe(&item), "Unable to record event: the broadcaster is shut down (will not retry!)");
            return Err(RecordError::ShutDown);
        }
        let item = Arc::new(item);
        let mut full = None;
        for slot in watchers.iter() {
            match slot.tx.try_send(Arc::clone(&item)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    full = Some(slot.name);
                    self.metrics.inc(Metric::Dropped(DropReason::QueueFull));
                    tracing::error!(watcher = slot.name, queued = self.capacity, event = %describe(&item),
                        "Unable to record event: too many queued events, dropped event");
                }
                // The watcher's task ended early (its handler panicked): nothing to deliver to.
                Err(TrySendError::Closed(_)) => {}
            }
        }
        drop(watchers);
        match full {
            Some(watcher) => Err(RecordError::QueueFull { watcher }),
            None => {
                self.metrics.inc(Metric::Recorded);
                Ok(())
            }
        }
    }

    /// A new watcher queue.
    fn subscribe(&self, name: &'static str) -> Result<(u64, mpsc::Receiver<Arc<T>>), StartError> {
        let mut watchers = self.watchers.write();
        if self.shut_down.load(Ordering::Acquire) {
            return Err(StartError::ShutDown);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.capacity);
        watchers.push(Slot { id, name, tx });
        Ok((id, rx))
    }

    /// Starts a watcher task running `handler` on every event, one at a time.
    pub(crate) fn spawn_watcher<F, Fut>(
        self: &Arc<Self>,
        name: &'static str,
        mut handler: F,
    ) -> Result<Watcher, StartError>
    where
        F: FnMut(Arc<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let (id, mut rx) = self.subscribe(name)?;
        let finished = CancellationToken::new();
        let deadline = self.deadline.clone();
        let metrics = Arc::clone(&self.metrics);
        let done = finished.clone().drop_guard();
        let weak: Weak<Fanout<T>> = Arc::downgrade(self);
        self.tracker.spawn_on(
            async move {
                let _done = done;
                loop {
                    let item = tokio::select! {
                        biased;
                        _ = deadline.cancelled() => break,
                        item = rx.recv() => match item {
                            Some(item) => item,
                            None => return,
                        },
                    };
                    handler(item).await;
                }
                // The flush deadline passed: what is still queued is dropped.
                rx.close();
                let mut left = 0u64;
                while rx.try_recv().is_ok() {
                    left += 1;
                    metrics.inc(Metric::Dropped(DropReason::FlushTimeout));
                }
                if left > 0 {
                    tracing::error!(watcher = name, dropped = left,
                        "Unable to record events: the broadcaster's shutdown deadline passed, dropped queued events");
                }
                if let Some(fanout) = weak.upgrade() {
                    fanout.detach(id);
                }
            },
            &runtime,
        );
        let broadcaster: Arc<dyn Detach> = self.clone();
        Ok(Watcher {
            id,
            broadcaster: Arc::downgrade(&broadcaster),
            finished,
        })
    }

    /// A stream of the events (its queue drops on overflow like any watcher's).
    pub(crate) fn stream(self: &Arc<Self>) -> Result<EventStream<T>, StartError> {
        let (id, rx) = self.subscribe("stream")?;
        let fanout: Arc<dyn Detach> = self.clone();
        Ok(EventStream {
            id,
            rx,
            broadcaster: Arc::downgrade(&fanout),
        })
    }

    /// Stops accepting events, lets the watchers handle what is queued for at most
    /// `flush_timeout`, then stops them.
    pub(crate) async fn shutdown(
        &self,
        clock: &SharedClock,
        flush_timeout: Duration,
    ) -> ShutdownReport {
        {
            let mut watchers = self.watchers.write();
            self.shut_down.store(true, Ordering::Release);
            watchers.clear();
        }
        self.stopping.cancel();
        self.tracker.close();
        let flushed = tokio::select! {
            _ = self.tracker.wait() => true,
            _ = clock.sleep(flush_timeout) => false,
        };
        if !flushed {
            tracing::warn!(
                ?flush_timeout,
                "event broadcaster: queued events not flushed before the deadline"
            );
        }
        self.deadline.cancel();
        self.tracker.wait().await;
        ShutdownReport { flushed }
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }
}

/// The events of a broadcaster as a `Stream` (from
/// [`EventBroadcaster::stream`](crate::EventBroadcaster::stream)). Its queue holds at most
/// 1000 events: a consumer that falls behind loses events (logged and counted). The stream
/// ends when the broadcaster shuts down; dropping it unsubscribes.
pub struct EventStream<T> {
    id: u64,
    rx: mpsc::Receiver<Arc<T>>,
    broadcaster: Weak<dyn Detach>,
}

impl<T> fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<T> futures_core::Stream for EventStream<T> {
    type Item = Arc<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Arc<T>>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

impl<T> Drop for EventStream<T> {
    fn drop(&mut self) {
        if let Some(broadcaster) = self.broadcaster.upgrade() {
            broadcaster.detach(self.id);
        }
    }
}
