//! The Lease lock on kube-rs's client (feature `kube`): leader election for controllers
//! written with kube-rs, with the same rules as the `rest` feature's `LeaseLock`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube::Error> {
//! use k8s_openapi::api::coordination::v1::Lease;
//! use kube_leader::kube::LeaseLock;
//!
//! let client = kube::Client::try_default().await?;
//! let lock = LeaseLock::new(kube::Api::<Lease>::namespaced(client, "kube-system"), "my-controller", "pod-a");
//! # Ok(()) }
//! ```
//!
//! kube-rs's client retries `429`, `503` and `504` answers itself by default
//! (`Config::default_retry`); give it a request timeout shorter than the renew deadline, as
//! for the `rest` locks.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;

use crate::lease::{lease_spec_to_record, new_lease, updated_lease};
use crate::lock::{Lock, LockError, Observed};
use crate::record::LeaderElectionRecord;

/// A lock on a `Lease` through `kube::Api<Lease>` (client-go's `resourcelock.LeaseLock`).
#[derive(Clone)]
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    labels: BTreeMap<String, String>,
    description: String,
}

impl std::fmt::Debug for LeaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseLock")
            .field("lock", &self.description)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl LeaseLock {
    /// A lock on the `Lease` `name` of `api`'s namespace, for the candidate `identity`.
    pub fn new(api: Api<Lease>, name: impl Into<String>, identity: impl Into<String>) -> Self {
        let name = name.into();
        LeaseLock {
            description: format!("{}/{name}", api.namespace().unwrap_or_default()),
            api,
            name,
            identity: identity.into(),
            labels: BTreeMap::new(),
        }
    }

    /// Labels this candidate sets on the `Lease` whenever it writes it (client-go's
    /// `NewWithLabels`); other labels are kept.
    pub fn labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }

    /// The `Lease`'s name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn error(&self, source: kube::Error) -> LockError {
        LockError::Kube {
            lock: self.description.clone(),
            source,
        }
    }
}

impl Lock for LeaseLock {
    type Version = Lease;

    async fn get(&self) -> Result<Option<Observed<Lease>>, LockError> {
        match self.api.get_opt(&self.name).await {
            Ok(Some(lease)) => {
                let record = lease_spec_to_record(lease.spec.as_ref());
                Ok(Some(Observed {
                    raw: record.raw(),
                    record,
                    version: lease,
                }))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    async fn create(&self, record: &LeaderElectionRecord) -> Result<Lease, LockError> {
        let lease = new_lease(
            &self.name,
            self.api.namespace(),
            &self.labels,
            record,
            &self.description,
        )?;
        self.api
            .create(&PostParams::default(), &lease)
            .await
            .map_err(|e| self.error(e))
    }

    async fn update(
        &self,
        version: &Lease,
        record: &LeaderElectionRecord,
    ) -> Result<Lease, LockError> {
        let lease = updated_lease(version, &self.labels, record, &self.description)?;
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(|e| self.error(e))
    }

    fn identity(&self) -> &str {
        &self.identity
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
