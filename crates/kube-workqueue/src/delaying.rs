//! The delaying queue (client-go's `DelayingInterface`): add an item after a delay.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hashbrown::HashTable;
use kube_flowcontrol::SharedClock;
use kube_flowcontrol::clock::{instant_after, signed_nanos_between};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::builder::{Delaying, QueueBuilder, QueueConfig};
use crate::metrics::CounterMetric;
use crate::queue::WorkQueue;
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
            .field("waiting", &waiting.len())
            .finish_non_exhaustive()
    }
}

/// What every handle of a delaying queue shares.
struct DelayShared<T> {
    queue: WorkQueue<T>,
    clock: SharedClock,
    waiting: Mutex<Waiting<T>>,
    /// Hashes items for `waiting`'s index before its lock is taken.
    hasher: foldhash::fast::RandomState,
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

/// A heap entry: the item in `slot` is due at `at` (nanoseconds after the queue's epoch).
/// Ordered by time, then by insertion, so that equal times stay FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Due {
    at: i64,
    seq: u64,
    slot: usize,
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and the earliest time must come first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A waiting item and its current ready time; `seq` identifies its live heap entry. The item's
/// hash is kept so that neither growing the index nor removing the item hashes it again.
struct Live<T> {
    item: T,
    hash: u64,
    ready_at: Instant,
    seq: u64,
}

/// How many ready items the loop moves per lock acquisition, so `add_after` never waits long.
const BATCH: usize = 512;

/// The delayed items: a min-heap of small [`Due`] entries over a slab of items, and a hash index
/// for client-go's "keep the earlier ready time" rule.
///
/// Each item is stored once (in the slab), never cloned. Moving an item earlier pushes a new
/// heap entry and leaves the old one behind as stale: an entry is live only while its `seq`
/// matches its slot's, and stale entries are skipped when they reach the top.
struct Waiting<T> {
    slots: Vec<Option<Live<T>>>,
    free: Vec<usize>,
    index: HashTable<usize>,
    heap: BinaryHeap<Due>,
    epoch: Instant,
    next_seq: u64,
    state: LoopState,
}

impl<T> Waiting<T> {
    fn new(epoch: Instant) -> Self {
        Waiting {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            heap: BinaryHeap::new(),
            epoch,
            next_seq: 0,
            state: LoopState::NotStarted,
        }
    }

    /// How many items wait.
    fn len(&self) -> usize {
        self.index.len()
    }

    /// `instant` as signed nanoseconds from the epoch (a fake clock may go back before it).
    fn nanos(&self, instant: Instant) -> i64 {
        signed_nanos_between(instant, self.epoch)
    }

    fn is_live(&self, due: &Due) -> bool {
        self.slots
            .get(due.slot)
            .and_then(Option::as_ref)
            .is_some_and(|live| live.seq == due.seq)
    }

    /// Forgets every waiting item; returns how many there were.
    fn discard(&mut self) -> u64 {
        let count = self.len() as u64;
        self.slots.clear();
        self.free.clear();
        self.index.clear();
        self.heap.clear();
        count
    }
}

impl<T: Hash + Eq> Waiting<T> {
    /// Schedules `item` (whose hash by the queue's hasher is `hash`) at `ready_at` unless it is
    /// already scheduled no later; returns whether the item's ready time changed.
    fn insert(&mut self, hash: u64, item: T, ready_at: Instant) -> bool {
        let at = self.nanos(ready_at);
        let seq = self.next_seq;
        let Waiting {
            slots,
            free,
            index,
            heap,
            ..
        } = self;
        let found = index
            .find(hash, |&slot| {
                slots
                    .get(slot)
                    .and_then(Option::as_ref)
                    .is_some_and(|live| live.item == item)
            })
            .copied();
        let slot = match found {
            Some(slot) => {
                let Some(live) = slots.get_mut(slot).and_then(Option::as_mut) else {
                    return false; // the index only refers to live slots
                };
                if live.ready_at <= ready_at {
                    return false;
                }
                live.ready_at = ready_at;
                live.seq = seq;
                slot
            }
            None => {
                let live = Live {
                    item,
                    hash,
                    ready_at,
                    seq,
                };
                let slot = match free.pop().filter(|&slot| slot < slots.len()) {
                    Some(slot) => {
                        slots[slot] = Some(live); // in bounds: checked just above
                        slot
                    }
                    None => {
                        slots.push(Some(live));
                        slots.len() - 1
                    }
                };
                index.insert_unique(hash, slot, |&slot| {
                    slots
                        .get(slot)
                        .and_then(Option::as_ref)
                        .map_or(0, |live| live.hash)
                });
                slot
            }
        };
        self.next_seq += 1;
        heap.push(Due { at, seq, slot });
        true
    }

