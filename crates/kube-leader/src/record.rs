//! The leader election record: who holds the lock, for how long, and since when.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// The annotation under which the `ConfigMap` and `Endpoints` locks keep the record as JSON
/// (client-go's `LeaderElectionRecordAnnotationKey`).
pub const LEADER_ELECTION_RECORD_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// What a lock stores (client-go's `resourcelock.LeaderElectionRecord`).
///
/// Its timestamps are informational only: the elector never compares them with its own clock.
/// It judges expiry from when it *observed a change* of the record, so clock skew between
/// candidates does not matter (only the rate at which their clocks run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderElectionRecord {
    /// The identity of the holder; empty when nobody holds the lock (after a release), in
    /// which case any candidate may acquire it at once.
    pub holder_identity: String,
    /// How long, in seconds, others must wait without observing a change before they may take
    /// the lock over.
    pub lease_duration_seconds: i32,
    /// When the current holder acquired the lock (wall time of the holder).
    pub acquire_time: Option<SystemTime>,
    /// When the current holder last renewed the lock (wall time of the holder).
    pub renew_time: Option<SystemTime>,
    /// How many times the lock changed hands.
    pub leader_transitions: i32,
    /// The coordinated leader election strategy of a `Lease` (kept so a round trip through a
    /// lock does not lose it; this crate's elector does not use it).
    pub strategy: Option<String>,
    /// The preferred holder of a `Lease` under coordinated leader election (kept, not used).
    pub preferred_holder: Option<String>,
}

impl LeaderElectionRecord {
    /// The lease duration written in the record.
    pub fn lease_duration(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.lease_duration_seconds).unwrap_or(0))
    }

    /// The record as client-go writes it into the `control-plane.alpha.kubernetes.io/leader`
    /// annotation: `holderIdentity`, `leaseDurationSeconds`, `acquireTime`, `renewTime`
    /// (RFC 3339 in whole seconds, `null` when unset) and `leaderTransitions`.
    pub fn to_annotation(&self) -> String {
        let json = AnnotationJson {
            holder_identity: self.holder_identity.clone(),
            lease_duration_seconds: self.lease_duration_seconds,
            acquire_time: self
                .acquire_time
                .map(|t| format_time(t, Precision::Seconds)),
            renew_time: self.renew_time.map(|t| format_time(t, Precision::Seconds)),
            leader_transitions: self.leader_transitions,
            strategy: None,
            preferred_holder: None,
        };
        serde_json::to_string(&json).expect("a record always serializes") // ok: strings and integers only
    }

    /// Parses the annotation written by [`to_annotation`](Self::to_annotation) or by client-go.
    pub fn from_annotation(value: &str) -> Result<LeaderElectionRecord, RecordError> {
        let json: AnnotationJson = serde_json::from_str(value)?;
        Ok(LeaderElectionRecord {
            holder_identity: json.holder_identity,
            lease_duration_seconds: json.lease_duration_seconds,
            acquire_time: json.acquire_time.as_deref().map(parse_time).transpose()?,
            renew_time: json.renew_time.as_deref().map(parse_time).transpose()?,
            leader_transitions: json.leader_transitions,
            strategy: json.strategy.filter(|s| !s.is_empty()),
            preferred_holder: json.preferred_holder.filter(|s| !s.is_empty()),
        })
    }

    /// The raw form the elector compares to detect a change: JSON with microsecond timestamps
    /// (the precision of a `Lease`).
    pub(crate) fn raw(&self) -> String {
        let json = AnnotationJson {
            holder_identity: self.holder_identity.clone(),
            lease_duration_seconds: self.lease_duration_seconds,
            acquire_time: self.acquire_time.map(|t| format_time(t, Precision::Micros)),
            renew_time: self.renew_time.map(|t| format_time(t, Precision::Micros)),
            leader_transitions: self.leader_transitions,
            strategy: self.strategy.clone(),
            preferred_holder: self.preferred_holder.clone(),
        };
        serde_json::to_string(&json).expect("a record always serializes") // ok: strings and integers only
    }
}

