//! [`PrometheusMetrics`]: the recorders' counters in a `prometheus-client` registry (feature
//! `prometheus`).
//!
//! | metric | labels | counts |
//! | --- | --- | --- |
//! | `kube_record_events_recorded_total` | `api` | events accepted by a recorder |
//! | `kube_record_events_dropped_total` | `api`, `reason` | events dropped (`queue_full`, `shut_down`, `flush_timeout`) |
//! | `kube_record_events_aggregated_total` | `api` | aggregate events (core/v1), events folded into a series (events.k8s.io/v1) |
//! | `kube_record_events_spam_filtered_total` | `api` | events skipped by the spam filter |
//! | `kube_record_events_written_total` | `api` | events stored by a sink |
//! | `kube_record_sink_errors_total` | `api`, `retryable` | failed sink calls |
//! | `kube_record_events_abandoned_total` | `api` | events given up by the writer |
//!
//! `api` is `core/v1` or `events.k8s.io/v1`.
//!
//! ```
//! use std::sync::Arc;
//! use k8s_openapi::api::core::v1::Pod;
//! use prometheus_client::registry::Registry;
//! use kube_record::{EventBroadcaster, EventType};
//! use kube_record::prometheus::PrometheusMetrics;
//!
//! let mut registry = Registry::default();
//! let metrics = Arc::new(PrometheusMetrics::new(&mut registry));
//! let broadcaster = EventBroadcaster::builder().metrics(metrics).build();
//! let recorder = broadcaster.new_recorder("demo");
//! recorder.event(&Pod::default(), EventType::Normal, "Started", "hello").unwrap();
//!
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
//! assert!(text.contains("kube_record_events_recorded_total{api=\"core/v1\"} 1"));
//! ```

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::metrics::{EventApi, EventMetrics, Metric};

type Labels = Vec<(&'static str, &'static str)>;

/// Registers the recorders' counters in a registry; give it (in an `Arc`) to the broadcasters'
/// builders. One instance can serve several broadcasters.
#[derive(Debug, Clone, Default)]
pub struct PrometheusMetrics {
    recorded: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    aggregated: Family<Labels, Counter>,
    spam_filtered: Family<Labels, Counter>,
    written: Family<Labels, Counter>,
    sink_errors: Family<Labels, Counter>,
    abandoned: Family<Labels, Counter>,
}

impl PrometheusMetrics {
    /// Creates the counters and registers them in `registry`.
    pub fn new(registry: &mut Registry) -> PrometheusMetrics {
        let metrics = PrometheusMetrics::default();
        let families = [
            (
                "kube_record_events_recorded",
                "Events accepted by a recorder",
                &metrics.recorded,
            ),
            (
                "kube_record_events_dropped",
                "Events dropped before reaching a sink",
                &metrics.dropped,
            ),
            (
                "kube_record_events_aggregated",
                "Events combined with similar ones",
                &metrics.aggregated,
            ),
            (
                "kube_record_events_spam_filtered",
                "Events skipped by the spam filter",
                &metrics.spam_filtered,
            ),
            (
                "kube_record_events_written",
                "Events stored by a sink",
                &metrics.written,
            ),
            (
                "kube_record_sink_errors",
                "Failed sink calls",
                &metrics.sink_errors,
            ),
            (
                "kube_record_events_abandoned",
                "Events given up by the writer",
                &metrics.abandoned,
            ),
        ];
        for (name, help, family) in families {
            registry.register(name, help, family.clone());
        }
        metrics
    }
}

impl EventMetrics for PrometheusMetrics {
    fn observe(&self, api: EventApi, metric: Metric) {
        let api = ("api", api.as_str());
        let (family, labels) = match metric {
            Metric::Recorded => (&self.recorded, vec![api]),
            Metric::Dropped(reason) => (&self.dropped, vec![api, ("reason", reason.as_str())]),
            Metric::Aggregated => (&self.aggregated, vec![api]),
            Metric::SpamFiltered => (&self.spam_filtered, vec![api]),
            Metric::Written => (&self.written, vec![api]),
            Metric::SinkError { retryable } => (
                &self.sink_errors,
                vec![api, ("retryable", if retryable { "true" } else { "false" })],
            ),
            Metric::Abandoned => (&self.abandoned, vec![api]),
        };
        family.get_or_create(&labels).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::DropReason;

    #[test]
    fn every_metric_is_exported() {
        let mut registry = Registry::default();
        let metrics = PrometheusMetrics::new(&mut registry);
        metrics.observe(EventApi::EventsV1, Metric::Dropped(DropReason::QueueFull));
        metrics.observe(EventApi::CoreV1, Metric::SinkError { retryable: true });
        metrics.observe(EventApi::CoreV1, Metric::Aggregated);
        metrics.observe(EventApi::CoreV1, Metric::SpamFiltered);
        metrics.observe(EventApi::CoreV1, Metric::Written);
        metrics.observe(EventApi::CoreV1, Metric::Abandoned);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "kube_record_events_dropped_total{api=\"events.k8s.io/v1\",reason=\"queue_full\"} 1",
            "kube_record_sink_errors_total{api=\"core/v1\",retryable=\"true\"} 1",
            "kube_record_events_aggregated_total{api=\"core/v1\"} 1",
            "kube_record_events_spam_filtered_total{api=\"core/v1\"} 1",
            "kube_record_events_written_total{api=\"core/v1\"} 1",
            "kube_record_events_abandoned_total{api=\"core/v1\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
