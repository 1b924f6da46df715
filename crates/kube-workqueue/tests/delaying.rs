//! The delaying and rate-limiting queues on a fake clock: client-go's delaying_queue_test.go and
//! rate_limiting_queue_test.go cases, shutdown, and a property test that nothing fires early and
//! everything fires once the clock passes it.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_flowcontrol::{Clock, FakeClock};
use kube_workqueue::rate_limiter::ItemExponentialFailureRateLimiter;
use kube_workqueue::{DelayingQueue, RateLimitingQueue, WorkQueue};
use proptest::prelude::*;
use tokio::time::timeout;

const MS: Duration = Duration::from_millis(1);
const PATIENCE: Duration = Duration::from_secs(10);

/// `FakeClock::wait_for_waiters`, failing instead of hanging.
async fn wait_for_waiters(clock: &FakeClock, count: usize) {
    tokio::time::timeout(PATIENCE, clock.wait_for_waiters(count))
        .await
        .expect("something went to sleep on the clock");
}

fn fake_queue<T>() -> (FakeClock, DelayingQueue<T>)
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    let clock = FakeClock::new();
    let queue = DelayingQueue::builder().clock(clock.shared()).build();
    (clock, queue)
}

/// Lets the waiting loop (a task on this current-thread runtime) catch up with the clock: done
/// once nothing waits any more, or the loop sleeps on the clock again.
async fn settle<T>(clock: &FakeClock, queue: &DelayingQueue<T>)
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    for _ in 0..10_000 {
        tokio::task::yield_now().await;
        if queue.waiting_len() == 0 || clock.has_waiters() {
            return;
        }
    }
    panic!("the waiting loop did not settle");
}

/// client-go's TestSimpleQueue.
#[tokio::test]
async fn simple_queue() {
    let (clock, queue) = fake_queue();
    queue.add_after("foo", 50 * MS);
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 0, "should not have added");
    assert_eq!(queue.waiting_len(), 1);

    clock.step(60 * MS);
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 1, "should have added");
    let item = queue.get().await.unwrap();
    queue.done(&item);

    // Step past the next heartbeat: nothing more is added.
    clock.step(10 * Duration::from_secs(1));
    settle(&clock, &queue).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(queue.len(), 0, "should not have added");
}

/// client-go's TestDeduping: a second add_after keeps the earlier ready time.
#[tokio::test]
async fn deduping_keeps_the_earlier_time() {
    let (clock, queue) = fake_queue();
    queue.add_after("foo", 50 * MS);
    queue.add_after("foo", 70 * MS);
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.waiting_len(), 1);

    // Step past the first block: we receive it now.
    clock.step(60 * MS);
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 1);
    let item = queue.get().await.unwrap();
    queue.done(&item);

    // Step past the second add: nothing, it was merged into the first.
    clock.step(20 * MS);
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 0);

    // Again, but this time the later add is the earlier time and wins.
    queue.add_after("foo", 50 * MS);
    queue.add_after("foo", 30 * MS);
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 0);
    clock.step(40 * MS);
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 1);
    let item = queue.get().await.unwrap();
    queue.done(&item);
    clock.step(20 * MS);
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 0);

    // An item being processed when its delay passes is processed again after done.
    queue.add("foo");
    let item = queue.get().await.unwrap();
    queue.add_after("foo", 5 * MS);
    clock.step(5 * MS);
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 0, "dirty while processing");
    queue.done(&item);
    assert_eq!(queue.len(), 1);
}

/// client-go's TestAddTwoFireEarly.
#[tokio::test]
async fn add_two_fire_early() {
    let (clock, queue) = fake_queue();
    queue.add_after("foo", Duration::from_secs(1));
    queue.add_after("bar", 50 * MS);
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 0);

    clock.step(60 * MS);
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.get().await, Some("bar"));

    queue.add_after("baz", 2 * Duration::from_secs(1));
    clock.step(Duration::from_secs(1));
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.get().await, Some("foo"));

    clock.step(2 * Duration::from_secs(1));
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.get().await, Some("baz"));
}

