//! The [`Lock`] trait: where the election record lives.

use std::future::Future;

use crate::record::{LeaderElectionRecord, RecordError};

/// A record read from a lock, with what the lock needs to update it later.
#[derive(Debug, Clone)]
pub struct Observed<V> {
    /// The record.
    pub record: LeaderElectionRecord,
    /// The record's raw form, compared by the elector to notice any change (client-go's
    /// `observedRawRecord`): two reads with the same raw form mean nobody wrote in between.
    pub raw: String,
    /// The version to pass to [`Lock::update`] (for API-backed locks, the object as read, with
    /// its `resourceVersion`).
    pub version: V,
}

/// A resource holding a [`LeaderElectionRecord`], with optimistic concurrency
/// (client-go's `resourcelock.Interface`).
///
/// Where client-go's locks cache the last object they read, this trait hands the version to
/// the caller: [`get`](Lock::get) returns it and [`update`](Lock::update) takes it back, so a
/// lock is stateless and an update from a stale version fails with a conflict
/// ([`LockError::is_conflict`]).
///
/// Implementations: [`MemoryLock`](crate::MemoryLock) (in memory, with fault injection),
/// [`MultiLock`](crate::MultiLock) (two locks during a migration), with the `kube` feature
/// `kube::LeaseLock` on kube-rs's client, and, with the `rest` feature,
/// `LeaseLock`, `ConfigMapLock` and `EndpointsLock`.
pub trait Lock: Send + Sync + 'static {
    /// What [`update`](Lock::update) needs to detect a concurrent write.
    type Version: Clone + Send + Sync + 'static;

    /// Reads the record; `Ok(None)` when the lock object does not exist.
    fn get(
        &self,
    ) -> impl Future<Output = Result<Option<Observed<Self::Version>>, LockError>> + Send;

    /// Creates the lock object holding `record`; fails with
    /// [`LockError::is_already_exists`] when it exists.
    fn create(
        &self,
        record: &LeaderElectionRecord,
    ) -> impl Future<Output = Result<Self::Version, LockError>> + Send;

    /// Replaces the record of the object read as `version`; fails with
    /// [`LockError::is_conflict`] when someone wrote since.
    fn update(
        &self,
        version: &Self::Version,
        record: &LeaderElectionRecord,
    ) -> impl Future<Output = Result<Self::Version, LockError>> + Send;

    /// The identity of this candidate, unique among all candidates of the election.
    fn identity(&self) -> &str;

    /// A description of the lock for logs, such as `namespace/name`.
    fn describe(&self) -> String;
}

/// Why a [`Lock`] operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// An update from a stale version: someone else wrote the record since it was read.
    #[error("conflict updating lock {lock}: the record was modified since it was read")]
    Conflict {
        /// The lock's description.
        lock: String,
    },
    /// A create found the lock object already there.
    #[error("lock {lock} already exists")]
    AlreadyExists {
        /// The lock's description.
        lock: String,
    },
    /// An update found no lock object.
    #[error("lock {lock} not found")]
    NotFound {
        /// The lock's description.
        lock: String,
    },
    /// The lock cannot be reached (an outage or a lost reply, real or injected).
    #[error("lock {lock} unavailable: {reason}")]
    Unavailable {
        /// The lock's description.
        lock: String,
        /// What happened.
        reason: String,
    },
    /// The stored record cannot be read.
    #[error("lock {lock} holds an invalid leader election record")]
    InvalidRecord {
        /// The lock's description.
        lock: String,
        /// Why it could not be read.
        #[source]
        source: RecordError,
    },
    /// The record does not fit the lock object (a lease duration beyond `i32` seconds).
    #[error("lock {lock}: {reason}")]
    InvalidInput {
        /// The lock's description.
        lock: String,
        /// What is wrong.
        reason: String,
    },
    /// The API server refused or failed the request.
    #[cfg(feature = "rest")]
    #[error("request for lock {lock} failed")]
    Api {
        /// The lock's description.
        lock: String,
        /// The client's error.
        #[source]
        source: kube_rest::Error,
    },
    /// The API server refused or failed a request made through kube-rs (feature `kube`).
    #[cfg(feature = "kube")]
    #[error("request for lock {lock} through kube-rs failed")]
    Kube {
        /// The lock's description.
        lock: String,
        /// kube-rs's error.
        #[source]
        source: kube::Error,
    },
}

/// The `Status` of a kube-rs API error, as kube-apimachinery's (the same `metav1.Status`
/// JSON), so both clients' errors are classified by the same rules.
#[cfg(feature = "kube")]
fn kube_status(error: &kube::Error) -> Option<kube_apimachinery::Status> {
    match error {
        kube::Error::Api(status) => serde_json::to_value(status)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok()),
        _ => None,
    }
}

impl LockError {
    /// Whether the update lost an optimistic-concurrency race.
    pub fn is_conflict(&self) -> bool {
        match self {
            LockError::Conflict { .. } => true,
            #[cfg(feature = "rest")]
            LockError::Api { source, .. } => source.is_conflict(),
            #[cfg(feature = "kube")]
            LockError::Kube { source, .. } => kube_status(source).is_some_and(|s| s.is_conflict()),
            _ => false,
        }
    }

    /// Whether the lock object does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            LockError::NotFound { .. } => true,
            #[cfg(feature = "rest")]
            LockError::Api { source, .. } => source.is_not_found(),
            #[cfg(feature = "kube")]
            LockError::Kube { source, .. } => kube_status(source).is_some_and(|s| s.is_not_found()),
            _ => false,
        }
    }

    /// Whether a create found the lock object already there.
    pub fn is_already_exists(&self) -> bool {
        match self {
            LockError::AlreadyExists { .. } => true,
            #[cfg(feature = "rest")]
            LockError::Api { source, .. } => source.is_already_exists(),
            #[cfg(feature = "kube")]
            LockError::Kube { source, .. } => {
                kube_status(source).is_some_and(|s| s.is_already_exists())
            }
            _ => false,
        }
    }
}
