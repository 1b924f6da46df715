//! The delaying queue (client-go's `DelayingInterface`): add an item after a delay.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use kube_flowcontrol::SharedClock;
use kube_flowcontrol::clock::instant_after;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::builder::{Delaying, QueueBuilder, QueueConfig};
use crate::metrics::CounterMetric;
use crate::queue::{HashMap, WorkQueue};
use crate::runtime::Spawner;

/// A [`WorkQueue`] that can also add an item once a delay has passed, on the queue's clock.
///
/// Delayed items wait in a min-heap ordered by ready time. A second
/// [`add_after`](DelayingQueue::add_after) for an item that is still waiting keeps the earlier
/// ready time. A waiting loop (a background task) sleeps on the injected clock until the
/// earliest ready time, or at most the heartbeat (10 s), then adds every ready item to the
/// queue, where the usual deduplication applies. With a
/// [`FakeClock`](kube_flowcontrol::FakeClock), tests step the clock instead of sleeping.
///
/// Shutting the queue down stops the waiting loop; items still waiting are dropped (logged
/// and counted by [`dropped`](DelayingQueue::dropped)).
///
/// ```
/// use std::time::Duration;
/// use kube_flowcontrol::FakeClock;
/// use kube_workqueue::DelayingQueue;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let clock = FakeClock::new();
/// let queue = DelayingQueue::builder().clock(clock.shared()).build();
/// queue.add_after("retry-me", Duration::from_secs(30));
/// assert_eq!((queue.len(), queue.waiting_len()), (0, 1));
///
/// clock.step(Duration::from_secs(30));
/// assert_eq!(queue.get().await, Some("retry-me")); // the loop added it
/// # }
/// ```
pub struct DelayingQueue<T> {
    shared: Arc<DelayShared<T>>,
}

impl<T> Clone for DelayingQueue<T> {
    fn clone(&self) -> Self {
        DelayingQueue {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> fmt::Debug for DelayingQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiting = self.shared.waiting.lock();
        f.debug_struct("DelayingQueue")
            .field("queue", &self.shared.queue)
            .field("waiting", &waiting.entries.len())
            .finish_non_exhaustive()
    }
}

/// What every handle of a delaying queue shares.
struct DelayShared<T> {
    queue: WorkQueue<T>,
    clock: SharedClock,
    waiting: Mutex<Waiting<T>>,
    signal: Arc<LoopSignal>,
    spawner: Spawner,
    retries: Option<Arc<dyn CounterMetric>>,
    heartbeat: Duration,
}

/// How the waiting loop is woken; owned separately so that the loop does not keep the queue
/// alive while it sleeps.
struct LoopSignal {
    /// A new item is ready earlier than the loop's current deadline.
    wake: Notify,
    /// The last handle was dropped.
    stop: CancellationToken,
}

impl<T> Drop for DelayShared<T> {
    fn drop(&mut self) {
        self.signal.stop.cancel();
        let abandoned = self.waiting.get_mut().discard();
        if abandoned > 0 {
            self.queue
                .record_dropped(abandoned, "delaying queue dropped while items were waiting");
        }
    }
}

/// The loop's state as seen by `add_after`, to decide whether the loop must be woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoopState {
    /// Not started yet (it starts with the first delayed item).
    NotStarted,
    /// Running, or about to run: it will look at the heap before sleeping again.
    Busy,
    /// Sleeping with no item waiting.
    Idle,
    /// Sleeping until this instant.
    Until(Instant),
    /// Gone (the queue shut down): delayed items can no longer be accepted.
    Stopped,
}

/// One scheduled add. Ordered by ready time, then by insertion (so equal times stay FIFO).
struct Pending<T> {
    ready_at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Pending<T> {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}

impl<T> Eq for Pending<T> {}

impl<T> PartialOrd for Pending<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Pending<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and the earliest ready time must come first.
        (other.ready_at, other.seq).cmp(&(self.ready_at, self.seq))
    }
}

