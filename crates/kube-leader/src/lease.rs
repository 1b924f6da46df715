//! The `Lease` side of the API-server locks, shared by the `rest` and `kube` features: the
//! record in a `LeaseSpec` (client-go's `LeaseSpecToLeaderElectionRecord` and back), and the
//! `Lease` a create or an update writes. Only the requests differ between the two clients.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;

use crate::lock::LockError;
use crate::record::{LeaderElectionRecord, truncate_to_micros};

/// The `Lease` a candidate creates: `name` in `namespace`, with its labels and `record`.
pub(crate) fn new_lease(
    name: &str,
    namespace: Option<&str>,
    labels: &BTreeMap<String, String>,
    record: &LeaderElectionRecord,
    description: &str,
) -> Result<Lease, LockError> {
    Ok(Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: namespace.map(str::to_string),
            labels: (!labels.is_empty()).then(|| labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(spec_for(record, description)?),
    })
}

/// The `Lease` read as `version` holding `record`, with the candidate's labels set (other
/// labels kept) and `version`'s resourceVersion, so a concurrent write makes it conflict.
pub(crate) fn updated_lease(
    version: &Lease,
    labels: &BTreeMap<String, String>,
    record: &LeaderElectionRecord,
    description: &str,
) -> Result<Lease, LockError> {
    let mut lease = version.clone();
    lease.spec = Some(spec_for(record, description)?);
    if !labels.is_empty() {
        let stored = lease.metadata.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in labels {
            stored.insert(k.clone(), v.clone());
        }
    }
    Ok(lease)
}

fn spec_for(record: &LeaderElectionRecord, description: &str) -> Result<LeaseSpec, LockError> {
    record_to_lease_spec(record).map_err(|reason| LockError::InvalidInput {
        lock: description.to_string(),
        reason,
    })
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
