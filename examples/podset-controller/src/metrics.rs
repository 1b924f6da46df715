//! The controller's own Prometheus metrics, and the informers' (read at each scrape).

use std::sync::Arc;

use kube_cache::informer::{HandlerRegistration, SharedIndexInformer};
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

/// Counters and histograms of the reconciles.
#[derive(Debug, Clone)]
pub struct ControllerMetrics {
    reconciles: Family<Labels, Counter>,
    duration: Histogram,
    pods_created: Counter,
    pods_deleted: Counter,
    dropped: Counter,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        ControllerMetrics {
            reconciles: Family::default(),
            // 1 ms to about 16 s.
            duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            pods_created: Counter::default(),
            pods_deleted: Counter::default(),
            dropped: Counter::default(),
        }
    }
}

impl ControllerMetrics {
    /// Metrics registered in `registry` (pass `None` for unregistered ones).
    pub fn new(registry: Option<&mut Registry>) -> ControllerMetrics {
        let metrics = ControllerMetrics::default();
        if let Some(registry) = registry {
            registry.register(
                "podset_reconciles",
                "Reconciles of PodSets, by result",
                metrics.reconciles.clone(),
            );
            registry.register(
                "podset_reconcile_duration_seconds",
                "How long a reconcile took",
                metrics.duration.clone(),
            );
            registry.register(
                "podset_pods_created",
                "Pods created by the controller",
                metrics.pods_created.clone(),
            );
            registry.register(
                "podset_pods_deleted",
                "Pods deleted by the controller",
                metrics.pods_deleted.clone(),
            );
            registry.register(
                "podset_reconcile_dropped",
                "PodSet keys dropped from the queue after too many failed reconciles",
                metrics.dropped.clone(),
            );
        }
        metrics
    }

    /// A reconcile ended.
    pub fn reconciled(&self, ok: bool, seconds: f64) {
        let result = if ok { "success" } else { "error" };
        self.reconciles
            .get_or_create(&vec![("result", result)])
            .inc();
        self.duration.observe(seconds);
    }

    /// Reconciles so far, successful and failed.
    pub fn reconcile_counts(&self) -> (u64, u64) {
        let count = |result| {
            self.reconciles
                .get_or_create(&vec![("result", result)])
                .get()
        };
        (count("success"), count("error"))
    }

    /// A pod was created.
    pub fn pod_created(&self) {
        self.pods_created.inc();
    }

    /// A pod was deleted.
    pub fn pod_deleted(&self) {
        self.pods_deleted.inc();
    }

    /// A key was dropped after its retries.
    pub fn key_dropped(&self) {
        self.dropped.inc();
    }
}

/// What the collector reads of one informer.
trait InformerProbe: Send + Sync {
    fn objects(&self) -> usize;
    fn synced(&self) -> bool;
    fn last_sync_resource_version(&self) -> String;
    /// (received, delivered, pending, dropped) of the controller's handler.
    fn handler(&self) -> (u64, u64, usize, u64);
}

struct Probe<K: kube_apimachinery::Object + Send + Sync + 'static> {
    informer: SharedIndexInformer<K>,
    registration: HandlerRegistration<K>,
}

impl<K: kube_apimachinery::Object + Send + Sync + 'static> InformerProbe for Probe<K> {
    fn objects(&self) -> usize {
        self.informer.indexer().len()
    }
    fn synced(&self) -> bool {
        self.informer.has_synced()
    }
    fn last_sync_resource_version(&self) -> String {
        self.informer.last_sync_resource_version()
    }
    fn handler(&self) -> (u64, u64, usize, u64) {
        let s = self.registration.stats();
        (s.received, s.delivered, s.pending, s.dropped)
    }
}

/// Informer metrics, read at each scrape: `informer_objects`, `informer_synced`,
/// `informer_handler_notifications_total`, `informer_handler_delivered_total`,
/// `informer_handler_pending`, `informer_handler_dropped_total`, labelled by `resource`.
#[derive(Clone, Default)]
pub struct InformerMetrics {
    probes: Arc<Mutex<Vec<Named>>>,
}

/// An informer's probe and its `resource` label.
type Named = (&'static str, Arc<dyn InformerProbe>);

impl std::fmt::Debug for InformerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.probes.lock().iter().map(|(n, _)| *n).collect();
        f.debug_struct("InformerMetrics")
            .field("informers", &names)
            .finish()
    }
}

impl InformerMetrics {
    /// Reports `informer` (and the handler of `registration`) as `resource`.
    pub fn add<K: kube_apimachinery::Object + Send + Sync + 'static>(
        &self,
        resource: &'static str,
        informer: SharedIndexInformer<K>,
        registration: HandlerRegistration<K>,
    ) {
        self.probes.lock().push((
            resource,
            Arc::new(Probe {
                informer,
                registration,
            }),
        ));
    }

    /// Whether every informer has synced.
    pub fn all_synced(&self) -> bool {
        self.probes.lock().iter().all(|(_, p)| p.synced())
    }

    /// `(resource, objects cached, last synced resourceVersion)` of each informer.
    pub fn summary(&self) -> Vec<(&'static str, usize, String)> {
        self.probes
            .lock()
            .iter()
            .map(|(n, p)| (*n, p.objects(), p.last_sync_resource_version()))
            .collect()
    }
}

impl Collector for InformerMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let probes = self.probes.lock().clone();
        type Read = fn(&dyn InformerProbe) -> Value;
        enum Value {
            Gauge(i64),
            Counter(u64),
        }
        let families: [(&str, &str, Read); 6] = [
            ("informer_objects", "Objects in the informer's cache", |p| {
                Value::Gauge(p.objects() as i64)
            }),
            ("informer_synced", "1 once the informer has synced", |p| {
                Value::Gauge(i64::from(p.synced()))
            }),
            (
                "informer_handler_notifications",
                "Notifications queued for the controller's handler",
                |p| Value::Counter(p.handler().0),
            ),
            (
                "informer_handler_delivered",
                "Notifications handled by the controller's handler",
                |p| Value::Counter(p.handler().1),
            ),
            (
                "informer_handler_pending",
                "Notifications waiting for the controller's handler",
                |p| Value::Gauge(p.handler().2 as i64),
            ),
            (
                "informer_handler_dropped",
                "Notifications dropped before the controller's handler saw them",
                |p| Value::Counter(p.handler().3),
            ),
        ];
        for (name, help, read) in families {
            let Some((_, first)) = probes.first() else {
                return Ok(());
            };
            let metric_type = match read(first.as_ref()) {
                Value::Gauge(_) => ConstGauge::new(0i64).metric_type(),
                Value::Counter(_) => ConstCounter::new(0u64).metric_type(),
            };
            let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
            for (resource, probe) in &probes {
                let labels = [("resource", *resource)];
                let metric = family.encode_family(&labels)?;
                match read(probe.as_ref()) {
                    Value::Gauge(v) => ConstGauge::new(v).encode(metric)?,
                    Value::Counter(v) => ConstCounter::new(v).encode(metric)?,
                }
            }
        }
        Ok(())
    }
}
