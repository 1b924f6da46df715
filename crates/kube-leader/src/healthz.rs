//! [`HealthzAdaptor`]: a liveness check for a leader whose renewals are stuck.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::elector::{LeaderElector, RenewOverdue};
use crate::lock::Lock;

trait Check: Send + Sync {
    fn check(&self, timeout: Duration) -> Result<(), RenewOverdue>;
}

impl<L: Lock> Check for LeaderElector<L> {
    fn check(&self, timeout: Duration) -> Result<(), RenewOverdue> {
        LeaderElector::check(self, timeout)
    }
}

/// Ties a health endpoint to an elector (client-go's `HealthzAdaptor`).
///
/// Healthy until an elector is attached; then unhealthy only while the elector believes it
/// leads but observed no renewal for longer than its lease duration plus `timeout`, the sign of
/// a stuck process that the kubelet should restart. Framework-neutral: call
/// [`check`](HealthzAdaptor::check) from any HTTP handler and answer 200 or 500.
///
/// ```
/// use std::time::Duration;
/// use kube_leader::{HealthzAdaptor, LeaderElector, MemoryStore};
///
/// let healthz = HealthzAdaptor::new(Duration::from_secs(20));
/// assert!(healthz.check().is_ok()); // nothing attached yet
/// let elector = LeaderElector::builder(MemoryStore::new("ns/lock").lock("a"))
///     .on_started_leading(|_token| async {})
///     .on_stopped_leading(|| {})
///     .build()
///     .unwrap();
/// healthz.set_leader_election(&elector);
/// assert!(healthz.check().is_ok()); // not leading: healthy
/// assert_eq!(healthz.name(), "leaderElection");
/// ```
#[derive(Clone, Default)]
pub struct HealthzAdaptor {
    timeout: Duration,
    elector: Arc<Mutex<Option<Arc<dyn Check>>>>,
}

impl fmt::Debug for HealthzAdaptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthzAdaptor")
            .field("timeout", &self.timeout)
            .field("attached", &self.elector.lock().is_some())
            .finish()
    }
}

impl HealthzAdaptor {
    /// An adaptor tolerating `timeout` beyond the lease duration (client-go's
    /// `NewLeaderHealthzAdaptor`).
    pub fn new(timeout: Duration) -> HealthzAdaptor {
        HealthzAdaptor {
            timeout,
            elector: Arc::new(Mutex::new(None)),
        }
    }

    /// The check's name: `leaderElection`.
    pub fn name(&self) -> &'static str {
        "leaderElection"
    }

    /// Attaches the elector to watch (replacing any previous one).
    pub fn set_leader_election<L: Lock>(&self, elector: &LeaderElector<L>) {
        *self.elector.lock() = Some(Arc::new(elector.clone()));
    }

    /// `Ok` when healthy; the error says how long the leader has not renewed.
    pub fn check(&self) -> Result<(), RenewOverdue> {
        let elector = self.elector.lock().clone();
        match elector {
            None => Ok(()),
            Some(elector) => elector.check(self.timeout),
        }
    }
}
