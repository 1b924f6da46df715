//! Workqueue metrics: client-go's `MetricsProvider` and its metric kinds.
//!
//! A queue with a name and a provider reports, per queue name:
//!
//! | metric | kind | meaning |
//! | --- | --- | --- |
//! | depth | [`GaugeMetric`] | items waiting to be handed out (dirty, not yet taken by `get`) |
//! | adds | [`CounterMetric`] | adds that were not deduplicated away |
//! | latency | [`HistogramMetric`] | seconds an item waited between `add` and `get` |
//! | work duration | [`HistogramMetric`] | seconds between `get` and `done` |
//! | unfinished work seconds | [`SettableGaugeMetric`] | sum of the ages of items being processed |
//! | longest running processor | [`SettableGaugeMetric`] | age of the oldest item being processed |
//! | retries | [`CounterMetric`] | calls to `add_after` / `add_rate_limited` |
//!
//! The two "unfinished" gauges are refreshed by a background task every 500 ms of the queue's
//! clock (configurable on the builder), as client-go does.
//!
//! Without a provider (the default), or for a queue without a name (as in client-go), no metric
//! code runs at all: the queue does not even read the clock. A provider is given per queue with
//! [`QueueBuilder::metrics`](crate::QueueBuilder::metrics), or once for every queue built
//! afterwards with [`set_provider`] (client-go's `workqueue.SetProvider`). With the `prometheus`
//! feature, `prometheus::PrometheusMetricsProvider` registers client-go's metric names in a
//! `prometheus-client` registry.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use kube_flowcontrol::SharedClock;

use crate::error::Error;

/// A value that goes up and down one at a time (the queue depth).
pub trait GaugeMetric: Send + Sync {
    /// Adds one.
    fn inc(&self);
    /// Subtracts one.
    fn dec(&self);
}

/// A value that is set outright (the unfinished-work gauges).
pub trait SettableGaugeMetric: Send + Sync {
    /// Sets the value.
    fn set(&self, value: f64);
}

/// A value that only goes up (adds, retries).
pub trait CounterMetric: Send + Sync {
    /// Adds one.
    fn inc(&self);
}

/// A distribution of observations, in seconds (queue latency, work duration).
pub trait HistogramMetric: Send + Sync {
    /// Records one observation.
    fn observe(&self, value: f64);
}

/// Creates the metrics of a named queue (client-go's `workqueue.MetricsProvider`).
///
/// Each method is called once per queue, with the queue's name, when the queue is built.
pub trait MetricsProvider: Send + Sync {
    /// The current depth of the queue.
    fn new_depth_metric(&self, name: &str) -> Arc<dyn GaugeMetric>;
    /// The total number of adds handled by the queue.
    fn new_adds_metric(&self, name: &str) -> Arc<dyn CounterMetric>;
    /// How long, in seconds, an item stays in the queue before being requested.
    fn new_latency_metric(&self, name: &str) -> Arc<dyn HistogramMetric>;
    /// How long, in seconds, processing an item takes.
    fn new_work_duration_metric(&self, name: &str) -> Arc<dyn HistogramMetric>;
    /// Seconds of work in progress that `work_duration` has not observed yet.
    fn new_unfinished_work_seconds_metric(&self, name: &str) -> Arc<dyn SettableGaugeMetric>;
    /// How many seconds the longest running processor has been running.
    fn new_longest_running_processor_seconds_metric(
        &self,
        name: &str,
    ) -> Arc<dyn SettableGaugeMetric>;
    /// The total number of retries (delayed adds) handled by the queue.
    fn new_retries_metric(&self, name: &str) -> Arc<dyn CounterMetric>;

    /// Whether this provider discards everything, so that queues can skip metrics entirely.
    /// Only [`NoopMetricsProvider`] says yes.
    fn is_noop(&self) -> bool {
        false
    }
}

impl<P: MetricsProvider + ?Sized> MetricsProvider for Arc<P> {
    fn new_depth_metric(&self, name: &str) -> Arc<dyn GaugeMetric> {
        (**self).new_depth_metric(name)
    }
    fn new_adds_metric(&self, name: &str) -> Arc<dyn CounterMetric> {
        (**self).new_adds_metric(name)
    }
    fn new_latency_metric(&self, name: &str) -> Arc<dyn HistogramMetric> {
        (**self).new_latency_metric(name)
    }
    fn new_work_duration_metric(&self, name: &str) -> Arc<dyn HistogramMetric> {
        (**self).new_work_duration_metric(name)
    }
    fn new_unfinished_work_seconds_metric(&self, name: &str) -> Arc<dyn SettableGaugeMetric> {
        (**self).new_unfinished_work_seconds_metric(name)
    }
    fn new_longest_running_processor_seconds_metric(
        &self,
        name: &str,
    ) -> Arc<dyn SettableGaugeMetric> {
        (**self).new_longest_running_processor_seconds_metric(name)
    }
    fn new_retries_metric(&self, name: &str) -> Arc<dyn CounterMetric> {
        (**self).new_retries_metric(name)
    }
    fn is_noop(&self) -> bool {
        (**self).is_noop()
    }
}

/// A metric that records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopMetric;

impl GaugeMetric for NoopMetric {
    fn inc(&self) {}
    fn dec(&self) {}
}

impl SettableGaugeMetric for NoopMetric {
    fn set(&self, _value: f64) {}
}

impl CounterMetric for NoopMetric {
    fn inc(&self) {}
}

impl HistogramMetric for NoopMetric {
    fn observe(&self, _value: f64) {}
}

/// The default provider: no metrics, and no cost (queues built with it skip all metric code).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopMetricsProvider;

