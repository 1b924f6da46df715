//! Rate limiters for [`RateLimitingQueue`](crate::RateLimitingQueue): how long an item waits
//! before it is retried (client-go's `default_rate_limiters.go`).
//!
//! | limiter | `when(item)` |
//! | --- | --- |
//! | [`ItemExponentialFailureRateLimiter`] | `base x 2^failures(item)`, capped at `max` |
//! | [`ItemFastSlowRateLimiter`] | `fast` for the first `max_fast_attempts` failures, then `slow` |
//! | [`BucketRateLimiter`] | the wait for the next token of a shared token bucket |
//! | [`MaxOfRateLimiter`] | the longest wait of several limiters |
//! | [`WithMaxWaitRateLimiter`] | another limiter's wait, capped |
//!
//! [`default_controller_rate_limiter`] combines them as client-go's
//! `DefaultControllerRateLimiter`: per-item exponential backoff from 5 ms to 1000 s, and an
//! overall bucket of 10 retries per second with a burst of 100.
//!
//! ```
//! use std::time::Duration;
//! use kube_workqueue::rate_limiter::{ItemExponentialFailureRateLimiter, ItemRateLimiter};
//!
//! let limiter = ItemExponentialFailureRateLimiter::new(Duration::from_millis(1), Duration::from_secs(1));
//! assert_eq!(limiter.when(&"a"), Duration::from_millis(1));
//! assert_eq!(limiter.when(&"a"), Duration::from_millis(2));
//! assert_eq!(limiter.when(&"a"), Duration::from_millis(4));
//! assert_eq!(limiter.num_requeues(&"a"), 3);
//! limiter.forget(&"a");
//! assert_eq!(limiter.when(&"a"), Duration::from_millis(1));
//! ```

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use kube_flowcontrol::{Limit, Limiter, RealClock, SharedClock};
use parking_lot::Mutex;

use crate::queue::HashMap;

/// Decides how long an item waits before it is retried (client-go's `workqueue.RateLimiter`,
/// `TypedRateLimiter` in its generic form).
///
/// Named apart from kube-flowcontrol's [`throttle::RateLimiter`](kube_flowcontrol::throttle::RateLimiter)
/// (client-go's `flowcontrol.RateLimiter`, which gates requests rather than delaying retries
/// of one item), so `use kube_flowcontrol::*; use kube_workqueue::*;` brings both in without a
/// clash.
pub trait ItemRateLimiter<T: ?Sized>: Send + Sync {
    /// How long `item` should wait now. Each call counts as one more failure of the item for the
    /// per-item limiters.
    fn when(&self, item: &T) -> Duration;
    /// Stops tracking `item` (whether it finally succeeded or was given up on).
    fn forget(&self, item: &T);
    /// How many times `item` has been rate limited since it was last forgotten.
    fn num_requeues(&self, item: &T) -> usize;
}

impl<T: ?Sized, L: ItemRateLimiter<T> + ?Sized> ItemRateLimiter<T> for Arc<L> {
    fn when(&self, item: &T) -> Duration {
        (**self).when(item)
    }
    fn forget(&self, item: &T) {
        (**self).forget(item)
    }
    fn num_requeues(&self, item: &T) -> usize {
        (**self).num_requeues(item)
    }
}

impl<T: ?Sized, L: ItemRateLimiter<T> + ?Sized> ItemRateLimiter<T> for Box<L> {
    fn when(&self, item: &T) -> Duration {
        (**self).when(item)
    }
    fn forget(&self, item: &T) {
        (**self).forget(item)
    }
    fn num_requeues(&self, item: &T) -> usize {
        (**self).num_requeues(item)
    }
}

/// client-go's `DefaultControllerRateLimiter`: the longer of a per-item exponential backoff
/// (5 ms doubling up to 1000 s) and an overall token bucket (10 per second, burst 100), on the
/// real clock.
pub fn default_controller_rate_limiter<T>() -> MaxOfRateLimiter<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    default_controller_rate_limiter_with_clock(RealClock::shared())
}