/// The min-heap of delayed items with client-go's "keep the earlier ready time" rule.
///
/// Moving an item earlier pushes a new heap entry and leaves the old one behind as stale:
/// `entries` records the sequence number of each item's live entry, and stale ones are skipped
/// when they reach the top. That avoids tracking heap positions on every swap.
struct Waiting<T> {
    heap: BinaryHeap<Pending<T>>,
    entries: HashMap<T, (Instant, u64)>,
    next_seq: u64,
    state: LoopState,
}

impl<T: Hash + Eq + Clone> Waiting<T> {
    /// Schedules `item` at `ready_at` unless it is already scheduled no later.
    fn insert(&mut self, item: T, ready_at: Instant) -> bool {
        let seq = self.next_seq;
        match self.entries.get_mut(&item) {
            Some(live) if live.0 <= ready_at => return false,
            Some(live) => *live = (ready_at, seq),
            None => {
                self.entries.insert(item.clone(), (ready_at, seq));
            }
        }
        self.next_seq += 1;
        self.heap.push(Pending {
            ready_at,
            seq,
            item,
        });
        true
    }

    fn is_live(&self, pending: &Pending<T>) -> bool {
        self.entries
            .get(&pending.item)
            .is_some_and(|&(_, seq)| seq == pending.seq)
    }

    /// Moves every item ready at `now` into `ready`, in ready-time order.
    fn pop_ready(&mut self, now: Instant, ready: &mut Vec<T>) {
        while let Some(top) = self.heap.peek() {
            if top.ready_at > now {
                break;
            }
            let Some(pending) = self.heap.pop() else {
                break;
            };
            if self.is_live(&pending) {
                self.entries.remove(&pending.item);
                ready.push(pending.item);
            }
        }
    }

    /// The earliest ready time of a live entry, dropping stale entries on top.
    fn next_ready_at(&mut self) -> Option<Instant> {
        while let Some(top) = self.heap.peek() {
            if self.is_live(top) {
                return Some(top.ready_at);
            }
            self.heap.pop();
        }
        None
    }
}

impl<T> Waiting<T> {
    /// Forgets every waiting item; returns how many there were.
    fn discard(&mut self) -> u64 {
        let count = self.entries.len() as u64;
        self.entries.clear();
        self.heap.clear();
        count
    }
}

