//! [`LeaseLock`]: the record in a `coordination.k8s.io/v1` `Lease`.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use kube_rest::{Api, PostParams};

use super::{api_error, describe};
use crate::lease::{lease_spec_to_record, new_lease, updated_lease};
use crate::lock::{Lock, LockError, Observed};
use crate::record::LeaderElectionRecord;

/// A lock on a `Lease` (client-go's `resourcelock.LeaseLock`).
///
/// ```no_run
/// # async fn demo(client: kube_rest::Client) {
/// use k8s_openapi::api::coordination::v1::Lease;
/// use kube_leader::rest::LeaseLock;
/// use kube_rest::Api;
///
/// let lock = LeaseLock::new(Api::<Lease>::namespaced(client, "kube-system"), "my-controller", "pod-a");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    labels: BTreeMap<String, String>,
    description: String,
}

impl LeaseLock {
    /// A lock on the `Lease` `name` of `api`'s namespace, for the candidate `identity`.
    pub fn new(api: Api<Lease>, name: impl Into<String>, identity: impl Into<String>) -> Self {
        let name = name.into();
        LeaseLock {
            description: describe(api.namespace(), &name),
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
}

impl Lock for LeaseLock {
    type Version = Lease;

    async fn get(&self) -> Result<Option<Observed<Lease>>, LockError> {
        match self.api.get(&self.name).await {
            Ok(lease) => {
                let record = lease_spec_to_record(lease.spec.as_ref());
                Ok(Some(Observed {
                    raw: record.raw(),
                    record,
                    version: lease,
                }))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(api_error(&self.description, e)),
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
            .map_err(|e| api_error(&self.description, e))
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
            .map_err(|e| api_error(&self.description, e))
    }

    fn identity(&self) -> &str {
        &self.identity
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
