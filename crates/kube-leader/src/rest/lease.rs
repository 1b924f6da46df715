//! [`LeaseLock`]: the record in a `coordination.k8s.io/v1` `Lease`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube_apimachinery::Object as _;
use kube_rest::{Api, PostParams};

use super::{api_error, describe};
use crate::lock::{Lock, LockError, Observed};
use crate::record::{LeaderElectionRecord, truncate_to_micros};

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
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: self.api.namespace().map(str::to_string),
                labels: (!self.labels.is_empty()).then(|| self.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(
                record_to_lease_spec(record).map_err(|reason| LockError::InvalidInput {
                    lock: self.description.clone(),
                    reason,
                })?,
            ),
        };
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
        let mut lease = version.clone();
        lease.spec =
            Some(
                record_to_lease_spec(record).map_err(|reason| LockError::InvalidInput {
                    lock: self.description.clone(),
                    reason,
                })?,
            );
        if !self.labels.is_empty() {
            let labels = lease.meta_mut().labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in &self.labels {
                labels.insert(k.clone(), v.clone());
            }
        }
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

fn to_micro_time(time: SystemTime) -> Option<MicroTime> {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    let since = truncate_to_micros(SystemTime::UNIX_EPOCH + since)
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?;
    let seconds = i64::try_from(since.as_secs()).ok()?;
    let nanos = i32::try_from(since.subsec_nanos()).ok()?;
    Timestamp::new(seconds, nanos).ok().map(MicroTime)
}

fn from_micro_time(time: &MicroTime) -> Option<SystemTime> {
    let seconds = u64::try_from(time.0.as_second()).ok()?;
    let nanos = u32::try_from(time.0.subsec_nanosecond()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos))
}

/// The record a `Lease` spec holds (client-go's `LeaseSpecToLeaderElectionRecord`); no spec
/// reads as an empty record.
pub fn lease_spec_to_record(spec: Option<&LeaseSpec>) -> LeaderElectionRecord {
    let Some(spec) = spec else {
        return LeaderElectionRecord::default();
    };
    LeaderElectionRecord {
        holder_identity: spec.holder_identity.clone().unwrap_or_default(),
        lease_duration_seconds: spec.lease_duration_seconds.unwrap_or_default(),
        acquire_time: spec.acquire_time.as_ref().and_then(from_micro_time),
        renew_time: spec.renew_time.as_ref().and_then(from_micro_time),
        leader_transitions: spec.lease_transitions.unwrap_or_default(),
        strategy: spec.strategy.clone().filter(|s| !s.is_empty()),
        preferred_holder: spec.preferred_holder.clone().filter(|s| !s.is_empty()),
    }
}

/// The `Lease` spec for a record (client-go's `LeaderElectionRecordToLeaseSpec`); an error for
/// a time before 1970.
pub fn record_to_lease_spec(record: &LeaderElectionRecord) -> Result<LeaseSpec, String> {
    let time = |t: Option<SystemTime>, what: &str| match t {
        None => Ok(None),
        Some(t) => to_micro_time(t)
            .map(Some)
            .ok_or_else(|| format!("{what} {t:?} cannot be written as a MicroTime")),
    };
    Ok(LeaseSpec {
        holder_identity: Some(record.holder_identity.clone()),
        lease_duration_seconds: Some(record.lease_duration_seconds),
        acquire_time: time(record.acquire_time, "acquire time")?,
        renew_time: time(record.renew_time, "renew time")?,
        lease_transitions: Some(record.leader_transitions),
        preferred_holder: record.preferred_holder.clone(),
        strategy: record.strategy.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// client-go's TestLeaseSpecToLeaderElectionRecordRoundTrip.
    #[test]
    fn lease_spec_round_trip() {
        let now = to_micro_time(SystemTime::now()).unwrap();
        let spec = LeaseSpec {
            holder_identity: Some("foo".into()),
            lease_duration_seconds: Some(10),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(1),
            ..LeaseSpec::default()
        };
        let record = lease_spec_to_record(Some(&spec));
        let back = record_to_lease_spec(&record).unwrap();
        assert_eq!(spec, back);
        assert_eq!(lease_spec_to_record(Some(&back)), record);
    }

    #[test]
    fn empty_spec_is_an_empty_record() {
        assert_eq!(lease_spec_to_record(None), LeaderElectionRecord::default());
        assert_eq!(
            lease_spec_to_record(Some(&LeaseSpec::default())),
            LeaderElectionRecord::default()
        );
    }
}