/// client-go's TestCopyShifting: items come out in ready-time order, not insertion order.
#[tokio::test]
async fn items_come_out_in_ready_time_order() {
    let (clock, queue) = fake_queue();
    queue.add_after("foo", Duration::from_secs(1));
    queue.add_after("bar", 500 * MS);
    queue.add_after("baz", 250 * MS);
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 0);

    clock.step(2 * Duration::from_secs(1));
    settle(&clock, &queue).await;
    assert_eq!(queue.len(), 3);
    assert_eq!(queue.get().await, Some("baz"));
    assert_eq!(queue.get().await, Some("bar"));
    assert_eq!(queue.get().await, Some("foo"));
}

#[tokio::test]
async fn equal_ready_times_keep_insertion_order() {
    let (clock, queue) = fake_queue();
    for i in 0..20 {
        queue.add_after(i, 10 * MS);
    }
    clock.step(10 * MS);
    settle(&clock, &queue).await;
    let order: Vec<i32> = std::iter::from_fn(|| queue.try_get()).collect();
    assert_eq!(order, (0..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn zero_delay_adds_now() {
    let (clock, queue) = fake_queue();
    queue.add_after("now", Duration::ZERO);
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.waiting_len(), 0);
    assert!(!clock.has_waiters(), "no loop was needed");
}

/// The loop sleeps on the clock until the earliest item and re-arms when an earlier one comes.
#[tokio::test]
async fn the_loop_sleeps_until_the_earliest_item() {
    let (clock, queue) = fake_queue();
    let start = clock.now();
    queue.add_after("late", Duration::from_secs(5));
    wait_for_waiters(&clock, 1).await;
    assert_eq!(clock.next_deadline(), Some(start + Duration::from_secs(5)));
    queue.add_after("early", Duration::from_secs(2));
    // The loop is woken and re-arms for the earlier item.
    for _ in 0..100 {
        if clock.next_deadline() == Some(start + Duration::from_secs(2)) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(clock.next_deadline(), Some(start + Duration::from_secs(2)));
    assert_eq!(clock.waiter_count(), 1, "one sleep at a time");
    // A later item does not disturb it.
    queue.add_after("later", Duration::from_secs(9));
    tokio::task::yield_now().await;
    assert_eq!(clock.next_deadline(), Some(start + Duration::from_secs(2)));

    assert_eq!(
        clock.step_to_next_deadline(),
        Some(start + Duration::from_secs(2))
    );
    assert_eq!(timeout(PATIENCE, queue.get()).await.unwrap(), Some("early"));
    assert_eq!(
        clock.step_to_next_deadline(),
        Some(start + Duration::from_secs(5))
    );
    assert_eq!(timeout(PATIENCE, queue.get()).await.unwrap(), Some("late"));
    settle(&clock, &queue).await;
    assert_eq!(
        clock.step_to_next_deadline(),
        Some(start + Duration::from_secs(9))
    );
    assert_eq!(timeout(PATIENCE, queue.get()).await.unwrap(), Some("later"));
    settle(&clock, &queue).await;
    assert!(!clock.has_waiters(), "idle loop: no timer");
}

/// With a far-away item the loop still wakes at least every heartbeat.
#[tokio::test]
async fn heartbeat_bounds_the_sleep() {
    let clock = FakeClock::new();
    let start = clock.now();
    let queue = DelayingQueue::builder()
        .clock(clock.shared())
        .heartbeat(Duration::from_secs(10))
        .build();
    queue.add_after("far", Duration::from_secs(3600));
    wait_for_waiters(&clock, 1).await;
    assert_eq!(clock.next_deadline(), Some(start + Duration::from_secs(10)));
    clock.step(Duration::from_secs(10));
    settle(&clock, &queue).await;
    assert_eq!(clock.next_deadline(), Some(start + Duration::from_secs(20)));
    assert_eq!(queue.len(), 0);
}

#[tokio::test]
async fn shutdown_stops_the_loop_and_counts_what_was_waiting() {
    let (clock, queue) = fake_queue();
    queue.add_after("a", 10 * MS);
    queue.add_after("b", 20 * MS);
    queue.add_after("a", 5 * MS); // moved earlier: still one item
    wait_for_waiters(&clock, 1).await;
    queue.shut_down();
    for _ in 0..100 {
        if !clock.has_waiters() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!clock.has_waiters(), "the waiting loop is gone");
    assert_eq!(queue.waiting_len(), 0);
    assert_eq!(queue.dropped(), 2, "the two waiting items were dropped");
    queue.add_after("c", 10 * MS);
    queue.add_after("d", Duration::ZERO);
    queue.add("e");
    assert_eq!(queue.dropped(), 5);
    clock.step(Duration::from_secs(1));
    tokio::task::yield_now().await;
    assert_eq!(queue.get().await, None);
}

#[tokio::test]
async fn dropping_every_handle_stops_the_loop() {
    let (clock, queue) = fake_queue();
    let plain: WorkQueue<&str> = queue.queue().clone();
    queue.add_after("a", 10 * MS);
    wait_for_waiters(&clock, 1).await;
    drop(queue);
    for _ in 0..100 {
        if !clock.has_waiters() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!clock.has_waiters(), "the waiting loop is gone");
    assert_eq!(plain.dropped(), 1, "the waiting item was counted");
}

/// A queue built outside any runtime runs its waiting loop on a thread of its own.
#[test]
fn delaying_queue_without_a_runtime() {
    let queue = DelayingQueue::new();
    let start = Instant::now();
    queue.add_after("x", 5 * MS);
    queue.add_after("y", 2 * MS);
    assert_eq!(queue.get_blocking(), Some("y"));
    assert_eq!(queue.get_blocking(), Some("x"));
    assert!(start.elapsed() >= 5 * MS);
    queue.shut_down();
    assert_eq!(queue.get_blocking(), None);
}

/// A queue that outlives the runtime its waiting loop ran on drops (and counts) what waited,
/// and every later delayed add, instead of keeping them forever.
#[test]
fn waiting_loop_cancelled_with_its_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let queue = runtime.block_on(async {
        let queue = DelayingQueue::new();
        queue.add_after("waiting", Duration::from_secs(3600));
        tokio::task::yield_now().await; // the loop starts and sleeps
        queue
    });
    drop(runtime);
    assert_eq!(queue.waiting_len(), 0);
    assert_eq!(queue.dropped(), 1);
    queue.add_after("later", Duration::from_secs(1));
    assert_eq!(queue.dropped(), 2);
    queue.add("now"); // the plain queue still works
    assert_eq!(queue.try_get(), Some("now"));
}

/// On the real clock inside a runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clock_delays() {
    let queue = DelayingQueue::<u32>::new();
    let start = Instant::now();
    for i in 0..100 {
        queue.add_after(i, Duration::from_micros(u64::from(i) * 30));
    }
    let mut got = Vec::new();
    while got.len() < 100 {
        let item = timeout(PATIENCE, queue.get()).await.unwrap().unwrap();
        queue.done(&item);
        got.push(item);
    }
    assert!(start.elapsed() >= Duration::from_micros(99 * 30));
    got.sort_unstable();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

/// client-go's TestRateLimitingQueue: each add_rate_limited waits the limiter's delay.
#[tokio::test]
async fn rate_limiting_queue_uses_the_limiter_delays() {
    let clock = FakeClock::new();
    let queue = RateLimitingQueue::builder()
        .clock(clock.shared())
        .rate_limiter(ItemExponentialFailureRateLimiter::new(
            MS,
            Duration::from_secs(1),
        ))
        .build();
    let start = clock.now();
    queue.add_rate_limited("one");
    wait_for_waiters(&clock, 1).await;
    assert_eq!(clock.next_deadline(), Some(start + MS));
    queue.add_rate_limited("one"); // 2 ms from now, but the earlier time is kept
    assert_eq!(queue.num_requeues(&"one"), 2);
    queue.add_rate_limited("two");
    queue.add_rate_limited("two");
    assert_eq!(queue.num_requeues(&"two"), 2);
    assert_eq!(queue.waiting_len(), 2);

    clock.step(MS - Duration::from_nanos(1));
    settle(&clock, &queue_of(&queue)).await;
    assert_eq!(queue.len(), 0, "nothing early");
    clock.step(Duration::from_nanos(1));
    settle(&clock, &queue_of(&queue)).await;
    assert_eq!(queue.len(), 2);

    queue.forget(&"one");
    assert_eq!(queue.num_requeues(&"one"), 0);
    assert_eq!(queue.num_requeues(&"two"), 2);
    let now = clock.now();
    queue.add_rate_limited("three");
    queue.add_rate_limited("three");
    queue.add_rate_limited("three");
    settle(&clock, &queue_of(&queue)).await;
    assert_eq!(clock.next_deadline(), Some(now + MS));
    assert_eq!(queue.rate_limiter().num_requeues(&"three"), 3);
}

fn queue_of<T>(queue: &RateLimitingQueue<T>) -> DelayingQueue<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    queue.delaying_queue().clone()
}

/// The default controller rate limiter on the queue's (fake) clock: the first retry waits 5 ms.
#[tokio::test]
async fn default_rate_limiting_queue_on_a_fake_clock() {
    let clock = FakeClock::new();
    let queue = RateLimitingQueue::builder().clock(clock.shared()).build();
    let start = clock.now();
    queue.add_rate_limited(7u8);
    wait_for_waiters(&clock, 1).await;
    assert_eq!(clock.next_deadline(), Some(start + 5 * MS));
    clock.step(5 * MS);
    assert_eq!(timeout(PATIENCE, queue.get()).await.unwrap(), Some(7));
    queue.add_after(8, Duration::ZERO);
    assert_eq!(queue.try_get(), Some(8));
}

#[derive(Debug, Clone)]
enum Op {
    /// Add key after this many milliseconds.
    AddAfter(u8, u16),
    /// Move the clock forward this many milliseconds.
    Step(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..12, 0u16..200).prop_map(|(key, ms)| Op::AddAfter(key, ms)),
        2 => (0u16..120).prop_map(Op::Step),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// After every step of the fake clock, exactly the items whose (earliest) ready time has
    /// passed have been handed out: nothing early, nothing late, nothing twice.
    #[test]
    fn nothing_fires_early_everything_fires_once_due(ops in proptest::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let (clock, queue) = fake_queue::<u8>();
            // What waits in the heap (earliest ready time per key), and what was added now.
            let mut pending: BTreeMap<u8, Instant> = BTreeMap::new();
            for op in ops.into_iter().chain([Op::Step(1000)]) {
                let mut added_now = BTreeSet::new();
                match op {
                    Op::AddAfter(key, ms) => {
                        let delay = Duration::from_millis(u64::from(ms));
                        queue.add_after(key, delay);
                        if delay.is_zero() {
                            // Straight into the queue; a later heap entry for it stays.
                            added_now.insert(key);
                        } else {
                            let ready_at = clock.now() + delay;
                            let slot = pending.entry(key).or_insert(ready_at);
                            *slot = (*slot).min(ready_at);
                        }
                    }
                    Op::Step(ms) => {
                        clock.step(Duration::from_millis(u64::from(ms)));
                    }
                }
                settle(&clock, &queue).await;
                let now = clock.now();
                let mut handed_out = BTreeSet::new();
                while let Some(item) = queue.try_get() {
                    prop_assert!(handed_out.insert(item), "{} handed out twice", item);
                    queue.done(&item);
                }
                let mut due: BTreeSet<u8> = pending
                    .iter()
                    .filter(|(_, ready_at)| **ready_at <= now)
                    .map(|(key, _)| *key)
                    .collect();
                due.extend(added_now);
                prop_assert_eq!(&handed_out, &due);
                pending.retain(|_, ready_at| *ready_at > now);
                prop_assert_eq!(queue.waiting_len(), pending.len());
            }
            prop_assert!(pending.is_empty());
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn retries_and_depth_reach_the_metrics() {
    use kube_workqueue::metrics::{
        CounterMetric, GaugeMetric, HistogramMetric, MetricsProvider, NoopMetric,
        SettableGaugeMetric,
    };
    use std::sync::atomic::{AtomicI64, Ordering};

    #[derive(Default)]
    struct Count(AtomicI64);
    impl CounterMetric for Count {
        fn inc(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    impl GaugeMetric for Count {
        fn inc(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn dec(&self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    #[derive(Default)]
    struct Provider {
        retries: Arc<Count>,
        depth: Arc<Count>,
    }
    impl MetricsProvider for Provider {
        fn new_depth_metric(&self, _: &str) -> Arc<dyn GaugeMetric> {
            self.depth.clone()
        }
        fn new_adds_metric(&self, _: &str) -> Arc<dyn CounterMetric> {
            Arc::new(NoopMetric)
        }
        fn new_latency_metric(&self, _: &str) -> Arc<dyn HistogramMetric> {
            Arc::new(NoopMetric)
        }
        fn new_work_duration_metric(&self, _: &str) -> Arc<dyn HistogramMetric> {
            Arc::new(NoopMetric)
        }
        fn new_unfinished_work_seconds_metric(&self, _: &str) -> Arc<dyn SettableGaugeMetric> {
            Arc::new(NoopMetric)
        }
        fn new_longest_running_processor_seconds_metric(
            &self,
            _: &str,
        ) -> Arc<dyn SettableGaugeMetric> {
            Arc::new(NoopMetric)
        }
        fn new_retries_metric(&self, _: &str) -> Arc<dyn CounterMetric> {
            self.retries.clone()
        }
    }

    let clock = FakeClock::new();
    let provider = Arc::new(Provider::default());
    let queue = RateLimitingQueue::builder()
        .name("retrying")
        .clock(clock.shared())
        .metrics(provider.clone())
        .build();
    queue.add_rate_limited("a");
    queue.add_after("b", Duration::ZERO);
    queue.add_after("c", MS);
    assert_eq!(provider.retries.0.load(Ordering::SeqCst), 3);
    assert_eq!(
        provider.depth.0.load(Ordering::SeqCst),
        1,
        "only b is queued yet"
    );
    clock.step(5 * MS);
    settle(&clock, &queue_of(&queue)).await;
    assert_eq!(provider.depth.0.load(Ordering::SeqCst), 3);
    queue.shut_down();
    queue.add_after("d", MS);
    assert_eq!(
        provider.retries.0.load(Ordering::SeqCst),
        3,
        "not a retry after shutdown"
    );
}

/// A loop whose task is dropped before its first poll (the runtime ends right after the
/// `add_after`) still stops delayed adds and counts the waiting item: nothing is lost silently.
#[test]
fn waiting_loop_dropped_before_it_ever_ran() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let queue = runtime.block_on(async {
        let queue = DelayingQueue::new();
        queue.add_after("waiting", Duration::from_secs(3600));
        queue // no yield: the spawned loop has not run yet
    });
    drop(runtime);
    assert_eq!(queue.waiting_len(), 0);
    assert_eq!(queue.dropped(), 1);
    queue.add_after("later", Duration::from_secs(1));
    assert_eq!(queue.dropped(), 2);
}

/// A fake clock moved back before the queue was built does not make delays fire early.
#[tokio::test]
async fn clock_moved_back_before_the_queue_was_built() {
    let clock = FakeClock::new();
    let start = clock.now();
    clock.step(Duration::from_secs(10));
    let queue = DelayingQueue::<&str>::builder()
        .clock(clock.shared())
        .build();
    clock.set_time(start);
    queue.add_after("k", Duration::from_secs(5));
    wait_for_waiters(&clock, 1).await;
    assert_eq!(queue.try_get(), None, "not ready before its delay");
    clock.step(Duration::from_secs(5));
    let item = timeout(PATIENCE, queue.get()).await.unwrap();
    assert_eq!(item, Some("k"));
}
