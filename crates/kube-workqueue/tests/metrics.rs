//! Workqueue metrics: client-go's metrics_test.go cases on a fake clock, the global provider,
//! and the prometheus-client provider.

use std::sync::Arc;
use std::time::Duration;

use kube_flowcontrol::FakeClock;
use kube_workqueue::WorkQueue;
use kube_workqueue::metrics::{
    CounterMetric, GaugeMetric, HistogramMetric, MetricsProvider, SettableGaugeMetric,
};
use parking_lot::Mutex;
use tokio::sync::Notify;

const PATIENCE: Duration = Duration::from_secs(10);

/// `FakeClock::wait_for_waiters`, failing instead of hanging.
async fn wait_for_waiters(clock: &FakeClock, count: usize) {
    tokio::time::timeout(PATIENCE, clock.wait_for_waiters(count))
        .await
        .expect("something went to sleep on the clock");
}

/// One recorded metric: a counter/gauge value, a settable value and observations.
#[derive(Default)]
struct TestMetric {
    state: Mutex<MetricState>,
    changed: Notify,
}

#[derive(Default, Clone)]
struct MetricState {
    inc: i64,
    dec: i64,
    set: Option<f64>,
    set_count: usize,
    observed: Vec<f64>,
}

impl TestMetric {
    fn gauge_value(&self) -> f64 {
        let state = self.state.lock();
        state.set.unwrap_or((state.inc - state.dec) as f64)
    }
    fn observations(&self) -> Vec<f64> {
        self.state.lock().observed.clone()
    }
    fn set_count(&self) -> usize {
        self.state.lock().set_count
    }
    fn update(&self, f: impl FnOnce(&mut MetricState)) {
        f(&mut self.state.lock());
        self.changed.notify_waiters();
    }
    /// Waits until `set` has been called at least `count` times.
    async fn wait_for_sets(&self, count: usize) {
        loop {
            let changed = self.changed.notified();
            if self.set_count() >= count {
                return;
            }
            changed.await;
        }
    }
}

impl GaugeMetric for TestMetric {
    fn inc(&self) {
        self.update(|s| s.inc += 1);
    }
    fn dec(&self) {
        self.update(|s| s.dec += 1);
    }
}

impl CounterMetric for TestMetric {
    fn inc(&self) {
        self.update(|s| s.inc += 1);
    }
}

impl SettableGaugeMetric for TestMetric {
    fn set(&self, value: f64) {
        self.update(|s| {
            s.set = Some(value);
            s.set_count += 1;
        });
    }
}

impl HistogramMetric for TestMetric {
    fn observe(&self, value: f64) {
        self.update(|s| s.observed.push(value));
    }
}

#[derive(Default)]
struct TestProvider {
    depth: Arc<TestMetric>,
    adds: Arc<TestMetric>,
    latency: Arc<TestMetric>,
    duration: Arc<TestMetric>,
    unfinished: Arc<TestMetric>,
    longest: Arc<TestMetric>,
    retries: Arc<TestMetric>,
    names: Mutex<Vec<String>>,
}

impl MetricsProvider for TestProvider {
    fn new_depth_metric(&self, name: &str) -> Arc<dyn GaugeMetric> {
        self.names.lock().push(name.to_string());
        self.depth.clone()
    }
    fn new_adds_metric(&self, _: &str) -> Arc<dyn CounterMetric> {
        self.adds.clone()
    }
    fn new_latency_metric(&self, _: &str) -> Arc<dyn HistogramMetric> {
        self.latency.clone()
    }
    fn new_work_duration_metric(&self, _: &str) -> Arc<dyn HistogramMetric> {
        self.duration.clone()
    }
    fn new_unfinished_work_seconds_metric(&self, _: &str) -> Arc<dyn SettableGaugeMetric> {
        self.unfinished.clone()
    }
    fn new_longest_running_processor_seconds_metric(
        &self,
        _: &str,
    ) -> Arc<dyn SettableGaugeMetric> {
        self.longest.clone()
    }
    fn new_retries_metric(&self, _: &str) -> Arc<dyn CounterMetric> {
        self.retries.clone()
    }
}

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-12,
        "expected {expected}, got {actual}"
    );
}