/// [`default_controller_rate_limiter`] with the bucket on the given clock (for tests).
pub fn default_controller_rate_limiter_with_clock<T>(clock: SharedClock) -> MaxOfRateLimiter<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    MaxOfRateLimiter::new(vec![
        Box::new(ItemExponentialFailureRateLimiter::new(
            Duration::from_millis(5),
            Duration::from_secs(1000),
        )),
        Box::new(BucketRateLimiter::with_clock(
            Limit::per_second(10.0),
            100,
            clock,
        )),
    ])
}

/// client-go's `DefaultItemBasedRateLimiter`: exponential per-item backoff from 1 ms to 1000 s.
pub fn default_item_based_rate_limiter<T>() -> ItemExponentialFailureRateLimiter<T>
where
    T: Hash + Eq + Clone + Send + Sync,
{
    ItemExponentialFailureRateLimiter::new(Duration::from_millis(1), Duration::from_secs(1000))
}

/// Per-item exponential backoff: the n-th consecutive failure of an item waits
/// `base_delay x 2^(n-1)`, capped at `max_delay` (client-go's
/// `ItemExponentialFailureRateLimiter`).
///
/// The arithmetic is client-go's, in `f64` nanoseconds, so that any number of failures saturates
/// at `max_delay` instead of overflowing.
pub struct ItemExponentialFailureRateLimiter<T> {
    failures: Mutex<HashMap<T, usize>>,
    base_delay: Duration,
    max_delay: Duration,
}

impl<T> fmt::Debug for ItemExponentialFailureRateLimiter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemExponentialFailureRateLimiter")
            .field("base_delay", &self.base_delay)
            .field("max_delay", &self.max_delay)
            .field("tracked_items", &self.failures.lock().len())
            .finish()
    }
}

impl<T: Hash + Eq + Clone> ItemExponentialFailureRateLimiter<T> {
    /// Backoff from `base_delay`, doubling per failure, capped at `max_delay`.
    pub fn new(base_delay: Duration, max_delay: Duration) -> Self {
        ItemExponentialFailureRateLimiter {
            failures: Mutex::new(HashMap::default()),
            base_delay,
            max_delay,
        }
    }

    /// The delay after `failures` earlier failures.
    fn delay_for(&self, failures: usize) -> Duration {
        // 2^1100 is already infinite as an f64; clamping keeps the exponent in i32 range.
        let exponent = i32::try_from(failures.min(1100)).unwrap_or(1100);
        let backoff = self.base_delay.as_nanos() as f64 * 2f64.powi(exponent);
        // `i64::MAX as f64` is 2^63, exactly Go's `float64(math.MaxInt64)`; NaN (a zero base
        // times infinity) compares false and falls through to a zero delay.
        if backoff > i64::MAX as f64 {
            return self.max_delay;
        }
        let calculated = Duration::from_nanos(backoff as u64);
        calculated.min(self.max_delay)
    }
}

impl<T: Hash + Eq + Clone + Send + Sync> ItemRateLimiter<T>
    for ItemExponentialFailureRateLimiter<T>
{
    fn when(&self, item: &T) -> Duration {
        let failures = {
            let mut failures = self.failures.lock();
            match failures.get_mut(item) {
                Some(count) => {
                    let before = *count;
                    *count = count.saturating_add(1);
                    before
                }
                None => {
                    failures.insert(item.clone(), 1);
                    0
                }
            }
        };
        self.delay_for(failures)
    }

    fn forget(&self, item: &T) {
        self.failures.lock().remove(item);
    }

    fn num_requeues(&self, item: &T) -> usize {
        self.failures.lock().get(item).copied().unwrap_or(0)
    }
}

/// A few quick retries, then slow ones: `fast_delay` for the first `max_fast_attempts` failures
/// of an item, `slow_delay` after that (client-go's `ItemFastSlowRateLimiter`).
pub struct ItemFastSlowRateLimiter<T> {
    failures: Mutex<HashMap<T, usize>>,
    fast_delay: Duration,
    slow_delay: Duration,
    max_fast_attempts: usize,
}

