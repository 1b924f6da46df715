//! One client of a shared informer (client-go's `processorListener`): an unbounded buffer of
//! notifications, the per-handler resync bookkeeping and the per-handler `has_synced`.
//!
//! client-go pumps notifications through two unbuffered channels, a goroutine and a growing
//! ring buffer; here the distributor appends to a `VecDeque` under a short lock and wakes the
//! consumer (the handler's task, or the poller of an event stream). Adding never waits for
//! the consumer, so a slow handler delays nobody but itself.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use kube_apimachinery::Object;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::delta_fifo::DeltaFifo;
use crate::informer::handler::{InformerEvent, ResourceEventHandler};

/// How many notifications a listener's buffer keeps room for after it drains: a buffer
/// that grew past this while its handler was slow gives the memory back once it empties
/// (client-go's initial ring size).
pub(crate) const INITIAL_BUFFER_SIZE: usize = 1024;

/// Where a listener's notifications go.
pub(crate) enum Sink<K> {
    /// A handler called by the listener's own task.
    Handler(Arc<dyn ResourceEventHandler<K>>),
    /// An event stream polled by its owner.
    Stream,
}

struct Buffer<K> {
    queue: VecDeque<InformerEvent<K>>,
    closed: bool,
    waker: Option<Waker>,
    high_water: usize,
}

struct Resync {
    /// The period asked for, after the 1 s minimum (client-go's `requestedResyncPeriod`).
    requested: Duration,
    /// The period in effect: 0 when the informer does no resyncs (client-go's `resyncPeriod`).
    period: Duration,
    /// The earliest time of the next resync.
    next: Instant,
}

/// One registered client: buffer, resync state, initial-list tracking.
pub(crate) struct Listener<K> {
    pub(crate) id: u64,
    sink: Sink<K>,
    buffer: Mutex<Buffer<K>>,
    resync: Mutex<Resync>,
    /// Initial-list `Added` notifications queued and not yet handled (client-go's
    /// `synctrack.SingleFileTracker` count); published so `wait_for_sync` can wait on it.
    initial_pending: watch::Sender<usize>,
    /// The informer's queue: its `has_synced` is the upstream of this listener's.
    upstream: DeltaFifo<K>,
    delivered: AtomicU64,
    dropped: AtomicU64,
    panics: AtomicU64,
    received: AtomicU64,
}

impl<K> fmt::Debug for Listener<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buffer = self.buffer.lock();
        f.debug_struct("Listener")
            .field("id", &self.id)
            .field("pending", &buffer.queue.len())
            .field("closed", &buffer.closed)
            .finish()
    }
}

