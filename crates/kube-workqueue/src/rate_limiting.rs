//! The rate-limiting queue (client-go's `RateLimitingInterface`): retries with backoff.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use crate::builder::{QueueBuilder, RateLimited};
use crate::delaying::DelayingQueue;
use crate::queue::WorkQueue;
use crate::rate_limiter::ItemRateLimiter;

/// A [`DelayingQueue`] whose retries are delayed by a [`ItemRateLimiter`].
///
/// The controller pattern: on failure call [`add_rate_limited`](RateLimitingQueue::add_rate_limited)
/// (the item comes back after the limiter's delay, which grows with every failure), on success
/// call [`forget`](RateLimitingQueue::forget) (the history is cleared), and give up when
/// [`num_requeues`](RateLimitingQueue::num_requeues) gets too high. In every case call
/// [`done`](RateLimitingQueue::done).
///
/// ```
/// use std::time::Duration;
/// use kube_flowcontrol::FakeClock;
/// use kube_workqueue::RateLimitingQueue;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let clock = FakeClock::new();
/// let queue = RateLimitingQueue::builder().clock(clock.shared()).build();
/// queue.add("default/web");
/// let key = queue.get().await.unwrap();
/// // The sync failed: retry later.
/// queue.add_rate_limited(key);
/// queue.done(&key);
/// assert_eq!(queue.num_requeues(&key), 1);
///
/// clock.step(Duration::from_millis(5)); // the first retry waits 5 ms
/// let key = queue.get().await.unwrap();
/// // This time it worked.
/// queue.forget(&key);
/// queue.done(&key);
/// assert_eq!(queue.num_requeues(&key), 0);
/// # }
/// ```
pub struct RateLimitingQueue<T> {
    delaying: DelayingQueue<T>,
    limiter: Arc<dyn ItemRateLimiter<T>>,
}

impl<T> Clone for RateLimitingQueue<T> {
    fn clone(&self) -> Self {
        RateLimitingQueue {
            delaying: self.delaying.clone(),
            limiter: Arc::clone(&self.limiter),
        }
    }
}

impl<T> fmt::Debug for RateLimitingQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitingQueue")
            .field("delaying", &self.delaying)
            .finish_non_exhaustive()
    }
}

impl<T> RateLimitingQueue<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// An unnamed queue on the real clock, without metrics, retrying with `limiter`.
    pub fn new(limiter: impl ItemRateLimiter<T> + 'static) -> Self {
        QueueBuilder::new().rate_limiter(limiter).build()
    }

    /// A builder for a rate-limiting queue. Unless another limiter is given with
    /// [`rate_limiter`](QueueBuilder::rate_limiter), it uses client-go's
    /// [`default_controller_rate_limiter`](crate::default_controller_rate_limiter), on the queue's
    /// clock.
    pub fn builder() -> QueueBuilder<T, RateLimited<T>> {
        QueueBuilder::new().default_rate_limited()
    }

    pub(crate) fn from_parts(
        delaying: DelayingQueue<T>,
        limiter: Arc<dyn ItemRateLimiter<T>>,
    ) -> Self {
        RateLimitingQueue { delaying, limiter }
    }

    /// Adds `item` after the delay its rate limiter decides (one more failure for the item).
    pub fn add_rate_limited(&self, item: T) {
        let delay = self.limiter.when(&item);
        self.delaying.add_after(item, delay);
    }

    /// Clears `item`'s failure history in the rate limiter. It does not remove the item from the
    /// queue: the worker still calls [`done`](RateLimitingQueue::done).
    pub fn forget(&self, item: &T) {
        self.limiter.forget(item);
    }

    /// How many times `item` was rate limited since it was last forgotten.
    pub fn num_requeues(&self, item: &T) -> usize {
        self.limiter.num_requeues(item)
    }

    /// Adds `item` after `delay`: see [`DelayingQueue::add_after`].
    pub fn add_after(&self, item: T, delay: Duration) {
        self.delaying.add_after(item, delay);
    }

    /// How many items are waiting for their delay: see [`DelayingQueue::waiting_len`].
    pub fn waiting_len(&self) -> usize {
        self.delaying.waiting_len()
    }

    /// The rate limiter.
    pub fn rate_limiter(&self) -> &Arc<dyn ItemRateLimiter<T>> {
        &self.limiter
    }

    /// The delaying queue underneath (shares its state with this one).
    pub fn delaying_queue(&self) -> &DelayingQueue<T> {
        &self.delaying
    }

    /// The plain queue underneath (shares its state with this one).
    pub fn queue(&self) -> &WorkQueue<T> {
        self.delaying.queue()
    }

    crate::queue::forward_queue_methods!();
}