    /// Moves up to `max` items ready at `now` into `ready`, in ready-time order; returns whether
    /// more ready items remain.
    fn pop_ready(&mut self, now: Instant, ready: &mut Vec<T>, max: usize) -> bool {
        let now = self.nanos(now);
        let mut moved = 0;
        while let Some(top) = self.heap.peek() {
            if top.at > now {
                return false;
            }
            if moved == max {
                return true;
            }
            let Some(due) = self.heap.pop() else {
                return false;
            };
            if !self.is_live(&due) {
                continue; // stale: the item moved earlier and was handled then
            }
            let Some(live) = self.slots.get_mut(due.slot).and_then(Option::take) else {
                continue; // is_live checked that the slot is occupied
            };
            if let Ok(entry) = self.index.find_entry(live.hash, |&slot| slot == due.slot) {
                entry.remove();
            }
            self.free.push(due.slot);
            ready.push(live.item);
            moved += 1;
        }
        false
    }

    /// The earliest ready time of a waiting item, dropping stale entries on top.
    fn next_ready_at(&mut self) -> Option<Instant> {
        while let Some(top) = self.heap.peek() {
            let live = self.slots.get(top.slot).and_then(Option::as_ref);
            if let Some(live) = live.filter(|live| live.seq == top.seq) {
                return Some(live.ready_at);
            }
            self.heap.pop();
        }
        None
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
                waiting: Mutex::new(Waiting::new(config.clock.now())),
                hasher: foldhash::fast::RandomState::default(),
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
        let hash = shared.hasher.hash_one(&item);
        let decision = {
            let mut waiting = shared.waiting.lock();
            let state = waiting.state;
            if state == LoopState::Stopped {
                None
            } else {
                let earlier = waiting.insert(hash, item, ready_at);
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
            // The unstarted loop was dropped: its exit guard has stopped delayed adds and
            // dropped (logged, counted) the waiting items; nothing fires early.
            tracing::error!(
                queue = %shared.queue.name(),
                error = &error as &dyn std::error::Error,
                "kube-workqueue: cannot start the waiting loop"
            );
        }
    }

    /// How many items are waiting for their delay to pass.
    pub fn waiting_len(&self) -> usize {
        self.shared.waiting.lock().len()
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

/// Adds ready items to the queue and sleeps until the next ready time, the heartbeat, a wake-up
/// from `add_after`, or the end of the queue.
///
/// The exit guard exists before the future is first polled, so a loop dropped unpolled (its
/// runtime shutting down, a spawn that failed) still stops delayed adds and counts what waited.
fn waiting_loop<T>(
    shared: Weak<DelayShared<T>>,
    signal: Arc<LoopSignal>,
    queue_shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    let exit = LoopExit {
        shared: shared.clone(),
        finished: false,
    };
    async move {
        // Take the whole guard into the future (not just the field assigned below).
        let mut exit = exit;
        run_waiting_loop(shared, signal, queue_shutdown).await;
        exit.finished = true;
    }
}

/// Notices a waiting loop that was dropped before it finished (its runtime shut down): from then
/// on nothing would ever add the waiting items, so they are dropped, logged and counted, and so
/// are later delayed adds.
struct LoopExit<T> {
    shared: Weak<DelayShared<T>>,
    finished: bool,
}

impl<T> Drop for LoopExit<T> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let abandoned = {
            let mut waiting = shared.waiting.lock();
            waiting.state = LoopState::Stopped;
            waiting.discard()
        };
        tracing::error!(
            queue = %shared.queue.name(),
            abandoned,
            "kube-workqueue: the waiting loop was cancelled (its runtime shut down); \
             delayed adds are dropped from now on"
        );
        if abandoned > 0 {
            shared
                .queue
                .record_dropped(abandoned, "waiting loop cancelled with items waiting");
        }
    }
}

async fn run_waiting_loop<T>(
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
            let next = loop {
                let (more, next) = {
                    let mut waiting = shared.waiting.lock();
                    let more = waiting.pop_ready(now, &mut ready, BATCH);
                    let next = if more {
                        None
                    } else {
                        let next = waiting.next_ready_at();
                        waiting.state = match next {
                            Some(deadline) => LoopState::Until(deadline),
                            None => LoopState::Idle,
                        };
                        next
                    };
                    (more, next)
                };
                if !ready.is_empty() {
                    shared.queue.add_all(ready.drain(..));
                }
                if !more {
                    break next;
                }
            };
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