/// client-go's TestMetrics, step by step.
#[tokio::test]
async fn queue_metrics_follow_client_go() {
    let provider = Arc::new(TestProvider::default());
    let clock = FakeClock::new();
    let queue = WorkQueue::builder()
        .name("test")
        .clock(clock.shared())
        .metrics(provider.clone())
        .unfinished_work_update_period(Duration::from_millis(1))
        .build();
    // The updater's ticker is asleep on the clock.
    wait_for_waiters(&clock, 1).await;
    assert_eq!(provider.names.lock().as_slice(), ["test".to_string()]);

    queue.add("foo");
    assert_eq!(provider.adds.gauge_value(), 1.0);
    assert_eq!(provider.depth.gauge_value(), 1.0);

    clock.step(Duration::from_micros(50));
    let item = queue.get().await.unwrap();
    assert_eq!(item, "foo");
    assert_eq!(provider.latency.observations().len(), 1);
    assert_close(provider.latency.observations()[0], 5e-5);

    // Added back while processing; many adds are deduplicated.
    for _ in 0..5 {
        queue.add(item);
    }
    assert_eq!(provider.adds.gauge_value(), 2.0);
    assert_eq!(
        provider.depth.gauge_value(),
        1.0,
        "one thing remains in the queue"
    );

    clock.step(Duration::from_micros(25));
    queue.done(&item);
    assert_eq!(provider.duration.observations().len(), 1);
    assert_close(provider.duration.observations()[0], 2.5e-5);
    assert_eq!(provider.depth.gauge_value(), 1.0);

    // It should be back on the queue.
    let item = queue.get().await.unwrap();
    assert_eq!(provider.latency.observations().len(), 2);
    assert_close(provider.latency.observations()[1], 2.5e-5);
    assert_eq!(provider.depth.gauge_value(), 0.0);

    // The updater publishes the unfinished work once its tick comes.
    let sets_before = provider.unfinished.set_count();
    clock.step(Duration::from_millis(1));
    tokio::time::timeout(PATIENCE, provider.longest.wait_for_sets(sets_before + 1))
        .await
        .expect("the updater ran");
    assert_close(provider.unfinished.gauge_value(), 0.001);
    assert_close(provider.longest.gauge_value(), 0.001);

    queue.done(&item);
    assert_eq!(provider.duration.observations().len(), 2);
    assert_close(provider.duration.observations()[1], 0.001);
    assert_eq!(provider.retries.gauge_value(), 0.0);
}

/// Unfinished work sums the ages of every item in progress; the longest is the oldest one.
#[tokio::test]
async fn unfinished_work_sums_and_longest_is_the_max() {
    let provider = Arc::new(TestProvider::default());
    let clock = FakeClock::new();
    let queue = WorkQueue::builder()
        .name("sums")
        .clock(clock.shared())
        .metrics(provider.clone())
        .unfinished_work_update_period(Duration::from_secs(1))
        .build();
    wait_for_waiters(&clock, 1).await;
    queue.add(1);
    queue.get().await.unwrap();
    clock.step(Duration::from_millis(400));
    queue.add(2);
    queue.get().await.unwrap();
    clock.step(Duration::from_millis(600)); // the tick at 1 s: ages 1.0 and 0.6
    tokio::time::timeout(PATIENCE, provider.longest.wait_for_sets(1))
        .await
        .unwrap();
    assert_close(provider.unfinished.gauge_value(), 1.6);
    assert_close(provider.longest.gauge_value(), 1.0);
}

/// client-go's TestMetricShutdown: no update after shutdown, and the updater's timer is gone.
#[tokio::test]
async fn no_unfinished_work_updates_after_shutdown() {
    let provider = Arc::new(TestProvider::default());
    let clock = FakeClock::new();
    let queue = WorkQueue::<u8>::builder()
        .name("stopping")
        .clock(clock.shared())
        .metrics(provider.clone())
        .unfinished_work_update_period(Duration::from_millis(1))
        .build();
    wait_for_waiters(&clock, 1).await;
    clock.step(Duration::from_millis(1));
    tokio::time::timeout(PATIENCE, provider.unfinished.wait_for_sets(1))
        .await
        .unwrap();
    queue.shut_down();
    for _ in 0..100 {
        if !clock.has_waiters() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!clock.has_waiters(), "the updater stopped");
    let sets = provider.unfinished.set_count();
    clock.step(Duration::from_secs(3600));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(provider.unfinished.set_count(), sets);
}