impl MetricsProvider for NoopMetricsProvider {
    fn new_depth_metric(&self, _name: &str) -> Arc<dyn GaugeMetric> {
        Arc::new(NoopMetric)
    }
    fn new_adds_metric(&self, _name: &str) -> Arc<dyn CounterMetric> {
        Arc::new(NoopMetric)
    }
    fn new_latency_metric(&self, _name: &str) -> Arc<dyn HistogramMetric> {
        Arc::new(NoopMetric)
    }
    fn new_work_duration_metric(&self, _name: &str) -> Arc<dyn HistogramMetric> {
        Arc::new(NoopMetric)
    }
    fn new_unfinished_work_seconds_metric(&self, _name: &str) -> Arc<dyn SettableGaugeMetric> {
        Arc::new(NoopMetric)
    }
    fn new_longest_running_processor_seconds_metric(
        &self,
        _name: &str,
    ) -> Arc<dyn SettableGaugeMetric> {
        Arc::new(NoopMetric)
    }
    fn new_retries_metric(&self, _name: &str) -> Arc<dyn CounterMetric> {
        Arc::new(NoopMetric)
    }
    fn is_noop(&self) -> bool {
        true
    }
}

static GLOBAL_PROVIDER: OnceLock<Arc<dyn MetricsProvider>> = OnceLock::new();

/// Sets the provider used by every queue built afterwards without an explicit
/// [`metrics`](crate::QueueBuilder::metrics) provider (client-go's `workqueue.SetProvider`).
///
/// Only the first call has an effect; later calls return
/// [`Error::MetricsProviderAlreadySet`] (client-go silently ignores them).
pub fn set_provider(provider: Arc<dyn MetricsProvider>) -> Result<(), Error> {
    GLOBAL_PROVIDER
        .set(provider)
        .map_err(|_| Error::MetricsProviderAlreadySet)
}

/// The provider set with [`set_provider`], if any.
pub fn global_provider() -> Option<Arc<dyn MetricsProvider>> {
    GLOBAL_PROVIDER.get().cloned()
}

/// Picks the provider a queue uses: none for an unnamed queue or a no-op provider.
pub(crate) fn resolve_provider(
    name: &str,
    explicit: Option<Arc<dyn MetricsProvider>>,
) -> Option<Arc<dyn MetricsProvider>> {
    if name.is_empty() {
        return None;
    }
    explicit
        .or_else(global_provider)
        .filter(|provider| !provider.is_noop())
}

/// The metrics of one queue (client-go's `defaultQueueMetrics`); called with the queue locked.
pub(crate) struct QueueMetrics {
    clock: SharedClock,
    depth: Arc<dyn GaugeMetric>,
    adds: Arc<dyn CounterMetric>,
    latency: Arc<dyn HistogramMetric>,
    work_duration: Arc<dyn HistogramMetric>,
    unfinished_work_seconds: Arc<dyn SettableGaugeMetric>,
    longest_running_processor: Arc<dyn SettableGaugeMetric>,
}

impl QueueMetrics {
    pub(crate) fn new(provider: &dyn MetricsProvider, name: &str, clock: SharedClock) -> Self {
        QueueMetrics {
            clock,
            depth: provider.new_depth_metric(name),
            adds: provider.new_adds_metric(name),
            latency: provider.new_latency_metric(name),
            work_duration: provider.new_work_duration_metric(name),
            unfinished_work_seconds: provider.new_unfinished_work_seconds_metric(name),
            longest_running_processor: provider.new_longest_running_processor_seconds_metric(name),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// An item became dirty.
    pub(crate) fn add(&self) {
        self.adds.inc();
        self.depth.inc();
    }

    /// An item was handed out; `added_at` is when it became dirty.
    pub(crate) fn get(&self, added_at: Option<Instant>, now: Instant) {
        self.depth.dec();
        if let Some(added_at) = added_at {
            self.latency.observe(seconds_between(added_at, now));
        }
    }

    /// An item handed out at `started_at` is done.
    pub(crate) fn done(&self, started_at: Option<Instant>, now: Instant) {
        if let Some(started_at) = started_at {
            self.work_duration.observe(seconds_between(started_at, now));
        }
    }

    /// Publishes the sum and the maximum of the ages of the items being processed.
    pub(crate) fn update_unfinished_work(&self, started: impl Iterator<Item = Instant>) {
        let now = self.now();
        let mut total = 0.0;
        let mut oldest = 0.0_f64;
        for started_at in started {
            let age = seconds_between(started_at, now);
            total += age;
            oldest = oldest.max(age);
        }
        self.unfinished_work_seconds.set(total);
        self.longest_running_processor.set(oldest);
    }
}

fn seconds_between(earlier: Instant, later: Instant) -> f64 {
    later.saturating_duration_since(earlier).as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_queues_and_noop_providers_get_no_metrics() {
        let provider: Arc<dyn MetricsProvider> = Arc::new(NoopMetricsProvider);
        assert!(resolve_provider("q", Some(Arc::clone(&provider))).is_none());
        let wrapped: Arc<dyn MetricsProvider> = Arc::new(Arc::new(NoopMetricsProvider));
        assert!(wrapped.is_noop());
        assert!(resolve_provider("q", Some(wrapped)).is_none());
    }

    #[test]
    fn noop_metrics_accept_everything() {
        let provider = NoopMetricsProvider;
        provider.new_depth_metric("q").inc();
        provider.new_depth_metric("q").dec();
        provider.new_adds_metric("q").inc();
        provider.new_latency_metric("q").observe(1.0);
        provider.new_work_duration_metric("q").observe(1.0);
        provider.new_unfinished_work_seconds_metric("q").set(1.0);
        provider
            .new_longest_running_processor_seconds_metric("q")
            .set(1.0);
        provider.new_retries_metric("q").inc();
        assert!(provider.is_noop());
    }
}