impl<T> fmt::Debug for ItemFastSlowRateLimiter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemFastSlowRateLimiter")
            .field("fast_delay", &self.fast_delay)
            .field("slow_delay", &self.slow_delay)
            .field("max_fast_attempts", &self.max_fast_attempts)
            .field("tracked_items", &self.failures.lock().len())
            .finish()
    }
}

impl<T: Hash + Eq + Clone> ItemFastSlowRateLimiter<T> {
    /// `fast_delay` for the first `max_fast_attempts` failures, then `slow_delay`.
    pub fn new(fast_delay: Duration, slow_delay: Duration, max_fast_attempts: usize) -> Self {
        ItemFastSlowRateLimiter {
            failures: Mutex::new(HashMap::default()),
            fast_delay,
            slow_delay,
            max_fast_attempts,
        }
    }
}

impl<T: Hash + Eq + Clone + Send + Sync> ItemRateLimiter<T> for ItemFastSlowRateLimiter<T> {
    fn when(&self, item: &T) -> Duration {
        let failures = {
            let mut failures = self.failures.lock();
            match failures.get_mut(item) {
                Some(count) => {
                    *count = count.saturating_add(1);
                    *count
                }
                None => {
                    failures.insert(item.clone(), 1);
                    1
                }
            }
        };
        if failures <= self.max_fast_attempts {
            self.fast_delay
        } else {
            self.slow_delay
        }
    }

    fn forget(&self, item: &T) {
        self.failures.lock().remove(item);
    }

    fn num_requeues(&self, item: &T) -> usize {
        self.failures.lock().get(item).copied().unwrap_or(0)
    }
}

/// An overall token bucket, shared by all items: `when` is the wait for the next token
/// (client-go's `BucketRateLimiter`, on kube-flowcontrol's [`Limiter`]).
///
/// It tracks no items: `num_requeues` is always 0 and `forget` does nothing. Each `when` reserves
/// a token, so a burst of retries beyond the bucket's size is spread out over time.
#[derive(Debug)]
pub struct BucketRateLimiter {
    limiter: Limiter,
}

impl BucketRateLimiter {
    /// A bucket of `burst` tokens refilled at `limit`, on the real clock; it starts full.
    pub fn new(limit: Limit, burst: usize) -> Self {
        BucketRateLimiter::from_limiter(Limiter::new(limit, burst))
    }

    /// A bucket on the given clock.
    pub fn with_clock(limit: Limit, burst: usize, clock: SharedClock) -> Self {
        BucketRateLimiter::from_limiter(Limiter::with_clock(limit, burst, clock))
    }

    /// Wraps an existing token bucket.
    pub fn from_limiter(limiter: Limiter) -> Self {
        BucketRateLimiter { limiter }
    }

    /// The token bucket.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }
}

impl<T: ?Sized> ItemRateLimiter<T> for BucketRateLimiter {
    fn when(&self, _item: &T) -> Duration {
        // Go's `Reserve().Delay()`, reading the clock once for both.
        let now = self.limiter.clock().now();
        self.limiter.reserve_n(now, 1).delay_from(now)
    }

    fn forget(&self, _item: &T) {}

    fn num_requeues(&self, _item: &T) -> usize {
        0
    }
}

/// The worst case of several limiters: the longest `when`, the largest `num_requeues`; `forget`
/// forgets in all of them (client-go's `MaxOfRateLimiter`).
///
/// Every limiter's `when` is called, so each one counts every failure.
pub struct MaxOfRateLimiter<T: ?Sized> {
    limiters: Vec<Box<dyn ItemRateLimiter<T>>>,
}

impl<T: ?Sized> fmt::Debug for MaxOfRateLimiter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaxOfRateLimiter")
            .field("limiters", &self.limiters.len())
            .finish()
    }
}

