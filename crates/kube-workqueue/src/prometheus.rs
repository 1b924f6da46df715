//! A [`MetricsProvider`] for `prometheus-client` (feature `prometheus`).
//!
//! Registers client-go's workqueue metrics (the names `k8s.io/component-base` exposes), each
//! labelled with the queue's `name`:
//!
//! | metric | type |
//! | --- | --- |
//! | `workqueue_depth` | gauge |
//! | `workqueue_adds_total` | counter |
//! | `workqueue_queue_duration_seconds` | histogram |
//! | `workqueue_work_duration_seconds` | histogram |
//! | `workqueue_unfinished_work_seconds` | gauge |
//! | `workqueue_longest_running_processor_seconds` | gauge |
//! | `workqueue_retries_total` | counter |
//!
//! The histograms use client-go's buckets: 10 exponential buckets from 10 ns (`10e-9` s) by
//! factors of 10.
//!
//! ```
//! use std::sync::Arc;
//! use prometheus_client::registry::Registry;
//! use kube_workqueue::WorkQueue;
//! use kube_workqueue::prometheus::PrometheusMetricsProvider;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut registry = Registry::default();
//! let provider = Arc::new(PrometheusMetricsProvider::new(&mut registry));
//! let queue = WorkQueue::builder().name("pods").metrics(provider).build();
//! queue.add("default/web");
//!
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
//! assert!(text.contains("workqueue_depth{name=\"pods\"} 1"));
//! assert!(text.contains("workqueue_adds_total{name=\"pods\"} 1"));
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::metrics::{
    CounterMetric, GaugeMetric, HistogramMetric, MetricsProvider, SettableGaugeMetric,
};

/// The label set of every workqueue metric: `name="<queue name>"`.
type Labels = Vec<(String, String)>;

/// A histogram family with client-go's buckets.
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// A gauge holding an `f64`.
type FloatGauge = Gauge<f64, AtomicU64>;

fn workqueue_histogram() -> Histogram {
    Histogram::new(exponential_buckets(10e-9, 10.0, 10))
}

fn labels(name: &str) -> Labels {
    vec![("name".to_string(), name.to_string())]
}

/// Registers client-go's workqueue metrics in a `prometheus-client` [`Registry`] and hands them
/// to queues by name. Share one provider (in an `Arc`) between all queues.
#[derive(Debug, Clone)]
pub struct PrometheusMetricsProvider {
    depth: Family<Labels, Gauge>,
    adds: Family<Labels, Counter>,
    latency: HistogramFamily,
    work_duration: HistogramFamily,
    unfinished_work_seconds: Family<Labels, FloatGauge>,
    longest_running_processor: Family<Labels, FloatGauge>,
    retries: Family<Labels, Counter>,
}

impl PrometheusMetricsProvider {
    /// Creates the metric families and registers them in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let provider = PrometheusMetricsProvider {
            depth: Family::default(),
            adds: Family::default(),
            latency: Family::new_with_constructor(workqueue_histogram),
            work_duration: Family::new_with_constructor(workqueue_histogram),
            unfinished_work_seconds: Family::default(),
            longest_running_processor: Family::default(),
            retries: Family::default(),
        };
        registry.register(
            "workqueue_depth",
            "Current depth of workqueue",
            provider.depth.clone(),
        );
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            provider.adds.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            provider.latency.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            provider.work_duration.clone(),
        );
        registry.register(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been \
             observed by work_duration. Large values indicate stuck threads. One can deduce the \
             number of stuck threads by observing the rate at which this increases",
            provider.unfinished_work_seconds.clone(),
        );
        registry.register(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running",
            provider.longest_running_processor.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            provider.retries.clone(),
        );
        provider
    }
}

struct PromGauge(Gauge);
struct PromFloatGauge(FloatGauge);
struct PromCounter(Counter);
struct PromHistogram(Histogram);

impl GaugeMetric for PromGauge {
    fn inc(&self) {
        self.0.inc();
    }
    fn dec(&self) {
        self.0.dec();
    }
}

impl SettableGaugeMetric for PromFloatGauge {
    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

impl CounterMetric for PromCounter {
    fn inc(&self) {
        self.0.inc();
    }
}

impl HistogramMetric for PromHistogram {
    fn observe(&self, value: f64) {
        self.0.observe(value);
    }
}

impl MetricsProvider for PrometheusMetricsProvider {
    fn new_depth_metric(&self, name: &str) -> Arc<dyn GaugeMetric> {
        Arc::new(PromGauge(self.depth.get_or_create_owned(&labels(name))))
    }
    fn new_adds_metric(&self, name: &str) -> Arc<dyn CounterMetric> {
        Arc::new(PromCounter(self.adds.get_or_create_owned(&labels(name))))
    }
    fn new_latency_metric(&self, name: &str) -> Arc<dyn HistogramMetric> {
        Arc::new(PromHistogram(
            self.latency.get_or_create_owned(&labels(name)),
        ))
    }
    fn new_work_duration_metric(&self, name: &str) -> Arc<dyn HistogramMetric> {
        Arc::new(PromHistogram(
            self.work_duration.get_or_create_owned(&labels(name)),
        ))
    }
    fn new_unfinished_work_seconds_metric(&self, name: &str) -> Arc<dyn SettableGaugeMetric> {
        Arc::new(PromFloatGauge(
            self.unfinished_work_seconds
                .get_or_create_owned(&labels(name)),
        ))
    }
    fn new_longest_running_processor_seconds_metric(
        &self,
        name: &str,
    ) -> Arc<dyn SettableGaugeMetric> {
        Arc::new(PromFloatGauge(
            self.longest_running_processor
                .get_or_create_owned(&labels(name)),
        ))
    }
    fn new_retries_metric(&self, name: &str) -> Arc<dyn CounterMetric> {
        Arc::new(PromCounter(self.retries.get_or_create_owned(&labels(name))))
    }
}
