//! [`MultiLock`]: two locks held together while migrating from one kind of lock to another.

use crate::lock::{Lock, LockError, Observed};
use crate::record::LeaderElectionRecord;

/// The holder [`MultiLock`] reports when its two locks disagree (client-go's `UnknownLeader`).
pub const UNKNOWN_LEADER: &str = "leaderelection.k8s.io/unknown";

/// Two locks written together, for migrating an election from one lock kind to another
/// (client-go's `resourcelock.MultiLock`, used to move from `Endpoints` or `ConfigMap` locks to
/// `Lease` locks).
///
/// Old candidates use only the primary lock; migrated candidates use a `MultiLock` over the
/// primary and the secondary, and later candidates only the secondary. Its rules, as
/// client-go's:
///
/// * [`get`](Lock::get) reads the primary; when the secondary does not exist yet and the primary
///   is held by someone else, the primary's record stands (an old candidate leads). When both
///   exist and name different holders, the holder is [`UNKNOWN_LEADER`], so the record counts as
///   held until it expires. The raw form is `primary,secondary`.
/// * When the secondary is missing and the primary names this candidate, `get` reports the
///   lock as absent (client-go's `NotFound`), so the elector creates it.
/// * [`create`](Lock::create) creates the primary (tolerating that it exists), then the
///   secondary.
/// * [`update`](Lock::update) updates the primary from the version read, then reads the secondary
///   again and creates or updates it.
///
/// The identity and description are the primary's.
#[derive(Debug, Clone)]
pub struct MultiLock<P, S> {
    primary: P,
    secondary: S,
}

impl<P: Lock, S: Lock> MultiLock<P, S> {
    /// A lock writing both `primary` (the old kind) and `secondary` (the new kind).
    pub fn new(primary: P, secondary: S) -> MultiLock<P, S> {
        MultiLock { primary, secondary }
    }

    /// The primary lock.
    pub fn primary(&self) -> &P {
        &self.primary
    }

    /// The secondary lock.
    pub fn secondary(&self) -> &S {
        &self.secondary
    }
}

/// `primary,secondary`: client-go's `ConcatRawRecord`.
pub fn concat_raw_records(primary: &str, secondary: &str) -> String {
    format!("{primary},{secondary}")
}

impl<P: Lock, S: Lock> Lock for MultiLock<P, S> {
    type Version = P::Version;

    async fn get(&self) -> Result<Option<Observed<P::Version>>, LockError> {
        let Some(mut primary) = self.primary.get().await? else {
            return Ok(None);
        };
        let secondary = match self.secondary.get().await? {
            Some(secondary) => secondary,
            // The lock is held by an old candidate that only knows the primary.
            None if primary.record.holder_identity != self.identity() => return Ok(Some(primary)),
            // Held by this candidate but the secondary is missing: report the lock as absent,
            // so the elector creates it (the primary's existence is tolerated).
            None => return Ok(None),
        };
        if primary.record.holder_identity != secondary.record.holder_identity {
            primary.record.holder_identity = UNKNOWN_LEADER.to_string();
            primary.raw = primary.record.raw();
        }
        Ok(Some(Observed {
            raw: concat_raw_records(&primary.raw, &secondary.raw),
            record: primary.record,
            version: primary.version,
        }))
    }

    async fn create(&self, record: &LeaderElectionRecord) -> Result<P::Version, LockError> {
        let version = match self.primary.create(record).await {
            Ok(version) => version,
            Err(e) if e.is_already_exists() => match self.primary.get().await? {
                Some(observed) => observed.version,
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        self.secondary.create(record).await?;
        Ok(version)
    }

    async fn update(
        &self,
        version: &P::Version,
        record: &LeaderElectionRecord,
    ) -> Result<P::Version, LockError> {
        let version = self.primary.update(version, record).await?;
        match self.secondary.get().await? {
            None => {
                self.secondary.create(record).await?;
            }
            Some(secondary) => {
                self.secondary.update(&secondary.version, record).await?;
            }
        }
        Ok(version)
    }

    fn identity(&self) -> &str {
        self.primary.identity()
    }

    fn describe(&self) -> String {
        self.primary.describe()
    }
}