impl<T: ?Sized> MaxOfRateLimiter<T> {
    /// The maximum of `limiters` (with none, every wait is zero).
    pub fn new(limiters: Vec<Box<dyn ItemRateLimiter<T>>>) -> Self {
        MaxOfRateLimiter { limiters }
    }

    /// Adds one more limiter.
    #[must_use]
    pub fn with(mut self, limiter: impl ItemRateLimiter<T> + 'static) -> Self {
        self.limiters.push(Box::new(limiter));
        self
    }
}

impl<T: ?Sized> ItemRateLimiter<T> for MaxOfRateLimiter<T> {
    fn when(&self, item: &T) -> Duration {
        self.limiters
            .iter()
            .map(|limiter| limiter.when(item))
            .fold(Duration::ZERO, Duration::max)
    }

    fn forget(&self, item: &T) {
        for limiter in &self.limiters {
            limiter.forget(item);
        }
    }

    fn num_requeues(&self, item: &T) -> usize {
        self.limiters
            .iter()
            .map(|limiter| limiter.num_requeues(item))
            .max()
            .unwrap_or(0)
    }
}

/// Another limiter's wait, capped at `max_delay` (client-go's `WithMaxWaitRateLimiter`).
#[derive(Debug)]
pub struct WithMaxWaitRateLimiter<L> {
    limiter: L,
    max_delay: Duration,
}

impl<L> WithMaxWaitRateLimiter<L> {
    /// `limiter`'s waits, never longer than `max_delay`.
    pub fn new(limiter: L, max_delay: Duration) -> Self {
        WithMaxWaitRateLimiter { limiter, max_delay }
    }

    /// The wrapped limiter.
    pub fn inner(&self) -> &L {
        &self.limiter
    }
}

impl<T: ?Sized, L: ItemRateLimiter<T>> ItemRateLimiter<T> for WithMaxWaitRateLimiter<L> {
    fn when(&self, item: &T) -> Duration {
        self.limiter.when(item).min(self.max_delay)
    }

    fn forget(&self, item: &T) {
        self.limiter.forget(item);
    }