impl<T> DelayingQueue<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// An unnamed delaying queue on the real clock, without metrics.
    pub fn new() -> Self {
        QueueBuilder::new().delaying().build()
    }

    /// A builder for a delaying queue (name, clock, metrics...).
    pub fn builder() -> QueueBuilder<T, Delaying> {
        QueueBuilder::new().delaying()
    }

    pub(crate) fn from_config(config: &QueueConfig) -> Self {
        let spawner = Spawner::new(config.runtime.clone());
        let queue = WorkQueue::from_config(config, &spawner);
        let retries = config
            .metrics_provider()
            .map(|provider| provider.new_retries_metric(&config.name));
        DelayingQueue {
            shared: Arc::new(DelayShared {
                queue,
                clock: Arc::clone(&config.clock),
                waiting: Mutex::new(Waiting {
                    heap: BinaryHeap::new(),
                    entries: HashMap::default(),
                    next_seq: 0,
                    state: LoopState::NotStarted,
                }),
                signal: Arc::new(LoopSignal {
                    wake: Notify::new(),
                    stop: CancellationToken::new(),
                }),
                spawner,
                retries,
                heartbeat: config.heartbeat,
            }),
        }
    }

    /// Adds `item` to the queue once `delay` has passed on the queue's clock; a zero delay adds
    /// it now.
    ///
    /// If the item is already waiting, the earlier of the two ready times wins. Ignored (logged
    /// and counted) once the queue is shutting down. Counts as a retry in the metrics.
    pub fn add_after(&self, item: T, delay: Duration) {
        let shared = &*self.shared;
        if shared.queue.shutting_down() {
            shared.queue.record_dropped(1, "delayed add after shutdown");
            return;
        }
        if let Some(retries) = &shared.retries {
            retries.inc();
        }
        if delay.is_zero() {
            shared.queue.add(item);
            return;
        }
        let ready_at = instant_after(shared.clock.now(), delay);
        let decision = {
            let mut waiting = shared.waiting.lock();
            let state = waiting.state;
            if state == LoopState::Stopped {
                None
            } else {
                let earlier = waiting.insert(item, ready_at);
                let wake = earlier
                    && match state {
                        LoopState::Idle => true,
                        LoopState::Until(deadline) => ready_at < deadline,
                        _ => false,
                    };
                if wake || state == LoopState::NotStarted {
                    // The loop will look at the heap again: later adds need not wake it.
                    waiting.state = LoopState::Busy;
                }
                Some((wake, state == LoopState::NotStarted))
            }
        };
        let Some((wake, start)) = decision else {
            // Shut down between the check above and now: the waiting loop is gone.
            shared.queue.record_dropped(1, "delayed add after shutdown");
            return;
        };
        if start {
            self.start_loop();
        } else if wake {
            shared.signal.wake.notify_one();
        }
    }

    fn start_loop(&self) {
        let shared = &*self.shared;
        let waiting_loop = waiting_loop(
            Arc::downgrade(&self.shared),
            Arc::clone(&shared.signal),
            shared.queue.shutdown_token(),
        );
        if let Err(error) = shared.spawner.spawn("delay", waiting_loop) {
            tracing::error!(
                queue = %shared.queue.name(),
                error = &error as &dyn std::error::Error,
                "kube-workqueue: cannot start the waiting loop; delayed items are added now"
            );
            // Better early than never: hand the items to the queue without their delay.
            let mut ready = Vec::new();
            {
                let mut waiting = shared.waiting.lock();
                waiting.pop_ready(far_future(), &mut ready);
                waiting.state = LoopState::NotStarted;
            }
            shared.queue.add_all(ready);
        }
    }

    /// How many items are waiting for their delay to pass.
    pub fn waiting_len(&self) -> usize {
        self.shared.waiting.lock().entries.len()
    }

    /// The underlying queue (shares its state with this one).
    pub fn queue(&self) -> &WorkQueue<T> {
        &self.shared.queue
    }

    crate::queue::forward_queue_methods!();
}

impl<T> Default for DelayingQueue<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        DelayingQueue::new()
    }
}

/// An instant later than anything scheduled.
fn far_future() -> Instant {
    instant_after(Instant::now(), Duration::MAX)
}

/// Adds ready items to the queue and sleeps until the next ready time, the heartbeat, a wake-up
/// from `add_after`, or the end of the queue.
async fn waiting_loop<T>(
    shared: Weak<DelayShared<T>>,
    signal: Arc<LoopSignal>,
    queue_shutdown: CancellationToken,
) where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    let mut ready = Vec::new();
    loop {
        let sleep = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if shared.queue.shutting_down() {
                let abandoned = {
                    let mut waiting = shared.waiting.lock();
                    waiting.state = LoopState::Stopped;
                    waiting.discard()
                };
                if abandoned > 0 {
                    shared
                        .queue
                        .record_dropped(abandoned, "queue shut down while items were waiting");
                }
                return;
            }
            let now = shared.clock.now();
            let next = {
                let mut waiting = shared.waiting.lock();
                waiting.pop_ready(now, &mut ready);
                let next = waiting.next_ready_at();
                waiting.state = match next {
                    Some(deadline) => LoopState::Until(deadline),
                    None => LoopState::Idle,
                };
                next
            };
            if !ready.is_empty() {
                shared.queue.add_all(ready.drain(..));
            }
            next.map(|deadline| {
                let heartbeat = instant_after(now, shared.heartbeat);
                shared.clock.sleep_until(deadline.min(heartbeat))
            })
        };
        let woken = signal.wake.notified();
        match sleep {
            Some(sleep) => tokio::select! {
                biased;
                () = signal.stop.cancelled() => return,
                () = queue_shutdown.cancelled() => {}
                () = woken => {}
                () = sleep => {}
            },
            None => tokio::select! {
                biased;
                () = signal.stop.cancelled() => return,
                () = queue_shutdown.cancelled() => {}
                () = woken => {}
            },
        }
    }
}