/// Dropping the last handle ends the updater too.
#[tokio::test]
async fn dropping_the_queue_stops_the_updater() {
    let provider = Arc::new(TestProvider::default());
    let clock = FakeClock::new();
    let queue = WorkQueue::<u8>::builder()
        .name("dropped")
        .clock(clock.shared())
        .metrics(provider)
        .build();
    wait_for_waiters(&clock, 1).await;
    drop(queue);
    for _ in 0..100 {
        if !clock.has_waiters() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!clock.has_waiters());
}

/// client-go reports no metrics for unnamed queues, and runs no updater for them.
#[tokio::test]
async fn unnamed_queues_report_nothing() {
    let provider = Arc::new(TestProvider::default());
    let clock = FakeClock::new();
    let queue = WorkQueue::builder()
        .clock(clock.shared())
        .metrics(provider.clone())
        .build();
    queue.add(1);
    let item = queue.get().await.unwrap();
    queue.done(&item);
    tokio::task::yield_now().await;
    assert!(!clock.has_waiters());
    assert!(provider.names.lock().is_empty());
    assert_eq!(provider.adds.gauge_value(), 0.0);
}

/// `set_provider` applies to every queue built afterwards without its own provider; only the
/// first call counts. (The only test in this binary that touches the global provider.)
#[tokio::test]
async fn global_provider() {
    let global = Arc::new(TestProvider::default());
    kube_workqueue::metrics::set_provider(global.clone()).unwrap();
    let second = kube_workqueue::metrics::set_provider(Arc::new(TestProvider::default()));
    assert!(matches!(
        second,
        Err(kube_workqueue::Error::MetricsProviderAlreadySet)
    ));
    assert!(kube_workqueue::metrics::global_provider().is_some());

    let queue = kube_workqueue::DelayingQueue::builder()
        .name("global")
        .build();
    queue.add("a");
    queue.add_after("b", Duration::ZERO);
    assert_eq!(global.adds.gauge_value(), 2.0);
    assert_eq!(global.retries.gauge_value(), 1.0);
    assert_eq!(global.names.lock().as_slice(), ["global".to_string()]);

    // An explicit provider still wins.
    let own = Arc::new(TestProvider::default());
    let queue = WorkQueue::builder()
        .name("own")
        .metrics(own.clone())
        .build();
    queue.add(1);
    assert_eq!(own.adds.gauge_value(), 1.0);
    assert_eq!(global.adds.gauge_value(), 2.0);
}

#[cfg(feature = "prometheus")]
#[tokio::test]
async fn prometheus_provider_exports_client_go_names() {
    use kube_workqueue::prometheus::PrometheusMetricsProvider;
    use prometheus_client::registry::Registry;

    let mut registry = Registry::default();
    let provider = Arc::new(PrometheusMetricsProvider::new(&mut registry));
    let clock = FakeClock::new();
    let queue = kube_workqueue::RateLimitingQueue::builder()
        .name("pods")
        .clock(clock.shared())
        .metrics(provider.clone())
        .unfinished_work_update_period(Duration::from_millis(100))
        .build();
    let other = WorkQueue::builder().name("nodes").metrics(provider).build();
    other.add("n1");

    queue.add("a");
    queue.add("b");
    clock.step(Duration::from_millis(2));
    let item = queue.get().await.unwrap();
    clock.step(Duration::from_millis(3));
    queue.add_rate_limited(item);
    queue.done(&item);

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for expected in [
        "workqueue_depth{name=\"pods\"} 1",
        "workqueue_depth{name=\"nodes\"} 1",
        "workqueue_adds_total{name=\"pods\"} 2",
        "workqueue_retries_total{name=\"pods\"} 1",
        "workqueue_queue_duration_seconds_count{name=\"pods\"} 1",
        "workqueue_queue_duration_seconds_sum{name=\"pods\"} 0.002",
        "workqueue_work_duration_seconds_count{name=\"pods\"} 1",
        "workqueue_work_duration_seconds_sum{name=\"pods\"} 0.003",
        "workqueue_queue_duration_seconds_bucket{le=\"1e-8\",name=\"pods\"} 0",
        "workqueue_queue_duration_seconds_bucket{le=\"0.001\",name=\"pods\"} 0",
        "workqueue_queue_duration_seconds_bucket{le=\"0.01\",name=\"pods\"} 1",
        "# TYPE workqueue_unfinished_work_seconds gauge",
        "# TYPE workqueue_longest_running_processor_seconds gauge",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}