    fn num_requeues(&self, item: &T) -> usize {
        self.limiter.num_requeues(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube_flowcontrol::FakeClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn exponential_doubles_per_item_and_forget_resets() {
        // client-go's TestItemExponentialFailureRateLimiter.
        let limiter = ItemExponentialFailureRateLimiter::new(MS, Duration::from_secs(1));
        for expected in [1, 2, 4, 8, 16] {
            assert_eq!(limiter.when(&"one"), expected * MS);
        }
        assert_eq!(limiter.num_requeues(&"one"), 5);
        assert_eq!(limiter.when(&"two"), MS);
        assert_eq!(limiter.when(&"two"), 2 * MS);
        assert_eq!(limiter.num_requeues(&"two"), 2);
        limiter.forget(&"one");
        assert_eq!(limiter.num_requeues(&"one"), 0);
        assert_eq!(limiter.when(&"one"), MS);
        assert_eq!(limiter.num_requeues(&"two"), 2);
    }

    #[test]
    fn exponential_caps_without_overflow() {
        // client-go's TestItemExponentialFailureRateLimiterOverFlow.
        let limiter = ItemExponentialFailureRateLimiter::new(MS, Duration::from_secs(1000));
        for _ in 0..5 {
            limiter.when(&"one");
        }
        assert_eq!(limiter.when(&"one"), 32 * MS);
        for _ in 0..1000 {
            limiter.when(&"overflow1");
        }
        assert_eq!(limiter.when(&"overflow1"), Duration::from_secs(1000));

        let minute = Duration::from_secs(60);
        let limiter = ItemExponentialFailureRateLimiter::new(minute, 1000 * 60 * minute);
        for _ in 0..2 {
            limiter.when(&"two");
        }
        assert_eq!(limiter.when(&"two"), 4 * minute);
        for _ in 0..1000 {
            limiter.when(&"overflow2");
        }
        assert_eq!(limiter.when(&"overflow2"), 1000 * 60 * minute);
        assert_eq!(limiter.num_requeues(&"overflow2"), 1001);
    }

    #[test]
    fn exponential_edge_cases() {
        // The cap is reached exactly where base x 2^n first exceeds it.
        let limiter = ItemExponentialFailureRateLimiter::new(5 * MS, Duration::from_secs(1000));
        let waits: Vec<Duration> = (0..20).map(|_| limiter.when(&1u32)).collect();
        assert_eq!(waits[17], 5 * MS * (1 << 17)); // 655.36 s
        assert_eq!(waits[18], Duration::from_secs(1000)); // 1310.72 s capped
        // A zero base never waits, even after 2^1024 overflows to infinity.
        let zero = ItemExponentialFailureRateLimiter::new(Duration::ZERO, Duration::from_secs(1));
        for _ in 0..2000 {
            assert_eq!(zero.when(&"z"), Duration::ZERO);
        }
        // A base beyond i64 nanoseconds (longer than Go can express) is capped.
        let huge = ItemExponentialFailureRateLimiter::new(
            Duration::from_secs(u64::MAX / 2),
            Duration::from_secs(7),
        );
        assert_eq!(huge.when(&"h"), Duration::from_secs(7));
    }

    #[test]
    fn fast_slow() {
        // client-go's TestItemFastSlowRateLimiter.
        let limiter = ItemFastSlowRateLimiter::new(5 * MS, Duration::from_secs(10), 3);
        for expected in [
            5 * MS,
            5 * MS,
            5 * MS,
            Duration::from_secs(10),
            Duration::from_secs(10),
        ] {
            assert_eq!(limiter.when(&"one"), expected);
        }
        assert_eq!(limiter.num_requeues(&"one"), 5);
        assert_eq!(limiter.when(&"two"), 5 * MS);
        assert_eq!(limiter.when(&"two"), 5 * MS);
        assert_eq!(limiter.num_requeues(&"two"), 2);
        limiter.forget(&"one");
        assert_eq!(limiter.num_requeues(&"one"), 0);
        assert_eq!(limiter.when(&"one"), 5 * MS);
    }

    #[test]
    fn max_of() {
        // client-go's TestMaxOfRateLimiter.
        let limiter: MaxOfRateLimiter<&str> = MaxOfRateLimiter::new(vec![
            Box::new(ItemFastSlowRateLimiter::new(
                5 * MS,
                Duration::from_secs(3),
                3,
            )),
            Box::new(ItemExponentialFailureRateLimiter::new(
                MS,
                Duration::from_secs(1),
            )),
        ]);
        let three = Duration::from_secs(3);
        for expected in [5 * MS, 5 * MS, 5 * MS, three, three] {
            assert_eq!(limiter.when(&"one"), expected);
        }
        assert_eq!(limiter.num_requeues(&"one"), 5);
        assert_eq!(limiter.when(&"two"), 5 * MS);
        assert_eq!(limiter.when(&"two"), 5 * MS);
        assert_eq!(limiter.num_requeues(&"two"), 2);
        limiter.forget(&"one");
        assert_eq!(limiter.num_requeues(&"one"), 0);
        assert_eq!(limiter.when(&"one"), 5 * MS);

        let empty: MaxOfRateLimiter<&str> = MaxOfRateLimiter::new(Vec::new());
        assert_eq!(empty.when(&"x"), Duration::ZERO);
        assert_eq!(empty.num_requeues(&"x"), 0);
    }

    /// client-go's test helper: `base` for the first `threshold` calls overall, then `max`.
    struct StepRateLimiter {
        count: AtomicUsize,
        threshold: usize,
        base: Duration,
        max: Duration,
    }

    impl<T: ?Sized> ItemRateLimiter<T> for StepRateLimiter {
        fn when(&self, _item: &T) -> Duration {
            if self.count.fetch_add(1, Ordering::SeqCst) < self.threshold {
                self.base
            } else {
                self.max
            }
        }
        fn forget(&self, _item: &T) {}
        fn num_requeues(&self, _item: &T) -> usize {
            0
        }
    }

    #[test]
    fn with_max_wait() {
        // client-go's TestWithMaxWaitRateLimiter.
        let limiter = WithMaxWaitRateLimiter::new(
            StepRateLimiter {
                count: AtomicUsize::new(0),
                threshold: 100,
                base: 5 * MS,
                max: Duration::from_secs(1000),
            },
            Duration::from_secs(500),
        );
        for i in 0..100 {
            assert_eq!(limiter.when(&i), 5 * MS);
        }
        for i in 100..200 {
            assert_eq!(limiter.when(&i), Duration::from_secs(500));
        }
    }

    #[test]
    fn bucket_spreads_retries_beyond_the_burst() {
        let clock = FakeClock::new();
        let limiter = BucketRateLimiter::with_clock(Limit::per_second(10.0), 2, clock.shared());
        assert_eq!(ItemRateLimiter::<str>::when(&limiter, "a"), Duration::ZERO);
        assert_eq!(ItemRateLimiter::<str>::when(&limiter, "b"), Duration::ZERO);
        assert_eq!(ItemRateLimiter::<str>::when(&limiter, "c"), 100 * MS);
        assert_eq!(ItemRateLimiter::<str>::when(&limiter, "d"), 200 * MS);
        clock.step(200 * MS);
        assert_eq!(ItemRateLimiter::<str>::when(&limiter, "e"), 100 * MS);
        assert_eq!(ItemRateLimiter::<str>::num_requeues(&limiter, "a"), 0);
        ItemRateLimiter::<str>::forget(&limiter, "a");
    }

    #[test]
    fn default_controller_limiter_is_the_max_of_backoff_and_bucket() {
        let clock = FakeClock::new();
        let limiter = default_controller_rate_limiter_with_clock::<String>(clock.shared());
        // The bucket holds 100 tokens: the first 100 retries only see the per-item backoff.
        for i in 0..100 {
            assert_eq!(limiter.when(&format!("key-{i}")), 5 * MS);
        }
        // The 101st waits for the bucket (100 ms per token at 10 qps).
        assert_eq!(limiter.when(&"key-100".to_string()), 100 * MS);
        // Per-item backoff still grows for one key: 10 ms < bucket wait 200 ms.
        assert_eq!(limiter.when(&"key-0".to_string()), 200 * MS);
        assert_eq!(limiter.num_requeues(&"key-0".to_string()), 2);
        limiter.forget(&"key-0".to_string());
        assert_eq!(limiter.num_requeues(&"key-0".to_string()), 0);
        // From the 19th failure on, 5 ms x 2^18 = 1310 s and more is capped at 1000 s.
        let key = "hot".to_string();
        let mut last = Duration::ZERO;
        for _ in 0..21 {
            last = limiter.when(&key);
        }
        assert_eq!(last, Duration::from_secs(1000));
    }

    #[test]
    fn default_item_based() {
        let limiter = default_item_based_rate_limiter::<u8>();
        assert_eq!(limiter.when(&1), MS);
        assert_eq!(limiter.when(&1), 2 * MS);
    }

    #[test]
    fn shared_limiters_through_arc_and_box() {
        let shared = Arc::new(ItemFastSlowRateLimiter::new(MS, 2 * MS, 1));
        let boxed: Box<dyn ItemRateLimiter<&str>> = Box::new(Arc::clone(&shared));
        assert_eq!(boxed.when(&"x"), MS);
        assert_eq!(shared.when(&"x"), 2 * MS);
        assert_eq!(boxed.num_requeues(&"x"), 2);
        boxed.forget(&"x");
        assert_eq!(shared.num_requeues(&"x"), 0);
        let capped = MaxOfRateLimiter::new(Vec::new()).with(WithMaxWaitRateLimiter::new(
            Arc::clone(&shared),
            Duration::ZERO,
        ));
        assert_eq!(capped.when(&"y"), Duration::ZERO);
        assert_eq!(capped.num_requeues(&"y"), 1);
    }
}