impl<K: Object + Send + Sync + 'static> Listener<K> {
    pub(crate) fn new(
        id: u64,
        sink: Sink<K>,
        requested: Duration,
        period: Duration,
        now: Instant,
        upstream: DeltaFifo<K>,
    ) -> Listener<K> {
        Listener {
            id,
            sink,
            buffer: Mutex::new(Buffer {
                queue: VecDeque::new(),
                closed: false,
                waker: None,
                high_water: 0,
            }),
            resync: Mutex::new(Resync {
                requested,
                period,
                next: kube_flowcontrol::clock::instant_after(now, period),
            }),
            initial_pending: watch::Sender::new(0),
            upstream,
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    /// Whether a task must run this listener's handler.
    pub(crate) fn handler(&self) -> Option<Arc<dyn ResourceEventHandler<K>>> {
        match &self.sink {
            Sink::Handler(h) => Some(Arc::clone(h)),
            Sink::Stream => None,
        }
    }

    /// Queues a notification (client-go's `processorListener.add`); never waits. Ignored
    /// once the listener is closed.
    pub(crate) fn add(&self, event: InformerEvent<K>) {
        let initial = event.is_initial_add();
        let waker = {
            let mut buffer = self.buffer.lock();
            if buffer.closed {
                drop(buffer);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    listener = self.id,
                    "notification for a stopped handler dropped"
                );
                return;
            }
            if initial {
                // Counted before the notification can be handled (client-go's
                // `syncTracker.Start` before the send).
                self.initial_pending.send_modify(|n| *n += 1);
            }
            buffer.queue.push_back(event);
            let len = buffer.queue.len();
            if len > buffer.high_water {
                buffer.high_water = len;
            }
            buffer.waker.take()
        };
        self.received.fetch_add(1, Ordering::Relaxed);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Takes the next notification, or registers the consumer's waker; `Ready(None)` once
    /// closed. The initial-list accounting of the returned notification is the caller's
    /// ([`finished`](Self::finished)).
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<InformerEvent<K>>> {
        let mut buffer = self.buffer.lock();
        if let Some(event) = buffer.queue.pop_front() {
            if buffer.queue.is_empty() && buffer.queue.capacity() > INITIAL_BUFFER_SIZE {
                // A backlog drained: give the memory back (client-go's ring keeps it).
                buffer.queue.shrink_to(INITIAL_BUFFER_SIZE);
            }
            return Poll::Ready(Some(event));
        }
        if buffer.closed {
            return Poll::Ready(None);
        }
        match &buffer.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => buffer.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Records a handled notification: an initial-list `Added` no longer holds back
    /// `has_synced` (client-go's `syncTracker.Finished`).
    pub(crate) fn finished(&self, event: &InformerEvent<K>) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if event.is_initial_add() {
            self.initial_pending
                .send_modify(|n| *n = n.saturating_sub(1));
        }
    }

    /// Stops the listener: pending notifications are dropped (and counted, and logged), the
    /// consumer sees the end (client-go closes `addCh`; `pop` returns at once).
    pub(crate) fn close(&self) {
        let (dropped, waker) = {
            let mut buffer = self.buffer.lock();
            if buffer.closed {
                return;
            }
            buffer.closed = true;
            let dropped: Vec<_> = buffer.queue.drain(..).collect();
            buffer.queue = VecDeque::new();
            (dropped, buffer.waker.take())
        };
        if !dropped.is_empty() {
            let initial = dropped.iter().filter(|e| e.is_initial_add()).count();
            self.dropped
                .fetch_add(dropped.len() as u64, Ordering::Relaxed);
            if initial > 0 {
                self.initial_pending
                    .send_modify(|n| *n = n.saturating_sub(initial));
            }
            tracing::warn!(
                listener = self.id,
                dropped = dropped.len(),
                "event handler stopped with notifications still pending; they are dropped"
            );
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.buffer.lock().closed
    }

    /// Counts a panic of the handler.
    pub(crate) fn record_panic(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the informer has synced and every initial-list notification queued for this
    /// listener was handled (client-go's `processorListener.HasSynced`).
    pub(crate) fn has_synced(&self) -> bool {
        // Upstream first: it takes the queue lock (client-go's order in SingleFileTracker).
        self.upstream.has_synced() && *self.initial_pending.borrow() == 0
    }

    /// Waits for [`has_synced`](Self::has_synced).
    pub(crate) async fn wait_for_sync(&self) {
        self.upstream.wait_for_sync().await;
        let mut rx = self.initial_pending.subscribe();
        // The sender lives as long as `self`.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Whether a resync is due at `now` (client-go's `shouldResync`).
    pub(crate) fn should_resync(&self, now: Instant) -> bool {
        let resync = self.resync.lock();
        resync.period != Duration::ZERO && now >= resync.next
    }

    /// Schedules the next resync one period after `now` (client-go's `determineNextResync`).
    pub(crate) fn determine_next_resync(&self, now: Instant) {
        let mut resync = self.resync.lock();
        resync.next = kube_flowcontrol::clock::instant_after(now, resync.period);
    }

    /// Changes the period in effect (client-go's `setResyncPeriod`).
    pub(crate) fn set_resync_period(&self, period: Duration) {
        self.resync.lock().period = period;
    }

    pub(crate) fn requested_resync_period(&self) -> Duration {
        self.resync.lock().requested
    }

    pub(crate) fn resync_period(&self) -> Duration {
        self.resync.lock().period
    }

    pub(crate) fn stats(&self) -> ListenerStats {
        let buffer = self.buffer.lock();
        ListenerStats {
            received: self.received.load(Ordering::Relaxed),
            pending: buffer.queue.len(),
            max_pending: buffer.high_water,
            capacity: buffer.queue.capacity(),
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
        }
    }
}

/// The counters of one handler's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenerStats {
    /// Notifications queued for the handler since it was added.
    pub received: u64,
    /// Notifications queued and not yet handled.
    pub pending: usize,
    /// The most notifications ever queued at once.
    pub max_pending: usize,
    /// The buffer's current capacity (it grows without bound while the handler lags, and
    /// shrinks back once it drains).
    pub capacity: usize,
    /// Notifications handled.
    pub delivered: u64,
    /// Notifications dropped: pending when the handler was removed or the informer stopped,
    /// or sent after.
    pub dropped: u64,
    /// Panics of the handler caught (each skipped one notification).
    pub panics: u64,
}