/// A record that could not be read from its annotation.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The annotation is not the record's JSON.
    #[error("the leader election record is not valid JSON")]
    Json(#[from] serde_json::Error),
    /// A timestamp is not RFC 3339.
    #[error("invalid timestamp {value:?} in the leader election record")]
    Time {
        /// The timestamp as found.
        value: String,
        /// Why it did not parse.
        #[source]
        source: jiff::Error,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnnotationJson {
    #[serde(default)]
    holder_identity: String,
    #[serde(default)]
    lease_duration_seconds: i32,
    #[serde(default)]
    acquire_time: Option<String>,
    #[serde(default)]
    renew_time: Option<String>,
    #[serde(default)]
    leader_transitions: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preferred_holder: Option<String>,
}

#[derive(Clone, Copy)]
enum Precision {
    Seconds,
    Micros,
}

fn format_time(time: SystemTime, precision: Precision) -> String {
    let Ok(ts) = jiff::Timestamp::try_from(time) else {
        // Outside jiff's range (years beyond 9999): clamp rather than fail a write.
        return jiff::Timestamp::MAX.to_string();
    };
    let unit = match precision {
        Precision::Seconds => jiff::Unit::Second,
        Precision::Micros => jiff::Unit::Microsecond,
    };
    let ts = ts
        .round(
            jiff::TimestampRound::new()
                .smallest(unit)
                .mode(jiff::RoundMode::Trunc),
        )
        .unwrap_or(ts);
    ts.to_string()
}

fn parse_time(value: &str) -> Result<SystemTime, RecordError> {
    let ts: jiff::Timestamp = value.parse().map_err(|source| RecordError::Time {
        value: value.to_string(),
        source,
    })?;
    Ok(SystemTime::from(ts))
}

/// Truncates a wall time to whole microseconds (what a `Lease` keeps).
#[cfg_attr(not(any(feature = "rest", feature = "kube")), allow(dead_code))]
pub(crate) fn truncate_to_micros(time: SystemTime) -> SystemTime {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + Duration::from_micros(d.as_micros() as u64),
        Err(_) => time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_round_trip_in_whole_seconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let record = LeaderElectionRecord {
            holder_identity: "a".into(),
            lease_duration_seconds: 15,
            acquire_time: Some(t),
            renew_time: Some(t),
            leader_transitions: 3,
            ..Default::default()
        };
        let text = record.to_annotation();
        assert_eq!(
            text,
            r#"{"holderIdentity":"a","leaseDurationSeconds":15,"acquireTime":"2023-11-14T22:13:20Z","renewTime":"2023-11-14T22:13:20Z","leaderTransitions":3}"#
        );
        let back = LeaderElectionRecord::from_annotation(&text).unwrap();
        assert_eq!(
            back.renew_time,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(back.holder_identity, "a");
        assert_eq!(back.leader_transitions, 3);
    }

    #[test]
    fn annotation_from_go_with_nulls_and_newer_fields() {
        let go = r#"{"holderIdentity":"","leaseDurationSeconds":0,"acquireTime":null,"renewTime":null,"leaderTransitions":0,"strategy":"","preferredHolder":""}"#;
        let record = LeaderElectionRecord::from_annotation(go).unwrap();
        assert_eq!(record, LeaderElectionRecord::default());
    }

    #[test]
    fn bad_annotation_is_an_error() {
        assert!(matches!(
            LeaderElectionRecord::from_annotation("not json"),
            Err(RecordError::Json(_))
        ));
        assert!(matches!(
            LeaderElectionRecord::from_annotation(r#"{"renewTime":"yesterday"}"#),
            Err(RecordError::Time { .. })
        ));
    }

    #[test]
    fn raw_keeps_microseconds() {
        let a = LeaderElectionRecord {
            renew_time: Some(SystemTime::UNIX_EPOCH + Duration::from_micros(1_000_001)),
            ..Default::default()
        };
        let b = LeaderElectionRecord {
            renew_time: Some(SystemTime::UNIX_EPOCH + Duration::from_micros(1_000_002)),
            ..Default::default()
        };
        assert_ne!(a.raw(), b.raw());
        assert_eq!(a.to_annotation(), b.to_annotation());
    }
}
