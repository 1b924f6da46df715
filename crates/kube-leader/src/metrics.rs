//! Where the elector reports its state (client-go's `leaderelection` metrics provider).

use std::fmt;

/// Receives the elector's metrics events, each with the elector's name.
///
/// The `prometheus` feature provides [`PrometheusMetrics`](crate::prometheus::PrometheusMetrics).
pub trait LeaderMetrics: Send + Sync + fmt::Debug {
    /// This candidate started leading (client-go's `leaderOn`: the master status gauge goes to 1).
    fn leader_on(&self, name: &str);
    /// This candidate is not leading (at creation and when leadership ends: the gauge goes to 0).
    fn leader_off(&self, name: &str);
    /// A renewal had to read the lock again after the optimistic update failed, or a leader
    /// renewed from a fresh read (client-go's `slowpathExercised`).
    fn slowpath_exercised(&self, name: &str);
    /// The observed holder changed (what triggers `on_new_leader`). Not a client-go metric;
    /// the default does nothing.
    fn leader_changed(&self, name: &str) {
        let _ = name;
    }
}

/// Metrics going nowhere (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopMetrics;

impl LeaderMetrics for NoopMetrics {
    fn leader_on(&self, _name: &str) {}
    fn leader_off(&self, _name: &str) {}
    fn slowpath_exercised(&self, _name: &str) {}
}
