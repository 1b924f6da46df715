//! [`PrometheusMetrics`]: client-go's leader-election metrics in a `prometheus-client`
//! registry (feature `prometheus`).
//!
//! | metric | type | from |
//! | --- | --- | --- |
//! | `leader_election_master_status{name}` | gauge: 1 leading, 0 not | client-go |
//! | `leader_election_slowpath_total{name}` | counter | client-go |
//! | `leader_election_leader_changes_total{name}` | counter: observed holder changes | this crate |
//!
//! ```
//! use std::sync::Arc;
//! use prometheus_client::registry::Registry;
//! use kube_leader::{LeaderElector, MemoryStore};
//! use kube_leader::prometheus::PrometheusMetrics;
//!
//! let mut registry = Registry::default();
//! let metrics = Arc::new(PrometheusMetrics::new(&mut registry));
//! let _elector = LeaderElector::builder(MemoryStore::new("ns/lock").lock("a"))
//!     .name("my-controller")
//!     .metrics(metrics)
//!     .on_started_leading(|_token| async {})
//!     .on_stopped_leading(|| {})
//!     .build()
//!     .unwrap();
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
//! assert!(text.contains("leader_election_master_status{name=\"my-controller\"} 0"));
//! ```

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::metrics::LeaderMetrics;

type Labels = Vec<(String, String)>;

fn labels(name: &str) -> Labels {
    vec![("name".to_string(), name.to_string())]
}

/// Registers the leader-election metrics and updates them for every elector it is given to
/// (share one in an `Arc`).
#[derive(Debug, Clone)]
pub struct PrometheusMetrics {
    master_status: Family<Labels, Gauge>,
    slowpath: Family<Labels, Counter>,
    leader_changes: Family<Labels, Counter>,
}

impl PrometheusMetrics {
    /// Creates the metric families and registers them in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = PrometheusMetrics {
            master_status: Family::default(),
            slowpath: Family::default(),
            leader_changes: Family::default(),
        };
        registry.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates \
             backup, 1 indicates master. 'name' is the string used to identify the lease. \
             Please make sure to group by name.",
            metrics.master_status.clone(),
        );
        registry.register(
            "leader_election_slowpath",
            "Total number of slow path exercised in renewing leader leases. 'name' is the \
             string used to identify the lease. Please make sure to group by name.",
            metrics.slowpath.clone(),
        );
        registry.register(
            "leader_election_leader_changes",
            "Total number of changes of the observed lease holder. 'name' is the string used \
             to identify the lease.",
            metrics.leader_changes.clone(),
        );
        metrics
    }
}

impl LeaderMetrics for PrometheusMetrics {
    fn leader_on(&self, name: &str) {
        self.master_status.get_or_create(&labels(name)).set(1);
    }

    fn leader_off(&self, name: &str) {
        self.master_status.get_or_create(&labels(name)).set(0);
    }

    fn slowpath_exercised(&self, name: &str) {
        self.slowpath.get_or_create(&labels(name)).inc();
    }

    fn leader_changed(&self, name: &str) {
        self.leader_changes.get_or_create(&labels(name)).inc();
    }
}
